package duplicates_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

func TestMatchEmail(t *testing.T) {
	tests := []struct {
		in, want string
		exact    bool
	}{
		{"zoe.nguyen@gmail.com", "zoenguyen@gmail.com", false},
		{"zoenguyen+shop@googlemail.com", "zoenguyen@gmail.com", false},
		{"zoenguyen@gmail.com", "zoenguyen@gmail.com", true},
		{"zoe.nguyen+x@example.fr", "zoe.nguyen+x@example.fr", true},
		{"zoe.nguyen@outlook.com", "zoe.nguyen@outlook.com", true},
	}
	for _, tt := range tests {
		got, exact := duplicates.MatchEmail(tt.in)
		if got != tt.want || exact != tt.exact {
			t.Errorf("MatchEmail(%q) = %q, %v; want %q, %v", tt.in, got, exact, tt.want, tt.exact)
		}
	}
}

func TestFoldNameAndSimilarity(t *testing.T) {
	if got := duplicates.FoldName("Nguyễn, Zoé"); got != "nguyen zoe" {
		t.Errorf("FoldName = %q", got)
	}
	tests := []struct {
		a, b  string
		above bool // at least NameThreshold
	}{
		{"Zoé Nguyen", "zoe nguyen", true},
		{"Zoe Nguyen", "Zoe Nguyn", true},
		{"Zoe Nguyen", "Nguyen Zoe", true},
		{"Zoe Nguyen", "Marta Kowalska", false},
		{"Jean Martin", "Jeanne Martin", true},
		{"Ana Li", "Ana Lu", false},
		{"Marc Dubois", "Marie Dubois", false},
		{"Zoe Nguyen", "Zoe", false},
	}
	for _, tt := range tests {
		s := duplicates.NameSimilarity(tt.a, tt.b)
		if (s >= duplicates.NameThreshold) != tt.above || s < 0 || s > 1 || math.IsNaN(s) {
			t.Errorf("Similarity(%q, %q) = %.3f; above threshold %v", tt.a, tt.b, s, tt.above)
		}
	}
}

var at = time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)

type world struct {
	l   *projectiontest.Log
	ids map[string]uuid.UUID
}

func (w *world) reg(name, person, company, locale string) {
	id := uuid.New()
	w.ids[name] = id
	w.l.Add(id, at, domain.CustomerRegistered{CustomerID: id, Name: person, Company: company, Locale: locale})
}

func (w *world) link(name string, kind domain.IdentifierKind, v string) {
	w.l.Add(w.ids[name], at, domain.IdentifierLinked{Kind: kind, Value: v})
}

