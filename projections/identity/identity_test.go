package identity_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/identity"
)

var (
	zoe = uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	ana = uuid.MustParse("b700c11a-ec2a-4426-aec1-5da2f454f7d6")
)

var ns = projections.NamespaceFor(identity.Name, identity.Version, 1)

func TestProjectionIsValid(t *testing.T) {
	p := identity.New(nil)
	if err := projections.ValidateProjection(p); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Types(), []string{domain.TypeIdentifierLinked, domain.TypeCustomerForgotten}; !slices.Equal(got, want) {
		t.Errorf("Types() = %v, want %v", got, want)
	}
}

// scenario: Zoë and Ana both claim a family address; Ana is forgotten,
// then Zoë.
func scenario(t testing.TB) (l *projectiontest.Log, afterLinks, afterAnaForgotten int) {
	l = projectiontest.NewLog(t)
	at := func(h int) time.Time { return projectiontest.Day0.Add(time.Duration(h) * time.Hour) }
	l.Add(zoe, at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë Ångström-Nguyễn", Locale: "fr-FR", Country: "FR"})
	l.Add(zoe, at(1), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "  Zoe.Nguyen@Example.FR "})
	l.Add(zoe, at(2), domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "+33 6 12 34 56 78"})
	l.Add(zoe, at(3), domain.IdentifierLinked{Kind: domain.IdentifierExternal, Value: "Shopify:81723"})
	l.Add(ana, at(4), domain.CustomerRegistered{CustomerID: ana, Name: "Ana Sousa"})
	l.Add(ana, at(5), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "Family@Example.org"})
	l.Add(zoe, at(6), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "family@example.org"})
	// Ana links the family address again, with an occurred-at older than
	// Zoë's link (an import): log order decides, so Ana owns it.
	l.Add(ana, at(-100), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "FAMILY@example.org"}, projectiontest.Via("import"))
	// Re-linking an address one already owns changes nothing but the date.
	l.Add(zoe, at(8), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe.nguyen@example.fr"})
	afterLinks = len(l.Envelopes())
	l.Add(ana, at(9), domain.CustomerForgotten{Request: "DSR-2025-0042"})
	// A link after erasure (only possible in imported history) is ignored.
	l.Add(ana, at(10), domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "+351 912 345 678"})
	afterAnaForgotten = len(l.Envelopes())
	l.Add(zoe, at(11), domain.CustomerForgotten{Request: "DSR-2025-0043"})
	return l, afterLinks, afterAnaForgotten
}

type lookupCase struct {
	kind  domain.IdentifierKind
	value string
	want  uuid.UUID
	err   error
}

func checkLookups(t *testing.T, b projections.Backend, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		got, err := projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) (uuid.UUID, error) {
			return identity.Lookup(ctx, r, nil, c.kind, c.value)
		})
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("Lookup(%s, %q) error = %v, want %v", c.kind, c.value, err, c.err)
		case c.err == nil && (err != nil || got != c.want):
			t.Errorf("Lookup(%s, %q) = %s, %v; want %s", c.kind, c.value, got, err, c.want)
		}
	}
}

func identifiers(t *testing.T, b projections.Backend, id uuid.UUID) []identity.Identifier {
	t.Helper()
	ids, err := projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) ([]identity.Identifier, error) {
		return identity.Identifiers(ctx, r, id)
	})
	if err != nil {
		t.Fatalf("Identifiers(%s): %v", id, err)
	}
	return ids
}

