package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/google/uuid"
)

func (h *harness) accessLog(t *testing.T, query string) []access.Entry {
	t.Helper()
	r := h.call(t, httpapi.RoleAuditor, "GET", "/v1/audit/access?"+query, "")
	var page access.Page
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
		t.Fatalf("access log: %d %s", r.status, r.body)
	}
	return page.Entries
}

// TestAccessLog: every successful read of a customer's personal data by an
// auditor, analyst or admin is in the access log with who, what and which
// query; services' reads and failed reads are not; the log is the
// auditor's.
func TestAccessLog(t *testing.T) {
	h := start(t, nil)
	id := h.register(t)
	other := h.register(t)
	wait := fmt.Sprintf("minPosition=%d", h.head(t))

	reads := []struct {
		role   httpapi.Role
		path   string
		status int
	}{
		{httpapi.RoleAuditor, "/v1/customers/" + id.String() + "/timeline?" + wait, 200},
		{httpapi.RoleAuditor, "/v1/customers/" + id.String() + "?" + wait, 200},
		{httpapi.RoleService, "/v1/customers/" + id.String() + "?" + wait, 200},          // a service: not logged
		{httpapi.RoleAdmin, "/v1/customers/" + id.String() + "/events", 200},             // admin: logged
		{httpapi.RoleAuditor, "/v1/customers/" + uuid.NewString() + "/timeline", 404},    // nothing shown: not logged
		{httpapi.RoleAuditor, "/v1/customers/" + id.String() + "/timeline?limit=0", 400}, // refused: not logged
		{httpapi.RoleAuditor, "/v1/customers/" + id.String() + "/as-of?at=2030-01-01&basis=occurred", 200},
		{httpapi.RoleAuditor, "/v1/customers/" + other.String() + "?" + wait, 200},
		{httpapi.RoleAuditor, "/v1/customers?identifier=email:" + id.String()[:8] + "@example.com&" + wait, 200},
		{httpapi.RoleAuditor, "/v1/customers?identifier=email:nobody@example.com", 404},
	}
	for _, rd := range reads {
		if r := h.call(t, rd.role, "GET", rd.path, ""); r.status != rd.status {
			t.Fatalf("%s %s: %d %s", rd.role, rd.path, r.status, r.body)
		}
	}

	got := h.accessLog(t, "customer="+id.String())
	var seen []string
	for _, e := range got {
		seen = append(seen, e.Role+"/"+e.Resource)
		if e.Customer != id || e.Via != "http" || e.RequestID == "" || e.At.IsZero() || !strings.HasPrefix(e.Reader, e.Role+"-") {
			t.Errorf("entry %+v", e)
		}
	}
	if want := "auditor/timeline auditor/view admin/events auditor/view-as-of auditor/lookup"; strings.Join(seen, " ") != want {
		t.Fatalf("access log of the customer = %v, want %s", seen, want)
	}
	if got[0].Query != wait || got[3].Query != "at=2030-01-01&basis=occurred" {
		t.Errorf("queries %q, %q", got[0].Query, got[3].Query)
	}
	// The lookup's identifier is personal data: only its kind is kept.
	if q := got[4].Query; q != "identifier=email:…" {
		t.Errorf("lookup query %q", q)
	}

	// By reader, across customers.
	byAuditor := h.accessLog(t, "reader="+got[0].Reader)
	if len(byAuditor) != 5 || byAuditor[3].Customer != other {
		t.Errorf("auditor's reads = %+v", byAuditor)
	}
	// Reading the access log is not itself a customer read; analysts may not.
	if r := h.call(t, httpapi.RoleAnalyst, "GET", "/v1/audit/access", ""); r.status != http.StatusForbidden {
		t.Errorf("analyst reading the access log: %d", r.status)
	}
	if r := h.call(t, httpapi.RoleAuditor, "GET", "/v1/audit/access?customer=nope", ""); r.status != http.StatusBadRequest {
		t.Errorf("bad customer: %d", r.status)
	}
	if r := h.call(t, httpapi.RoleAuditor, "GET", "/v1/audit/access?to="+time.Now().Add(-time.Hour).Format(time.RFC3339), ""); r.status != 200 || strings.Contains(string(r.body), id.String()) {
		t.Errorf("window before every read: %d %s", r.status, r.body)
	}
}

func TestAsOfRoutes(t *testing.T) {
	h := start(t, nil)
	id := h.register(t)
	r := h.call(t, httpapi.RoleService, "GET", "/v1/customers/"+id.String()+"/as-of?at=2099-01-01", "")
	var v struct {
		CustomerID uuid.UUID `json:"customerId"`
		Basis      string    `json:"basis"`
		Events     int       `json:"events"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 || v.CustomerID != id || v.Basis != "recorded" || v.Events != 2 {
		t.Fatalf("as-of view: %d %s", r.status, r.body)
	}
	for path, status := range map[string]int{
		"/v1/customers/" + id.String() + "/as-of":                           400, // at is required
		"/v1/customers/" + id.String() + "/as-of?at=yesterday":              400,
		"/v1/customers/" + id.String() + "/as-of?at=2099-01-01&basis=valid": 400,
		"/v1/customers/" + id.String() + "/as-of?at=2000-01-01":             404, // not yet a customer
	} {
		if r := h.call(t, httpapi.RoleService, "GET", path, ""); r.status != status {
			t.Errorf("%s: %d %s, want %d", path, r.status, r.body, status)
		}
	}
	r = h.call(t, httpapi.RoleAnalyst, "GET", "/v1/pipeline/as-of?at=2099-01-01&basis=occurred", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"basis":"occurred"`) {
		t.Fatalf("pipeline as-of: %d %s", r.status, r.body)
	}
}

