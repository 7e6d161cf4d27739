package eventstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Signal wakes goroutines waiting for new events. It carries no data, so a
// slow or absent waiter costs nothing: waiters re-read the log themselves.
// The zero Signal is ready to use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns a channel that is closed at the next Notify. Take it before
// reading the log, then wait on it, so that no commit between the read and
// the wait is missed.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes every goroutine waiting on a channel from C.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// FollowConfig is what Follow needs from a backend.
type FollowConfig struct {
	// Read returns the next page of the global log (ReadAll).
	Read func(ctx context.Context, opts ReadAllOptions) ([]Record, error)
	// Head, when set, returns the last committed position (Store.Head). A
	// filtered subscription then moves past the events the filter skipped,
	// instead of scanning them again at every wake-up.
	Head func(ctx context.Context) (uint64, error)
	// Wake is closed, or signalled, when new events may have committed.
	Wake *Signal
	// Closed is closed when the store closes.
	Closed <-chan struct{}
	// Poll, when positive, re-reads the log that often even without a wake-up:
	// a safety net for backends whose notifications can be lost (a dropped
	// LISTEN connection), never the primary mechanism.
	Poll time.Duration
}

// Follow implements Store.Subscribe on top of ReadAll and a Signal: it reads
// pages after the last delivered position until the log is exhausted, then
// waits for a wake-up and reads again. Because every read starts after the
// last delivered position and ReadAll never passes an uncommitted position,
// each event is delivered exactly once and in order.
func Follow(ctx context.Context, cfg FollowConfig, opts SubscribeOptions, handle Handler) error {
	limit := opts.BatchSize
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	after := opts.After
	var poll <-chan time.Time
	if cfg.Poll > 0 {
		t := time.NewTicker(cfg.Poll)
		defer t.Stop()
		poll = t.C
	}
	filtered := len(opts.Filter.Types) > 0 && cfg.Head != nil
	fail := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("subscription after %d: %w", after, ctx.Err())
		}
		return fmt.Errorf("subscription after %d: %w", after, err)
	}
	for {
		wake := cfg.Wake.C()
		select {
		case <-cfg.Closed:
			return ErrClosed
		default:
		}
		// A filtered read that comes back short has scanned every event
		// committed before it started, so the head read just before it is a
		// safe place to resume from.
		var head uint64
		if filtered {
			h, err := cfg.Head(ctx)
			if err != nil {
				return fail(err)
			}
			head = h
		}
		page, err := cfg.Read(ctx, ReadAllOptions{After: after, Limit: limit, Filter: opts.Filter})
		if err != nil {
			return fail(err)
		}
		if len(page) > 0 {
			if err := handle(ctx, page); err != nil {
				return err
			}
			after = page[len(page)-1].Position
			if len(page) < limit {
				after = max(after, head)
			}
			continue
		}
		after = max(after, head)
		select {
		case <-ctx.Done():
			return fmt.Errorf("subscription after %d: %w", after, ctx.Err())
		case <-cfg.Closed:
			return ErrClosed
		case <-wake:
		case <-poll:
		}
	}
}
