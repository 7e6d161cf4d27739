package projections

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
)

// history appends realistic customer histories to an in-memory store,
// deterministically from a seed.
type history struct {
	t         testing.TB
	store     *memstore.Store
	rng       *rand.Rand
	customers []uuid.UUID
	tickets   map[uuid.UUID]uuid.UUID // customer -> open ticket
	at        time.Time
}

func newHistory(t testing.TB, seed uint64) *history {
	t.Helper()
	s := memstore.New(memstore.Config{})
	t.Cleanup(func() { s.Close() })
	return &history{t: t, store: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		tickets: map[uuid.UUID]uuid.UUID{}, at: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)}
}

var (
	names     = []string{"Zoë Ångström-Nguyễn", "Marta Kowalska", "Jean-Pierre Dubois", "Łukasz Żółć", "Søren Kierkegård", "石井 裕子", "Ana María Peña", "Oğuz Yılmaz"}
	countries = []string{"FR", "PL", "DE", "DK", "JP", "ES", "TR", "GB"}
	notes     = []string{"Prefers contact in French, after 17:00.", "VIP since 2019 ⭐", "Asked about the loyalty programme.", "Callback promised for Monday."}
)

func (h *history) uuid() uuid.UUID {
	var b [16]byte
	for i := range b {
		b[i] = byte(h.rng.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b)
}

// append stores one event in the customer's stream and returns its
// position.
func (h *history) append(customer uuid.UUID, ev domain.Event) uint64 {
	h.t.Helper()
	typ, schema, data, err := domain.Encode(ev)
	if err != nil {
		h.t.Fatalf("encode %T: %v", ev, err)
	}
	h.at = h.at.Add(time.Duration(1+h.rng.IntN(3600)) * time.Second)
	res, err := h.store.Append(context.Background(), domain.StreamID(customer), eventstore.Any, eventstore.EventData{
		ID: h.uuid(), Type: typ, Data: data,
		Metadata: eventstore.Metadata{OccurredAt: h.at, Actor: "user:marta.kowalska", Channel: "web",
			CorrelationID: h.uuid().String(), SchemaVersion: schema},
	})
	if err != nil {
		h.t.Fatalf("append %s: %v", typ, err)
	}
	return res.Position
}

// register starts a new customer.
func (h *history) register() uuid.UUID {
	id := h.uuid()
	i := h.rng.IntN(len(names))
	h.append(id, domain.CustomerRegistered{CustomerID: id, Name: names[i], Country: countries[i], Company: "Société Générale d'Électricité"})
	h.customers = append(h.customers, id)
	return id
}

// touch appends one random, valid touchpoint for an existing customer.
func (h *history) touch() uint64 {
	c := h.customers[h.rng.IntN(len(h.customers))]
	switch h.rng.IntN(6) {
	case 0:
		amount := int64(1_000 + h.rng.IntN(50_000))
		return h.append(c, domain.PurchaseCompleted{OrderID: h.uuid(), Amount: amount, Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "SNK-42-WHT", Description: "Baskets blanches, taille 42", Quantity: 1, UnitAmount: amount}}})
	case 1:
		if id, ok := h.tickets[c]; ok {
			delete(h.tickets, c)
			return h.append(c, domain.TicketClosed{TicketID: id, Reason: "Replacement delivered."})
		}
		id := h.uuid()
		h.tickets[c] = id
		return h.append(c, domain.TicketOpened{TicketID: id, Subject: "Colis non reçu", Priority: domain.PriorityHigh, Channel: domain.TicketEmail})
	case 2:
		return h.append(c, domain.NoteAdded{Body: notes[h.rng.IntN(len(notes))]})
	case 3:
		return h.append(c, domain.EmailOpened{MessageID: "<20250314092653.4711@mail.cxledger.example>"})
	case 4:
		name := names[h.rng.IntN(len(names))]
		return h.append(c, domain.ProfileUpdated{Name: &name})
	default:
		return h.append(c, domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: int64(60 + h.rng.IntN(900)),
			Agent: "user:marta.kowalska", Outcome: domain.CallConnected, Summary: "Asked about delivery of order #10472."})
	}
}

// grow registers customers and appends touchpoints.
func (h *history) grow(customers, touches int) {
	for range customers {
		h.register()
	}
	for range touches {
		h.touch()
	}
}

