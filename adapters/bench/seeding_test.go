package bench

import (
	"context"
	"math"
	"testing"

	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
)

// appendOnly hides a store's import path.
type appendOnly struct{ eventstore.Store }

// TestSeedConfigReachesEvents: a population too small for Events at the
// default span gets a longer one, and its log then holds about Events;
// otherwise the population is the default one.
func TestSeedConfigReachesEvents(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		lengthens bool
	}{
		{"customers as Events needs", Config{Events: 5000, HeavyEvents: 500}, false},
		{"customers that already hold Events", Config{Customers: 150, Events: 5000, HeavyEvents: 500}, false},
		{"customers that need longer histories", Config{Customers: 150, Events: 20_000, HeavyEvents: 1000}, true},
		{"without a heavy account", Config{Customers: 100, Events: 9000}, true},
		{"the heavy account alone", Config{Customers: 1, Events: 500, HeavyEvents: 500}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Seed = 1
			sc, err := seedConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if lengthened := sc.Span > seed.DefaultSpan; lengthened != tc.lengthens || (!tc.lengthens && sc.Span != 0) {
				t.Fatalf("span %v, want lengthened %v", sc.Span, tc.lengthens)
			}
			sum, s, err := seedLog(context.Background(), memstore.New(memstore.Config{}), sc, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.Method != SeededByImport || s.SpanDays != spanOf(sc) || s.Events != sum.Events || s.Operations != sum.Customers {
				t.Errorf("seeding %+v, summary %+v", s, sum)
			}
			if tc.cfg.Customers > 0 && sum.Customers > tc.cfg.Customers || sum.Events > tc.cfg.Events {
				t.Errorf("%d customers, %d events: beyond %d customers, %d events", sum.Customers, sum.Events, tc.cfg.Customers, tc.cfg.Events)
			}
			if tc.lengthens && (sum.Customers < tc.cfg.Customers*97/100 || math.Abs(float64(sum.Events)/float64(tc.cfg.Events)-1) > 0.05) {
				t.Errorf("%d customers hold %d events over %.0f days, want about %d customers holding %d", sum.Customers, sum.Events, s.SpanDays, tc.cfg.Customers, tc.cfg.Events)
			}
			t.Logf("%d customers, %d events over %.0f days", sum.Customers, sum.Events, s.SpanDays)
		})
	}
}

// TestSeedLogFallsBackToAppends: a store without an import path is
// seeded by appends, with the same outcome.
func TestSeedLogFallsBackToAppends(t *testing.T) {
	ctx := context.Background()
	sc := seed.Config{Customers: 80, Seed: 2, HeavyEvents: 700}
	imported, byImport, err := seedLog(ctx, memstore.New(memstore.Config{}), sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	appended, byAppend, err := seedLog(ctx, appendOnly{memstore.New(memstore.Config{})}, sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if byImport.Method != SeededByImport || byAppend.Method != SeededByAppend || byImport.how() == byAppend.how() {
		t.Fatalf("methods %q and %q", byImport.Method, byAppend.Method)
	}
	imported.Elapsed, appended.Elapsed = 0, 0
	if imported != appended {
		t.Fatalf("imported %+v, appended %+v", imported, appended)
	}
}
