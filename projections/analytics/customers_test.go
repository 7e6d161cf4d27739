package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

var (
	c1  = uuid.MustParse("6b7bb795-9363-4d27-8279-1bc399c39ebb")
	c2  = uuid.MustParse("bb5ef70c-50d4-4fc1-b3b0-23175d3045a3")
	c3  = uuid.MustParse("41223323-9b6d-4aa2-a1bc-76ff3d483bd4")
	c4  = uuid.MustParse("a4306bab-bcad-4c18-97a3-f14355c36201")
	c5  = uuid.MustParse("143fe249-2870-49b2-82c4-f9e12c9e13c8")
	c6  = uuid.MustParse("95769ead-7bc7-4b3c-af3f-10478ca6bbd0")
	c7  = uuid.MustParse("088ea76d-52f5-4e2b-acbd-523d3d9f9861")
	c8  = uuid.MustParse("2fbf6ace-68b7-41f5-b406-7d1ca56d70c4")
	c9  = uuid.MustParse("7cfbc82e-0e85-4267-9513-a45336abf3db")
	c10 = uuid.MustParse("691aaf67-2b2d-43b3-ba10-35d9dc870dde")
	c11 = uuid.MustParse("85ef67c9-d104-404f-b650-b055e0d66eba") // answers surveys, never buys
	c12 = uuid.MustParse("a4e5da5e-4491-4dd4-a23b-4e6a5b2820e9") // buys, then is forgotten
)

// rfmNow is the query clock; purchases happen at 10:00 UTC a whole number
// of days before it, so recency in days is exact.
var rfmNow = time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) time.Time {
	return time.Date(2025, 3, 31, 10, 0, 0, 0, time.UTC).AddDate(0, 0, -n)
}

func ptr[T any](v T) *T { return &v }

// purchase returns a one-line order with a stable id.
func purchase(seq int, amount int64, currency string) domain.PurchaseCompleted {
	return domain.PurchaseCompleted{
		OrderID: uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "https://shop.example/orders/%d", seq)),
		Amount:  amount, Currency: currency,
		Lines: []domain.OrderLine{{SKU: "SKU-" + currency, Description: "Ärmelloses Hemd", Quantity: 1, UnitAmount: amount}},
	}
}

// rfmScenario: ten buyers chosen so that every score is known.
//
//	cust  purchase days ago         orders  net (EUR)  recency
//	c1    1,1,11,21,31,41 (+USD 41)  7      60 000     1
//	c2    3,13,23,33,43              5      50 000     3
//	c3    5                          1       5 000     5
//	c4    10,40,70,100 (−10 000)     4      80 000    10
//	c5    20,50                      2      20 000    20
//	c6    40,60,80,100,120           5      30 000    40
//	c7    60,90,120                  3      15 000    60
//	c8    90                         1       1 000    90
//	c9    200,300                    2       2 000   200
//	c10   365 (USD 3 000 only)       1       —       365
//
// plus c11, who only answers surveys, and c12, who buys and is forgotten.
func rfmScenario() []domain.Envelope {
	var s projectiontest.Log
	var out []domain.Envelope
	seq := 0
	buy := func(c uuid.UUID, amount int64, currency string, days ...int) {
		for _, d := range days {
			seq++
			out = append(out, s.Add(c, daysAgo(d), purchase(seq, amount, currency)))
		}
	}
	buy(c1, 10_000, "EUR", 41, 31, 21, 11, 1, 1)
	buy(c1, 7_000, "USD", 41)
	buy(c2, 10_000, "EUR", 43, 33, 23, 13, 3)
	buy(c3, 5_000, "EUR", 5)
	buy(c4, 22_500, "EUR", 100, 70, 40, 10)
	refunded := purchase(seq, 22_500, "EUR").OrderID // c4's last order
	out = append(out, s.Add(c4, daysAgo(9), domain.RefundIssued{
		RefundID: uuid.MustParse("37617898-7b64-4b6b-83bb-329e0e24e8bb"), OrderID: refunded, Amount: 10_000, Currency: "EUR", Reason: "Größe passt nicht",
	}))
	buy(c5, 10_000, "EUR", 50, 20)
	buy(c6, 6_000, "EUR", 120, 100, 80, 60, 40)
	buy(c7, 5_000, "EUR", 120, 90, 60)
	buy(c8, 1_000, "EUR", 90)
	buy(c9, 1_000, "EUR", 300, 200)
	buy(c10, 3_000, "USD", 365)
	answer := func(c uuid.UUID, days int, survey string, score int) {
		out = append(out, s.Add(c, daysAgo(days), domain.SurveyAnswered{Survey: survey, NPS: ptr(score), Comment: "Très bien 👍"}))
	}
	buy(c12, 99_000, "EUR", 3)
	answer(c12, 2, "nps-q1", 10)
	out = append(out, s.Add(c12, daysAgo(1), domain.CustomerForgotten{Request: "DSR-2025-0042", Reason: "GDPR art. 17"}))

	answer(c1, 30, "nps-q1", 10)
	answer(c1, 20, "nps-q1", 6) // c1's latest: a detractor now
	answer(c2, 20, "nps-q1", 9)
	answer(c3, 20, "nps-q1", 7)
	answer(c4, 20, "nps-q1", 0)
	answer(c5, 20, "nps-q1", 10)
	answer(c5, 10, "nps-onboarding", 3) // c5's latest overall
	answer(c11, 20, "nps-q1", 9)
	return out
}

