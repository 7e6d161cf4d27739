// Package bench measures the ledger against the targets, each figure
// next to a baseline measured in the same run on the same machine: append
// throughput and latency against plain PostgreSQL inserts or raw bbolt puts
// with the same batching, replay of every read model from a seeded log,
// timeline page reads of a long history, and the latency from an append to
// its visibility in the customer 360 view.
//
// Every run works in scratch space (a temporary directory, fresh PostgreSQL
// schemas) that it removes at the end, so it never touches a real ledger.
package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/eventstore"
)

// Backend names.
const (
	Embedded = "embedded"
	Postgres = "postgres"
)

// Config says what to measure. Zero fields take the defaults of a full run
// (see Quick for a smoke test).
type Config struct {
	// Backends to measure: Embedded, Postgres. Default: both, PostgreSQL
	// only when reachable unless PostgresRequired.
	Backends []string
	// PostgresURL is the server for the PostgreSQL backend; the run
	// creates and drops its own schemas there.
	PostgresURL string
	// PostgresRequired makes an unreachable server an error instead of a
	// skipped backend (the user named it).
	PostgresRequired bool
	// Dir is where the embedded backend's scratch directory is made;
	// os.TempDir() when empty.
	Dir string
	// Events is the size of the seeded log that replay, timeline and live
	// latency run on; default 1,000,000.
	Events int
	// Customers, when positive, is the seeded log's population: the log
	// holds these customers' whole histories, up to Events events in all.
	// At the default two-year span they hold about 45 events each; when
	// that is fewer than Events, their relationships are made longer
	// (seed.SpanFor) until they hold about Events: longer histories, not
	// busier customers. 0: as many customers as Events needs, at the
	// default span. The log is bulk-loaded through the store's import path
	// (seed.Import, 20,000 events per call), not one append at a time.
	Customers int
	// HeavyEvents is the length of the customer whose timeline is read;
	// default 10,000.
	HeavyEvents int
	// Duration bounds each append case (ledger and baseline each); default
	// 3s.
	Duration time.Duration
	// Writers and Sizes are the append cases: concurrent writers and events
	// per append. Default {1, 8, 64} × {1, 100}.
	Writers, Sizes []int
	// Seed selects the seeded history; default 1.
	Seed uint64
	// TimelineReads and LiveSamples are the latency samples; default 1000
	// and 200.
	TimelineReads, LiveSamples int
	// ReadCustomers are the populations the read path (customer view,
	// identifier lookup, full RFM list) is measured over, each seeded
	// apart; default 793 (the Superstore sample's size) and 100,000.
	// RFMListReads is the number of full RFM lists read; default 20.
	ReadCustomers []int
	RFMListReads  int
	// ReadsOnly measures the read path alone (no appends, replay,
	// timeline or live latency).
	ReadsOnly bool
	// CPUProfile, when set, receives a pprof CPU profile of the replays.
	CPUProfile string
	// AppendsOnly skips the read side (seeding, replay, timeline, live
	// latency): the append cases alone.
	AppendsOnly bool
	// Processes, when above 1, adds the multi-process cases on PostgreSQL:
	// Clients single-event appenders (DefaultClients when 0) in 1 process,
	// then spread over Processes processes sharing one schema.
	Processes, Clients int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Quick returns the configuration of a smoke test: a tiny log and short
// cases, every measurement still made.
func Quick() Config {
	return Config{Events: 20_000, HeavyEvents: 2_000, Duration: 500 * time.Millisecond, TimelineReads: 200, LiveSamples: 20,
		ReadCustomers: []int{300}, RFMListReads: 3}
}

func (c *Config) setDefaults() {
	if len(c.Backends) == 0 {
		c.Backends = []string{Embedded, Postgres}
	}
	if c.Events <= 0 {
		c.Events = 1_000_000
	}
	if c.HeavyEvents <= 0 {
		c.HeavyEvents = 10_000
	}
	c.HeavyEvents = min(c.HeavyEvents, c.Events)
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if len(c.Writers) == 0 {
		c.Writers = []int{1, 8, 64}
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{1, 100}
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.TimelineReads <= 0 {
		c.TimelineReads = 1000
	}
	if c.LiveSamples <= 0 {
		c.LiveSamples = 200
	}
	if len(c.ReadCustomers) == 0 {
		c.ReadCustomers = []int{793, 100_000}
	}
	if c.RFMListReads <= 0 {
		c.RFMListReads = 20
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	for _, b := range c.Backends {
		if b != Embedded && b != Postgres {
			return fmt.Errorf("bench: unknown backend %q (want %s or %s)", b, Embedded, Postgres)
		}
	}
	for _, n := range append(append(slices.Clone(c.Writers), c.Sizes...), c.ReadCustomers...) {
		if n <= 0 {
			return fmt.Errorf("bench: writers, sizes and read populations must be positive, got %d", n)
		}
	}
	if c.Customers < 0 {
		return fmt.Errorf("bench: customers must not be negative, got %d", c.Customers)
	}
	if c.Customers > c.Events {
		return fmt.Errorf("bench: %d customers do not fit in a %d-event log (each needs its registration at least)", c.Customers, c.Events)
	}
	if slices.Contains(c.Backends, Postgres) && c.PostgresURL == "" {
		return errors.New("bench: the postgres backend needs a server URL")
	}
	return nil
}

// Report is the outcome of a run, written as JSON by the CLI.
type Report struct {
	Started   time.Time `json:"started"`
	GoVersion string    `json:"goVersion"`
	OS        string    `json:"os"`
	CPUs      int       `json:"cpus"`
	Events    int       `json:"events"`
	Heavy     int       `json:"heavyEvents"`
	Duration  string    `json:"caseDuration"`
	Seed      uint64    `json:"seed"`
	Backends  []Backend `json:"backends"`
	// Skipped names backends not measured, and why.
	Skipped []string `json:"skipped,omitempty"`
}

// Backend is what was measured on one backend.
type Backend struct {
	Name     string       `json:"name"`
	Appends  []AppendCase `json:"appends"`
	Seeding  Seeding      `json:"seeding"`
	Replay   Replay       `json:"replay"`
	Timeline Latency      `json:"timeline"`
	// Processes are the multi-process cases (PostgreSQL, Config.Processes).
	Processes []ProcessCase `json:"processes,omitempty"`
	Live      Latency       `json:"live"`
	Reads     []ReadCase    `json:"reads"`
	Targets   []Target      `json:"targets"`
}

// AppendCase is one shape of appends: the ledger's figures, the baseline's
// in the same shape, and their ratio (ledger events/s ÷ baseline events/s).
type AppendCase struct {
	Writers         int        `json:"writers"`
	EventsPerAppend int        `json:"eventsPerAppend"`
	Ledger          Throughput `json:"ledger"`
	Baseline        Throughput `json:"baseline"`
	BaselineKind    string     `json:"baselineKind"`
	Ratio           float64    `json:"ratio"`
}

// Throughput is a timed run of operations (appends or inserts).
type Throughput struct {
	Operations      int     `json:"operations"`
	Events          int     `json:"events"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	P50Ms           float64 `json:"p50Ms,omitempty"`
	P99Ms           float64 `json:"p99Ms,omitempty"`
}

// Seeding is how the read side's log was written: set-up, not a target,
// reported for information. Operations counts its customers.
type Seeding struct {
	Throughput
	// SpanDays is how many days of history the customers' relationships
	// spread over (seed.Config.Span): 730 by default, more when Customers
	// had to hold Events.
	SpanDays float64 `json:"spanDays"`
	// Method is how the log was written: "import" (seed.Import, the
	// store's bulk path) or "append" (seed.Seed, appends of up to 1,000
	// events).
	Method string `json:"method"`
}

// Seeding methods.
const (
	SeededByImport = "import"
	SeededByAppend = "append"
)

// Replay is a rebuild of every read model from position 0.
type Replay struct {
	Events          int     `json:"events"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// PeakRSSBytes is the process's peak resident set (VmHWM) during the
	// replay, after resetting it just before; RSSNote says how it was got.
	PeakRSSBytes int64  `json:"peakRssBytes"`
	RSSNote      string `json:"rssNote"`
	// CeilingEventsPerSecond is the backend's plain read of the same log
	// in the same run (CeilingKind says which read), and Ratio the
	// replay's rate over it.
	CeilingEventsPerSecond float64 `json:"ceilingEventsPerSecond"`
	CeilingKind            string  `json:"ceilingKind"`
	Ratio                  float64 `json:"ratio"`
	// Single is the rebuild of one read model alone.
	Single Rebuild `json:"single"`
	// JS is a JavaScript projection's rebuild beside the same one in Go.
	JS JSRebuild `json:"js"`
}

// Latency is a sample of request latencies.
type Latency struct {
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50Ms"`
	P99Ms   float64 `json:"p99Ms"`
	MaxMs   float64 `json:"maxMs"`
	What    string  `json:"what"`
}

// Target is one of the performance targets and whether this run
// met it.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
}

// Run measures every configured backend and returns the report. A backend
// that fails stops the run with its error; an unreachable PostgreSQL the
// user did not ask for explicitly is skipped and listed in Report.Skipped.
func Run(ctx context.Context, cfg Config) (Report, error) {
	// A child of a multi-process case measures its share and returns an
	// empty report; the parent reads the share from the child's file.
	if child, err := runChild(ctx); child {
		return Report{}, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	rep := Report{
		Started: time.Now().UTC(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(),
		Events: cfg.Events, Heavy: cfg.HeavyEvents, Duration: cfg.Duration.String(), Seed: cfg.Seed,
	}
	for _, name := range cfg.Backends {
		var prof *os.File
		if cfg.CPUProfile != "" {
			f, err := os.Create(ProfilePath(cfg.CPUProfile, name))
			if err != nil {
				return Report{}, fmt.Errorf("bench: cpu profile: %w", err)
			}
			defer f.Close()
			prof = f
		}
		var sut system
		switch name {
		case Embedded:
			s, err := newEmbedded(cfg.Dir)
			if err != nil {
				return rep, err
			}
			sut = s
		case Postgres:
			s, err := newPostgres(ctx, cfg.PostgresURL)
			if err != nil {
				if cfg.PostgresRequired {
					return rep, err
				}
				rep.Skipped = append(rep.Skipped, fmt.Sprintf("postgres: %v", err))
				fmt.Fprintf(cfg.Log, "postgres: skipped: %v\n", err)
				continue
			}
			sut = s
		}
		b, err := measure(ctx, cfg, sut, prof)
		if cerr := sut.close(); err == nil && cerr != nil {
			err = fmt.Errorf("bench %s: clean up: %w", name, cerr)
		}
		if err != nil {
			return rep, err
		}
		rep.Backends = append(rep.Backends, b)
	}
	return rep, nil
}

// ProfilePath is where the replay profile of backend goes: one file per
// backend (a pprof file holds one profile), the backend's name inserted
// before the extension ("cpu.prof" → "cpu.embedded.prof").
func ProfilePath(path, backend string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "." + backend + ext
}

// measure runs every measurement on one backend.
func measure(ctx context.Context, cfg Config, sut system, prof *os.File) (Backend, error) {
	b := Backend{Name: sut.name()}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, sut.name()+": "+format+"\n", args...) }
	tpl, err := templates(cfg.Seed)
	if err != nil {
		return b, err
	}
	if cfg.ReadsOnly {
		if b.Reads, err = readPaths(ctx, cfg, sut.name(), logf); err != nil {
			return b, fmt.Errorf("bench %s: %w", sut.name(), err)
		}
		b.Targets = readTargets(b.Reads)
		return b, nil
	}
	for _, size := range cfg.Sizes {
		for _, writers := range cfg.Writers {
			c, err := appendCase(ctx, cfg, sut, tpl, writers, size)
			if err != nil {
				return b, fmt.Errorf("bench %s: appends (%d writers, %d events): %w", sut.name(), writers, size, err)
			}
			logf("appends %2d writers × %3d events: ledger %8.0f ev/s, %s %8.0f ev/s, ratio %.2f",
				writers, size, c.Ledger.EventsPerSecond, c.BaselineKind, c.Baseline.EventsPerSecond, c.Ratio)
			b.Appends = append(b.Appends, c)
		}
	}
	if pg, ok := sut.(*postgres); ok && cfg.Processes > 1 {
		clients := cmp.Or(cfg.Clients, DefaultClients)
		for _, n := range []int{1, cfg.Processes} {
			c, err := pg.processCase(ctx, n, clients, cfg.Duration)
			if err != nil {
				return b, fmt.Errorf("bench %s: %d processes: %w", sut.name(), n, err)
			}
			logf("appends from %d processes, %d clients × 1 event: %8.0f ev/s, p50 %.2f ms, p99 %.2f ms",
				n, clients, c.Ledger.EventsPerSecond, c.Ledger.P50Ms, c.Ledger.P99Ms)
			b.Processes = append(b.Processes, c)
		}
	}
	if !cfg.AppendsOnly {
		if err := readSide(ctx, cfg, sut, &b, logf, prof); err != nil {
			return b, fmt.Errorf("bench %s: %w", sut.name(), err)
		}
	}
	if b.Reads, err = readPaths(ctx, cfg, sut.name(), logf); err != nil {
		return b, fmt.Errorf("bench %s: %w", sut.name(), err)
	}
	b.Targets = append(targets(sut.name(), b), readTargets(b.Reads)...)
	return b, nil
}

// seedConfig is the log the read side runs on. A population too small to
// hold Events at the default span gets a longer span, picked by generating
// a sample of it: the heavy account holds HeavyEvents whatever the span,
// so the ordinary customers share the rest.
func seedConfig(cfg Config) (seed.Config, error) {
	sc := seed.Config{Customers: cfg.Customers, MaxEvents: cfg.Events, HeavyEvents: cfg.HeavyEvents, Seed: cfg.Seed, Concurrency: 16, ChunkEvents: 1000}
	ordinary, events := cfg.Customers, cfg.Events
	if sc.HeavyEvents > 0 {
		ordinary, events = ordinary-1, events-sc.HeavyEvents
	}
	if cfg.Customers == 0 || ordinary <= 0 || events <= 0 {
		return sc, nil
	}
	span, err := seed.SpanFor(sc, float64(events)/float64(ordinary))
	if err != nil {
		return sc, fmt.Errorf("span of %d customers' histories: %w", cfg.Customers, err)
	}
	if span > cmp.Or(sc.Span, seed.DefaultSpan) {
		sc.Span = span // else the default population already holds Events
	}
	return sc, nil
}

// spanOf is the history's span of sc in days.
func spanOf(sc seed.Config) float64 {
	return cmp.Or(sc.Span, seed.DefaultSpan).Hours() / 24
}

// seedLog writes sc's history to store: through its bulk import path when
// it has one (both backends' stores have), by appends otherwise.
func seedLog(ctx context.Context, store eventstore.Store, sc seed.Config, progress func(seed.Progress)) (seed.Summary, Seeding, error) {
	method := SeededByAppend
	var sum seed.Summary
	var err error
	if imp, ok := store.(seed.Importer); ok {
		method = SeededByImport
		sum, err = seed.Import(ctx, imp, sc, progress)
	} else {
		sum, err = seed.Seed(ctx, store, sc, progress)
	}
	if err != nil {
		return sum, Seeding{}, err
	}
	return sum, Seeding{
		Throughput: Throughput{Operations: sum.Customers, Events: sum.Events, Seconds: sum.Elapsed.Seconds(), EventsPerSecond: sum.EventsPerSecond()},
		SpanDays:   spanOf(sc), Method: method,
	}, nil
}

// how says in words how a log was seeded, for the printed lines.
func (s Seeding) how() string {
	if s.Method == SeededByImport {
		return "bulk-loaded through Import"
	}
	return "appended"
}

// The targets.
const (
	targetPGSingleRatio      = 1.0
	targetPGLoneRatio        = 0.7 // issue 16: one writer, single events
	targetPGLoneBatchRatio   = 0.8 // issue 16: one writer, 100-event appends
	targetPGBatchRatio       = 0.7
	targetBoltRatio          = 0.7
	targetBoltSingle8        = 20_000
	targetReplayBolt         = 200_000
	targetReplayPG           = 100_000
	targetReplayRSS          = 1 << 30
	targetReplayCeilingRatio = 0.5
	targetSingleBolt         = 300_000
	targetJSCounting         = 150_000
	targetTimelineP99Ms      = 10
	targetLiveLatencyP99s    = 100
)

func targets(backend string, b Backend) []Target {
	var ts []Target
	add := func(name, want string, got float64, unit string, met bool) {
		ts = append(ts, Target{Name: name, Want: want, Got: got, Unit: unit, Met: met})
	}
	for _, c := range b.Appends {
		shape := fmt.Sprintf("%d writers × %d events", c.Writers, c.EventsPerAppend)
		switch {
		case backend == Postgres && c.EventsPerAppend == 1 && c.Writers == 8:
			add("append "+shape+" vs plain INSERT+COMMIT", "≥ 1.0×", c.Ratio, "×", c.Ratio >= targetPGSingleRatio)
		case backend == Postgres && c.EventsPerAppend == 1 && c.Writers == 1:
			add("append "+shape+" vs plain INSERT+COMMIT", "≥ 0.7×", c.Ratio, "×", c.Ratio >= targetPGLoneRatio)
		case backend == Postgres && c.EventsPerAppend == 100 && c.Writers == 1:
			add("append "+shape+" vs 100-row batch insert", "≥ 0.8×", c.Ratio, "×", c.Ratio >= targetPGLoneBatchRatio)
		case backend == Postgres && c.EventsPerAppend == 100:
			add("append "+shape+" vs 100-row batch insert", "≥ 0.7×", c.Ratio, "×", c.Ratio >= targetPGBatchRatio)
		case backend == Embedded:
			add("append "+shape+" vs raw bbolt, same batching", "≥ 0.7×", c.Ratio, "×", c.Ratio >= targetBoltRatio)
		}
		if backend == Embedded && c.EventsPerAppend == 1 && c.Writers == 8 {
			add("append "+shape+", fsync on", "≥ 20000 events/s", c.Ledger.EventsPerSecond, "events/s", c.Ledger.EventsPerSecond >= targetBoltSingle8)
		}
	}
	if len(b.Processes) > 1 {
		one, many := b.Processes[0], b.Processes[len(b.Processes)-1]
		add(fmt.Sprintf("appends from %d processes vs 1 (%d clients)", many.Processes, many.Clients), "≥ 1.0×",
			ratio(many.Ledger.EventsPerSecond, one.Ledger.EventsPerSecond), "×", many.Ledger.EventsPerSecond >= one.Ledger.EventsPerSecond)
	}
	if b.Replay.Events == 0 {
		return ts // appends only: the read side was not measured
	}
	want, floor := "≥ 200000 events/s", float64(targetReplayBolt)
	if backend == Postgres {
		want, floor = "≥ 100000 events/s", targetReplayPG
	}
	add("replay all read models", want, b.Replay.EventsPerSecond, "events/s", b.Replay.EventsPerSecond >= floor)
	if b.Replay.CeilingEventsPerSecond > 0 {
		add("replay all read models vs "+b.Replay.CeilingKind, "≥ 0.5×", b.Replay.Ratio, "×", b.Replay.Ratio >= targetReplayCeilingRatio)
	}
	if backend == Embedded {
		add("rebuild of "+b.Replay.Single.ReadModel+" alone", "≥ 300000 events/s", b.Replay.Single.EventsPerSecond, "events/s", b.Replay.Single.EventsPerSecond >= targetSingleBolt)
	}
	if backend == Embedded {
		add("rebuild of a JavaScript counting projection", "≥ 150000 events/s", b.Replay.JS.JSEventsPerSecond, "events/s", b.Replay.JS.JSEventsPerSecond >= targetJSCounting)
	}
	add("replay peak RSS", "< 1 GiB", float64(b.Replay.PeakRSSBytes)/(1<<20), "MiB", b.Replay.PeakRSSBytes > 0 && b.Replay.PeakRSSBytes < targetReplayRSS)
	add("timeline page p99", "< 10 ms", b.Timeline.P99Ms, "ms", b.Timeline.P99Ms < targetTimelineP99Ms)
	add("live latency p99", "< 100 ms", b.Live.P99Ms, "ms", b.Live.P99Ms < targetLiveLatencyP99s)
	return ts
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
