// Package reactortest holds what tests of reactors share: a settable
// clock and an Appender that is the ledger's write path in small, so that
// reactor packages (which may not import adapters/ledger) are tested
// against the customer aggregate's decisions.
package reactortest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/reactor"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Set moves the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// Fold returns customer's aggregate folded from the store (with each
// event's occurred-at) and the ids of its stored events.
func Fold(ctx context.Context, s eventstore.Store, customer uuid.UUID) (*domain.Customer, map[uuid.UUID]bool, error) {
	c := domain.NewCustomer(customer)
	ids := map[uuid.UUID]bool{}
	recs, err := s.ReadStream(ctx, domain.StreamID(customer), eventstore.ReadStreamOptions{Limit: 100_000})
	if errors.Is(err, eventstore.ErrNotFound) {
		return c, ids, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, r := range recs {
		e, err := projections.Envelope(r)
		if err != nil {
			return nil, nil, err
		}
		c.ApplyAt(e.Event, e.Metadata.OccurredAt)
		ids[r.ID] = true
	}
	return c, ids, nil
}

// Appender is the ledger's write path in small: emissions whose ids are
// stored already are skipped (a replay); the others are validated (with
// Now, when set), decided one after the other against the customer's
// history at their occurred-at (domain.Customer.CheckAt: a refusal wraps
// domain.ErrRejected) and appended together.
type Appender struct {
	Store eventstore.Store
	// Now validates the metadata's occurred-at against a clock; nil skips.
	Now func() time.Time
}

// Append implements reactor.Appender.
func (a Appender) Append(ctx context.Context, customer uuid.UUID, events ...reactor.Emitted) error {
	c, ids, err := Fold(ctx, a.Store, customer)
	if err != nil {
		return err
	}
	var data []eventstore.EventData
	for _, e := range events {
		if ids[e.ID] {
			continue
		}
		if a.Now != nil {
			if err := e.Metadata.Validate(a.Now()); err != nil {
				return err
			}
		}
		if err := c.CheckAt(e.Event, e.Metadata.OccurredAt); err != nil {
			return err
		}
		c.ApplyAt(e.Event, e.Metadata.OccurredAt)
		typ, v, raw, err := domain.Encode(e.Event)
		if err != nil {
			return err
		}
		md := eventstore.Metadata(e.Metadata)
		md.SchemaVersion = v
		data = append(data, eventstore.EventData{ID: e.ID, Type: typ, Data: raw, Metadata: md})
	}
	if len(data) == 0 {
		return nil
	}
	_, err = a.Store.Append(ctx, domain.StreamID(customer), eventstore.Any, data...)
	if errors.Is(err, eventstore.ErrDuplicateEvent) {
		return nil
	}
	return err
}

// Status returns the status of e's first reactor.
func Status(t testing.TB, e *reactor.Engine) reactor.Status {
	t.Helper()
	st, err := e.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

// WaitFor polls cond for up to 10 s, failing the test with what.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Settle waits until e's first reactor has committed the whole log of s
// without an error, then lets a few timer rounds pass.
func Settle(t testing.TB, s eventstore.Store, e *reactor.Engine) {
	t.Helper()
	head, err := s.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "checkpoint at head", func() bool { st := Status(t, e); return st.Checkpoint >= head && st.Error == "" })
	time.Sleep(150 * time.Millisecond)
}

// Add appends e to customer's stream directly (no decision), at the
// occurred-at at, by a test agent, and returns its id.
func Add(t testing.TB, s eventstore.Store, customer uuid.UUID, at time.Time, e domain.Event) uuid.UUID {
	t.Helper()
	typ, v, data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	md := eventstore.Metadata{OccurredAt: at, Actor: "user:agent-7", Channel: "web", SchemaVersion: v}
	if _, err := s.Append(context.Background(), domain.StreamID(customer), eventstore.Any, eventstore.EventData{ID: id, Type: typ, Data: data, Metadata: md}); err != nil {
		t.Fatal(err)
	}
	return id
}