func TestRFM(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, analytics.NewCustomers(analytics.Config{}), rfmScenario())
		got, err := analytics.RFM(context.Background(), r, rfmNow)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			r, f, m int
			seg     analytics.Segment
			days    int64
			orders  int64
			cur     string
			net     int64
		}
		// Score ⌈5(w + t/2) ÷ N⌉, w customers below, t tied.
		// Recency (N = 10): 365,200 → 1; 90,60 → 2; 40,20 → 3; 10,5 → 4; 3,1 → 5.
		// Frequency: 1,1,1 → ⌈0.75⌉ = 1; 2,2 → ⌈2⌉ = 2; 3 → ⌈2.75⌉ = 3;
		// 4 → ⌈3.25⌉ = 4; 5,5 → ⌈4⌉ = 4; 7 → ⌈4.75⌉ = 5.
		// Monetary, EUR (N = 9, q = (w + ½)·5/9): 1 000, 2 000 → 1;
		// 5 000, 15 000 → 2; 20 000 → ⌈2.5⌉ = 3; 30 000, 50 000 → 4;
		// 60 000, 80 000 → 5. USD (N = 1): the lone customer → 3.
		want := map[uuid.UUID]row{
			c1:  {5, 5, 5, analytics.SegmentChampions, 1, 7, "EUR", 60_000},
			c2:  {5, 4, 4, analytics.SegmentChampions, 3, 5, "EUR", 50_000},
			c3:  {4, 1, 2, analytics.SegmentNew, 5, 1, "EUR", 5_000},
			c4:  {4, 4, 5, analytics.SegmentChampions, 10, 4, "EUR", 80_000},
			c5:  {3, 2, 3, analytics.SegmentNeedsAttention, 20, 2, "EUR", 20_000},
			c6:  {3, 4, 4, analytics.SegmentLoyal, 40, 5, "EUR", 30_000},
			c7:  {2, 3, 2, analytics.SegmentAtRisk, 60, 3, "EUR", 15_000},
			c8:  {2, 1, 1, analytics.SegmentHibernating, 90, 1, "EUR", 1_000},
			c9:  {1, 2, 1, analytics.SegmentLost, 200, 2, "EUR", 2_000},
			c10: {1, 1, 3, analytics.SegmentLost, 365, 1, "USD", 3_000},
		}
		if len(got) != len(want) {
			t.Fatalf("%d customers scored, want %d: %+v", len(got), len(want), got)
		}
		for i, c := range got {
			if i > 0 && got[i-1].CustomerID.String() >= c.CustomerID.String() {
				t.Errorf("not in id order at %d", i)
			}
			w, ok := want[c.CustomerID]
			g := row{c.Recency, c.Frequency, c.Monetary, c.Segment, c.RecencyDays, c.Orders, c.Currency, c.MonetaryValue}
			if !ok || g != w {
				t.Errorf("%s: got %+v, want %+v", c.CustomerID, g, w)
			}
		}
	})
}

