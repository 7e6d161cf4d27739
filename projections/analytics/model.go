package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/merges"
	"github.com/google/uuid"
)

// ModelNamespace is the read-model namespace that keeps the fitted model
// (the Fit): written by FitAndSave, read by every scoring query. It is not
// a projection's namespace: nothing folds events into it, and the engine
// leaves it alone.
const ModelNamespace = "analytics_model"

// modelKey is the Fit's key in ModelNamespace.
const modelKey = "fit/current"

// fitVersion is the schema version of a stored Fit; a Fit of another
// version is treated as absent (the fitter writes a new one).
const fitVersion = 1

// Fit is the analytics model of the customer base as of one analysis
// date: the BG/NBD parameters and the population figures (RFM quintile
// bands, pooled rhythm) that scoring one customer needs, so that a read is
// a lookup of the customer's record and this record, never a scan or a
// fit. Scores from a Fit equal those of a fresh LoadBase at AsOf over the
// same history, to the digit.
type Fit struct {
	Version int `json:"version"`
	// AsOf is the analysis date: recency, churn and the model's T count
	// whole UTC days to AsOf's day.
	AsOf time.Time `json:"asOf"`
	// Pinned is set when an analyst chose AsOf (and CalibrationEnd): the
	// background fitter then keeps them when it refits; otherwise it
	// refits as of its clock.
	Pinned bool `json:"pinned"`
	// CalibrationEnd, when set, is the last day of the history the BG/NBD
	// parameters were fitted on; Validation compares their predictions
	// with the purchases after it.
	CalibrationEnd *time.Time `json:"calibrationEnd,omitempty"`
	// FittedAt is when the fit ran; Position the customers read model's
	// checkpoint before it read: the fit covers at least the log up to
	// Position.
	FittedAt time.Time `json:"fittedAt"`
	Position uint64    `json:"position"`
	// Buyers counts the customers scored (at least one purchase);
	// BoughtAfterAsOf those of them with a purchase day after AsOf, whose
	// recency counts as 0.
	Buyers          int `json:"buyers"`
	BoughtAfterAsOf int `json:"boughtAfterAsOf"`
	// HorizonDays is the horizon of Score.ExpectedPurchases.
	HorizonDays int `json:"horizonDays"`
	// BGNBD holds the fitted parameters (time in days), FitCustomers the
	// customers the fit used and LogLikelihood its total log-likelihood;
	// BGNBD is nil and NoFit says why when the model could not be fitted.
	BGNBD         *BGNBD   `json:"bgnbd,omitempty"`
	FitCustomers  int      `json:"fitCustomers"`
	LogLikelihood *float64 `json:"logLikelihood,omitempty"`
	NoFit         string   `json:"noFit,omitempty"`
	// RhythmDays is the pooled rhythm of the base (days per repeat
	// purchase day), 0 when no customer bought twice.
	RhythmDays float64 `json:"rhythmDays"`
	// Bands are the RFM quintile bands of the base as of AsOf.
	Bands Bands `json:"bands"`
	// Validation compares the fit's predictions with the holdout period
	// (CalibrationEnd, AsOf]; nil without a calibration end.
	Validation *Validation `json:"validation,omitempty"`
	// Distribution counts the buyers by churn risk and by P(alive) as of
	// AsOf, computed while the fit reads the base anyway, so that a chart
	// of the whole base is one read of the stored model; nil in a model
	// stored before it existed (the next fit adds it).
	Distribution *Distribution `json:"distribution,omitempty"`
}

// RiskBuckets is how many equal-width buckets of [0, 1] a Distribution
// counts.
const RiskBuckets = 10

// Distribution is the base's histogram of churn risk and P(alive): bucket
// i counts the buyers whose figure is in [i/10, (i+1)/10), the last one
// including 1. A buyer without the figure (no rhythm known; no fitted
// model) is counted in the matching Unscored member instead.
type Distribution struct {
	ChurnRisk         []int `json:"churnRisk"`
	ChurnRiskUnscored int   `json:"churnRiskUnscored"`
	PAlive            []int `json:"pAlive"`
	PAliveUnscored    int   `json:"pAliveUnscored"`
}

func bucketOf(x float64) int {
	return min(max(int(x*RiskBuckets), 0), RiskBuckets-1)
}

