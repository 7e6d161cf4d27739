package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/script"
)

func startAnalyst(t *testing.T) *harness {
	t.Helper()
	return start(t, func(c *httpapi.Config) {
		m, err := analyst.New(analyst.Config{Backend: c.ReadModels, Engine: c.Projections.(*projections.Engine),
			Compile: analyst.ScriptCompiler(script.Limits{}), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		c.Analyst = m
	})
}

const (
	byTypeJS = `fromAll().when({
	$init: function () { return {}; },
	$any: function (s, e) { s[e.eventType] = (s[e.eventType] || 0) + 1; }
});`
	perCustomerJS = `fromCategory('customer').foreachStream().when({
	$init: () => ({ calls: 0, seconds: 0 }),
	CallLogged: (s, e) => { s.calls++; s.seconds += e.body.durationSeconds; }
});`
	poisonJS = `fromAll().when({
	CallLogged: function (s, e) { throw new Error("boom at " + e.sequenceNumber); }
});`
)

func projBody(name, src string) string {
	b, _ := json.Marshal(map[string]string{"name": name, "source": src})
	return string(b)
}

// sseEvents splits a Server-Sent Events body into (event, data) pairs.
func sseEvents(body []byte) [][2]string {
	var out [][2]string
	for _, block := range strings.Split(string(body), "\n\n") {
		var ev, data string
		for _, line := range strings.Split(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				data = v
			}
		}
		if ev != "" {
			out = append(out, [2]string{ev, data})
		}
	}
	return out
}

func (h *harness) calls(t *testing.T, customer uuid.UUID, n int) {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+customer.String()+"/events", callBody("any", ids...))
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
}

