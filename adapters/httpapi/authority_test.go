package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/domain/domaintest"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections"
	"github.com/google/uuid"
)

// TestAppendAuthorityOverHTTP appends one event of every type with every
// role's token, on the embedded store and on PostgreSQL: each is accepted
// exactly when the authority table (domain.MayAppend) lets the role append
// the type, and otherwise refused with a 403 naming the type, the role
// and who may, the log unchanged.
func TestAppendAuthorityOverHTTP(t *testing.T) {
	t.Run("store=embedded", func(t *testing.T) {
		e := startEmbedded(t, t.TempDir(), nil)
		authorityMatrix(t, e.harness, e.store)
	})
	t.Run("store=postgres", func(t *testing.T) {
		ctx := context.Background()
		st, err := pgstore.Open(ctx, pgtest.URL(t), pgstore.Options{Schema: pgtest.Schema(t)})
		if err != nil {
			t.Fatal(err)
		}
		h, _, stop := serveOver(t, st, projections.NewMemory(), nil)
		t.Cleanup(func() {
			stop()
			_ = st.Close()
		})
		authorityMatrix(t, h, st)
	})
}

type header interface {
	Head(ctx context.Context) (uint64, error)
}

func authorityMatrix(t *testing.T, h *harness, store header) {
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	body := func(expected eventstore.ExpectedVersion, occurred time.Time, events ...domain.Event) string {
		t.Helper()
		req := httpapi.AppendRequest{ExpectedVersion: httpapi.ExpectedVersion(expected)}
		for _, e := range events {
			typ, _, data, err := domain.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			req.Events = append(req.Events, httpapi.EventInput{ID: uuid.New(), Type: typ, Data: data, Metadata: httpapi.Metadata{OccurredAt: occurred, Actor: "user:marta", Channel: "web"}})
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	accepted, refused := 0, 0
	for _, typ := range domain.Types() {
		a, err := domain.AuthorityOf(typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, role := range httpapi.Roles {
			t.Run(typ+"/"+string(role), func(t *testing.T) {
				customer := uuid.New()
				events := "/v1/customers/" + customer.String() + "/events"
				sample, err := domaintest.For(typ, customer, at)
				if err != nil {
					t.Fatal(err)
				}
				if typ != domain.TypeCustomerRegistered {
					if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", registerBody(customer, customer.String()[:8]+"@example.com")); r.status != http.StatusCreated {
						t.Fatalf("register: %d %s", r.status, r.body)
					}
				}
				if len(sample.Before) > 0 {
					if r := h.call(t, httpapi.RoleAdmin, "POST", events, body(eventstore.StreamExists, at.Add(-time.Hour), sample.Before...)); r.status != http.StatusOK {
						t.Fatalf("history: %d %s", r.status, r.body)
					}
				}
				before, err := store.Head(ctx)
				if err != nil {
					t.Fatal(err)
				}
				r := h.call(t, role, "POST", events, body(eventstore.Any, at, sample.Event))
				if slices.Contains(a.Writers, role) {
					if r.status != http.StatusOK {
						t.Fatalf("%s may append %s: %d %s", role, typ, r.status, r.body)
					}
					accepted++
					return
				}
				refused++
				if r.status != http.StatusForbidden {
					t.Fatalf("%s appending %s: %d %s, want 403", role, typ, r.status, r.body)
				}
				p := r.problem(t)
				switch {
				case p.Slug() != "forbidden":
					t.Errorf("problem type %q", p.Type)
				case role == httpapi.RoleAnalyst || role == httpapi.RoleAuditor:
					// Refused by the route before the body is read.
					if !strings.Contains(p.Detail, "may not POST /v1/customers/{id}/events") {
						t.Errorf("detail %q", p.Detail)
					}
				default:
					want := make([]string, len(a.Writers))
					for i, w := range a.Writers {
						want[i] = string(w)
					}
					if p.EventType != typ || p.Role != string(role) || !slices.Equal(p.AllowedRoles, want) || !strings.Contains(p.Detail, typ) || !strings.Contains(p.Detail, domain.WritersText(a.Writers)) {
						t.Errorf("problem %+v does not name %s, %s and %v", p, typ, role, want)
					}
				}
				if after, err := store.Head(ctx); err != nil || after != before {
					t.Errorf("the refusal moved the head %d → %d (%v)", before, after, err)
				}
			})
		}
	}
	if want := len(domain.Types()) * len(httpapi.Roles); accepted+refused != want {
		t.Errorf("%d accepted + %d refused, want %d attempts", accepted, refused, want)
	}
	// The access log's records are in the log but no customer event: a
	// client that tries to write one is told who may (403), not that the
	// type is unknown.
	for _, role := range []httpapi.Role{httpapi.RoleService, httpapi.RoleAdmin} {
		customer := uuid.New()
		if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", registerBody(customer, customer.String()[:8]+"@example.com")); r.status != http.StatusCreated {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		before, err := store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		forged := `{"expectedVersion":"any","events":[{"id":"` + uuid.NewString() + `","type":"AccessRecorded","data":{"reader":"x"},"metadata":{"occurredAt":"` + at.Format(time.RFC3339Nano) + `","actor":"user:marta","channel":"web"}}]}`
		r := h.call(t, role, "POST", "/v1/customers/"+customer.String()+"/events", forged)
		if r.status != http.StatusForbidden {
			t.Fatalf("%s appending AccessRecorded: %d %s, want 403", role, r.status, r.body)
		}
		if p := r.problem(t); p.EventType != domain.TypeAccessRecorded || !slices.Equal(p.AllowedRoles, []string{"system"}) {
			t.Errorf("problem %+v does not name AccessRecorded and system", p)
		}
		if after, err := store.Head(ctx); err != nil || after != before {
			t.Errorf("the refusal moved the head %d → %d (%v)", before, after, err)
		}
	}
	t.Logf("%d appends accepted, %d refused", accepted, refused)
}

// TestReadmeAndOpenAPIShowTheAuthorityTable: the README's section "Who
// may write which event" and the OpenAPI document's description of the
// append route hold the table the code enforces, row for row.
func TestReadmeAndOpenAPIShowTheAuthorityTable(t *testing.T) {
	table := domain.AuthorityTable()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "## Who may write which event") || !strings.Contains(string(readme), table) {
		t.Errorf("README.md does not hold the authority table; its section \"Who may write which event\" should read:\n%s", table)
	}
	spec, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// In the YAML the table is a literal block, indented.
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(table, "\n"), "\n") {
		lines = append(lines, "        "+l)
	}
	if !strings.Contains(string(spec), strings.Join(lines, "\n")) {
		t.Errorf("openapi.yaml does not hold the authority table in the append route's description; it should read (indented 8):\n%s", table)
	}
}
