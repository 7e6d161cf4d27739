package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/cxledger/cxledger/eventstore"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/google/uuid"
)

// One token per role, long enough to pass MinTokenLength.
var tokens = map[httpapi.Role]string{
	httpapi.RoleService: "svc-0123456789abcdef",
	httpapi.RoleAnalyst: "ana-0123456789abcdef",
	httpapi.RoleAuditor: "aud-0123456789abcdef",
	httpapi.RoleAdmin:   "adm-0123456789abcdef",
}

type harness struct {
	url    string
	store  *memstore.Store
	server *httpapi.Server
	logs   *syncBuffer
}

// start runs the real server (memory store and read models, live engine)
// on a loopback port.
func start(t *testing.T, tune func(*httpapi.Config)) *harness {
	t.Helper()
	store := memstore.New(memstore.Config{})
	h, _, stop := serveOver(t, store, projections.NewMemory(), tune)
	h.store = store
	t.Cleanup(func() {
		stop()
		_ = store.Close()
	})
	return h
}

// serveOver serves store and rm with a live engine running every read
// model, on a loopback port. stop shuts the server and the engine down
// (once; the caller closes store and rm).
func serveOver(t *testing.T, store eventstore.Store, rm projections.Backend, tune func(*httpapi.Config)) (h *harness, eng *projections.Engine, stop func()) {
	t.Helper()
	eng, err := projections.NewEngine(store, rm, projections.Config{Logger: slog.New(slog.DiscardHandler), HeadInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var toks httpapi.Tokens
	for role, tok := range tokens {
		if err := toks.Add(role, tok); err != nil {
			t.Fatal(err)
		}
	}
	logs := &syncBuffer{}
	cfg := httpapi.Config{Store: store, ReadModels: rm, Projections: eng, Tokens: &toks,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if tune != nil {
		tune(&cfg)
	}
	// The read models key identifiers with the keyring tune configured,
	// if any (a nil keyring indexes plaintext).
	for _, p := range catalog.All(catalog.Deps{Identifiers: cfg.Keyring}) {
		if err := eng.Register(p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	go func() { defer close(engDone); _ = eng.Run(ctx) }()
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			if err := srv.Shutdown(sctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			<-served
			cancel()
			<-engDone
		})
	}
	return &harness{url: "http://" + srv.Addr(), server: srv, logs: logs}, eng, stop
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problem(t *testing.T) httpapi.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p httpapi.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Title == "" || !strings.HasPrefix(p.Type, httpapi.ProblemTypeBase) || p.RequestID == "" {
		t.Fatalf("incomplete problem %+v (status %d)", p, r.status)
	}
	return p
}

// call sends a raw request with role's token ("" role: none).
func (h *harness) call(t *testing.T, role httpapi.Role, method, path, body string, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+tokens[role])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i]) // "" leaves the header out
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func registerBody(id uuid.UUID, email string) string {
	return fmt.Sprintf(`{"customerId":%q,"name":"Zoë Ñúñez","country":"ES","identifiers":[{"kind":"email","value":%q}],"metadata":{"occurredAt":%q,"actor":"service:crm"}}`, id, email, now())
}

func callBody(expected string, ids ...uuid.UUID) string {
	var evs []string
	for _, id := range ids {
		evs = append(evs, fmt.Sprintf(`{"id":%q,"type":"CallLogged","data":{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"user:marta","channel":"phone"}}`, id))
	}
	if _, err := strconv.ParseUint(expected, 10, 64); err != nil {
		expected = strconv.Quote(expected)
	}
	return fmt.Sprintf(`{"expectedVersion":%s,"events":[%s]}`, expected, strings.Join(evs, ","))
}

func (h *harness) register(t *testing.T) uuid.UUID {
	t.Helper()
	id := uuid.New()
	r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", registerBody(id, id.String()[:8]+"@example.com"))
	if r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	return id
}

func (h *harness) head(t *testing.T) uint64 {
	t.Helper()
	p, err := h.store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrorStatuses(t *testing.T) {
	h := start(t, func(c *httpapi.Config) { c.MaxBodyBytes = 64 << 10 })
	id := h.register(t)
	first := uuid.New()
	if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", callBody("1", first)); r.status != 200 {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	events := "/v1/customers/" + id.String() + "/events"
	unknown := uuid.New()
	big := `{"events":[{"type":"NoteAdded","data":{"body":"` + strings.Repeat("x", 70<<10) + `"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"user:a"}}]}`

	cases := []struct {
		name         string
		role         httpapi.Role
		method, path string
		body         string
		status       int
		slug         string
		check        func(t *testing.T, p httpapi.Problem)
	}{
		{"malformed JSON", httpapi.RoleService, "POST", events, `{"events":[`, 400, "malformed", nil},
		{"trailing data", httpapi.RoleService, "POST", events, callBody("2", uuid.New()) + `{}`, 400, "malformed", nil},
		{"bad customer id", httpapi.RoleService, "GET", "/v1/customers/not-a-uuid", "", 400, "malformed", nil},
		{"bad limit", httpapi.RoleAnalyst, "GET", "/v1/events?limit=0", "", 400, "malformed", nil},
		{"no token", "", "GET", "/v1/events", "", 401, "unauthenticated", nil},
		{"wrong role", httpapi.RoleAnalyst, "POST", events, callBody("2", uuid.New()), 403, "forbidden", nil},
		{"unknown stream", httpapi.RoleService, "GET", "/v1/customers/" + unknown.String() + "/events", "", 404, "not-found", nil},
		{"unknown view", httpapi.RoleService, "GET", "/v1/customers/" + unknown.String(), "", 404, "not-found", nil},
		{"unknown route", httpapi.RoleAdmin, "GET", "/v1/nothing", "", 404, "not-found", nil},
		{"unknown projection", httpapi.RoleAdmin, "POST", "/v1/projections/nope/rebuild", "", 404, "not-found", nil},
		{"version conflict", httpapi.RoleService, "POST", events, callBody("0", uuid.New()), 409, "version-conflict", func(t *testing.T, p httpapi.Problem) {
			if p.ActualVersion == nil || *p.ActualVersion != 2 || p.ExpectedVersion != "0" {
				t.Errorf("conflict extension: actual %v expected %q, want 2 and 0", p.ActualVersion, p.ExpectedVersion)
			}
		}},
		{"duplicate event id", httpapi.RoleService, "POST", events, strings.Replace(callBody("any", first), "754", "755", 1), 409, "duplicate-event", nil},
		{"rejected", httpapi.RoleService, "POST", events, fmt.Sprintf(`{"events":[{"type":"CustomerRegistered","data":{"customerId":%q,"name":"Again"},"metadata":{"occurredAt":%q,"actor":"service:crm"}}]}`, id, now()), 409, "rejected", func(t *testing.T, p httpapi.Problem) {
			if p.Entity != "customer" || p.EventType != "CustomerRegistered" || p.Rule == "" {
				t.Errorf("rejection extension: %+v", p)
			}
		}},
		{"too large", httpapi.RoleService, "POST", events, big, 413, "too-large", nil},
		{"not JSON", httpapi.RoleService, "POST", events, "", 415, "unsupported-media-type", nil},
		{"invalid field", httpapi.RoleService, "POST", events, strings.Replace(callBody("any", uuid.New()), `"inbound"`, `"sideways"`, 1), 422, "invalid", func(t *testing.T, p httpapi.Problem) {
			if p.Field != "events[0].data.direction" {
				t.Errorf("field %q, want events[0].data.direction", p.Field)
			}
		}},
		{"unknown data field", httpapi.RoleService, "POST", events, strings.Replace(callBody("any", uuid.New()), `"agent"`, `"agnet"`, 1), 422, "invalid", func(t *testing.T, p httpapi.Problem) {
			if !strings.Contains(p.Field, "agnet") {
				t.Errorf("field %q, want it to name agnet", p.Field)
			}
		}},
		{"invalid metadata", httpapi.RoleService, "POST", events, strings.Replace(callBody("any", uuid.New()), `"actor":"user:marta"`, `"actor":"marta"`, 1), 422, "invalid", func(t *testing.T, p httpapi.Problem) {
			if p.Field != "events[0].metadata.actor" {
				t.Errorf("field %q", p.Field)
			}
		}},
		{"unknown type", httpapi.RoleService, "POST", events, strings.Replace(callBody("any", uuid.New()), "CallLogged", "CallMade", 1), 422, "unknown-event-type", func(t *testing.T, p httpapi.Problem) {
			if p.EventType != "CallMade" {
				t.Errorf("eventType %q", p.EventType)
			}
		}},
		{"invalid registration", httpapi.RoleService, "POST", "/v1/customers", `{"name":"","metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`, 422, "invalid", func(t *testing.T, p httpapi.Problem) {
			if p.Field != "name" {
				t.Errorf("field %q", p.Field)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.head(t)
			var r response
			if tc.name == "not JSON" {
				r = h.call(t, tc.role, tc.method, tc.path, callBody("any", uuid.New()), "Content-Type", "text/plain")
			} else {
				r = h.call(t, tc.role, tc.method, tc.path, tc.body)
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			p := r.problem(t)
			if p.Slug() != tc.slug {
				t.Errorf("problem type %q, want %s", p.Type, tc.slug)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
			if after := h.head(t); after != before {
				t.Errorf("store head moved from %d to %d: a refused request wrote", before, after)
			}
		})
	}
}

func TestIdempotentRetry(t *testing.T) {
	h := start(t, nil)
	id := h.register(t)
	body := callBody("1", uuid.New(), uuid.New())
	a := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", body)
	head := h.head(t)
	b := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", body)
	if a.status != 200 || b.status != 200 || !bytes.Equal(a.body, b.body) {
		t.Fatalf("retry: %d %s / %d %s", a.status, a.body, b.status, b.body)
	}
	if h.head(t) != head {
		t.Fatal("retry wrote")
	}
}

// TestRoles checks every route against every role: 403 exactly where the
// routing table says, never 401 with a valid token.
func TestRoles(t *testing.T) {
	h := start(t, nil)
	id := h.register(t)
	paths := map[string]string{
		"POST /v1/customers":                     "/v1/customers",
		"GET /v1/customers":                      "/v1/customers?identifier=email:" + id.String()[:8] + "@example.com",
		"GET /v1/customers/{id}":                 "/v1/customers/" + id.String(),
		"POST /v1/customers/{id}/events":         "/v1/customers/" + id.String() + "/events",
		"POST /v1/customers/{id}/forget":         "/v1/customers/" + id.String() + "/forget",
		"GET /v1/customers/{id}/events":          "/v1/customers/" + id.String() + "/events",
		"GET /v1/customers/{id}/timeline":        "/v1/customers/" + id.String() + "/timeline",
		"GET /v1/pipeline":                       "/v1/pipeline",
		"GET /v1/analytics/rfm":                  "/v1/analytics/rfm",
		"GET /v1/analytics/channels":             "/v1/analytics/channels",
		"GET /v1/analytics/tickets":              "/v1/analytics/tickets",
		"GET /v1/analytics/nps":                  "/v1/analytics/nps",
		"GET /v1/analytics/customers/{id}":       "/v1/analytics/customers/" + id.String(),
		"GET /v1/events":                         "/v1/events",
		"GET /v1/events/live":                    "/v1/events/live",
		"GET /v1/projections":                    "/v1/projections",
		"POST /v1/projections/{name}/rebuild":    "/v1/projections/nope/rebuild",
		"POST /v1/projections":                   "/v1/projections",
		"GET /v1/projections/{name}":             "/v1/projections/js_nope",
		"PUT /v1/projections/{name}":             "/v1/projections/js_nope",
		"DELETE /v1/projections/{name}":          "/v1/projections/js_nope",
		"GET /v1/projections/{name}/state":       "/v1/projections/js_nope/state",
		"GET /v1/projections/{name}/export":      "/v1/projections/js_nope/export",
		"POST /v1/queries":                       "/v1/queries",
		"GET /v1/customers/{id}/as-of":           "/v1/customers/" + id.String() + "/as-of?at=2030-01-01",
		"GET /v1/pipeline/as-of":                 "/v1/pipeline/as-of?at=2030-01-01",
		"GET /v1/audit/access":                   "/v1/audit/access",
		"GET /v1/customers/{id}/recommendations": "/v1/customers/" + id.String() + "/recommendations",
		"GET /v1/analytics/campaigns":            "/v1/analytics/campaigns",
		"GET /v1/audit/tree":                     "/v1/audit/tree",
		"GET /v1/audit/checkpoint":               "/v1/audit/checkpoint",
		"GET /v1/audit/proof/inclusion":          "/v1/audit/proof/inclusion?position=1",
		"GET /v1/audit/proof/consistency":        "/v1/audit/proof/consistency?from=0&to=1",
		"GET /v1/customers/{id}/audit":           "/v1/customers/" + id.String() + "/audit",
		"GET /v1/analytics/model":                "/v1/analytics/model",
		"POST /v1/analytics/model/fit":           "/v1/analytics/model/fit",
		"GET /v1/whoami":                         "/v1/whoami",
		"POST /v1/customers/{id}/merge":          "/v1/customers/" + id.String() + "/merge",
		"POST /v1/customers/{id}/unmerge":        "/v1/customers/" + id.String() + "/unmerge",
		"GET /v1/identity/duplicates":            "/v1/identity/duplicates",
		"GET /v1/customers/search":               "/v1/customers/search?q=zo",
		"GET /v1/pipeline/board":                 "/v1/pipeline/board?stage=proposal",
	}
	// The expected table, written out so a change to the routes is a
	// deliberate change here too.
	S, A, U, D := httpapi.RoleService, httpapi.RoleAnalyst, httpapi.RoleAuditor, httpapi.RoleAdmin
	want := map[string][]httpapi.Role{
		"POST /v1/customers":                     {S, D},
		"GET /v1/customers":                      {S, U, D},
		"GET /v1/customers/{id}":                 {S, U, D},
		"POST /v1/customers/{id}/events":         {S, D},
		"POST /v1/customers/{id}/forget":         {D},
		"GET /v1/customers/{id}/events":          {S, U, D},
		"GET /v1/customers/{id}/timeline":        {U, D},
		"GET /v1/pipeline":                       {A, D},
		"GET /v1/analytics/rfm":                  {A, D},
		"GET /v1/analytics/channels":             {A, D},
		"GET /v1/analytics/tickets":              {A, D},
		"GET /v1/analytics/nps":                  {A, D},
		"GET /v1/analytics/customers/{id}":       {A, D},
		"GET /v1/events":                         {A, U, D},
		"GET /v1/events/live":                    {A, U, D},
		"GET /v1/projections":                    {A, U, D},
		"POST /v1/projections/{name}/rebuild":    {A, D},
		"POST /v1/projections":                   {A, D},
		"GET /v1/projections/{name}":             {A, D},
		"PUT /v1/projections/{name}":             {A, D},
		"DELETE /v1/projections/{name}":          {A, D},
		"GET /v1/projections/{name}/state":       {A, D},
		"GET /v1/projections/{name}/export":      {A, D},
		"POST /v1/queries":                       {A, D},
		"GET /v1/customers/{id}/as-of":           {S, U, D},
		"GET /v1/pipeline/as-of":                 {A, D},
		"GET /v1/audit/access":                   {U, D},
		"GET /v1/customers/{id}/recommendations": {S, U, D},
		"GET /v1/analytics/campaigns":            {A, D},
		"GET /v1/audit/tree":                     {U, D},
		"GET /v1/audit/checkpoint":               {U, D},
		"GET /v1/audit/proof/inclusion":          {U, D},
		"GET /v1/audit/proof/consistency":        {U, D},
		"GET /v1/customers/{id}/audit":           {U, D},
		"GET /v1/analytics/model":                {A, D},
		"POST /v1/analytics/model/fit":           {A, D},
		"GET /v1/whoami":                         {S, A, U, D},
		"POST /v1/customers/{id}/merge":          {S, D},
		"POST /v1/customers/{id}/unmerge":        {S, D},
		"GET /v1/identity/duplicates":            {S, A, D},
		"GET /v1/customers/search":               {S, U, D},
		"GET /v1/pipeline/board":                 {A, D},
	}
	if len(h.server.Routes()) != len(want) {
		t.Fatalf("server has %d routes, the test knows %d", len(h.server.Routes()), len(want))
	}
	for pattern, allowed := range want {
		method, _, _ := strings.Cut(pattern, " ")
		for _, role := range httpapi.Roles {
			t.Run(pattern+"/"+string(role), func(t *testing.T) {
				ok := false
				for _, a := range allowed {
					ok = ok || a == role
				}
				status := h.probe(t, role, method, paths[pattern])
				switch {
				case status == 401:
					t.Fatalf("401 with a valid %s token", role)
				case ok && status == 403:
					t.Fatalf("%s refused, want allowed", role)
				case !ok && status != 403:
					t.Fatalf("%s got %d, want 403", role, status)
				}
			})
		}
	}
}

// probe sends a request with an invalid body (so nothing is written) and
// returns the status; live feeds are closed after the headers.
func (h *harness) probe(t *testing.T, role httpapi.Role, method, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(`{}`)
	}
	req, _ := http.NewRequestWithContext(ctx, method, h.url+path, body)
	req.Header.Set("Authorization", "Bearer "+tokens[role])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestUnknownTokenAndPublicRoutes(t *testing.T) {
	h := start(t, nil)
	r := h.call(t, "", "GET", "/v1/events", "", "Authorization", "Bearer not-a-configured-token")
	if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("unknown token: %d %v", r.status, r.header)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		if r := h.call(t, "", "GET", p, ""); r.status != 200 {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	if strings.Contains(h.logs.String(), "not-a-configured-token") || strings.Contains(h.logs.String(), tokens[httpapi.RoleAdmin]) {
		t.Fatal("a token appears in the log")
	}
}

func TestRequestID(t *testing.T) {
	h := start(t, nil)
	r := h.call(t, "", "GET", "/healthz", "", "X-Request-Id", "trace-abc-123")
	if got := r.header.Get("X-Request-Id"); got != "trace-abc-123" {
		t.Fatalf("echoed id %q", got)
	}
	r = h.call(t, "", "GET", "/v1/events", "")
	id := r.header.Get("X-Request-Id")
	if _, err := uuid.Parse(id); err != nil {
		t.Fatalf("generated id %q: %v", id, err)
	}
	if p := r.problem(t); p.RequestID != id {
		t.Fatalf("problem request id %q, header %q", p.RequestID, id)
	}
	if !strings.Contains(h.logs.String(), "request_id="+id) {
		t.Fatalf("log lacks the request id:\n%s", h.logs)
	}
	// A forged id (control characters) is replaced.
	r = h.call(t, "", "GET", "/healthz", "", "X-Request-Id", strings.Repeat("x", 200))
	if got := r.header.Get("X-Request-Id"); len(got) > 128 {
		t.Fatalf("overlong id kept")
	}
}

func TestMetrics(t *testing.T) {
	h := start(t, nil)
	id := h.register(t)
	h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", callBody("any", uuid.New()))
	r := h.call(t, "", "GET", "/metrics", "")
	for _, want := range []string{
		`cxledger_appends_total{outcome="ok"} 2`,
		`cxledger_appended_events_total 3`,
		`cxledger_http_request_duration_seconds_bucket{route="POST /v1/customers/{id}/events",le="+Inf"} 1`,
		`cxledger_http_requests_total{code="201",method="POST",route="POST /v1/customers"} 1`,
		`cxledger_projection_lag{projection="customer360"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s:\n%s", want, r.body)
		}
	}
}

func TestReadYourWrites(t *testing.T) {
	h := start(t, nil)
	id := uuid.New()
	r := h.call(t, httpapi.RoleService, "POST", "/v1/customers", registerBody(id, "Ana@Example.com"))
	var res httpapi.AppendResponse
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 201 || r.header.Get("Location") != "/v1/customers/"+id.String() {
		t.Fatalf("register: %d %s %v", r.status, r.body, r.header)
	}
	if res.Version != 1 || res.Position != 2 {
		t.Fatalf("register result %+v, want version 1 position 2", res)
	}
	r = h.call(t, httpapi.RoleService, "GET", fmt.Sprintf("/v1/customers?identifier=email:ana@example.com&minPosition=%d", res.Position), "")
	if r.status != 200 || !strings.Contains(string(r.body), id.String()) || !strings.Contains(string(r.body), "Zoë Ñúñez") {
		t.Fatalf("lookup: %d %s", r.status, r.body)
	}
	r = h.call(t, httpapi.RoleAuditor, "GET", fmt.Sprintf("/v1/customers/%s/timeline?limit=1&minPosition=%d", id, res.Position), "")
	var page struct {
		Entries    []json.RawMessage `json:"entries"`
		NextCursor string            `json:"nextCursor"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 || len(page.Entries) != 1 || page.NextCursor == "" {
		t.Fatalf("timeline: %d %s", r.status, r.body)
	}
	r = h.call(t, httpapi.RoleAnalyst, "GET", "/v1/events?after=1&limit=5", "")
	var feed httpapi.EventsPage
	if err := json.Unmarshal(r.body, &feed); err != nil || len(feed.Events) != 1 || feed.Events[0].Position != 2 {
		t.Fatalf("feed: %d %s", r.status, r.body)
	}
	// Before the first fit the model routes say so; an analyst's fit makes
	// them answer.
	if r := h.call(t, httpapi.RoleAnalyst, "GET", "/v1/analytics/rfm", ""); r.status != 503 || !strings.Contains(string(r.body), "no-model") {
		t.Errorf("rfm before a fit: %d %s", r.status, r.body)
	}
	if r := h.call(t, httpapi.RoleAnalyst, "POST", "/v1/analytics/model/fit", `{}`); r.status != 200 {
		t.Errorf("fit: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/v1/pipeline", "/v1/analytics/rfm", "/v1/analytics/model", "/v1/analytics/channels", "/v1/analytics/tickets", "/v1/analytics/nps", "/v1/projections?digest=true"} {
		if r := h.call(t, httpapi.RoleAnalyst, "GET", p, ""); r.status != 200 {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
}

// TestLiveFeedSlowClientDropped: a client that stops reading is dropped by
// the write deadline instead of holding server memory.
func TestLiveFeedSlowClientDropped(t *testing.T) {
	h := start(t, func(c *httpapi.Config) { c.SSEWriteTimeout = 200 * time.Millisecond; c.SSEBatch = 10 })
	id := h.register(t)
	// Enough data to fill the socket buffers of a client that never reads.
	note := `{"type":"NoteAdded","data":{"body":"` + strings.Repeat("n", 9000) + `"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"user:a"}}`
	for i := 0; i < 10; i++ {
		evs := strings.TrimSuffix(strings.Repeat(note+",", 100), ",")
		if r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", `{"events":[`+evs+`]}`); r.status != 200 {
			t.Fatalf("append: %d %.300s", r.status, r.body)
		}
	}
	req, _ := http.NewRequest("GET", h.url+"/v1/events/live", nil)
	req.Header.Set("Authorization", "Bearer "+tokens[httpapi.RoleAnalyst])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read nothing; the server must give up on us.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.logs.String(), "live feed client dropped") {
		if time.Now().After(deadline) {
			t.Fatal("slow client not dropped")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is a log sink tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
