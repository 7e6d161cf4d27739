package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Stages are the open stages in pipeline order.
var Stages = []domain.OpportunityStage{
	domain.StageProspecting,
	domain.StageQualification,
	domain.StageProposal,
	domain.StageNegotiation,
}

// DefaultProbabilities are the win probabilities per stage used when
// Options.Probabilities is nil.
var DefaultProbabilities = map[domain.OpportunityStage]float64{
	domain.StageProspecting:   0.10,
	domain.StageQualification: 0.25,
	domain.StageProposal:      0.50,
	domain.StageNegotiation:   0.75,
}

// Options parameterise Summary and Forecast.
type Options struct {
	// Probabilities maps each stage to the probability, in [0, 1], that an
	// open opportunity in it is won; nil means DefaultProbabilities. A stage
	// missing from a non-nil map has probability 0.
	Probabilities map[domain.OpportunityStage]float64
	// ClosedFrom and ClosedTo restrict the closed figures (win rate, deal
	// size, cycle) to opportunities closed in [ClosedFrom, ClosedTo); a
	// zero bound is open.
	ClosedFrom, ClosedTo time.Time
	// Now is the query's clock: the age of open opportunities in their
	// stage, and which expected close dates have passed.
	Now time.Time
}

func (o Options) probabilities() (map[domain.OpportunityStage]float64, error) {
	if o.Probabilities == nil {
		return DefaultProbabilities, nil
	}
	for stage, p := range o.Probabilities {
		if !(p >= 0 && p <= 1) {
			return nil, fmt.Errorf("pipeline: probability of stage %s is %v, want 0 to 1", stage, p)
		}
	}
	return o.Probabilities, nil
}

func (o Options) closedIn(t time.Time) bool {
	return (o.ClosedFrom.IsZero() || !t.Before(o.ClosedFrom)) && (o.ClosedTo.IsZero() || t.Before(o.ClosedTo))
}

// Money is an amount in minor units of one currency.
type Money struct {
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
}

// Report is the state of the pipeline, as computed by Summary.
type Report struct {
	// Stages holds the open opportunities of every stage, in pipeline
	// order, including empty stages.
	Stages []StageSummary `json:"stages"`
	// Currencies holds the money figures per currency, by currency code.
	Currencies []CurrencySummary `json:"currencies"`
	// Open, Won and Lost count opportunities (Won and Lost within the
	// closed window).
	Open int `json:"open"`
	Won  int `json:"won"`
	Lost int `json:"lost"`
	// WinRate is Won ÷ (Won + Lost), 0 when nothing closed.
	WinRate float64 `json:"winRate"`
	// AverageCycleSeconds is the mean time from opening to winning or
	// losing, in seconds (whole seconds).
	AverageCycleSeconds float64 `json:"averageCycleSeconds"`
}

// StageSummary describes one stage.
type StageSummary struct {
	Stage       domain.OpportunityStage `json:"stage"`
	Probability float64                 `json:"probability"`
	// Open counts the open opportunities in the stage; Amounts and
	// Weighted are their amounts and probability-weighted amounts per
	// currency, by currency code.
	Open     int     `json:"open"`
	Amounts  []Money `json:"amounts"`
	Weighted []Money `json:"weighted"`
	// AverageAgeSeconds is the mean time the open opportunities have spent
	// in the stage so far, at Options.Now, in seconds (whole seconds).
	AverageAgeSeconds float64 `json:"averageAgeSeconds"`
	// Visits counts completed stays in the stage (left by a stage change,
	// a win or a loss) and AverageTimeSeconds is their mean duration in
	// seconds (whole seconds).
	Visits             int64   `json:"visits"`
	AverageTimeSeconds float64 `json:"averageTimeSeconds"`
}

