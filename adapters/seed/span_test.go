package seed_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/seed"
)

// meanEvents is the mean history length of customers from to to-1.
func meanEvents(t *testing.T, cfg seed.Config, from, to int) float64 {
	t.Helper()
	g, err := seed.NewGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := from; i < to; i++ {
		h, err := g.Customer(i)
		if err != nil {
			t.Fatal(err)
		}
		total += len(h.Events)
	}
	return float64(total) / float64(to-from)
}

// TestSpanFor: the span it picks gives the population the mean asked for,
// both on the customers it calibrated on and on others.
func TestSpanFor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    seed.Config
		target float64
	}{
		{"100 events per customer", seed.Config{Customers: 400, Seed: 1}, 100},
		{"with a heavy account", seed.Config{Customers: 400, Seed: 7, HeavyEvents: 3000}, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			span, err := seed.SpanFor(tc.cfg, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if span <= seed.DefaultSpan || span > seed.MaxSpan {
				t.Fatalf("span %v, want longer than the default %v", span, seed.DefaultSpan)
			}
			cfg := tc.cfg
			cfg.Span = span
			first := 0
			if cfg.HeavyEvents > 0 {
				first = 1
			}
			// The population calibrated on: within the sample's
			// convergence, whatever its randomness.
			population := meanEvents(t, cfg, first, cfg.Customers)
			if math.Abs(population/tc.target-1) > 0.02 {
				t.Errorf("span %v: population mean %.1f events, want %.0f ± 2%%", span, population, tc.target)
			}
			// Other customers of the same seed: within sampling error.
			others := meanEvents(t, cfg, cfg.Customers, cfg.Customers+800)
			if math.Abs(others/tc.target-1) > 0.1 {
				t.Errorf("span %v: mean %.1f events over other customers, want %.0f ± 10%%", span, others, tc.target)
			}
			t.Logf("span %.0f days for %.0f events per customer: %.1f in the population, %.1f over others", span.Hours()/24, tc.target, population, others)
		})
	}
}

// TestSpanForOnlyLengthens: a target the default span already reaches
// leaves the span (and the population) as it is, an unreachable one gives
// the longest span, and a target that is no number of events is refused.
func TestSpanForOnlyLengthens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    seed.Config
		target float64
		want   time.Duration
		ok     bool
	}{
		{"reached at the default span", seed.Config{Customers: 300, Seed: 1}, 10, seed.DefaultSpan, true},
		{"reached at a span of its own", seed.Config{Customers: 300, Seed: 1, Span: 3 * seed.DefaultSpan}, 40, 3 * seed.DefaultSpan, true},
		{"out of reach", seed.Config{Customers: 20, Seed: 1}, 1e6, seed.MaxSpan, true},
		{"the heavy account alone", seed.Config{Customers: 1, Seed: 1, HeavyEvents: 100}, 500, seed.DefaultSpan, true},
		{"zero", seed.Config{Customers: 300}, 0, 0, false},
		{"negative", seed.Config{Customers: 300}, -5, 0, false},
		{"not a number", seed.Config{Customers: 300}, math.NaN(), 0, false},
		{"infinite", seed.Config{Customers: 300}, math.Inf(1), 0, false},
		{"invalid configuration", seed.Config{}, 100, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := seed.SpanFor(tc.cfg, tc.target)
			if (err == nil) != tc.ok {
				t.Fatalf("SpanFor(%v) = %v, %v; want ok %v", tc.target, got, err, tc.ok)
			}
			if tc.ok && got != tc.want {
				t.Fatalf("SpanFor(%v) = %v, want %v", tc.target, got, tc.want)
			}
		})
	}
}

// TestDefaultPopulationUnchanged pins the default population: Span 0 (or
// DefaultSpan) generates the events it generated before spans could be
// chosen, byte for byte. The digest was taken from the generator before
// SpanFor existed; a change to it changes every seeded demo and benchmark.
func TestDefaultPopulationUnchanged(t *testing.T) {
	const (
		wantEvents = 15242
		wantDigest = "e002d6d1f1dc6f0ae6519740a061d2715923e61e814899e1eb9ee25149bc84be"
	)
	for _, span := range []time.Duration{0, seed.DefaultSpan} {
		hs := generate(t, seed.Config{Customers: 300, Seed: 5, HeavyEvents: 1500, Span: span}, 300)
		d, n := sha256.New(), 0
		for _, h := range hs {
			for _, e := range h.Events {
				md, err := json.Marshal(e.Metadata)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(d, "%s\x00%s\x00%s\x00%s\x00%s\n", h.Stream, e.ID, e.Type, e.Data, md)
				n++
			}
		}
		if got := hex.EncodeToString(d.Sum(nil)); n != wantEvents || got != wantDigest {
			t.Errorf("span %v: %d events, digest %s; want %d, %s", span, n, got, wantEvents, wantDigest)
		}
	}
}
