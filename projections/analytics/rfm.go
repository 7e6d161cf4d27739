package analytics

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cxledger/cxledger/projections"
	"github.com/google/uuid"
)

// Segment names an RFM segment; see the package documentation for the
// rules.
type Segment string

// RFM segments, in the order their rules are tried.
const (
	SegmentChampions         Segment = "champions"
	SegmentLoyal             Segment = "loyal"
	SegmentNew               Segment = "new"
	SegmentPotentialLoyalist Segment = "potential_loyalist"
	SegmentAtRisk            Segment = "at_risk"
	SegmentNeedsAttention    Segment = "needs_attention"
	SegmentHibernating       Segment = "hibernating"
	SegmentLost              Segment = "lost"
)

// RFMScore holds the recency, frequency and monetary scores, each 1 (worst
// fifth of the base) to 5 (best fifth); all 0 for a customer without
// purchases.
type RFMScore struct {
	Recency   int `json:"r"`
	Frequency int `json:"f"`
	Monetary  int `json:"m"`
}

// SegmentOf returns the segment of an RFM score: the first rule that
// matches, in this order.
//
//	champions           R ≥ 4, F ≥ 4, M ≥ 4
//	loyal               R ≥ 3, F ≥ 4
//	new                 R ≥ 4, F = 1
//	potential_loyalist  R ≥ 4
//	at_risk             R ≤ 2, F ≥ 3
//	needs_attention     R = 3
//	hibernating         R = 2
//	lost                R = 1
//
// A zero RFMScore (no purchase) has no segment ("").
func SegmentOf(s RFMScore) Segment {
	r, f, m := s.Recency, s.Frequency, s.Monetary
	switch {
	case r == 0:
		return ""
	case r >= 4 && f >= 4 && m >= 4:
		return SegmentChampions
	case r >= 3 && f >= 4:
		return SegmentLoyal
	case r >= 4 && f == 1:
		return SegmentNew
	case r >= 4:
		return SegmentPotentialLoyalist
	case r <= 2 && f >= 3:
		return SegmentAtRisk
	case r == 3:
		return SegmentNeedsAttention
	case r == 2:
		return SegmentHibernating
	}
	return SegmentLost
}

// CustomerRFM is one customer's RFM scores and the values they rank.
type CustomerRFM struct {
	CustomerID uuid.UUID `json:"customerId"`
	RFMScore
	Segment Segment `json:"segment"`
	// RecencyDays is the number of whole UTC days from the last purchase
	// day to the day of now.
	RecencyDays int64 `json:"recencyDays"`
	// Orders is the number of purchases (the frequency).
	Orders int64 `json:"orders"`
	// Currency is the customer's main currency (most orders; ties go to
	// the first code in alphabetical order) and Monetary its net spend
	// (purchases − refunds) in that currency, in minor units. Monetary
	// scores rank customers only against those with the same main
	// currency.
	Currency      string `json:"currency"`
	MonetaryValue int64  `json:"monetary"`
}

// Value is a customer's historical lifetime value in one currency, in
// minor units: Net = Gross − Refunded.
type Value struct {
	Currency string `json:"currency"`
	Orders   int64  `json:"orders"`
	Gross    int64  `json:"gross"`
	Refunded int64  `json:"refunded"`
	Net      int64  `json:"net"`
}

// Score is everything the analytics models say about one customer, for
// the customer 360 view.
type Score struct {
	CustomerRFM
	FirstPurchase time.Time `json:"firstPurchase,omitzero"`
	LastPurchase  time.Time `json:"lastPurchase,omitzero"`
	// LifetimeValue is the historical value per currency, by code.
	LifetimeValue []Value `json:"lifetimeValue"`
	// RhythmDays is the mean number of days between purchase days used by
	// the rhythm churn score: the customer's own, or the base's pooled
	// rhythm for a customer with a single purchase day. Nil when unknown.
	RhythmDays *float64 `json:"rhythmDays,omitempty"`
	// ChurnRisk is the recency-versus-rhythm score 1 − e^(−RecencyDays ÷
	// RhythmDays), in [0, 1). Nil when the rhythm is unknown.
	ChurnRisk *float64 `json:"churnRisk,omitempty"`
	// PAlive is the BG/NBD probability that the customer is still active,
	// and ExpectedPurchases the BG/NBD expected number of purchase days in
	// the next Options.Horizon days. Nil when the model could not be fitted
	// (see ErrNoFit) or the customer never bought.
	PAlive            *float64 `json:"pAlive,omitempty"`
	ExpectedPurchases *float64 `json:"expectedPurchases,omitempty"`
	// NPS is the customer's latest survey answer (0–10), nil if none.
	NPS *int `json:"nps,omitempty"`
	// Model says which stored fit the figures come from and which date
	// they are as of; nil for a fresh Base.
	Model *ModelInfo `json:"model,omitempty"`
	// Unscored says why the figures that need a fitted model (RFM scores,
	// segment, P(alive)) are absent; "" when they are there.
	Unscored string `json:"unscored,omitempty"`
}

