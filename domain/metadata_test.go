package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMetadataValidate(t *testing.T) {
	with := func(f func(*Metadata)) Metadata { m := validMetadata(); f(&m); return m }
	tests := []struct {
		name  string
		m     Metadata
		field string
	}{
		{"valid", validMetadata(), ""},
		{"service actor", with(func(m *Metadata) { m.Actor = "service:billing" }), ""},
		{"import actor", with(func(m *Metadata) { m.Actor = "import:2024-05-salesforce" }), ""},
		{"system actor, optional fields empty", Metadata{OccurredAt: now, Actor: "system:eraser"}, ""},
		{"old import", with(func(m *Metadata) { m.OccurredAt = time.Date(1999, 12, 31, 23, 59, 0, 0, time.UTC) }), ""},
		{"clock skew within 24h", with(func(m *Metadata) { m.OccurredAt = now.Add(23 * time.Hour) }), ""},
		{"missing occurredAt", with(func(m *Metadata) { m.OccurredAt = time.Time{} }), "metadata.occurredAt"},
		{"before 1900", with(func(m *Metadata) { m.OccurredAt = time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC) }), "metadata.occurredAt"},
		{"future", with(func(m *Metadata) { m.OccurredAt = now.Add(25 * time.Hour) }), "metadata.occurredAt"},
		{"missing actor", with(func(m *Metadata) { m.Actor = "" }), "metadata.actor"},
		{"actor without kind", with(func(m *Metadata) { m.Actor = "marta" }), "metadata.actor"},
		{"actor unknown kind", with(func(m *Metadata) { m.Actor = "robot:r2d2" }), "metadata.actor"},
		{"actor empty name", with(func(m *Metadata) { m.Actor = "user:" }), "metadata.actor"},
		{"long channel", with(func(m *Metadata) { m.Channel = strings.Repeat("w", 101) }), "metadata.channel"},
		{"control in correlation", with(func(m *Metadata) { m.CorrelationID = "a\nb" }), "metadata.correlationId"},
		{"negative schema", with(func(m *Metadata) { m.SchemaVersion = -1 }), "metadata.schemaVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate(now)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || ve.Field != tt.field {
				t.Fatalf("want error naming %s, got %v", tt.field, err)
			}
		})
	}
}

// domain.Metadata must stay convertible from eventstore.Metadata: same
// field names, types and order. The domain may not import eventstore, so
// this mirror of its definition catches drift on the domain side.
func TestMetadataConvertible(t *testing.T) {
	type storeMetadata struct {
		OccurredAt    time.Time `json:"occurredAt"`
		Actor         string    `json:"actor,omitempty"`
		Channel       string    `json:"channel,omitempty"`
		CorrelationID string    `json:"correlationId,omitempty"`
		CausationID   string    `json:"causationId,omitempty"`
		SchemaVersion int       `json:"schemaVersion,omitempty"`
	}
	m := Metadata(storeMetadata{Actor: "service:api", SchemaVersion: 2})
	if m.Actor != "service:api" || m.SchemaVersion != 2 {
		t.Errorf("conversion lost fields: %+v", m)
	}
}