// distribution scores every buyer of b with the fit's population figures,
// as a read of one customer would.
func (f *Fit) distribution(b *Base) *Distribution {
	d := &Distribution{ChurnRisk: make([]int, RiskBuckets), PAlive: make([]int, RiskBuckets)}
	p := f.population()
	for _, id := range b.buyers() {
		rec := b.records[id]
		if len(rec.Days) == 0 {
			d.ChurnRiskUnscored++
			d.PAliveUnscored++
			continue
		}
		s := scoreRecord(rec, f.rfmOf(id, rec), p)
		if s.ChurnRisk != nil {
			d.ChurnRisk[bucketOf(*s.ChurnRisk)]++
		} else {
			d.ChurnRiskUnscored++
		}
		if s.PAlive != nil {
			d.PAlive[bucketOf(*s.PAlive)]++
		} else {
			d.PAliveUnscored++
		}
	}
	return d
}

// Bands hold, per RFM dimension, the range of values each score was given
// in the base (recency in days, frequency in orders, monetary in minor
// units per main currency), in ascending order of value. A value scores
// the score of the last band whose Min it reaches (the first band's score
// below all of them): exactly the base's score for every value the base
// holds.
type Bands struct {
	Recency   []Band            `json:"recency"`
	Frequency []Band            `json:"frequency"`
	Monetary  map[string][]Band `json:"monetary"`
}

// Band is the range [Min, Max] of values given Score.
type Band struct {
	Score int   `json:"score"`
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
}

// Validation compares what the model, fitted on the history up to the
// calibration end, predicts for the holdout period after it with what the
// customers then did, overall and by number of repeat purchase days in
// the calibration period (the comparison of FHL 2005, figure 4).
type Validation struct {
	HoldoutDays int `json:"holdoutDays"`
	// Customers counts the customers with a purchase by the calibration
	// end; Predicted is the sum of their expected purchase days in the
	// holdout period and Actual the purchase days they had in it.
	Customers int     `json:"customers"`
	Predicted float64 `json:"predicted"`
	Actual    int64   `json:"actual"`
	// ByRepeats breaks the comparison down by repeat purchase days in the
	// calibration period: 0, 1, …, 6 and "7+"; per customer means.
	ByRepeats []ValidationRow `json:"byRepeats"`
}

// ValidationRow is one line of Validation.ByRepeats.
type ValidationRow struct {
	Repeats   string  `json:"repeats"`
	Customers int     `json:"customers"`
	Predicted float64 `json:"predicted"`
	Actual    float64 `json:"actual"`
}

// ModelInfo says which Fit a Score comes from.
type ModelInfo struct {
	AsOf           time.Time  `json:"asOf"`
	FittedAt       time.Time  `json:"fittedAt"`
	Position       uint64     `json:"position"`
	CalibrationEnd *time.Time `json:"calibrationEnd,omitempty"`
}

// Info returns the ModelInfo of f.
func (f *Fit) Info() *ModelInfo {
	return &ModelInfo{AsOf: f.AsOf, FittedAt: f.FittedAt, Position: f.Position, CalibrationEnd: f.CalibrationEnd}
}

// FitOptions parameterise FitModel.
type FitOptions struct {
	// Now is the clock: FittedAt, and the analysis date when AsOf is zero.
	Now time.Time
	// AsOf is the analysis date (zero: Now's day). Pinned records that an
	// analyst chose it.
	AsOf   time.Time
	Pinned bool
	// CalibrationEnd, when not zero, fits the BG/NBD parameters on the
	// purchase days up to its day only and validates them on the days
	// after, up to AsOf's. It must be before AsOf's day.
	CalibrationEnd time.Time
	// Horizon is the number of days of Score.ExpectedPurchases; 0 means 90.
	Horizon int
	// Merged maps each survivor of a merge in effect to the customers it
	// absorbed: the fit counts each such group as one customer, its
	// records combined (see combineRecords). FitAndSave reads it from the
	// merges read model.
	Merged map[uuid.UUID][]uuid.UUID
}

// ErrNoModel is returned by the scoring queries when no Fit has been
// stored yet.
var ErrNoModel = errors.New("analytics: no model fitted yet")

