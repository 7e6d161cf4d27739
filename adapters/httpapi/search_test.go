package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/google/uuid"
)

// GET /v1/customers/search with a keyring (names sealed in the events):
// prefixes of name words find the customer, revealed; a substring does
// not; pages follow next; an auditor's search leaves one access-log entry
// per customer shown and not the search text; an erased customer is found
// by nothing.
func TestSearchCustomersByName(t *testing.T) {
	h := start(t, func(c *httpapi.Config) { c.Keyring = keyringtest.Memory(t) })
	zoe := h.register(t) // "Zoë Ñúñez"
	other := h.register(t)
	marc := uuid.New()
	body := fmt.Sprintf(`{"customerId":%q,"name":"Marc Núñez-Dubois","company":"Acme","identifiers":[{"kind":"email","value":"marc@example.com"}],"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`, marc)
	if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", body); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	wait := fmt.Sprintf("&minPosition=%d", h.head(t))
	search := func(role httpapi.Role, q, extra string) (query.SearchPage, int) {
		t.Helper()
		r := h.call(t, role, "GET", "/v1/customers/search?q="+url.QueryEscape(q)+wait+extra, "")
		var page query.SearchPage
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
		}
		return page, r.status
	}
	ids := func(p query.SearchPage) []uuid.UUID {
		var out []uuid.UUID
		for _, h := range p.Results {
			out = append(out, h.CustomerID)
		}
		slices.SortFunc(out, func(a, b uuid.UUID) int { return cmpUUID(a, b) })
		return out
	}
	sorted := func(us ...uuid.UUID) []uuid.UUID {
		slices.SortFunc(us, func(a, b uuid.UUID) int { return cmpUUID(a, b) })
		return us
	}
	tests := []struct {
		q    string
		want []uuid.UUID
	}{
		{"nu", sorted(zoe, other, marc)},
		{"NÚÑEZ zo", sorted(zoe, other)},
		{"dub", []uuid.UUID{marc}},
		{"ubois", nil},
	}
	for _, tt := range tests {
		page, status := search(httpapi.RoleService, tt.q, "")
		if status != http.StatusOK || !slices.Equal(ids(page), tt.want) {
			t.Errorf("search %q: %d %+v, want %v", tt.q, status, page, tt.want)
		}
	}
	if page, _ := search(httpapi.RoleService, "marc", ""); len(page.Results) != 1 || page.Results[0].Name != "Marc Núñez-Dubois" || page.Results[0].Company != "Acme" {
		t.Errorf("hit not revealed: %+v", page)
	}
	for _, q := range []string{"", "z", "-"} {
		if _, status := search(httpapi.RoleService, q, ""); status != http.StatusBadRequest {
			t.Errorf("search %q: %d, want 400", q, status)
		}
	}
	if r := h.call(t, httpapi.RoleAnalyst, "GET", "/v1/customers/search?q=zo", ""); r.status != http.StatusForbidden {
		t.Errorf("analyst search: %d, want 403", r.status)
	}

	// Paging: two pages of one cover both Zoës.
	first, _ := search(httpapi.RoleAuditor, "zoe", "&limit=1")
	if len(first.Results) != 1 || first.Next == "" {
		t.Fatalf("first page %+v", first)
	}
	second, _ := search(httpapi.RoleAuditor, "zoe", "&limit=1&cursor="+first.Next)
	if len(second.Results) != 1 || second.Next != "" || second.Results[0].CustomerID == first.Results[0].CustomerID {
		t.Fatalf("second page %+v", second)
	}
	for _, id := range []uuid.UUID{zoe, other} {
		got := h.accessLog(t, "customer="+id.String())
		if len(got) != 1 || got[0].Resource != "search" || got[0].Query != "q=…" || got[0].Role != "auditor" {
			t.Errorf("access log of %s = %+v, want one search entry without the text", id, got)
		}
	}
	if got := h.accessLog(t, "customer="+marc.String()); len(got) != 0 {
		t.Errorf("a customer not shown is in the access log: %+v", got)
	}

	if r := h.call(t, httpapi.RoleAdmin, "POST", "/v1/customers/"+zoe.String()+"/forget", `{"request":"DSR-1","reason":"asked"}`); r.status != http.StatusOK {
		t.Fatalf("forget: %d %s", r.status, r.body)
	}
	wait = fmt.Sprintf("&minPosition=%d", h.head(t))
	if page, _ := search(httpapi.RoleService, "zoe", ""); !slices.Equal(ids(page), []uuid.UUID{other}) {
		t.Errorf("after erasure search zoe = %+v, want only %s", page, other)
	}
}

func cmpUUID(a, b uuid.UUID) int {
	switch {
	case a.String() < b.String():
		return -1
	case a.String() > b.String():
		return 1
	}
	return 0
}
