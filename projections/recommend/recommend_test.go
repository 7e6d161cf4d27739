package recommend_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/recommend"
	"github.com/google/uuid"
)

var (
	c1       = uuid.MustParse("6b7bb795-9363-4d27-8279-1bc399c39ebb")
	c2       = uuid.MustParse("bb5ef70c-50d4-4fc1-b3b0-23175d3045a3")
	c3       = uuid.MustParse("41223323-9b6d-4aa2-a1bc-76ff3d483bd4")
	c4       = uuid.MustParse("a4306bab-bcad-4c18-97a3-f14355c36201")
	c5       = uuid.MustParse("143fe249-2870-49b2-82c4-f9e12c9e13c8")
	c6       = uuid.MustParse("95769ead-7bc7-4b3c-af3f-10478ca6bbd0")
	c7       = uuid.MustParse("088ea76d-52f5-4e2b-acbd-523d3d9f9861")
	c8       = uuid.MustParse("2fbf6ace-68b7-41f5-b406-7d1ca56d70c4") // buys, is forgotten, buys again (imported)
	stranger = uuid.MustParse("351e06cb-3391-444b-a2c8-0962fa2772cd") // never buys
)

// The shop's products: SKU, description and category.
type product struct{ sku, description, category string }

var (
	beans   = product{"BEANS-1KG", "Espresso beans, 1 kg", "coffee"}
	grinder = product{"GRINDER-X", "Burr grinder", "grinders"}
	kettle  = product{"KETTLE-GOOSE", "Gooseneck kettle", "brewing"}
	mug     = product{"MUG-STONE", "Stoneware mug", "tableware"}
	papers  = product{"PAPERS-100", "Filter papers ×100", "brewing"}
	tea     = product{"TEA-SENCHA", "Sencha green tea, 100 g", "tea"}
	v60     = product{"V60-DRIPPER", "V60 pour-over dripper", "brewing"}
)

// order returns an order of one unit of each product, with a stable id.
func order(seq int, ps ...product) domain.PurchaseCompleted {
	o := domain.PurchaseCompleted{
		OrderID:  uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "https://shop.example/orders/%d", seq)),
		Currency: "EUR",
	}
	for _, p := range ps {
		o.Lines = append(o.Lines, domain.OrderLine{SKU: p.sku, Description: p.description, Category: p.category, Quantity: 1, UnitAmount: 1_990})
		o.Amount += 1_990
	}
	return o
}

// baskets: seven buyers. c2 buys BEANS-1KG and GRINDER-X in three orders
// (counted once: distinct customers), c3's grinder line carries a newer
// description (the latest line in log order wins, whatever its date),
// c7's mug line has no category, and c1 returns an order (refunds do not
// remove evidence).
//
//	c1  BEANS-1KG TEA-SENCHA
//	c2  BEANS-1KG GRINDER-X PAPERS-100
//	c3  BEANS-1KG GRINDER-X KETTLE-GOOSE V60-DRIPPER
//	c4  BEANS-1KG PAPERS-100 V60-DRIPPER
//	c5  TEA-SENCHA KETTLE-GOOSE MUG-STONE PAPERS-100
//	c6  TEA-SENCHA KETTLE-GOOSE MUG-STONE
//	c7  MUG-STONE
//
// Distinct buyers: BEANS-1KG 4; KETTLE-GOOSE, MUG-STONE, PAPERS-100,
// TEA-SENCHA 3; GRINDER-X, V60-DRIPPER 2; 7 buyers in all.
//
// Co-buyers (both directions):
//
//	BEANS-1KG    GRINDER-X 2 (c2 c3), PAPERS-100 2 (c2 c4), V60-DRIPPER 2 (c3 c4), KETTLE-GOOSE 1, TEA-SENCHA 1
//	GRINDER-X    KETTLE-GOOSE 1, PAPERS-100 1, V60-DRIPPER 1
//	KETTLE-GOOSE MUG-STONE 2 (c5 c6), TEA-SENCHA 2 (c5 c6), PAPERS-100 1, V60-DRIPPER 1
//	MUG-STONE    TEA-SENCHA 2 (c5 c6), PAPERS-100 1
//	PAPERS-100   TEA-SENCHA 1, V60-DRIPPER 1
//
// Categories (c7 has none): brewing 5 (c3 c4 c5 c6 and c2 by PAPERS-100),
// coffee 4, tea 3, grinders 2, tableware 2; 6 buyers in all. Co-buyers:
// brewing–coffee 3 (c2 c3 c4), brewing–grinders 2, brewing–tableware 2,
// brewing–tea 2, coffee–grinders 2, tableware–tea 2, coffee–tea 1.
func baskets(t *testing.T) []domain.Envelope {
	l := projectiontest.NewLog(t)
	addBaskets(l)
	return l.Envelopes()
}

