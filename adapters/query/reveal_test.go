package query_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
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

// Read models keep tokens; the query service reveals its answers: the
// view's profile, its identifiers (canonical, once each) and timeline
// summaries (clipped after revealing), and finds customers by the blind
// index of the e-mail asked for.
func TestAnswersAreRevealed(t *testing.T) {
	ctx := context.Background()
	keys := keyringtest.Memory(t)
	store := memstore.New(memstore.Config{})
	l := ledger.New(store)
	l.Keys = keys
	c := uuid.New()
	md := domain.Metadata{OccurredAt: time.Now().Add(-time.Hour), Actor: "user:marta"}
	long := "Zoë called.\n" + strings.Repeat("More detail. ", 20)
	for _, e := range []domain.Event{
		domain.CustomerRegistered{CustomerID: c, Name: "Zoë Nguyễn", Address: "12 rue des Lilas"},
		domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "Zoe@Example.FR"},
		domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe@example.fr"},
		domain.NoteAdded{Body: long},
	} {
		if _, err := l.Append(ctx, domain.RoleSystem, c, eventstore.Any, ledger.Touchpoint{Event: e, Metadata: md}); err != nil {
			t.Fatal(err)
		}
	}
	rm := projections.NewMemory()
	if err := projections.Replay(ctx, store, rm, catalog.All(catalog.Deps{Identifiers: keys}), projections.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	q := query.New(rm)
	q.Keys, q.Log = keys, store

	v, err := q.Customer(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if v.Profile.Name != "Zoë Nguyễn" || v.Profile.Address != "12 rue des Lilas" {
		t.Errorf("profile = %+v", v.Profile)
	}
	if len(v.Identifiers) != 1 || v.Identifiers[0].Value != "zoe@example.fr" {
		t.Errorf("identifiers = %+v, want the canonical address once", v.Identifiers)
	}
	if id, err := q.Lookup(ctx, domain.IdentifierEmail, " ZOE@example.fr"); err != nil || id != c {
		t.Errorf("Lookup = %s, %v", id, err)
	}
	res, err := q.Timeline(ctx, c, timeline.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Entries[3].Summary; got != "Note: Zoë called. …" {
		t.Errorf("note summary = %q", got)
	}
	if got := res.Entries[1].Summary; got != "Email linked: Zoe@Example.FR" {
		t.Errorf("link summary = %q", got)
	}

	// Without the keys the read models show tokens only.
	plain := query.New(rm)
	v, err = plain.Customer(ctx, c)
	if err != nil || !domain.IsSealed(v.Profile.Name) {
		t.Errorf("without keys the profile reads %+v, %v", v.Profile, err)
	}

	if err := keys.Forget(ctx, c); err != nil {
		t.Fatal(err)
	}
	v, err = q.Customer(ctx, c)
	if err != nil || v.Profile.Name != keyring.Erased || v.Identifiers[0].Value != keyring.Erased {
		t.Errorf("after the key is destroyed (before the read models see the erasure): %+v, %+v, %v", v.Profile, v.Identifiers, err)
	}
}