func TestCustomerScore(t *testing.T) {
	ctx := context.Background()
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, analytics.NewCustomers(analytics.Config{}), rfmScenario())

		s, err := analytics.CustomerScore(ctx, r, c1, rfmNow)
		if err != nil {
			t.Fatal(err)
		}
		wantValue := []analytics.Value{
			{Currency: "EUR", Orders: 6, Gross: 60_000, Net: 60_000},
			{Currency: "USD", Orders: 1, Gross: 7_000, Net: 7_000},
		}
		if !reflect.DeepEqual(s.LifetimeValue, wantValue) || s.Segment != analytics.SegmentChampions || s.NPS == nil || *s.NPS != 6 {
			t.Errorf("c1: %+v", s)
		}
		if !s.FirstPurchase.Equal(daysAgo(41)) || !s.LastPurchase.Equal(daysAgo(1)) {
			t.Errorf("c1 purchases %v – %v", s.FirstPurchase, s.LastPurchase)
		}
		// Ten buyers are too few to fit the BG/NBD model.
		if s.PAlive != nil || s.ExpectedPurchases != nil {
			t.Errorf("c1: BG/NBD figures without a fitted model: %v %v", *s.PAlive, s.ExpectedPurchases)
		}

		s, err = analytics.CustomerScore(ctx, r, c4, rfmNow)
		if err != nil {
			t.Fatal(err)
		}
		if want := []analytics.Value{{Currency: "EUR", Orders: 4, Gross: 90_000, Refunded: 10_000, Net: 80_000}}; !reflect.DeepEqual(s.LifetimeValue, want) {
			t.Errorf("c4 value %+v, want %+v", s.LifetimeValue, want)
		}

		// Churn: c2 buys every 10 days and was last seen 3 days ago;
		// c9 every 100 days, silent for 200; c3 bought once, 5 days
		// ago, and takes the pooled rhythm 440 days ÷ 19 gaps.
		for _, tc := range []struct {
			id           uuid.UUID
			rhythm, risk float64
		}{
			{c2, 10, 0.2591817793182821},                // 1 − e^(−0.3)
			{c9, 100, 0.8646647167633873},               // 1 − e^(−2)
			{c3, 23.157894736842106, 0.194191446133128}, // 1 − e^(−95/440)
		} {
			s, err := analytics.CustomerScore(ctx, r, tc.id, rfmNow)
			if err != nil {
				t.Fatal(err)
			}
			if s.RhythmDays == nil || s.ChurnRisk == nil || !close(*s.RhythmDays, tc.rhythm) || !close(*s.ChurnRisk, tc.risk) {
				t.Errorf("%s: rhythm %v risk %v, want %v and %v", tc.id, deref(s.RhythmDays), deref(s.ChurnRisk), tc.rhythm, tc.risk)
			}
		}

		// c11 only answered a survey.
		s, err = analytics.CustomerScore(ctx, r, c11, rfmNow)
		if err != nil {
			t.Fatal(err)
		}
		if s.Segment != "" || s.RFMScore != (analytics.RFMScore{}) || len(s.LifetimeValue) != 0 || s.NPS == nil || *s.NPS != 9 || s.ChurnRisk != nil {
			t.Errorf("c11: %+v", s)
		}
		// c12 was forgotten, and a stranger was never seen.
		for _, id := range []uuid.UUID{c12, uuid.MustParse("351e06cb-3391-444b-a2c8-0962fa2772cd")} {
			if _, err := analytics.CustomerScore(ctx, r, id, rfmNow); !errors.Is(err, projections.ErrNotFound) {
				t.Errorf("%s: err %v, want ErrNotFound", id, err)
			}
		}
	})
}

func TestCustomerScoreFixedModel(t *testing.T) {
	ctx := context.Background()
	r := projectiontest.Fold(t, projections.NewMemory(), analytics.NewCustomers(analytics.Config{}), rfmScenario())
	model := analytics.BGNBD{R: 1, Alpha: 10, A: 2, B: 3}
	base, err := analytics.LoadBase(ctx, r, rfmNow, analytics.Options{Model: &model, Horizon: 30})
	if err != nil {
		t.Fatal(err)
	}
	s, err := base.Score(c2)
	if err != nil {
		t.Fatal(err)
	}
	// c2: x = 4 repeat days, tx = 40, T = 43:
	// 1 / (1 + 2/(3+4−1) · (53/50)^5) = 0.6915269725692007.
	if s.PAlive == nil || !close(*s.PAlive, 0.6915269725692007) {
		t.Errorf("PAlive %v, want 0.6915269725692007", deref(s.PAlive))
	}
	if s.ExpectedPurchases == nil || *s.ExpectedPurchases <= 0 {
		t.Errorf("ExpectedPurchases %v", deref(s.ExpectedPurchases))
	}
	s, _ = base.Score(c3) // one purchase day: the model says alive
	if s.PAlive == nil || *s.PAlive != 1 {
		t.Errorf("c3 PAlive %v, want 1", deref(s.PAlive))
	}
	if _, err := analytics.LoadBase(ctx, r, rfmNow, analytics.Options{Model: &analytics.BGNBD{R: 1, Alpha: -1, A: 1, B: 1}}); err == nil {
		t.Error("negative alpha accepted")
	}
}

