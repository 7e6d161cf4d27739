package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/adapters/broker/brokertest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
)

// appendNotes appends n notes spread round-robin over customers.
func appendNotes(t *testing.T, store ledger.Store, customers []uuid.UUID, n int) {
	t.Helper()
	l := ledger.New(store)
	for i := range n {
		c := customers[i%len(customers)]
		_, err := l.Append(context.Background(), domain.RoleSystem, c, eventstore.Any, ledger.Touchpoint{
			Event:    domain.NoteAdded{Body: fmt.Sprintf("note %d — «ñ» 🧾", i)},
			Metadata: domain.Metadata{OccurredAt: time.Now(), Actor: "user:marta", Channel: "web"},
		})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
}

// received indexes what a consumer got: first deliveries in order, and
// how often each event id came.
type received struct {
	first []*message.Message
	count map[string]int
}

func index(msgs []*message.Message) received {
	r := received{count: map[string]int{}}
	for _, m := range msgs {
		if r.count[m.UUID] == 0 {
			r.first = append(r.first, m)
		}
		r.count[m.UUID]++
	}
	return r
}

func position(t *testing.T, m *message.Message) uint64 {
	t.Helper()
	p, err := strconv.ParseUint(m.Metadata.Get(broker.MetadataPosition), 10, 64)
	if err != nil {
		t.Fatalf("message %s: position metadata: %v", m.UUID, err)
	}
	return p
}

// checkDelivery checks that the consumer received every stored event, with
// the record JSON as payload and the event id as uuid, and each customer's
// events in stream order on first delivery.
func checkDelivery(t *testing.T, store eventstore.Store, got received) {
	t.Helper()
	byID := map[string]eventstore.Record{}
	for _, r := range all(t, store) {
		byID[r.ID.String()] = r
	}
	if len(got.first) != len(byID) {
		t.Fatalf("received %d distinct events, stored %d", len(got.first), len(byID))
	}
	next := map[string]uint64{}
	for _, m := range got.first {
		rec, ok := byID[m.UUID]
		if !ok {
			t.Fatalf("received unknown event %s", m.UUID)
		}
		want, _ := rec.MarshalJSON()
		if !bytes.Equal(m.Payload, want) {
			t.Fatalf("payload of %s:\n%s\nwant\n%s", m.UUID, m.Payload, want)
		}
		if m.Metadata.Get(broker.MetadataEventID) != m.UUID || m.Metadata.Get(broker.MetadataStream) != rec.Stream ||
			m.Metadata.Get(broker.MetadataType) != rec.Type || m.Metadata.Get(broker.MetadataVersion) != strconv.FormatUint(rec.Version, 10) ||
			position(t, m) != rec.Position {
			t.Fatalf("metadata of %s: %v", m.UUID, m.Metadata)
		}
		if rec.Version != next[rec.Stream] {
			t.Fatalf("stream %s: received version %d before version %d", rec.Stream, rec.Version, next[rec.Stream])
		}
		next[rec.Stream]++
	}
}

func TestRelay(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			t.Run("PublishesEveryEventInOrder", func(t *testing.T) { t.Parallel(); testRelayInOrder(t, tr) })
			t.Run("OutageAndRestartLoseNothing", func(t *testing.T) { t.Parallel(); testRelayOutage(t, tr) })
		})
	}
}

func startRelay(t *testing.T, cfg broker.RelayConfig) (stop func()) {
	t.Helper()
	cfg.Logger = testLogger(t)
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	}
	r, err := broker.NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func testRelayInOrder(t *testing.T, tr transport) {
	store := newStore(t)
	var customers []uuid.UUID
	for i := range 5 {
		customers = append(customers, register(t, store, fmt.Sprintf("Client %d", i)))
	}
	appendNotes(t, store, customers, 40) // history, for the catch-up

	pub, sub := tr.new(t)
	topic := brokertest.Topic(t, "events")
	col := brokertest.Collect(t, sub, topic)
	cp := broker.BackendCheckpoint{Backend: projections.NewMemory(), Namespace: "broker_relay"}
	startRelay(t, broker.RelayConfig{Log: store, Checkpoint: cp, Publisher: pub, Topic: broker.FixedTopic(topic), BatchSize: 7})
	appendNotes(t, store, customers, 25) // live

	head, _ := store.Head(context.Background())
	eventually(t, 30*time.Second, "every event on the broker", func() bool { return len(index(col.All()).first) == int(head) })
	checkDelivery(t, store, index(col.All()))
	eventually(t, 10*time.Second, "the checkpoint at the head", func() bool {
		p, err := cp.Load(context.Background())
		return err == nil && p == head
	})
}

// flakyPublisher fails every publish while down, and records the positions
// it got confirmed.
type flakyPublisher struct {
	message.Publisher
	down      atomic.Bool
	mu        sync.Mutex
	confirmed map[uint64]bool
}

func (p *flakyPublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.down.Load() {
		return errors.New("broker unreachable (injected)")
	}
	if err := p.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		pos, _ := strconv.ParseUint(m.Metadata.Get(broker.MetadataPosition), 10, 64)
		p.confirmed[pos] = true
	}
	return nil
}

func (p *flakyPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.confirmed)
}

// guardedCheckpoint fails the test if the relay ever saves a position with
// an unconfirmed event at or before it.
type guardedCheckpoint struct {
	broker.Checkpoint
	t     *testing.T
	store *memstore.Store
	pub   *flakyPublisher
}

