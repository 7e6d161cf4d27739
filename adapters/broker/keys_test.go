package broker_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/identity"
)

// With a keyring, a new identifier registers a customer whose id derives
// from a keyed hash; once that customer is forgotten (and the identity
// index dropped the address), the same address registers a NEW customer —
// the next generation — instead of landing on the erased stream; and
// redeliveries stay idempotent throughout, their sealed bytes equal.
func TestIngestWithKeyring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newStore(t)
	keys := keyringtest.Memory(t)
	rm := projections.NewMemory()
	rebuild := func() {
		t.Helper()
		if err := projections.Replay(ctx, store, rm, []projections.Projection{identity.New(keys)}, projections.Config{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rebuild()
	lookup := query.New(rm)
	lookup.Keys = keys
	in, err := broker.NewIngest(broker.Config{Store: store, Lookup: lookup, Keys: keys, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	const email = "ana.gone@example.org"
	payload := func(note string) []byte {
		return []byte(`{"identifier":{"kind":"email","value":"Ana.Gone@Example.org"},"type":"NoteAdded","event":{"body":"` + note + `"},"occurredAt":"2026-01-02T03:04:05Z"}`)
	}
	gen0 := keys.CustomerID(domain.IdentifierEmail, email, 0)
	gen1 := keys.CustomerID(domain.IdentifierEmail, email, 1)
	if unkeyed, _ := broker.CustomerIDFor(domain.IdentifierEmail, email); unkeyed == gen0 {
		t.Fatal("the keyed id is the unkeyed one")
	}

	m1 := uuid.NewString()
	first, err := in.Ingest(ctx, m1, payload("first life"))
	if err != nil || first.CustomerID != gen0 {
		t.Fatalf("first message: %+v, %v; want customer %s", first, err, gen0)
	}
	for _, r := range all(t, store) {
		for _, plain := range []string{"ana.gone", "Ana.Gone", "first life"} {
			if bytes.Contains(r.Data, []byte(plain)) {
				t.Fatalf("plaintext %q stored: %s", plain, r.Data)
			}
		}
	}
	if again, err := in.Ingest(ctx, m1, payload("first life")); err != nil || again != first {
		t.Fatalf("redelivery: %+v, %v; want %+v", again, err, first)
	}
	// A message without occurredAt differs on each delivery in its time
	// only: the redelivery check compares sealed data.
	lenient := uuid.NewString()
	body := []byte(`{"identifier":{"kind":"phone","value":"+34 612 34 56 78"},"type":"NoteAdded","event":{"body":"call me"}}`)
	l1, err := in.Ingest(ctx, lenient, body)
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := in.Ingest(ctx, lenient, body); err != nil || l2 != l1 {
		t.Fatalf("lenient redelivery: %+v, %v; want %+v", l2, err, l1)
	}
	if n := len(all(t, store)); n != 6 {
		t.Fatalf("log holds %d events, want 6", n)
	}

	rebuild()
	if id, err := lookup.Lookup(ctx, domain.IdentifierEmail, email); err != nil || id != gen0 {
		t.Fatalf("lookup = %s, %v", id, err)
	}

	l := ledger.New(store)
	l.Keys = keys
	if _, err := l.Forget(ctx, gen0, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-3"}, Metadata: domain.Metadata{OccurredAt: time.Now(), Actor: "user:dpo"}}); err != nil {
		t.Fatal(err)
	}
	rebuild()
	if _, err := lookup.Lookup(ctx, domain.IdentifierEmail, email); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("lookup after the erasure: %v, want not found", err)
	}

	m2 := uuid.NewString()
	second, err := in.Ingest(ctx, m2, payload("second life"))
	if err != nil || second.CustomerID != gen1 {
		t.Fatalf("after the erasure: %+v, %v; want a new customer %s", second, err, gen1)
	}
	if again, err := in.Ingest(ctx, m2, payload("second life")); err != nil || again != second {
		t.Fatalf("redelivery after the erasure: %+v, %v; want %+v", again, err, second)
	}
	if old := stream(t, store, gen0); len(old) != 4 || old[3].Type != domain.TypeCustomerForgotten {
		t.Fatalf("the forgotten stream changed: %d events", len(old))
	}
	if got := countTypes(stream(t, store, gen1)); got[domain.TypeCustomerRegistered] != 1 || got[domain.TypeNoteAdded] != 1 {
		t.Fatalf("the new customer's stream holds %v", got)
	}
	rebuild()
	if id, err := lookup.Lookup(ctx, domain.IdentifierEmail, email); err != nil || id != gen1 {
		t.Fatalf("lookup = %s, %v; want the new customer", id, err)
	}
	// The first message, delivered once more, belongs to the forgotten
	// customer: refused for good (poison), never re-attached.
	if _, err := in.Ingest(ctx, m1, payload("first life")); err == nil || !broker.IsPermanent(err) {
		t.Fatalf("late redelivery of a forgotten customer's message: %v, want a permanent error", err)
	}
	if n := len(stream(t, store, gen0)); n != 4 {
		t.Fatalf("the forgotten stream has %d events", n)
	}
}
