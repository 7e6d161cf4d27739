package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/broker/brokertest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
)

// transport is one watermill backend the scenarios run on, the way
// watermill's own tests.TestPubSub runs every backend.
type transport struct {
	name string
	// new returns a publisher and a subscriber on one broker; each hands
	// messages to a single consumer in publish order.
	new func(t *testing.T) (message.Publisher, message.Subscriber)
}

var transports = []transport{
	{name: "gochannel", new: func(t *testing.T) (message.Publisher, message.Subscriber) {
		// BlockPublishUntilSubscriberAck keeps publish order: without it
		// gochannel hands each message to the subscriber on its own
		// goroutine.
		g := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, nil)
		t.Cleanup(func() { _ = g.Close() })
		return g, g
	}},
	{name: "nats-jetstream", new: func(t *testing.T) (message.Publisher, message.Subscriber) {
		return brokertest.NATS(t, brokertest.NATSOptions{})
	}},
	{name: "rabbitmq", new: func(t *testing.T) (message.Publisher, message.Subscriber) {
		return brokertest.AMQP(t)
	}},
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// register appends a customer's registration the way the HTTP API would.
func register(t *testing.T, store ledger.Store, name string) uuid.UUID {
	t.Helper()
	id := uuid.New()
	_, err := ledger.New(store).Append(context.Background(), domain.RoleSystem, id, eventstore.NoStream, ledger.Touchpoint{
		Event:    domain.CustomerRegistered{CustomerID: id, Name: name, Country: "ES"},
		Metadata: domain.Metadata{OccurredAt: time.Now().Add(-time.Hour), Actor: "user:marta"},
	})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return id
}

func stream(t *testing.T, store eventstore.Store, customer uuid.UUID) []eventstore.Record {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), domain.StreamID(customer), eventstore.ReadStreamOptions{})
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return recs
}

func all(t *testing.T, store eventstore.Store) []eventstore.Record {
	t.Helper()
	recs, err := store.ReadAll(context.Background(), eventstore.ReadAllOptions{Limit: 100_000})
	if err != nil {
		t.Fatalf("read all: %v", err)
	}
	return recs
}

func countTypes(recs []eventstore.Record) map[string]int {
	n := map[string]int{}
	for _, r := range recs {
		n[r.Type]++
	}
	return n
}

// lookupMap is an identity read model that knows only what the test puts
// in it; empty, it is a read model lagging as far as it can.
type lookupMap struct {
	mu sync.Mutex
	m  map[string]uuid.UUID
}

func (l *lookupMap) Lookup(_ context.Context, kind domain.IdentifierKind, value string) (uuid.UUID, error) {
	norm, err := domain.NormalizeIdentifier(kind, value)
	if err != nil {
		return uuid.Nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if id, ok := l.m[string(kind)+":"+norm]; ok {
		return id, nil
	}
	return uuid.Nil, projections.ErrNotFound
}

// flakyStore fails the first failures appends as an unavailable store
// would, then behaves.
type flakyStore struct {
	eventstore.Store
	failures atomic.Int64
	appends  atomic.Int64
}

var errUnavailable = errors.New("store unavailable (injected)")

func (s *flakyStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.appends.Add(1)
	if s.failures.Add(-1) >= 0 {
		return eventstore.AppendResult{}, errUnavailable
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

// testLogger writes to the test's output, shown only for failures and -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newStore(t *testing.T) *memstore.Store {
	s := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = s.Close() })
	return s
}