// FitModel scores the whole base read from r as of the analysis date and
// fits the BG/NBD model: O(customers) plus the fit. It is what the
// background fitter and an analyst's fit run; reads use the stored result.
func FitModel(ctx context.Context, r projections.Reader, opts FitOptions) (Fit, error) {
	asOf := opts.AsOf
	if asOf.IsZero() {
		asOf = opts.Now
	}
	asOf = asOf.UTC()
	today := dayNumber(asOf)
	f := Fit{Version: fitVersion, AsOf: asOf, Pinned: opts.Pinned, FittedAt: opts.Now.UTC(), HorizonDays: 90}
	if opts.Horizon > 0 {
		f.HorizonDays = opts.Horizon
	}
	calDay := int64(0)
	if !opts.CalibrationEnd.IsZero() {
		calDay = dayNumber(opts.CalibrationEnd)
		if calDay >= today {
			return Fit{}, fmt.Errorf("%w: calibration end %s must be before the analysis date %s", domain.ErrInvalid,
				opts.CalibrationEnd.UTC().Format(time.DateOnly), asOf.Format(time.DateOnly))
		}
		ce := opts.CalibrationEnd.UTC()
		f.CalibrationEnd = &ce
	}
	b, err := loadRecords(ctx, r, asOf, f.HorizonDays, opts.Merged)
	if err != nil {
		return Fit{}, err
	}
	f.RhythmDays = b.rhythm
	f.Bands = b.bands()
	var obs []Observation
	for _, id := range b.buyers() {
		days := b.records[id].Days
		f.Buyers++
		if days[len(days)-1] > today {
			f.BoughtAfterAsOf++
		}
		if calDay != 0 {
			days = calibrationDays(days, calDay)
			if len(days) == 0 {
				continue
			}
			obs = append(obs, observation(days, calDay))
			continue
		}
		obs = append(obs, observation(days, today))
	}
	f.FitCustomers = len(obs)
	m, err := FitBGNBD(obs)
	switch {
	case errors.Is(err, ErrNoFit):
		f.NoFit = fmt.Sprintf("%d buyers, %d with a repeat purchase day: the BG/NBD model needs at least %d buyers and one repeat", len(obs), repeaters(obs), minFitCustomers)
	case err != nil:
		return Fit{}, err
	default:
		f.BGNBD = &m
		ll := 0.0
		for _, o := range obs {
			ll += m.LogLikelihood(o)
		}
		f.LogLikelihood = &ll
	}
	if calDay != 0 && f.BGNBD != nil {
		f.Validation = validate(b, *f.BGNBD, calDay, today)
	}
	f.Distribution = f.distribution(b)
	return f, nil
}

func repeaters(obs []Observation) int {
	n := 0
	for _, o := range obs {
		if o.X > 0 {
			n++
		}
	}
	return n
}

// calibrationDays returns the purchase days up to day end.
func calibrationDays(days []int64, end int64) []int64 {
	i, found := slices.BinarySearch(days, end)
	if found {
		i++
	}
	return days[:i]
}

// validate compares the model's expected purchase days in (calDay, today]
// with the actual ones, for the customers who bought by calDay.
func validate(b *Base, m BGNBD, calDay, today int64) *Validation {
	v := &Validation{HoldoutDays: int(today - calDay)}
	rows := make([]ValidationRow, 8)
	for i := range rows {
		rows[i].Repeats = fmt.Sprint(i)
	}
	rows[7].Repeats = "7+"
	for _, id := range b.buyers() {
		all := b.records[id].Days
		cal := calibrationDays(all, calDay)
		if len(cal) == 0 {
			continue
		}
		o := observation(cal, calDay)
		pred := m.ExpectedPurchases(float64(v.HoldoutDays), o)
		if math.IsNaN(pred) || math.IsInf(pred, 0) {
			pred = 0
		}
		actual := int64(len(calibrationDays(all, today)) - len(cal))
		v.Customers++
		v.Predicted += pred
		v.Actual += actual
		row := &rows[min(len(cal)-1, 7)]
		row.Customers++
		row.Predicted += pred
		row.Actual += float64(actual)
	}
	for i := range rows {
		if n := float64(rows[i].Customers); n > 0 {
			rows[i].Predicted /= n
			rows[i].Actual /= n
		}
	}
	v.ByRepeats = rows
	return v
}

