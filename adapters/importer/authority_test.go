package importer_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/domain/domaintest"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
)

// TestImportEnforcesTheAuthorityTable imports one row of every type as
// service (the default) and as admin (`--as admin`): the rows of types
// the role may not append are rejected with domain.ErrForbidden naming
// the type, and only they; the others are imported.
func TestImportEnforcesTheAuthorityTable(t *testing.T) {
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute)
	for _, role := range []domain.Role{"", domain.RoleAdmin} {
		as := role
		if as == "" {
			as = domain.RoleService
		}
		t.Run(string(as), func(t *testing.T) {
			store := memstore.New(memstore.Config{})
			t.Cleanup(func() { _ = store.Close() })
			l := ledger.New(store)
			var rows []string
			var want []string // the types refused, sorted
			for _, typ := range domain.Types() {
				customer := uuid.New()
				sample, err := domaintest.For(typ, customer, at)
				if err != nil {
					t.Fatal(err)
				}
				if typ != domain.TypeCustomerRegistered {
					history := []ledger.Touchpoint{{ID: uuid.New(), Event: domain.CustomerRegistered{CustomerID: customer, Name: "Zoë"}, Metadata: domain.Metadata{OccurredAt: at.Add(-2 * time.Hour), Actor: "user:marta"}}}
					for _, e := range sample.Before {
						history = append(history, ledger.Touchpoint{ID: uuid.New(), Event: e, Metadata: domain.Metadata{OccurredAt: at.Add(-time.Hour), Actor: "user:marta"}})
					}
					if _, err := l.Append(ctx, domain.RoleAdmin, customer, eventstore.NoStream, history...); err != nil {
						t.Fatalf("%s: history: %v", typ, err)
					}
				}
				_, _, data, err := domain.Encode(sample.Event)
				if err != nil {
					t.Fatal(err)
				}
				row, err := json.Marshal(map[string]any{"customerId": customer, "type": typ, "event": json.RawMessage(data), "occurredAt": at})
				if err != nil {
					t.Fatal(err)
				}
				rows = append(rows, string(row))
				if domain.MayAppend(as, typ) != nil {
					want = append(want, typ)
				}
			}
			head, _ := store.Head(ctx)
			sum, rejected, err := run(t, store, "authority-"+string(as), lines(rows...), func(c *importer.Config) { c.Role = role })
			if len(want) > 0 && !errors.Is(err, importer.ErrRejectedRows) {
				t.Fatalf("import: %v, want ErrRejectedRows", err)
			}
			var got []string
			for _, r := range rejected {
				var fe *domain.ForbiddenError
				if !errors.As(r, &fe) || fe.Role != as || !strings.Contains(r.Error(), fe.Type) {
					t.Errorf("line %d rejected for %v, want a ForbiddenError", r.Line, r.Err)
					continue
				}
				got = append(got, fe.Type)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("refused %v, want %v", got, want)
			}
			if imported := len(rows) - len(want); sum.Imported != imported {
				t.Errorf("imported %d rows, want %d", sum.Imported, imported)
			}
			after, _ := store.Head(ctx)
			if after-head != uint64(len(rows)-len(want)) {
				t.Errorf("the import appended %d events, want %d", after-head, len(rows)-len(want))
			}
		})
	}
	for _, role := range []domain.Role{domain.RoleSystem, domain.RoleAuditor, "root"} {
		if _, err := importer.New(ledger.New(memstore.New(memstore.Config{})), memstore.New(memstore.Config{}), importer.Config{Batch: "b", Role: role}); err == nil {
			t.Errorf("Config.Role %q accepted", role)
		}
	}
}
