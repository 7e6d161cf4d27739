package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/adapters/broker/brokertest"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

const callJSON = `{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected","summary":"Zoë asked about the refund — «reembolso» 🧾"}`

// ingestRig is a running router consuming one topic into a store.
type ingestRig struct {
	pub    message.Publisher
	topic  string
	poison *brokertest.Collector
}

func startIngest(t *testing.T, tr transport, store eventstore.Store, lookup broker.Lookup, route broker.RouteConfig) *ingestRig {
	t.Helper()
	pub, sub := tr.new(t)
	in, err := broker.NewIngest(broker.Config{Store: store, Lookup: lookup, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	rig := &ingestRig{pub: pub, topic: brokertest.Topic(t, "touchpoints")}
	route.Topic, route.Subscriber = rig.topic, sub
	route.PoisonPublisher, route.PoisonTopic = pub, brokertest.Topic(t, "poison")
	rig.poison = brokertest.Collect(t, sub, route.PoisonTopic)
	route.Logger = testLogger(t)
	if route.InitialInterval == 0 {
		route.InitialInterval, route.MaxInterval = time.Millisecond, 10*time.Millisecond
	}
	if _, err := in.AddHandler(r, route); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = r.Close()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	select {
	case <-r.Running():
	case <-time.After(10 * time.Second):
		t.Fatal("router did not start")
	}
	return rig
}

func (rig *ingestRig) send(t *testing.T, id string, payload string) {
	t.Helper()
	if err := rig.pub.Publish(rig.topic, message.NewMessage(id, []byte(payload))); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func touchpoint(customer uuid.UUID, typ, event string, extra string) string {
	return fmt.Sprintf(`{"customerId":%q,"type":%q,"event":%s%s}`, customer, typ, event, extra)
}

func TestIngest(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			t.Run("AppendsOnceWhenDeliveredTwice", func(t *testing.T) { t.Parallel(); testDeliveredTwice(t, tr) })
			t.Run("UnknownIdentifierRegistersOneCustomer", func(t *testing.T) { t.Parallel(); testUnknownIdentifier(t, tr) })
			t.Run("InvalidMessagesArePoisoned", func(t *testing.T) { t.Parallel(); testPoison(t, tr) })
			t.Run("AckOnlyAfterDurable", func(t *testing.T) { t.Parallel(); testAckAfterDurable(t, tr) })
		})
	}
}

func testDeliveredTwice(t *testing.T, tr transport) {
	store := newStore(t)
	customer := register(t, store, "Zoë Núñez")
	rig := startIngest(t, tr, store, &lookupMap{}, broker.RouteConfig{})

	withTime := uuid.NewString()
	withoutTime := uuid.NewString() // occurredAt defaulted: differs per delivery
	msg1 := touchpoint(customer, domain.TypeCallLogged, callJSON, `,"occurredAt":"2025-03-01T10:04:05.123456Z","actor":"service:zendesk","channel":"phone","correlationId":"case-81723"`)
	msg2 := touchpoint(customer, domain.TypeNoteAdded, `{"body":"called back"}`, "")
	rig.send(t, withTime, msg1)
	rig.send(t, withoutTime, msg2)
	rig.send(t, withTime, msg1)
	rig.send(t, withoutTime, msg2)
	sentinel := uuid.NewString()
	rig.send(t, sentinel, touchpoint(customer, domain.TypeNoteAdded, `{"body":"sentinel"}`, ""))

	eventually(t, 20*time.Second, "the sentinel", func() bool { return len(stream(t, store, customer)) == 4 })
	recs := stream(t, store, customer)
	if got := countTypes(recs); got[domain.TypeCallLogged] != 1 || got[domain.TypeNoteAdded] != 2 {
		t.Fatalf("stored %v, want one call and two notes", got)
	}
	if recs[1].ID.String() != withTime || recs[2].ID.String() != withoutTime || recs[3].ID.String() != sentinel {
		t.Errorf("event ids %v, want the message uuids", []uuid.UUID{recs[1].ID, recs[2].ID, recs[3].ID})
	}
	md := recs[1].Metadata
	if md.Actor != "service:zendesk" || md.Channel != "phone" || md.CorrelationID != "case-81723" ||
		!md.OccurredAt.Equal(time.Date(2025, 3, 1, 10, 4, 5, 123456000, time.UTC)) {
		t.Errorf("metadata %+v", md)
	}
	if recs[2].Metadata.Actor != "service:broker" {
		t.Errorf("default actor %q", recs[2].Metadata.Actor)
	}
	if p := rig.poison.All(); len(p) != 0 {
		t.Errorf("redelivery poisoned: %s", p[0].Metadata.Get(middleware.ReasonForPoisonedKey))
	}
}

