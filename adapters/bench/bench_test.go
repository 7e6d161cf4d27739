package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/bench"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// quick is smaller than bench.Quick: the race detector and a busy machine
// make even the smoke test slow. Speed is never asserted, only that every
// figure was measured.
func quick(t *testing.T, backends ...string) bench.Config {
	cfg := bench.Quick()
	cfg.Backends = backends
	cfg.Events, cfg.HeavyEvents = 4000, 600
	cfg.Duration = 150 * time.Millisecond
	cfg.Writers = []int{1, 8}
	cfg.TimelineReads, cfg.LiveSamples = 20, 5
	cfg.Dir = t.TempDir()
	return cfg
}

func check(t *testing.T, rep bench.Report, backends int) {
	t.Helper()
	if len(rep.Backends) != backends {
		t.Fatalf("%d backends measured, want %d (skipped: %v)", len(rep.Backends), backends, rep.Skipped)
	}
	for _, b := range rep.Backends {
		if len(b.Appends) != 4 {
			t.Errorf("%s: %d append cases, want 4", b.Name, len(b.Appends))
		}
		for _, c := range b.Appends {
			if c.Ledger.EventsPerSecond <= 0 || c.Baseline.EventsPerSecond <= 0 || c.Ratio <= 0 || c.Ledger.P99Ms <= 0 || c.Baseline.P50Ms <= 0 || c.BaselineKind == "" {
				t.Errorf("%s: incomplete case %+v", b.Name, c)
			}
			if c.Ledger.Events != c.Ledger.Operations*c.EventsPerAppend {
				t.Errorf("%s: %d events in %d appends of %d", b.Name, c.Ledger.Events, c.Ledger.Operations, c.EventsPerAppend)
			}
		}
		if b.Seeding.Events != 4000 || b.Seeding.Method != bench.SeededByImport || b.Seeding.SpanDays != 730 ||
			b.Replay.Events < 4000 || b.Replay.EventsPerSecond <= 0 || b.Replay.PeakRSSBytes <= 0 {
			t.Errorf("%s: seeding %+v, replay %+v", b.Name, b.Seeding, b.Replay)
		}
		if s := b.Replay.Single; s.ReadModel != bench.SingleReadModel || s.Events != b.Replay.Events || s.EventsPerSecond <= 0 || s.PeakRSSBytes <= 0 ||
			b.Replay.CeilingEventsPerSecond <= 0 || b.Replay.CeilingKind == "" || b.Replay.Ratio <= 0 {
			t.Errorf("%s: single rebuild or read ceiling missing: %+v", b.Name, b.Replay)
		}
		if js := b.Replay.JS; js.Events != b.Replay.Events || js.JSEventsPerSecond <= 0 || js.GoEventsPerSecond <= 0 || js.Ratio <= 0 {
			t.Errorf("%s: JavaScript rebuild missing: %+v", b.Name, js)
		}
		if b.Timeline.Samples != 20 || b.Timeline.P50Ms <= 0 || b.Timeline.P99Ms < b.Timeline.P50Ms {
			t.Errorf("%s: timeline %+v", b.Name, b.Timeline)
		}
		if b.Live.Samples != 5 || b.Live.P50Ms <= 0 || b.Live.P99Ms < b.Live.P50Ms {
			t.Errorf("%s: live %+v", b.Name, b.Live)
		}
		if len(b.Targets) < 6 {
			t.Errorf("%s: %d targets", b.Name, len(b.Targets))
		}
	}
	var out bytes.Buffer
	if err := bench.Print(&out, rep); err != nil || !bytes.Contains(out.Bytes(), []byte("ratio")) || !bytes.Contains(out.Bytes(), []byte("bulk-loaded through Import")) {
		t.Fatalf("print: %v\n%s", err, out.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
}

func TestQuickEmbedded(t *testing.T) {
	rep, err := bench.Run(context.Background(), quick(t, bench.Embedded))
	if err != nil {
		t.Fatal(err)
	}
	check(t, rep, 1)
}

func TestQuickPostgres(t *testing.T) {
	cfg := quick(t, bench.Postgres)
	cfg.PostgresURL, cfg.PostgresRequired = pgtest.URL(t), true
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	check(t, rep, 1)
}

func TestUnreachablePostgresIsSkipped(t *testing.T) {
	cfg := quick(t, bench.Postgres)
	cfg.PostgresURL = "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil || len(rep.Skipped) != 1 || len(rep.Backends) != 0 {
		t.Fatalf("report %+v, err %v; want postgres skipped", rep, err)
	}
	cfg.PostgresRequired = true
	if _, err := bench.Run(context.Background(), cfg); err == nil {
		t.Fatal("required but unreachable PostgreSQL did not fail the run")
	}
}

// A population that cannot fit the log, or a negative one, is refused
// before anything is seeded.
func TestValidateCustomers(t *testing.T) {
	for _, tc := range []struct {
		customers, events int
		ok                bool
	}{
		{0, 1000, true},
		{1000, 1000, true},
		{1001, 1000, false},
		{-1, 1000, false},
	} {
		cfg := bench.Config{Backends: []string{bench.Embedded}, Customers: tc.customers, Events: tc.events}
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("customers %d, events %d: Validate() = %v, want ok %v", tc.customers, tc.events, err, tc.ok)
		}
	}
}
