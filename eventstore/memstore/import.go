package memstore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

var _ eventstore.Importer = (*Store)(nil)

// Import implements eventstore.Importer: the records are appended as they
// are (ids, versions, RecordedAt kept), in the order given, all or none.
func (s *Store) Import(ctx context.Context, records []eventstore.Record) error {
	if len(records) == 0 {
		return nil
	}
	if err := s.usable(ctx); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := eventstore.ValidateImport(records, s.cfg.MaxEventSize); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	s.mu.Lock()
	err := s.importLocked(records)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.wake.Notify()
	return nil
}

// importLocked checks every record first, so that a rejection writes
// nothing, then appends them.
func (s *Store) importLocked(records []eventstore.Record) error {
	if s.isClosed {
		return fmt.Errorf("import: %w", eventstore.ErrClosed)
	}
	versions := make(map[string]int64)
	ids := make(map[uuid.UUID]bool, len(records))
	for i, r := range records {
		current, ok := versions[r.Stream]
		if !ok {
			current = int64(len(s.streams[r.Stream])) - 1
		}
		if err := eventstore.CheckExpected(r.Stream, eventstore.ImportExpected(r.Version), current); err != nil {
			return fmt.Errorf("import record %d (%s): %w", i, r.ID, err)
		}
		versions[r.Stream] = int64(r.Version)
		if _, stored := s.ids[r.ID]; stored || ids[r.ID] {
			return fmt.Errorf("import record %d: %w: %s", i, eventstore.ErrDuplicateEvent, r.ID)
		}
		ids[r.ID] = true
	}
	if records[0].RecordedAt.Before(s.lastTime) {
		return fmt.Errorf("import record 0 (%s): %w: RecordedAt %v is before the log's last %v", records[0].ID, eventstore.ErrInvalidEvent, records[0].RecordedAt, s.lastTime)
	}
	for _, r := range records {
		at := len(s.log)
		r.Position = uint64(at + 1)
		r.Data = bytes.Clone(r.Data)
		r.Metadata = r.Metadata.Normalize()
		s.log = append(s.log, r)
		s.streams[r.Stream] = append(s.streams[r.Stream], at)
		s.ids[r.ID] = at
	}
	s.lastTime = records[len(records)-1].RecordedAt
	return nil
}
