package eventstore

import (
	"context"
	"fmt"
	"time"
)

// Importer is implemented by backends that can take a ledger's records as
// another store recorded them: moving a ledger between backends must keep
// RecordedAt, which Append would stamp anew with the store clock. It is an
// optional interface: check for it with a type assertion.
type Importer interface {
	// Import appends records, in the order given (the source's global
	// order), atomically: all of them or none. Each record keeps its id,
	// stream, version, type, data, metadata and RecordedAt; the store assigns
	// its own positions, increasing in the order given, so Position is
	// ignored. It fails, writing nothing, with ErrWrongExpectedVersion when a
	// record's Version is not its stream's next version, with
	// ErrDuplicateEvent when an id is already stored, and with
	// ErrInvalidEvent when a record is malformed or its RecordedAt is before
	// the last stored event's (RecordedAt never decreases along the log).
	Import(ctx context.Context, records []Record) error
}

// ValidateImport checks records the way ValidateAppend checks an append
// (each record as a one-event append to its stream), plus what only imports
// have: RecordedAt set, UTC, microseconds, and never decreasing.
func ValidateImport(records []Record, maxSize int) error {
	for i, r := range records {
		e := EventData{ID: r.ID, Type: r.Type, Data: r.Data, Metadata: r.Metadata}
		if err := ValidateAppend(r.Stream, Exact(r.Version), []EventData{e}, maxSize); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if r.RecordedAt.IsZero() || !r.RecordedAt.Equal(r.RecordedAt.UTC().Truncate(time.Microsecond)) {
			return fmt.Errorf("%w: record %d (%s): RecordedAt %v is not a UTC time in microseconds", ErrInvalidEvent, i, r.ID, r.RecordedAt)
		}
		if i > 0 && r.RecordedAt.Before(records[i-1].RecordedAt) {
			return fmt.Errorf("%w: record %d (%s): RecordedAt %v is before the previous record's %v", ErrInvalidEvent, i, r.ID, r.RecordedAt, records[i-1].RecordedAt)
		}
	}
	return nil
}

// ImportExpected is the expected version under which a record at version v
// continues its stream: NoStream for the first event, else Exact(v-1).
func ImportExpected(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return Exact(v - 1)
}
