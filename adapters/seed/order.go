package seed

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// generated is one customer's history as a generating goroutine delivers it.
type generated struct {
	h   History
	err error
}

// inOrder generates the configured customers on cfg.Generators goroutines
// and hands each history to deliver on the calling goroutine, in customer
// order, after the MaxEvents cut. Doing the cut and the summary's picks
// here, in that order, is what makes Seed and Import write the same events
// and name the same sample and heavy customers however the generation was
// spread. It returns the summary's Sample, Heavy and HeavyEvents and stops
// at the first error of deliver, of a generator or of ctx.
func (g *Generator) inOrder(ctx context.Context, deliver func(History) error) (Summary, error) {
	cfg := g.cfg
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Stopping early (MaxEvents reached, an error) must not leave the
	// generating goroutines behind: cancel, then wait for them.
	defer func() {
		cancel()
		wg.Wait()
	}()

	// Each customer gets a slot, queued in customer order before its job is
	// handed out: a generator fills the slot whenever it is done, and the
	// loop below waits for the slots one after the other. The queue's size
	// bounds how far generation runs ahead of delivery.
	workers := max(cfg.Generators, 1)
	type job struct {
		i    int
		slot chan generated
	}
	slots := make(chan chan generated, 4*workers)
	jobs := make(chan job, workers)
	wg.Go(func() {
		defer close(slots)
		defer close(jobs)
		for i := 0; cfg.Customers == 0 || i < cfg.Customers; i++ {
			slot := make(chan generated, 1) // a generator never waits for delivery
			select {
			case slots <- slot:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{i: i, slot: slot}:
			case <-ctx.Done():
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					j.slot <- generated{err: ctx.Err()}
					continue // stopping: drain without generating
				}
				h, err := g.Customer(j.i)
				j.slot <- generated{h: h, err: err}
			}
		})
	}

	var sum Summary
	var sampleEvents, total int
	for i := 0; ; i++ {
		if cfg.MaxEvents > 0 && total >= cfg.MaxEvents {
			break
		}
		var slot chan generated
		select {
		case s, ok := <-slots:
			if !ok {
				if err := ctx.Err(); err != nil {
					return Summary{}, err // the feeder stopped on cancellation
				}
				return finishPicks(sum), nil // every customer delivered
			}
			slot = s
		case <-ctx.Done():
			return Summary{}, ctx.Err()
		}
		var r generated
		select {
		case r = <-slot:
		case <-ctx.Done():
			return Summary{}, ctx.Err()
		}
		if r.err != nil {
			return Summary{}, r.err
		}
		h := r.h
		if cfg.MaxEvents > 0 && total+len(h.Events) > cfg.MaxEvents {
			h.Events = h.Events[:cfg.MaxEvents-total]
		}
		total += len(h.Events)
		switch {
		case h.Traits.Heavy:
			sum.Heavy, sum.HeavyEvents = h.Customer, len(h.Events)
		case i <= 100 && len(h.Events) > sampleEvents && !h.Traits.Forgotten:
			sum.Sample, sampleEvents = h.Customer, len(h.Events)
		}
		if err := deliver(h); err != nil {
			return Summary{}, err
		}
	}
	return finishPicks(sum), nil
}

// finishPicks falls back to the heavy account as the sample when no
// ordinary customer qualified (a log of the heavy account alone).
func finishPicks(sum Summary) Summary {
	if sum.Sample == uuid.Nil {
		sum.Sample = sum.Heavy
	}
	return sum
}

// meter counts what a seeding run wrote and reports it: every interval
// from a goroutine of its own, once more when the run is done.
type meter struct {
	start     time.Time
	customers atomic.Int64
	events    atomic.Int64
	progress  func(Progress)
}

func newMeter(progress func(Progress)) *meter {
	return &meter{start: time.Now(), progress: progress}
}

func (m *meter) report(done bool) {
	if m.progress != nil {
		m.progress(Progress{Customers: int(m.customers.Load()), Events: int(m.events.Load()), Elapsed: time.Since(m.start), Done: done})
	}
}

// tick reports every interval until the returned stop is called; stop
// returns once the last periodic report is over, so that the final one
// comes after it.
func (m *meter) tick(every time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				m.report(false)
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}

// wait waits for the run's goroutines, reporting progress every interval
// meanwhile and once more at the end, and returns the run's Summary with
// the picks its generator left (read only once the goroutines are done).
func (m *meter) wait(eg *errgroup.Group, every time.Duration, picks *Summary) (Summary, error) {
	stop := m.tick(every)
	err := eg.Wait()
	stop()
	if err != nil {
		return Summary{}, fmt.Errorf("seed: %w", err)
	}
	m.report(true)
	return m.summary(*picks), nil
}

// summary is the run's Summary: the customers and events written, the
// time taken, and picks' Sample and Heavy.
func (m *meter) summary(picks Summary) Summary {
	picks.Customers, picks.Events, picks.Elapsed = int(m.customers.Load()), int(m.events.Load()), time.Since(m.start)
	return picks
}
