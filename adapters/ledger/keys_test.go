package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
)

func newKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	return keyringtest.Memory(t)
}

func keyedService(t *testing.T, store ledger.Store, cfg ledger.CacheConfig, keys ledger.Keys) *ledger.Service {
	s := newService(t, store, cfg)
	s.Keys = keys
	return s
}

// With Keys, what reaches the store is sealed; a retry with the same ids
// is still an idempotent retry, because sealing is deterministic.
func TestAppendSeals(t *testing.T) {
	eachCache(t, func(t *testing.T, cfg ledger.CacheConfig) {
		ctx := context.Background()
		store := memstore.New(memstore.Config{})
		keys := newKeyring(t)
		s := keyedService(t, store, cfg, keys)
		c := uuid.New()
		register(t, s, c)
		note := ledger.Touchpoint{ID: uuid.New(), Event: domain.NoteAdded{Body: "Zoë prefers calls"}, Metadata: meta()}
		first, err := s.Append(ctx, domain.RoleSystem, c, eventstore.Any, note)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.Append(ctx, domain.RoleSystem, c, eventstore.Any, note)
		if err != nil || again != first {
			t.Fatalf("retry = %+v, %v; want the first result %+v", again, err, first)
		}
		recs, err := store.ReadStream(ctx, domain.StreamID(c), eventstore.ReadStreamOptions{})
		if err != nil || len(recs) != 2 {
			t.Fatalf("stream: %d records, %v", len(recs), err)
		}
		for _, r := range recs {
			if bytes.Contains(r.Data, []byte("Zoë")) || bytes.Contains(r.Data, []byte("Ñúñez")) {
				t.Errorf("plaintext stored: %s", r.Data)
			}
		}
		_, _, want, err := s.Encode(ctx, c, note.Event)
		if err != nil || !bytes.Equal(want, recs[1].Data) {
			t.Errorf("Encode = %s, %v; stored %s", want, err, recs[1].Data)
		}
		plain, err := keys.RevealJSON(ctx, c, recs[1].Data)
		if err != nil || string(plain) != `{"body":"Zoë prefers calls"}` {
			t.Errorf("revealed %s, %v", plain, err)
		}
	})
}

// failingKeys seals with a real keyring but cannot destroy keys: a crash
// between the two steps of an erasure.
type failingKeys struct{ *keyring.Keyring }

func (failingKeys) Forget(context.Context, uuid.UUID) error {
	return errors.New("key store unreachable")
}

func TestForget(t *testing.T) {
	eachCache(t, func(t *testing.T, cfg ledger.CacheConfig) {
		ctx := context.Background()
		store := memstore.New(memstore.Config{})
		keys := newKeyring(t)
		s := keyedService(t, store, cfg, keys)
		c := uuid.New()
		register(t, s, c)
		forget := ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-42", Reason: "asked by Zoë"}, Metadata: meta()}

		// The first attempt records the erasure, then fails to destroy the key.
		broken := keyedService(t, store, cfg, failingKeys{keys})
		if _, err := broken.Forget(ctx, c, forget); err == nil {
			t.Fatal("Forget with an unreachable key store succeeded")
		}
		if gone, _ := keys.Forgotten(ctx, c); gone {
			t.Fatal("the key was destroyed although Forget failed")
		}
		// Running it again finishes the job without a second event.
		res, err := s.Forget(ctx, c, forget)
		if err != nil || res.Appended {
			t.Fatalf("second Forget = %+v, %v; want the key destroyed and nothing appended", res, err)
		}
		if gone, err := keys.Forgotten(ctx, c); err != nil || !gone {
			t.Fatalf("key not destroyed: %v, %v", gone, err)
		}
		recs, _ := store.ReadStream(ctx, domain.StreamID(c), eventstore.ReadStreamOptions{})
		if len(recs) != 2 || recs[1].Type != domain.TypeCustomerForgotten {
			t.Fatalf("stream holds %d events, want registration and one CustomerForgotten", len(recs))
		}
		reg, _ := keys.RevealJSON(ctx, c, recs[0].Data)
		if !bytes.Contains(reg, []byte(`"name":"`+keyring.Erased+`"`)) {
			t.Errorf("registration after the erasure reads %s", reg)
		}
		// Nothing more may be recorded.
		_, err = s.Append(ctx, domain.RoleSystem, c, eventstore.Any, ledger.Touchpoint{Event: domain.NoteAdded{Body: "too late"}, Metadata: meta()})
		if !errors.Is(err, domain.ErrRejected) {
			t.Errorf("append after the erasure: %v, want a rejection", err)
		}
		if _, err := s.Forget(ctx, uuid.New(), forget); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("Forget of an unknown customer: %v, want ErrNotFound", err)
		}
		if _, err := s.Forget(ctx, c, ledger.Touchpoint{Event: domain.NoteAdded{Body: "x"}, Metadata: meta()}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("Forget with another event: %v, want ErrInvalid", err)
		}
	})
}

// Concurrent erasures of one customer record one CustomerForgotten.
func TestConcurrentForgets(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	keys := newKeyring(t)
	s := keyedService(t, store, ledger.DefaultCache, keys)
	c := uuid.New()
	register(t, s, c)
	var wg sync.WaitGroup
	appended := make(chan bool, 8)
	for range 8 {
		wg.Go(func() {
			// Separate services, as separate edges would be.
			other := keyedService(t, store, ledger.CacheConfig{}, keys)
			res, err := other.Forget(ctx, c, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-1"}, Metadata: meta()})
			if err != nil {
				t.Error(err)
			}
			appended <- res.Appended
		})
	}
	wg.Wait()
	close(appended)
	n := 0
	for a := range appended {
		if a {
			n++
		}
	}
	recs, _ := store.ReadStream(ctx, domain.StreamID(c), eventstore.ReadStreamOptions{})
	if n != 1 || len(recs) != 2 {
		t.Fatalf("%d Forgets appended, stream has %d events; want 1 and 2", n, len(recs))
	}
}

// A refused append writes nothing — not even a key for the customer.
func TestRefusedAppendMakesNoKey(t *testing.T) {
	ctx := context.Background()
	var mk keyring.MasterKey
	backend := keyring.NewMemory()
	keys, err := keyring.Open(ctx, mk, backend, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := keyedService(t, memstore.New(memstore.Config{}), ledger.DefaultCache, keys)
	stranger := uuid.New()
	_, err = s.Append(ctx, domain.RoleSystem, stranger, eventstore.Any, ledger.Touchpoint{Event: domain.NoteAdded{Body: "who?"}, Metadata: meta()})
	if !errors.Is(err, domain.ErrRejected) {
		t.Fatalf("append to an unregistered customer: %v", err)
	}
	if _, ok, err := backend.Load(ctx, stranger); err != nil || ok {
		t.Fatalf("a refused append made a key: %v, %v", ok, err)
	}
}
