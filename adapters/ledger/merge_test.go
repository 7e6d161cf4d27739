package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
)

func lastType(t *testing.T, store ledger.Store, customer uuid.UUID) string {
	t.Helper()
	recs, err := store.ReadStream(context.Background(), domain.StreamID(customer), eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return recs[len(recs)-1].Type
}

// A merge writes one event on each stream, checks both expected
// versions, and is refused by either party's history; an unmerge ends it.
func TestMergeAndUnmerge(t *testing.T) {
	eachCache(t, func(t *testing.T, cfg ledger.CacheConfig) {
		ctx := context.Background()
		store := memstore.New(memstore.Config{})
		s := newService(t, store, cfg)
		sv, ab, third := uuid.New(), uuid.New(), uuid.New()
		rs, ra := register(t, s, sv), register(t, s, ab)
		register(t, s, third)

		stale := ledger.MergeRequest{Survivor: sv, Absorbed: ab, SurvivorVersion: eventstore.Exact(rs.Version + 2), AbsorbedVersion: eventstore.Exact(ra.Version), Reason: "same gmail", Metadata: meta()}
		if _, err := s.Merge(ctx, domain.RoleService, stale); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("stale survivor version: %v, want a version conflict", err)
		}
		if n := streamLen(t, store, ab); n != 1 {
			t.Fatalf("a refused merge wrote to the absorbed stream (%d events)", n)
		}
		if _, err := s.Merge(ctx, domain.RoleAnalyst, ledger.MergeRequest{Survivor: sv, Absorbed: ab, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Metadata: meta()}); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("analyst merge: %v, want forbidden", err)
		}

		req := ledger.MergeRequest{Survivor: sv, Absorbed: ab, SurvivorVersion: eventstore.Exact(rs.Version), AbsorbedVersion: eventstore.Exact(ra.Version), Reason: "same gmail", Metadata: meta()}
		res, err := s.Merge(ctx, domain.RoleService, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []uuid.UUID{sv, ab} {
			if got := lastType(t, store, id); got != domain.TypeCustomerMerged {
				t.Errorf("%s ends with %s", id, got)
			}
		}
		if _, err := s.Merge(ctx, domain.RoleAdmin, ledger.MergeRequest{Survivor: third, Absorbed: ab, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Metadata: meta()}); !errors.Is(err, domain.ErrRejected) {
			t.Errorf("absorbing an absorbed customer: %v, want rejected", err)
		}
		group, err := s.Group(ctx, ab)
		if err != nil || len(group) != 2 || group[1] != sv {
			t.Errorf("group of absorbed = %v, %v", group, err)
		}

		un := ledger.MergeRequest{Survivor: sv, Absorbed: ab, MergeID: res.MergeID, SurvivorVersion: eventstore.Exact(res.Survivor.Version), AbsorbedVersion: eventstore.Exact(res.Absorbed.Version), Reason: "two people", Metadata: meta()}
		if _, err := s.Unmerge(ctx, domain.RoleAdmin, un); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unmerge(ctx, domain.RoleAdmin, un); err == nil {
			t.Error("a second unmerge of the same merge was accepted")
		}
		if got := lastType(t, store, ab); got != domain.TypeCustomerUnmerged {
			t.Errorf("absorbed ends with %s", got)
		}
		if group, _ := s.Group(ctx, ab); len(group) != 1 {
			t.Errorf("after unmerge group = %v", group)
		}
	})
}

// raceStore appends an event to the survivor's stream right after the
// absorbed half of a merge commits: the race the expected versions guard.
type raceStore struct {
	*memstore.Store
	survivor uuid.UUID
	done     bool
}

func (r *raceStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := r.Store.Append(ctx, stream, expected, events...)
	if err == nil && !r.done && len(events) == 1 && events[0].Type == domain.TypeCustomerMerged && stream != domain.StreamID(r.survivor) {
		r.done = true
		_, typ, data := noteData(t0note)
		if _, err := r.Store.Append(ctx, domain.StreamID(r.survivor), eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: eventstore.Metadata(meta())}); err != nil {
			return res, err
		}
	}
	return res, err
}

var t0note = domain.NoteAdded{Body: "concurrent"}

func noteData(e domain.Event) (int, string, []byte) {
	typ, v, data, err := domain.Encode(e)
	if err != nil {
		panic(err)
	}
	return v, typ, data
}

// When the survivor's half loses the race, the merge answers a version
// conflict and the absorbed half is withdrawn: it never takes effect.
func TestMergeRaceWithdrawsTheLoneHalf(t *testing.T) {
	ctx := context.Background()
	sv, ab := uuid.New(), uuid.New()
	store := &raceStore{Store: memstore.New(memstore.Config{}), survivor: sv}
	s := newService(t, store, ledger.CacheConfig{})
	rs, ra := register(t, s, sv), register(t, s, ab)
	_, err := s.Merge(ctx, domain.RoleService, ledger.MergeRequest{Survivor: sv, Absorbed: ab, SurvivorVersion: eventstore.Exact(rs.Version), AbsorbedVersion: eventstore.Exact(ra.Version), Metadata: meta()})
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("merge = %v, want a version conflict", err)
	}
	if got := lastType(t, store, ab); got != domain.TypeCustomerUnmerged {
		t.Errorf("absorbed ends with %s, want the withdrawal", got)
	}
	if group, _ := s.Group(ctx, ab); len(group) != 1 {
		t.Errorf("group after a lost race = %v", group)
	}
}

// Forgetting either customer of a merge forgets both.
func TestForgetMergedForgetsTheGroup(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	s := newService(t, store, ledger.CacheConfig{})
	sv, ab := uuid.New(), uuid.New()
	register(t, s, sv)
	register(t, s, ab)
	if _, err := s.Merge(ctx, domain.RoleAdmin, ledger.MergeRequest{Survivor: sv, Absorbed: ab, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Metadata: meta()}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Forget(ctx, ab, ledger.Touchpoint{ID: uuid.New(), Event: domain.CustomerForgotten{Request: "DSR-1"}, Metadata: meta()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Merged) != 1 || res.Merged[0] != sv {
		t.Errorf("merged forgotten = %v, want [%s]", res.Merged, sv)
	}
	for _, id := range []uuid.UUID{sv, ab} {
		if got := lastType(t, store, id); got != domain.TypeCustomerForgotten {
			t.Errorf("%s ends with %s", id, got)
		}
	}
}
