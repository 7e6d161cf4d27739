// Package projections folds the global event log into read models.
//
// A Projection declares a name, a version and the event types it handles,
// and applies one event at a time through a Tx. The Engine runs every
// registered projection from its own checkpoint: a batch of events and the
// checkpoint commit in one read-model transaction, so a crash anywhere
// leaves each read model consistent with its checkpoint. Projection code is
// written once against Tx and Reader and runs on every read-model Backend
// (embedded bbolt, PostgreSQL, memory).
//
// What the application calls:
//
//   - NewEngine(store, backend, Config{}), Register each projection (the one
//     place read models are listed), then Run(ctx) on a goroutine: every
//     projection catches up and goes live; a new one catches up from 0; a
//     new version is built beside the old one and switched over.
//   - Engine.Status for lag, state, rate and failures (a *ProjectionError
//     names the poison event); Engine.Restart after fixing a failure.
//   - Engine.Rebuild to rebuild one read model beside the live one.
//   - Engine.Register, Replace and Remove while it runs (analysts'
//     projections, defined at run time), DropReadModel to delete one for
//     good.
//   - View and Read on the query side, Digest to compare state; both need
//     only the Backend.
//   - Replay rebuilds read models offline (`cxledger replay`, benchmarks).
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
	// Types lists the event types Apply handles; empty means every type of
	// the domain (domain.Types()); other records in the log (the access
	// log's) are never applied.
	Types() []string
	// Apply folds one event into the read model. The event is shared with
	// the other projections, which apply it concurrently: Apply must not
	// modify it (nor the slices and maps inside e.Event). An error (or a
	// panic) stops this projection at e with a *ProjectionError.
	Apply(tx *Tx, e domain.Envelope) error
}

// BatchFinisher is a Projection that finishes each batch of events: Finish
// runs once after the batch's last Apply, in the same Tx, before its
// writes are stored. It serves work that an event calls for but that a
// later event of the batch would redo, done once per batch instead (the
// duplicates read model recomputes a changed customer's candidate pairs
// once per batch, not after each of the customer's events); what Apply
// leaves for it lives in BatchState. The engine's batches vary in size
// with load, so the read model must come out the same however the log is
// cut into batches, one event per batch included.
type BatchFinisher interface {
	Finish(tx *Tx) error
}

// Names are at most 30 bytes so that a namespace, "<name>_v<version>_g<gen>"
// with up to nine digits each, fits PostgreSQL's 63-byte identifiers with
// pgrm's "rm_" prefix.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)

// maxVersion keeps a version to nine digits, as namespaces assume.
const maxVersion = 999_999_999

// ValidateProjection checks what the engine relies on: a usable name and a
// positive version.
func ValidateProjection(p Projection) error {
	name := p.Name()
	if !namePattern.MatchString(name) {
		return fmt.Errorf("projection name %q: want lower-case letters, digits and underscores, starting with a letter, at most 30", name)
	}
	if why := Reserved(name); why != "" {
		return errors.New(why)
	}
	if p.Version() < 1 || p.Version() > maxVersion {
		return fmt.Errorf("projection %s: version %d must be from 1 to %d", name, p.Version(), maxVersion)
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