func TestScenario(t *testing.T) {
	l, afterLinks, afterAnaForgotten := scenario(t)
	at := func(h int) time.Time { return projectiontest.Day0.Add(time.Duration(h) * time.Hour) }
	digests := map[string]string{}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for _, batch := range []int{0, 1, 3} {
			t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
				p := identity.New(nil)
				projectiontest.FoldBatches(t, b, ns, p, l.Envelopes()[:afterLinks], batch)

				checkLookups(t, b, []lookupCase{
					{domain.IdentifierEmail, "zoe.nguyen@example.fr", zoe, nil},
					{domain.IdentifierEmail, "\tZOE.Nguyen@EXAMPLE.fr", zoe, nil},
					{domain.IdentifierPhone, "+33612345678", zoe, nil},
					{domain.IdentifierPhone, "0033 6-12.34 (56) 78", zoe, nil},
					{domain.IdentifierExternal, "shopify:81723", zoe, nil},
					{domain.IdentifierExternal, " SHOPIFY : 81723", zoe, nil},
					{domain.IdentifierEmail, "family@example.org", ana, nil},
					{domain.IdentifierExternal, "shopify:81723X", uuid.Nil, projections.ErrNotFound},
					{domain.IdentifierEmail, "nobody@example.org", uuid.Nil, projections.ErrNotFound},
					{domain.IdentifierPhone, "06 12 34 56 78", uuid.Nil, domain.ErrInvalid}, // no country code
					{domain.IdentifierEmail, "not-an-address", uuid.Nil, domain.ErrInvalid},
					{"fax", "+33612345678", uuid.Nil, domain.ErrInvalid},
				})

				links, err := projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) ([]identity.Link, error) {
					return identity.Links(ctx, r, nil, domain.IdentifierEmail, "family@example.org")
				})
				wantLinks := []identity.Link{
					{CustomerID: zoe, LinkedAt: at(6), Position: 7},
					{CustomerID: ana, LinkedAt: at(-100), Position: 8},
				}
				if err != nil || !slices.Equal(links, wantLinks) {
					t.Errorf("Links(family) = %+v, %v; want %+v", links, err, wantLinks)
				}

				wantZoe := []identity.Identifier{
					{Kind: domain.IdentifierEmail, Value: "family@example.org", Entered: "family@example.org", LinkedAt: at(6), Position: 7, Owner: false},
					{Kind: domain.IdentifierEmail, Value: "zoe.nguyen@example.fr", Entered: "zoe.nguyen@example.fr", LinkedAt: at(8), Position: 9, Owner: true},
					{Kind: domain.IdentifierExternal, Value: "shopify:81723", Entered: "Shopify:81723", LinkedAt: at(3), Position: 4, Owner: true},
					{Kind: domain.IdentifierPhone, Value: "+33612345678", Entered: "+33 6 12 34 56 78", LinkedAt: at(2), Position: 3, Owner: true},
				}
				if got := identifiers(t, b, zoe); !slices.Equal(got, wantZoe) {
					t.Errorf("Identifiers(zoe) =\n%+v\nwant\n%+v", got, wantZoe)
				}
				wantAna := []identity.Identifier{
					{Kind: domain.IdentifierEmail, Value: "family@example.org", Entered: "FAMILY@example.org", LinkedAt: at(-100), Position: 8, Owner: true},
				}
				if got := identifiers(t, b, ana); !slices.Equal(got, wantAna) {
					t.Errorf("Identifiers(ana) = %+v, want %+v", got, wantAna)
				}

				// Ana is forgotten: the family address falls back to Zoë,
				// and the link after the erasure is ignored.
				projectiontest.FoldBatches(t, b, ns, p, l.Envelopes()[afterLinks:afterAnaForgotten], batch)
				checkLookups(t, b, []lookupCase{
					{domain.IdentifierEmail, "family@example.org", zoe, nil},
					{domain.IdentifierPhone, "+351912345678", uuid.Nil, projections.ErrNotFound},
				})
				if got := identifiers(t, b, ana); len(got) != 0 {
					t.Errorf("Identifiers(forgotten ana) = %+v, want none", got)
				}
				if got := identifiers(t, b, zoe); len(got) != 4 || !got[0].Owner {
					t.Errorf("Identifiers(zoe) after Ana's erasure = %+v, want 4 all owned", got)
				}

				// Zoë is forgotten: nothing personal is left in the index.
				projectiontest.FoldBatches(t, b, ns, p, l.Envelopes()[afterAnaForgotten:], batch)
				checkLookups(t, b, []lookupCase{
					{domain.IdentifierEmail, "family@example.org", uuid.Nil, projections.ErrNotFound},
					{domain.IdentifierEmail, "zoe.nguyen@example.fr", uuid.Nil, projections.ErrNotFound},
					{domain.IdentifierPhone, "+33612345678", uuid.Nil, projections.ErrNotFound},
					{domain.IdentifierExternal, "shopify:81723", uuid.Nil, projections.ErrNotFound},
				})
				got := projectiontest.Dump(t, b, ns)
				for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
					if !strings.HasPrefix(line, "f/") {
						t.Errorf("after both erasures the index still holds %s", line)
					}
				}
				for _, pii := range []string{"example", "81723", "+33", "+351"} {
					if strings.Contains(got, pii) {
						t.Errorf("after both erasures the index still mentions %q:\n%s", pii, got)
					}
				}
				digests[t.Name()] = projectiontest.DigestOf(t, b, identity.Name, ns)
				if err := b.Drop(context.Background(), ns); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	projectiontest.AllEqual(t, digests)
}

