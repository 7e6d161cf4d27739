package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

// baseHistory is a base of n customers, deterministic for a seed: each
// buys a first time within two years before rfmNow, then again at their
// own rate until they drop out; orders in EUR (some in USD or JPY),
// refunds and survey answers mixed in, a few customers who only answer
// surveys, and one forgotten customer.
func baseHistory(seed uint64, n int) ([]domain.Envelope, []uuid.UUID) {
	rng := rand.New(rand.NewPCG(seed, 99))
	var s projectiontest.Log
	var out []domain.Envelope
	var ids []uuid.UUID
	start := rfmNow.AddDate(-2, 0, 0)
	seq := 0
	for i := range n {
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "customer-%d-%d", seed, i))
		ids = append(ids, id)
		if i%25 == 7 {
			out = append(out, s.Add(id, start.Add(time.Duration(rng.IntN(700*24))*time.Hour), domain.SurveyAnswered{Survey: "nps-q1", NPS: ptr(rng.IntN(11))}))
			continue
		}
		currency := []string{"EUR", "EUR", "EUR", "USD", "JPY"}[rng.IntN(5)]
		at := start.Add(time.Duration(rng.IntN(700*24)) * time.Hour)
		gapDays := 5 + rng.Float64()*120
		dropout := rng.Float64() * 0.6
		for at.Before(rfmNow) {
			seq++
			p := purchase(seq, int64(500+rng.IntN(40_000)), currency)
			out = append(out, s.Add(id, at, p))
			if rng.IntN(12) == 0 {
				out = append(out, s.Add(id, at.Add(48*time.Hour), domain.RefundIssued{
					RefundID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "refund-%d", seq)), OrderID: p.OrderID, Amount: p.Amount / 2, Currency: currency, Reason: "Rücksendung",
				}))
			}
			if rng.Float64() < dropout {
				break // dropped out
			}
			at = at.Add(time.Duration(rng.ExpFloat64() * gapDays * float64(24*time.Hour)))
		}
		if rng.IntN(4) == 0 {
			out = append(out, s.Add(id, at.Add(-time.Hour), domain.SurveyAnswered{Survey: "nps-q1", NPS: ptr(rng.IntN(11))}))
		}
	}
	out = append(out, s.Add(ids[3], rfmNow.Add(-time.Hour), domain.CustomerForgotten{Request: "DSR-1", Reason: "GDPR art. 17"}))
	// Events arrive out of order in a real log; Add numbered them in
	// order, which the projection does not rely on.
	return out, ids
}

// foldCustomers folds events into the active customers read model of b.
func foldCustomers(t *testing.T, b projections.Backend, events []domain.Envelope) {
	t.Helper()
	ctx := context.Background()
	ns := projections.NamespaceFor(analytics.CustomersName, 1, 1)
	if err := projections.ApplyBatch(ctx, b, ns, analytics.NewCustomers(analytics.Config{}), events); err != nil {
		t.Fatal(err)
	}
	if err := b.Activate(ctx, analytics.CustomersName, ns); err != nil {
		t.Fatal(err)
	}
}