func addBaskets(l *projectiontest.Log) {
	seq := 0
	buy := func(c uuid.UUID, at string, ps ...product) domain.PurchaseCompleted {
		seq++
		o := order(seq, ps...)
		l.AddRFC3339(c, at, o)
		return o
	}
	returned := buy(c1, "2025-03-03T10:00:00Z", beans, tea)
	l.AddRFC3339(c1, "2025-03-10T10:00:00Z", domain.RefundIssued{
		RefundID: uuid.MustParse("37617898-7b64-4b6b-83bb-329e0e24e8bb"), OrderID: returned.OrderID,
		Amount: returned.Amount, Currency: "EUR", Reason: "Geschmack passt nicht",
	})
	buy(c2, "2025-03-04T10:00:00Z", beans, grinder)
	buy(c2, "2025-04-04T10:00:00Z", beans, grinder, papers)
	buy(c2, "2025-05-04T10:00:00Z", grinder, beans)
	newGrinder := grinder
	newGrinder.description = "Burr grinder X, 40 mm steel burrs"
	buy(c3, "2025-01-15T10:00:00Z", beans, newGrinder)
	buy(c3, "2025-03-05T10:00:00Z", kettle, v60)
	buy(c4, "2025-03-06T10:00:00Z", beans, papers, v60)
	buy(c5, "2025-03-07T10:00:00Z", tea, kettle)
	buy(c5, "2025-03-08T10:00:00Z", mug, papers, tea)
	buy(c6, "2025-03-09T10:00:00Z", tea, kettle, mug)
	buy(c7, "2025-03-10T10:00:00Z", product{mug.sku, mug.description, ""})
	// The stranger registers but never buys: the read model never sees them.
	l.AddRFC3339(stranger, "2025-03-11T10:00:00Z", domain.CustomerRegistered{CustomerID: stranger, Name: "Zoë Ñúñez"})
}

// aff builds an expected affinity recommendation.
func aff(kind recommend.Kind, item product, buyers int64, anchor product, anchorBuyers, co, percent int64) recommend.Recommendation {
	r := recommend.Recommendation{
		Kind: kind, Basis: recommend.BasisAffinity, Item: item.sku, Buyers: buyers,
		Affinity: &recommend.Affinity{Anchor: anchor.sku, AnchorBuyers: anchorBuyers, CoBuyers: co, Percent: percent},
		Reason:   fmt.Sprintf("bought %s; %d%% of %s buyers also bought %s (%d of %d)", anchor.sku, percent, anchor.sku, item.sku, co, anchorBuyers),
	}
	if kind == recommend.KindProduct {
		r.Description, r.Category, r.Affinity.AnchorDescription = item.description, item.category, anchor.description
	}
	r.Affinity.Confidence = float64(co) / float64(anchorBuyers)
	return r
}

func pop(kind recommend.Kind, item product, buyers int64) recommend.Recommendation {
	r := recommend.Recommendation{Kind: kind, Basis: recommend.BasisPopular, Item: item.sku, Buyers: buyers,
		Reason: fmt.Sprintf("popular: bought by %d customers", buyers)}
	if kind == recommend.KindProduct {
		r.Description, r.Category = item.description, item.category
	}
	return r
}

// cat names a category as a product-shaped fixture for aff and pop.
func cat(name string) product { return product{sku: name} }

