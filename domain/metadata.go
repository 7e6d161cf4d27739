package domain

import (
	"strings"
	"time"
)

// MaxClockSkew is how far in the future an event's OccurredAt may lie
// relative to the validating clock: devices and partner systems run fast,
// but a touchpoint dated next week is a bug.
const MaxClockSkew = 24 * time.Hour

// Metadata says when an event happened, who recorded it, through which
// channel, and why. Its fields have exactly the names, types and order of
// eventstore.Metadata, so that adapters convert with domain.Metadata(m)
// without the domain importing the store.
type Metadata struct {
	// OccurredAt is when the touchpoint happened in the world (the store's
	// RecordedAt is when it was written; imports make them far apart).
	OccurredAt time.Time `json:"occurredAt"`
	// Actor is who recorded the event, "<kind>:<name>" with kind one of
	// ActorKinds: "user:2c4f…", "service:billing", "import:2024-05-crm".
	Actor string `json:"actor"`
	// Channel is the touchpoint channel or source system ("web", "zendesk").
	Channel string `json:"channel,omitempty"`
	// CorrelationID ties together every event of one business flow.
	CorrelationID string `json:"correlationId,omitempty"`
	// CausationID is the id of the event or command that caused this one.
	CausationID string `json:"causationId,omitempty"`
	// SchemaVersion is the version of the event's payload schema, as
	// returned by Encode; 0 in old records means 1.
	SchemaVersion int `json:"schemaVersion,omitempty"`
}

// ActorKinds are the accepted prefixes of Metadata.Actor.
var ActorKinds = []string{"user", "service", "import", "system"}

// Validate checks metadata against the clock reading now, which the caller
// injects (a request's time) so that validation stays deterministic.
// OccurredAt is required, not before 1900 and at most MaxClockSkew after
// now; Actor is required and of a known kind. Field names are prefixed with
// "metadata.".
func (m Metadata) Validate(now time.Time) error {
	var v validator
	switch {
	case m.OccurredAt.IsZero():
		v.add("metadata.occurredAt", "required")
	case m.OccurredAt.Before(minTime):
		v.add("metadata.occurredAt", "must not be before 1900")
	case m.OccurredAt.After(now.Add(MaxClockSkew)):
		v.add("metadata.occurredAt", "must not be more than 24h in the future")
	}
	v.line("metadata.actor", m.Actor, true, maxName)
	if m.Actor != "" {
		kind, name, ok := strings.Cut(m.Actor, ":")
		switch {
		case !ok || !isOneOf(kind, ActorKinds):
			v.add("metadata.actor", "must be <kind>:<name> with kind one of "+strings.Join(ActorKinds, "|"))
		case strings.TrimSpace(name) == "":
			v.add("metadata.actor", "name after "+kind+": required")
		}
	}
	v.line("metadata.channel", m.Channel, false, maxShort)
	v.line("metadata.correlationId", m.CorrelationID, false, maxName)
	v.line("metadata.causationId", m.CausationID, false, maxName)
	if m.SchemaVersion < 0 {
		v.add("metadata.schemaVersion", "must not be negative")
	}
	return v.err()
}