func (h *history) head() uint64 {
	h.t.Helper()
	p, err := h.store.Head(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// summary is a customer-360-like projection: one object per customer,
// loaded, changed in place by every event, written once per batch.
type summary struct {
	version int
	calls   atomic.Int64
}

type customerSummary struct {
	Name        string   `json:"name"`
	Country     string   `json:"country,omitempty"`
	Purchases   int      `json:"purchases"`
	RevenueEUR  int64    `json:"revenueEur"`
	OpenTickets []string `json:"openTickets,omitempty"`
	Notes       int      `json:"notes"`
	Version     int      `json:"projectionVersion"`
}

func (p *summary) Name() string { return "customer_summary" }
func (p *summary) Version() int { return max(p.version, 1) }
func (p *summary) Types() []string {
	return []string{domain.TypeCustomerRegistered, domain.TypeProfileUpdated, domain.TypePurchaseCompleted,
		domain.TypeTicketOpened, domain.TypeTicketClosed, domain.TypeNoteAdded}
}

func (p *summary) Apply(tx *Tx, e domain.Envelope) error {
	p.calls.Add(1)
	c, err := Load[customerSummary](tx, "customer/"+e.Stream)
	if err != nil {
		return err
	}
	c.Version = p.Version()
	switch ev := e.Event.(type) {
	case domain.CustomerRegistered:
		c.Name, c.Country = ev.Name, ev.Country
	case domain.ProfileUpdated:
		if ev.Name != nil {
			c.Name = *ev.Name
		}
	case domain.PurchaseCompleted:
		c.Purchases++
		c.RevenueEUR += ev.Amount
	case domain.TicketOpened:
		c.OpenTickets = append(c.OpenTickets, ev.TicketID.String())
	case domain.TicketClosed:
		for i, id := range c.OpenTickets {
			if id == ev.TicketID.String() {
				c.OpenTickets = append(c.OpenTickets[:i], c.OpenTickets[i+1:]...)
				break
			}
		}
	case domain.NoteAdded:
		c.Notes++
	}
	return nil
}

// counter handles every type and counts, in the read model, how often each
// event took effect: any value but 1 is an event applied twice or lost.
// fail, when set, may fail an event (a poison event or a flaky bug).
type counter struct {
	name  string
	calls atomic.Int64
	fail  func(e domain.Envelope) error
	gate  chan struct{} // when set, Apply waits for it to close
}

func (p *counter) Name() string {
	if p.name == "" {
		return "event_counter"
	}
	return p.name
}
func (p *counter) Version() int    { return 1 }
func (p *counter) Types() []string { return nil }

func (p *counter) Apply(tx *Tx, e domain.Envelope) error {
	p.calls.Add(1)
	if p.gate != nil {
		<-p.gate
	}
	if p.fail != nil {
		if err := p.fail(e); err != nil {
			return err
		}
	}
	n, err := Load[int](tx, fmt.Sprintf("event/%020d/%s", e.Position, e.ID))
	if err != nil {
		return err
	}
	*n++
	t, err := Load[int](tx, "type/"+e.Type)
	if err != nil {
		return err
	}
	*t++
	return nil
}

// checkCounted asserts that namespace ns holds exactly one count for every
// position up to its checkpoint and nothing after it: the read model is
// consistent with its checkpoint.
func checkCounted(t *testing.T, b Backend, ns string) uint64 {
	t.Helper()
	ctx := context.Background()
	cp, err := b.Checkpoint(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	var seen uint64
	err = b.View(ctx, ns, func(r Reader) error {
		return r.Scan(ctx, "event/", "", func(key string, value []byte) (bool, error) {
			seen++
			var pos uint64
			if _, err := fmt.Sscanf(strings.TrimPrefix(key, "event/")[:20], "%d", &pos); err != nil {
				return false, err
			}
			if string(value) != "1" {
				return false, fmt.Errorf("%s counted %s times", key, value)
			}
			if pos != seen || pos > cp {
				return false, fmt.Errorf("%s: expected position %d, checkpoint %d", key, seen, cp)
			}
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != cp {
		t.Fatalf("%s: %d events counted, checkpoint %d", ns, seen, cp)
	}
	return cp
}

// testConfig is fast and quiet: small pages, so that batching and merging
// happen with test-sized logs.
func testConfig() Config {
	return Config{PageSize: 64, BatchSize: 256, ProgressInterval: 10 * time.Millisecond,
		HeadInterval: 10 * time.Millisecond, RetryDelay: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// running is an engine running in the background.
type running struct {
	*Engine
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, src Source, b Backend, cfg Config, ps ...Projection) *running {
	t.Helper()
	e, err := NewEngine(src, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := e.Register(p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Engine: e, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(r.stop)
	waitFor(t, "Run", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.run != nil
	})
	return r
}

// stop ends Run and waits for it; calling it twice is fine.
func (r *running) stop() {
	r.cancel()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			panic(fmt.Sprintf("Run: %v", err))
		}
	}
}

// status returns the status of projection name.
func (r *running) status(t *testing.T, name string) Status {
	t.Helper()
	for _, s := range r.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return Status{}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitLive waits until projection name is live at position head or later.
func (r *running) waitLive(t *testing.T, name string, head uint64) Status {
	t.Helper()
	var st Status
	waitFor(t, fmt.Sprintf("%s live at %d", name, head), func() bool {
		st = r.status(t, name)
		if st.State == StateFailed {
			t.Fatalf("%s failed: %v", name, st.Err)
		}
		return st.State == StateLive && st.Checkpoint >= head
	})
	return st
}

// replayDigest builds p from scratch into a fresh backend and returns its
// digest: the reference state.
func replayDigest(t *testing.T, src Source, p Projection) string {
	t.Helper()
	ctx := context.Background()
	b := NewMemory()
	if err := Replay(ctx, src, b, []Projection{p}, testConfig(), nil); err != nil {
		t.Fatal(err)
	}
	d, err := Digest(ctx, b, p.Name())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func digestOf(t *testing.T, b Backend, name string) string {
	t.Helper()
	d, err := Digest(context.Background(), b, name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// flakyBackend fails the Nth Update (counting from 1) of namespaces
// starting with prefix, after fn ran: a crash just before commit.
type flakyBackend struct {
	Backend
	prefix string
	failAt int64
	n      atomic.Int64
}

var errCrash = errors.New("simulated crash before commit")

func (b *flakyBackend) Update(ctx context.Context, ns string, fn func(Writer) error) error {
	return b.Backend.Update(ctx, ns, b.flaky(ns, fn))
}

// Commit is the engine runners' write: it fails the same way.
func (b *flakyBackend) Commit(ctx context.Context, ns string, c Claim, fn func(Writer) error) error {
	return b.Backend.Commit(ctx, ns, c, b.flaky(ns, fn))
}

func (b *flakyBackend) flaky(ns string, fn func(Writer) error) func(Writer) error {
	if !strings.HasPrefix(ns, b.prefix) {
		return fn
	}
	return func(w Writer) error {
		if err := fn(w); err != nil {
			return err
		}
		if b.n.Add(1) == b.failAt {
			return errCrash
		}
		return nil
	}
}

// syncBuffer collects progress reports from the engine's goroutines.
type progressLog struct {
	mu   sync.Mutex
	reps []Progress
}

func (l *progressLog) add(p Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reps = append(l.reps, p)
}

func (l *progressLog) all() []Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Progress(nil), l.reps...)
}

// typed counts the events of some types.
type typed struct {
	name    string
	version int
	types   []string
}

func (p *typed) Name() string { return p.name }
func (p *typed) Version() int {
	if p.version == 0 {
		return 1
	}
	return p.version
}
func (p *typed) Types() []string { return p.types }
func (p *typed) Apply(tx *Tx, e domain.Envelope) error {
	n, err := Load[int](tx, "type/"+e.Type)
	if err != nil {
		return err
	}
	*n++
	return nil
}

// gated holds every Apply until gate is closed (or the batch's context
// ends), unless open is set.
type gated struct {
	Projection
	gate    chan struct{}
	open    atomic.Bool
	entered atomic.Bool
}

func (g *gated) Apply(tx *Tx, e domain.Envelope) error {
	g.entered.Store(true)
	if !g.open.Load() {
		select {
		case <-g.gate:
		case <-tx.Context().Done():
			return tx.Context().Err()
		}
	}
	return g.Projection.Apply(tx, e)
}

// failing fails on the event at position at.
type failing struct {
	Projection
	at uint64
}

func (f *failing) Apply(tx *Tx, e domain.Envelope) error {
	if e.Position == f.at {
		return errors.New("simulated crash")
	}
	return f.Projection.Apply(tx, e)
}

// eventDataRaw is a valid event of type typ stored under a schema version
// this release does not know.
func eventDataRaw(t *testing.T, typ string, schema int) eventstore.EventData {
	t.Helper()
	return eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{"body":"écrit par une version plus récente"}`),
		Metadata: eventstore.Metadata{OccurredAt: time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC), Actor: "service:importer", SchemaVersion: schema}}
}
