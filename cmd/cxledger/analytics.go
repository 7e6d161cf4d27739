package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
)

func init() {
	register(command{"analytics", "the analytics model: 'analytics fit [--as-of DATE] [--calibration-end DATE]' fits and stores it, 'analytics model' prints it", analyticsCommand})
}

// analyticsCommand fits the analytics model (fit) or prints the stored one
// (model). Its flags may come before or after the subcommand.
func analyticsCommand(fs *flag.FlagSet) func(context.Context, *env) error {
	asOf := fs.String("as-of", "", "fit: the analysis date (RFC 3339 or YYYY-MM-DD; default now): recency, churn and the model's T count to it, and the background fitter keeps it")
	calEnd := fs.String("calibration-end", "", "fit: fit the BG/NBD parameters on the history up to this day and validate them on the rest, up to the analysis date")
	horizon := fs.Int("horizon", 0, "fit: days of expected purchases (default 90)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) == 0 {
			return usageErr("want a subcommand: fit or model")
		}
		sub := e.args[0]
		if err := fs.Parse(e.args[1:]); err != nil {
			return usageErr("%v", err)
		}
		if fs.NArg() > 0 {
			return usageErr("unexpected argument %q", fs.Arg(0))
		}
		var opts analytics.FitOptions
		var err error
		if opts.AsOf, err = cliTime("--as-of", *asOf); err != nil {
			return err
		}
		if opts.CalibrationEnd, err = cliTime("--calibration-end", *calEnd); err != nil {
			return err
		}
		if *horizon < 0 {
			return usageErr("--horizon must not be negative")
		}
		if !opts.CalibrationEnd.IsZero() {
			asOfDay := opts.AsOf
			if asOfDay.IsZero() {
				asOfDay = time.Now()
			}
			if day := func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }; !day(opts.CalibrationEnd).Before(day(asOfDay)) {
				return usageErr("--calibration-end %s must be a day before the analysis date %s", *calEnd, asOfDay.UTC().Format(time.DateOnly))
			}
		}
		opts.Horizon = *horizon
		return withReadModels(ctx, e, func(b projections.Backend) error {
			q := query.New(b)
			var out analytics.Fit
			var err error
			switch sub {
			case "fit":
				start := time.Now()
				out, err = q.FitModel(ctx, opts)
				if err == nil {
					e.log.Info("analytics model fitted", "as_of", out.AsOf.Format(time.DateOnly), "buyers", out.Buyers, "took", time.Since(start).Round(time.Millisecond))
				}
			case "model":
				out, err = q.Model(ctx)
			default:
				return usageErr("unknown subcommand %q: want fit or model", sub)
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		})
	}
}

// startAnalyticsFitter runs the background fitter of the analytics model
// over b until ctx ends (see analytics.Fitter); the returned function
// waits for it to stop.
func startAnalyticsFitter(ctx context.Context, b projections.Backend, log *slog.Logger) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f := &analytics.Fitter{Backend: b, Log: log.With("component", "analytics-fitter")}
		if err := f.Run(ctx); err != nil {
			log.Error("analytics fitter stopped", "error", err)
		}
	}()
	return func() { <-done }
}

// refitAnalytics refits the analytics model after a replay that rebuilt
// the customers read model (one of ps), keeping an analyst's pinned dates,
// so that reads score against the rebuilt base.
func refitAnalytics(ctx context.Context, b projections.Backend, ps []projections.Projection, stdout io.Writer) error {
	if !slices.ContainsFunc(ps, func(p projections.Projection) bool { return p.Name() == analytics.CustomersName }) {
		return nil
	}
	cur, _, err := analytics.LoadFit(ctx, b)
	if err != nil {
		return err
	}
	fit, err := analytics.Refit(ctx, b, cur, time.Now(), 0)
	if err != nil {
		return fmt.Errorf("refit the analytics model: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "analytics model fitted as of %s over %d buyers\n", fit.AsOf.Format(time.DateOnly), fit.Buyers)
	return err
}