func (c guardedCheckpoint) Save(ctx context.Context, position uint64) error {
	recs, err := c.store.ReadAll(ctx, eventstore.ReadAllOptions{Limit: int(position)})
	if err != nil {
		return err
	}
	c.pub.mu.Lock()
	for _, r := range recs {
		if r.Position <= position && !c.pub.confirmed[r.Position] {
			c.t.Errorf("checkpoint %d saved ahead of unpublished event at %d", position, r.Position)
		}
	}
	c.pub.mu.Unlock()
	return c.Checkpoint.Save(ctx, position)
}

func testRelayOutage(t *testing.T, tr transport) {
	store := newStore(t)
	customers := []uuid.UUID{register(t, store, "Ana"), register(t, store, "Zoë"), register(t, store, "Łukasz")}
	appendNotes(t, store, customers, 30)

	raw, sub := tr.new(t)
	pub := &flakyPublisher{Publisher: raw, confirmed: map[uint64]bool{}}
	topic := brokertest.Topic(t, "events")
	col := brokertest.Collect(t, sub, topic)
	backend := projections.NewMemory()
	cp := guardedCheckpoint{Checkpoint: broker.BackendCheckpoint{Backend: backend, Namespace: "broker_relay"}, t: t, store: store, pub: pub}
	cfg := broker.RelayConfig{Log: store, Checkpoint: cp, Publisher: pub, Topic: broker.FixedTopic(topic), BatchSize: 4}

	stop := startRelay(t, cfg)
	eventually(t, 20*time.Second, "some events published", func() bool { return pub.count() >= 10 })

	// The broker goes down: appends carry on at full speed.
	pub.down.Store(true)
	start := time.Now()
	appendNotes(t, store, customers, 30)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("30 appends took %s with the broker down", d)
	}
	time.Sleep(50 * time.Millisecond) // let the relay fail a few times

	// The relay is stopped mid-way, with events unpublished.
	stop()
	stoppedAt, err := cp.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	head, _ := store.Head(context.Background())
	if stoppedAt >= head {
		t.Fatalf("checkpoint %d reached the head %d while the broker was down", stoppedAt, head)
	}

	// The broker is back and a new relay resumes from the checkpoint.
	pub.down.Store(false)
	startRelay(t, cfg)
	appendNotes(t, store, customers, 10)
	head, _ = store.Head(context.Background())
	eventually(t, 30*time.Second, "every event on the broker", func() bool { return len(index(col.All()).first) == int(head) })
	got := index(col.All())
	checkDelivery(t, store, got)
	for _, m := range got.first {
		if got.count[m.UUID] > 1 && position(t, m) <= stoppedAt {
			t.Errorf("event at %d published %d times though the checkpoint %d covered it", position(t, m), got.count[m.UUID], stoppedAt)
		}
	}
	eventually(t, 10*time.Second, "the checkpoint at the head", func() bool {
		p, err := cp.Load(context.Background())
		return err == nil && p == head
	})
}

func TestNewRelayValidates(t *testing.T) {
	t.Parallel()
	_, err := broker.NewRelay(broker.RelayConfig{})
	if err == nil {
		t.Fatal("want an error for an empty config")
	}
	for _, field := range []string{"Log", "Checkpoint", "Publisher", "Topic"} {
		if !bytes.Contains([]byte(err.Error()), []byte(field)) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

// TestRelayOneOwnerAcrossProcesses runs two relays with leases on one
// backend, as two serve processes on one PostgreSQL schema would: only the
// lease holder publishes, so every event reaches the broker once; when it
// shuts down the other takes over from the checkpoint and nothing is lost
// or published twice.
func TestRelayOneOwnerAcrossProcesses(t *testing.T) {
	t.Parallel()
	tr := transports[0]
	store := newStore(t)
	var customers []uuid.UUID
	for i := range 4 {
		customers = append(customers, register(t, store, fmt.Sprintf("Client %d", i)))
	}
	appendNotes(t, store, customers, 30)

	pub, sub := tr.new(t)
	topic := brokertest.Topic(t, "events")
	col := brokertest.Collect(t, sub, topic)
	backend := projections.NewMemory()
	cp := broker.BackendCheckpoint{Backend: backend, Namespace: "broker_relay"}
	relay := func(owner string) func() {
		return startRelay(t, broker.RelayConfig{Log: store, Checkpoint: cp, Publisher: pub, Topic: broker.FixedTopic(topic), BatchSize: 5,
			Leases: backend, Lease: projections.LeaseConfig{Owner: owner, TTL: 300 * time.Millisecond, Interval: 30 * time.Millisecond}})
	}
	stopA := relay("process-a")
	eventually(t, 10*time.Second, "the first relay owning the lease", func() bool {
		ls, _ := backend.ListLeases(context.Background())
		return len(ls) == 1 && ls[0].Owner == "process-a" && ls[0].Held
	})
	relay("process-b")
	appendNotes(t, store, customers, 20)
	head, _ := store.Head(context.Background())
	eventually(t, 30*time.Second, "every event on the broker", func() bool { return len(index(col.All()).first) == int(head) })
	eventually(t, 10*time.Second, "the checkpoint at the head", func() bool {
		p, err := cp.Load(context.Background())
		return err == nil && p == head
	})

	stopA() // clean shutdown: released at once
	appendNotes(t, store, customers, 15)
	head, _ = store.Head(context.Background())
	eventually(t, 30*time.Second, "every event on the broker after the handover", func() bool { return len(index(col.All()).first) == int(head) })
	got := index(col.All())
	checkDelivery(t, store, got)
	for id, n := range got.count {
		if n != 1 {
			t.Errorf("event %s published %d times with two relays and a clean handover, want once", id, n)
		}
	}
	if ls, _ := backend.ListLeases(context.Background()); len(ls) != 1 || ls[0].Owner != "process-b" {
		t.Errorf("lease after the handover: %+v, want process-b", ls)
	}
}