// compare fails t unless got equals want, lift aside (checked on its own).
func compare(t *testing.T, got, want []recommend.Recommendation) {
	t.Helper()
	stripped := make([]recommend.Recommendation, len(got))
	for i, r := range got {
		stripped[i] = r
		if r.Affinity != nil {
			a := *r.Affinity
			a.Lift = 0
			stripped[i].Affinity = &a
		}
	}
	if !reflect.DeepEqual(stripped, want) {
		var sb strings.Builder
		for _, r := range got {
			fmt.Fprintf(&sb, "  %s %s %q\n", r.Basis, r.Item, r.Reason)
		}
		t.Errorf("got\n%s\nwant %d: %+v", sb.String(), len(want), want)
	}
}

func TestRecommend(t *testing.T) {
	newGrinder := grinder
	newGrinder.description = "Burr grinder X, 40 mm steel burrs"
	P, C := recommend.KindProduct, recommend.KindCategory
	tests := []struct {
		name     string
		customer uuid.UUID
		opts     recommend.Options
		want     []recommend.Recommendation
	}{
		{
			// c1 bought BEANS-1KG (4 buyers) and TEA-SENCHA (3).
			// KETTLE-GOOSE: via TEA 2/3 = 67%, via BEANS 1/4 → 67%.
			// MUG-STONE: via TEA 2/3 → 67%; same support, KETTLE first by SKU.
			// GRINDER-X, PAPERS-100, V60-DRIPPER: via BEANS 2/4 = 50%
			// (PAPERS via TEA only 1/3); equal support, by SKU.
			name: "max over anchors, ties by SKU", customer: c1, opts: recommend.Options{MinSupport: 1},
			want: []recommend.Recommendation{
				aff(P, kettle, 3, tea, 3, 2, 67),
				aff(P, mug, 3, tea, 3, 2, 67),
				aff(P, newGrinder, 2, beans, 4, 2, 50),
				aff(P, papers, 3, beans, 4, 2, 50),
				aff(P, v60, 2, beans, 4, 2, 50),
			},
		},
		{
			// c2 bought BEANS-1KG, GRINDER-X (2 buyers), PAPERS-100 (3).
			// V60-DRIPPER: BEANS 2/4 = 50% (2); KETTLE-GOOSE: GRINDER 1/2 =
			// 50% (1): equal confidence, more co-buyers first although
			// KETTLE sorts first. MUG-STONE, TEA-SENCHA: PAPERS 1/3 = 33%.
			name: "equal confidence, more co-buyers first", customer: c2, opts: recommend.Options{MinSupport: 1},
			want: []recommend.Recommendation{
				aff(P, v60, 2, beans, 4, 2, 50),
				aff(P, kettle, 3, newGrinder, 2, 1, 50),
				aff(P, mug, 3, papers, 3, 1, 33),
				aff(P, tea, 3, papers, 3, 1, 33),
			},
		},
		{
			// c3: MUG-STONE and TEA-SENCHA via KETTLE-GOOSE 2/3 = 67%.
			// PAPERS-100: BEANS 2/4 = 50% (2) and GRINDER 1/2 = 50% (1):
			// the anchor with more co-buyers, BEANS-1KG.
			name: "anchor with more co-buyers", customer: c3, opts: recommend.Options{MinSupport: 1},
			want: []recommend.Recommendation{
				aff(P, mug, 3, kettle, 3, 2, 67),
				aff(P, tea, 3, kettle, 3, 2, 67),
				aff(P, papers, 3, beans, 4, 2, 50),
			},
		},
		{
			// c6 bought TEA-SENCHA, KETTLE-GOOSE, MUG-STONE (3 buyers each).
			// Every candidate is 1/3 with one co-buyer; PAPERS-100 is
			// co-bought with all three anchors: the first anchor by SKU.
			name: "equal anchors, first by SKU", customer: c6, opts: recommend.Options{MinSupport: 1},
			want: []recommend.Recommendation{
				aff(P, beans, 4, kettle, 3, 1, 33),
				aff(P, newGrinder, 2, kettle, 3, 1, 33),
				aff(P, papers, 3, kettle, 3, 1, 33),
				aff(P, v60, 2, kettle, 3, 1, 33),
			},
		},
		{
			// Support 2 leaves c2 only V60-DRIPPER.
			name: "min support 2", customer: c2, opts: recommend.Options{MinSupport: 2},
			want: []recommend.Recommendation{aff(P, v60, 2, beans, 4, 2, 50)},
		},
		{
			// No pair has three co-buyers: c1 falls back to the most
			// bought products they have not bought (3 buyers or more).
			name: "min support 3 falls back to popular", customer: c1, opts: recommend.Options{MinSupport: 3},
			want: []recommend.Recommendation{pop(P, kettle, 3), pop(P, mug, 3), pop(P, papers, 3)},
		},
		{
			name: "min confidence", customer: c1, opts: recommend.Options{MinSupport: 1, MinConfidence: 0.6},
			want: []recommend.Recommendation{aff(P, kettle, 3, tea, 3, 2, 67), aff(P, mug, 3, tea, 3, 2, 67)},
		},
		{
			name: "limit", customer: c1, opts: recommend.Options{MinSupport: 1, Limit: 3},
			want: []recommend.Recommendation{
				aff(P, kettle, 3, tea, 3, 2, 67),
				aff(P, mug, 3, tea, 3, 2, 67),
				aff(P, newGrinder, 2, beans, 4, 2, 50),
			},
		},
		{
			// The default minimum support is 3: a stranger gets the
			// products with at least 3 buyers, by buyers then SKU.
			name: "stranger, defaults", customer: stranger,
			want: []recommend.Recommendation{pop(P, beans, 4), pop(P, kettle, 3), pop(P, mug, 3), pop(P, papers, 3), pop(P, tea, 3)},
		},
		{
			name: "stranger, every product", customer: stranger, opts: recommend.Options{MinSupport: 1},
			want: []recommend.Recommendation{
				pop(P, beans, 4), pop(P, kettle, 3), pop(P, mug, 3), pop(P, papers, 3), pop(P, tea, 3),
				pop(P, newGrinder, 2), pop(P, v60, 2),
			},
		},
		{
			// c1 bought coffee (4 buyers) and tea (3). brewing: coffee 3/4
			// = 75%; tableware: tea 2/3 = 67%; grinders: coffee 2/4 = 50%.
			name: "categories", customer: c1, opts: recommend.Options{Kind: C, MinSupport: 1},
			want: []recommend.Recommendation{
				aff(C, cat("brewing"), 5, cat("coffee"), 4, 3, 75),
				aff(C, cat("tableware"), 2, cat("tea"), 3, 2, 67),
				aff(C, cat("grinders"), 2, cat("coffee"), 4, 2, 50),
			},
		},
		{
			// c5 bought brewing (5), tableware (2) and tea (3). coffee:
			// brewing 3/5 = 60%, tea 1/3; grinders: brewing 2/5 = 40%.
			name: "categories, several anchors", customer: c5, opts: recommend.Options{Kind: C, MinSupport: 1},
			want: []recommend.Recommendation{
				aff(C, cat("coffee"), 4, cat("brewing"), 5, 3, 60),
				aff(C, cat("grinders"), 2, cat("brewing"), 5, 2, 40),
			},
		},
		{
			// c7's line had no category: no category bought, so the popular ones.
			name: "no category bought", customer: c7, opts: recommend.Options{Kind: C, MinSupport: 2},
			want: []recommend.Recommendation{
				pop(C, cat("brewing"), 5), pop(C, cat("coffee"), 4), pop(C, cat("tea"), 3),
				pop(C, cat("grinders"), 2), pop(C, cat("tableware"), 2),
			},
		},
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, recommend.New(recommend.Config{}), baskets(t))
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := recommend.Recommend(context.Background(), r, tc.customer, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				compare(t, got, tc.want)
			})
		}
	})
}

