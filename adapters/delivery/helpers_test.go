package delivery_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
)

var secret = []byte("whsec_4f1c7d2e52a44d539f0e7c1b3a8e9d41")

// receiver is a webhook endpoint that verifies every request's signature
// and records what it received, per Idempotency-Key.
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	got      map[string][]delivery.WebhookPayload
	attempts []string // Attempt headers, in arrival order
	// respond chooses the status of the n-th request (from 1) for a key;
	// nil answers 204.
	respond func(key string, n int) int
	// arrived is signalled after each request is recorded.
	arrived chan string
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, got: map[string][]delivery.WebhookPayload{}, arrived: make(chan string, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := delivery.Verify(secret, req.Header.Get(delivery.HeaderSignature), body, time.Now(), 0); err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p delivery.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		r.t.Errorf("receiver: %v", err)
		return
	}
	key := req.Header.Get(delivery.HeaderIdempotencyKey)
	if key != p.MessageID.String() {
		r.t.Errorf("Idempotency-Key %q, body messageId %s", key, p.MessageID)
	}
	r.mu.Lock()
	r.got[key] = append(r.got[key], p)
	n := len(r.got[key])
	r.attempts = append(r.attempts, req.Header.Get(delivery.HeaderAttempt))
	respond := r.respond
	r.mu.Unlock()
	status := http.StatusNoContent
	if respond != nil {
		status = respond(key, n)
	}
	w.WriteHeader(status)
	r.arrived <- key
}

func (r *receiver) received(id uuid.UUID) []delivery.WebhookPayload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery.WebhookPayload(nil), r.got[id.String()]...)
}

func (r *receiver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ps := range r.got {
		n += len(ps)
	}
	return n
}

// world is a ledger with a keyring, over an in-memory store, and customers
// to queue messages for.
type world struct {
	t      testing.TB
	store  eventstore.Store
	ledger *ledger.Service
	keys   *keyring.Keyring
	rm     projections.Backend
}

func newWorld(t testing.TB) *world {
	ctx := context.Background()
	var mk keyring.MasterKey
	copy(mk[:], "0123456789abcdef0123456789abcdef")
	keys, err := keyring.Open(ctx, mk, keyring.NewMemory(), keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New(memstore.Config{})
	l := ledger.New(store)
	l.Keys = keys
	t.Cleanup(func() { _ = keys.Close(); _ = store.Close() })
	return &world{t: t, store: store, ledger: l, keys: keys, rm: projections.NewMemory()}
}

func meta() domain.Metadata {
	return domain.Metadata{OccurredAt: time.Now().UTC().Add(-time.Second), Actor: "service:test"}
}

func (w *world) append(customer uuid.UUID, as domain.Role, events ...domain.Event) {
	w.t.Helper()
	tps := make([]ledger.Touchpoint, len(events))
	for i, e := range events {
		tps[i] = ledger.Touchpoint{Event: e, Metadata: meta()}
	}
	if _, err := w.ledger.Append(context.Background(), as, customer, eventstore.Any, tps...); err != nil {
		w.t.Fatal(err)
	}
}

// customer registers a customer with an e-mail and a phone linked, and
// marketing consent by e-mail.
func (w *world) customer(email string) uuid.UUID {
	w.t.Helper()
	id := uuid.New()
	w.append(id, domain.RoleService,
		domain.CustomerRegistered{CustomerID: id, Name: "Zoë Faure"},
		domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: email},
		domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "+33612345678"},
		domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout-form"},
	)
	return id
}

// queue queues a message for customer, as the reactors do.
func (w *world) queue(customer uuid.UUID, ch domain.ConsentChannel, purpose domain.ConsentPurpose) uuid.UUID {
	w.t.Helper()
	id := uuid.New()
	w.append(customer, domain.RoleSystem, domain.MessageQueued{MessageID: id, Channel: ch, Template: "thank-you-won", Purpose: purpose})
	return id
}

// outcomes returns every MessageDelivered and MessageFailed in the log, by
// message id.
func (w *world) outcomes() map[uuid.UUID][]domain.Event {
	w.t.Helper()
	out := map[uuid.UUID][]domain.Event{}
	recs, err := w.store.ReadAll(context.Background(), eventstore.ReadAllOptions{Filter: eventstore.Filter{Types: []string{domain.TypeMessageDelivered, domain.TypeMessageFailed}}})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range recs {
		e, err := domain.Decode(r.Type, r.Metadata.SchemaVersion, r.Data)
		if err != nil {
			w.t.Fatal(err)
		}
		if r.ID == uuid.Nil {
			w.t.Fatal("nil id")
		}
		switch e := e.(type) {
		case domain.MessageDelivered:
			out[e.MessageID] = append(out[e.MessageID], e)
			if r.ID != domain.DeliveryOutcomeID(e.MessageID) {
				w.t.Errorf("outcome %s not under the derived id", r.ID)
			}
		case domain.MessageFailed:
			out[e.MessageID] = append(out[e.MessageID], e)
		}
	}
	return out
}

// waitOutcomes waits until every message in ids has an outcome.
func (w *world) waitOutcomes(ids ...uuid.UUID) map[uuid.UUID][]domain.Event {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := w.outcomes()
		done := true
		for _, id := range ids {
			if len(out[id]) == 0 {
				done = false
			}
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("outcomes after 20s: %v", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// worker starts a worker over w sending by webhook to r, stopped at the
// end of the test.
func (w *world) worker(r *receiver, tune func(*delivery.Config)) {
	w.t.Helper()
	wh, err := delivery.NewWebhook(delivery.WebhookConfig{URL: r.srv.URL, Secret: secret, Timeout: 2 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := delivery.Config{Store: w.store, Recorder: w.ledger, Keys: w.keys, Email: wh, SMS: wh, Backend: w.rm,
		MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	if tune != nil {
		tune(&cfg)
	}
	wk, err := delivery.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			w.t.Errorf("worker: %v", err)
		}
	})
}

func ledgerTouchpoint(e domain.Event) ledger.Touchpoint {
	return ledger.Touchpoint{Event: e, Metadata: domain.Metadata{OccurredAt: time.Now().UTC(), Actor: "user:dpo"}}
}
