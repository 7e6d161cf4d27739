package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
)

func init() {
	register(command{name: "analytics", short: "the analytics model: 'analytics fit' fits and stores it, 'analytics model' prints it", flags: analyticsCommand,
		subs: []command{
			{name: "fit", short: "fit the analytics model over the customers read model and store it for every read (--as-of pins the analysis date)", flags: analyticsFitCommand},
			{name: "model", short: "print the stored analytics model", flags: analyticsModelCommand},
		},
	})
}

// analyticsCommand is run only without a known subcommand: analytics fit
// and analytics model are its children.
func analyticsCommand(*pflag.FlagSet) func(context.Context, *env) error {
	return func(_ context.Context, e *env) error {
		if len(e.args) == 0 {
			return usageErr("analytics needs fit or model")
		}
		return usageErr("analytics %q: want fit or model", e.args[0])
	}
}

// analyticsFitCommand fits the analytics model and stores it.
func analyticsFitCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	asOf := fs.String("as-of", "", "the analysis date (RFC 3339 or YYYY-MM-DD; default now): recency, churn and the model's T count to it, and the background fitter keeps it")
	calEnd := fs.String("calibration-end", "", "fit the BG/NBD parameters on the history up to this day and validate them on the rest, up to the analysis date")
	horizon := fs.Int("horizon", 0, "days of expected purchases (default 90)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("analytics fit takes no arguments")
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
		if err := e.open(ctx); err != nil {
			return err
		}
		return withReadModels(ctx, e, func(b projections.Backend) error {
			start := time.Now()
			out, err := query.New(b).FitModel(ctx, opts)
			if err != nil {
				return err
			}
			e.log.Info("analytics model fitted", "as_of", out.AsOf.Format(time.DateOnly), "buyers", out.Buyers, "took", time.Since(start).Round(time.Millisecond))
			return printJSON(e.stdout, out)
		})
	}
}

// analyticsModelCommand prints the stored analytics model.
func analyticsModelCommand(*pflag.FlagSet) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("analytics model takes no arguments")
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		return withReadModels(ctx, e, func(b projections.Backend) error {
			out, err := query.New(b).Model(ctx)
			if err != nil {
				return err
			}
			return printJSON(e.stdout, out)
		})
	}
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// startAnalyticsFitter runs the background fitter of the analytics model
// over b until ctx ends (see analytics.Fitter); the returned function
// waits for it to stop. Among several processes on one backend only the
// holder of the lease "fitter/analytics" fits (lease tunes it; its Name is
// set here): one fit per change, not one per process.
func startAnalyticsFitter(ctx context.Context, b projections.Backend, lease projections.LeaseConfig, log *slog.Logger) (wait func()) {
	done := make(chan struct{})
	lease.Name = "fitter/analytics"
	flog := log.With("component", "analytics-fitter")
	go func() {
		defer close(done)
		err := projections.RunOwned(ctx, b, lease, func(ctx context.Context, _ projections.Lease) error {
			f := &analytics.Fitter{Backend: b, Log: flog}
			return f.Run(ctx)
		})
		if err != nil {
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
