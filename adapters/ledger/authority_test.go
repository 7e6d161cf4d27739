package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/domain/domaintest"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
)

// TestAppendEnforcesTheAuthorityTable appends one event of every type as
// every role, after the history that makes it acceptable: it is stored
// exactly when the authority table lets the role append the type, and
// otherwise refused with a *domain.ForbiddenError, leaving the log as it
// was.
func TestAppendEnforcesTheAuthorityTable(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = store.Close() })
	s := newService(t, store, ledger.DefaultCache)
	at := now.Add(-time.Minute)
	md := func(at time.Time) domain.Metadata {
		return domain.Metadata{OccurredAt: at, Actor: "service:shop", Channel: "web"}
	}
	stored, refused := 0, 0
	for _, typ := range domain.Types() {
		for _, role := range domain.AllRoles {
			t.Run(typ+"/"+string(role), func(t *testing.T) {
				customer := uuid.New()
				sample, err := domaintest.For(typ, customer, at)
				if err != nil {
					t.Fatal(err)
				}
				if typ != domain.TypeCustomerRegistered {
					register(t, s, customer)
				}
				if len(sample.Before) > 0 {
					tps := make([]ledger.Touchpoint, len(sample.Before))
					for i, e := range sample.Before {
						tps[i] = ledger.Touchpoint{ID: uuid.New(), Event: e, Metadata: md(at.Add(-time.Hour))}
					}
					if _, err := s.Append(ctx, domain.RoleAdmin, customer, eventstore.StreamExists, tps...); err != nil {
						t.Fatalf("history: %v", err)
					}
				}
				head, err := store.Head(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.Append(ctx, role, customer, eventstore.Any, ledger.Touchpoint{ID: uuid.New(), Event: sample.Event, Metadata: md(at)})
				a, _ := domain.AuthorityOf(typ)
				if slices.Contains(a.Writers, role) {
					if err != nil {
						t.Fatalf("%s may append %s, got %v", role, typ, err)
					}
					stored++
					return
				}
				var fe *domain.ForbiddenError
				if !errors.Is(err, domain.ErrForbidden) || !errors.As(err, &fe) || fe.Type != typ || fe.Role != role || !slices.Equal(fe.Allowed, a.Writers) {
					t.Fatalf("%s appending %s: got %v, want a ForbiddenError", role, typ, err)
				}
				refused++
				if after, err := store.Head(ctx); err != nil || after != head {
					t.Errorf("the refusal moved the head %d → %d (%v)", head, after, err)
				}
			})
		}
	}
	t.Logf("%d appends stored, %d refused", stored, refused)
}

// TestRefusalComesBeforeEverythingElse: a forbidden type fails as such
// even in an append that is otherwise invalid, and one forbidden event
// refuses the whole append.
func TestRefusalComesBeforeEverythingElse(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = store.Close() })
	s := newService(t, store, ledger.CacheConfig{})
	customer := uuid.New()
	register(t, s, customer)
	note := ledger.Touchpoint{ID: uuid.New(), Event: domain.NoteAdded{Body: "fine"}, Metadata: meta()}
	forget := ledger.Touchpoint{ID: uuid.New(), Event: domain.CustomerForgotten{Request: "DSR-1"}, Metadata: meta()}
	if _, err := s.Append(ctx, domain.RoleService, customer, eventstore.Any, note, forget); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("got %v, want ErrForbidden", err)
	}
	// Nil customer, stale version: still the refusal.
	if _, err := s.Append(ctx, domain.RoleService, uuid.Nil, eventstore.Exact(99), forget); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("got %v, want ErrForbidden", err)
	}
	recs, err := store.ReadStream(ctx, domain.StreamID(customer), eventstore.ReadStreamOptions{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("stream holds %d events (%v), want the registration only", len(recs), err)
	}
}

// TestDuplicateIDDoesNotNameTheOtherStream: an id already used in another
// customer's stream is refused with ErrDuplicateEvent saying the id is
// taken, never where.
func TestDuplicateIDDoesNotNameTheOtherStream(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = store.Close() })
	s := newService(t, store, ledger.DefaultCache)
	ana, bruno := uuid.New(), uuid.New()
	register(t, s, ana)
	register(t, s, bruno)
	id := uuid.New()
	if _, err := s.Append(ctx, domain.RoleService, ana, eventstore.Any, ledger.Touchpoint{ID: id, Event: domain.NoteAdded{Body: "Ana's"}, Metadata: meta()}); err != nil {
		t.Fatal(err)
	}
	var many []ledger.Touchpoint // more than the error lists: the last is the reused id
	for i := range 12 {
		many = append(many, ledger.Touchpoint{ID: uuid.New(), Event: domain.NoteAdded{Body: fmt.Sprintf("note %d", i)}, Metadata: meta()})
	}
	many[len(many)-1].ID = id
	for _, tps := range [][]ledger.Touchpoint{
		{{ID: id, Event: domain.NoteAdded{Body: "Bruno's"}, Metadata: meta()}},
		{{ID: uuid.New(), Event: domain.NoteAdded{Body: "first"}, Metadata: meta()}, {ID: id, Event: domain.NoteAdded{Body: "Bruno's"}, Metadata: meta()}},
		many,
	} {
		_, err := s.Append(ctx, domain.RoleService, bruno, eventstore.Any, tps...)
		if !errors.Is(err, eventstore.ErrDuplicateEvent) {
			t.Fatalf("got %v, want ErrDuplicateEvent", err)
		}
		for _, leak := range []string{ana.String(), domain.StreamID(ana)} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%q names Ana's stream", err)
			}
		}
		if !strings.Contains(err.Error(), id.String()) {
			t.Errorf("%q does not name the id", err)
		}
	}
}
