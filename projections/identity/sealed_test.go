package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// fakeKeys stands in for adapters/keyring (which projections may not
// import): a "token" is the prefix, the customer and the plaintext in hex;
// a destroyed customer's tokens no longer open; the blind index is a hash.
type fakeKeys struct {
	mu        sync.Mutex
	destroyed map[uuid.UUID]bool
	fail      error
}

func seal(c uuid.UUID, plain string) string {
	return domain.SealedPrefix + c.String() + ":" + hex.EncodeToString([]byte(plain))
}

func (k *fakeKeys) Open(_ context.Context, c uuid.UUID, stored string) (string, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return "", false, k.fail
	}
	rest, ok := strings.CutPrefix(stored, domain.SealedPrefix+c.String()+":")
	if !ok {
		return stored, !domain.IsSealed(stored), nil
	}
	if k.destroyed[c] {
		return "", false, nil
	}
	b, err := hex.DecodeString(rest)
	return string(b), err == nil, nil
}

func (k *fakeKeys) Blind(kind domain.IdentifierKind, canonical string) string {
	sum := sha256.Sum256([]byte("blind:" + string(kind) + ":" + canonical))
	return hex.EncodeToString(sum[:])
}

func (k *fakeKeys) destroy(c uuid.UUID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.destroyed[c] = true
}

// sealedLink adds an IdentifierLinked to l and returns its envelope with
// the value sealed, as the ledger stores it with a keyring.
func sealedLink(l *projectiontest.Log, c uuid.UUID, at time.Time, kind domain.IdentifierKind, value string) domain.Envelope {
	env := l.Add(c, at, domain.IdentifierLinked{Kind: kind, Value: value})
	env.Event = domain.IdentifierLinked{Kind: kind, Value: seal(c, value)}
	return env
}

// With keys, the index opens sealed identifiers, keys them by their blind
// index and holds no plaintext; a rebuild after the key is destroyed
// leaves them out, as the live erasure does, to the same state.
func TestSealedIdentifiers(t *testing.T) {
	at := func(h int) time.Time { return projectiontest.Day0.Add(time.Duration(h) * time.Hour) }
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		keys := &fakeKeys{destroyed: map[uuid.UUID]bool{}}
		l := projectiontest.NewLog(t)
		var envs []domain.Envelope
		envs = append(envs, l.Add(zoe, at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë"}))
		envs = append(envs, sealedLink(l, zoe, at(1), domain.IdentifierEmail, " Zoe.Nguyen@Example.FR"))
		envs = append(envs, l.Add(ana, at(2), domain.CustomerRegistered{CustomerID: ana, Name: "Ana"}))
		envs = append(envs, sealedLink(l, ana, at(3), domain.IdentifierPhone, "+351 912 345 678"))
		// A legacy plaintext link (written before the keyring) is keyed
		// the same way.
		envs = append(envs, l.Add(ana, at(4), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "ana@example.pt"}))

		liveNS := projections.NamespaceFor(identity.Name, identity.Version, 1)
		projectiontest.FoldBatches(t, b, liveNS, identity.New(keys), envs, 0)
		lookup := func(ns string, kind domain.IdentifierKind, value string) (uuid.UUID, error) {
			return projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) (uuid.UUID, error) {
				return identity.Lookup(ctx, r, keys, kind, value)
			})
		}
		for _, c := range []struct {
			kind  domain.IdentifierKind
			value string
			want  uuid.UUID
		}{
			{domain.IdentifierEmail, "zoe.nguyen@example.fr", zoe},
			{domain.IdentifierPhone, "00351912345678", ana},
			{domain.IdentifierEmail, "ANA@example.pt", ana},
		} {
			if got, err := lookup(liveNS, c.kind, c.value); err != nil || got != c.want {
				t.Errorf("Lookup(%s) = %s, %v; want %s", c.value, got, err, c.want)
			}
		}
		dump := projectiontest.Dump(t, b, liveNS)
		// (The legacy link stays as it was stored: in plaintext.)
		for _, plain := range []string{"zoe.nguyen", "Zoe.Nguyen", "912345678"} {
			if strings.Contains(dump, plain) {
				t.Errorf("the index holds plaintext %q:\n%s", plain, dump)
			}
		}
		// Queried without the keys, the blinded index finds nothing.
		if _, err := projectiontest.Query(t, b, liveNS, func(ctx context.Context, r projections.Reader) (uuid.UUID, error) {
			return identity.Lookup(ctx, r, nil, domain.IdentifierEmail, "zoe.nguyen@example.fr")
		}); !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("Lookup without keys: %v, want not found", err)
		}

		// Zoë is forgotten: live, the erasure drops her identifiers; her
		// key is destroyed; a rebuild from scratch cannot open them.
		forgotten := l.Add(zoe, at(5), domain.CustomerForgotten{Request: "DSR-1"})
		keys.destroy(zoe)
		projectiontest.FoldBatches(t, b, liveNS, identity.New(keys), []domain.Envelope{forgotten}, 0)
		rebuiltNS := projections.NamespaceFor(identity.Name, identity.Version, 2)
		projectiontest.FoldBatches(t, b, rebuiltNS, identity.New(keys), append(envs, forgotten), 0)
		for _, ns := range []string{liveNS, rebuiltNS} {
			if got, err := lookup(ns, domain.IdentifierEmail, "zoe.nguyen@example.fr"); !errors.Is(err, projections.ErrNotFound) {
				t.Errorf("%s: Lookup of the forgotten address = %s, %v; want not found", ns, got, err)
			}
			if got, err := lookup(ns, domain.IdentifierPhone, "+351912345678"); err != nil || got != ana {
				t.Errorf("%s: Ana's phone = %s, %v", ns, got, err)
			}
		}
		if live, rebuilt := projectiontest.Dump(t, b, liveNS), projectiontest.Dump(t, b, rebuiltNS); live != rebuilt {
			t.Errorf("live and rebuilt indexes differ:\nlive\n%s\nrebuilt\n%s", live, rebuilt)
		}
	})
}

// A key store that cannot be read stops the projection (to be restarted)
// rather than silently leaving an identifier out.
func TestKeyStoreFailureStopsTheProjection(t *testing.T) {
	keys := &fakeKeys{destroyed: map[uuid.UUID]bool{}, fail: errors.New("key store down")}
	l := projectiontest.NewLog(t)
	env := sealedLink(l, zoe, projectiontest.Day0, domain.IdentifierEmail, "zoe@example.fr")
	err := projections.ApplyBatch(context.Background(), projections.NewMemory(), ns, identity.New(keys), []domain.Envelope{env})
	if err == nil || !strings.Contains(err.Error(), "key store down") {
		t.Fatalf("error = %v, want the key store's", err)
	}
}
