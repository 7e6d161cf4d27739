// Package memstore is an in-memory eventstore.Store: a fast, dependency-free
// double for projection and application tests. It keeps the whole log in
// memory and loses it when the process ends, so it is no production store.
//
// It behaves exactly like the durable backends, because it uses the same
// shared helpers for validation, expected versions, idempotent retries and
// subscriptions, and it passes the conformance suite eventstore/storetest
// with DurableIdempotency: retries are recognised for the life of the store.
//
// It also keeps, in memory, the Merkle tree over the log that
// eventstore/notary maintains (merkle.go), and takes records as they are
// (Import), so that tests of tamper evidence and of migrations can use it.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

// Config configures a Store. The zero Config is ready to use.
type Config struct {
	// MaxEventSize is the limit on one event (eventstore.EventData.Size);
	// 0 means eventstore.DefaultMaxEventSize.
	MaxEventSize int
	// Now is the store clock for RecordedAt; nil means eventstore.Now.
	// Readings are converted to UTC microseconds and never go back: a
	// reading earlier than the last one is replaced by the last one, so
	// RecordedAt never decreases with position.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.MaxEventSize <= 0 {
		c.MaxEventSize = eventstore.DefaultMaxEventSize
	}
	if c.Now == nil {
		c.Now = eventstore.Now
	}
}

// Store is an in-memory event store. Create it with New; it is safe for
// concurrent use. Appends are serialised by one lock; reads share it.
type Store struct {
	cfg Config

	mu       sync.RWMutex
	log      []eventstore.Record // log[i] has position i+1
	streams  map[string][]int    // stream -> indexes into log, by version
	ids      map[uuid.UUID]int   // event id -> index into log
	lastTime time.Time
	isClosed bool

	wake      eventstore.Signal
	closed    chan struct{}
	closeOnce sync.Once

	// tree holds the Merkle tree's stored hashes (merkle.go), under a lock
	// of its own so that the notary never holds up appends.
	tree tree
}

var _ eventstore.Store = (*Store)(nil)

// New returns an empty store.
func New(cfg Config) *Store {
	cfg.setDefaults()
	return &Store{
		cfg:     cfg,
		streams: make(map[string][]int),
		ids:     make(map[uuid.UUID]int),
		closed:  make(chan struct{}),
	}
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := s.usable(ctx); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w", stream, err)
	}
	if err := eventstore.ValidateAppend(stream, expected, events, s.cfg.MaxEventSize); err != nil {
		return eventstore.AppendResult{}, err
	}

	s.mu.Lock()
	res, err := s.appendLocked(stream, expected, events)
	s.mu.Unlock()
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	s.wake.Notify()
	return res, nil
}

func (s *Store) appendLocked(stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if s.isClosed {
		return eventstore.AppendResult{}, fmt.Errorf("append to %q: %w", stream, eventstore.ErrClosed)
	}
	idx := s.streams[stream]
	current := int64(len(idx)) - 1

	stored := make([]*eventstore.Record, len(events))
	for i, e := range events {
		if at, ok := s.ids[e.ID]; ok {
			r := s.log[at]
			stored[i] = &r
		}
	}
	res, retry, err := eventstore.ResolveRetry(stream, expected, current, events, stored)
	if err != nil || retry {
		return res, err
	}
	if err := eventstore.CheckExpected(stream, expected, current); err != nil {
		return eventstore.AppendResult{}, err
	}

	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	if now.Before(s.lastTime) {
		now = s.lastTime
	}
	s.lastTime = now
	for i, e := range events {
		at := len(s.log)
		s.log = append(s.log, eventstore.Record{
			ID:         e.ID,
			Stream:     stream,
			Type:       e.Type,
			Version:    uint64(current + 1 + int64(i)),
			Position:   uint64(at + 1),
			RecordedAt: now,
			Data:       bytes.Clone(e.Data),
			Metadata:   e.Metadata.Normalize(),
		})
		idx = append(idx, at)
		s.ids[e.ID] = at
	}
	s.streams[stream] = idx
	return eventstore.AppendResult{Version: uint64(len(idx) - 1), Position: uint64(len(s.log))}, nil
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	if err := s.usable(ctx); err != nil {
		return nil, fmt.Errorf("read stream %q: %w", stream, err)
	}
	limit := limitOf(opts.Limit)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.isClosed {
		return nil, fmt.Errorf("read stream %q: %w", stream, eventstore.ErrClosed)
	}
	idx := s.streams[stream]
	if len(idx) == 0 {
		return nil, fmt.Errorf("read stream %q: %w", stream, eventstore.ErrNotFound)
	}
	n := uint64(len(idx))
	var out []eventstore.Record
	switch {
	case !opts.Backwards:
		for v := opts.From; v < n && len(out) < limit; v++ {
			out = append(out, s.record(idx[v]))
		}
	default:
		from := opts.From
		if from == eventstore.FromEnd {
			from = n - 1
		}
		if from >= n {
			return nil, nil // past the end
		}
		for v := int64(from); v >= 0 && len(out) < limit; v-- {
			out = append(out, s.record(idx[v]))
		}
	}
	return out, nil
}

// ReadAll implements eventstore.Store. Appends commit whole under the lock,
// so every position read is final and no smaller one can commit later.
func (s *Store) ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	if err := s.usable(ctx); err != nil {
		return nil, fmt.Errorf("read all after %d: %w", opts.After, err)
	}
	limit := limitOf(opts.Limit)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.isClosed {
		return nil, fmt.Errorf("read all after %d: %w", opts.After, eventstore.ErrClosed)
	}
	var out []eventstore.Record
	for i := opts.After; i < uint64(len(s.log)) && len(out) < limit; i++ {
		if opts.Filter.Match(s.log[i]) {
			out = append(out, s.record(int(i)))
		}
	}
	return out, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, fmt.Errorf("head: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.isClosed {
		return 0, fmt.Errorf("head: %w", eventstore.ErrClosed)
	}
	return uint64(len(s.log)), nil
}

// Subscribe implements eventstore.Store with eventstore.Follow: catch-up
// and live delivery read the log the same way.
func (s *Store) Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error {
	if err := s.usable(ctx); err != nil {
		return fmt.Errorf("subscribe after %d: %w", opts.After, err)
	}
	return eventstore.Follow(ctx, eventstore.FollowConfig{
		Read:   s.ReadAll,
		Head:   s.Head,
		Wake:   &s.wake,
		Closed: s.closed,
	}, opts, handle)
}

// Close ends every subscription with eventstore.ErrClosed and makes later
// calls fail with it. Closing twice is harmless and returns nil. The events
// are dropped with the store.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.isClosed = true
		s.mu.Unlock()
		close(s.closed)
	})
	return nil
}

// usable returns ctx's error or ErrClosed, the checks every call starts with.
func (s *Store) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return eventstore.ErrClosed
	default:
		return nil
	}
}

// record returns a copy of log[i] that the caller may change freely.
func (s *Store) record(i int) eventstore.Record {
	r := s.log[i]
	r.Data = bytes.Clone(r.Data)
	return r
}

func limitOf(limit int) int {
	if limit <= 0 {
		return eventstore.DefaultReadLimit
	}
	return limit
}