// The stored fit scores every customer as a fresh LoadBase over the same
// history as of the same date does, to the digit: RFM scores and segments,
// churn, P(alive), expected purchases; and the full list alike.
func TestStoredFitEqualsFreshFit(t *testing.T) {
	ctx := context.Background()
	events, ids := baseHistory(5, 400)
	asOf := rfmNow.AddDate(0, -1, 0) // an analysis date before the last purchases
	calEnd := asOf.AddDate(0, -4, 0)
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		foldCustomers(t, b, events)
		if f, ok, err := analytics.LoadFit(ctx, b); f != nil || ok || err != nil {
			t.Fatalf("LoadFit before any fit: %v %v %v", f, ok, err)
		}
		for _, tc := range []struct {
			name string
			opts analytics.FitOptions
		}{
			{"as of the clock", analytics.FitOptions{Now: rfmNow}},
			{"as of an analysis date", analytics.FitOptions{Now: rfmNow, AsOf: asOf, Pinned: true, Horizon: 30}},
			{"with a calibration end", analytics.FitOptions{Now: rfmNow, AsOf: asOf, Pinned: true, CalibrationEnd: calEnd}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				fit, err := analytics.FitAndSave(ctx, b, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				stored, ok, err := analytics.LoadFit(ctx, b)
				if err != nil || !ok {
					t.Fatalf("LoadFit: %v %v", ok, err)
				}
				if !reflect.DeepEqual(*stored, fit) {
					t.Fatalf("stored fit differs from the returned one:\n%+v\n%+v", *stored, fit)
				}
				if fit.BGNBD == nil {
					t.Fatalf("no BG/NBD fit: %s", fit.NoFit)
				}
				at := tc.opts.AsOf
				if at.IsZero() {
					at = tc.opts.Now
				}
				opts := analytics.Options{Horizon: tc.opts.Horizon}
				if !tc.opts.CalibrationEnd.IsZero() {
					// The fresh computation takes the parameters fitted
					// on the calibration period; the fit itself is
					// checked against FitBGNBD in TestFitModelCalibration.
					opts.Model = fit.BGNBD
				}
				fresh, err := projectiontest.Query(t, b, activeNS(t, b), func(ctx context.Context, r projections.Reader) (*analytics.Base, error) {
					return analytics.LoadBase(ctx, r, at, opts)
				})
				if err != nil {
					t.Fatal(err)
				}
				if m, ok := fresh.Model(); !ok || m != *fit.BGNBD {
					t.Errorf("fresh model %+v, stored %+v", m, *fit.BGNBD)
				}
				scored := 0
				// The stored distribution counts the very figures each
				// customer's score shows.
				risk, alive := make([]int, analytics.RiskBuckets), make([]int, analytics.RiskBuckets)
				bucket := func(x float64) int { return min(int(x*analytics.RiskBuckets), analytics.RiskBuckets-1) }
				for _, id := range ids {
					want, werr := fresh.Score(id)
					got, gerr := projectiontest.Query(t, b, activeNS(t, b), func(ctx context.Context, r projections.Reader) (analytics.Score, error) {
						return analytics.ScoreFrom(ctx, r, id, stored, time.Now())
					})
					if (werr == nil) != (gerr == nil) || (werr != nil && !errors.Is(gerr, projections.ErrNotFound)) {
						t.Fatalf("%s: fresh err %v, stored err %v", id, werr, gerr)
					}
					if werr != nil {
						continue
					}
					if got.Model == nil || !got.Model.AsOf.Equal(stored.AsOf) || got.Model.Position != stored.Position {
						t.Errorf("%s: model info %+v, want the stored fit's", id, got.Model)
					}
					got.Model = nil
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s:\nstored %s\nfresh  %s", id, show(got), show(want))
					}
					if want.Segment != "" {
						scored++
					}
					if want.ChurnRisk != nil {
						risk[bucket(*want.ChurnRisk)]++
					}
					if want.PAlive != nil {
						alive[bucket(*want.PAlive)]++
					}
				}
				d := stored.Distribution
				switch {
				case d == nil:
					t.Fatal("the fit stores no distribution")
				case !reflect.DeepEqual(d.ChurnRisk, risk) || !reflect.DeepEqual(d.PAlive, alive):
					t.Errorf("distribution %+v, want churn %v, P(alive) %v", *d, risk, alive)
				case sum(risk)+d.ChurnRiskUnscored != stored.Buyers || sum(alive)+d.PAliveUnscored != stored.Buyers:
					t.Errorf("distribution %+v does not count the %d buyers", *d, stored.Buyers)
				case sum(risk) < 300:
					t.Errorf("only %d buyers in the churn histogram", sum(risk))
				}
				if scored < 300 {
					t.Errorf("only %d customers scored", scored)
				}
				list, err := projectiontest.Query(t, b, activeNS(t, b), func(ctx context.Context, r projections.Reader) ([]analytics.CustomerRFM, error) {
					out := []analytics.CustomerRFM{}
					return out, analytics.ScoreAll(ctx, r, stored, func(c analytics.CustomerRFM) error {
						out = append(out, c)
						return nil
					})
				})
				if err != nil {
					t.Fatal(err)
				}
				if want := fresh.Customers(); !reflect.DeepEqual(list, want) {
					t.Errorf("ScoreAll differs from the fresh RFM list (%d vs %d entries)", len(list), len(want))
				}
			})
		}
	})
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func activeNS(t *testing.T, b projections.Backend) string {
	t.Helper()
	ns, err := b.Active(context.Background(), analytics.CustomersName)
	if err != nil || ns == "" {
		t.Fatalf("active %q %v", ns, err)
	}
	return ns
}