// The feed hides the access log from analysts and shows it to auditors.
func TestFeedKeepsTheAccessLogForAuditors(t *testing.T) {
	h := start(t, nil)
	id := h.register(t)
	if r := h.call(t, httpapi.RoleAuditor, "GET", fmt.Sprintf("/v1/customers/%s?minPosition=%d", id, h.head(t)), ""); r.status != 200 {
		t.Fatalf("view: %d %s", r.status, r.body)
	}
	count := func(role httpapi.Role) (int, int) {
		r := h.call(t, role, "GET", "/v1/events", "")
		var page httpapi.EventsPage
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
			t.Fatalf("%s feed: %d %s", role, r.status, r.body)
		}
		n := 0
		for _, e := range page.Events {
			if e.Type == access.Type {
				n++
			}
		}
		return len(page.Events), n
	}
	if all, acc := count(httpapi.RoleAuditor); all != 3 || acc != 1 {
		t.Errorf("auditor feed: %d events, %d access entries; want 3, 1", all, acc)
	}
	if all, acc := count(httpapi.RoleAnalyst); all != 2 || acc != 0 {
		t.Errorf("analyst feed: %d events, %d access entries; want 2, 0", all, acc)
	}
	if r := h.call(t, httpapi.RoleAnalyst, "GET", "/v1/events?types=AccessRecorded", ""); r.status != http.StatusForbidden {
		t.Errorf("analyst asking for the access log: %d", r.status)
	}
}

// Every route of the table is documented in openapi.yaml, with its roles.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	h := start(t, nil)
	doc := string(httpapi.OpenAPI)
	for pattern, roles := range h.server.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		i := strings.Index(doc, "\n  "+path+":\n")
		if i < 0 {
			t.Errorf("%s is not in openapi.yaml", path)
			continue
		}
		rest := doc[i+1:]
		if j := strings.Index(rest[1:], "\n  /"); j >= 0 {
			rest = rest[:j+1]
		}
		op := strings.Index(rest, "\n    "+strings.ToLower(method)+":\n")
		if op < 0 {
			t.Errorf("%s: no %s operation in openapi.yaml", path, method)
			continue
		}
		var names []string
		for _, r := range roles {
			names = append(names, string(r))
		}
		if want := "x-roles: [" + strings.Join(names, ", ") + "]"; !strings.Contains(rest[op:], want) {
			t.Errorf("%s %s: openapi.yaml lacks %q", method, path, want)
		}
	}
}

// TestAccessLogEveryPersonalRoute: each route that answers with one
// customer's personal data leaves exactly one entry naming its resource,
// for an analyst, auditor or admin alike, and the auditor finds it by
// customer.
func TestAccessLogEveryPersonalRoute(t *testing.T) {
	tune, _ := withNotary(t) // the audit timeline needs tamper evidence
	h := start(t, tune)
	id := h.register(t)
	// A buyer, so that the analytics model holds a score.
	if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", purchaseBody("2026-03-05T10:00:00Z", "BEANS")); r.status != http.StatusOK {
		t.Fatalf("purchase: %d %s", r.status, r.body)
	}
	wait := fmt.Sprintf("minPosition=%d", h.head(t))
	c := "/v1/customers/" + id.String()
	routes := []struct {
		role     httpapi.Role
		path     string
		resource string
	}{
		{httpapi.RoleAuditor, c + "?" + wait, "view"},
		{httpapi.RoleAuditor, "/v1/customers?identifier=email:" + id.String()[:8] + "@example.com&" + wait, "lookup"},
		{httpapi.RoleAuditor, c + "/as-of?at=2030-01-01", "view-as-of"},
		{httpapi.RoleAuditor, c + "/events", "events"},
		{httpapi.RoleAuditor, c + "/timeline?" + wait, "timeline"},
		{httpapi.RoleAuditor, c + "/audit", "audit-timeline"},
		{httpapi.RoleAdmin, c + "/recommendations?" + wait, "recommendations"},
		{httpapi.RoleAnalyst, "/v1/analytics/customers/" + id.String() + "?" + wait, "score"},
	}
	for i, rt := range routes {
		if r := h.call(t, rt.role, "GET", rt.path, ""); r.status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", rt.role, rt.path, r.status, r.body)
		}
		got := h.accessLog(t, "customer="+id.String())
		if len(got) != i+1 {
			t.Fatalf("after %s: %d entries, want %d: %+v", rt.path, len(got), i+1, got)
		}
		if e := got[i]; e.Resource != rt.resource || e.Role != string(rt.role) || e.Customer != id || e.Via != "http" {
			t.Errorf("%s: entry %+v, want resource %s by %s", rt.path, e, rt.resource, rt.role)
		}
	}
}
