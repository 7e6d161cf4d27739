package rules_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/rules"
)

func parseOne(t *testing.T, rule string) rules.Rule {
	t.Helper()
	rs, err := rules.Parse([]byte(`{"rules":[` + rule + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return rs[0]
}

func TestParseExample(t *testing.T) {
	data, err := os.ReadFile("../../cmd/cxledger/testdata/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[0].Name != "follow_up_purchase" || rs[0].After.Hours() != 72 || rs[1].Key != "ticketId" {
		t.Fatalf("parsed %+v", rs)
	}
}

func TestParseErrors(t *testing.T) {
	const emit = `"emit":{"type":"NoteAdded","data":{"body":"x"}}`
	for _, tc := range []struct {
		name, file, want string
	}{
		{"not rules", `[]`, "rules file"},
		{"no rules key", `{}`, `want {"rules"`},
		{"unknown file field", `{"rules":[],"extra":1}`, `unknown field "extra"`},
		{"unknown field", `{"rules":[{"name":"a","on":"NoteAdded","delay":"1h",` + emit + `}]}`, `rule "a": delay: unknown field`},
		{"unknown field in when", `{"rules":[{"name":"a","on":"NoteAdded","when":[{"field":"body","op":"exists","value":true,"x":1}],` + emit + `}]}`, `rule "a": x: unknown field`},
		{"unknown field in emit", `{"rules":[{"name":"a","on":"NoteAdded",` + `"emit":{"type":"NoteAdded","data":{"body":"x"},"at":1}}]}`, `rule "a": at: unknown field`},
		{"unnamed", `{"rules":[{"on":"NoteAdded",` + emit + `}]}`, `rule #1: name`},
		{"bad name", `{"rules":[{"name":"Follow-Up","on":"NoteAdded",` + emit + `}]}`, `rule "Follow-Up": name`},
		{"long name", `{"rules":[{"name":"` + strings.Repeat("a", 26) + `","on":"NoteAdded",` + emit + `}]}`, `at most 25`},
		{"unknown trigger", `{"rules":[{"name":"a","on":"Purchased",` + emit + `}]}`, `rule "a": on: unknown event type "Purchased"`},
		{"unknown emit type", `{"rules":[{"name":"a","on":"NoteAdded","emit":{"type":"Nope","data":{}}}]}`, `rule "a": emit.type: unknown event type "Nope"`},
		{"emit forget", `{"rules":[{"name":"a","on":"NoteAdded","emit":{"type":"CustomerForgotten","data":{}}}]}`, `cannot emit CustomerForgotten`},
		{"no emit", `{"rules":[{"name":"a","on":"NoteAdded"}]}`, `rule "a": emit: required`},
		{"bad op", `{"rules":[{"name":"a","on":"PurchaseCompleted","when":[{"field":"amount","op":"=>","value":1}],` + emit + `}]}`, `rule "a": when[0]: op "=>"`},
		{"no value", `{"rules":[{"name":"a","on":"PurchaseCompleted","when":[{"field":"amount","op":">"}],` + emit + `}]}`, `needs a value`},
		{"in not array", `{"rules":[{"name":"a","on":"PurchaseCompleted","when":[{"field":"currency","op":"in","value":"EUR"}],` + emit + `}]}`, `non-empty array`},
		{"exists not bool", `{"rules":[{"name":"a","on":"PurchaseCompleted","when":[{"field":"currency","op":"exists","value":1}],` + emit + `}]}`, `true or false`},
		{"order on object", `{"rules":[{"name":"a","on":"PurchaseCompleted","when":[{"field":"amount","op":"<","value":[1]}],` + emit + `}]}`, `number or a string`},
		{"unknown when field", `{"rules":[{"name":"a","on":"PurchaseCompleted","when":[{"field":"total","op":">","value":1}],` + emit + `}]}`, `rule "a": when[0].field: PurchaseCompleted has no field "total"`},
		{"bad duration", `{"rules":[{"name":"a","on":"NoteAdded","after":"3 days",` + emit + `}]}`, `rule "a": after: "3 days"`},
		{"negative duration", `{"rules":[{"name":"a","on":"NoteAdded","after":"-1h",` + emit + `}]}`, `rule "a": after: -1h0m0s`},
		{"huge duration", `{"rules":[{"name":"a","on":"NoteAdded","after":"50000h",` + emit + `}]}`, `rule "a": after`},
		{"cancel without delay", `{"rules":[{"name":"a","on":"PurchaseCompleted","cancelOn":["RefundIssued"],` + emit + `}]}`, `rule "a": cancelOn: needs a delay`},
		{"unknown cancel type", `{"rules":[{"name":"a","on":"PurchaseCompleted","after":"1h","cancelOn":["Refunded"],` + emit + `}]}`, `rule "a": cancelOn[0]: unknown event type`},
		{"cancel on trigger", `{"rules":[{"name":"a","on":"PurchaseCompleted","after":"1h","cancelOn":["PurchaseCompleted"],` + emit + `}]}`, `cancelOn[0]: PurchaseCompleted is the trigger`},
		{"key missing on cancel", `{"rules":[{"name":"a","on":"TicketOpened","after":"1h","key":"ticketId","cancelOn":["NoteAdded"],` + emit + `}]}`, `cancelOn[0]: NoteAdded has no key field "ticketId"`},
		{"unknown data field", `{"rules":[{"name":"a","on":"NoteAdded","emit":{"type":"NoteAdded","data":{"text":"x"}}}]}`, `rule "a": emit.data: NoteAdded has no field "text"`},
		{"unknown placeholder", `{"rules":[{"name":"a","on":"PurchaseCompleted","emit":{"type":"NoteAdded","data":{"body":"order {{order}}"}}}]}`, `placeholder {{order}}`},
		{"invalid literal data", `{"rules":[{"name":"a","on":"NoteAdded","emit":{"type":"NoteAdded","data":{"body":""}}}]}`, `rule "a": emit.data: invalid body: required`},
		{"duplicate name", `{"rules":[{"name":"a","on":"NoteAdded",` + emit + `},{"name":"a","on":"NoteAdded",` + emit + `}]}`, `rule "a": name: duplicate rule name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rules.Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	_, err := rules.Parse([]byte(`{"rules":[{"name":"a","on":"NoteAdded","bogus":1,"emit":{}}]}`))
	var re *rules.Error
	if !errors.As(err, &re) || re.Rule != `"a"` || re.Field != "bogus" {
		t.Fatalf("error %#v, want *rules.Error naming rule and field", err)
	}
}

func TestConditions(t *testing.T) {
	order := uuid.MustParse("0195c0de-7a1b-7c3d-8e4f-a1b2c3d4e5f6")
	p := domain.PurchaseCompleted{OrderID: order, Amount: 5000, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "café-250g", Quantity: 2, UnitAmount: 2500}}}
	for _, tc := range []struct {
		when string
		want bool
	}{
		{`{"field":"amount","op":"==","value":5000}`, true},
		{`{"field":"amount","op":"==","value":5000.0}`, true},
		{`{"field":"amount","op":"!=","value":5000}`, false},
		{`{"field":"amount","op":">","value":4999}`, true},
		{`{"field":"amount","op":">","value":5000}`, false},
		{`{"field":"amount","op":">=","value":5000}`, true},
		{`{"field":"amount","op":"<","value":5001}`, true},
		{`{"field":"amount","op":"<=","value":4999}`, false},
		{`{"field":"amount","op":">","value":"4999"}`, false},
		{`{"field":"currency","op":"==","value":"EUR"}`, true},
		{`{"field":"currency","op":"<","value":"USD"}`, true},
		{`{"field":"currency","op":"in","value":["USD","EUR"]}`, true},
		{`{"field":"currency","op":"in","value":["USD","GBP"]}`, false},
		{`{"field":"currency","op":"exists","value":true}`, true},
		{`{"field":"orderId","op":"==","value":"` + order.String() + `"}`, true},
		{`{"field":"lines","op":"exists","value":false}`, false},
	} {
		r := parseOne(t, `{"name":"a","on":"PurchaseCompleted","when":[`+tc.when+`],"emit":{"type":"NoteAdded","data":{"body":"x"}}}`)
		got, err := r.Matches(p)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.when, got, err, tc.want)
		}
	}
	// A missing field reads as null.
	tk := domain.TicketClosed{TicketID: order}
	for when, want := range map[string]bool{
		`{"field":"reason","op":"exists","value":false}`: true,
		`{"field":"reason","op":"==","value":null}`:      true,
		`{"field":"reason","op":"!=","value":"spam"}`:    true,
		`{"field":"reason","op":">","value":""}`:         false,
	} {
		r := parseOne(t, `{"name":"a","on":"TicketClosed","when":[`+when+`],"emit":{"type":"NoteAdded","data":{"body":"x"}}}`)
		if got, _ := r.Matches(tk); got != want {
			t.Errorf("%s on a missing field: %v, want %v", when, got, want)
		}
	}
}

func TestRender(t *testing.T) {
	order := uuid.MustParse("0195c0de-7a1b-7c3d-8e4f-a1b2c3d4e5f6")
	p := domain.PurchaseCompleted{OrderID: order, Amount: 12999, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "moulin-é", Quantity: 1, UnitAmount: 12999}}}
	r := parseOne(t, `{"name":"a","on":"PurchaseCompleted","emit":{"type":"NoteAdded","data":{"body":"Relancer la commande {{ orderId }} — {{amount}} {{currency}}"}}}`)
	ev, err := r.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Relancer la commande " + order.String() + " — 12999 EUR"; ev.(domain.NoteAdded).Body != want {
		t.Fatalf("body %q, want %q", ev.(domain.NoteAdded).Body, want)
	}
	// A whole-string placeholder keeps the value's type: a number stays a
	// number, a uuid a uuid.
	r = parseOne(t, `{"name":"b","on":"PurchaseCompleted","emit":{"type":"RefundIssued","data":{"refundId":"{{orderId}}","orderId":"{{orderId}}","amount":"{{amount}}","currency":"{{currency}}"}}}`)
	ev, err = r.Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if ri := ev.(domain.RefundIssued); ri.Amount != 12999 || ri.OrderID != order || ri.Currency != "EUR" {
		t.Fatalf("rendered %+v", ri)
	}
	// A value missing from the trigger fails rendering, naming the rule.
	r = parseOne(t, `{"name":"c","on":"TicketClosed","emit":{"type":"NoteAdded","data":{"body":"closed: {{reason}}"}}}`)
	if _, err := r.Render(domain.TicketClosed{TicketID: order}); err == nil || !strings.Contains(err.Error(), "rule c: placeholder {{reason}}") {
		t.Fatalf("render without the field: %v", err)
	}
}

// A rule grants bonus points: {{$id}} gives the earning an id derived from
// the trigger, the same on every replay, distinct per trigger.
func TestBonusPointsRule(t *testing.T) {
	rs, err := rules.Parse([]byte(`{"rules":[{"name":"big_order_bonus","on":"PurchaseCompleted","when":[{"field":"amount","op":">=","value":10000}],
		"emit":{"type":"PointsEarned","data":{"earningId":"{{$id}}","points":50,"reason":"bonus","rule":"big_order_bonus"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	order := uuid.New()
	buy := domain.PurchaseCompleted{OrderID: order, Amount: 12000, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "X", Quantity: 1, UnitAmount: 12000}}}
	id := uuid.New()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	env := domain.Envelope{ID: id, Stream: domain.StreamID(id), Type: domain.TypePurchaseCompleted, Metadata: domain.Metadata{OccurredAt: at}, Event: buy}
	reg := domain.Envelope{ID: uuid.New(), Stream: domain.StreamID(id), Type: domain.TypeCustomerRegistered, Metadata: domain.Metadata{OccurredAt: at}, Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé"}}
	first, err := rules.DryRun(rs, []domain.Envelope{reg, env}, at)
	if err != nil || len(first) != 1 || first[0].Event == nil {
		t.Fatalf("dry run: %+v, %v", first, err)
	}
	again, _ := rules.DryRun(rs, []domain.Envelope{reg, env}, at)
	p1, ok := first[0].Event.(domain.PointsEarned)
	if !ok || p1.Points != 50 || p1.Reason != domain.EarnBonus || p1.EarningID == uuid.Nil || again[0].Event.(domain.PointsEarned).EarningID != p1.EarningID {
		t.Errorf("bonus = %+v (again %+v)", first[0].Event, again[0].Event)
	}
}
