package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/boltrm"
	"github.com/cxledger/cxledger/projections/pgrm"
	"github.com/google/uuid"
)

// embedded is the real server over the embedded store and read models
// (two bbolt files in one directory), as `cxledger serve` runs it.
type embedded struct {
	*harness
	store     *boltstore.Store
	eng       *projections.Engine
	storePath string
	rmPath    string
	stop      func()
}

// startEmbedded opens the data files in dir and serves them; stop (also
// run at cleanup) shuts the server down and closes both files.
func startEmbedded(t *testing.T, dir string, tune func(*httpapi.Config)) *embedded {
	t.Helper()
	storePath, rmPath := filepath.Join(dir, "ledger.db"), filepath.Join(dir, boltrm.FileName)
	store, err := boltstore.Open(storePath, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := boltrm.Open(rmPath, boltrm.Options{})
	if err != nil {
		_ = store.Close()
		t.Fatal(err)
	}
	h, eng, stopServer := serveOver(t, store, rm, tune)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stopServer()
			if err := rm.Close(); err != nil {
				t.Errorf("close read models: %v", err)
			}
			if err := store.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &embedded{harness: h, store: store, eng: eng, storePath: storePath, rmPath: rmPath, stop: stop}
}

// settle waits until every read model is live at the store's head, then
// until neither data file changes for a while, and returns their hashes.
func (e *embedded) settle(t *testing.T) (storeHash, rmHash string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		head, err := e.store.Head(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		caughtUp := true
		for _, st := range e.eng.Status() {
			caughtUp = caughtUp && st.State == projections.StateLive && st.Checkpoint == head && st.Active != ""
		}
		if caughtUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models did not catch up with position %d: %+v", head, e.eng.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, r := fileHash(t, e.storePath), fileHash(t, e.rmPath)
	for stable := 0; stable < 5; {
		time.Sleep(50 * time.Millisecond)
		s2, r2 := fileHash(t, e.storePath), fileHash(t, e.rmPath)
		if s2 == s && r2 == r {
			stable++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatal("the data files keep changing on an idle server")
		}
		s, r, stable = s2, r2, 0
	}
	return s, r
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// snapshot is the store as a reader sees it: its head and every record.
func snapshot(t *testing.T, s httpapi.Store) (uint64, []byte) {
	t.Helper()
	ctx := context.Background()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.ReadAll(ctx, eventstore.ReadAllOptions{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	return head, b
}

// Fixture ids: real uuids, fixed so that failures are reproducible.
var (
	anaID    = uuid.MustParse("0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f")
	brunoID  = uuid.MustParse("5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d")
	orderID  = uuid.MustParse("44de0bb8-b9b6-42cb-b699-a1d767a2699c")
	ticketID = uuid.MustParse("9b2f1c3d-4e5a-4b6c-8d7e-0f1a2b3c4d5e")
	noteID   = uuid.MustParse("0e3c38a0-6a5e-4f87-9bd4-55f2bb0e4c11")
	nobodyID = uuid.MustParse("d3b07384-d9a0-4c9f-8b2e-1a2b3c4d5e6f")
)

const occurred = "2026-01-02T10:00:00Z"

// event is one event of an append body, with valid metadata unless md
// says otherwise ("" keeps the default).
func event(id uuid.UUID, typ, data string) string {
	idPart := ""
	if id != uuid.Nil {
		idPart = fmt.Sprintf(`"id":%q,`, id)
	}
	return fmt.Sprintf(`{%s"type":%q,"data":%s,"metadata":{"occurredAt":%q,"actor":"user:marta","channel":"web"}}`, idPart, typ, data, occurred)
}

// appendBody wraps events into an append request; expected is raw JSON
// ("" leaves it out).
func appendBody(expected string, events ...string) string {
	if expected == "" {
		return `{"events":[` + strings.Join(events, ",") + `]}`
	}
	return `{"expectedVersion":` + expected + `,"events":[` + strings.Join(events, ",") + `]}`
}

func purchase(amount, currency string) string {
	return fmt.Sprintf(`{"orderId":%q,"amount":%s,"currency":%q,"lines":[{"sku":"SNK-42","quantity":1,"unitAmount":10000}]}`, uuid.New(), amount, currency)
}

func note(body string) string { return `{"body":` + body + `}` }

// nest returns depth levels of arrays around a number.
func nest(depth int) string {
	return strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth)
}

// seedFixture writes the history the bad inputs run against: Ana with an
// order of 100.00 EUR, a closed ticket and a note; Bruno, registered only.
func seedFixture(t *testing.T, h *harness) {
	t.Helper()
	ana := "/v1/customers/" + anaID.String() + "/events"
	steps := []struct {
		path, body string
		status     int
	}{
		{"/v1/customers", fmt.Sprintf(`{"customerId":%q,"eventId":"7d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a","name":"Ana Ñúñez","country":"ES","identifiers":[{"kind":"email","value":"ana@example.com"}],"metadata":{"occurredAt":%q,"actor":"service:crm"}}`, anaID, occurred), 201},
		{"/v1/customers", fmt.Sprintf(`{"customerId":%q,"eventId":"8e2f3a4b-5c6d-4e7f-9a8b-0c1d2e3f4a5b","name":"Bruno Díaz","metadata":{"occurredAt":%q,"actor":"service:crm"}}`, brunoID, occurred), 201},
		{ana, appendBody(`1`,
			event(uuid.MustParse("1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"), "PurchaseCompleted", fmt.Sprintf(`{"orderId":%q,"amount":10000,"currency":"EUR","lines":[{"sku":"SNK-42","quantity":1,"unitAmount":10000}]}`, orderID)),
			event(uuid.MustParse("2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"), "TicketOpened", fmt.Sprintf(`{"ticketId":%q,"subject":"Wrong size","priority":"high","channel":"email"}`, ticketID)),
			event(uuid.MustParse("3e4f5a6b-7c8d-4e9f-0a1b-2c3d4e5f6a7b"), "TicketClosed", fmt.Sprintf(`{"ticketId":%q,"reason":"exchanged"}`, ticketID)),
			event(noteID, "NoteAdded", note(`"Prefers e-mail ✉"`)),
		), 200},
	}
	for _, s := range steps {
		if r := h.call(t, httpapi.RoleService, "POST", s.path, s.body); r.status != s.status {
			t.Fatalf("fixture %s: %d %s", s.path, r.status, r.body)
		}
	}
}

type badCase struct {
	name         string
	role         httpapi.Role
	method, path string
	body         string
	header       []string // extra request headers, name then value
	status       int
	slug         string
	// names must occur in the problem's detail, or equal its field (or
	// one of its errors' fields): the message names the problem.
	names string
	// hides must not occur anywhere in the answer (another customer's
	// stream, say).
	hides string
}

// TestBadInputLeavesTheStoreUnchanged sends every kind of bad input
// through the real server on the embedded store. Each must be refused with
// its status and a problem document naming what is wrong, and afterwards
// both data files must be byte for byte what they were.
func TestBadInputLeavesTheStoreUnchanged(t *testing.T) {
	dir := t.TempDir()
	tune := func(c *httpapi.Config) { c.MaxBodyBytes = 256 << 10 }

	// The fixture is written by one server, which then stops: the table
	// runs against a restarted one, as after a deployment.
	first := startEmbedded(t, dir, tune)
	seedFixture(t, first.harness)
	first.settle(t)
	first.stop()

	e := startEmbedded(t, dir, tune)
	storeBefore, rmBefore := e.settle(t)
	headBefore, logBefore := snapshot(t, e.store)

	runBadInputs(t, e.harness)

	headAfter, logAfter := snapshot(t, e.store)
	if headAfter != headBefore || !bytes.Equal(logAfter, logBefore) {
		t.Errorf("the log changed: head %d → %d", headBefore, headAfter)
	}
	// Stopped, the files are read with nobody writing them.
	e.stop()
	if got := fileHash(t, e.storePath); got != storeBefore {
		t.Errorf("store file changed: sha256 %s → %s", storeBefore, got)
	}
	if got := fileHash(t, e.rmPath); got != rmBefore {
		t.Errorf("read-model file changed: sha256 %s → %s", rmBefore, got)
	}
}

// runBadInputs sends the table through h's server, checking each refusal.
func runBadInputs(t *testing.T, h *harness) {
	t.Helper()
	cases := badInputCases(h.server)
	categories := map[string]int{}
	for _, tc := range cases {
		cat, _, _ := strings.Cut(tc.name, "/")
		categories[cat]++
		t.Run(tc.name, func(t *testing.T) {
			r := h.call(t, tc.role, tc.method, tc.path, tc.body, tc.header...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			p := r.problem(t)
			if p.Slug() != tc.slug {
				t.Errorf("problem type %q, want %s", p.Type, tc.slug)
			}
			if !namesProblem(p, tc.names) {
				t.Errorf("problem does not name %q: detail %q, field %q, errors %v", tc.names, p.Detail, p.Field, p.Errors)
			}
			if tc.hides != "" && strings.Contains(string(r.body), tc.hides) {
				t.Errorf("the answer shows %q: %s", tc.hides, r.body)
			}
			// Text from the request is shown neutralized: no bidi
			// override or zero-width character reaches a reader.
			if i := bytes.IndexFunc(r.body, isHiddenRune); i >= 0 {
				t.Errorf("problem echoes %U raw: %s", []rune(string(r.body[i:]))[0], r.body)
			}
		})
	}
	if len(cases) < 40 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
	names := make([]string, 0, len(categories))
	for c := range categories {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		t.Logf("%-12s %3d cases", c, categories[c])
	}
}

// isHiddenRune reports the characters that must not reach a reader raw:
// bidi controls and zero-width characters.
func isHiddenRune(r rune) bool {
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C,
		r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF:
		return true
	}
	return false
}

// TestBadInputLeavesPostgresUnchanged runs the same table on the
// PostgreSQL store and read models: after every refusal the log reads the
// same and every read model has the same digest.
func TestBadInputLeavesPostgresUnchanged(t *testing.T) {
	ctx := context.Background()
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	store, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	rm, err := pgrm.Open(ctx, url, pgrm.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rm.Close() })
	h, eng, stop := serveOver(t, store, rm, func(c *httpapi.Config) { c.MaxBodyBytes = 256 << 10 })
	t.Cleanup(stop)
	seedFixture(t, h)
	digestsBefore := caughtUpDigests(t, store, eng, rm)
	headBefore, logBefore := snapshot(t, store)

	runBadInputs(t, h)

	headAfter, logAfter := snapshot(t, store)
	if headAfter != headBefore || !bytes.Equal(logAfter, logBefore) {
		t.Errorf("the log changed: head %d → %d", headBefore, headAfter)
	}
	if got := caughtUpDigests(t, store, eng, rm); !maps.Equal(got, digestsBefore) {
		t.Errorf("read models changed:\n%v\n→\n%v", digestsBefore, got)
	}
}

// caughtUpDigests waits until every read model is live at the store's
// head and returns their digests by name.
func caughtUpDigests(t *testing.T, store httpapi.Store, eng *projections.Engine, rm projections.Backend) map[string]string {
	t.Helper()
	ctx := context.Background()
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		caughtUp := true
		for _, st := range eng.Status() {
			caughtUp = caughtUp && st.State == projections.StateLive && st.Checkpoint == head && st.Active != ""
		}
		if caughtUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models did not catch up with position %d: %+v", head, eng.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := map[string]string{}
	for _, st := range eng.Status() {
		d, err := projections.Digest(ctx, rm, st.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[st.Name] = d
	}
	return out
}

func namesProblem(p httpapi.Problem, want string) bool {
	if want == "" || strings.Contains(p.Detail, want) || p.Field == want {
		return true
	}
	for _, fp := range p.Errors {
		if fp.Field == want {
			return true
		}
	}
	return false
}

// badInputCases is the table. Case names are category/description; the
// categories are counted in the test log.
func badInputCases(srv *httpapi.Server) []badCase {
	S, A, U, D := httpapi.RoleService, httpapi.RoleAnalyst, httpapi.RoleAuditor, httpapi.RoleAdmin
	ana := "/v1/customers/" + anaID.String()
	anaEvents := ana + "/events"
	bruno := "/v1/customers/" + brunoID.String()
	nobody := "/v1/customers/" + nobodyID.String()
	call := func() string {
		return event(uuid.New(), "CallLogged", `{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"}`)
	}
	good := appendBody(`"any"`, call())
	register := func(body string) string {
		return `{"name":"Zoë",` + body + `"metadata":{"occurredAt":"` + occurred + `","actor":"service:crm"}}`
	}
	ticketUpdate := fmt.Sprintf(`{"ticketId":%q,"comment":"any news?"}`, ticketID)
	refund := func(amount int, currency string) string {
		return fmt.Sprintf(`{"refundId":%q,"orderId":%q,"amount":%d,"currency":%q}`, uuid.New(), orderID, amount, currency)
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = event(uuid.Nil, "NoteAdded", note(`"n"`))
	}
	identifiers := strings.TrimSuffix(strings.Repeat(`{"kind":"external","value":"crm:1"},`, 101), ",")

	cases := []badCase{
		// Malformed JSON and bodies that are not one JSON object.
		{name: "json/truncated", role: S, method: "POST", path: anaEvents, body: `{"events":[`, status: 400, slug: "malformed", names: "not valid JSON"},
		{name: "json/trailing data", role: S, method: "POST", path: anaEvents, body: good + `{}`, status: 400, slug: "malformed", names: "trailing data"},
		{name: "json/empty body", role: S, method: "POST", path: anaEvents, header: []string{"Content-Type", "application/json"}, status: 400, slug: "malformed", names: "empty body"},
		{name: "json/array", role: S, method: "POST", path: anaEvents, body: `[` + good + `]`, status: 400, slug: "malformed", names: "cannot unmarshal array"},
		{name: "json/single quotes", role: S, method: "POST", path: anaEvents, body: `{'events':[]}`, status: 400, slug: "malformed", names: "not valid JSON"},
		{name: "json/register truncated", role: S, method: "POST", path: "/v1/customers", body: `{"name":"Zoë"`, status: 400, slug: "malformed", names: "not valid JSON"},

		// Wrong JSON types.
		{name: "types/events an object", role: S, method: "POST", path: anaEvents, body: `{"events":{}}`, status: 422, slug: "invalid", names: "events"},
		{name: "types/type a number", role: S, method: "POST", path: anaEvents, body: `{"events":[{"type":7,"data":{},"metadata":{}}]}`, status: 422, slug: "invalid", names: "events.type"},
		{name: "types/data a string", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", `"hello"`)), status: 422, slug: "invalid", names: "JSON object"},
		{name: "types/duration a string", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `754`, `"754"`, 1), status: 422, slug: "invalid", names: "events[0].data.durationSeconds"},
		{name: "types/occurredAt a number", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"`+occurred+`"`, `20260102`, 1), status: 422, slug: "invalid", names: "metadata.occurredAt"},
		{name: "types/occurredAt not a time", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, occurred, "yesterday", 1), status: 422, slug: "invalid", names: "metadata.occurredAt"},
		{name: "types/register name a number", role: S, method: "POST", path: "/v1/customers", body: `{"name":42,"metadata":{"occurredAt":"` + occurred + `","actor":"service:crm"}}`, status: 422, slug: "invalid", names: "name"},

		// Unknown event types and missing types.
		{name: "type/unknown", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, "CallLogged", "CustomerUpdated", 1), status: 422, slug: "unknown-event-type", names: "CustomerUpdated"},
		{name: "type/wrong case", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, "CallLogged", "calllogged", 1), status: 422, slug: "unknown-event-type", names: "calllogged"},
		{name: "type/missing", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"type":"CallLogged",`, ``, 1), status: 422, slug: "invalid", names: "events[0].type"},
		{name: "type/missing data", role: S, method: "POST", path: anaEvents, body: `{"events":[{"type":"NoteAdded","metadata":{"occurredAt":"` + occurred + `","actor":"user:a"}}]}`, status: 422, slug: "invalid", names: "events[0].data"},

		// Missing, nil and malformed ids.
		{name: "ids/customer id not a uuid", role: S, method: "POST", path: "/v1/customers/ana/events", body: good, status: 400, slug: "malformed", names: `"ana" is not a uuid`},
		{name: "ids/nil customer id", role: S, method: "POST", path: "/v1/customers/" + uuid.Nil.String() + "/events", body: good, status: 400, slug: "malformed", names: "is not a uuid"},
		{name: "ids/truncated customer id", role: S, method: "GET", path: "/v1/customers/" + anaID.String()[:13], status: 400, slug: "malformed", names: "is not a uuid"},
		{name: "ids/customer id invalid UTF-8", role: S, method: "GET", path: "/v1/customers/%ff%fe/events", status: 400, slug: "malformed", names: "is not a uuid"},
		{name: "ids/event id not a uuid", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"id":"`, `"id":"x`, 1), status: 400, slug: "malformed", names: "UUID"},
		{name: "ids/missing order id", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", `{"amount":100,"currency":"EUR","lines":[{"sku":"A","quantity":1,"unitAmount":100}]}`)), status: 422, slug: "invalid", names: "events[0].data.orderId"},
		{name: "ids/nil ticket id", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "TicketUpdated", `{"ticketId":"00000000-0000-0000-0000-000000000000","comment":"x"}`)), status: 422, slug: "invalid", names: "events[0].data.ticketId"},
		{name: "ids/register customer id not a uuid", role: S, method: "POST", path: "/v1/customers", body: register(`"customerId":"ana",`), status: 400, slug: "malformed", names: "UUID"},
		// The nil uuid is not "no id": taken as absent, each retry would
		// get a fresh id and be stored again.
		{name: "ids/nil event id alone", role: S, method: "POST", path: anaEvents, body: appendBody("", `{"id":"00000000-0000-0000-0000-000000000000","type":"NoteAdded","data":{"body":"retry me"},"metadata":{"occurredAt":"`+occurred+`","actor":"user:marta"}}`), status: 422, slug: "invalid", names: "events[0].id"},
		{name: "ids/nil event id after a good one", role: S, method: "POST", path: anaEvents, body: appendBody("", call(), `{"id":"urn:uuid:00000000-0000-0000-0000-000000000000","type":"NoteAdded","data":{"body":"retry me"},"metadata":{"occurredAt":"`+occurred+`","actor":"user:marta"}}`), status: 422, slug: "invalid", names: "events[1].id"},
		{name: "ids/nil event id without dashes", role: S, method: "POST", path: anaEvents, body: appendBody("", `{"id":"00000000000000000000000000000000","type":"NoteAdded","data":{"body":"retry me"},"metadata":{"occurredAt":"`+occurred+`","actor":"user:marta"}}`), status: 422, slug: "invalid", names: "events[0].id"},
		{name: "ids/register nil customer id", role: S, method: "POST", path: "/v1/customers", body: register(`"customerId":"00000000-0000-0000-0000-000000000000",`), status: 422, slug: "invalid", names: "customerId"},
		{name: "ids/register nil event id", role: S, method: "POST", path: "/v1/customers", body: register(`"eventId":"00000000-0000-0000-0000-000000000000",`), status: 422, slug: "invalid", names: "eventId"},

		// Amounts.
		{name: "amount/negative", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("-100", "EUR"))), status: 422, slug: "invalid", names: "events[0].data.amount"},
		{name: "amount/absurd", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("9000000000000000000", "EUR"))), status: 422, slug: "invalid", names: "events[0].data.amount"},
		{name: "amount/beyond int64", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("1e400", "EUR"))), status: 422, slug: "invalid", names: "events[0].data.amount"},
		{name: "amount/fractional", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("99.5", "EUR"))), status: 422, slug: "invalid", names: "events[0].data.amount"},
		{name: "amount/above its lines", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", fmt.Sprintf(`{"orderId":%q,"amount":1000,"currency":"EUR","lines":[{"sku":"A","quantity":1,"unitAmount":1}]}`, uuid.New()))), status: 422, slug: "invalid", names: "events[0].data.amount"},
		{name: "amount/below lines + shipping + tax", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", fmt.Sprintf(`{"orderId":%q,"amount":10000,"currency":"EUR","lines":[{"sku":"A","quantity":2,"unitAmount":5000}],"shipping":490,"tax":2000}`, uuid.New()))), status: 422, slug: "invalid", names: "events[0].data.amount"},
		{name: "amount/negative discount", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", fmt.Sprintf(`{"orderId":%q,"amount":10100,"currency":"EUR","lines":[{"sku":"A","quantity":1,"unitAmount":10000}],"discount":-100}`, uuid.New()))), status: 422, slug: "invalid", names: "events[0].data.discount"},
		{name: "amount/zero refund", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "RefundIssued", refund(0, "EUR"))), status: 422, slug: "invalid", names: "events[0].data.amount"},

		// Currencies.
		{name: "currency/four letters", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("100", "EURO"))), status: 422, slug: "invalid", names: "events[0].data.currency"},
		{name: "currency/lower case", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("100", "eur"))), status: 422, slug: "invalid", names: "events[0].data.currency"},
		{name: "currency/unknown code", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("100", "ABC"))), status: 422, slug: "invalid", names: "events[0].data.currency"},
		{name: "currency/no currency", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", purchase("100", "XXX"))), status: 422, slug: "invalid", names: "events[0].data.currency"},

		// Huge payloads.
		{name: "huge/body over the limit", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", note(`"`+strings.Repeat("x", 300<<10)+`"`))), status: 413, slug: "too-large", names: "more than"},
		{name: "huge/text over its field limit", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", note(`"`+strings.Repeat("é", 10001)+`"`))), status: 422, slug: "invalid", names: "events[0].data.body"},
		{name: "huge/too many events", role: S, method: "POST", path: anaEvents, body: appendBody("", many...), status: 422, slug: "invalid", names: "events"},
		{name: "huge/too many identifiers", role: S, method: "POST", path: "/v1/customers", body: register(`"identifiers":[` + identifiers + `],`), status: 422, slug: "invalid", names: "identifiers"},
		{name: "huge/register over the limit", role: S, method: "POST", path: "/v1/customers", body: register(`"company":"` + strings.Repeat("c", 300<<10) + `",`), status: 413, slug: "too-large", names: "more than"},

		// Deep nesting.
		{name: "nesting/body beyond the parser's depth", role: S, method: "POST", path: anaEvents, body: nest(20000), status: 400, slug: "malformed", names: "exceeded max depth"},
		{name: "nesting/data beyond the parser's depth", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", note(nest(20000)))), status: 400, slug: "malformed", names: "exceeded max depth"},
		{name: "nesting/data deep but parsable", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", note(nest(5000)))), status: 422, slug: "invalid", names: "events[0].data.body"},
		{name: "nesting/in metadata", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"channel":"web"`, `"channel":"web","extra":`+nest(500), 1), status: 400, slug: "malformed", names: `unknown field "extra"`},

		// Invalid UTF-8.
		{name: "utf8/in event data", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", note("\"caf\xe9\""))), status: 400, slug: "malformed", names: "UTF-8"},
		{name: "utf8/in a field name", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"agent"`, "\"ag\xffent\"", 1), status: 400, slug: "malformed", names: "UTF-8"},
		{name: "utf8/in a registration", role: S, method: "POST", path: "/v1/customers", body: register("\"company\":\"Caf\xc3\","), status: 400, slug: "malformed", names: "UTF-8"},
		{name: "utf8/in an identifier lookup", role: S, method: "GET", path: "/v1/customers?identifier=email:%ff%fe@example.com", status: 400, slug: "malformed", names: "identifier"},
		{name: "utf8/lone high surrogate in event data", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", note(`"caf\ud800"`))), status: 400, slug: "malformed", names: "events[0].data.body"},
		{name: "utf8/lone low surrogate in a registration", role: S, method: "POST", path: "/v1/customers", body: register(`"company":"\udc00Caf",`), status: 400, slug: "malformed", names: "company"},
		{name: "utf8/surrogates reversed", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", note(`"\ude42\ud83d"`))), status: 400, slug: "malformed", names: "events[0].data.body"},
		{name: "utf8/forget reason", role: D, method: "POST", path: ana + "/forget", body: "{\"request\":\"DSR-7\",\"reason\":\"caf\xe9\"}", status: 400, slug: "malformed", names: "reason"},
		{name: "utf8/forget request surrogate", role: D, method: "POST", path: ana + "/forget", body: `{"request":"DSR-\udbff"}`, status: 400, slug: "malformed", names: "request"},

		// Repeated keys: a proxy reading the first would see another
		// request than the one executed.
		{name: "keys/expectedVersion twice", role: S, method: "POST", path: anaEvents, body: `{"expectedVersion":0,"expectedVersion":"any","events":[` + call() + `]}`, status: 400, slug: "malformed", names: "expectedVersion"},
		{name: "keys/expectedVersion in two cases", role: S, method: "POST", path: anaEvents, body: `{"expectedVersion":0,"ExpectedVersion":"any","events":[` + call() + `]}`, status: 400, slug: "malformed", names: "ExpectedVersion"},
		{name: "keys/events twice", role: S, method: "POST", path: anaEvents, body: `{"events":[],"events":[` + call() + `]}`, status: 400, slug: "malformed", names: "events"},
		{name: "keys/type twice", role: S, method: "POST", path: anaEvents, body: appendBody("", strings.Replace(call(), `"type":"CallLogged"`, `"type":"NoteAdded","type":"CallLogged"`, 1)), status: 400, slug: "malformed", names: "events[0].type"},
		{name: "keys/escaped repeat in data", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", `{"body":"a","b\u006fdy":"b"}`)), status: 400, slug: "malformed", names: "events[0].data.body"},
		{name: "keys/data keys in two cases", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "NoteAdded", `{"body":"a","BODY":"b"}`)), status: 400, slug: "malformed", names: "events[0].data.BODY"},
		{name: "keys/metadata actor twice", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"actor":"user:marta"`, `"actor":"user:marta","actor":"service:x"`, 1), status: 400, slug: "malformed", names: "events[0].metadata.actor"},
		{name: "keys/register name twice", role: S, method: "POST", path: "/v1/customers", body: register(`"name":"Ana",`), status: 400, slug: "malformed", names: "name"},
		{name: "keys/register customerId in two cases", role: S, method: "POST", path: "/v1/customers", body: register(fmt.Sprintf(`"customerId":%q,"customerID":%q,`, uuid.New(), anaID)), status: 400, slug: "malformed", names: "customerID"},
		{name: "keys/forget request twice", role: D, method: "POST", path: ana + "/forget", body: `{"request":"DSR-1","request":"DSR-2"}`, status: 400, slug: "malformed", names: "request"},

		// Hostile path segments: the problem names them neutralized.
		{name: "ids/bidi override in the customer id", role: S, method: "POST", path: "/v1/customers/%E2%80%AE" + anaID.String() + "/events", body: good, status: 400, slug: "malformed", names: "is not a uuid"},
		{name: "ids/zero-width space in a route", role: S, method: "GET", path: "/v1/customers/" + anaID.String() + "/%E2%80%8Btimeline", status: 404, slug: "not-found", names: "no route"},

		// Duplicate ids with different content.
		{name: "duplicate/id reused in the same stream", role: S, method: "POST", path: anaEvents, body: appendBody("", event(noteID, "NoteAdded", note(`"something else"`))), status: 409, slug: "duplicate-event", names: noteID.String()},
		{name: "duplicate/id reused in another stream", role: S, method: "POST", path: bruno + "/events", body: appendBody("", event(noteID, "NoteAdded", note(`"Prefers e-mail ✉"`))), status: 409, slug: "duplicate-event", names: noteID.String(), hides: anaID.String()},
		{name: "duplicate/id reused in another stream, among others", role: S, method: "POST", path: bruno + "/events", body: appendBody("", call(), event(noteID, "NoteAdded", note(`"Prefers e-mail ✉"`))), status: 409, slug: "duplicate-event", names: noteID.String(), hides: anaID.String()},
		{name: "duplicate/id reused in another stream, different content", role: S, method: "POST", path: bruno + "/events", body: appendBody("", event(noteID, "NoteAdded", note(`"x"`))), status: 409, slug: "duplicate-event", names: "is taken", hides: anaID.String()},
		{name: "duplicate/id twice in one request", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.MustParse("6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c"), "NoteAdded", note(`"a"`)), event(uuid.MustParse("6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c"), "NoteAdded", note(`"b"`))), status: 422, slug: "invalid", names: "events[1].id"},
		{name: "duplicate/registration of a registered id", role: S, method: "POST", path: "/v1/customers", body: register(fmt.Sprintf(`"customerId":%q,`, anaID)), status: 409, slug: "version-conflict", names: anaID.String()},

		// Expected versions.
		{name: "version/stale", role: S, method: "POST", path: anaEvents, body: appendBody(`2`, call()), status: 409, slug: "version-conflict", names: "customer-" + anaID.String()},
		{name: "version/ahead", role: S, method: "POST", path: anaEvents, body: appendBody(`99`, call()), status: 409, slug: "version-conflict", names: "customer-" + anaID.String()},
		{name: "version/no-stream on an existing stream", role: S, method: "POST", path: anaEvents, body: appendBody(`"no-stream"`, call()), status: 409, slug: "version-conflict", names: "customer-" + anaID.String()},
		{name: "version/exists on a missing stream", role: S, method: "POST", path: nobody + "/events", body: appendBody(`"exists"`, call()), status: 409, slug: "version-conflict", names: "customer-" + nobodyID.String()},
		{name: "version/negative", role: S, method: "POST", path: anaEvents, body: appendBody(`-1`, call()), status: 422, slug: "invalid", names: "expectedVersion"},
		{name: "version/fractional", role: S, method: "POST", path: anaEvents, body: appendBody(`5.5`, call()), status: 422, slug: "invalid", names: "expectedVersion"},
		{name: "version/unknown keyword", role: S, method: "POST", path: anaEvents, body: appendBody(`"latest"`, call()), status: 422, slug: "invalid", names: "expectedVersion"},
		{name: "version/beyond int63", role: S, method: "POST", path: anaEvents, body: appendBody(`99999999999999999999`, call()), status: 422, slug: "invalid", names: "expectedVersion"},
		{name: "version/a boolean", role: S, method: "POST", path: anaEvents, body: appendBody(`true`, call()), status: 422, slug: "invalid", names: "expectedVersion"},

		// Content types and missing or empty events.
		{name: "content/text plain", role: S, method: "POST", path: anaEvents, body: good, header: []string{"Content-Type", "text/plain"}, status: 415, slug: "unsupported-media-type", names: "application/json"},
		{name: "content/form", role: S, method: "POST", path: anaEvents, body: good, header: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, slug: "unsupported-media-type", names: "application/json"},
		{name: "content/register multipart", role: S, method: "POST", path: "/v1/customers", body: register(""), header: []string{"Content-Type", "multipart/form-data; boundary=x"}, status: 415, slug: "unsupported-media-type", names: "application/json"},
		{name: "content/no content type", role: S, method: "POST", path: anaEvents, body: good, header: []string{"Content-Type", ""}, status: 415, slug: "unsupported-media-type", names: "Content-Type"},
		{name: "content/register no content type", role: S, method: "POST", path: "/v1/customers", body: register(""), header: []string{"Content-Type", ""}, status: 415, slug: "unsupported-media-type", names: "Content-Type"},
		{name: "content/forget no content type", role: D, method: "POST", path: ana + "/forget", body: `{"request":"DSR-1"}`, header: []string{"Content-Type", ""}, status: 415, slug: "unsupported-media-type", names: "Content-Type"},
		{name: "content/gzip on a plain body", role: S, method: "POST", path: anaEvents, body: good, header: []string{"Content-Encoding", "gzip"}, status: 415, slug: "unsupported-media-type", names: "Content-Encoding"},
		{name: "content/register deflate", role: S, method: "POST", path: "/v1/customers", body: register(""), header: []string{"Content-Encoding", "identity, deflate"}, status: 415, slug: "unsupported-media-type", names: "Content-Encoding"},
		{name: "content/latin-1 charset", role: S, method: "POST", path: anaEvents, body: good, header: []string{"Content-Type", "application/json; charset=iso-8859-1"}, status: 415, slug: "unsupported-media-type", names: "charset"},
		{name: "content/unparsable type", role: S, method: "POST", path: anaEvents, body: good, header: []string{"Content-Type", "application/json; charset"}, status: 415, slug: "unsupported-media-type", names: "Content-Type"},
		{name: "content/no events member", role: S, method: "POST", path: anaEvents, body: `{"expectedVersion":"any"}`, status: 422, slug: "invalid", names: "events"},
		{name: "content/empty events", role: S, method: "POST", path: anaEvents, body: `{"events":[]}`, status: 422, slug: "invalid", names: "events"},
		{name: "content/null events", role: S, method: "POST", path: anaEvents, body: `{"events":null}`, status: 422, slug: "invalid", names: "events"},
		{name: "content/null body", role: S, method: "POST", path: anaEvents, body: `null`, status: 422, slug: "invalid", names: "events"},

		// Unknown fields, at every level.
		{name: "unknown/top level", role: S, method: "POST", path: anaEvents, body: `{"expectedVersion":"any","evnts":[]}`, status: 400, slug: "malformed", names: `unknown field "evnts"`},
		{name: "unknown/in an event", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"type"`, `"kind":"x","type"`, 1), status: 400, slug: "malformed", names: `unknown field "kind"`},
		{name: "unknown/in data", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"agent"`, `"agnet"`, 1), status: 422, slug: "invalid", names: "events[0].data.agnet"},
		{name: "unknown/in a registration", role: S, method: "POST", path: "/v1/customers", body: register(`"nmae":"x",`), status: 400, slug: "malformed", names: `unknown field "nmae"`},

		// Metadata.
		{name: "metadata/missing occurredAt", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"occurredAt":"`+occurred+`",`, ``, 1), status: 422, slug: "invalid", names: "events[0].metadata.occurredAt"},
		{name: "metadata/occurredAt in the future", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, occurred, "2999-01-01T00:00:00Z", 1), status: 422, slug: "invalid", names: "events[0].metadata.occurredAt"},
		{name: "metadata/actor without kind", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"actor":"user:marta"`, `"actor":"marta"`, 1), status: 422, slug: "invalid", names: "events[0].metadata.actor"},
		{name: "metadata/control character", role: S, method: "POST", path: anaEvents, body: strings.Replace(good, `"channel":"web"`, `"channel":"we\u0000b"`, 1), status: 422, slug: "invalid", names: "events[0].metadata.channel"},

		// Invariants the customer's history enforces.
		{name: "invariant/refund above the order", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "RefundIssued", refund(10001, "EUR"))), status: 409, slug: "rejected", names: "more than the 10000 paid"},
		{name: "invariant/refund in another currency", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "RefundIssued", refund(100, "USD"))), status: 409, slug: "rejected", names: "paid in EUR"},
		{name: "invariant/refund of an unknown order", role: S, method: "POST", path: bruno + "/events", body: appendBody("", event(uuid.New(), "RefundIssued", refund(100, "EUR"))), status: 409, slug: "rejected", names: "unknown order"},
		{name: "invariant/update of a closed ticket", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "TicketUpdated", ticketUpdate)), status: 409, slug: "rejected", names: "closed: only TicketReopened may follow"},
		{name: "invariant/order id reused", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PurchaseCompleted", fmt.Sprintf(`{"orderId":%q,"amount":100,"currency":"EUR","lines":[{"sku":"A","quantity":1,"unitAmount":100}]}`, orderID))), status: 409, slug: "rejected", names: "order id already used"},
		{name: "invariant/event for an unregistered customer", role: S, method: "POST", path: nobody + "/events", body: good, status: 409, slug: "rejected", names: "not registered"},
		{name: "invariant/second registration", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "CustomerRegistered", fmt.Sprintf(`{"customerId":%q,"name":"Again"}`, anaID))), status: 409, slug: "rejected", names: "already registered"},
		{name: "invariant/invalid registration", role: S, method: "POST", path: "/v1/customers", body: `{"name":"","metadata":{"occurredAt":"` + occurred + `","actor":"service:crm"}}`, status: 422, slug: "invalid", names: "name"},
		{name: "invariant/invalid identifier at registration", role: S, method: "POST", path: "/v1/customers", body: register(`"identifiers":[{"kind":"email","value":"not-an-email"}],`), status: 422, slug: "invalid", names: "identifiers[0].value"},

		// Who may write which event (domain.MayAppend): the generic append
		// is no way around the admin-only erasure, nor into the ledger's
		// own events, whoever sends them.
		{name: "authority/service erases through the generic append", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "CustomerForgotten", `{"request":"DSR-x"}`)), status: 403, slug: "forbidden", names: "role service may not append CustomerForgotten; system only"},
		{name: "authority/admin erases through the generic append", role: D, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "CustomerForgotten", `{"request":"DSR-x"}`)), status: 403, slug: "forbidden", names: "/forget"},
		{name: "authority/erasure hidden after a good event", role: S, method: "POST", path: anaEvents, body: appendBody("", call(), event(uuid.New(), "CustomerForgotten", `{"request":"DSR-x"}`)), status: 403, slug: "forbidden", names: "CustomerForgotten"},
		{name: "authority/service mints a million points", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PointsEarned", fmt.Sprintf(`{"earningId":%q,"points":1000000,"reason":"bonus","rule":"any"}`, uuid.New()))), status: 403, slug: "forbidden", names: "may be appended by admin, system"},
		{name: "authority/service expires points", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "PointsExpired", fmt.Sprintf(`{"earningId":%q,"points":1}`, uuid.New()))), status: 403, slug: "forbidden", names: "PointsExpired"},
		{name: "authority/service queues a message", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "MessageQueued", fmt.Sprintf(`{"messageId":%q,"channel":"email","template":"t","purpose":"service"}`, uuid.New()))), status: 403, slug: "forbidden", names: "MessageQueued"},
		{name: "authority/admin escalates a ticket", role: D, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "TicketEscalated", fmt.Sprintf(`{"ticketId":%q,"priority":"high","breach":"late","slaSeconds":60}`, ticketID))), status: 403, slug: "forbidden", names: "TicketEscalated"},
		{name: "authority/service issues a discount", role: S, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "DiscountIssued", fmt.Sprintf(`{"discountId":%q,"code":"FREE-100","percentOff":100,"validUntil":"2030-01-01T00:00:00Z","reason":"because"}`, uuid.New()))), status: 403, slug: "forbidden", names: "DiscountIssued"},
		{name: "authority/access record", role: D, method: "POST", path: anaEvents, body: appendBody("", event(uuid.New(), "AccessRecorded", `{}`)), status: 403, slug: "forbidden", names: "role admin may not append AccessRecorded; system only"},
		{name: "authority/service forges an access record", role: S, method: "POST", path: anaEvents, body: appendBody("", call(), event(uuid.New(), "AccessRecorded", `{"reader":"x"}`)), status: 403, slug: "forbidden", names: "AccessRecorded"},

		// Identifier lookups.
		{name: "lookup/missing", role: S, method: "GET", path: "/v1/customers", status: 400, slug: "malformed", names: "identifier is required"},
		{name: "lookup/no kind", role: S, method: "GET", path: "/v1/customers?identifier=ana@example.com", status: 400, slug: "malformed", names: "want kind:value"},
		{name: "lookup/unknown kind", role: S, method: "GET", path: "/v1/customers?identifier=fax:+34911234567", status: 400, slug: "malformed", names: "identifier"},
		{name: "lookup/malformed email", role: U, method: "GET", path: "/v1/customers?identifier=email:not-an-email", status: 400, slug: "malformed", names: "identifier"},
		{name: "lookup/malformed phone", role: S, method: "GET", path: "/v1/customers?identifier=phone:call-me", status: 400, slug: "malformed", names: "identifier"},
		{name: "lookup/bad minPosition", role: S, method: "GET", path: "/v1/customers?identifier=email:ana@example.com&minPosition=soon", status: 400, slug: "malformed", names: "minPosition"},

		// Query parameters.
		{name: "query/limit zero", role: A, method: "GET", path: "/v1/events?limit=0", status: 400, slug: "malformed", names: "limit"},
		{name: "query/limit not a number", role: A, method: "GET", path: "/v1/events?limit=ten", status: 400, slug: "malformed", names: "limit"},
		{name: "query/limit absurd", role: U, method: "GET", path: "/v1/events?limit=99999999999999999999", status: 400, slug: "malformed", names: "limit"},
		{name: "query/after negative", role: A, method: "GET", path: "/v1/events?after=-1", status: 400, slug: "malformed", names: "after"},
		{name: "query/after not a number", role: A, method: "GET", path: "/v1/events?after=0x10", status: 400, slug: "malformed", names: "after"},
		{name: "query/stream from negative", role: S, method: "GET", path: anaEvents + "?from=-3", status: 400, slug: "malformed", names: "from"},
		{name: "query/stream limit negative", role: S, method: "GET", path: anaEvents + "?limit=-1", status: 400, slug: "malformed", names: "limit"},
		{name: "query/backwards not a bool", role: S, method: "GET", path: anaEvents + "?backwards=maybe", status: 400, slug: "malformed", names: "backwards"},
		{name: "query/timeline cursor garbage", role: U, method: "GET", path: ana + "/timeline?cursor=not-a-cursor", status: 400, slug: "malformed", names: "cursor"},
		{name: "query/timeline cursor forged", role: U, method: "GET", path: ana + "/timeline?cursor=MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwL3g", status: 400, slug: "malformed", names: "cursor"},
		{name: "query/timeline from not a time", role: U, method: "GET", path: ana + "/timeline?from=last-week", status: 400, slug: "malformed", names: "from"},
		{name: "query/timeline limit too large", role: U, method: "GET", path: ana + "/timeline?limit=100000", status: 400, slug: "malformed", names: "limit"},
		{name: "query/channels unordered", role: A, method: "GET", path: "/v1/analytics/channels?from=2026-02-01&to=2026-01-01", status: 400, slug: "malformed", names: "ordered"},
		{name: "fit/asOf not a date", role: A, method: "POST", path: "/v1/analytics/model/fit", body: `{"asOf":"last week"}`, status: 400, slug: "malformed", names: "asOf"},
		{name: "fit/calibration end after the analysis date", role: A, method: "POST", path: "/v1/analytics/model/fit", body: `{"asOf":"2026-01-01","calibrationEnd":"2026-01-01"}`, status: 400, slug: "malformed", names: "calibrationEnd"},
		{name: "fit/horizon negative", role: A, method: "POST", path: "/v1/analytics/model/fit", body: `{"horizonDays":-1}`, status: 400, slug: "malformed", names: "horizonDays"},
		{name: "fit/unknown field", role: A, method: "POST", path: "/v1/analytics/model/fit", body: `{"asOfDate":"2026-01-01"}`, status: 400, slug: "malformed", names: "asOfDate"},
		{name: "query/pipeline closedFrom", role: A, method: "GET", path: "/v1/pipeline?closedFrom=31/12/2025", status: 400, slug: "malformed", names: "closedFrom"},
		{name: "query/digest not a bool", role: U, method: "GET", path: "/v1/projections?digest=please", status: 400, slug: "malformed", names: "digest"},
		{name: "query/NUL in a type filter", role: A, method: "GET", path: "/v1/events?types=%00", status: 400, slug: "malformed", names: "types"},
		{name: "query/NUL after a type", role: U, method: "GET", path: "/v1/events?types=CallLogged%00", status: 400, slug: "malformed", names: "types"},
		{name: "query/escape character in an identifier", role: S, method: "GET", path: "/v1/customers?identifier=email:ana%1b@example.com", status: 400, slug: "malformed", names: "identifier"},
		{name: "query/C1 control in a timeline filter", role: U, method: "GET", path: ana + "/timeline?channels=web%C2%85", status: 400, slug: "malformed", names: "channels"},
		{name: "query/NUL in a parameter name", role: A, method: "GET", path: "/v1/events?%00=1", status: 400, slug: "malformed", names: "query parameter"},
		{name: "query/invalid UTF-8 in a type filter", role: A, method: "GET", path: "/v1/events?types=%ff", status: 400, slug: "malformed", names: "types"},
		{name: "query/bad escape", role: A, method: "GET", path: "/v1/events?types=%zz", status: 400, slug: "malformed", names: "query string"},
		{name: "query/bidi in a stream read", role: S, method: "GET", path: anaEvents + "?backwards=%E2%80%AEtrue", status: 400, slug: "malformed", names: "backwards"},
		{name: "query/minPosition beyond the head", role: S, method: "GET", path: ana + "?minPosition=1000000", status: 400, slug: "malformed", names: "minPosition"},
		{name: "query/minPosition beyond the head on a lookup", role: U, method: "GET", path: "/v1/customers?identifier=email:ana@example.com&minPosition=18446744073709551615", status: 400, slug: "malformed", names: "minPosition"},

		// The live feed.
		{name: "sse/Last-Event-ID not a number", role: A, method: "GET", path: "/v1/events/live", header: []string{"Last-Event-ID", "abc"}, status: 400, slug: "malformed", names: "Last-Event-ID"},
		{name: "sse/Last-Event-ID negative", role: U, method: "GET", path: "/v1/events/live", header: []string{"Last-Event-ID", "-1"}, status: 400, slug: "malformed", names: "Last-Event-ID"},
		{name: "sse/after not a number", role: A, method: "GET", path: "/v1/events/live?after=start", status: 400, slug: "malformed", names: "after"},

		// Unknown resources.
		{name: "notfound/route", role: D, method: "GET", path: "/v1/customer", status: 404, slug: "not-found", names: "no route GET /v1/customer"},
		{name: "notfound/method", role: D, method: "DELETE", path: ana, status: 404, slug: "not-found", names: "no route DELETE"},
		{name: "notfound/projection", role: D, method: "POST", path: "/v1/projections/nope/rebuild", status: 404, slug: "not-found", names: `"nope"`},
		{name: "notfound/identifier", role: S, method: "GET", path: "/v1/customers?identifier=email:nobody@example.com", status: 404, slug: "not-found", names: ""},

		// Authentication.
		{name: "auth/no token", method: "POST", path: anaEvents, body: good, status: 401, slug: "unauthenticated", names: "Bearer"},
		{name: "auth/unknown token", method: "POST", path: anaEvents, body: good, header: []string{"Authorization", "Bearer not-a-configured-token"}, status: 401, slug: "unauthenticated", names: "unknown token"},
		{name: "auth/basic scheme", method: "POST", path: anaEvents, body: good, header: []string{"Authorization", "Basic " + tokens[D]}, status: 401, slug: "unauthenticated", names: "Bearer"},
		{name: "auth/empty bearer", method: "GET", path: "/v1/events", header: []string{"Authorization", "Bearer "}, status: 401, slug: "unauthenticated", names: "Bearer"},
	}

	// Every role on every route it may not use, with a body that would be
	// accepted from an allowed role: the refusal alone keeps it out.
	paths := map[string]struct{ path, body string }{
		"POST /v1/customers":                     {"/v1/customers", register("")},
		"GET /v1/customers":                      {"/v1/customers?identifier=email:ana@example.com", ""},
		"GET /v1/customers/{id}":                 {ana, ""},
		"POST /v1/customers/{id}/events":         {anaEvents, good},
		"POST /v1/customers/{id}/forget":         {ana + "/forget", `{"request":"DSR-1"}`},
		"GET /v1/customers/{id}/events":          {anaEvents, ""},
		"GET /v1/customers/{id}/timeline":        {ana + "/timeline", ""},
		"GET /v1/pipeline":                       {"/v1/pipeline", ""},
		"GET /v1/analytics/rfm":                  {"/v1/analytics/rfm", ""},
		"GET /v1/analytics/channels":             {"/v1/analytics/channels", ""},
		"GET /v1/analytics/tickets":              {"/v1/analytics/tickets", ""},
		"GET /v1/analytics/nps":                  {"/v1/analytics/nps", ""},
		"GET /v1/analytics/customers/{id}":       {"/v1/analytics/customers/" + anaID.String(), ""},
		"GET /v1/events":                         {"/v1/events", ""},
		"GET /v1/events/live":                    {"/v1/events/live", ""},
		"GET /v1/projections":                    {"/v1/projections", ""},
		"POST /v1/projections/{name}/rebuild":    {"/v1/projections/timeline/rebuild", ""},
		"GET /v1/customers/{id}/as-of":           {"/v1/customers/" + anaID.String() + "/as-of?at=2026-01-01", ""},
		"GET /v1/pipeline/as-of":                 {"/v1/pipeline/as-of?at=2026-01-01", ""},
		"GET /v1/audit/access":                   {"/v1/audit/access", ""},
		"GET /v1/customers/{id}/recommendations": {"/v1/customers/" + anaID.String() + "/recommendations", ""},
		"GET /v1/analytics/campaigns":            {"/v1/analytics/campaigns", ""},
		"GET /v1/audit/tree":                     {"/v1/audit/tree", ""},
		"GET /v1/audit/checkpoint":               {"/v1/audit/checkpoint", ""},
		"GET /v1/audit/proof/inclusion":          {"/v1/audit/proof/inclusion?position=1", ""},
		"GET /v1/audit/proof/consistency":        {"/v1/audit/proof/consistency?from=0&to=1", ""},
		"GET /v1/customers/{id}/audit":           {"/v1/customers/" + anaID.String() + "/audit", ""},
		"GET /v1/analytics/model":                {"/v1/analytics/model", ""},
		"POST /v1/analytics/model/fit":           {"/v1/analytics/model/fit", `{}`},
		"POST /v1/projections":                   {"/v1/projections", `{"name":"js_orders","source":"fromAll().when({})"}`},
		"GET /v1/projections/{name}":             {"/v1/projections/js_orders", ""},
		"PUT /v1/projections/{name}":             {"/v1/projections/js_orders", `{"source":"fromAll().when({})"}`},
		"DELETE /v1/projections/{name}":          {"/v1/projections/js_orders", ""},
		"GET /v1/projections/{name}/state":       {"/v1/projections/js_orders/state", ""},
		"GET /v1/projections/{name}/export":      {"/v1/projections/js_orders/export", ""},
		"POST /v1/queries":                       {"/v1/queries", `{"source":"fromAll().when({})"}`},
		"POST /v1/customers/{id}/merge":          {ana + "/merge", `{"absorbed":"` + uuid.NewString() + `","reason":"same"}`},
		"POST /v1/customers/{id}/unmerge":        {ana + "/unmerge", `{"absorbed":"` + uuid.NewString() + `","reason":"two","mergeId":"` + uuid.NewString() + `"}`},
		"GET /v1/identity/duplicates":            {"/v1/identity/duplicates", ""},
		"GET /v1/customers/search":               {"/v1/customers/search?q=ana", ""},
		"GET /v1/pipeline/board":                 {"/v1/pipeline/board?stage=proposal", ""},
	}
	routes := srv.Routes()
	patterns := make([]string, 0, len(routes))
	for p := range routes {
		patterns = append(patterns, p)
	}
	sort.Strings(patterns)
	for _, pattern := range patterns {
		method, _, _ := strings.Cut(pattern, " ")
		for _, role := range []httpapi.Role{S, A, U} {
			if slices.Contains(routes[pattern], role) {
				continue
			}
			p, ok := paths[pattern]
			if !ok {
				p.path = "/unmapped-route " + pattern // fails loudly
			}
			cases = append(cases, badCase{
				name: "role/" + string(role) + " " + pattern, role: role, method: method, path: p.path, body: p.body,
				status: http.StatusForbidden, slug: "forbidden", names: "role " + string(role) + " may not " + pattern,
			})
		}
	}
	return cases
}
