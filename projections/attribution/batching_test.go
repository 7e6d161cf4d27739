package attribution_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

// randomCampaigns returns a seeded random history of campaign touches,
// e-mails, leads, purchases and refunds of a few customers, dated at
// random over two months (so windows overlap and months are crossed) and
// often at the same instant, with the oddities of imported history:
// repeated order and refund ids, opens before sends, refunds before
// purchases. Some customers are forgotten at the end.
func randomCampaigns(t testing.TB, seed uint64, customers, events int) []domain.Envelope {
	rng := rand.New(rand.NewPCG(seed, 11))
	newID := func() uuid.UUID {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		id, _ := uuid.FromBytes(b[:])
		id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
		return id
	}
	ids := make([]uuid.UUID, customers)
	for i := range ids {
		ids[i] = newID()
	}
	type orderRef struct {
		id       uuid.UUID
		currency string
	}
	orders := map[uuid.UUID][]orderRef{}
	campaigns := []string{"spring-sale", "vip-sms", "retarget", "Ünïcode — rentrée 2025"}
	channels := []domain.CampaignChannel{domain.CampaignEmail, domain.CampaignSMS, domain.CampaignDisplay}
	actions := []domain.CampaignAction{domain.ActionSent, domain.ActionDelivered, domain.ActionBounced, domain.ActionViewed, domain.ActionClicked, domain.ActionConverted, domain.ActionUnsubscribed}
	currencies := []string{"EUR", "USD", "JPY"}
	start := time.Date(2025, 2, 20, 0, 0, 0, 0, time.UTC)
	var refundIDs []uuid.UUID
	l := projectiontest.NewLog(t)
	for len(l.Envelopes()) < events {
		c := ids[rng.IntN(len(ids))]
		at := start.Add(time.Duration(rng.IntN(60*24)) * time.Hour) // whole hours: many ties
		campaign := campaigns[rng.IntN(len(campaigns))]
		msg := fmt.Sprintf("<m%d@mail.shop.example>", rng.IntN(6))
		var e domain.Event
		switch k := rng.IntN(20); {
		case k < 7:
			e = domain.CampaignTouched{Campaign: campaign, Channel: channels[rng.IntN(len(channels))], Action: actions[rng.IntN(len(actions))]}
		case k < 9:
			if rng.IntN(3) == 0 {
				campaign = ""
			}
			e = domain.EmailSent{MessageID: msg, Subject: "Nouveautés", From: "news@shop.example", To: "client@example.fr", Campaign: campaign}
		case k < 10:
			e = domain.EmailOpened{MessageID: msg}
		case k < 11:
			e = domain.EmailClicked{MessageID: msg, URL: "https://shop.example/c"}
		case k < 12:
			e = domain.SMSSent{To: "+351 912 345 678", Body: "Promo", Campaign: campaign}
		case k < 13:
			e = domain.LeadCaptured{Source: domain.LeadAds, Campaign: campaign}
		case k < 17:
			o := orderRef{newID(), currencies[rng.IntN(len(currencies))]}
			if len(orders[c]) > 0 && rng.IntN(10) == 0 {
				o = orders[c][rng.IntN(len(orders[c]))] // a repeated order id
			}
			orders[c] = append(orders[c], o)
			amount := int64(rng.IntN(20_000))
			e = domain.PurchaseCompleted{OrderID: o.id, Amount: amount, Currency: o.currency,
				Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitAmount: amount}}}
		default:
			var o orderRef
			if len(orders[c]) == 0 || rng.IntN(5) == 0 {
				o = orderRef{newID(), "EUR"} // its purchase may come later, or never
				orders[c] = append(orders[c], o)
			} else {
				o = orders[c][rng.IntN(len(orders[c]))]
			}
			id := newID()
			if len(refundIDs) > 0 && rng.IntN(10) == 0 {
				id = refundIDs[rng.IntN(len(refundIDs))] // a repeated refund id
			}
			refundIDs = append(refundIDs, id)
			e = domain.RefundIssued{RefundID: id, OrderID: o.id, Amount: 1 + int64(rng.IntN(8_000)), Currency: o.currency}
		}
		l.Add(c, at, e)
	}
	for _, c := range ids[:customers/3] {
		l.Add(c, start.AddDate(0, 3, 0), domain.CustomerForgotten{Request: "DSR-1"})
	}
	return l.Envelopes()
}

// Folding one batch or many small ones must store the same bytes.
func TestBatchingIsInvisible(t *testing.T) {
	p := attribution.New(attribution.Config{})
	for seed := range uint64(4) {
		history := randomCampaigns(t, seed, 8, 500)
		projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
			projectiontest.BatchingIsInvisible(t, b, p, history, seed)
		})
	}
}

// Every batch size gives the bytes and digest of one batch in memory, on
// every backend, and the history exercises the whole read model.
func TestBatchSizesAgree(t *testing.T) {
	p := attribution.New(attribution.Config{Window: 3 * 24 * time.Hour})
	history := randomCampaigns(t, 42, 6, 400)
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		dump := projectiontest.BatchSizesAgree(t, b, p, history)
		for _, want := range []string{`"emailOpened":`, `"refunded":`, `"forgotten":true`, `/touches/2025-02`, `/message/`, `"last":{"purchases":`, `"first":{"purchases":`} {
			if !strings.Contains(dump, want) {
				t.Errorf("the history never produced %s", want)
			}
		}
	})
}

// Random histories in any arrival order give the same bytes.
func TestRandomArrivalOrder(t *testing.T) {
	for seed := range uint64(6) {
		history := randomCampaigns(t, seed, 5, 300)
		p := attribution.New(attribution.Config{})
		b := projectiontest.Memory(t)
		projectiontest.FoldBatches(t, b, "attribution_log", p, history, 0)
		want := projectiontest.Dump(t, b, "attribution_log")
		for i, perm := range permutations(history, 5) {
			ns := fmt.Sprintf("attribution_perm_%d", i)
			projectiontest.FoldBatches(t, b, ns, p, perm, 1+i)
			if got := projectiontest.Dump(t, b, ns); got != want {
				t.Fatalf("seed %d, permutation %d: read model differs:\n%s\nwant\n%s", seed, i, got, want)
			}
		}
	}
}
