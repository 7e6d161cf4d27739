package recommend

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/cxledger/cxledger/projections"
	"github.com/google/uuid"
)

// Kind is what a recommendation recommends.
type Kind string

// Kinds of recommendation.
const (
	// KindProduct recommends a product (a SKU).
	KindProduct Kind = "product"
	// KindCategory recommends a category of products.
	KindCategory Kind = "category"
)

// Basis is the evidence a recommendation rests on.
type Basis string

// Bases of recommendation.
const (
	// BasisAffinity: customers who bought an item the customer bought
	// also bought the recommended one (Recommendation.Affinity).
	BasisAffinity Basis = "affinity"
	// BasisPopular: the fallback — the recommended item is among the most
	// bought, and nothing links it to the customer's own purchases.
	BasisPopular Basis = "popular"
)

// Query defaults and bounds.
const (
	// DefaultLimit is the number of recommendations when Options.Limit is 0.
	DefaultLimit = 10
	// MaxLimit is the largest Options.Limit.
	MaxLimit = 100
	// DefaultMinSupport is the minimum number of customers behind a figure
	// when Options.MinSupport is 0.
	DefaultMinSupport = 3
)

// ErrInvalidOptions is returned, wrapped, for Options out of range.
var ErrInvalidOptions = errors.New("invalid recommendation options")

// Options parameterise Recommend and ForCustomer. The zero Options asks
// for DefaultLimit product recommendations with DefaultMinSupport.
type Options struct {
	// Kind selects product (default, also for "") or category
	// recommendations. ForCustomer ignores it and returns both.
	Kind Kind
	// Limit is the number of recommendations, 1 to MaxLimit; 0 means
	// DefaultLimit.
	Limit int
	// MinSupport is the fewest distinct customers a recommendation may
	// rest on: co-buyers of the anchor and the item for affinity, buyers
	// for popularity. 0 means DefaultMinSupport; negative is invalid.
	MinSupport int64
	// MinConfidence drops affinity recommendations whose confidence is
	// below it, from 0 (default: none dropped) to 1.
	MinConfidence float64
}

func (o Options) withDefaults() (Options, error) {
	switch o.Kind {
	case "":
		o.Kind = KindProduct
	case KindProduct, KindCategory:
	default:
		return o, fmt.Errorf("recommend: kind %q, want %q or %q: %w", o.Kind, KindProduct, KindCategory, ErrInvalidOptions)
	}
	switch {
	case o.Limit == 0:
		o.Limit = DefaultLimit
	case o.Limit < 0 || o.Limit > MaxLimit:
		return o, fmt.Errorf("recommend: limit %d, want 1 to %d: %w", o.Limit, MaxLimit, ErrInvalidOptions)
	}
	switch {
	case o.MinSupport == 0:
		o.MinSupport = DefaultMinSupport
	case o.MinSupport < 0:
		return o, fmt.Errorf("recommend: minimum support %d, want at least 1: %w", o.MinSupport, ErrInvalidOptions)
	}
	if !(o.MinConfidence >= 0 && o.MinConfidence <= 1) {
		return o, fmt.Errorf("recommend: minimum confidence %v, want 0 to 1: %w", o.MinConfidence, ErrInvalidOptions)
	}
	return o, nil
}

// Recommendation is one item the customer has not bought, with why.
type Recommendation struct {
	// Kind says whether Item is a product or a category; Basis, whether
	// the recommendation rests on affinity or is the popular fallback.
	Kind  Kind  `json:"kind"`
	Basis Basis `json:"basis"`
	// Item is the recommended SKU or category.
	Item string `json:"item"`
	// Description and Category describe a recommended product, from its
	// latest order line that has them.
	Description string `json:"description,omitempty"`
	Category    string `json:"category,omitempty"`
	// Buyers is the number of distinct customers who bought Item.
	Buyers int64 `json:"buyers"`
	// Affinity is the evidence of an affinity recommendation; nil for a
	// popular one.
	Affinity *Affinity `json:"affinity,omitempty"`
	// Reason says it in words: "bought BEANS-1KG; 42% of BEANS-1KG buyers
	// also bought GRINDER-X (21 of 50)" or "popular: bought by 80
	// customers".
	Reason string `json:"reason"`
}