func TestNPS(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, analytics.NewCustomers(analytics.Config{}), rfmScenario())
		got, err := analytics.NPS(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		// Latest answers: c1 6, c2 9, c3 7, c4 0, c5 3 (onboarding), c11 9.
		// Overall: 2 promoters, 1 passive, 3 detractors of 6 → −100/6.
		// nps-q1: c1 6, c2 9, c3 7, c4 0, c5 10, c11 9 → (3 − 2)/6.
		want := analytics.NPSReport{
			Overall: analytics.NPSFigures{Responses: 6, Promoters: 2, Passives: 1, Detractors: 3, Score: -16.666666666666668},
			Surveys: []analytics.SurveyNPS{
				{Survey: "nps-onboarding", NPSFigures: analytics.NPSFigures{Responses: 1, Detractors: 1, Score: -100}},
				{Survey: "nps-q1", NPSFigures: analytics.NPSFigures{Responses: 6, Promoters: 3, Passives: 1, Detractors: 2, Score: 16.666666666666668}},
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("NPS\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestSegmentOf(t *testing.T) {
	for _, tc := range []struct {
		r, f, m int
		want    analytics.Segment
	}{
		{5, 5, 5, analytics.SegmentChampions},
		{4, 4, 4, analytics.SegmentChampions},
		{5, 5, 3, analytics.SegmentLoyal},
		{3, 4, 1, analytics.SegmentLoyal},
		{5, 1, 5, analytics.SegmentNew},
		{4, 3, 5, analytics.SegmentPotentialLoyalist},
		{2, 5, 5, analytics.SegmentAtRisk},
		{1, 3, 1, analytics.SegmentAtRisk},
		{3, 3, 3, analytics.SegmentNeedsAttention},
		{2, 2, 5, analytics.SegmentHibernating},
		{1, 2, 5, analytics.SegmentLost},
		{0, 0, 0, ""},
	} {
		if got := analytics.SegmentOf(analytics.RFMScore{Recency: tc.r, Frequency: tc.f, Monetary: tc.m}); got != tc.want {
			t.Errorf("R%d F%d M%d: %q, want %q", tc.r, tc.f, tc.m, got, tc.want)
		}
	}
}

func close(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// A lone customer, or customers all tied, sit in the middle of their base:
// a customer who bought today is not "lost" because nobody else bought.
func TestRFMTinyAndTiedBases(t *testing.T) {
	for _, c := range []struct {
		name  string
		buyer []uuid.UUID
		want  analytics.RFMScore
		seg   analytics.Segment
	}{
		{"one customer who bought today", []uuid.UUID{c1}, analytics.RFMScore{Recency: 3, Frequency: 3, Monetary: 3}, analytics.SegmentNeedsAttention},
		{"three customers alike", []uuid.UUID{c1, c2, c3}, analytics.RFMScore{Recency: 3, Frequency: 3, Monetary: 3}, analytics.SegmentNeedsAttention},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s projectiontest.Log
			var events []domain.Envelope
			for i, id := range c.buyer {
				events = append(events, s.Add(id, daysAgo(0), purchase(i+1, 4_900, "EUR")))
			}
			b := projections.NewMemory()
			r := projectiontest.Fold(t, b, analytics.NewCustomers(analytics.Config{}), events)
			got, err := analytics.RFM(context.Background(), r, rfmNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.buyer) {
				t.Fatalf("%d scored, want %d", len(got), len(c.buyer))
			}
			for _, g := range got {
				if g.RFMScore != c.want || g.Segment != c.seg || g.RecencyDays != 0 {
					t.Errorf("%s: %+v, want %+v %s, recency 0", g.CustomerID, g, c.want, c.seg)
				}
			}
		})
	}
}
