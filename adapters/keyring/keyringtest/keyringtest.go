// Package keyringtest is the conformance suite every keyring.Backend runs:
// RunBackend checks each promise of the Backend contract — create once,
// racers converge on one key, a tombstone is final, the check value is
// stored once, nothing works after Close — and RunKeyring runs the
// Keyring itself (seal, reveal, forget, a wrong master key) on top of the
// backend. Every subtest gets a fresh backend from the constructor.
package keyringtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/domain"
)

// NewBackend returns a fresh, empty backend for one subtest. The suite
// closes it (closing twice must be harmless).
type NewBackend func(t *testing.T) keyring.Backend

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// RunBackend runs the Backend contract against backends made by newBackend.
func RunBackend(t *testing.T, newBackend NewBackend) {
	ctx := context.Background()
	open := func(t *testing.T) keyring.Backend {
		b := newBackend(t)
		t.Cleanup(func() { _ = b.Close() })
		return b
	}

	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		if _, ok, err := b.Load(ctx, uuid.New()); err != nil || ok {
			t.Fatalf("Load of an unknown customer = ok %v, %v; want not found", ok, err)
		}
	})

	t.Run("create once", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		c := uuid.New()
		first := keyring.Entry{Wrapped: random(t, 60)}
		got, err := b.Create(ctx, c, first)
		if err != nil || !bytes.Equal(got.Wrapped, first.Wrapped) || got.Destroyed() {
			t.Fatalf("Create = %+v, %v; want the entry", got, err)
		}
		second, err := b.Create(ctx, c, keyring.Entry{Wrapped: random(t, 60)})
		if err != nil || !bytes.Equal(second.Wrapped, first.Wrapped) {
			t.Fatalf("second Create = %x, %v; want the first key %x", second.Wrapped, err, first.Wrapped)
		}
		loaded, ok, err := b.Load(ctx, c)
		if err != nil || !ok || !bytes.Equal(loaded.Wrapped, first.Wrapped) {
			t.Fatalf("Load = %x, %v, %v; want the first key", loaded.Wrapped, ok, err)
		}
		if other, ok, _ := b.Load(ctx, uuid.New()); ok {
			t.Fatalf("another customer has %+v", other)
		}
	})

	t.Run("racers converge", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		c := uuid.New()
		const n = 16
		got := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var e keyring.Entry
				e, errs[i] = b.Create(ctx, c, keyring.Entry{Wrapped: random(t, 60)})
				got[i] = e.Wrapped
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("racer %d: %v", i, errs[i])
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("racer %d got key %x, racer 0 %x: two keys for one customer", i, got[i], got[0])
			}
		}
	})

	t.Run("tombstone is final", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		c := uuid.New()
		if _, err := b.Create(ctx, c, keyring.Entry{Wrapped: random(t, 60)}); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		if err := b.Destroy(ctx, c, at); err != nil {
			t.Fatal(err)
		}
		e, ok, err := b.Load(ctx, c)
		if err != nil || !ok || !e.Destroyed() || len(e.Wrapped) != 0 || !e.DestroyedAt.Equal(at) {
			t.Fatalf("Load after Destroy = %+v, %v, %v; want a tombstone of %s", e, ok, err, at)
		}
		if err := b.Destroy(ctx, c, at.Add(time.Hour)); err != nil {
			t.Fatalf("second Destroy: %v", err)
		}
		if e, _, _ := b.Load(ctx, c); !e.DestroyedAt.Equal(at) {
			t.Fatalf("second Destroy moved the date to %s", e.DestroyedAt)
		}
		again, err := b.Create(ctx, c, keyring.Entry{Wrapped: random(t, 60)})
		if err != nil || !again.Destroyed() || len(again.Wrapped) != 0 {
			t.Fatalf("Create after Destroy = %+v, %v; want the tombstone back", again, err)
		}
	})

	t.Run("destroy without key", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		c := uuid.New()
		if err := b.Destroy(ctx, c, time.Now()); err != nil {
			t.Fatal(err)
		}
		if e, ok, err := b.Load(ctx, c); err != nil || !ok || !e.Destroyed() {
			t.Fatalf("Load = %+v, %v, %v; want a tombstone", e, ok, err)
		}
		if e, err := b.Create(ctx, c, keyring.Entry{Wrapped: random(t, 60)}); err != nil || !e.Destroyed() {
			t.Fatalf("Create = %+v, %v; want the tombstone", e, err)
		}
	})

	t.Run("check value stored once", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		if got, ok, err := b.LoadCheckValue(ctx); err != nil || ok || got != nil {
			t.Fatalf("LoadCheckValue of a new store = %x, %v, %v; want none", got, ok, err)
		}
		if _, ok, err := b.LoadCheckValue(ctx); err != nil || ok {
			t.Fatalf("LoadCheckValue stored a check value: %v, %v", ok, err)
		}
		first := random(t, 16)
		if got, err := b.CheckValue(ctx, first); err != nil || !bytes.Equal(got, first) {
			t.Fatalf("first CheckValue = %x, %v", got, err)
		}
		if got, err := b.CheckValue(ctx, random(t, 16)); err != nil || !bytes.Equal(got, first) {
			t.Fatalf("second CheckValue = %x, %v; want the first %x", got, err, first)
		}
		if got, ok, err := b.LoadCheckValue(ctx); err != nil || !ok || !bytes.Equal(got, first) {
			t.Fatalf("LoadCheckValue = %x, %v, %v; want the first %x", got, ok, err, first)
		}
	})

	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		b := open(t)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Load(ctx, uuid.New()); !errors.Is(err, keyring.ErrClosed) {
			t.Fatalf("Load after Close: %v, want ErrClosed", err)
		}
		if _, err := b.Create(ctx, uuid.New(), keyring.Entry{Wrapped: random(t, 60)}); !errors.Is(err, keyring.ErrClosed) {
			t.Fatalf("Create after Close: %v, want ErrClosed", err)
		}
		if err := b.Destroy(ctx, uuid.New(), time.Now()); !errors.Is(err, keyring.ErrClosed) {
			t.Fatalf("Destroy after Close: %v, want ErrClosed", err)
		}
		if _, _, err := b.LoadCheckValue(ctx); !errors.Is(err, keyring.ErrClosed) {
			t.Fatalf("LoadCheckValue after Close: %v, want ErrClosed", err)
		}
	})
}

