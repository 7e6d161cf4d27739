package analytics_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

// randomHistory returns a seeded random, valid interleaving of the
// histories of a few customers: every event passes the customer
// aggregate's Check. OccurredAt is random within a year, not monotonic,
// as in imported history.
func randomHistory(seed uint64, customers, events int) []domain.Envelope {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	newID := func() uuid.UUID {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		id, _ := uuid.FromBytes(b[:])
		id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
		return id
	}
	type cust struct {
		id            uuid.UUID
		agg           *domain.Customer
		tickets, opps []uuid.UUID
		orders        []domain.PurchaseCompleted
	}
	cs := make([]*cust, customers)
	for i := range cs {
		id := newID()
		cs[i] = &cust{id: id, agg: domain.NewCustomer(id)}
	}
	var s projectiontest.Log
	var out []domain.Envelope
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	pick := func(ids []uuid.UUID) uuid.UUID {
		if len(ids) == 0 {
			return newID()
		}
		return ids[rng.IntN(len(ids))]
	}
	currencies := []string{"EUR", "USD", "JPY"}
	priorities := []domain.TicketPriority{domain.PriorityLow, domain.PriorityNormal, domain.PriorityHigh, domain.PriorityUrgent}
	stages := []domain.OpportunityStage{domain.StageProspecting, domain.StageQualification, domain.StageProposal, domain.StageNegotiation}
	for len(out) < events {
		i := rng.IntN(len(cs))
		if cs[i].agg.Forgotten() { // a new customer takes the slot, so the loop ends
			id := newID()
			cs[i] = &cust{id: id, agg: domain.NewCustomer(id)}
		}
		c := cs[i]
		var e domain.Event
		if !c.agg.Registered() {
			e = domain.CustomerRegistered{CustomerID: c.id, Name: "Zoë " + c.id.String()[:4]}
		} else {
			switch rng.IntN(16) {
			case 0, 1, 2:
				o := purchase(rng.IntN(1_000_000), int64(rng.IntN(50_000)), currencies[rng.IntN(len(currencies))])
				o.OrderID = newID()
				c.orders = append(c.orders, o)
				e = o
			case 3:
				if len(c.orders) > 0 {
					o := c.orders[rng.IntN(len(c.orders))]
					e = domain.RefundIssued{RefundID: newID(), OrderID: o.OrderID, Amount: 1 + int64(rng.IntN(5_000)), Currency: o.Currency}
				}
			case 4:
				id := newID()
				c.tickets = append(c.tickets, id)
				e = domain.TicketOpened{TicketID: id, Subject: "Problème", Priority: priorities[rng.IntN(4)], Channel: domain.TicketChat}
			case 5:
				e = domain.TicketUpdated{TicketID: pick(c.tickets), FirstResponse: rng.IntN(2) == 0, Priority: ptr(priorities[rng.IntN(4)])}
			case 6:
				e = domain.TicketResolved{TicketID: pick(c.tickets), Resolution: "ok"}
			case 7:
				e = domain.TicketReopened{TicketID: pick(c.tickets), Reason: "again"}
			case 8:
				e = domain.TicketClosed{TicketID: pick(c.tickets)}
			case 9:
				id := newID()
				c.opps = append(c.opps, id)
				e = domain.OpportunityOpened{OpportunityID: id, Name: "Deal", Amount: int64(rng.IntN(1_000_000)), Currency: currencies[rng.IntN(3)], Stage: stages[rng.IntN(4)], ExpectedClose: "2025-06-30"}
			case 10:
				e = domain.OpportunityStageChanged{OpportunityID: pick(c.opps), Stage: stages[rng.IntN(4)]}
			case 11:
				e = domain.OpportunityWon{OpportunityID: pick(c.opps)}
			case 12:
				e = domain.SurveyAnswered{Survey: []string{"nps-q1", "nps-q2"}[rng.IntN(2)], NPS: ptr(rng.IntN(11))}
			case 13:
				e = domain.CampaignTouched{Campaign: "spring", Channel: domain.CampaignSMS, Action: domain.ActionSent}
				if !c.agg.Consented(domain.Consent{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing}) {
					e = domain.ConsentGranted{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Source: "web"}
				}
			case 14:
				e = domain.CallLogged{Direction: domain.CallOutbound, DurationSeconds: 60, Agent: "user:a", Outcome: domain.CallConnected}
			case 15:
				if rng.IntN(8) == 0 {
					e = domain.CustomerForgotten{Request: "DSR-1", Reason: "art. 17"}
				}
			}
		}
		if e == nil || c.agg.Check(e) != nil {
			continue
		}
		c.agg.Apply(e)
		at := start.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		out = append(out, s.Add(c.id, at, e))
	}
	return out
}

// Folding one batch or many small ones must store the same bytes.
func TestBatchingIsInvisible(t *testing.T) {
	for seed := range uint64(5) {
		history := randomHistory(seed, 12, 600)
		for _, p := range []projections.Projection{
			analytics.NewCustomers(analytics.Config{}),
			analytics.NewChannels(analytics.Config{}),
			analytics.NewTickets(analytics.Config{}),
		} {
			projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
				projectiontest.BatchingIsInvisible(t, b, p, history, seed)
			})
		}
	}
}