func testUnknownIdentifier(t *testing.T, tr transport) {
	store := newStore(t)
	// An empty lookup is the identity read model at its most behind: every
	// message sees the identifier as unknown.
	rig := startIngest(t, tr, store, &lookupMap{}, broker.RouteConfig{})
	spellings := []string{"Zoë.Nunez@Example.com", " zoë.nunez@example.COM ", "ZOË.NUNEZ@EXAMPLE.COM"}
	var ids []string
	for i := range 6 {
		id := uuid.NewString()
		ids = append(ids, id)
		rig.send(t, id, fmt.Sprintf(`{"identifier":{"kind":"email","value":%q},"name":"Zoë Núñez","type":"NoteAdded","event":{"body":"note %d"}}`, spellings[i%len(spellings)], i))
		if i == 2 {
			rig.send(t, id, fmt.Sprintf(`{"identifier":{"kind":"email","value":%q},"name":"Zoë Núñez","type":"NoteAdded","event":{"body":"note %d"}}`, spellings[i%len(spellings)], i))
		}
	}
	customer, err := broker.CustomerIDFor(domain.IdentifierEmail, "zoë.nunez@example.com")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "six notes", func() bool { return countTypes(stream(t, store, customer))[domain.TypeNoteAdded] == 6 })
	log := all(t, store)
	if got := countTypes(log); got[domain.TypeCustomerRegistered] != 1 || got[domain.TypeIdentifierLinked] != 1 || len(log) != 8 {
		t.Fatalf("log holds %v, want one registration, one link and six notes", got)
	}
	for _, r := range log {
		if r.Stream != domain.StreamID(customer) {
			t.Fatalf("event in another stream %s", r.Stream)
		}
	}
	reg := log[0]
	if reg.Type != domain.TypeCustomerRegistered || !strings.Contains(string(reg.Data), "Zoë Núñez") || reg.Metadata.CausationID != ids[0] {
		t.Errorf("registration %s %s caused by %q", reg.Type, reg.Data, reg.Metadata.CausationID)
	}
}