func TestLift(t *testing.T) {
	r := projectiontest.Fold(t, projectiontest.Memory(t), recommend.New(recommend.Config{}), baskets(t))
	got, err := recommend.Recommend(context.Background(), r, c1, recommend.Options{MinSupport: 1})
	if err != nil {
		t.Fatal(err)
	}
	// KETTLE-GOOSE for c1: P(KETTLE | TEA) = 2/3, P(KETTLE) = 3/7 → 14/9.
	// PAPERS-100: 2/4 ÷ 3/7 = 7/6. GRINDER-X: 2/4 ÷ 2/7 = 7/4.
	want := map[string]float64{kettle.sku: 14.0 / 9, papers.sku: 7.0 / 6, grinder.sku: 7.0 / 4}
	for _, rec := range got {
		if w, ok := want[rec.Item]; ok && math.Abs(rec.Affinity.Lift-w) > 1e-12 {
			t.Errorf("%s: lift %v, want %v", rec.Item, rec.Affinity.Lift, w)
		}
	}
}

func TestForCustomer(t *testing.T) {
	r := projectiontest.Fold(t, projectiontest.Memory(t), recommend.New(recommend.Config{}), baskets(t))
	got, err := recommend.ForCustomer(context.Background(), r, c7, recommend.Options{Kind: "ignored", MinSupport: 2, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := recommend.Recommendations{
		Customer:   c7,
		Products:   []recommend.Recommendation{aff(recommend.KindProduct, kettle, 3, mug, 3, 2, 67)},
		Categories: []recommend.Recommendation{pop(recommend.KindCategory, cat("brewing"), 5)},
	}
	got.Products[0].Affinity.Lift = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	// Nothing to recommend is an empty list, not null, in JSON.
	got, err = recommend.ForCustomer(context.Background(), r, stranger, recommend.Options{MinSupport: 100})
	if err != nil || got.Products == nil || got.Categories == nil || len(got.Products)+len(got.Categories) != 0 {
		t.Errorf("nothing to recommend: %+v, %v", got, err)
	}
}

// A forgotten customer leaves the anonymous counts as they were, their own
// records go, and what they buy afterwards (imported history) is ignored.
func TestForgotten(t *testing.T) {
	l := projectiontest.NewLog(t)
	addBaskets(l)
	l.AddRFC3339(c8, "2025-03-01T10:00:00Z", order(100, beans, mug))
	l.AddRFC3339(c8, "2025-03-02T10:00:00Z", domain.CustomerForgotten{Request: "DSR-2025-0042", Reason: "GDPR art. 17"})
	l.AddRFC3339(c8, "2025-03-03T10:00:00Z", domain.CustomerForgotten{Request: "DSR-2025-0042"})
	l.AddRFC3339(c8, "2025-03-04T10:00:00Z", order(101, beans, grinder))
	history := l.Envelopes()
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		p := recommend.New(recommend.Config{})
		ns := "recommend_forgotten"
		projectiontest.FoldBatches(t, b, ns, p, history, 3)
		_, err := projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) ([]recommend.Recommendation, error) {
			return recommend.Recommend(ctx, r, c8, recommend.Options{})
		})
		if !errors.Is(err, projections.ErrNotFound) {
			t.Errorf("forgotten customer: %v, want ErrNotFound", err)
		}
		got, err := projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) ([]recommend.Recommendation, error) {
			return recommend.Recommend(ctx, r, stranger, recommend.Options{MinSupport: 2})
		})
		if err != nil {
			t.Fatal(err)
		}
		// BEANS-1KG and MUG-STONE keep c8; GRINDER-X does not gain them.
		newGrinder := grinder
		newGrinder.description = "Burr grinder X, 40 mm steel burrs"
		P := recommend.KindProduct
		compare(t, got, []recommend.Recommendation{
			pop(P, beans, 5), pop(P, mug, 4), pop(P, kettle, 3), pop(P, papers, 3), pop(P, tea, 3),
			pop(P, newGrinder, 2), pop(P, v60, 2),
		})
		for line := range strings.Lines(projectiontest.Dump(t, b, ns)) {
			if strings.Contains(line, c8.String()) && !strings.HasPrefix(line, "customer/"+c8.String()+" = ") {
				t.Errorf("kept after erasure: %s", line)
			}
		}
	})
}

