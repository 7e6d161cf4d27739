package rules_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/cxledger/cxledger/projections/reactor/reactortest"
	"github.com/cxledger/cxledger/projections/rules"
)

// ledgerAppender decides each emission against the customer's history as
// the ledger's write path does: a marketing message without consent is
// refused with domain.ErrRejected.
type ledgerAppender = reactortest.Appender

const engineRules = `{"rules":[
 {"name":"follow_up","on":"PurchaseCompleted","when":[{"field":"amount","op":">=","value":5000}],
  "after":"72h","cancelOn":["RefundIssued"],
  "emit":{"type":"NoteAdded","data":{"body":"Follow up on order {{orderId}}"}}},
 {"name":"thank_you","on":"PurchaseCompleted",
  "emit":{"type":"CampaignTouched","data":{"campaign":"thank-you","channel":"email","action":"sent"}}}]}`

func add(t *testing.T, s eventstore.Store, customer uuid.UUID, at time.Time, e domain.Event) uuid.UUID {
	t.Helper()
	return reactortest.Add(t, s, customer, at, e)
}

func ofType(t *testing.T, s eventstore.Store, customer uuid.UUID, typ string) []eventstore.Record {
	t.Helper()
	recs, err := s.ReadStream(context.Background(), domain.StreamID(customer), eventstore.ReadStreamOptions{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var out []eventstore.Record
	for _, r := range recs {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// TestReactorOnEngine runs the rules through the real reactor engine: a
// delayed rule fires once, a cancelOn event cancels it, and a marketing
// rule emits only for the customer who consented.
func TestReactorOnEngine(t *testing.T) {
	t.Parallel()
	rs, err := rules.Parse([]byte(engineRules))
	if err != nil {
		t.Fatal(err)
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		s := memstore.New(memstore.Config{})
		past := time.Now().UTC().Add(-100 * time.Hour).Truncate(time.Second)
		kept, refunded := uuid.New(), uuid.New()
		order1, order2 := uuid.New(), uuid.New()
		add(t, s, kept, past, domain.CustomerRegistered{CustomerID: kept, Name: "Zoë Ñúñez", Country: "ES"})
		add(t, s, kept, past, domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout"})
		trigger := add(t, s, kept, past.Add(time.Minute), domain.PurchaseCompleted{OrderID: order1, Amount: 7900, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "moulin", Quantity: 1, UnitAmount: 7900}}})
		add(t, s, refunded, past, domain.CustomerRegistered{CustomerID: refunded, Name: "Łukasz Ąę", Country: "PL"})
		add(t, s, refunded, past.Add(time.Minute), domain.PurchaseCompleted{OrderID: order2, Amount: 9900, Currency: "PLN", Lines: []domain.OrderLine{{SKU: "kawa", Quantity: 3, UnitAmount: 3300}}})
		add(t, s, refunded, past.Add(2*time.Hour), domain.RefundIssued{RefundID: uuid.New(), OrderID: order2, Amount: 9900, Currency: "PLN", Reason: "zwrot"})

		e := reactor.New(s, b, ledgerAppender{Store: s}, reactor.Config{TimerInterval: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		for _, r := range rs {
			if err := e.Register(rules.Reactor(r, nil)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		head, _ := s.Head(context.Background())
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := e.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			caught := true
			for _, x := range st {
				caught = caught && x.Checkpoint >= head && x.Pending == 0
			}
			if caught && len(ofType(t, s, kept, domain.TypeNoteAdded)) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %+v", st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // a few more timer rounds: nothing more fires
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}

		notes := ofType(t, s, kept, domain.TypeNoteAdded)
		if len(notes) != 1 || string(notes[0].Data) != `{"body":"Follow up on order `+order1.String()+`"}` {
			t.Fatalf("kept customer's notes: %+v", notes)
		}
		if md := notes[0].Metadata; !md.OccurredAt.Equal(past.Add(time.Minute+72*time.Hour)) || md.Actor != reactor.Actor("rule_follow_up") {
			t.Fatalf("note metadata %+v", md)
		}
		if got := ofType(t, s, refunded, domain.TypeNoteAdded); len(got) != 0 {
			t.Fatalf("the refund did not cancel the follow-up: %+v", got)
		}
		touched := ofType(t, s, kept, domain.TypeCampaignTouched)
		if len(touched) != 1 || touched[0].Metadata.CausationID != trigger.String() {
			t.Fatalf("consenting customer's campaign sends: %+v", touched)
		}
		if got := ofType(t, s, refunded, domain.TypeCampaignTouched); len(got) != 0 {
			t.Fatalf("a marketing send without consent was stored: %+v", got)
		}
	})
}