// Options parameterise LoadBase.
type Options struct {
	// Model fixes the BG/NBD parameters (time in days); nil fits them to
	// the base with FitBGNBD.
	Model *BGNBD
	// Horizon is the number of days of Score.ExpectedPurchases; 0 means 90.
	Horizon int
}

// Base is the customer base at one instant: every customer's RFM scores
// and models, computed once so that many scores can be read cheaply (the
// customer 360 view may cache one Base for a while).
type Base struct {
	now     time.Time
	today   int64
	horizon float64
	records map[uuid.UUID]customerRecord
	ids     []uuid.UUID // key order: buyers and non-buyers
	rfm     map[uuid.UUID]CustomerRFM
	rhythm  float64 // pooled days per repeat purchase day, 0 if none
	model   *BGNBD
}

// LoadBase reads the customers read model and scores the whole base at
// now. It reads every customer: O(customers) plus the BG/NBD fit.
func LoadBase(ctx context.Context, r projections.Reader, now time.Time, opts Options) (*Base, error) {
	b, err := loadRecords(ctx, r, now, opts.Horizon, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Model != nil:
		if !opts.Model.valid() {
			return nil, fmt.Errorf("analytics: BG/NBD parameters %+v must be positive", *opts.Model)
		}
		m := *opts.Model
		b.model = &m
	default:
		m, err := FitBGNBD(b.observations())
		if err != nil && !errors.Is(err, ErrNoFit) {
			return nil, err
		}
		if err == nil {
			b.model = &m
		}
	}
	return b, nil
}

