package customer360_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

var (
	earnA   = uuid.MustParse("5d0f7a3e-9c1b-4e8d-a2f6-3b7c9e1d4a58")
	earnB   = uuid.MustParse("e4a1c7d2-3b9f-4f6e-8a0d-5c2b7e9f1a34")
	earnC   = uuid.MustParse("7b3e9d1f-2a6c-4e8b-9f0a-1d5c3e7b9a26")
	redeem1 = uuid.MustParse("c81e4b2a-6f3d-4a9c-8e5b-0d2f7a1c3e96")
)

func day(n int) time.Time { return projectiontest.Day0.AddDate(0, 0, n) }

// loyaltyScenario, by hand: order1 300.00 EUR (day 10) earns A 300
// points expiring after a year (day 375); order2 250.00 EUR (day 100),
// refunded 50.00, earns B 250 expiring after six months (day 284); a
// bonus C of 100 never expires: 650 earned. Redeeming 500 spends B
// (earliest expiry) then 250 of A; the 50 left of A expire: balance
// 650 − 500 − 50 = 100. Net spend is 300.00 +
// 200.00 = 500.00 EUR, exactly silver.
func loyaltyScenario(t testing.TB) *projectiontest.Log {
	l := projectiontest.NewLog(t)
	line := func(amount int64) []domain.OrderLine {
		return []domain.OrderLine{{SKU: "BIKE-BELL", Quantity: 1, UnitAmount: amount}}
	}
	l.Add(zoe, day(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë Ångström-Nguyễn"})
	l.Add(zoe, day(10), domain.PurchaseCompleted{OrderID: order1, Amount: 30_000, Currency: "EUR", Lines: line(30_000)})
	l.Add(zoe, day(10), domain.PointsEarned{EarningID: earnA, Points: 300, Reason: domain.EarnPurchase, OrderID: new(order1), ExpiresAt: day(10).AddDate(1, 0, 0)})
	l.Add(zoe, day(100), domain.PurchaseCompleted{OrderID: order2, Amount: 25_000, Currency: "EUR", Lines: line(25_000)})
	l.Add(zoe, day(100), domain.PointsEarned{EarningID: earnB, Points: 250, Reason: domain.EarnPurchase, OrderID: new(order2), ExpiresAt: day(100).AddDate(0, 6, 0)})
	l.Add(zoe, day(101), domain.RefundIssued{RefundID: refund, OrderID: order2, Amount: 5_000, Currency: "EUR", Reason: "Scratched"})
	l.Add(zoe, day(120), domain.PointsEarned{EarningID: earnC, Points: 100, Reason: domain.EarnBonus, Rule: "birthday-2025"})
	l.Add(zoe, day(150), domain.PointsRedeemed{RedemptionID: redeem1, Points: 500, Reward: "TOTE-BAG"})
	l.Add(zoe, day(10).AddDate(1, 0, 0), domain.PointsExpired{EarningID: earnA, Points: 50})
	return l
}

func TestLoyalty(t *testing.T) {
	l := loyaltyScenario(t)
	// The aggregate accepts every event and agrees on the balance.
	c := domain.NewCustomer(zoe)
	for _, e := range l.Envelopes() {
		if err := c.CheckAt(e.Event, e.Metadata.OccurredAt); err != nil {
			t.Fatal(err)
		}
		c.ApplyAt(e.Event, e.Metadata.OccurredAt)
	}
	if c.Points() != 100 {
		t.Fatalf("aggregate balance %d, want 100", c.Points())
	}
	wantHistory := []customer360.Movement{
		{Type: domain.TypePointsEarned, Points: 300, At: day(10), Position: 3, EarningID: earnA, Reason: domain.EarnPurchase, OrderID: new(order1), ExpiresAt: day(10).AddDate(1, 0, 0)},
		{Type: domain.TypePointsEarned, Points: 250, At: day(100), Position: 5, EarningID: earnB, Reason: domain.EarnPurchase, OrderID: new(order2), ExpiresAt: day(100).AddDate(0, 6, 0)},
		{Type: domain.TypePointsEarned, Points: 100, At: day(120), Position: 7, EarningID: earnC, Reason: domain.EarnBonus, Rule: "birthday-2025"},
		{Type: domain.TypePointsRedeemed, Points: 500, At: day(150), Position: 8, RedemptionID: redeem1, Reward: "TOTE-BAG"},
		{Type: domain.TypePointsExpired, Points: 50, At: day(10).AddDate(1, 0, 0), Position: 9, EarningID: earnA},
	}
	yearOfOrder1 := day(10).AddDate(1, 0, 0)
	tiers := []struct {
		name  string
		now   time.Time
		tier  domain.Tier
		spend int64
	}{
		{"before order2", day(50), domain.TierBronze, 30_000},
		{"both orders, net of the refund", day(200), domain.TierSilver, 50_000},
		{"last instant order1 is in the window", yearOfOrder1.Add(-time.Nanosecond), domain.TierSilver, 50_000},
		{"order1 leaves the window", yearOfOrder1, domain.TierBronze, 20_000},
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for _, batch := range []int{0, 1, 4} {
			t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
				defer func() { _ = b.Drop(context.Background(), ns) }()
				projectiontest.FoldBatches(t, b, ns, customer360.New(), l.Envelopes(), batch)
				v, err := get(t, b, zoe)
				if err != nil {
					t.Fatal(err)
				}
				want := customer360.Loyalty{Balance: 100, Earned: 650, Redeemed: 500, Expired: 50, History: wantHistory}
				if g, w := jsonOf(v.Loyalty), jsonOf(want); g != w {
					t.Errorf("loyalty = %s\nwant      %s", g, w)
				}
				for _, tt := range tiers {
					v.SetTier(domain.TierPolicy{}, tt.now)
					got := v.Loyalty.Tier
					if got == nil || got.Tier != tt.tier || got.Currency != "EUR" || !maps.Equal(got.Spend, map[string]int64{"EUR": tt.spend}) {
						t.Errorf("%s: tier %+v, want %s on %d EUR cents", tt.name, got, tt.tier, tt.spend)
					}
				}
				// Erasure keeps the account: it holds no personal data.
				projectiontest.FoldBatches(t, b, ns, customer360.New(), []domain.Envelope{l.Add(zoe, day(400), domain.CustomerForgotten{Request: "DSR-7"})}, 0)
				if v, err = get(t, b, zoe); err != nil || v.Loyalty.Balance != 100 || len(v.Loyalty.History) != 5 || v.Loyalty.Tier != nil {
					t.Errorf("after erasure: %+v, %v", v.Loyalty, err)
				}
			})
		}
	})
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The view keeps the latest HistoryLen movements, in log order, while the
// totals count all of them.
func TestLoyaltyHistoryIsBounded(t *testing.T) {
	l := projectiontest.NewLog(t)
	l.Add(zoe, day(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë"})
	n := customer360.HistoryLen + 5
	for i := range n {
		l.Add(zoe, day(1+i), domain.PointsEarned{EarningID: uuid.NewSHA1(zoe, fmt.Appendf(nil, "%d", i)), Points: int64(i + 1), Reason: domain.EarnAdjustment})
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		projectiontest.FoldBatches(t, b, ns, customer360.New(), l.Envelopes(), 3)
		v, err := get(t, b, zoe)
		if err != nil {
			t.Fatal(err)
		}
		h := v.Loyalty.History
		// 1 + 2 + … + 25 = 325; the history starts at the 6th earning.
		if v.Loyalty.Earned != 325 || v.Loyalty.Balance != 325 || len(h) != customer360.HistoryLen || h[0].Points != 6 || h[len(h)-1].Points != int64(n) {
			t.Errorf("loyalty %+v", v.Loyalty)
		}
	})
}

// Claw-backs in the view agree with the aggregate, by hand: 200.00 €
// earns 200, 180 are redeemed (balance 20); a full refund claws back 200:
// 20 taken, 180 debt, balance 0; an earning of 100 pays 100 of the debt
// (debt 80, balance 0), one of 100 more pays the last 80 (balance 20).
// The tier counts the order for nothing once refunded.
func TestLoyaltyClawbackAndDebt(t *testing.T) {
	order, refund := uuid.New(), uuid.New()
	l := projectiontest.NewLog(t)
	l.Add(zoe, day(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë"})
	l.Add(zoe, day(1), domain.PurchaseCompleted{OrderID: order, Amount: 20_000, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "BIKE", Quantity: 1, UnitAmount: 20_000}}})
	l.Add(zoe, day(1), domain.PointsEarned{EarningID: earnA, Points: 200, Reason: domain.EarnPurchase, OrderID: &order})
	l.Add(zoe, day(2), domain.PointsRedeemed{RedemptionID: redeem1, Points: 180, Reward: "HELMET"})
	l.Add(zoe, day(3), domain.RefundIssued{RefundID: refund, OrderID: order, Amount: 20_000, Currency: "EUR"})
	l.Add(zoe, day(3), domain.PointsClawedBack{EarningID: earnA, RefundID: refund, OrderID: order, Points: 200})
	afterClaw := len(l.Envelopes())
	l.Add(zoe, day(4), domain.PointsEarned{EarningID: earnB, Points: 100, Reason: domain.EarnAdjustment})
	afterB := len(l.Envelopes())
	l.Add(zoe, day(5), domain.PointsEarned{EarningID: earnC, Points: 100, Reason: domain.EarnAdjustment})

	c := domain.NewCustomer(zoe)
	steps := map[int][2]int64{afterClaw: {0, 180}, afterB: {0, 80}, len(l.Envelopes()): {20, 0}}
	for i, e := range l.Envelopes() {
		if err := c.CheckAt(e.Event, e.Metadata.OccurredAt); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		c.ApplyAt(e.Event, e.Metadata.OccurredAt)
		if w, ok := steps[i+1]; ok && (c.Points() != w[0] || c.Debt() != w[1]) {
			t.Errorf("aggregate after %d events: balance %d debt %d, want %d, %d", i+1, c.Points(), c.Debt(), w[0], w[1])
		}
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for n, w := range steps {
			t.Run(fmt.Sprintf("events=%d", n), func(t *testing.T) {
				defer func() { _ = b.Drop(context.Background(), ns) }()
				projectiontest.FoldBatches(t, b, ns, customer360.New(), l.Envelopes()[:n], 2)
				v, err := get(t, b, zoe)
				if err != nil {
					t.Fatal(err)
				}
				if v.Loyalty.Balance != w[0] || v.Loyalty.Debt != w[1] || v.Loyalty.ClawedBack != 200 {
					t.Errorf("view: balance %d debt %d clawed back %d; want %d, %d, 200", v.Loyalty.Balance, v.Loyalty.Debt, v.Loyalty.ClawedBack, w[0], w[1])
				}
				if h := v.Loyalty.History; len(h) < 3 {
					t.Fatalf("history %+v", h)
				}
				if m := v.Loyalty.History[2]; m.Type != domain.TypePointsClawedBack || m.Points != 200 || m.Debt != 180 || m.RefundID != refund {
					t.Errorf("claw-back movement %+v", m)
				}
				v.SetTier(domain.TierPolicy{}, day(10))
				if v.Loyalty.Tier.Spend["EUR"] != 0 {
					t.Errorf("tier spend %v after the full refund, want 0", v.Loyalty.Tier.Spend)
				}
			})
		}
	})
}