// bands returns the RFM bands of the scored base.
func (b *Base) bands() Bands {
	out := Bands{Recency: []Band{}, Frequency: []Band{}, Monetary: map[string][]Band{}}
	// Sorting the buyers by value makes each score's values one run.
	add := func(bands []Band, v int64, score int) []Band {
		if n := len(bands); n > 0 && bands[n-1].Score == score {
			bands[n-1].Min, bands[n-1].Max = min(bands[n-1].Min, v), max(bands[n-1].Max, v)
			return bands
		}
		return append(bands, Band{Score: score, Min: v, Max: v})
	}
	type kv struct {
		v     int64
		score int
		cur   string
	}
	var rec, freq []kv
	mon := map[string][]kv{}
	for _, c := range b.rfm {
		rec = append(rec, kv{c.RecencyDays, c.Recency, ""})
		freq = append(freq, kv{c.Orders, c.Frequency, ""})
		mon[c.Currency] = append(mon[c.Currency], kv{c.MonetaryValue, c.Monetary, c.Currency})
	}
	build := func(vals []kv) []Band {
		slices.SortFunc(vals, func(p, q kv) int {
			if p.v != q.v {
				return cmpInt(p.v, q.v)
			}
			return p.score - q.score
		})
		bands := []Band{}
		for _, x := range vals {
			bands = add(bands, x.v, x.score)
		}
		return bands
	}
	out.Recency = build(rec)
	out.Frequency = build(freq)
	for cur, vals := range mon {
		out.Monetary[cur] = build(vals)
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scoreIn returns the score of v in bands: that of the last band whose Min
// v reaches, or the first band's below all of them; 0 without bands.
func scoreIn(bands []Band, v int64) int {
	if len(bands) == 0 {
		return 0
	}
	i, _ := slices.BinarySearchFunc(bands, v, func(b Band, v int64) int { return cmpInt(b.Min, v+1) })
	// bands[:i] have Min ≤ v.
	if i == 0 {
		return bands[0].Score
	}
	return bands[i-1].Score
}

// population returns what scoring one customer needs of f.
func (f *Fit) population() population {
	return population{today: dayNumber(f.AsOf), rhythm: f.RhythmDays, model: f.BGNBD, horizon: float64(f.HorizonDays)}
}

// rfmOf returns a buyer's RFM entry by the fit's bands.
func (f *Fit) rfmOf(id uuid.UUID, rec customerRecord) CustomerRFM {
	return f.rfmFromFacts(id, buyerFacts(rec, dayNumber(f.AsOf)))
}

// rfmFromFacts returns the RFM entry of a buyer's facts by the fit's bands.
func (f *Fit) rfmFromFacts(id uuid.UUID, fa facts) CustomerRFM {
	return fa.rfm(id, RFMScore{
		Recency:   scoreIn(f.Bands.Recency, fa.recency),
		Frequency: scoreIn(f.Bands.Frequency, fa.orders),
		Monetary:  scoreIn(f.Bands.Monetary[fa.currency], fa.monetary),
	})
}

// ScoreFrom scores one customer by lookup: their record in the customers
// read model r and the stored fit f. Without a fit (f nil) the figures
// that rank the customer against the base or need the model (RFM scores,
// segment, churn risk from the pooled rhythm, P(alive)) are left out and
// Score.Unscored says why; recency then counts to now's day. It fails with
// an error wrapping projections.ErrNotFound when the read model holds
// nothing about the customer.
func ScoreFrom(ctx context.Context, r projections.Reader, id uuid.UUID, f *Fit, now time.Time) (Score, error) {
	rec, ok, err := projections.Read[customerRecord](ctx, r, customerPrefix+id.String())
	if err != nil {
		return Score{}, fmt.Errorf("analytics: customer %s: %w", id, err)
	}
	if !ok {
		return Score{}, fmt.Errorf("analytics: customer %s: %w", id, projections.ErrNotFound)
	}
	if f == nil {
		c := CustomerRFM{CustomerID: id}
		if rec.Orders > 0 && len(rec.Days) > 0 {
			c = buyerFacts(rec, dayNumber(now)).rfm(id, RFMScore{})
		}
		// Only the customer's own rhythm: the pooled one is the fit's.
		s := scoreRecord(rec, c, population{today: dayNumber(now)})
		s.Unscored = ErrNoModel.Error() + ": RFM scores, segment and the BG/NBD figures appear once the background fitter (or POST /v1/analytics/model/fit) has fitted one"
		return s, nil
	}
	c := CustomerRFM{CustomerID: id}
	if rec.Orders > 0 && len(rec.Days) > 0 {
		c = f.rfmOf(id, rec)
	}
	s := scoreRecord(rec, c, f.population())
	s.Model = f.Info()
	return s, nil
}

// ChurnRiskAt is a customer's rhythm churn risk as of at, by lookup: their
// own rhythm, or the fit's pooled rhythm for a customer with one purchase
// day (none without a fit). ok is false when the customer never bought or
// no rhythm is known.
func ChurnRiskAt(ctx context.Context, r projections.Reader, id uuid.UUID, f *Fit, at time.Time) (risk float64, ok bool, err error) {
	rec, found, err := projections.Read[customerRecord](ctx, r, customerPrefix+id.String())
	if err != nil || !found || rec.Orders == 0 || len(rec.Days) == 0 {
		return 0, false, err
	}
	p := population{today: dayNumber(at)}
	if f != nil {
		p.rhythm = f.RhythmDays
	}
	s := scoreRecord(rec, buyerFacts(rec, p.today).rfm(id, RFMScore{}), p)
	if s.ChurnRisk == nil {
		return 0, false, nil
	}
	return *s.ChurnRisk, true, nil
}

// Bought reports whether customer id has a purchase of their own in r.
func Bought(ctx context.Context, r projections.Reader, id uuid.UUID) (bool, error) {
	rec, found, err := projections.Read[customerRecord](ctx, r, customerPrefix+id.String())
	if err != nil {
		return false, fmt.Errorf("analytics: customer %s: %w", id, err)
	}
	return found && rec.Orders > 0, nil
}

// ScoreAll streams the RFM entry of every buyer in r, in customer id
// order, scored by the fit's bands: one pass over the read model, no fit.
func ScoreAll(ctx context.Context, r projections.Reader, f *Fit, fn func(CustomerRFM) error) error {
	today := dayNumber(f.AsOf)
	return r.Scan(ctx, customerPrefix, "", func(key string, value []byte) (bool, error) {
		fa, buyer, ok := rfmFacts(value, today)
		if !ok {
			var rec customerRecord
			if err := json.Unmarshal(value, &rec); err != nil {
				return false, fmt.Errorf("analytics: decode %q: %w", key, err)
			}
			if buyer = rec.Orders > 0 && len(rec.Days) > 0; buyer {
				fa = buyerFacts(rec, today)
			}
		}
		if !buyer {
			return true, nil
		}
		id, err := uuid.Parse(strings.TrimPrefix(key, customerPrefix))
		if err != nil {
			return false, fmt.Errorf("analytics: key %q: %w", key, err)
		}
		return true, fn(f.rfmFromFacts(id, fa))
	})
}

// LoadFit returns the stored fit, and false when there is none.
func LoadFit(ctx context.Context, b projections.Backend) (*Fit, bool, error) {
	var f Fit
	var ok bool
	err := b.View(ctx, ModelNamespace, func(r projections.Reader) error {
		var err error
		f, ok, err = projections.Read[Fit](ctx, r, modelKey)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("analytics: load model: %w", err)
	}
	if !ok || f.Version != fitVersion {
		return nil, false, nil
	}
	return &f, true, nil
}

// SaveFit stores f as the model every read uses.
func SaveFit(ctx context.Context, b projections.Backend, f Fit) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("analytics: save model: %w", err)
	}
	err = b.Update(ctx, ModelNamespace, func(w projections.Writer) error {
		return w.Put(ctx, modelKey, data)
	})
	if err != nil {
		return fmt.Errorf("analytics: save model: %w", err)
	}
	return nil
}

// mergedGroups reads the merges in effect from the merges read model of
// b: none while it is not built (or not in the catalog).
func mergedGroups(ctx context.Context, b projections.Backend) (map[uuid.UUID][]uuid.UUID, error) {
	var groups map[uuid.UUID][]merges.Member
	err := projections.View(ctx, b, merges.Name, func(r projections.Reader) error {
		var err error
		groups, err = merges.Groups(ctx, r)
		return err
	})
	switch {
	case errors.Is(err, projections.ErrNotActive), errors.Is(err, projections.ErrUnknownProjection):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("analytics: fit: %w", err)
	}
	out := make(map[uuid.UUID][]uuid.UUID, len(groups))
	for s, ms := range groups {
		for _, m := range ms {
			out[s] = append(out[s], m.Customer)
		}
	}
	return out, nil
}

// FitAndSave fits the model to the customers read model of b as it is
// now (see FitModel) and stores it.
func FitAndSave(ctx context.Context, b projections.Backend, opts FitOptions) (Fit, error) {
	ns, err := b.Active(ctx, CustomersName)
	if err != nil {
		return Fit{}, fmt.Errorf("analytics: fit: %w", err)
	}
	if ns == "" {
		return Fit{}, fmt.Errorf("analytics: fit: %s: %w", CustomersName, projections.ErrNotActive)
	}
	pos, err := b.Checkpoint(ctx, ns)
	if err != nil {
		return Fit{}, fmt.Errorf("analytics: fit: %w", err)
	}
	if opts.Merged, err = mergedGroups(ctx, b); err != nil {
		return Fit{}, err
	}
	var f Fit
	err = projections.View(ctx, b, CustomersName, func(r projections.Reader) error {
		var err error
		f, err = FitModel(ctx, r, opts)
		return err
	})
	if err != nil {
		return Fit{}, err
	}
	f.Position = pos
	if err := SaveFit(ctx, b, f); err != nil {
		return Fit{}, err
	}
	return f, nil
}
