// Package projections folds the global event log into read models.
//
// A Projection declares a name, a version and the event types it handles,
// and applies one event at a time through a Tx. The Engine runs every
// registered projection from its own checkpoint: a batch of events and the
// checkpoint commit in one read-model transaction, so a crash anywhere
// leaves each read model consistent with its checkpoint. Projection code is
// written once against Tx and Reader and runs on every read-model Backend
// (embedded bbolt, PostgreSQL, memory).
package projections

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// Projection folds events into one read model.
//
// Apply must be deterministic: its effect may depend only on the event and
// on what it reads through tx — no clocks, randomness or map order — so
// that a rebuild from scratch always yields the same state as incremental
// application. Time-dependent figures (recency, churn risk) are computed at
// query time from stored facts, never stored.
type Projection interface {
	// Name identifies the read model: lower-case letters, digits and
	// underscores, starting with a letter (it names tables and buckets).
	Name() string
	// Version is the read model's schema version. Changing it rebuilds the
	// read model from position 0 beside the running one.
	Version() int
	// Types lists the event types Apply handles; empty means every type.
	Types() []string
	// Apply folds one event into the read model.
	Apply(tx *Tx, e domain.Envelope) error
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// ValidateProjection checks what the engine relies on: a usable name and a
// positive version.
func ValidateProjection(p Projection) error {
	if !namePattern.MatchString(p.Name()) {
		return fmt.Errorf("projection name %q: want lower-case letters, digits and underscores, starting with a letter, at most 40", p.Name())
	}
	if p.Version() < 1 {
		return fmt.Errorf("projection %s: version %d must be at least 1", p.Name(), p.Version())
	}
	return nil
}

// Envelope decodes a stored record into the domain's envelope, upcasting
// old schema versions.
func Envelope(r eventstore.Record) (domain.Envelope, error) {
	e, err := domain.Decode(r.Type, r.Metadata.SchemaVersion, r.Data)
	if err != nil {
		return domain.Envelope{}, fmt.Errorf("decode event %s at position %d: %w", r.ID, r.Position, err)
	}
	return domain.Envelope{
		ID: r.ID, Stream: r.Stream, Type: r.Type, Version: r.Version, Position: r.Position,
		RecordedAt: r.RecordedAt, Metadata: domain.Metadata(r.Metadata), Event: e,
	}, nil
}

// ErrNotFound is returned by queries for a key that holds no value.
var ErrNotFound = errors.New("not found")