// Affinity is the co-purchase evidence behind a recommendation: of the
// AnchorBuyers customers who bought Anchor, CoBuyers also bought the item.
type Affinity struct {
	// Anchor is the item the customer bought that the recommendation
	// rests on; AnchorDescription is its description (products only).
	Anchor            string `json:"anchor"`
	AnchorDescription string `json:"anchorDescription,omitempty"`
	AnchorBuyers      int64  `json:"anchorBuyers"`
	// CoBuyers is the support: distinct customers who bought both.
	CoBuyers int64 `json:"coBuyers"`
	// Confidence is CoBuyers ÷ AnchorBuyers, P(item | anchor); Percent is
	// it in whole percent, rounded half up, as in the reason.
	Confidence float64 `json:"confidence"`
	Percent    int64   `json:"percent"`
	// Lift is Confidence ÷ P(item), P(item) being the item's buyers among
	// every customer who bought an item of the kind: above 1, the anchor
	// makes the item likelier than it is in general.
	Lift float64 `json:"lift"`
}

// Recommendations are a customer's product and category recommendations.
type Recommendations struct {
	// Customer is the customer the recommendations are for.
	Customer uuid.UUID `json:"customer"`
	// Products and Categories are Recommend's answers for each kind.
	Products   []Recommendation `json:"products"`
	Categories []Recommendation `json:"categories"`
}

// ForCustomer returns the customer's product and category recommendations,
// each as Recommend computes them with opts (opts.Kind is ignored).
func ForCustomer(ctx context.Context, r projections.Reader, customer uuid.UUID, opts Options) (Recommendations, error) {
	out := Recommendations{Customer: customer}
	var err error
	opts.Kind = KindProduct
	if out.Products, err = Recommend(ctx, r, customer, opts); err != nil {
		return Recommendations{}, err
	}
	opts.Kind = KindCategory
	if out.Categories, err = Recommend(ctx, r, customer, opts); err != nil {
		return Recommendations{}, err
	}
	return out, nil
}

