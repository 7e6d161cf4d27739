package timeline_test

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/timeline"
)

// Loyalty movements are on the timeline on every backend, with their
// summaries, and a type filter finds them.
func TestLoyaltyOnTimeline(t *testing.T) {
	earning := uuid.MustParse("5d0f7a3e-9c1b-4e8d-a2f6-3b7c9e1d4a58")
	l := projectiontest.NewLog(t)
	l.Add(zoe, at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë"})
	l.Add(zoe, at(1), domain.PurchaseCompleted{OrderID: order1, Amount: 12_500, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SNK-42", Quantity: 1, UnitAmount: 12_500}}})
	l.Add(zoe, at(2), domain.PointsEarned{EarningID: earning, Points: 125, Reason: domain.EarnPurchase, OrderID: new(order1)})
	l.Add(zoe, at(3), domain.PointsRedeemed{RedemptionID: refund, Points: 100, Reward: "COFFEE-FREE"})
	l.Add(zoe, at(4), domain.PointsExpired{EarningID: earning, Points: 25})
	want := []line{
		{3, "Earned 125 points (purchase, order 44de0bb8…)"},
		{4, "Redeemed 100 points for COFFEE-FREE"},
		{5, "25 points expired (earning 5d0f7a3e…)"},
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		projectiontest.FoldBatches(t, b, ns, timeline.New(), l.Envelopes(), 2)
		got := lines(all(t, b, timeline.History(l.Envelopes()), zoe, timeline.Query{Types: []string{domain.TypePointsEarned, domain.TypePointsRedeemed, domain.TypePointsExpired}}))
		slices.SortFunc(got, func(a, b line) int { return int(a.pos) - int(b.pos) })
		if !slices.Equal(got, want) {
			t.Errorf("loyalty lines = %v, want %v", got, want)
		}
	})
}
