package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// Broker states of an outagePublisher.
const (
	brokerUp   = iota // confirms every message
	brokerHung        // Publish blocks: a connection that neither answers nor fails
	brokerDown        // Publish fails at once
)

// outagePublisher is a broker as the relay sees it through an outage. It
// records the positions it confirmed, in order.
type outagePublisher struct {
	mu        sync.Mutex
	state     int
	resume    chan struct{} // closed when the broker stops hanging
	hung      int           // Publish calls blocked right now
	failures  int
	confirmed []uint64
}

func newOutagePublisher() *outagePublisher { return &outagePublisher{resume: make(chan struct{})} }

func (p *outagePublisher) set(state int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state == brokerHung && state != brokerHung:
		close(p.resume)
	case p.state != brokerHung && state == brokerHung:
		p.resume = make(chan struct{})
	}
	p.state = state
}

func (p *outagePublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.state == brokerHung {
		resume := p.resume
		p.hung++
		p.mu.Unlock()
		<-resume
		p.mu.Lock()
		p.hung--
	}
	if p.state == brokerDown {
		p.failures++
		return errors.New("broker unreachable (injected)")
	}
	for _, m := range msgs {
		pos, err := strconv.ParseUint(m.Metadata.Get(broker.MetadataPosition), 10, 64)
		if err != nil {
			return err
		}
		p.confirmed = append(p.confirmed, pos)
	}
	return nil
}

func (p *outagePublisher) Close() error { return nil }

// snapshot returns the confirmed positions, the calls blocked now and the
// failures so far.
func (p *outagePublisher) snapshot() (confirmed []uint64, hung, failures int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.confirmed), p.hung, p.failures
}

// timedAppends appends n single-event notes round-robin over customers,
// each within a bounded deadline, and returns every append's latency.
func timedAppends(t *testing.T, store eventstore.Store, customers []uuid.UUID, n int) []time.Duration {
	t.Helper()
	const bound = 2 * time.Second // a deadline, not a speed target
	lat := make([]time.Duration, 0, n)
	for i := range n {
		data, _ := json.Marshal(domain.NoteAdded{Body: fmt.Sprintf("note %d — «ñ» 🧾", i)})
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		began := time.Now()
		_, err := store.Append(ctx, domain.StreamID(customers[i%len(customers)]), eventstore.Any, eventstore.EventData{
			ID: uuid.New(), Type: domain.TypeNoteAdded, Data: data,
			Metadata: eventstore.Metadata{OccurredAt: time.Now(), Actor: "user:marta", Channel: "web", SchemaVersion: 1},
		})
		lat = append(lat, time.Since(began))
		cancel()
		if err != nil {
			t.Fatalf("append %d of %d: %v (bound %s)", i, n, err, bound)
		}
	}
	return lat
}

func latencies(d []time.Duration) string {
	d = slices.Clone(d)
	slices.Sort(d)
	at := func(p int) time.Duration { return d[min(len(d)-1, len(d)*p/100)] }
	return fmt.Sprintf("median %s, p99 %s, max %s", at(50), at(99), d[len(d)-1])
}

// TestRelayBrokerOutageDoesNotBlockAppends: the broker first hangs (every
// Publish blocks, as on a connection that neither answers nor fails), then
// fails fast, then recovers. Appends carry on throughout, each well within
// a fixed deadline, because the relay only reads the log and holds at most
// one batch; nothing is published while the broker is out, the checkpoint
// stays behind the unpublished events, and once the broker is back every
// event is published, in log order, none lost.
func TestRelayBrokerOutageDoesNotBlockAppends(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	var customers []uuid.UUID
	for i := range 20 {
		customers = append(customers, register(t, store, fmt.Sprintf("Client %d", i)))
	}
	pub := newOutagePublisher()
	cp := broker.BackendCheckpoint{Backend: projections.NewMemory(), Namespace: "broker_relay"}
	startRelay(t, broker.RelayConfig{Log: store, Checkpoint: cp, Publisher: pub, Topic: broker.FixedTopic("cxledger.events"), BatchSize: 50})
	// Cleanups run last-in first-out: the broker recovers before the relay
	// is stopped, which a hung Publish would otherwise prevent.
	t.Cleanup(func() { pub.set(brokerUp) })
	head := func() uint64 {
		h, err := store.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	published := func() int { c, _, _ := pub.snapshot(); return len(c) }

	normal := timedAppends(t, store, customers, 500)
	eventually(t, 20*time.Second, "the relay caught up", func() bool { return published() == int(head()) })

	// The broker hangs: the relay's next Publish blocks for good.
	pub.set(brokerHung)
	before := published()
	timedAppends(t, store, customers, 1)
	eventually(t, 20*time.Second, "the relay blocked in Publish", func() bool { _, hung, _ := pub.snapshot(); return hung == 1 })
	whileHung := timedAppends(t, store, customers, 2000)
	if n := published(); n != before {
		t.Fatalf("%d events published while the broker hung", n-before)
	}
	saved, err := cp.Load(context.Background())
	if err != nil || saved > uint64(before) {
		t.Fatalf("checkpoint %d (%v) past the %d published events", saved, err, before)
	}

	// The broker fails fast now: the blocked Publish fails, the relay
	// retries with backoff.
	pub.set(brokerDown)
	whileDown := timedAppends(t, store, customers, 1000)
	eventually(t, 20*time.Second, "the relay retrying", func() bool { _, _, f := pub.snapshot(); return f >= 3 })
	if n := published(); n != before {
		t.Fatalf("%d events published while the broker was down", n-before)
	}

	// The broker is back: everything is published, in order, none lost.
	pub.set(brokerUp)
	final := head()
	eventually(t, 30*time.Second, "every event published", func() bool { return published() >= int(final) })
	confirmed, _, failures := pub.snapshot()
	next, dups := uint64(1), 0
	for _, p := range confirmed {
		switch {
		case p == next:
			next++
		case p < next:
			dups++ // a republish, which at-least-once allows
		default:
			t.Fatalf("position %d published before %d: out of order or lost", p, next)
		}
	}
	if next != final+1 {
		t.Fatalf("published up to %d, the log ends at %d", next-1, final)
	}
	eventually(t, 10*time.Second, "the checkpoint at the head", func() bool {
		p, err := cp.Load(context.Background())
		return err == nil && p == final
	})
	t.Logf("append latency: broker up %s; broker hung %s; broker failing %s", latencies(normal), latencies(whileHung), latencies(whileDown))
	t.Logf("%d events published in order after the outage (%d failed publishes retried, %d duplicates)", final, failures, dups)
}
