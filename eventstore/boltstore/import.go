package boltstore

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

var _ eventstore.Importer = (*Store)(nil)

// Import implements eventstore.Importer. The records go through the writer
// like an append, so they are numbered and committed in order with every
// other write, in one transaction and one fsync.
func (s *Store) Import(ctx context.Context, records []eventstore.Record) error {
	if len(records) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: import: %w", err)
	}
	if err := eventstore.ValidateImport(records, s.maxEvent); err != nil {
		return fmt.Errorf("boltstore: import: %w", err)
	}
	size := 0
	for i := range records {
		r := &records[i]
		size += encodedSize(r.Stream, &eventstore.EventData{ID: r.ID, Type: r.Type, Data: r.Data, Metadata: r.Metadata})
	}
	req := &appendReq{stream: records[0].Stream, imported: records, size: size, done: make(chan struct{})}
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return fmt.Errorf("boltstore: import: %w", eventstore.ErrClosed)
	}
	select {
	case s.queue <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return fmt.Errorf("boltstore: import: %w", ctx.Err())
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return fmt.Errorf("boltstore: import: %w", ctx.Err())
		}
		<-req.done
	}
	return req.err
}

// applyImport decides an import request inside the writer's transaction:
// first every check (so that a rejection writes nothing), then the writes.
func (w *batchWriter) applyImport(r *appendReq, next *uint64) (res eventstore.AppendResult, reqErr, fatal error) {
	versions := make(map[string]int64)
	ids := make(map[uuid.UUID]bool, len(r.imported))
	last := w.last
	for i := range r.imported {
		rec := &r.imported[i]
		current, ok := versions[rec.Stream]
		if !ok {
			v, err := streamVersion(w.b.streams.Cursor(), appendStreamPrefix(nil, rec.Stream))
			if err != nil {
				return res, nil, err
			}
			current = v
		}
		if err := eventstore.CheckExpected(rec.Stream, eventstore.ImportExpected(rec.Version), current); err != nil {
			return res, fmt.Errorf("boltstore: import record %d (%s): %w", i, rec.ID, err), nil
		}
		versions[rec.Stream] = int64(rec.Version)
		if ids[rec.ID] || w.b.ids.Get(rec.ID[:]) != nil {
			return res, fmt.Errorf("boltstore: import record %d: %w: %s", i, eventstore.ErrDuplicateEvent, rec.ID), nil
		}
		ids[rec.ID] = true
		if rec.RecordedAt.Before(last) {
			return res, fmt.Errorf("boltstore: import record %d (%s): %w: RecordedAt %v is before the log's last %v", i, rec.ID, eventstore.ErrInvalidEvent, rec.RecordedAt, last), nil
		}
		last = rec.RecordedAt
	}
	for i := range r.imported {
		rec := r.imported[i]
		rec.Metadata = rec.Metadata.Normalize()
		*next++
		start := len(w.arena)
		w.arena = appendU64(w.arena, *next)
		posVal := w.cut(start)
		w.arena = encodeRecord(w.arena, &rec)
		if err := w.b.events.Put(posVal, w.cut(start+8)); err != nil {
			return res, nil, fmt.Errorf("put event %d: %w", *next, err)
		}
		w.key = appendU64(appendStreamPrefix(w.key[:0], rec.Stream), rec.Version)
		if err := w.b.streams.Put(w.key, posVal); err != nil {
			return res, nil, fmt.Errorf("put stream index: %w", err)
		}
		if err := w.b.ids.Put(rec.ID[:], posVal); err != nil {
			return res, nil, fmt.Errorf("put event id: %w", err)
		}
	}
	w.last = last
	return eventstore.AppendResult{Position: *next}, nil, nil
}
