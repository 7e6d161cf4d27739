package analytics_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
)

// The fitter fits when there is no model, refits when the read model has
// moved far enough, when a changed model grows old, and when the day
// turns; a pinned analysis date survives its refits.
func TestFitterRefitsWhenDue(t *testing.T) {
	ctx := context.Background()
	b := projections.NewMemory()
	clock := rfmNow
	f := &analytics.Fitter{Backend: b, Now: func() time.Time { return clock }, MinEvents: 50, MaxAge: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	check := func(step string, want bool) *analytics.Fit {
		t.Helper()
		got, err := f.Check(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got != want {
			t.Fatalf("%s: refitted %v, want %v", step, got, want)
		}
		fit, _, err := analytics.LoadFit(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return fit
	}
	check("no read model yet", false)

	events, _ := baseHistory(11, 120)
	// A read model that exists but holds nothing yet (the engine has just
	// opened it): the model of the empty base goes as soon as anything
	// arrives.
	foldCustomers(t, b, nil)
	if fit := check("empty base", true); fit == nil || fit.Buyers != 0 {
		t.Fatalf("empty base: %+v", fit)
	}
	check("empty base, nothing changed", false)
	ns := projections.NamespaceFor(analytics.CustomersName, 1, 1)
	apply := func(evs ...int) {
		t.Helper()
		for _, i := range evs {
			if err := projections.ApplyBatch(ctx, b, ns, analytics.NewCustomers(analytics.Config{}), events[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(0)
	check("one event after an empty base", true)
	if err := projections.ApplyBatch(ctx, b, ns, analytics.NewCustomers(analytics.Config{}), events[1:len(events)-100]); err != nil {
		t.Fatal(err)
	}
	fit := check("first fit", true)
	if fit == nil || !fit.FittedAt.Equal(rfmNow) || !fit.AsOf.Equal(rfmNow) || fit.Position == 0 {
		t.Fatalf("first fit %+v", fit)
	}
	check("nothing changed", false)

	apply(len(events) - 100)
	clock = clock.Add(10 * time.Minute)
	check("one event, young fit", false)
	clock = clock.Add(time.Hour)
	if fit = check("one event, old fit", true); !fit.FittedAt.Equal(clock) {
		t.Errorf("fitted at %v, want %v", fit.FittedAt, clock)
	}
	for i := len(events) - 99; i < len(events)-40; i++ {
		apply(i)
	}
	clock = clock.Add(time.Minute)
	check("59 events", true)

	clock = time.Date(rfmNow.Year(), rfmNow.Month(), rfmNow.Day()+1, 0, 5, 0, 0, time.UTC)
	if fit = check("the day turned", true); !fit.AsOf.Equal(clock) {
		t.Errorf("as of %v, want %v", fit.AsOf, clock)
	}

	// An analyst pins an analysis date: the fitter keeps it.
	asOf := rfmNow.AddDate(0, -2, 0)
	if _, err := analytics.FitAndSave(ctx, b, analytics.FitOptions{Now: clock, AsOf: asOf, Pinned: true}); err != nil {
		t.Fatal(err)
	}
	clock = clock.AddDate(0, 0, 1)
	check("pinned, the day turned, nothing changed", false)
	for i := len(events) - 40; i < len(events); i++ {
		apply(i)
	}
	if fit = check("pinned, 40 events, old fit", true); !fit.Pinned || !fit.AsOf.Equal(asOf) {
		t.Errorf("pinned fit refitted as %+v", fit)
	}
}