func TestAnalystProjectionsOverTheAPI(t *testing.T) {
	h := startAnalyst(t)
	A, S, U := httpapi.RoleAnalyst, httpapi.RoleService, httpapi.RoleAuditor
	var customers []uuid.UUID
	for i := range 3 {
		c := h.register(t)
		customers = append(customers, c)
		h.calls(t, c, i+1)
	}

	// Roles: an analyst may create; a service or an auditor may not.
	for _, role := range []httpapi.Role{S, U} {
		if r := h.call(t, role, "POST", "/v1/projections", projBody("by_type", byTypeJS)); r.status != http.StatusForbidden {
			t.Errorf("%s create: %d %s", role, r.status, r.body)
		}
	}
	// A script that does not compile: 422 with where.
	r := h.call(t, A, "POST", "/v1/projections", projBody("broken", "fromAll().when({\n  $any: function (s, e) { s.x = ; }\n});"))
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad script: %d %s", r.status, r.body)
	}
	if p := r.problem(t); p.Slug() != "invalid-script" || p.Line != 2 || p.Column == 0 {
		t.Errorf("bad script problem %+v", p)
	}
	if r := h.call(t, A, "POST", "/v1/projections", `{"name":"x","source":"fromAll()","extra":1}`); r.status != http.StatusBadRequest {
		t.Errorf("unknown member: %d %s", r.status, r.body)
	}

	// Created, with progress as events until it serves the head.
	r = h.call(t, A, "POST", "/v1/projections", projBody("by_type", byTypeJS), "Accept", "text/event-stream")
	evs := sseEvents(r.body)
	if r.status != http.StatusOK || len(evs) < 2 || evs[0][0] != "progress" || evs[len(evs)-1][0] != "done" {
		t.Fatalf("create with progress: %d %s", r.status, r.body)
	}
	var def analyst.Definition
	if err := json.Unmarshal([]byte(evs[len(evs)-1][1]), &def); err != nil || def.Name != "js_by_type" || def.CreatedBy != "analyst:"+tokenName(t, h, A) {
		t.Errorf("created %+v (%v)", def, err)
	}
	if r := h.call(t, A, "POST", "/v1/projections", projBody("by_type", byTypeJS)); r.status != http.StatusConflict {
		t.Errorf("second create: %d %s", r.status, r.body)
	}

	// Its state equals a one-time query at the same position.
	r = h.call(t, A, "GET", "/v1/projections/js_by_type/state", "")
	var st httpapi.StateOut
	if err := json.Unmarshal(r.body, &st); err != nil || r.status != 200 || st.Partitioned || st.Checkpoint < 1 {
		t.Fatalf("state: %d %s", r.status, r.body)
	}
	q, _ := json.Marshal(httpapi.QueryRequest{Source: byTypeJS, To: st.Checkpoint})
	r = h.call(t, A, "POST", "/v1/queries", string(q))
	var res analyst.ResultJSON
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 {
		t.Fatalf("query: %d %s", r.status, r.body)
	}
	if !jsonEqual(t, res.State, st.State) || res.Position != st.Checkpoint {
		t.Errorf("query %s at %d, projection %s at %d", res.State, res.Position, st.State, st.Checkpoint)
	}
	if r := h.call(t, S, "POST", "/v1/queries", string(q)); r.status != http.StatusForbidden {
		t.Errorf("service query: %d", r.status)
	}

	// A partitioned projection: pages, one partition, export.
	r = h.call(t, A, "POST", "/v1/projections", projBody("calls_per_customer", perCustomerJS), "Accept", "text/event-stream")
	if evs := sseEvents(r.body); len(evs) == 0 || evs[len(evs)-1][0] != "done" {
		t.Fatalf("create partitioned: %s", r.body)
	}
	seen := map[string]json.RawMessage{}
	after := ""
	for range 10 {
		r = h.call(t, A, "GET", "/v1/projections/js_calls_per_customer/state?limit=2&after="+after, "")
		var page httpapi.StateOut
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 || !page.Partitioned {
			t.Fatalf("page: %d %s", r.status, r.body)
		}
		for _, p := range page.Partitions {
			seen[p.Key] = p.State
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(seen) != 3 {
		t.Fatalf("partitions %v", seen)
	}
	key := "customer-" + customers[2].String()
	r = h.call(t, A, "GET", "/v1/projections/js_calls_per_customer/state?partition="+key, "")
	if err := json.Unmarshal(r.body, &st); err != nil || !jsonEqual(t, st.State, json.RawMessage(`{"calls":3,"seconds":2262}`)) {
		t.Errorf("partition %s: %s", key, r.body)
	}
	r = h.call(t, A, "GET", "/v1/projections/js_calls_per_customer/export?format=csv", "")
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 4 || strings.Join(recs[0], ",") != "partition,calls,seconds" {
		t.Errorf("export: %v %q", err, recs)
	}

	// Update: the new version replaces the old once built.
	upd, _ := json.Marshal(map[string]string{"source": strings.Replace(perCustomerJS, "s.calls++", "s.calls += 10", 1)})
	r = h.call(t, A, "PUT", "/v1/projections/calls_per_customer", string(upd), "Accept", "text/event-stream")
	if evs := sseEvents(r.body); len(evs) == 0 || evs[len(evs)-1][0] != "done" {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	r = h.call(t, A, "GET", "/v1/projections/js_calls_per_customer/state?partition="+key, "")
	if err := json.Unmarshal(r.body, &st); err != nil || !jsonEqual(t, st.State, json.RawMessage(`{"calls":30,"seconds":2262}`)) {
		t.Errorf("after update %s: %s", key, r.body)
	}

	// A poison script stops alone; the server stays ready.
	r = h.call(t, A, "POST", "/v1/projections", projBody("poison", poisonJS), "Accept", "text/event-stream")
	evs = sseEvents(r.body)
	if len(evs) == 0 || evs[len(evs)-1][0] != "failed" || !strings.Contains(evs[len(evs)-1][1], "boom at") {
		t.Fatalf("poison: %s", r.body)
	}
	var list struct {
		Projections []httpapi.ProjectionStatus `json:"projections"`
	}
	r = h.call(t, A, "GET", "/v1/projections", "")
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, p := range list.Projections {
		switch p.Name {
		case "js_poison":
			found++
			if p.State != projections.StateFailed || p.Analyst == nil || p.Analyst.Failure == nil || p.Analyst.Failure.Position == 0 || p.Analyst.Failure.Stack == "" {
				t.Errorf("poison status %+v analyst %+v", p.Status, p.Analyst)
			}
		case "js_by_type", "js_calls_per_customer":
			found++
			if p.State != projections.StateLive || p.Analyst == nil || p.Analyst.Digest == "" || p.Analyst.Source != "" {
				t.Errorf("%s status %+v analyst %+v", p.Name, p.Status, p.Analyst)
			}
		case "timeline":
			found++ // the built-ins are listed beside
		}
	}
	if found != 4 {
		t.Errorf("listed %d of 4: %s", found, r.body)
	}
	if r := h.call(t, "", "GET", "/readyz", ""); r.status != 200 {
		t.Errorf("readyz with a failed analyst projection: %d %s", r.status, r.body)
	}

	// Delete: gone, nothing left.
	if r := h.call(t, A, "DELETE", "/v1/projections/js_poison", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := h.call(t, A, "GET", "/v1/projections/js_poison", ""); r.status != http.StatusNotFound {
		t.Errorf("after delete: %d %s", r.status, r.body)
	}

	// The access log has the analysts' creates and reads.
	r = h.call(t, U, "GET", "/v1/audit/access?limit=100", "")
	for _, want := range []string{"analyst-projection-create", "analyst-state", "analyst-query", "analyst-export", "analyst-projection-update", "analyst-projection-delete"} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("access log lacks %s", want)
		}
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// tokenName is the name the server gives role's test token.
func tokenName(t *testing.T, h *harness, role httpapi.Role) string {
	t.Helper()
	_ = h
	var toks httpapi.Tokens
	if err := toks.Add(role, tokens[role]); err != nil {
		t.Fatal(err)
	}
	p, _ := toks.Lookup(tokens[role])
	return p.Name
}

// FuzzDecodeProjectionRequest: the create/update body decoder never panics,
// and whatever it accepts has a source and re-encodes to a body it accepts
// again, equal.
func FuzzDecodeProjectionRequest(f *testing.F) {
	for _, seed := range []string{
		projBody("by_type", byTypeJS),
		`{"source":"fromAll()"}`,
		`{"name":"x","source":""}`,
		`{"name":"x","source":"a","name":"y"}`,
		`{"Name":"x","name":"y","source":"s"}`,
		`{"source":"\ud800"}`,
		`{"source":"s"} trailing`,
		`[]`, `null`, ``, `{"source":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := httpapi.DecodeProjectionRequest(body)
		if err != nil {
			return
		}
		if strings.TrimSpace(req.Source) == "" {
			t.Fatalf("accepted without a source: %q", body)
		}
		again, _ := json.Marshal(req)
		back, err := httpapi.DecodeProjectionRequest(again)
		if err != nil || back != req {
			t.Fatalf("round trip %q → %q: %+v %v", body, again, back, err)
		}
	})
}