func testPoison(t *testing.T, tr transport) {
	store := newStore(t)
	customer := register(t, store, "Ana")
	head := func() uint64 { h, _ := store.Head(context.Background()); return h }
	before := head()
	rig := startIngest(t, tr, store, &lookupMap{}, broker.RouteConfig{})
	ticket := uuid.New()
	cases := []struct{ id, payload, reason string }{
		{uuid.NewString(), `not json`, "invalid touchpoint message"},
		{"order-81723", touchpoint(customer, domain.TypeNoteAdded, `{"body":"x"}`, ""), "message uuid must be a uuid"},
		{uuid.NewString(), touchpoint(customer, "CustomerUpdated", `{}`, ""), "unknown event type"},
		{uuid.NewString(), touchpoint(customer, domain.TypeCallLogged, `{"direction":"sideways"}`, ""), "invalid direction"},
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, `{"body":"x","extra":1}`, ""), "invalid"},
		{uuid.NewString(), touchpoint(customer, domain.TypeTicketResolved, fmt.Sprintf(`{"ticketId":%q,"resolution":"done"}`, ticket), ""), "rejected TicketResolved"},
		{uuid.NewString(), touchpoint(uuid.New(), domain.TypeNoteAdded, `{"body":"x"}`, ""), "not registered"},
		{uuid.NewString(), `{"identifier":{"kind":"email","value":"not-an-email"},"type":"NoteAdded","event":{"body":"x"}}`, "invalid email"},
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, `{"body":"x"}`, `,"actor":"bob"`), "metadata.actor"},
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, `{"body":"x"}`, `,"unknownField":true`), "unknown field"},
		// The broker appends as service (Config.Role): no way to erase a
		// customer or mint points around the API's authority table.
		{uuid.NewString(), touchpoint(customer, domain.TypeCustomerForgotten, `{"request":"DSR-x"}`, ""), "role service may not append CustomerForgotten"},
		{uuid.NewString(), touchpoint(customer, domain.TypePointsEarned, fmt.Sprintf(`{"earningId":%q,"points":1000000,"reason":"bonus","rule":"any"}`, uuid.New()), ""), "role service may not append PointsEarned"},
		// What encoding/json lets through: last key wins, keys match in
		// any case, lone surrogates and bad bytes become U+FFFD.
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, `{"body":"x"}`, `,"type":"TicketOpened"`), `duplicate key "type"`},
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, `{"body":"x"}`, `,"Type":"TicketOpened"`), `differ only in case`},
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, `{"body":"x","body":"y"}`, ""), `duplicate key "event.body"`},
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, `{"body":"x\ud800"}`, ""), `unpaired surrogate escape at "event.body"`},
		{uuid.NewString(), touchpoint(customer, domain.TypeNoteAdded, "{\"body\":\"caf\xe9\"}", ""), `invalid UTF-8 at "event.body"`},
	}
	for _, c := range cases {
		rig.send(t, c.id, c.payload)
	}
	eventually(t, 20*time.Second, "every message in the poison queue", func() bool { return len(rig.poison.All()) == len(cases) })
	got := map[string]string{}
	for _, m := range rig.poison.All() {
		got[m.UUID] = m.Metadata.Get(middleware.ReasonForPoisonedKey)
	}
	for _, c := range cases {
		if !strings.Contains(got[c.id], c.reason) {
			t.Errorf("message %s poisoned with reason %q, want it to mention %q", c.id, got[c.id], c.reason)
		}
	}
	if h := head(); h != before {
		t.Errorf("store head moved from %d to %d: a poisoned message was written", before, h)
	}
}

func testAckAfterDurable(t *testing.T, tr transport) {
	store := &flakyStore{Store: newStore(t)}
	customer := register(t, store.Store, "Ana")
	store.failures.Store(3)
	// No in-place retry: each failure goes back to the broker as a nack,
	// and only the redelivery can get the event stored.
	rig := startIngest(t, tr, store, &lookupMap{}, broker.RouteConfig{MaxRetries: -1})
	id := uuid.NewString()
	rig.send(t, id, touchpoint(customer, domain.TypeNoteAdded, `{"body":"after three failures"}`, ""))
	eventually(t, 20*time.Second, "the note", func() bool { return len(stream(t, store, customer)) == 2 })
	if n := store.appends.Load(); n < 4 {
		t.Errorf("%d appends, want the three failed ones and the one that succeeded", n)
	}
	time.Sleep(100 * time.Millisecond) // a wrongly repeated delivery would show up now
	if recs := stream(t, store, customer); len(recs) != 2 || recs[1].ID.String() != id {
		t.Errorf("stream holds %d events", len(recs))
	}
	if p := rig.poison.All(); len(p) != 0 {
		t.Errorf("a retryable failure was poisoned: %s", p[0].Metadata.Get(middleware.ReasonForPoisonedKey))
	}
}

