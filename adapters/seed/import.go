package seed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"golang.org/x/sync/errgroup"
)

// Importer is what Import needs of an event store: its bulk path,
// eventstore.Importer, which boltstore, pgstore and memstore implement.
type Importer interface {
	Import(ctx context.Context, records []eventstore.Record) error
}

// batch is the records of one Import call: whole customers in customer
// order, each in version order, but for a customer longer than the cap,
// which is split over consecutive batches.
type batch struct {
	records []eventstore.Record
	// customers counts the customers whose last record is in the batch:
	// they are written once the batch is.
	customers int
	// first and last are the customer indices the batch holds, for errors.
	first, last int
}

// Import generates the same history as Seed for the same cfg (the same
// customers, events, MaxEvents cut and Summary) and bulk-loads it through
// the store's import path instead of appending it: Import calls of at most
// cfg.ImportEvents records, one at a time, in customer order and within a
// customer in version order, from version 0. Generating the next batch
// (on cfg.Generators goroutines) overlaps with importing the previous one.
//
// Every record of a batch is stamped with the same RecordedAt, the clock
// when the batch is handed to the store (UTC, in microseconds), never
// before the previous batch's: the log's RecordedAt never decreases, as
// the import path requires.
//
// Import loads a store once: unlike Seed it is no idempotent retry, since
// the store refuses the records it already holds (eventstore.ErrDuplicateEvent,
// or ErrWrongExpectedVersion when the refusal is decided by the stream's
// version first), in an atomic Import call that writes nothing. A run that
// failed half-way leaves the batches imported before the failure behind;
// import into a fresh store again.
// progress (may be nil) is called every cfg.ProgressEvery and once at the
// end.
func Import(ctx context.Context, store Importer, cfg Config, progress func(Progress)) (Summary, error) {
	g, err := NewGenerator(cfg)
	if err != nil {
		return Summary{}, err
	}
	cfg = g.Config()
	m := newMeter(progress)

	// One batch waits in the channel while the next is filled: the store
	// always has the next batch ready when it is done with one.
	batches := make(chan batch, 1)
	eg, ctx := errgroup.WithContext(ctx)
	var picks Summary
	eg.Go(func() error {
		defer close(batches)
		bt := &batcher{limit: cfg.ImportEvents, out: batches}
		var err error
		if picks, err = g.inOrder(ctx, func(h History) error { return bt.add(ctx, h) }); err != nil {
			return err
		}
		return bt.flush(ctx)
	})
	eg.Go(func() error {
		var last time.Time
		for b := range batches {
			// The store clock's part: one reading per batch, clamped so
			// that a clock stepping back cannot make the log's RecordedAt
			// decrease (which the store would refuse).
			at := time.Now().UTC().Truncate(time.Microsecond)
			if at.Before(last) {
				at = last
			}
			last = at
			for i := range b.records {
				b.records[i].RecordedAt = at
			}
			if err := store.Import(ctx, b.records); err != nil {
				what := fmt.Sprintf("import of %d records of customers %d to %d", len(b.records), b.first, b.last)
				if errors.Is(err, eventstore.ErrDuplicateEvent) || errors.Is(err, eventstore.ErrWrongExpectedVersion) {
					return fmt.Errorf("%s: the store already holds their streams (Import loads an empty store once; Seed retries idempotently): %w", what, err)
				}
				return fmt.Errorf("%s: %w", what, err)
			}
			m.events.Add(int64(len(b.records)))
			m.customers.Add(int64(b.customers))
		}
		return nil
	})
	return m.wait(eg, cfg.ProgressEvery, &picks)
}

// batcher packs histories into batches of at most limit records and sends
// each full one on out.
type batcher struct {
	limit int
	out   chan<- batch
	b     batch
}

// flush sends the batch being filled, if it holds anything.
func (bt *batcher) flush(ctx context.Context) error {
	if len(bt.b.records) == 0 {
		return nil
	}
	select {
	case bt.out <- bt.b:
	case <-ctx.Done():
		return ctx.Err()
	}
	bt.b = batch{}
	return nil
}

// add appends h's records, in version order from version 0.
func (bt *batcher) add(ctx context.Context, h History) error {
	// Whole customers per batch where they fit: an atomic Import then
	// never leaves a stream half-written.
	if len(bt.b.records) > 0 && len(bt.b.records)+len(h.Events) > bt.limit {
		if err := bt.flush(ctx); err != nil {
			return err
		}
	}
	for v := 0; v < len(h.Events); {
		if len(bt.b.records) == bt.limit {
			if err := bt.flush(ctx); err != nil {
				return err
			}
		}
		if bt.b.records == nil {
			bt.b.records = make([]eventstore.Record, 0, bt.limit)
			bt.b.first = h.Index
		}
		n := min(len(h.Events)-v, bt.limit-len(bt.b.records))
		for k, e := range h.Events[v : v+n] {
			bt.b.records = append(bt.b.records, eventstore.Record{
				ID: e.ID, Stream: h.Stream, Type: e.Type, Version: uint64(v + k), Data: e.Data, Metadata: e.Metadata,
			})
		}
		v += n
		bt.b.last = h.Index
	}
	bt.b.customers++
	return nil
}
