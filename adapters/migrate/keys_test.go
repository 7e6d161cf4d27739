package migrate_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/boltkeys"
	"github.com/cxledger/cxledger/adapters/keyring/pgkeys"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/migrate"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// side is a ledger with its key store, as a process opens it.
type side struct {
	store store
	keys  keyring.Backend
}

func embeddedSide(t *testing.T) side {
	t.Helper()
	dir := t.TempDir()
	s, err := boltstore.Open(filepath.Join(dir, "ledger.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := boltkeys.Open(filepath.Join(dir, boltkeys.FileName), boltkeys.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(); _ = k.Close() })
	return side{s, k}
}

func postgresSide(t *testing.T) side {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	s, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	k, err := pgkeys.Open(ctx, url, pgkeys.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(); _ = k.Close() })
	return side{s, k}
}

func masterKey(s string) keyring.MasterKey {
	var mk keyring.MasterKey
	copy(mk[:], s)
	return mk
}

// keyringOn opens a keyring over a side's key store, caching nothing, so
// that it sees every change of the store at once. The side keeps the
// store open: the keyring is not closed.
func keyringOn(t *testing.T, s side, mk keyring.MasterKey) *keyring.Keyring {
	t.Helper()
	k, err := keyring.Open(t.Context(), mk, s.keys, keyring.Options{CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type customer struct {
	id          uuid.UUID
	name, email string
}

// revealed reads a side's whole log as every edge shows it.
func revealed(t *testing.T, s side, mk keyring.MasterKey) string {
	t.Helper()
	recs, err := s.store.ReadAll(t.Context(), eventstore.ReadAllOptions{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	recs, err = keyringOn(t, s, mk).RevealRecords(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range recs {
		b.Write(r.Data)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestCopyKeys migrates a ledger whose personal data is sealed, between
// the embedded store and PostgreSQL both ways: the target reveals the
// plaintext of live customers, a customer forgotten before the migration
// stays erased, one forgotten in the source after it is erased in the
// target by the next run; runs are resumable; a target key store of
// another master key, or one that would give a forgotten customer a key
// back, is refused.
func TestCopyKeys(t *testing.T) {
	for _, c := range []struct {
		name     string
		src, dst func(*testing.T) side
	}{
		{"EmbeddedToPostgres", embeddedSide, postgresSide},
		{"PostgresToEmbedded", postgresSide, embeddedSide},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			mk := masterKey("a migrate test master key, 32 b!")
			src, dst := c.src(t), c.dst(t)
			l := ledger.New(src.store)
			l.Keys = keyringOn(t, src, mk)
			md := domain.Metadata{OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Actor: "user:marta", Channel: "web"}
			people := []customer{
				{uuid.New(), "Zoë Quokkavitch-Nguyễn", "zoe.quokka@example.fr"},
				{uuid.New(), "Ana Wombatinha", "ana.wombat@example.pt"},
				{uuid.New(), "Bruno Platypusson", "bruno.platypus@example.es"},
			}
			for _, p := range people {
				if _, err := l.Append(ctx, domain.RoleSystem, p.id, eventstore.NoStream,
					ledger.Touchpoint{ID: uuid.New(), Event: domain.CustomerRegistered{CustomerID: p.id, Name: p.name, Country: "FR"}, Metadata: md},
					ledger.Touchpoint{ID: uuid.New(), Event: domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: p.email}, Metadata: md},
					ledger.Touchpoint{ID: uuid.New(), Event: domain.NoteAdded{Body: "note about " + p.name}, Metadata: md},
				); err != nil {
					t.Fatal(err)
				}
			}
			forget := func(p customer) {
				t.Helper()
				if _, err := l.Forget(ctx, p.id, ledger.Touchpoint{ID: uuid.New(), Event: domain.CustomerForgotten{Request: "DSR-2026-0007"}, Metadata: md}); err != nil {
					t.Fatal(err)
				}
			}
			zoe, ana, bruno := people[0], people[1], people[2]
			forget(zoe) // before the migration
			keys := &migrate.Keys{Source: src.keys, Target: dst.keys}

			res, err := migrate.Copy(ctx, src.store, dst.store, migrate.Options{BatchSize: 4, Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			if res.Copied != 10 || res.Keys != (migrate.KeyResult{Copied: 2, Tombstones: 1}) {
				t.Fatalf("Copy = %+v, want 10 events, 2 keys and a tombstone", res)
			}
			if v, err := migrate.Verify(ctx, src.store, dst.store, migrate.Options{Keys: keys}); err != nil || v.Count != 10 || v.Keys != 3 {
				t.Fatalf("Verify = %+v, %v; want 10 events and 3 customers' keys", v, err)
			}
			if e, ok, err := dst.keys.Load(ctx, zoe.id); err != nil || !ok || !e.Destroyed() {
				t.Fatalf("the forgotten customer's entry in the target: %+v, %v, %v; want a tombstone", e, ok, err)
			}
			out := revealed(t, dst, mk)
			for _, p := range []customer{ana, bruno} {
				if !strings.Contains(out, p.name) || !strings.Contains(out, p.email) || !strings.Contains(out, "note about "+p.name) {
					t.Fatalf("the target does not reveal %s:\n%s", p.name, out)
				}
			}
			if strings.Contains(out, "Quokkavitch") || strings.Contains(out, "zoe.quokka") || !strings.Contains(out, keyring.Erased) || strings.Contains(out, "enc:v1:") {
				t.Fatalf("the customer forgotten before the migration is not erased in the target, or a token is left unrevealed:\n%s", out)
			}

			// Resumable: a second run finds every key in place.
			res, err = migrate.Copy(ctx, src.store, dst.store, migrate.Options{Keys: keys})
			if err != nil || res.Copied != 0 || res.Keys != (migrate.KeyResult{Skipped: 3}) {
				t.Fatalf("second Copy = %+v, %v; want nothing copied, 3 keys in place", res, err)
			}

			// Forgotten in the source after the migration: the next run
			// erases them in the target too.
			forget(ana)
			res, err = migrate.Copy(ctx, src.store, dst.store, migrate.Options{Keys: keys})
			if err != nil || res.Copied != 1 || res.Keys.Tombstones != 1 {
				t.Fatalf("Copy after a later erasure = %+v, %v; want the CustomerForgotten and a tombstone", res, err)
			}
			if out := revealed(t, dst, mk); strings.Contains(out, "Wombatinha") || !strings.Contains(out, bruno.name) {
				t.Fatalf("after the later erasure the target shows:\n%s", out)
			}

			// Never a key back for a customer forgotten in the target.
			if err := dst.keys.Destroy(ctx, bruno.id, time.Now()); err != nil {
				t.Fatal(err)
			}
			var km *migrate.KeyMismatchError
			if _, err := migrate.Copy(ctx, src.store, dst.store, migrate.Options{Keys: keys}); !errors.As(err, &km) || km.Customer != bruno.id {
				t.Fatalf("Copy onto a target that forgot a live customer: %v, want a key mismatch naming %s", err, bruno.id)
			}
			if e, _, _ := dst.keys.Load(ctx, bruno.id); !e.Destroyed() {
				t.Fatal("the copy gave a forgotten customer a key back")
			}
			if _, err := migrate.Verify(ctx, src.store, dst.store, migrate.Options{Keys: keys}); !errors.As(err, &km) {
				t.Fatalf("Verify of differing keys: %v, want a key mismatch", err)
			}

			// A target whose key store belongs to another master key is
			// refused before anything is written.
			other := c.dst(t)
			keyringOn(t, other, masterKey("another master key, 32 bytes!!!"))
			_, err = migrate.Copy(ctx, src.store, other.store, migrate.Options{Keys: &migrate.Keys{Source: src.keys, Target: other.keys}})
			if !errors.Is(err, migrate.ErrKeyCheckMismatch) {
				t.Fatalf("Copy into another master key's store: %v, want ErrKeyCheckMismatch", err)
			}
			if head, err := other.store.Head(ctx); err != nil || head != 0 {
				t.Fatalf("the refused copy wrote up to position %d (%v)", head, err)
			}
		})
	}
}

// A source without a key store (a ledger from before crypto-shredding)
// copies its events and no key, and says so.
func TestCopyWithoutSourceKeys(t *testing.T) {
	ctx := t.Context()
	src, dst := embeddedSide(t), embeddedSide(t)
	n := fill(t, src.store, 3, 2)
	res, err := migrate.Copy(ctx, src.store, dst.store, migrate.Options{Keys: &migrate.Keys{Source: src.keys, Target: dst.keys}})
	if err != nil || res.Copied != int64(n) || !res.Keys.NoSourceKeys {
		t.Fatalf("Copy = %+v, %v; want the events and no keys", res, err)
	}
	if _, ok, err := dst.keys.LoadCheckValue(ctx); err != nil || ok {
		t.Fatalf("the target's key store took a check value from nowhere: %v, %v", ok, err)
	}
}