// Recommend returns up to opts.Limit products (or categories, with
// opts.Kind) the customer has not bought, best first, from the read model
// r. Affinity recommendations come first; when there are none (the
// customer bought nothing, or no evidence passes the thresholds), the most
// popular items the customer has not bought, marked BasisPopular. A
// customer the read model has never seen buy anything gets the popular
// items; an erased customer gives projections.ErrNotFound. The result is
// never nil.
func Recommend(ctx context.Context, r projections.Reader, customer uuid.UUID, opts Options) ([]Recommendation, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := products
	if o.Kind == KindCategory {
		d = categories
	}
	cid := customer.String()
	cust, ok, err := projections.Read[customerRecord](ctx, r, customerKey(cid))
	if err != nil {
		return nil, fmt.Errorf("recommend: customer %s: %w", cid, err)
	}
	if ok && cust.Forgotten {
		return nil, fmt.Errorf("recommend: customer %s was erased: %w", cid, projections.ErrNotFound)
	}
	bought := map[string]bool{}
	if ok {
		err := scan(ctx, r, boughtDimPrefix(cid, d), func(b boughtRecord) error {
			bought[b.Item] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	st, _, err := projections.Read[statsRecord](ctx, r, statsKey)
	if err != nil {
		return nil, fmt.Errorf("recommend: %w", err)
	}
	base := *st.count(d)
	var recs []Recommendation
	if len(bought) > 0 {
		if recs, err = affinity(ctx, r, d, *cust.paired(d), bought, base, o); err != nil {
			return nil, err
		}
	}
	if len(recs) == 0 {
		if recs, err = popular(ctx, r, d, bought, o); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// candidate is the best evidence found for one item.
type candidate struct {
	item, anchor     string
	co, anchorBuyers int64
}

// better orders candidates: higher confidence first (compared exactly, as
// fractions), then more co-buyers, then by anchor, then by item.
func better(a, b candidate) bool {
	if c := cmpFrac(a.co, a.anchorBuyers, b.co, b.anchorBuyers); c != 0 {
		return c > 0
	}
	if a.co != b.co {
		return a.co > b.co
	}
	if a.item != b.item {
		return a.item < b.item
	}
	return a.anchor < b.anchor
}

// percent is 100·part/whole in whole percent, rounded half up, for
// 0 ≤ part ≤ whole and whole > 0.
func percent(part, whole int64) int64 {
	hi, lo := bits.Mul64(uint64(part), 200)
	lo, carry := bits.Add64(lo, uint64(whole), 0)
	q, _ := bits.Div64(hi+carry, lo, 2*uint64(whole))
	return int64(q)
}

// cmpFrac compares a/b with c/d for non-negative a, c and positive b, d.
func cmpFrac(a, b, c, d int64) int {
	hi1, lo1 := bits.Mul64(uint64(a), uint64(d))
	hi2, lo2 := bits.Mul64(uint64(c), uint64(b))
	if hi1 != hi2 {
		return cmp.Compare(hi1, hi2)
	}
	return cmp.Compare(lo1, lo2)
}

// affinity ranks the items co-bought with the customer's paired items.
func affinity(ctx context.Context, r projections.Reader, d dimension, anchors []string, bought map[string]bool, base int64, o Options) ([]Recommendation, error) {
	best := map[string]candidate{}
	described := map[string]itemRecord{}
	for _, x := range anchors {
		xr, ok, err := projections.Read[itemRecord](ctx, r, itemKey(d, x))
		if err != nil {
			return nil, fmt.Errorf("recommend: %w", err)
		}
		if !ok || xr.Buyers <= 0 {
			continue
		}
		described[x] = xr
		err = scan(ctx, r, pairAnchorPrefix(d, x), func(p pairRecord) error {
			if bought[p.Item] || p.Buyers < o.MinSupport {
				return nil
			}
			c := candidate{item: p.Item, anchor: x, co: min(p.Buyers, xr.Buyers), anchorBuyers: xr.Buyers}
			if float64(c.co)/float64(c.anchorBuyers) < o.MinConfidence {
				return nil
			}
			if old, ok := best[p.Item]; !ok || better(c, old) {
				best[p.Item] = c
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	ranked := make([]candidate, 0, len(best))
	for _, c := range best {
		ranked = append(ranked, c)
	}
	slices.SortFunc(ranked, func(a, b candidate) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	ranked = ranked[:min(len(ranked), o.Limit)]
	out := make([]Recommendation, 0, len(ranked))
	for _, c := range ranked {
		yr, _, err := projections.Read[itemRecord](ctx, r, itemKey(d, c.item))
		if err != nil {
			return nil, fmt.Errorf("recommend: %w", err)
		}
		conf := float64(c.co) / float64(c.anchorBuyers)
		a := &Affinity{
			Anchor: c.anchor, AnchorDescription: described[c.anchor].Description,
			AnchorBuyers: c.anchorBuyers, CoBuyers: c.co, Confidence: conf,
			Percent: percent(c.co, c.anchorBuyers),
		}
		if yr.Buyers > 0 && base > 0 {
			a.Lift = conf * float64(base) / float64(yr.Buyers)
		}
		rec := recommendation(d, c.item, yr)
		rec.Basis, rec.Affinity = BasisAffinity, a
		rec.Reason = fmt.Sprintf("bought %s; %d%% of %s buyers also bought %s (%d of %d)",
			c.anchor, a.Percent, c.anchor, c.item, c.co, c.anchorBuyers)
		out = append(out, rec)
	}
	return out, nil
}

// popular ranks the items the customer has not bought by buyers, then by
// item.
func popular(ctx context.Context, r projections.Reader, d dimension, bought map[string]bool, o Options) ([]Recommendation, error) {
	var items []itemRecord
	err := scan(ctx, r, itemDimPrefix(d), func(it itemRecord) error {
		if !bought[it.Item] && it.Buyers >= o.MinSupport {
			items = append(items, it)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b itemRecord) int {
		if c := cmp.Compare(b.Buyers, a.Buyers); c != 0 {
			return c
		}
		return strings.Compare(a.Item, b.Item)
	})
	items = items[:min(len(items), o.Limit)]
	out := make([]Recommendation, 0, len(items))
	for _, it := range items {
		rec := recommendation(d, it.Item, it)
		rec.Basis = BasisPopular
		rec.Reason = fmt.Sprintf("popular: bought by %d customers", it.Buyers)
		if it.Buyers == 1 {
			rec.Reason = "popular: bought by 1 customer"
		}
		out = append(out, rec)
	}
	return out, nil
}

func recommendation(d dimension, item string, it itemRecord) Recommendation {
	return Recommendation{Kind: d.kind, Item: item, Description: it.Description, Category: it.Category, Buyers: it.Buyers}
}

// scan decodes every record under prefix, in key order.
func scan[T any](ctx context.Context, r projections.Reader, prefix string, fn func(T) error) error {
	err := r.Scan(ctx, prefix, "", func(key string, value []byte) (bool, error) {
		var v T
		if err := json.Unmarshal(value, &v); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		return true, fn(v)
	})
	if err != nil {
		return fmt.Errorf("recommend: scan %q: %w", prefix, err)
	}
	return nil
}
