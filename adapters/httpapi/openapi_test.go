package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/boltrm"
	"github.com/cxledger/cxledger/projections/script"
)

// specCase is one request of TestOpenAPIResponses: the operation it
// exercises, who sends it, and the status the server must answer. Paths
// and bodies may hold placeholders the test fills from its fixture:
// {customer} (a seeded customer with a rich history), {email} (the
// registered customer's e-mail), {registered} (the customer the API
// registered), {unknown} (a uuid no one has), {head} (the log's head at
// the time of the call), {survivor} and {absorbed} (two customers the
// cases register with one Gmail mailbox, so a duplicate pair), {mergeId}
// (the id their merge is recorded under).
type specCase struct {
	op     string // operationId
	role   httpapi.Role
	method string
	path   string
	body   string
	status int
	// raw, when set, is sent as is over a connection: a request net/http
	// refuses before any route runs.
	raw string
	// accept, when set, is the request's Accept header (text/event-stream:
	// an analyst build's progress, answered once it serves the head).
	accept string
	// contains, when set, must occur in the answer's body or its Location
	// header (placeholders filled): what shows the call did its work.
	contains string
}

// specCases exercises every operation of openapi.yaml: its success and
// at least one 4xx. A new route is a line here (and an operation in the
// document): TestOpenAPIResponses fails until both exist. The cases run
// in order, against one seeded server.
var specCases = []specCase{
	{op: "registerCustomer", role: httpapi.RoleService, method: "POST", path: "/v1/customers", body: `{"customerId":"{registered}","name":"Zoë Ñúñez","country":"ES","identifiers":[{"kind":"email","value":"{email}"}],"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}`, status: 201},
	{op: "registerCustomer", role: httpapi.RoleService, method: "POST", path: "/v1/customers", body: `{"name":`, status: 400},
	{op: "appendEvents", role: httpapi.RoleService, method: "POST", path: "/v1/customers/{registered}/events", body: `{"expectedVersion":"exists","events":[{"type":"CallLogged","data":{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"},"metadata":{"occurredAt":"2026-01-02T11:00:00Z","actor":"user:marta","channel":"phone"}}]}`, status: 200},
	{op: "appendEvents", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/customers/{registered}/events", body: `{"events":[]}`, status: 403},
	{op: "lookupCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers?identifier=email:{email}&minPosition={head}", status: 200},
	{op: "lookupCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers?identifier=email:nobody-{unknown}@example.com", status: 404},
	{op: "lookupCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers?identifier=nokind", status: 400},
	{op: "searchCustomers", role: httpapi.RoleAuditor, method: "GET", path: "/v1/customers/search?q=zo&minPosition={head}", status: 200},
	{op: "searchCustomers", role: httpapi.RoleService, method: "GET", path: "/v1/customers/search?q=z", status: 400},
	{op: "getCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}", status: 200},
	{op: "getCustomer", role: httpapi.RoleAuditor, method: "GET", path: "/v1/customers/{registered}?minPosition={head}", status: 200},
	{op: "getCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{unknown}", status: 404},
	{op: "getCustomer", method: "GET", path: "/v1/customers/{customer}", status: 401},
	{op: "readStream", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}/events?limit=5", status: 200},
	{op: "readStream", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}/events?limit=0", status: 400},
	{op: "timeline", role: httpapi.RoleAuditor, method: "GET", path: "/v1/customers/{customer}/timeline?limit=20", status: 200},
	{op: "timeline", role: httpapi.RoleAuditor, method: "GET", path: "/v1/customers/{customer}/timeline?from=yesterday", status: 400},
	{op: "customerAsOf", role: httpapi.RoleAuditor, method: "GET", path: "/v1/customers/{customer}/as-of?at=2025-12-01&basis=occurred&score=true", status: 200},
	{op: "customerAsOf", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}/as-of", status: 400},
	{op: "customerAsOf", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}/as-of?at=2001-01-01", status: 404}, // before its first event
	{op: "auditTimeline", role: httpapi.RoleAuditor, method: "GET", path: "/v1/customers/{customer}/audit?proofs=true", status: 200},
	{op: "auditTimeline", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}/audit", status: 403},
	{op: "recommendations", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}/recommendations?minSupport=1", status: 200},
	{op: "recommendations", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}/recommendations?limit=0", status: 400},
	{op: "pipeline", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/pipeline", status: 200},
	{op: "pipeline", role: httpapi.RoleService, method: "GET", path: "/v1/pipeline", status: 403},
	{op: "pipelineBoard", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/pipeline/board?stage=proposal&limit=2&minPosition={head}", status: 200},
	{op: "pipelineBoard", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/pipeline/board?stage=won", status: 400},
	{op: "pipelineAsOf", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/pipeline/as-of?at=2025-12-01&basis=occurred", status: 200},
	{op: "pipelineAsOf", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/pipeline/as-of", status: 400},
	{op: "accessLog", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/access?customer={customer}", status: 200},
	{op: "accessLog", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/access?customer=nope", status: 400},
	{op: "tree", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/tree", status: 200},
	{op: "tree", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/tree?size=many", status: 400},
	{op: "checkpoint", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/checkpoint", status: 200},
	{op: "checkpoint", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/audit/checkpoint", status: 403},
	{op: "inclusionProof", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/proof/inclusion?position=3", status: 200},
	{op: "inclusionProof", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/proof/inclusion", status: 400},
	{op: "consistencyProof", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/proof/consistency?from=2&to={head}", status: 200},
	{op: "consistencyProof", role: httpapi.RoleAuditor, method: "GET", path: "/v1/audit/proof/consistency?from=2", status: 400},
	{op: "campaigns", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/campaigns", status: 200},
	{op: "campaigns", role: httpapi.RoleService, method: "GET", path: "/v1/analytics/campaigns", status: 403},
	{op: "fitAnalyticsModel", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/analytics/model/fit", body: `{"asOf":"2026-01-01","calibrationEnd":"2025-07-01"}`, status: 200},
	{op: "fitAnalyticsModel", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/analytics/model/fit", body: `{"horizonDays":-1}`, status: 400},
	{op: "analyticsModel", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/model", status: 200},
	{op: "analyticsModel", role: httpapi.RoleAuditor, method: "GET", path: "/v1/analytics/model", status: 403},
	{op: "rfm", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/rfm", status: 200},
	{op: "rfm", method: "GET", path: "/v1/analytics/rfm", status: 401},
	{op: "customerScore", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/customers/{customer}", status: 200},
	{op: "customerScore", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/customers/not-a-uuid", status: 400},
	{op: "getCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{customer}", status: 200}, // scored now
	{op: "channelMix", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/channels?from=2025-10-01&to=2026-01-01T00:00:00Z", status: 200},
	{op: "channelMix", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/channels?from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", status: 400},
	{op: "ticketSLA", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/tickets", status: 200},
	{op: "ticketSLA", role: httpapi.RoleService, method: "GET", path: "/v1/analytics/tickets", status: 403},
	{op: "nps", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/analytics/nps", status: 200},
	{op: "nps", role: httpapi.RoleService, method: "GET", path: "/v1/analytics/nps", status: 403},
	{op: "readAll", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/events?limit=5", status: 200},
	{op: "readAll", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/events?limit=0", status: 400},
	{op: "liveFeed", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/events/live?after=0", status: 200},
	{op: "liveFeed", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/events/live?after=x", status: 400},
	{op: "projections", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections?digest=true", status: 200},
	{op: "projections", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections?digest=maybe", status: 400},
	{op: "rebuild", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/projections/nosuchmodel/rebuild", status: 404},
	{op: "whoami", role: httpapi.RoleAuditor, method: "GET", path: "/v1/whoami", status: 200},
	{op: "whoami", method: "GET", path: "/v1/whoami", status: 401},
	// Analyst projections: a create with progress events answers once the
	// build serves the head, so that the reads after it see every event.
	{op: "createProjection", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/projections", body: `{"name":"event_count","source":"` + countJS + `"}`, accept: "text/event-stream", status: 200},
	{op: "createProjection", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/projections", body: `{"name":"events_per_customer","source":"` + perCustomerCountJS + `"}`, accept: "text/event-stream", status: 200},
	{op: "createProjection", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/projections", body: `{"name":"scratch","source":"` + countJS + `"}`, status: 201},
	{op: "createProjection", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/projections", body: `{"name":"event_count","source":"` + countJS + `"}`, status: 409},
	{op: "createProjection", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/projections", body: `{"name":"broken","source":"fromAll().when({$any: function (s, e) { s.x = ; }})"}`, status: 422},
	{op: "createProjection", role: httpapi.RoleService, method: "POST", path: "/v1/projections", body: `{"name":"nope","source":"` + countJS + `"}`, status: 403},
	{op: "getProjection", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_event_count", status: 200},
	{op: "getProjection", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_nosuch", status: 404},
	{op: "projectionState", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_event_count/state", status: 200},
	{op: "projectionState", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_events_per_customer/state?partition=customer-{customer}", status: 200},
	{op: "projectionState", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_events_per_customer/state?limit=2", status: 200},
	{op: "projectionState", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_events_per_customer/state?limit=0", status: 400},
	{op: "projectionState", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_nosuch/state", status: 404},
	{op: "exportProjection", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_events_per_customer/export?format=csv", status: 200},
	{op: "exportProjection", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_events_per_customer/export?format=json", status: 200},
	{op: "exportProjection", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_events_per_customer/export?format=xml", status: 422},
	{op: "runQuery", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/queries", body: `{"source":"` + countJS + `","to":{head}}`, status: 200},
	{op: "runQuery", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/queries", body: `{"source":"` + perCustomerCountJS + `","format":"csv"}`, status: 200},
	{op: "runQuery", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/queries", body: `{"source":"fromAll().when({$any: function (s, e) { s.x = ; }})"}`, status: 422},
	{op: "runQuery", role: httpapi.RoleService, method: "POST", path: "/v1/queries", body: `{"source":"` + countJS + `"}`, status: 403},
	{op: "updateProjection", role: httpapi.RoleAnalyst, method: "PUT", path: "/v1/projections/event_count", body: `{"source":"` + countTwiceJS + `"}`, accept: "text/event-stream", status: 200},
	{op: "updateProjection", role: httpapi.RoleAnalyst, method: "PUT", path: "/v1/projections/scratch", body: `{"source":"` + countTwiceJS + `"}`, status: 200},
	{op: "updateProjection", role: httpapi.RoleAnalyst, method: "PUT", path: "/v1/projections/event_count", body: `{"name":"other","source":"` + countJS + `"}`, status: 400},
	{op: "updateProjection", role: httpapi.RoleAnalyst, method: "PUT", path: "/v1/projections/nosuch", body: `{"source":"` + countJS + `"}`, status: 404},
	{op: "projectionState", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections/js_event_count/state", status: 200}, // version 2
	{op: "deleteProjection", role: httpapi.RoleAnalyst, method: "DELETE", path: "/v1/projections/js_scratch", status: 204},
	{op: "deleteProjection", role: httpapi.RoleAnalyst, method: "DELETE", path: "/v1/projections/js_scratch", status: 404},
	{op: "projections", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/projections", status: 200}, // with the analyst rows
	{op: "forgetCustomer", role: httpapi.RoleAdmin, method: "POST", path: "/v1/customers/{registered}/forget", body: `{"request":"DSR-2026-0042","reason":"asked by mail"}`, status: 200},
	{op: "forgetCustomer", role: httpapi.RoleAdmin, method: "POST", path: "/v1/customers/{registered}/forget", body: `{"request":"DSR-2026-0042"}`, status: 200}, // again: appended false
	{op: "forgetCustomer", role: httpapi.RoleService, method: "POST", path: "/v1/customers/{registered}/forget", body: `{"request":"DSR-2026-0042"}`, status: 403},
	{op: "getCustomer", role: httpapi.RoleAuditor, method: "GET", path: "/v1/customers/{registered}?minPosition={head}", status: 200}, // erased
	// Identity: two records of one mailbox pair up, merge (the absorbed
	// id then redirects to the survivor), and unmerge.
	{op: "registerCustomer", role: httpapi.RoleService, method: "POST", path: "/v1/customers", body: `{"customerId":"{survivor}","name":"Zoë Nguyen","identifiers":[{"kind":"email","value":"zoe.{short}@gmail.com"}],"metadata":{"occurredAt":"2026-01-03T10:00:00Z","actor":"service:crm"}}`, status: 201},
	{op: "registerCustomer", role: httpapi.RoleService, method: "POST", path: "/v1/customers", body: `{"customerId":"{absorbed}","name":"Zoe Nguyen","identifiers":[{"kind":"email","value":"Zoe{short}+shop@gmail.com"}],"metadata":{"occurredAt":"2026-01-04T10:00:00Z","actor":"service:shop"}}`, status: 201},
	{op: "duplicateCandidates", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/identity/duplicates?limit=50&minPosition={head}", status: 200, contains: "{absorbed}"},
	{op: "duplicateCandidates", role: httpapi.RoleService, method: "GET", path: "/v1/identity/duplicates?customer={survivor}&minPosition={head}", status: 200, contains: "{absorbed}"},
	{op: "duplicateCandidates", role: httpapi.RoleAnalyst, method: "GET", path: "/v1/identity/duplicates?customer=nope", status: 400},
	{op: "duplicateCandidates", role: httpapi.RoleAuditor, method: "GET", path: "/v1/identity/duplicates", status: 403},
	{op: "mergeCustomers", role: httpapi.RoleService, method: "POST", path: "/v1/customers/{survivor}/merge", body: `{"absorbed":"{absorbed}","reason":"one Gmail mailbox","mergeId":"{mergeId}","expectedVersion":1,"absorbedExpectedVersion":1}`, status: 200, contains: "{mergeId}"},
	{op: "mergeCustomers", role: httpapi.RoleService, method: "POST", path: "/v1/customers/{customer}/merge", body: `{"absorbed":"{absorbed}","reason":"already merged"}`, status: 409, contains: "already merged into {survivor}"},
	{op: "mergeCustomers", role: httpapi.RoleService, method: "POST", path: "/v1/customers/{survivor}/merge", body: `{"reason":"no one"}`, status: 422, contains: `"field":"absorbed"`},
	{op: "mergeCustomers", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/customers/{survivor}/merge", body: `{"absorbed":"{absorbed}","reason":"x"}`, status: 403},
	{op: "getCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{absorbed}?minPosition={head}", status: 308, contains: "/v1/customers/{survivor}?minPosition="},
	{op: "unmergeCustomers", role: httpapi.RoleService, method: "POST", path: "/v1/customers/{survivor}/unmerge", body: `{"absorbed":"{absorbed}","reason":"two people"}`, status: 422, contains: `"field":"mergeId"`},
	{op: "unmergeCustomers", role: httpapi.RoleAdmin, method: "POST", path: "/v1/customers/{survivor}/unmerge", body: `{"absorbed":"{absorbed}","reason":"two people","mergeId":"{mergeId}"}`, status: 200, contains: "{mergeId}"},
	{op: "unmergeCustomers", role: httpapi.RoleAdmin, method: "POST", path: "/v1/customers/{survivor}/unmerge", body: `{"absorbed":"{absorbed}","reason":"two people","mergeId":"{unknown}"}`, status: 409, contains: "no such merge in effect"},
	{op: "getCustomer", role: httpapi.RoleService, method: "GET", path: "/v1/customers/{absorbed}?minPosition={head}", status: 200, contains: `"customerId":"{absorbed}"`}, // itself again
	{op: "healthz", method: "GET", path: "/healthz", status: 200},
	{op: "healthz", method: "GET", path: "/healthz", raw: "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Trace: a\x00b\r\n\r\n", status: 400},
	{op: "readyz", method: "GET", path: "/readyz", status: 200},
	{op: "readyz", method: "GET", path: "/readyz", raw: "GET /readyz HTTP/1.1\r\n\r\n", status: 400},
	{op: "metrics", method: "GET", path: "/metrics", status: 200},
	{op: "metrics", method: "GET", path: "/metrics", raw: "GET /me trics HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
	{op: "openapi", method: "GET", path: "/openapi.yaml", status: 200},
	{op: "openapi", method: "GET", path: "/openapi.yaml", raw: "GET /openapi.yaml HTTP/1.1\r\nHost: x\r\nX-Trace: \x00\r\n\r\n", status: 400},
	// Last: the rebuild switches the timeline read model under the reads.
	{op: "rebuild", role: httpapi.RoleAnalyst, method: "POST", path: "/v1/projections/timeline/rebuild", status: 202},
}

// Analyst projection scripts of specCases, as JSON string contents: a
// count of every event, the same counted twice, and a count per customer
// (partitioned).
const (
	countJS            = `fromAll().when({$init: function () { return {events: 0}; }, $any: function (s, e) { s.events++; }})`
	countTwiceJS       = `fromAll().when({$init: function () { return {events: 0}; }, $any: function (s, e) { s.events += 2; }})`
	perCustomerCountJS = `fromCategory('customer').foreachStream().when({$init: function () { return {events: 0}; }, $any: function (s, e) { s.events++; }})`
)

// loadSpec parses and validates openapi.yaml (OpenAPI 3.0 rules, every
// $ref resolved, examples and defaults against their schemas).
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI: %v", err)
	}
	return doc
}

// seededServer serves an embedded (bbolt) store and read models seeded
// with a generated history (purchases, tickets, campaigns, surveys,
// opportunities, loyalty, erasures) through the real server, with the
// Merkle tree and a checkpoint key; every read model has caught up when
// it returns. It returns a customer with a rich history.
func seededServer(t *testing.T) (*harness, uuid.UUID) {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "events.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := boltrm.Open(filepath.Join(dir, "readmodels.db"), boltrm.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sum, err := seed.Seed(ctx, store, seed.Config{Customers: 120, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	withTree, _ := withNotary(t)
	tune := func(c *httpapi.Config) {
		withTree(c)
		// as-of with score=true folds the whole log: under the race
		// detector on a loaded machine that outlasts the default 30 s.
		c.RequestTimeout = 5 * time.Minute
		// Analyst projections, so that their routes answer for real.
		m, err := analyst.New(analyst.Config{Backend: c.ReadModels, Engine: c.Projections.(*projections.Engine),
			Compile: analyst.ScriptCompiler(script.Limits{}), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		c.Analyst = m
	}
	h, eng, stop := serveOver(t, store, rm, tune)
	t.Cleanup(func() {
		stop()
		_ = rm.Close()
		_ = store.Close()
	})
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A bound, not a speed target: a loaded machine may take a while.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var names []string
	for _, st := range eng.Status() {
		names = append(names, st.Name)
	}
	if err := eng.WaitFor(wctx, head, names...); err != nil {
		t.Fatalf("read models did not reach the seeded head %d: %v", head, err)
	}
	return h, sum.Sample
}

// TestOpenAPIResponses serves real answers of every route and validates
// each against openapi.yaml with kin-openapi: the request (success cases),
// the status (listed in the operation, not only covered by default), the
// content type and the body, whose objects admit no undocumented member.
// It fails when an operation of the document is not exercised (a success
// and a 4xx) and when the server serves a route the document lacks.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadSpec(t)
	h, customer := seededServer(t)
	// The document's server is the default address; the router matches
	// requests against the test server's instead.
	doc.Servers = openapi3.Servers{{URL: h.url}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Bodies kin-openapi has no decoder for, or would parse though they
	// are served as text: the live feed's stream and this document.
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
	t.Cleanup(func() {
		openapi3filter.UnregisterBodyDecoder("text/event-stream")
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.YamlBodyDecoder)
	})

	registered, survivor, absorbed, mergeID := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	fill := func(s string) string {
		if strings.Contains(s, "{head}") {
			s = strings.ReplaceAll(s, "{head}", strconv.FormatUint(h.headOf(t), 10))
		}
		return strings.NewReplacer(
			"{customer}", customer.String(),
			"{registered}", registered.String(),
			"{email}", "zoe-"+registered.String()[:8]+"@example.com",
			"{unknown}", uuid.NewString(),
			"{survivor}", survivor.String(),
			"{absorbed}", absorbed.String(),
			"{short}", survivor.String()[:8],
			"{mergeId}", mergeID.String(),
		).Replace(s)
	}

	type seen struct{ ok, refused bool }
	exercised := map[string]*seen{}
	for i, tc := range specCases {
		name := fmt.Sprintf("%02d %s %d", i, tc.op, tc.status)
		t.Run(name, func(t *testing.T) {
			path, body := fill(tc.path), fill(tc.body)
			resp, reqForRoute := h.specCall(t, tc, path, body)
			route, params, err := router.FindRoute(reqForRoute)
			if err != nil {
				t.Fatalf("%s %s: no operation in openapi.yaml: %v", tc.method, path, err)
			}
			if route.Operation.OperationID != tc.op {
				t.Fatalf("%s %s is operation %s in openapi.yaml, the case says %s", tc.method, path, route.Operation.OperationID, tc.op)
			}
			if resp.status != tc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, path, resp.status, tc.status, resp.body)
			}
			if want := fill(tc.contains); !strings.Contains(string(resp.body)+"\n"+resp.header.Get("Location"), want) {
				t.Fatalf("%s %s: the answer lacks %q: Location %q, body %.2000s", tc.method, path, want, resp.header.Get("Location"), resp.body)
			}
			if tc.accept == "text/event-stream" && tc.op != "liveFeed" {
				// An analyst build's stream answers 200 whatever becomes
				// of the build: the reads after it need it done.
				if evs := sseEvents(resp.body); len(evs) == 0 || evs[len(evs)-1][0] != "done" {
					t.Fatalf("%s %s: the build did not end with done: %s", tc.method, path, resp.body)
				}
			}
			if route.Operation.Responses.Status(resp.status) == nil {
				t.Fatalf("%s: status %d is not listed in openapi.yaml (only the default covers it)", tc.op, resp.status)
			}
			in := &openapi3filter.RequestValidationInput{
				Request: reqForRoute, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
			}
			if resp.status < 300 {
				if body != "" {
					reqForRoute.Body = io.NopCloser(strings.NewReader(body))
					reqForRoute.Header.Set("Content-Type", "application/json")
				}
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					t.Fatalf("the request does not match openapi.yaml: %v", err)
				}
			}
			out := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in,
				Status:                 resp.status,
				Header:                 resp.header,
				Body:                   io.NopCloser(bytes.NewReader(resp.body)),
				Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
			}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Fatalf("%s %s answered %d, not as openapi.yaml says: %v\nbody: %.2000s", tc.method, path, resp.status, err, resp.body)
			}
			s := exercised[tc.op]
			if s == nil {
				s = &seen{}
				exercised[tc.op] = s
			}
			switch {
			case resp.status < 300:
				s.ok = true
			case resp.status >= 400 && resp.status < 500:
				s.refused = true
			}
		})
	}

	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			s := exercised[op.OperationID]
			switch {
			case s == nil || !s.ok:
				t.Errorf("%s %s (%s): no successful call validated; add a line to specCases", method, path, op.OperationID)
			case !s.refused:
				t.Errorf("%s %s (%s): no 4xx call validated; add a line to specCases", method, path, op.OperationID)
			}
		}
	}
	for _, pattern := range h.server.Patterns() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "", pattern
		}
		if !strings.HasPrefix(path, "/v1/") && doc.Paths.Value(path) == nil {
			continue // the catch-all "/" (a 404 problem), and pages outside the API
		}
		item := doc.Paths.Find(path)
		switch {
		case method == "":
			t.Errorf("the server serves every method of %s: register one pattern per method and document each", pattern)
		case item == nil || item.GetOperation(method) == nil:
			t.Errorf("the server serves %s, which openapi.yaml does not document", pattern)
		}
	}
}

// TestRoutesRegisterThroughHandle keeps Server.Patterns complete, which
// TestOpenAPIResponses checks the document against: the package registers
// routes on its mux only in Server.handle.
func TestRoutesRegisterThroughHandle(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	registrations := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, "mux.Handle") {
				registrations++
				if !strings.Contains(line, "s.mux.Handle(pattern, h)") {
					t.Errorf("%s:%d registers a route outside Server.handle (Patterns, and so the OpenAPI test, would miss it): %s", f, i+1, strings.TrimSpace(line))
				}
			}
		}
	}
	if registrations != 1 {
		t.Errorf("%d mux registrations, want the one in Server.handle", registrations)
	}
}

// headOf is the log's head now: the size of the Merkle tree over it.
func (h *harness) headOf(t *testing.T) uint64 {
	t.Helper()
	r := h.call(t, httpapi.RoleAdmin, "GET", "/v1/audit/tree", "")
	var th httpapi.TreeHead
	if err := json.Unmarshal(r.body, &th); err != nil || r.status != http.StatusOK {
		t.Fatalf("tree head: %d %s", r.status, r.body)
	}
	return uint64(th.Size)
}

// specCall sends tc and returns the answer, with a request for the
// router to find the operation by. The live feed is read up to its first
// event: it never ends by itself.
func (h *harness) specCall(t *testing.T, tc specCase, path, body string) (response, *http.Request) {
	t.Helper()
	forRoute, err := http.NewRequest(tc.method, h.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tc.role != "" {
		forRoute.Header.Set("Authorization", "Bearer "+tokens[tc.role])
	}
	if tc.raw != "" {
		return rawExchange(t, strings.TrimPrefix(h.url, "http://"), tc.raw), forRoute
	}
	if tc.accept != "" {
		forRoute.Header.Set("Accept", tc.accept)
	}
	if tc.status >= 300 && tc.status < 400 {
		return h.callNoFollow(t, forRoute), forRoute
	}
	if tc.op != "liveFeed" || tc.status != http.StatusOK {
		return h.call(t, tc.role, tc.method, path, body, "Accept", tc.accept), forRoute
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, tc.method, h.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = forRoute.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var first bytes.Buffer
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		first.WriteString(sc.Text() + "\n")
		if sc.Text() == "" && strings.Contains(first.String(), "data: ") {
			break
		}
	}
	if !strings.Contains(first.String(), "data: ") {
		t.Fatalf("live feed: no event: %v %q", sc.Err(), first.String())
	}
	return response{resp.StatusCode, resp.Header, first.Bytes()}, forRoute
}

// callNoFollow sends req (no body) and returns the answer itself, not
// where a redirect leads: a merged customer's 308.
func (h *harness) callNoFollow(t *testing.T, req *http.Request) response {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req.Clone(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// TestOpenAPIRefusesUndocumentedMembers shows the validation has teeth:
// a real answer of each main read model with one member more, or one
// required member fewer, no longer matches openapi.yaml.
func TestOpenAPIRefusesUndocumentedMembers(t *testing.T) {
	doc := loadSpec(t)
	h, customer := seededServer(t)
	doc.Servers = openapi3.Servers{{URL: h.url}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.call(t, httpapi.RoleAnalyst, "POST", "/v1/analytics/model/fit", `{"asOf":"2026-01-01"}`); r.status != http.StatusOK {
		t.Fatalf("fit: %d %s", r.status, r.body)
	}
	c := customer.String()
	for _, tc := range []struct {
		role httpapi.Role
		path string
		// nested is a member whose value is an object to add a member to
		// as well ("" for the top level only).
		nested string
	}{
		{httpapi.RoleService, "/v1/customers/" + c, "profile"},
		{httpapi.RoleAuditor, "/v1/customers/" + c + "/as-of?at=2025-12-01&basis=occurred", "profile"},
		{httpapi.RoleAuditor, "/v1/customers/" + c + "/timeline", ""},
		{httpapi.RoleAuditor, "/v1/customers/" + c + "/audit", "checkpoint"},
		{httpapi.RoleService, "/v1/customers/" + c + "/recommendations", ""},
		{httpapi.RoleService, "/v1/customers/" + c + "/events", ""},
		{httpapi.RoleAnalyst, "/v1/pipeline", ""},
		{httpapi.RoleAnalyst, "/v1/analytics/model", "bgnbd"},
		{httpapi.RoleAnalyst, "/v1/analytics/rfm", "model"},
		{httpapi.RoleAnalyst, "/v1/analytics/customers/" + c, ""},
		{httpapi.RoleAnalyst, "/v1/analytics/campaigns", ""},
		{httpapi.RoleAnalyst, "/v1/analytics/nps", ""},
		{httpapi.RoleAnalyst, "/v1/analytics/channels", ""},
		{httpapi.RoleAnalyst, "/v1/analytics/tickets", ""},
		{httpapi.RoleAnalyst, "/v1/projections", ""},
		{httpapi.RoleAuditor, "/v1/audit/access", ""},
		{httpapi.RoleAuditor, "/v1/audit/proof/inclusion?position=1", "record"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := h.call(t, tc.role, "GET", tc.path, "")
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			req, err := http.NewRequest("GET", h.url+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			validate := func(body []byte) error {
				return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
					RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
					Status:                 r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(body)),
					Options: &openapi3filter.Options{IncludeResponseStatus: true},
				})
			}
			if err := validate(r.body); err != nil {
				t.Fatalf("the real answer does not validate: %v", err)
			}
			var m map[string]any
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatal(err)
			}
			mutated := func(change func(map[string]any)) []byte {
				var c map[string]any
				_ = json.Unmarshal(r.body, &c)
				change(c)
				b, _ := json.Marshal(c)
				return b
			}
			if err := validate(mutated(func(c map[string]any) { c["undocumented"] = 1 })); err == nil {
				t.Errorf("a top-level member openapi.yaml does not document passes validation")
			}
			if tc.nested != "" {
				if _, ok := m[tc.nested].(map[string]any); !ok {
					t.Fatalf("%s is not an object in %s", tc.nested, r.body)
				}
				if err := validate(mutated(func(c map[string]any) { c[tc.nested].(map[string]any)["undocumented"] = 1 })); err == nil {
					t.Errorf("a member of %s openapi.yaml does not document passes validation", tc.nested)
				}
			}
			required := route.Operation.Responses.Status(200).Value.Content.Get("application/json").Schema.Value.Required
			if len(required) == 0 {
				t.Fatalf("the schema requires no member")
			}
			if err := validate(mutated(func(c map[string]any) { delete(c, required[0]) })); err == nil {
				t.Errorf("the answer without its required %s passes validation", required[0])
			}
		})
	}
}

// TestOpenAPISchemasAreTyped: no schema of openapi.yaml is a bare
// object (no properties, no additionalProperties, no composition), bar
// the event payloads, whose shape is the event type's (domain).
func TestOpenAPISchemasAreTyped(t *testing.T) {
	doc := loadSpec(t)
	allowed := []string{"EventInput.data", "Record.data"}
	var walk func(where string, s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool)
	walk = func(where string, s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
		if s == nil || s.Value == nil || seen[s.Value] || (s.Ref != "" && len(seen) > 0) {
			return // a component is walked on its own
		}
		seen[s.Value] = true
		v := s.Value
		if v.Type.Is(openapi3.TypeObject) && len(v.Properties) == 0 && v.AdditionalProperties.Schema == nil &&
			v.AdditionalProperties.Has == nil && len(v.AllOf)+len(v.OneOf)+len(v.AnyOf) == 0 && !slices.Contains(allowed, where) {
			t.Errorf("%s is a bare object: list its properties", where)
		}
		for name, p := range v.Properties {
			walk(where+"."+name, p, seen)
		}
		walk(where+"[]", v.Items, seen)
		walk(where+"{}", v.AdditionalProperties.Schema, seen)
		for _, c := range slices.Concat(v.AllOf, v.OneOf, v.AnyOf) {
			walk(where, c, seen)
		}
	}
	for name, s := range doc.Components.Schemas {
		walk(name, s, map[*openapi3.Schema]bool{})
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, r := range op.Responses.Map() {
				for ct, mt := range r.Value.Content {
					walk(fmt.Sprintf("%s %s %s %s", method, path, status, ct), mt.Schema, map[*openapi3.Schema]bool{})
				}
			}
		}
	}
}