// loadRecords reads every customer record and computes the RFM scores and
// the pooled rhythm at now; the BG/NBD model is left to the caller. The
// records of each merged group (survivor → absorbed) are combined into
// the survivor's first.
func loadRecords(ctx context.Context, r projections.Reader, now time.Time, horizon int, merged map[uuid.UUID][]uuid.UUID) (*Base, error) {
	b := &Base{now: now, today: dayNumber(now), horizon: 90, records: map[uuid.UUID]customerRecord{}, rfm: map[uuid.UUID]CustomerRFM{}}
	if horizon > 0 {
		b.horizon = float64(horizon)
	}
	err := r.Scan(ctx, customerPrefix, "", func(key string, value []byte) (bool, error) {
		var rec customerRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return false, fmt.Errorf("analytics: decode %q: %w", key, err)
		}
		id, err := uuid.Parse(strings.TrimPrefix(key, customerPrefix))
		if err != nil {
			return false, fmt.Errorf("analytics: key %q: %w", key, err)
		}
		b.records[id] = rec
		b.ids = append(b.ids, id)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	b.combineGroups(merged)
	b.score()
	return b, nil
}

// combineGroups replaces the records of each merged group by one record
// under the survivor's id: that of one customer who had had all their
// events (combineRecords), in key order among the others.
func (b *Base) combineGroups(merged map[uuid.UUID][]uuid.UUID) {
	if len(merged) == 0 {
		return
	}
	for s, members := range merged {
		rec, ok := b.records[s]
		for _, m := range members {
			mr, found := b.records[m]
			if !found {
				continue
			}
			combineRecords(&rec, mr)
			ok = true
			delete(b.records, m)
		}
		if ok {
			rec.Customer = s.String()
			b.records[s] = rec
		}
	}
	b.ids = b.ids[:0]
	for id := range b.records {
		b.ids = append(b.ids, id)
	}
	slices.SortFunc(b.ids, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
}

// combineRecords adds r's history to into's. Every purchase figure is a
// sum, a union, a least or a greatest, so the result is the record the
// fold of both histories as one customer gives. A survey answered on both
// records at the very same time keeps into's answer (the fold would keep
// the later event's); the fit does not read answers.
func combineRecords(into *customerRecord, r customerRecord) {
	into.Orders += r.Orders
	if !r.FirstPurchase.IsZero() && (into.FirstPurchase.IsZero() || r.FirstPurchase.Before(into.FirstPurchase)) {
		into.FirstPurchase = r.FirstPurchase
	}
	if r.LastPurchase.After(into.LastPurchase) {
		into.LastPurchase = r.LastPurchase
	}
	for _, d := range r.Days {
		if i, found := slices.BinarySearch(into.Days, d); !found {
			into.Days = slices.Insert(into.Days, i, d)
		}
	}
	for c, m := range r.Money {
		o := into.money(c)
		o.Orders += m.Orders
		o.Gross = addSat(o.Gross, m.Gross)
		o.Refunds += m.Refunds
		o.Refunded = addSat(o.Refunded, m.Refunded)
		into.Money[c] = o
	}
	for k, a := range r.Surveys {
		if old, ok := into.Surveys[k]; !ok || a.At.After(old.At) {
			if into.Surveys == nil {
				into.Surveys = map[string]answer{}
			}
			into.Surveys[k] = a
		}
	}
}

// Model returns the BG/NBD parameters the base uses, and false when none
// could be fitted.
func (b *Base) Model() (BGNBD, bool) {
	if b.model == nil {
		return BGNBD{}, false
	}
	return *b.model, true
}

// buyers returns the ids of customers with at least one purchase.
func (b *Base) buyers() []uuid.UUID {
	var out []uuid.UUID
	for _, id := range b.ids {
		if b.records[id].Orders > 0 {
			out = append(out, id)
		}
	}
	return out
}

// score computes the quintile scores and segments of every buyer.
func (b *Base) score() {
	buyers := b.buyers()
	f := make([]facts, len(buyers))
	var gaps, repeats int64
	for i, id := range buyers {
		rec := b.records[id]
		f[i] = buyerFacts(rec, b.today)
		if n := int64(len(rec.Days)); n > 1 {
			gaps += rec.Days[n-1] - rec.Days[0]
			repeats += n - 1
		}
	}
	if repeats > 0 {
		b.rhythm = float64(gaps) / float64(repeats)
	}
	// Recency: fewer days is better. Frequency and monetary: more is
	// better; monetary only within the same main currency.
	one := func(int) string { return "" }
	rs := quintiles(len(f), one, func(i int) int64 { return -f[i].recency })
	fs := quintiles(len(f), one, func(i int) int64 { return f[i].orders })
	ms := quintiles(len(f), func(i int) string { return f[i].currency }, func(i int) int64 { return f[i].monetary })
	for i, id := range buyers {
		b.rfm[id] = f[i].rfm(id, RFMScore{Recency: rs[i], Frequency: fs[i], Monetary: ms[i]})
	}
}

// facts are the values RFM ranks a buyer by, at one day.
type facts struct {
	recency, orders, monetary int64
	currency                  string
}

// buyerFacts returns the RFM values of a buyer (Orders > 0) at day today.
func buyerFacts(rec customerRecord, today int64) facts {
	f := facts{recency: max(0, today-rec.Days[len(rec.Days)-1]), orders: rec.Orders}
	f.currency, f.monetary = mainCurrency(rec)
	return f
}

// rfm is the customer's RFM entry with the given scores.
func (f facts) rfm(id uuid.UUID, s RFMScore) CustomerRFM {
	return CustomerRFM{
		CustomerID: id, RFMScore: s, Segment: SegmentOf(s),
		RecencyDays: f.recency, Orders: f.orders, Currency: f.currency, MonetaryValue: f.monetary,
	}
}

// quintiles scores n customers 1 to 5 within their group by the midrank
// of their value (higher is better): a customer whose value w customers of
// the group beat from below and t customers share (themselves included)
// sits at the quantile q = (w + t/2) ÷ N, N the size of the group, and
// scores ⌈5q⌉. Distinct values score as plain quintiles (ten customers:
// 1,1,2,2,3,3,4,4,5,5); a tie scores the middle of the places it spans,
// so a lone customer, or a group all tied, scores 3 — neither better nor
// worse than the others — rather than the bottom score.
func quintiles(n int, group func(int) string, value func(int) int64) []int {
	groups := map[string][]int{}
	for i := range n {
		groups[group(i)] = append(groups[group(i)], i)
	}
	out := make([]int, n)
	for _, members := range groups {
		slices.SortStableFunc(members, func(i, j int) int { return cmp.Compare(value(i), value(j)) })
		for k := 0; k < len(members); {
			end := k + 1
			for end < len(members) && value(members[end]) == value(members[k]) {
				end++
			}
			s := midrankScore(k, end-k, len(members))
			for _, i := range members[k:end] {
				out[i] = s
			}
			k = end
		}
	}
	return out
}

// midrankScore is ⌈5·(w + t/2) ÷ n⌉ in integers: ⌈5(2w + t) ÷ 2n⌉, which
// lies in 1..5 for 0 ≤ w, 1 ≤ t, w + t ≤ n.
func midrankScore(w, t, n int) int {
	return (5*(2*w+t) + 2*n - 1) / (2 * n)
}

// mainCurrency returns the currency with the most orders (ties: the first
// code alphabetically) and the net spend in it.
func mainCurrency(rec customerRecord) (string, int64) {
	codes := make([]string, 0, len(rec.Money))
	for code := range rec.Money {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	best := ""
	for _, code := range codes {
		if best == "" || rec.Money[code].Orders > rec.Money[best].Orders {
			best = code
		}
	}
	if best == "" {
		return "", 0
	}
	m := rec.Money[best]
	return best, m.Gross - m.Refunded
}

// observation is the BG/NBD summary in days of a buyer's purchase days
// (at least one), observed until day today.
func observation(days []int64, today int64) Observation {
	first, last := days[0], days[len(days)-1]
	return Observation{
		X:  float64(len(days) - 1),
		Tx: float64(last - first),
		T:  float64(max(today-first, last-first)),
	}
}

func (b *Base) observations() []Observation {
	var out []Observation
	for _, id := range b.buyers() {
		out = append(out, observation(b.records[id].Days, b.today))
	}
	return out
}

// Customers returns the RFM scores of every customer with a purchase, in
// customer id order.
func (b *Base) Customers() []CustomerRFM {
	out := []CustomerRFM{}
	for _, id := range b.ids {
		if c, ok := b.rfm[id]; ok {
			out = append(out, c)
		}
	}
	return out
}

// Score returns everything known about one customer. It fails with an
// error wrapping projections.ErrNotFound when the read model holds
// nothing about the customer (no purchase, refund or survey answer).
func (b *Base) Score(id uuid.UUID) (Score, error) {
	rec, ok := b.records[id]
	if !ok {
		return Score{}, fmt.Errorf("analytics: customer %s: %w", id, projections.ErrNotFound)
	}
	c, ok := b.rfm[id]
	if !ok {
		c = CustomerRFM{CustomerID: id}
	}
	return scoreRecord(rec, c, population{today: b.today, rhythm: b.rhythm, model: b.model, horizon: b.horizon}), nil
}

// population is what scoring one customer needs of the whole base: the
// day the figures are as of, the pooled rhythm (0: none), the BG/NBD
// parameters (nil: none) and the horizon of ExpectedPurchases in days.
type population struct {
	today   int64
	rhythm  float64
	model   *BGNBD
	horizon float64
}

// scoreRecord computes a customer's Score from their record, their RFM
// entry and the population figures. A fresh Base and a stored Fit both
// score through it, so that they give the same figures to the digit.
func scoreRecord(rec customerRecord, c CustomerRFM, p population) Score {
	s := Score{CustomerRFM: c, FirstPurchase: rec.FirstPurchase, LastPurchase: rec.LastPurchase, LifetimeValue: []Value{}}
	codes := make([]string, 0, len(rec.Money))
	for code := range rec.Money {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		m := rec.Money[code]
		s.LifetimeValue = append(s.LifetimeValue, Value{Currency: code, Orders: m.Orders, Gross: m.Gross, Refunded: m.Refunded, Net: m.Gross - m.Refunded})
	}
	if a, ok := latestAnswer(rec); ok {
		s.NPS = &a.Score
	}
	if rec.Orders == 0 || len(rec.Days) == 0 {
		return s
	}
	rhythm := p.rhythm
	if n := len(rec.Days); n > 1 {
		rhythm = float64(rec.Days[n-1]-rec.Days[0]) / float64(n-1)
	}
	if rhythm > 0 {
		risk := 1 - math.Exp(-float64(s.RecencyDays)/rhythm)
		s.RhythmDays, s.ChurnRisk = &rhythm, &risk
	}
	if p.model != nil {
		o := observation(rec.Days, p.today)
		alive := p.model.PAlive(o)
		s.PAlive = &alive
		if e := p.model.ExpectedPurchases(p.horizon, o); !math.IsNaN(e) && !math.IsInf(e, 0) {
			s.ExpectedPurchases = &e
		}
	}
	return s
}

// RFM scores every customer with a purchase at now, in customer id order.
func RFM(ctx context.Context, r projections.Reader, now time.Time) ([]CustomerRFM, error) {
	b, err := LoadBase(ctx, r, now, Options{})
	if err != nil {
		return nil, err
	}
	return b.Customers(), nil
}

// CustomerScore scores one customer against the whole base at now, with
// default Options. To score many customers, LoadBase once and call
// Base.Score.
func CustomerScore(ctx context.Context, r projections.Reader, customerID uuid.UUID, now time.Time) (Score, error) {
	b, err := LoadBase(ctx, r, now, Options{})
	if err != nil {
		return Score{}, err
	}
	return b.Score(customerID)
}
