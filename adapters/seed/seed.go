package seed

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// Appender is what Seed needs of an event store (every eventstore.Store is
// one).
type Appender interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error)
}

// Progress reports a seeding run.
type Progress struct {
	Customers int
	Events    int
	Elapsed   time.Duration
	// Done is set on the last report.
	Done bool
}

// EventsPerSecond is the append rate so far.
func (p Progress) EventsPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// Summary is what a seeding run wrote.
type Summary struct {
	Customers int
	Events    int
	Elapsed   time.Duration
	// Sample is a customer worth looking at: the busiest among the first
	// hundred ordinary ones (a demo's `cxledger view`).
	Sample uuid.UUID
	// Heavy is the key account of Config.HeavyEvents (uuid.Nil without).
	Heavy uuid.UUID
	// HeavyEvents is the heavy account's event count.
	HeavyEvents int
}

// EventsPerSecond is the run's append rate.
func (s Summary) EventsPerSecond() float64 {
	return Progress{Events: s.Events, Elapsed: s.Elapsed}.EventsPerSecond()
}

// Seed generates cfg's history and appends it to store: each customer's
// stream in appends of up to cfg.ChunkEvents events, the first with
// NoStream and each next one at the exact version the previous one ended
// at, from cfg.Concurrency concurrent appenders (a group-committing store
// folds them into few commits). Histories are generated on cfg.Generators
// goroutines but handed out in customer order, so that MaxEvents cuts the
// same customer every time.
//
// Seeding the same configuration again is an idempotent retry: the store
// recognises the same event ids and writes nothing. progress (may be nil)
// is called every cfg.ProgressEvery and once at the end. Import writes the
// same events through a store's bulk import path instead, in few large
// atomic calls.
func Seed(ctx context.Context, store Appender, cfg Config, progress func(Progress)) (Summary, error) {
	g, err := NewGenerator(cfg)
	if err != nil {
		return Summary{}, err
	}
	cfg = g.Config()
	m := newMeter(progress)

	var picks Summary
	work := make(chan History, 4*cfg.Concurrency)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		defer close(work)
		var err error
		picks, err = g.inOrder(ctx, func(h History) error {
			select {
			case work <- h:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		return err
	})
	for range cfg.Concurrency {
		eg.Go(func() error {
			for h := range work {
				if err := appendHistory(ctx, store, h, cfg.ChunkEvents, &m.events); err != nil {
					return err
				}
				m.customers.Add(1)
			}
			return nil
		})
	}
	return m.wait(eg, cfg.ProgressEvery, &picks)
}

// appendHistory appends one customer's stream chunk by chunk at exact
// versions: a conflict means someone else writes the stream, which a seed
// must not paper over.
func appendHistory(ctx context.Context, store Appender, h History, chunk int, events *atomic.Int64) error {
	expected := eventstore.NoStream
	for from := 0; from < len(h.Events); from += chunk {
		batch := h.Events[from:min(from+chunk, len(h.Events))]
		res, err := store.Append(ctx, h.Stream, expected, batch...)
		if err != nil {
			if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				return fmt.Errorf("customer %d (%s) already has other events (seed an empty store, or the same seed again): %w", h.Index, h.Customer, err)
			}
			return fmt.Errorf("customer %d (%s): %w", h.Index, h.Customer, err)
		}
		expected = eventstore.Exact(res.Version)
		events.Add(int64(len(batch)))
	}
	return nil
}