func show(s analytics.Score) string {
	return fmt.Sprintf("%+v churn=%v rhythm=%v alive=%v exp=%v", s.CustomerRFM, deref(s.ChurnRisk), deref(s.RhythmDays), deref(s.PAlive), deref(s.ExpectedPurchases))
}

// With a calibration end the parameters are those FitBGNBD gives on the
// history up to it, and the validation adds up what happened after.
func TestFitModelCalibration(t *testing.T) {
	ctx := context.Background()
	events, _ := baseHistory(8, 400)
	b := projections.NewMemory()
	foldCustomers(t, b, events)
	asOf := rfmNow
	calEnd := rfmNow.AddDate(0, -6, 0)
	// The same history cut at the calibration end, folded apart, is what
	// the fit must have used: the fresh fit as of calEnd of only the
	// purchases up to calEnd's day.
	var cut []domain.Envelope
	endDay := time.Date(calEnd.Year(), calEnd.Month(), calEnd.Day()+1, 0, 0, 0, 0, time.UTC)
	for _, e := range events {
		if _, ok := e.Event.(domain.PurchaseCompleted); !ok || e.Metadata.OccurredAt.Before(endDay) {
			cut = append(cut, e)
		}
	}
	r := projectiontest.Fold(t, projections.NewMemory(), analytics.NewCustomers(analytics.Config{}), cut)
	calBase, err := analytics.LoadBase(ctx, r, calEnd, analytics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, ok := calBase.Model()
	if !ok {
		t.Fatal("no fit on the calibration period")
	}
	fit, err := analytics.FitAndSave(ctx, b, analytics.FitOptions{Now: rfmNow, AsOf: asOf, CalibrationEnd: calEnd, Pinned: true})
	if err != nil {
		t.Fatal(err)
	}
	if fit.BGNBD == nil || *fit.BGNBD != want {
		t.Errorf("calibration fit %+v, want %+v", fit.BGNBD, want)
	}
	v := fit.Validation
	if v == nil || v.HoldoutDays != int(asOf.Sub(calEnd).Hours()/24) || v.Customers != fit.FitCustomers || v.Actual <= 0 || v.Predicted <= 0 {
		t.Fatalf("validation %+v (fit customers %d)", v, fit.FitCustomers)
	}
	var sumC int
	var sumA float64
	for _, row := range v.ByRepeats {
		sumC += row.Customers
		sumA += row.Actual * float64(row.Customers)
	}
	if sumC != v.Customers || int64(sumA+0.5) != v.Actual {
		t.Errorf("rows add up to %d customers and %v purchases, want %d and %d", sumC, sumA, v.Customers, v.Actual)
	}
	t.Logf("holdout: predicted %.1f, actual %d purchase days over %d customers", v.Predicted, v.Actual, v.Customers)

	if _, err := analytics.FitAndSave(ctx, b, analytics.FitOptions{Now: rfmNow, AsOf: asOf, CalibrationEnd: asOf}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("calibration end on the analysis date: err %v, want ErrInvalid", err)
	}
}

// Without a stored fit a customer's facts are there, and the figures that
// need the model are absent with the reason.
func TestScoreFromWithoutFit(t *testing.T) {
	ctx := context.Background()
	r := projectiontest.Fold(t, projections.NewMemory(), analytics.NewCustomers(analytics.Config{}), rfmScenario())
	s, err := analytics.ScoreFrom(ctx, r, c3, nil, rfmNow)
	if err != nil {
		t.Fatal(err)
	}
	if s.Unscored == "" || s.Segment != "" || s.RFMScore != (analytics.RFMScore{}) || s.PAlive != nil || s.Model != nil {
		t.Errorf("no fit: %+v", s)
	}
	// c3 bought once: no rhythm of their own, and the pooled one is the
	// fit's. Facts are there.
	if s.RecencyDays != 5 || s.Orders != 1 || s.MonetaryValue != 5_000 || s.ChurnRisk != nil {
		t.Errorf("no fit, facts: %+v churn %v", s.CustomerRFM, deref(s.ChurnRisk))
	}
	if _, err := analytics.ScoreFrom(ctx, r, c12, nil, rfmNow); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("forgotten customer: %v", err)
	}
	b := projections.NewMemory()
	if f, ok, err := analytics.LoadFit(ctx, b); f != nil || ok || err != nil {
		t.Errorf("LoadFit on an empty backend: %v %v %v", f, ok, err)
	}
}
