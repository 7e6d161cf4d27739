package rules_test

import (
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/rules"
)

// TestDryRun folds a hand-written history through the example rules:
//
//	day 0 09:00 registered; consent to marketing email
//	day 0 10:00 purchase A 7 900 EUR  → follow_up due day 3 10:00; reorder due day 30 10:00
//	day 1 08:00 urgent ticket T opened → ticket_sla due day 1 12:00
//	day 1 11:00 ticket T resolved      → ticket_sla cancelled
//	day 2 10:00 purchase B 1 200 EUR  → below 5 000: no follow_up; reorder restarts, due day 32 10:00
//	day 3 10:00 (timer)                → follow_up for A fires
//	day 4 09:00 consent withdrawn
//	now = day 10: reorder still pending at day 32, and refused then (consent withdrawn).
func TestDryRun(t *testing.T) {
	data, err := os.ReadFile("../../cmd/cxledger/testdata/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	customer := uuid.MustParse("0195c0de-0000-7000-8000-00000000c0de")
	orderA, orderB, ticket := uuid.New(), uuid.New(), uuid.New()
	day0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	at := func(day, hour int) time.Time {
		return day0.Add(time.Duration(day)*24*time.Hour + time.Duration(hour)*time.Hour)
	}
	var history []domain.Envelope
	ev := func(when time.Time, e domain.Event) {
		history = append(history, domain.Envelope{ID: uuid.New(), Stream: domain.StreamID(customer), Type: e.EventType(),
			Version: uint64(len(history)), Metadata: domain.Metadata{OccurredAt: when}, Event: e})
	}
	ev(at(0, 9), domain.CustomerRegistered{CustomerID: customer, Name: "Zoë", Country: "FR"})
	ev(at(0, 9), domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing})
	ev(at(0, 10), domain.PurchaseCompleted{OrderID: orderA, Amount: 7900, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "moulin", Quantity: 1, UnitAmount: 7900}}})
	ev(at(1, 8), domain.TicketOpened{TicketID: ticket, Subject: "Moulin bloqué", Priority: domain.PriorityUrgent, Channel: domain.TicketWeb})
	ev(at(1, 11), domain.TicketResolved{TicketID: ticket, Resolution: "Nettoyé"})
	ev(at(2, 10), domain.PurchaseCompleted{OrderID: orderB, Amount: 1200, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "café", Quantity: 1, UnitAmount: 1200}}})
	ev(at(4, 9), domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing})

	got, err := rules.DryRun(rs, history, at(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		rule    string
		trigger int
		due     time.Time
		fired   bool
		event   domain.Event
	}
	wants := []want{
		{"follow_up_purchase", 2, at(3, 10), true, domain.NoteAdded{Body: "Follow up on order " + orderA.String() + " (7900 EUR)"}},
		{"reorder_nudge", 5, at(32, 10), false, nil},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d emissions, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Rule != w.rule || g.Trigger.ID != history[w.trigger].ID || !g.Due.Equal(w.due) || g.Fired != w.fired || g.Event != w.event {
			t.Errorf("emission %d: %+v, want %+v", i, g, w)
		}
	}
	if got[1].Skipped == "" {
		t.Errorf("the reorder nudge after the withdrawal is not skipped: %+v", got[1])
	}

	// Before the withdrawal, the nudge passes; by day 40 it has fired.
	got, err = rules.DryRun(rs, history[:6], at(40, 0))
	if err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1]
	if len(got) != 2 || last.Rule != "reorder_nudge" || !last.Fired || last.Skipped != "" ||
		last.Event != (domain.CampaignTouched{Campaign: "reorder-30d", Channel: domain.CampaignEmail, Action: domain.ActionSent}) {
		t.Fatalf("emissions %+v", got)
	}

	// The ticket timer fires when nothing resolves the ticket in time.
	got, err = rules.DryRun(rs, history[:4], at(1, 12))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Rule != "ticket_sla" || !got[0].Fired || got[0].Event != (domain.NoteAdded{Body: "SLA breached: urgent ticket " + ticket.String() + " unresolved after 4h"}) {
		t.Fatalf("emissions %+v", got)
	}
}