// CurrencySummary holds the money figures of one currency.
type CurrencySummary struct {
	Currency   string `json:"currency"`
	Open       int    `json:"open"`
	OpenAmount int64  `json:"openAmount"`
	// WeightedForecast is Σ amount × p(stage) over open opportunities.
	WeightedForecast int64 `json:"weightedForecast"`
	Won              int   `json:"won"`
	WonAmount        int64 `json:"wonAmount"`
	// AverageDealSize is WonAmount ÷ Won, 0 without wins.
	AverageDealSize int64 `json:"averageDealSize"`
	// Velocity is the expected revenue per day, in minor units:
	// Open × win rate × WonAmount/Won ÷ average cycle in days.
	Velocity float64 `json:"velocity"`
}

// scan calls fn for every stored opportunity, in key order.
func scan(ctx context.Context, r projections.Reader, fn func(record) error) error {
	return r.Scan(ctx, keyPrefix, "", func(key string, value []byte) (bool, error) {
		var rec record
		if err := json.Unmarshal(value, &rec); err != nil {
			return false, fmt.Errorf("pipeline: decode %q: %w", key, err)
		}
		return true, fn(rec)
	})
}

// currencies accumulates per-currency figures in a deterministic order.
type currencies map[string]*CurrencySummary

func (c currencies) get(code string) *CurrencySummary {
	s, ok := c[code]
	if !ok {
		s = &CurrencySummary{Currency: code}
		c[code] = s
	}
	return s
}

func (c currencies) sorted() []CurrencySummary {
	out := make([]CurrencySummary, 0, len(c))
	for _, s := range c {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b CurrencySummary) int { return strings.Compare(a.Currency, b.Currency) })
	return out
}

