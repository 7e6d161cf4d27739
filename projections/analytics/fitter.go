package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cxledger/cxledger/projections"
)

// Fitter keeps the stored Fit current in the background, so that no read
// ever fits the model: every Interval it refits when there is no fit yet,
// when the day has turned (an unpinned fit is as of its clock's day), when
// the customers read model has moved MinEvents log positions past the
// fit (any move past a fit of an empty base), or when it has moved at all
// and the fit is older than MaxAge. A pinned fit (an analyst's analysis
// date) keeps its dates when refitted.
type Fitter struct {
	// Backend holds the customers read model and the stored fit.
	Backend projections.Backend
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Interval is how often the fitter checks (default one minute).
	Interval time.Duration
	// MinEvents is how far the customers read model's checkpoint must move
	// past the fit's position to refit at once (default 1000).
	MinEvents uint64
	// MaxAge refits a fit this old once anything changed (default one hour).
	MaxAge time.Duration
	// Horizon is FitOptions.Horizon for unpinned fits.
	Horizon int
	// Log receives a line per fit and per failure (default slog.Default).
	Log *slog.Logger
}

func (f *Fitter) setDefaults() {
	if f.Now == nil {
		f.Now = time.Now
	}
	if f.Interval <= 0 {
		f.Interval = time.Minute
	}
	if f.MinEvents == 0 {
		f.MinEvents = 1000
	}
	if f.MaxAge <= 0 {
		f.MaxAge = time.Hour
	}
	if f.Log == nil {
		f.Log = slog.Default()
	}
}

// Run checks at once and then every Interval until ctx ends; it returns
// nil then. Until a model of a non-empty base is stored it checks every
// few seconds instead (a new server's read models are catching up). A failed check is
// logged and retried at the next tick.
func (f *Fitter) Run(ctx context.Context) error {
	f.setDefaults()
	for {
		if _, err := f.Check(ctx); err != nil && ctx.Err() == nil {
			f.Log.Warn("analytics model fit failed", "error", err)
		}
		wait := f.Interval
		if cur, ok, err := LoadFit(ctx, f.Backend); err == nil && (!ok || cur.Buyers == 0) {
			wait = min(wait, firstFitRetry)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// firstFitRetry is how often Run checks while no model is stored yet.
const firstFitRetry = 5 * time.Second

// Check refits and stores the model if it is due (see Fitter), and
// reports whether it did. Before the customers read model exists there
// is nothing to fit: false, nil.
func (f *Fitter) Check(ctx context.Context) (bool, error) {
	f.setDefaults()
	ns, err := f.Backend.Active(ctx, CustomersName)
	if err != nil || ns == "" {
		return false, err
	}
	pos, err := f.Backend.Checkpoint(ctx, ns)
	if err != nil {
		return false, err
	}
	cur, ok, err := LoadFit(ctx, f.Backend)
	if err != nil {
		return false, err
	}
	now := f.Now()
	if ok && !f.due(cur, pos, now) {
		return false, nil
	}
	start := time.Now()
	fit, err := Refit(ctx, f.Backend, cur, now, f.Horizon)
	if err != nil {
		if errors.Is(err, projections.ErrNotActive) {
			return false, nil
		}
		return false, fmt.Errorf("analytics: background fit: %w", err)
	}
	f.Log.Info("analytics model fitted", "as_of", fit.AsOf.Format(time.DateOnly), "position", fit.Position,
		"buyers", fit.Buyers, "fitted", fit.BGNBD != nil, "took", time.Since(start).Round(time.Millisecond))
	return true, nil
}

// due reports whether cur should be refitted with the read model at pos.
func (f *Fitter) due(cur *Fit, pos uint64, now time.Time) bool {
	switch {
	case !cur.Pinned && dayNumber(now) != dayNumber(cur.AsOf):
		return true
	case pos <= cur.Position:
		return false
	case pos-cur.Position >= f.MinEvents, cur.Buyers == 0:
		// A model of an empty base (fitted while the read model was
		// still catching up) is replaced as soon as anything arrives.
		return true
	}
	return now.Sub(cur.FittedAt) >= f.MaxAge
}

// Refit fits and stores the model again at now, keeping the analysis date,
// calibration end and horizon of cur when an analyst pinned them (cur may
// be nil); otherwise as of now with horizon days (0: 90).
func Refit(ctx context.Context, b projections.Backend, cur *Fit, now time.Time, horizon int) (Fit, error) {
	opts := FitOptions{Now: now, Horizon: horizon}
	if cur != nil && cur.Pinned {
		opts.AsOf, opts.Pinned, opts.Horizon = cur.AsOf, true, cur.HorizonDays
		if cur.CalibrationEnd != nil {
			opts.CalibrationEnd = *cur.CalibrationEnd
		}
	}
	return FitAndSave(ctx, b, opts)
}