// Only the first MaxPaired products of a customer take part in pair
// counts; later ones still count as bought.
func TestPairCap(t *testing.T) {
	heavy := uuid.MustParse("0d9c7f0e-3c55-4f0a-9d0c-3f1b8f7c2a11")
	l := projectiontest.NewLog(t)
	var all []product
	for i := range recommend.MaxPaired + 10 {
		all = append(all, product{sku: fmt.Sprintf("P%03d", i), description: "Part", category: "parts"})
	}
	l.AddRFC3339(heavy, "2025-03-01T10:00:00Z", order(1, all...))
	l.AddRFC3339(c1, "2025-03-02T10:00:00Z", order(2, all[0]))
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, recommend.New(recommend.Config{}), l.Envelopes())
		ctx := context.Background()
		got, err := recommend.Recommend(ctx, r, c1, recommend.Options{MinSupport: 1, Limit: recommend.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != recommend.MaxPaired-1 || got[0].Item != "P001" || got[len(got)-1].Item != fmt.Sprintf("P%03d", recommend.MaxPaired-1) {
			t.Fatalf("%d recommendations, want P001..P%03d: %+v", len(got), recommend.MaxPaired-1, got)
		}
		if got[0].Reason != "bought P000; 50% of P000 buyers also bought P001 (1 of 2)" {
			t.Errorf("reason %q", got[0].Reason)
		}
		// The heavy buyer bought everything: nothing left to offer.
		got, err = recommend.Recommend(ctx, r, heavy, recommend.Options{MinSupport: 1})
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("heavy buyer: %+v, %v", got, err)
		}
		// Products past the cap are bought all the same.
		got, err = recommend.Recommend(ctx, r, stranger, recommend.Options{MinSupport: 1, Limit: recommend.MaxLimit})
		if err != nil || len(got) != len(all) || got[0].Item != "P000" || got[0].Buyers != 2 || got[len(got)-1].Item != all[len(all)-1].sku {
			t.Errorf("stranger: %d, %v", len(got), err)
		}
	})
}