// Racing consumers of several messages for one new identifier register one
// customer between them, however the race goes.
func TestIngestRacingNewIdentifier(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	in, err := broker.NewIngest(broker.Config{Store: store, Lookup: &lookupMap{}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	results := make([]broker.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			payload := fmt.Sprintf(`{"identifier":{"kind":"phone","value":"+34 612 34 56 %02d"},"type":"NoteAdded","event":{"body":"n%d"},"occurredAt":"2025-01-02T03:04:05Z"}`, 78, i)
			id := uuid.NewString()
			// Retry retryable failures the way the router's Retry
			// middleware would: a racer may lose the ledger's own
			// re-decisions too often.
			for range 10 {
				results[i], errs[i] = in.Ingest(context.Background(), id, []byte(payload))
				if errs[i] == nil || broker.IsPermanent(errs[i]) {
					break
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	want, _ := broker.CustomerIDFor(domain.IdentifierPhone, "+34612345678")
	for _, r := range results {
		if r.CustomerID != want {
			t.Fatalf("customer %s, want %s", r.CustomerID, want)
		}
	}
	if got := countTypes(all(t, store)); got[domain.TypeCustomerRegistered] != 1 || got[domain.TypeIdentifierLinked] != 1 || got[domain.TypeNoteAdded] != n {
		t.Fatalf("log holds %v", got)
	}
}

// A known identifier resolves through the lookup, and a redelivered
// message whose registration is already stored appends nothing new.
func TestIngestResolvesKnownIdentifier(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	known := register(t, store, "Ana")
	lookup := &lookupMap{m: map[string]uuid.UUID{"external:shopify:81723": known}}
	in, err := broker.NewIngest(broker.Config{Store: store, Lookup: lookup, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := in.Ingest(ctx, uuid.NewString(), []byte(`{"identifier":{"kind":"external","value":"Shopify:81723"},"type":"NoteAdded","event":{"body":"x"}}`))
	if err != nil || res.CustomerID != known {
		t.Fatalf("got %v %v, want customer %s", res.CustomerID, err, known)
	}

	// The lookup learns of a registration only later: the redelivery finds
	// the customer through it and must not append again.
	id := uuid.NewString()
	payload := []byte(`{"identifier":{"kind":"email","value":"new@example.com"},"type":"NoteAdded","event":{"body":"y"}}`)
	first, err := in.Ingest(ctx, id, payload)
	if err != nil {
		t.Fatal(err)
	}
	lookup.mu.Lock()
	lookup.m["email:new@example.com"] = first.CustomerID
	lookup.mu.Unlock()
	again, err := in.Ingest(ctx, id, payload)
	if err != nil || again != first {
		t.Fatalf("redelivery: %+v %v, want %+v", again, err, first)
	}
	if n := len(all(t, store)); n != 5 {
		t.Fatalf("log holds %d events, want 5", n)
	}

	// The identifier is linked to another customer meanwhile: a late
	// redelivery is still recognised, not poisoned.
	lookup.mu.Lock()
	lookup.m["email:new@example.com"] = known
	lookup.mu.Unlock()
	late, err := in.Ingest(ctx, id, payload)
	if err != nil || late != first {
		t.Fatalf("late redelivery: %+v %v, want %+v", late, err, first)
	}
}

func TestIsPermanent(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{broker.ErrInvalidMessage, true},
		{fmt.Errorf("x: %w", &domain.ValidationError{Field: "f", Rule: "r"}), true},
		{&domain.RejectionError{}, true},
		{&domain.UnknownTypeError{Type: "X"}, true},
		{fmt.Errorf("x: %w", eventstore.ErrDuplicateEvent), true},
		{&eventstore.VersionConflictError{}, false},
		{eventstore.ErrClosed, false},
		{context.DeadlineExceeded, false},
		{errUnavailable, false},
	} {
		if got := broker.IsPermanent(c.err); got != c.want {
			t.Errorf("IsPermanent(%v) = %v", c.err, got)
		}
	}
}

func TestNewTouchpointMessageRoundTrip(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	customer := register(t, store, "Ana")
	in, err := broker.NewIngest(broker.Config{Store: store, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	msg, err := broker.NewTouchpointMessage(id, broker.TouchpointMessage{
		CustomerID: &customer, Type: domain.TypeCallLogged, Event: json.RawMessage(callJSON), Actor: "user:marta",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Handle(msg); err != nil {
		t.Fatal(err)
	}
	if recs := stream(t, store, customer); len(recs) != 2 || recs[1].ID != id {
		t.Fatalf("stream %v", recs)
	}
	// Without a lookup, identifier-addressed messages are poisoned, not
	// retried forever.
	err = in.Handle(message.NewMessage(uuid.NewString(), []byte(`{"identifier":{"kind":"email","value":"a@b.co"},"type":"NoteAdded","event":{"body":"x"}}`)))
	if !broker.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
}