// Summary computes the pipeline figures from the stored opportunities.
func Summary(ctx context.Context, r projections.Reader, opts Options) (Report, error) {
	probs, err := opts.probabilities()
	if err != nil {
		return Report{}, err
	}
	type stageAcc struct {
		open         int
		amounts      map[string]int64
		ageSeconds   int64
		visits, secs int64
	}
	acc := map[domain.OpportunityStage]*stageAcc{}
	for _, s := range Stages {
		acc[s] = &stageAcc{amounts: map[string]int64{}}
	}
	cur := currencies{}
	var sum Report
	var cycleSeconds int64
	err = scan(ctx, r, func(rec record) error {
		for stage, n := range rec.Visits {
			if a, ok := acc[stage]; ok {
				a.visits += n
				a.secs += rec.Seconds[stage]
			}
		}
		switch rec.Outcome {
		case domain.OutcomeOpen:
			sum.Open++
			if a, ok := acc[rec.Stage]; ok {
				a.open++
				a.ageSeconds += max(0, int64(opts.Now.Sub(rec.StageSince)/time.Second))
				if rec.Currency != "" {
					a.amounts[rec.Currency] += rec.Amount
				}
			}
			if rec.Currency != "" {
				c := cur.get(rec.Currency)
				c.Open++
				c.OpenAmount += rec.Amount
			}
		case domain.OutcomeWon, domain.OutcomeLost:
			if !opts.closedIn(rec.ClosedAt) {
				return nil
			}
			cycleSeconds += max(0, int64(rec.ClosedAt.Sub(rec.OpenedAt)/time.Second))
			if rec.Outcome == domain.OutcomeLost {
				sum.Lost++
				return nil
			}
			sum.Won++
			if rec.Currency != "" {
				c := cur.get(rec.Currency)
				c.Won++
				c.WonAmount += rec.Amount
			}
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	if closed := sum.Won + sum.Lost; closed > 0 {
		sum.WinRate = float64(sum.Won) / float64(closed)
		sum.AverageCycleSeconds = meanSeconds(cycleSeconds, int64(closed))
	}
	weighted := map[string]float64{}
	for _, stage := range Stages {
		a, p := acc[stage], probs[stage]
		ss := StageSummary{Stage: stage, Probability: p, Open: a.open, Visits: a.visits, Amounts: []Money{}, Weighted: []Money{}}
		for _, code := range sortedKeys(a.amounts) {
			ss.Amounts = append(ss.Amounts, Money{code, a.amounts[code]})
			ss.Weighted = append(ss.Weighted, Money{code, int64(math.Round(float64(a.amounts[code]) * p))})
			weighted[code] += float64(a.amounts[code]) * p
		}
		if a.open > 0 {
			ss.AverageAgeSeconds = meanSeconds(a.ageSeconds, int64(a.open))
		}
		if a.visits > 0 {
			ss.AverageTimeSeconds = meanSeconds(a.secs, a.visits)
		}
		sum.Stages = append(sum.Stages, ss)
	}
	cycleDays := sum.AverageCycleSeconds / 86400
	for code, c := range cur {
		c.WeightedForecast = int64(math.Round(weighted[code]))
		if c.Won > 0 {
			deal := float64(c.WonAmount) / float64(c.Won)
			c.AverageDealSize = int64(math.Round(deal))
			if cycleDays > 0 {
				c.Velocity = float64(c.Open) * sum.WinRate * deal / cycleDays
			}
		}
	}
	sum.Currencies = cur.sorted()
	return sum, nil
}

// ForecastMonth is the open pipeline expected to close in one month.
type ForecastMonth struct {
	// Month is the expected close month, YYYY-MM.
	Month string `json:"month"`
	Open  int    `json:"open"`
	// Overdue counts the opportunities whose expected close date is
	// before the day of Options.Now (UTC) and that are still open.
	Overdue  int     `json:"overdue"`
	Amounts  []Money `json:"amounts"`
	Weighted []Money `json:"weighted"`
}

// Forecast groups the open opportunities by the month of their expected
// close date, in month order, with amounts and weighted amounts per
// currency (weighted: Σ amount × p(stage), rounded once per month and
// currency). Opportunities without an expected close date are left out.
func Forecast(ctx context.Context, r projections.Reader, opts Options) ([]ForecastMonth, error) {
	probs, err := opts.probabilities()
	if err != nil {
		return nil, err
	}
	today := opts.Now.UTC().Format(time.DateOnly)
	type monthAcc struct {
		open, overdue int
		amounts       map[domain.OpportunityStage]map[string]int64 // stage → currency → amount
	}
	months := map[string]*monthAcc{}
	err = scan(ctx, r, func(rec record) error {
		if rec.Outcome != domain.OutcomeOpen || len(rec.ExpectedClose) < 7 || rec.Currency == "" {
			return nil
		}
		month := rec.ExpectedClose[:7]
		m := months[month]
		if m == nil {
			m = &monthAcc{amounts: map[domain.OpportunityStage]map[string]int64{}}
			months[month] = m
		}
		m.open++
		if rec.ExpectedClose < today {
			m.overdue++
		}
		if m.amounts[rec.Stage] == nil {
			m.amounts[rec.Stage] = map[string]int64{}
		}
		m.amounts[rec.Stage][rec.Currency] += rec.Amount
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := []ForecastMonth{}
	for _, month := range sortedKeys(months) {
		m := months[month]
		total := map[string]int64{}
		weighted := map[string]float64{}
		for _, byCurrency := range m.amounts {
			for code, amount := range byCurrency {
				total[code] += amount
			}
		}
		// Weight in a fixed stage order, so that the float sum does not
		// depend on map order.
		for _, code := range sortedKeys(total) {
			for _, stage := range Stages {
				weighted[code] += float64(m.amounts[stage][code]) * probs[stage]
			}
		}
		f := ForecastMonth{Month: month, Open: m.open, Overdue: m.overdue, Amounts: []Money{}, Weighted: []Money{}}
		for _, code := range sortedKeys(total) {
			f.Amounts = append(f.Amounts, Money{code, total[code]})
			f.Weighted = append(f.Weighted, Money{code, int64(math.Round(weighted[code]))})
		}
		out = append(out, f)
	}
	return out, nil
}

// meanSeconds is total ÷ n rounded to whole seconds.
func meanSeconds(total, n int64) float64 {
	return math.Round(float64(total) / float64(n))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