// SKUs and categories as long as validation allows, with slashes,
// percent signs and tildes, make valid keys on every backend and come back
// intact; "A/B" and "A" are distinct products.
func TestAwkwardItems(t *testing.T) {
	long := product{strings.Repeat("𝄞", 100), "Longest SKU", strings.Repeat("𝄢", 100)}
	slashy := product{strings.Repeat("𝄞", 99) + "/", "Slash", "a/b%2F~"}
	a, ab := product{"A", "A", "x"}, product{"A/B", "A/B", "x/y"}
	l := projectiontest.NewLog(t)
	l.AddRFC3339(c1, "2025-03-01T10:00:00Z", order(1, long, slashy, ab))
	l.AddRFC3339(c2, "2025-03-01T10:00:00Z", order(2, long, a))
	l.AddRFC3339(c3, "2025-03-01T10:00:00Z", order(3, a))
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, recommend.New(recommend.Config{}), l.Envelopes())
		got, err := recommend.Recommend(context.Background(), r, c2, recommend.Options{MinSupport: 1})
		if err != nil {
			t.Fatal(err)
		}
		// c2 bought the long SKU (2 buyers) and A (2 buyers): slashy and
		// A/B via the long SKU, 1 of 2 each.
		P := recommend.KindProduct
		compare(t, got, []recommend.Recommendation{aff(P, ab, 1, long, 2, 1, 50), aff(P, slashy, 1, long, 2, 1, 50)})
		got, err = recommend.Recommend(context.Background(), r, c3, recommend.Options{Kind: recommend.KindCategory, MinSupport: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Category "x" (c2, c3) has partners through c2 only: 𝄢… (1 of 2).
		compare(t, got, []recommend.Recommendation{aff(recommend.KindCategory, cat(long.category), 2, cat("x"), 2, 1, 50)})
	})
}

func TestInvalidOptions(t *testing.T) {
	r := projectiontest.Fold(t, projectiontest.Memory(t), recommend.New(recommend.Config{}), baskets(t))
	for _, o := range []recommend.Options{
		{Kind: "brand"},
		{Limit: -1},
		{Limit: recommend.MaxLimit + 1},
		{MinSupport: -1},
		{MinConfidence: 1.5},
		{MinConfidence: math.NaN()},
	} {
		if _, err := recommend.Recommend(context.Background(), r, c1, o); !errors.Is(err, recommend.ErrInvalidOptions) {
			t.Errorf("%+v: %v, want ErrInvalidOptions", o, err)
		}
	}
}

func TestName(t *testing.T) {
	p := recommend.New(recommend.Config{})
	if err := projections.ValidateProjection(p); err != nil || p.Name() != recommend.DefaultName || p.Name() != "recommend" {
		t.Errorf("%q: %v", p.Name(), err)
	}
	if q := recommend.New(recommend.Config{Name: "recommend_b"}); q.Name() != "recommend_b" {
		t.Errorf("name %q", q.Name())
	}
}
