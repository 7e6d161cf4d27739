package query_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/timeline"
)

// With a keyring, the duplicates read model still matches sealed
// identifiers and names (by blind index), and a merged view reveals the
// personal data of both members, each sealed with its own key.
func TestSealedDuplicatesAndMergedView(t *testing.T) {
	ctx := context.Background()
	keys := keyringtest.Memory(t)
	store := memstore.New(memstore.Config{})
	l := ledger.New(store)
	l.Keys = keys
	md := domain.Metadata{OccurredAt: time.Now().Add(-time.Hour), Actor: "user:marta"}
	a, b := uuid.New(), uuid.New()
	for id, email := range map[uuid.UUID]string{a: "Zoe.Nguyen@gmail.com", b: "zoenguyen+news@googlemail.com"} {
		for _, e := range []domain.Event{
			domain.CustomerRegistered{CustomerID: id, Name: "Zoë Nguyễn", Company: "Acme"},
			domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: email},
			domain.NoteAdded{Body: "note of " + email},
		} {
			if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.Any, ledger.Touchpoint{Event: e, Metadata: md}); err != nil {
				t.Fatal(err)
			}
		}
	}
	replay := func() *query.Service {
		rm := projections.NewMemory()
		if err := projections.Replay(ctx, store, rm, catalog.All(catalog.Deps{Identifiers: keys}), projections.Config{}, nil); err != nil {
			t.Fatal(err)
		}
		q := query.New(rm)
		q.Keys, q.Log = keys, store
		return q
	}
	q := replay()
	page, err := q.Duplicates(ctx, a, "", 10)
	if err != nil || len(page.Pairs) != 1 {
		t.Fatalf("sealed duplicates of %s: %+v %v", a, page, err)
	}
	kinds := []string{page.Pairs[0].Reasons[0].Kind, page.Pairs[0].Reasons[1].Kind}
	if !slices.Equal(kinds, []string{"email", "name"}) {
		t.Errorf("reasons %+v, want the Gmail mailbox and the name with the company", page.Pairs[0].Reasons)
	}

	if _, err := l.Merge(ctx, domain.RoleAdmin, ledger.MergeRequest{Survivor: a, Absorbed: b, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Reason: "same person", Metadata: md}); err != nil {
		t.Fatal(err)
	}
	q = replay()
	v, err := q.Customer(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, id := range v.Identifiers {
		values = append(values, id.Value)
	}
	slices.Sort(values)
	if v.Profile.Name != "Zoë Nguyễn" || !slices.Equal(values, []string{"zoe.nguyen@gmail.com", "zoenguyen+news@googlemail.com"}) {
		t.Errorf("merged view: profile %+v, identifiers %v", v.Profile, values)
	}
	tl, err := q.Timeline(ctx, a, timeline.Query{Types: []string{domain.TypeNoteAdded}})
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range tl.Entries {
		notes = append(notes, e.Summary)
	}
	slices.Sort(notes)
	if want := []string{"Note: note of Zoe.Nguyen@gmail.com", "Note: note of zoenguyen+news@googlemail.com"}; !slices.Equal(notes, want) {
		t.Errorf("merged timeline notes %q, want both revealed %q", notes, want)
	}
}
