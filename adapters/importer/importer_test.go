package importer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/google/uuid"
)

// Fixtures look like production: real uuids, unicode, amounts in minor
// units.
const (
	anaID   = "15cf8f44-2ec6-441c-9f2e-229a8d221eaf"
	orderID = "44de0bb8-b9b6-42cb-b699-a1d767a2699c"
	when    = "2025-03-14T09:26:53.589793Z"
)

var (
	register = `{"customerId":"` + anaID + `","type":"CustomerRegistered","event":{"name":"Zoë Ångström-Nguyễn","country":"FR"},"occurredAt":"` + when + `","channel":"web"}`
	call     = `{"customerId":"` + anaID + `","type":"CallLogged","event":{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"},"occurredAt":"` + when + `"}`
	purchase = `{"identifier":{"kind":"email","value":"Bruno.Díaz@Example.es"},"customerName":"Bruno Díaz","type":"PurchaseCompleted","event":{"orderId":"` + orderID + `","amount":12990,"currency":"EUR","lines":[{"sku":"SNK-42","quantity":1,"unitAmount":12990}]},"occurredAt":"` + when + `","correlationId":"order-10472"}`
	note     = `{"identifier":{"kind":"email","value":"bruno.díaz@example.es"},"type":"NoteAdded","event":{"body":"Prefers French, after 17:00 ☎"},"occurredAt":"` + when + `"}`
)

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// run imports input into store as batch and returns the summary, the
// rejected rows and Run's error.
func run(t *testing.T, store eventstore.Store, batch, input string, mutate ...func(*importer.Config)) (importer.Summary, []*importer.RowError, error) {
	t.Helper()
	var rejected []*importer.RowError
	cfg := importer.Config{Batch: batch, OnReject: func(r *importer.RowError) { rejected = append(rejected, r) }}
	for _, m := range mutate {
		m(&cfg)
	}
	im, err := importer.New(ledger.New(store), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := importer.NewNDJSON(strings.NewReader(input), importer.Defaults{Actor: "import:" + batch})
	sum, err := im.Run(context.Background(), src)
	return sum, rejected, err
}

func all(t *testing.T, s eventstore.Store) []eventstore.Record {
	t.Helper()
	recs, err := s.ReadAll(context.Background(), eventstore.ReadAllOptions{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestImportNDJSONTwiceWritesNothingTheSecondTime(t *testing.T) {
	store := memstore.New(memstore.Config{})
	input := lines(register, call, "", purchase, note)
	sum, rejected, err := run(t, store, "crm-2025-03", input)
	if err != nil || len(rejected) > 0 {
		t.Fatalf("import: %v %v", err, rejected)
	}
	if sum.Rows != 4 || sum.Imported != 4 || sum.Registered != 1 {
		t.Fatalf("summary %+v", sum)
	}
	first := all(t, store)
	// Ana: registered + call; Bruno: registered, linked, purchase, note.
	if len(first) != 6 {
		t.Fatalf("%d events, want 6: %v", len(first), first)
	}
	bruno := importer.CustomerIDFor(domain.IdentifierEmail, "bruno.díaz@example.es")
	recs, err := store.ReadStream(context.Background(), domain.StreamID(bruno), eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{domain.TypeCustomerRegistered, domain.TypeIdentifierLinked, domain.TypePurchaseCompleted, domain.TypeNoteAdded}
	for i, r := range recs {
		if r.Type != wantTypes[i] {
			t.Fatalf("bruno's event %d is %s, want %s", i, r.Type, wantTypes[i])
		}
		if r.Metadata.Actor != "import:crm-2025-03" {
			t.Fatalf("actor %q", r.Metadata.Actor)
		}
	}
	if !strings.Contains(string(recs[0].Data), `"name":"Bruno Díaz"`) {
		t.Fatalf("registration %s", recs[0].Data)
	}
	if recs[2].ID != importer.EventID("crm-2025-03", 4, "") {
		t.Fatalf("purchase id %s is not derived from batch and line", recs[2].ID)
	}

	sum, rejected, err = run(t, store, "crm-2025-03", input)
	if err != nil || len(rejected) > 0 || sum.Imported != 4 {
		t.Fatalf("second import: %+v %v %v", sum, err, rejected)
	}
	if again := all(t, store); len(again) != len(first) {
		t.Fatalf("second import wrote %d events", len(again)-len(first))
	}
}

// TestBadRows puts each bad row on line 2 between two good rows and
// checks that it is reported with its line and field, that nothing is
// written for it, and that the good rows are imported.
func TestBadRows(t *testing.T) {
	huge := `{"customerId":"` + anaID + `","type":"NoteAdded","event":{"body":"` + strings.Repeat("x", importer.DefaultMaxLineBytes) + `"},"occurredAt":"` + when + `"}`
	badUTF8 := `{"customerId":"` + anaID + `","type":"NoteAdded","event":{"body":"caf` + "\xe9" + `"},"occurredAt":"` + when + `"}`
	withID := func(id, body string) string {
		return `{"id":"` + id + `","customerId":"` + anaID + `","type":"NoteAdded","event":{"body":"` + body + `"},"occurredAt":"` + when + `"}`
	}
	purchaseWith := func(amount, currency string) string {
		return `{"customerId":"` + anaID + `","type":"PurchaseCompleted","event":{"orderId":"` + orderID + `","amount":` + amount + `,"currency":"` + currency + `","lines":[{"sku":"A","quantity":1,"unitAmount":100}]},"occurredAt":"` + when + `"}`
	}
	noteID := "0e3c38a0-6a5e-4f87-9bd4-55f2bb0e4c11"
	noteWith := func(body string) string {
		return `{"customerId":"` + anaID + `","type":"NoteAdded","event":{"body":` + body + `},"occurredAt":"` + when + `"}`
	}
	nest := func(depth int) string { return strings.Repeat("[", depth) + "1" + strings.Repeat("]", depth) }
	cases := []struct {
		name   string
		row    string
		field  string // expected RowError.Field
		reason string // substring of the reason
		extra  string // a row appended as line 4 (a repeated id)
	}{
		{name: "malformed JSON", row: `{"customerId":"` + anaID + `","type":`, reason: "truncated"},
		{name: "not an object", row: `[1,2]`, reason: "must be a JSON object"},
		{name: "two values", row: call + ` {}`, reason: "more than one JSON value"},
		{name: "wrong type of field", row: strings.Replace(call, `"durationSeconds":754`, `"durationSeconds":"754"`, 1), field: "event.durationSeconds"},
		{name: "unknown event type", row: strings.Replace(call, `"CallLogged"`, `"CustomerUpdated"`, 1), reason: "unknown event type"},
		{name: "unknown field", row: strings.Replace(call, `"occurredAt"`, `"ocurredAt":"x","occurredAt"`, 1), field: "ocurredAt"},
		{name: "missing customer", row: strings.Replace(call, `"customerId":"`+anaID+`",`, ``, 1), field: "customerId"},
		{name: "malformed customer id", row: strings.Replace(call, anaID, "15cf8f44-2ec6", 1), field: "customerId"},
		{name: "missing order id", row: strings.Replace(purchaseWith("100", "EUR"), `"orderId":"`+orderID+`",`, ``, 1), field: "event.orderId"},
		{name: "missing type", row: strings.Replace(call, `"type":"CallLogged",`, ``, 1), field: "type"},
		{name: "missing occurredAt", row: strings.Replace(call, `,"occurredAt":"`+when+`"`, ``, 1), field: "occurredAt"},
		{name: "occurredAt in the future", row: strings.Replace(call, when, "2999-01-01T00:00:00Z", 1), field: "metadata.occurredAt"},
		{name: "negative amount", row: purchaseWith("-100", "EUR"), field: "event.amount"},
		{name: "absurd amount", row: purchaseWith("9000000000000000000", "EUR"), field: "event.amount"},
		{name: "fractional amount", row: purchaseWith("12.5", "EUR"), field: "event.amount"},
		{name: "bad currency", row: purchaseWith("100", "EURO"), field: "event.currency"},
		{name: "unknown currency", row: purchaseWith("100", "ABC"), field: "event.currency"},
		{name: "bad identifier", row: strings.Replace(note, "bruno.díaz@example.es", "not-an-email", 1), field: "identifier.value"},
		{name: "bad actor", row: strings.Replace(call, `"occurredAt"`, `"actor":"robot","occurredAt"`, 1), field: "metadata.actor"},
		{name: "invariant: refund of an unknown order", reason: "unknown order",
			row: `{"customerId":"` + anaID + `","type":"RefundIssued","event":{"refundId":"457583b2-585c-4972-abb0-3fb81e8c1e8a","orderId":"` + orderID + `","amount":100,"currency":"EUR"},"occurredAt":"` + when + `"}`},
		{name: "huge row", row: huge, reason: "longer than"},
		{name: "invalid UTF-8", row: badUTF8, reason: "UTF-8"},
		{name: "type twice", row: strings.Replace(call, `"type":"CallLogged"`, `"type":"NoteAdded","type":"CallLogged"`, 1), field: "type", reason: "duplicate key"},
		{name: "customerId in two cases", row: strings.Replace(call, `"type"`, `"CustomerID":"`+anaID+`","type"`, 1), field: "CustomerID", reason: "differ only in case"},
		{name: "event key twice", row: noteWith(`"a","body":"b"`), field: "event.body", reason: "duplicate key"},
		{name: "lone surrogate", row: noteWith(`"caf\ud800"`), field: "event.body", reason: "unpaired surrogate"},
		{name: "duplicate id with different content", row: withID(noteID, "first"), extra: withID(noteID, "second"), reason: "already used"},
		{name: "deep nesting beyond the parser's depth", row: strings.Replace(call, `"event":{`, `"event":{"nested":`+nest(20000)+`,`, 1), reason: "exceeded max depth"},
		{name: "deep nesting in a text field", row: noteWith(nest(5000)), field: "event.body"},
		{name: "deep nesting in an unknown field", row: strings.Replace(call, `"occurredAt"`, `"extra":`+nest(500)+`,"occurredAt"`, 1), field: "extra"},
		{name: "amount beyond int64", row: purchaseWith("1e400", "EUR"), field: "event.amount"},
		{name: "amount as a string", row: purchaseWith(`"100"`, "EUR"), field: "event.amount"},
		{name: "amount above the maximum", row: purchaseWith("1000000000000000001", "EUR"), field: "event.amount"},
		{name: "text over its field limit", row: noteWith(`"` + strings.Repeat("é", 10001) + `"`), field: "event.body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := memstore.New(memstore.Config{})
			input := lines(register, tc.row, call)
			if tc.extra != "" {
				input = lines(register, tc.row, call, tc.extra)
			}
			sum, rejected, err := run(t, store, "bad-rows", input)
			if !errors.Is(err, importer.ErrRejectedRows) {
				t.Fatalf("Run error %v, want ErrRejectedRows", err)
			}
			if len(rejected) != 1 || sum.Rejected != 1 || sum.Imported != 3-1+boolInt(tc.extra != "") {
				t.Fatalf("summary %+v, rejected %v", sum, rejected)
			}
			r := rejected[0]
			wantLine := 2
			if tc.extra != "" {
				wantLine = 4
			}
			if r.Line != wantLine {
				t.Errorf("rejected line %d, want %d (%v)", r.Line, wantLine, r)
			}
			if tc.field != "" && r.Field() != tc.field {
				t.Errorf("field %q, want %q (%v)", r.Field(), tc.field, r)
			}
			if !strings.Contains(r.Error(), tc.reason) {
				t.Errorf("reason %q does not mention %q", r.Error(), tc.reason)
			}
			if r.Input == "" || len(r.Input) > importer.MaxEchoBytes {
				t.Errorf("input echo of %d bytes", len(r.Input))
			}
			// Nothing was written for the bad row: the store holds exactly
			// what importing the good rows alone holds.
			recs := all(t, store)
			bad := importer.EventID("bad-rows", wantLine, "")
			for _, rec := range recs {
				if rec.ID == bad || (tc.extra != "" && strings.Contains(string(rec.Data), "second")) {
					t.Fatalf("the bad row was written: %v", rec)
				}
			}
			want := 2 + boolInt(tc.extra != "")
			if len(recs) != want {
				t.Fatalf("%d events stored, want %d", len(recs), want)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestGroupFallsBackToRows: a bad row in the middle of one customer's
// group fails the group's single append; each row is then appended alone,
// so the rows after it are still imported in order.
func TestGroupFallsBackToRows(t *testing.T) {
	store := memstore.New(memstore.Config{})
	refund := `{"customerId":"` + anaID + `","type":"RefundIssued","event":{"refundId":"457583b2-585c-4972-abb0-3fb81e8c1e8a","orderId":"` + orderID + `","amount":100,"currency":"EUR"},"occurredAt":"` + when + `"}`
	sum, rejected, err := run(t, store, "fallback", lines(register, call, refund, call, call))
	if !errors.Is(err, importer.ErrRejectedRows) || len(rejected) != 1 || rejected[0].Line != 3 {
		t.Fatalf("err %v rejected %v", err, rejected)
	}
	if sum.Imported != 4 {
		t.Fatalf("summary %+v", sum)
	}
	recs := all(t, store)
	for i, r := range recs {
		if r.Version != uint64(i) {
			t.Fatalf("record %d at version %d", i, r.Version)
		}
	}
	// Running it again re-reports the bad row and writes nothing.
	_, rejected, _ = run(t, store, "fallback", lines(register, call, refund, call, call))
	if len(rejected) != 1 || len(all(t, store)) != len(recs) {
		t.Fatalf("re-run: rejected %v, %d events", rejected, len(all(t, store)))
	}
}

func TestStrictStopsAtTheFirstBadRow(t *testing.T) {
	store := memstore.New(memstore.Config{})
	sum, rejected, err := run(t, store, "strict", lines(register, "{", call, call), func(c *importer.Config) { c.Strict = true })
	if !errors.Is(err, importer.ErrRejectedRows) || len(rejected) != 1 {
		t.Fatalf("err %v rejected %v", err, rejected)
	}
	if sum.Imported != 1 || len(all(t, store)) != 1 {
		t.Fatalf("strict import went past the bad row: %+v", sum)
	}
}

// failingStore fails every append after the first n, as a crash would;
// a negative n never fails.
type failingStore struct {
	eventstore.Store
	mu sync.Mutex
	n  int
}

var errCrash = errors.New("disk unplugged")

func (f *failingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	f.mu.Lock()
	fail := f.n == 0
	f.n--
	f.mu.Unlock()
	if fail {
		return eventstore.AppendResult{}, errCrash
	}
	return f.Store.Append(ctx, stream, expected, events...)
}

// TestInterruptedImportResumes: an import that stops half way is
// completed by running it again, and ends with exactly the events of an
// import that never stopped.
func TestInterruptedImportResumes(t *testing.T) {
	var in []string
	for i := range 40 {
		id := uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "customer-%d", i%7)).String()
		if i < 7 {
			in = append(in, strings.ReplaceAll(register, anaID, id))
		}
		in = append(in, strings.ReplaceAll(call, anaID, id), strings.Replace(note, "bruno", fmt.Sprintf("bruno%d", i%5), 1))
	}
	input := lines(in...)
	small := func(c *importer.Config) { c.Window = 8 }

	crashing := &failingStore{Store: memstore.New(memstore.Config{}), n: 5}
	if _, _, err := run(t, crashing, "resume", input, small); !errors.Is(err, errCrash) {
		t.Fatalf("interrupted import: %v", err)
	}
	partial := len(all(t, crashing.Store))
	if partial == 0 {
		t.Fatal("nothing was written before the crash")
	}
	crashing.mu.Lock()
	crashing.n = -1 << 30 // healthy again
	crashing.mu.Unlock()
	if _, rejected, err := run(t, crashing, "resume", input, small); err != nil || len(rejected) > 0 {
		t.Fatalf("resumed import: %v %v", err, rejected)
	}

	fresh := memstore.New(memstore.Config{})
	if _, _, err := run(t, fresh, "resume", input, small); err != nil {
		t.Fatal(err)
	}
	got, want := byStream(all(t, crashing.Store)), byStream(all(t, fresh))
	if len(got) != len(want) {
		t.Fatalf("%d streams after resuming, %d in one go", len(got), len(want))
	}
	for stream, w := range want {
		g := got[stream]
		if len(g) != len(w) {
			t.Fatalf("%s: %d events after resuming, %d in one go", stream, len(g), len(w))
		}
		for i := range w {
			if g[i].ID != w[i].ID || !bytes.Equal(g[i].Data, w[i].Data) {
				t.Fatalf("%s event %d differs: %v vs %v", stream, i, g[i], w[i])
			}
		}
	}
}

func byStream(recs []eventstore.Record) map[string][]eventstore.Record {
	m := map[string][]eventstore.Record{}
	for _, r := range recs {
		m[r.Stream] = append(m[r.Stream], r)
	}
	return m
}

// TestLookupResolvesKnownIdentifiers: an identifier the identity read
// model knows goes to its customer; no registration is made.
func TestLookupResolvesKnownIdentifiers(t *testing.T) {
	store := memstore.New(memstore.Config{})
	if _, _, err := run(t, store, "ana", lines(register)); err != nil {
		t.Fatal(err)
	}
	lookup := func(_ context.Context, kind domain.IdentifierKind, v string) (uuid.UUID, bool, error) {
		if kind == domain.IdentifierEmail && v == "bruno.díaz@example.es" {
			return uuid.MustParse(anaID), true, nil
		}
		return uuid.Nil, false, nil
	}
	sum, _, err := run(t, store, "notes", lines(note), func(c *importer.Config) { c.Lookup = lookup })
	if err != nil || sum.Registered != 0 {
		t.Fatalf("%+v %v", sum, err)
	}
	recs := all(t, store)
	if len(recs) != 2 || recs[1].Stream != domain.StreamID(uuid.MustParse(anaID)) {
		t.Fatalf("note went to %v", recs)
	}
}