func pairsOf(t *testing.T, r projections.Reader, id uuid.UUID) []duplicates.Pair {
	t.Helper()
	ps, err := duplicates.ForCustomer(context.Background(), r, id)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// The rules propose exactly the expected pairs, with their reasons and
// scores; erasure removes a customer's pairs; the list pages best first.
func TestPairs(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		w := &world{l: projectiontest.NewLog(t), ids: map[string]uuid.UUID{}}
		w.reg("zoe", "Zoé Nguyen", "", "fr-FR")
		w.reg("zoe2", "Zoe Nguyen", "", "fr-FR")      // similar name, same locale
		w.reg("zoe3", "Zoe Nguyen", "", "de-DE")      // similar name, other locale: no
		w.reg("jean", "Jean Martin", "Acme", "fr-FR") // same company
		w.reg("jean2", "Jean Martin", "ACME", "en-GB")
		w.reg("ana", "Ana Li", "", "")
		w.reg("other", "Marta Kowalska", "", "")
		w.link("zoe", domain.IdentifierEmail, "Zoe.Nguyen@gmail.com")
		w.link("ana", domain.IdentifierEmail, "zoenguyen+shop@googlemail.com") // Gmail rules
		w.link("zoe3", domain.IdentifierEmail, "zoe.nguyen@example.fr")
		w.link("other", domain.IdentifierEmail, "zoenguyen@example.fr") // other provider: dots count
		w.link("jean", domain.IdentifierPhone, "+33 6 12 34 56 78")
		w.link("other", domain.IdentifierPhone, "0033612345678")
		w.link("zoe2", domain.IdentifierExternal, "crm:42")
		w.link("zoe3", domain.IdentifierExternal, "CRM:42")

		r := projectiontest.Fold(t, b, duplicates.New(nil), w.l.Envelopes())
		want := map[[2]string][]string{
			{"zoe", "zoe2"}:   {"name"},
			{"zoe", "ana"}:    {"email"},
			{"jean", "jean2"}: {"name"},
			{"jean", "other"}: {"phone"},
			{"zoe2", "zoe3"}:  {"external"},
		}
		got := map[[2]uuid.UUID]duplicates.Pair{}
		for _, id := range w.ids {
			for _, p := range pairsOf(t, r, id) {
				got[p.Customers] = p
			}
		}
		if len(got) != len(want) {
			t.Errorf("%d pairs, want %d: %+v", len(got), len(want), got)
		}
		for names, kinds := range want {
			a, c := w.ids[names[0]], w.ids[names[1]]
			key := [2]uuid.UUID{a, c}
			if a.String() > c.String() {
				key = [2]uuid.UUID{c, a}
			}
			p, ok := got[key]
			if !ok {
				t.Errorf("no pair %v", names)
				continue
			}
			if len(p.Reasons) != len(kinds) || p.Reasons[0].Kind != kinds[0] {
				t.Errorf("pair %v reasons %+v, want %v", names, p.Reasons, kinds)
			}
			if p.Score <= 0 || p.Score > 1 {
				t.Errorf("pair %v score %v", names, p.Score)
			}
		}
		if p := got[[2]uuid.UUID(sorted(w.ids["zoe"], w.ids["ana"]))]; p.Score != 0.9 || p.Reasons[0].Rule == "same e-mail address" {
			t.Errorf("gmail pair = %+v, want 0.9 by the provider's rules", p)
		}

		ctx := context.Background()
		var all []duplicates.Pair
		for cursor := ""; ; {
			page, next, err := duplicates.List(ctx, r, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(all) != len(want) {
			t.Fatalf("list paged %d pairs, want %d", len(all), len(want))
		}
		for i := 1; i < len(all); i++ {
			if all[i].Score > all[i-1].Score {
				t.Errorf("list not best first: %v after %v", all[i].Score, all[i-1].Score)
			}
		}

		w.l.Add(w.ids["jean"], at, domain.CustomerForgotten{})
		w.l.Add(w.ids["zoe2"], at, domain.ProfileUpdated{Name: new("Marta Kowalska")})
		r = projectiontest.Fold(t, b, duplicates.New(nil), w.l.Envelopes())
		for _, n := range []string{"jean", "jean2", "other"} {
			if ps := pairsOf(t, r, w.ids[n]); len(ps) != 0 {
				t.Errorf("after erasure %s has pairs %+v", n, ps)
			}
		}
		if ps := pairsOf(t, r, w.ids["zoe2"]); len(ps) != 1 || ps[0].Reasons[0].Kind != "external" {
			t.Errorf("after a rename zoe2 has pairs %+v, want only the external id", ps)
		}
	})
}

func sorted(a, b uuid.UUID) [2]uuid.UUID {
	if a.String() > b.String() {
		return [2]uuid.UUID{b, a}
	}
	return [2]uuid.UUID{a, b}
}

// How events are batched never shows in the read model.
func TestBatchingIsInvisible(t *testing.T) {
	b := projectiontest.Memory(t)
	projectiontest.BatchingIsInvisible(t, b, duplicates.New(nil), projectiontest.RandomHistory(t, 7, 600), 7)
}

// A name held by more than MaxNameHolders customers of one context is no
// evidence: its holders pair on identifiers only, also with customers
// whose names are merely similar, and crossing the bound takes back the
// name pairs made before it, however the log is batched.
func TestCommonNames(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		w := &world{l: projectiontest.NewLog(t), ids: map[string]uuid.UUID{}}
		n := duplicates.MaxNameHolders
		for i := range n {
			w.reg(fmt.Sprint("anna", i), "Anna Müller", "", "de-DE")
		}
		w.reg("typo", "Anna Mülller", "", "de-DE") // similar, and its own name
		w.link("anna0", domain.IdentifierPhone, "+49 151 23456789")
		w.link("anna1", domain.IdentifierPhone, "0049 151 23456789")
		w.reg("rare", "Zoé Nguyen", "", "de-DE")
		w.reg("rare2", "Zoe Nguyen", "", "de-DE")

		count := func(r projections.Reader) (name, phone int) {
			seen := map[[2]uuid.UUID]bool{}
			for _, id := range w.ids {
				for _, p := range pairsOf(t, r, id) {
					if seen[p.Customers] {
						continue
					}
					seen[p.Customers] = true
					for _, reason := range p.Reasons {
						switch reason.Kind {
						case "name":
							name++
						case "phone":
							phone++
						}
					}
				}
			}
			return name, phone
		}
		// At the bound the name still counts: every two of the n
		// holders, each holder with the typo, and the two Zoés.
		r := projectiontest.Fold(t, b, duplicates.New(nil), w.l.Envelopes())
		if name, phone := count(r); name != n*(n-1)/2+n+1 || phone != 1 {
			t.Fatalf("%d holders: %d name and %d phone pairs, want %d and 1", n, name, phone, n*(n-1)/2+n+1)
		}

		w.reg("one-more", "Anna Müller", "", "de-DE")
		history := w.l.Envelopes()
		r = projectiontest.Fold(t, b, duplicates.New(nil), history)
		if name, phone := count(r); name != 1 || phone != 1 {
			t.Errorf("%d holders: %d name and %d phone pairs, want 1 (the Zoés) and 1", n+1, name, phone)
		}
		ps := pairsOf(t, r, w.ids["anna0"])
		if len(ps) != 1 || len(ps[0].Reasons) != 1 || ps[0].Reasons[0].Kind != "phone" {
			t.Errorf("anna0's pairs %+v, want the phone alone", ps)
		}
		if ps := pairsOf(t, r, w.ids["typo"]); len(ps) != 0 {
			t.Errorf("the typo still pairs with a common name: %+v", ps)
		}
		// The holders of the common name left the name blocks; the typo,
		// whose name is its own, is still in them.
		var blocks strings.Builder
		err := r.Scan(context.Background(), "k/name/", "", func(key string, v []byte) (bool, error) {
			blocks.WriteString(key + "=" + string(v) + "\n")
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for name, id := range w.ids {
			in := strings.Contains(blocks.String(), id.String())
			if want := !strings.HasPrefix(name, "anna") && name != "one-more"; in != want {
				t.Errorf("%s in a name block: %v, want %v", name, in, want)
			}
		}
		for seed := range uint64(5) {
			projectiontest.BatchingIsInvisible(t, b, duplicates.New(nil), history, seed)
		}
	})
}
