package attribution

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

// small returns the projection with tiny per-customer bounds, so that
// they are reached.
func small(touches, purchases, refunds int) *projection {
	p := New(Config{}).(*projection)
	p.maxTouches, p.maxPurchases, p.maxRefunds = touches, purchases, refunds
	return p
}

func TestInsertSortedKeepsTheLargest(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		in := make([]int, 30)
		for i := range in {
			in[i] = rng.IntN(20) // with repeats
		}
		var s []int
		for _, v := range in {
			s, _, _ = insertSorted(s, v, 5, func(a, b int) int { return a - b })
		}
		want := slices.Compact(slices.Sorted(slices.Values(in)))
		want = want[max(0, len(want)-5):]
		if !slices.Equal(s, want) {
			t.Errorf("seed %d: kept %v, want the 5 largest distinct %v", seed, s, want)
		}
	}
}

// Past the bounds the oldest facts go, with what they contributed, and
// the read model still depends only on the set of events.
func TestBounds(t *testing.T) {
	c := uuid.MustParse("9d2f4b6a-8c1e-4a3b-9f5d-7e0c2a4b6d8f")
	l := projectiontest.NewLog(t)
	day := func(d int) time.Time { return time.Date(2025, 3, d, 9, 0, 0, 0, time.UTC) }
	buy := func(name string) domain.PurchaseCompleted {
		return domain.PurchaseCompleted{OrderID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)), Amount: 1_000, Currency: "EUR",
			Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitAmount: 1_000}}}
	}
	refund := func(name, order string, amount int64) domain.RefundIssued {
		return domain.RefundIssued{RefundID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)), OrderID: buy(order).OrderID, Amount: amount, Currency: "EUR"}
	}
	// Three touches in March (bound 2: a's goes), four purchases (bound 3:
	// o1 goes), three refunds (bound 2: r1 goes).
	l.Add(c, day(1), domain.CampaignTouched{Campaign: "a", Channel: domain.CampaignEmail, Action: domain.ActionSent})
	l.Add(c, day(2), buy("o1"))
	l.Add(c, day(5), buy("o0")) // credited to a while a's touch is kept
	l.Add(c, day(10), domain.CampaignTouched{Campaign: "b", Channel: domain.CampaignEmail, Action: domain.ActionSent})
	l.Add(c, day(11), buy("o2"))
	l.Add(c, day(12), refund("r1", "o2", 100))
	l.Add(c, day(20), domain.CampaignTouched{Campaign: "c", Channel: domain.CampaignEmail, Action: domain.ActionSent})
	l.Add(c, day(21), buy("o3"))
	l.Add(c, day(22), refund("r2", "o3", 200))
	l.Add(c, day(25), refund("r3", "o2", 300))
	events := l.Envelopes()

	p := small(2, 3, 2)
	b := projectiontest.Memory(t)
	projectiontest.FoldBatches(t, b, "attribution_small", p, events, 0)
	want := projectiontest.Dump(t, b, "attribution_small")
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		perm := slices.Clone(events)
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		ns := fmt.Sprintf("attribution_small_%d", i)
		projectiontest.FoldBatches(t, b, ns, p, perm, 1+i%4)
		if got := projectiontest.Dump(t, b, ns); got != want {
			t.Fatalf("permutation %d differs:\n%s\nwant\n%s", i, got, want)
		}
	}

	rep, err := projectiontest.Query(t, b, "attribution_small", func(ctx context.Context, r projections.Reader) (Report, error) {
		return Campaigns(ctx, r, Options{})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Kept: touches b (10th), c (20th); purchases o0 (5th, its touch
	// gone: unattributed), o2 (11th, → b), o3 (21st, → c); refunds r2, r3.
	// Touch counts and reach stay.
	got := map[string]string{}
	for _, c := range rep.Campaigns {
		got[c.Campaign] = fmt.Sprintf("sent %d reached %d credited %d %v", c.Touches.Sent, c.Reached, c.LastTouch.Purchases, c.LastTouch.Revenue)
	}
	wantCampaigns := map[string]string{
		"a": "sent 1 reached 1 credited 0 []",
		"b": "sent 1 reached 1 credited 1 [{EUR 1000 300 700}]",
		"c": "sent 1 reached 1 credited 1 [{EUR 1000 200 800}]",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantCampaigns) || rep.Purchases != 3 {
		t.Errorf("got %v, %d purchases; want %v, 3", got, rep.Purchases, wantCampaigns)
	}
}