// RunKeyring runs a Keyring over backends made by newBackend: sealing and
// revealing round trips, forgetting erases, a second Keyring on the same
// backend (another process) sees the erasure within its cache TTL, and a
// wrong master key is refused.
func RunKeyring(t *testing.T, newBackend NewBackend) {
	ctx := context.Background()
	master := func(t *testing.T) keyring.MasterKey {
		var mk keyring.MasterKey
		copy(mk[:], random(t, keyring.MasterKeySize))
		return mk
	}

	t.Run("seal reveal forget", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		k, err := keyring.Open(ctx, master(t), b, keyring.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Close() })
		c := uuid.New()
		_, _, data, err := domain.Encode(domain.NoteAdded{Body: "Zoë prefers <e-mail> & \"calls\" after 6"})
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := k.Seal(ctx, c, domain.TypeNoteAdded, data)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, []byte("Zoë")) || !bytes.Contains(sealed, []byte(domain.SealedPrefix+c.String())) {
			t.Fatalf("sealed data %s", sealed)
		}
		again, err := k.Seal(ctx, c, domain.TypeNoteAdded, data)
		if err != nil || !bytes.Equal(again, sealed) {
			t.Fatalf("sealing twice differs:\n%s\n%s (%v)", sealed, again, err)
		}
		revealed, err := k.RevealJSON(ctx, c, sealed)
		if err != nil || !bytes.Equal(revealed, data) {
			t.Fatalf("RevealJSON = %s, %v; want %s", revealed, err, data)
		}
		if err := k.Forget(ctx, c); err != nil {
			t.Fatal(err)
		}
		erased, err := k.RevealJSON(ctx, c, sealed)
		if err != nil || string(erased) != `{"body":"`+keyring.Erased+`"}` {
			t.Fatalf("RevealJSON after Forget = %s, %v", erased, err)
		}
		if _, err := k.Seal(ctx, c, domain.TypeNoteAdded, data); !errors.Is(err, keyring.ErrForgotten) || !errors.Is(err, domain.ErrRejected) {
			t.Fatalf("Seal after Forget: %v, want ErrForgotten and domain.ErrRejected", err)
		}
		if forgotten, err := k.Forgotten(ctx, c); err != nil || !forgotten {
			t.Fatalf("Forgotten = %v, %v", forgotten, err)
		}
	})

	t.Run("racing first seals share one key", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		mk := master(t)
		// Two processes (two Keyrings on one backend), eight goroutines each.
		var ks []*keyring.Keyring
		for i := range 2 {
			be := keyring.Backend(noClose{b})
			if i == 0 {
				be = b
			}
			k, err := keyring.Open(ctx, mk, be, keyring.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = k.Close() })
			ks = append(ks, k)
		}
		c := uuid.New()
		tokens := make([]string, 16)
		var wg sync.WaitGroup
		for i := range tokens {
			wg.Go(func() {
				tok, err := ks[i%2].SealString(ctx, c, "same value")
				if err != nil {
					t.Error(err)
				}
				tokens[i] = tok
			})
		}
		wg.Wait()
		for i, tok := range tokens {
			if tok != tokens[0] {
				t.Fatalf("racer %d sealed %q, racer 0 %q: two keys for one customer", i, tok, tokens[0])
			}
		}
	})

	t.Run("another process forgets", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		mk := master(t)
		now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		server, err := keyring.Open(ctx, mk, b, keyring.Options{CacheTTL: 5 * time.Second, Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = server.Close() })
		// The other process shares the store, not the Keyring's cache.
		other, err := keyring.Open(ctx, mk, noClose{b}, keyring.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := uuid.New()
		tok, err := server.SealString(ctx, c, "ana@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if p, err := other.Reveal(ctx, c, tok); err != nil || p != "ana@example.com" {
			t.Fatalf("the other process reveals %q, %v", p, err)
		}
		if err := other.Forget(ctx, c); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		now = now.Add(5 * time.Second)
		mu.Unlock()
		if p, err := server.Reveal(ctx, c, "x "+tok+" y"); err != nil || p != "x "+keyring.Erased+" y" {
			t.Fatalf("after the TTL the server reveals %q, %v; want the erasure", p, err)
		}
	})

	t.Run("wrong master key", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		k, err := keyring.Open(ctx, master(t), noClose{b}, keyring.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_ = k
		_, err = keyring.Open(ctx, master(t), b, keyring.Options{})
		if !errors.Is(err, keyring.ErrWrongMasterKey) {
			t.Fatalf("Open with another master key: %v, want ErrWrongMasterKey", err)
		}
		if !strings.Contains(err.Error(), "wrong master key") {
			t.Fatalf("error %q does not say so", err)
		}
		_ = b.Close()
	})
}

// noClose shares a backend between two Keyrings of one test.
type noClose struct{ keyring.Backend }

func (noClose) Close() error { return nil }
