package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/broker"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/domain/domaintest"
)

// TestIngestEnforcesTheAuthorityTable ingests one message of every type
// as the default role (service) and as admin: a type the role may not
// append is refused with a permanent error (the poison queue) naming it,
// and nothing is stored; the others are stored.
func TestIngestEnforcesTheAuthorityTable(t *testing.T) {
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute)
	for _, role := range []domain.Role{"", domain.RoleAdmin} {
		as := role
		if as == "" {
			as = domain.RoleService // the default
		}
		t.Run(string(as), func(t *testing.T) {
			store := newStore(t)
			in, err := broker.NewIngest(broker.Config{Store: store, Role: role})
			if err != nil {
				t.Fatal(err)
			}
			admin, err := broker.NewIngest(broker.Config{Store: store, Role: domain.RoleAdmin})
			if err != nil {
				t.Fatal(err)
			}
			stored, refused := 0, 0
			for _, typ := range domain.Types() {
				customer := uuid.New()
				if typ != domain.TypeCustomerRegistered {
					customer = register(t, store, "Zoë")
				}
				sample, err := domaintest.For(typ, customer, at)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range sample.Before {
					m, err := broker.NewTouchpointMessage(uuid.New(), touchpointOf(t, customer, e, at.Add(-time.Hour)))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := admin.Ingest(ctx, m.UUID, m.Payload); err != nil {
						t.Fatalf("%s: history: %v", typ, err)
					}
				}
				head, _ := store.Head(ctx)
				id := uuid.New()
				msg, err := broker.NewTouchpointMessage(id, touchpointOf(t, customer, sample.Event, at))
				if err != nil {
					t.Fatal(err)
				}
				_, err = in.Ingest(ctx, msg.UUID, msg.Payload)
				if domain.MayAppend(as, typ) == nil {
					if err != nil {
						t.Errorf("%s may append %s: %v", as, typ, err)
					}
					stored++
					continue
				}
				refused++
				var fe *domain.ForbiddenError
				if !errors.As(err, &fe) || fe.Type != typ || fe.Role != as || !broker.IsPermanent(err) {
					t.Errorf("%s appending %s: got %v, want a permanent ForbiddenError", as, typ, err)
				}
				if after, _ := store.Head(ctx); after != head {
					t.Errorf("%s: the refused message moved the head %d → %d", typ, head, after)
				}
			}
			if stored == 0 || refused == 0 {
				t.Errorf("%d stored, %d refused: the matrix tested nothing", stored, refused)
			}
		})
	}
	for _, role := range []domain.Role{domain.RoleSystem, domain.RoleAnalyst, "root"} {
		if _, err := broker.NewIngest(broker.Config{Store: newStore(t), Role: role}); err == nil {
			t.Errorf("Config.Role %q accepted", role)
		}
	}
}

func touchpointOf(t *testing.T, customer uuid.UUID, e domain.Event, at time.Time) broker.TouchpointMessage {
	t.Helper()
	typ, _, data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return broker.TouchpointMessage{CustomerID: &customer, Type: typ, Event: data, OccurredAt: at, Actor: "service:shop"}
}