// A value stored before the rules tightened, which no longer normalises,
// is skipped rather than failing the projection; an event of a stream that
// is not a customer's is corruption.
func TestApplyEdgeCases(t *testing.T) {
	b := projections.NewMemory()
	p := identity.New(nil)
	legacy := domain.Envelope{
		Stream: domain.StreamID(zoe), Type: domain.TypeIdentifierLinked, Position: 1,
		Metadata: domain.Metadata{OccurredAt: projectiontest.Day0, Actor: "import:2019"},
		Event:    domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "06 12 34 56 78"},
	}
	if err := projections.ApplyBatch(context.Background(), b, ns, p, []domain.Envelope{legacy}); err != nil {
		t.Fatalf("legacy unkeyable identifier: %v", err)
	}
	if got := projectiontest.Dump(t, b, ns); got != "" {
		t.Errorf("unkeyable identifier was stored:\n%s", got)
	}
	bad := legacy
	bad.Stream, bad.Position = "order-123", 2
	bad.Event = domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe@example.fr"}
	err := projections.ApplyBatch(context.Background(), b, ns, p, []domain.Envelope{bad})
	if !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("event of stream %q: error = %v, want one wrapping domain.ErrInvalid", bad.Stream, err)
	}
	var pe *projections.ProjectionError
	if !errors.As(err, &pe) || pe.Position != 2 {
		t.Errorf("error = %v, want a *ProjectionError at position 2", err)
	}
}

// An external id of 256 four-byte runes is valid, but too long for a key
// of a durable backend: it is keyed by its hash and still found.
func TestLongIdentifier(t *testing.T) {
	long := "legacy-crm:" + strings.Repeat("𝔘", 256)
	l := projectiontest.NewLog(t)
	l.Add(zoe, projectiontest.Day0, domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë"})
	l.Add(zoe, projectiontest.Day0, domain.IdentifierLinked{Kind: domain.IdentifierExternal, Value: long})
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		projectiontest.FoldBatches(t, b, ns, identity.New(nil), l.Envelopes(), 0)
		checkLookups(t, b, []lookupCase{{domain.IdentifierExternal, " LEGACY-CRM:" + strings.Repeat("𝔘", 256), zoe, nil}})
		ids := identifiers(t, b, zoe)
		if len(ids) != 1 || ids[0].Value != long || !ids[0].Owner {
			t.Errorf("Identifiers = %+v, want the long id, owned", ids)
		}
		for _, line := range strings.Split(strings.TrimSpace(projectiontest.Dump(t, b, ns)), "\n") {
			if key, _, _ := strings.Cut(line, " = "); len(key) > 1024 {
				t.Errorf("key of %d bytes", len(key))
			}
		}
	})
}

// Folding a history in one batch or in many small ones yields the same
// bytes: the engine's batch size must never show in a read model.
func TestBatchingDoesNotChangeContents(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for seed := range uint64(12) {
			want := projectiontest.BatchSizesAgree(t, b, identity.New(nil), projectiontest.RandomHistory(t, seed, 400))
			if !strings.Contains(want, "v/") {
				t.Fatalf("seed %d: the history linked no identifier; the generator is broken", seed)
			}
		}
	})
}
