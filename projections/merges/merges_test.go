package merges_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/merges"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func registered(l *projectiontest.Log, id uuid.UUID) {
	l.Add(id, t0, domain.CustomerRegistered{CustomerID: id, Name: "Zoë"})
}

func group(t *testing.T, r projections.Reader, id uuid.UUID) (uuid.UUID, []uuid.UUID) {
	t.Helper()
	s, ids, err := merges.Group(context.Background(), r, id)
	if err != nil {
		t.Fatal(err)
	}
	return s, ids
}

// The map resolves an absorbed id once both halves are in, and an unmerge
// (or a lone half followed by its compensating unmerge) leaves the read
// model exactly as empty as a log without them: same digest, on every
// backend.
func TestMergeResolvesAndUnmergeLeavesNoTrace(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		s, a, lone := uuid.New(), uuid.New(), uuid.New()
		m := domain.CustomerMerged{MergeID: uuid.New(), Survivor: s, Absorbed: a, Reason: "same gmail"}
		u := domain.CustomerUnmerged{MergeID: m.MergeID, Survivor: s, Absorbed: a, Reason: "two people"}
		half := domain.CustomerMerged{MergeID: uuid.New(), Survivor: s, Absorbed: lone}

		l := projectiontest.NewLog(t)
		for _, id := range []uuid.UUID{s, a, lone} {
			registered(l, id)
		}
		l.Add(a, t0, m)
		r := projectiontest.Fold(t, b, merges.New(), l.Envelopes())
		if got, ids := group(t, r, a); got != a || len(ids) != 1 {
			t.Fatalf("one half: group of absorbed = %s %v, want itself alone", got, ids)
		}
		l.Add(s, t0, m)
		l.Add(lone, t0, half) // the survivor's half never comes
		r = projectiontest.Fold(t, b, merges.New(), l.Envelopes())
		for _, id := range []uuid.UUID{s, a} {
			if got, ids := group(t, r, id); got != s || !slices.Equal(ids, []uuid.UUID{s, a}) {
				t.Errorf("merged: group of %s = %s %v, want %s [%s %s]", id, got, ids, s, s, a)
			}
		}
		if got, _ := group(t, r, lone); got != lone {
			t.Errorf("a lone half resolved %s to %s", lone, got)
		}

		l.Add(s, t0, u)
		l.Add(a, t0, u) // the second unmerge finds nothing to end
		l.Add(lone, t0, domain.CustomerUnmerged{MergeID: half.MergeID, Survivor: s, Absorbed: lone})
		ns := "merges_after"
		projectiontest.FoldBatches(t, b, ns, merges.New(), l.Envelopes(), 1)
		after := projectiontest.DigestOf(t, b, merges.Name, ns)
		var without []domain.Envelope
		for _, e := range l.Envelopes() {
			if !domain.IsIdentityResolution(e.Type) {
				without = append(without, e)
			}
		}
		projectiontest.FoldBatches(t, b, "merges_without", merges.New(), without, 0)
		if want := projectiontest.DigestOf(t, b, merges.Name, "merges_without"); after != want {
			t.Errorf("after unmerge digest %s, want that of a log without merges %s\n%s", after, want, projectiontest.Dump(t, b, ns))
		}
		if got, _ := group(t, projectiontest.NamespaceReader{Backend: b, Namespace: ns}, a); got != a {
			t.Errorf("after unmerge %s resolves to %s", a, got)
		}
	})
}

// Combine merges histories by position, drops merge events and the
// absorbed registrations, and renumbers the versions in the survivor's
// stream.
func TestCombine(t *testing.T) {
	s, a := uuid.New(), uuid.New()
	l := projectiontest.NewLog(t)
	registered(l, s)
	registered(l, a)
	l.Add(a, t0, domain.NoteAdded{Body: "a1"})
	l.Add(s, t0, domain.NoteAdded{Body: "s1"})
	l.Add(a, t0, domain.CustomerMerged{MergeID: s, Survivor: s, Absorbed: a})
	l.Add(a, t0, domain.NoteAdded{Body: "a2"})
	var hs, ha []domain.Envelope
	for _, e := range l.Envelopes() {
		if e.Stream == domain.StreamID(s) {
			hs = append(hs, e)
		} else {
			ha = append(ha, e)
		}
	}
	got := merges.Combine(s, ha, hs)
	var types []string
	for i, e := range got {
		if e.Stream != domain.StreamID(s) || e.Version != uint64(i) {
			t.Errorf("event %d in %s at version %d", i, e.Stream, e.Version)
		}
		s := e.Type
		if n, ok := e.Event.(domain.NoteAdded); ok {
			s = n.Body
		}
		types = append(types, s)
	}
	if want := []string{domain.TypeCustomerRegistered, "a1", "s1", "a2"}; !slices.Equal(types, want) {
		t.Errorf("combined = %v, want %v", types, want)
	}
	if ha[0].Stream != domain.StreamID(a) {
		t.Error("Combine changed its input")
	}
}
