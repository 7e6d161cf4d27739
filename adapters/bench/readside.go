package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/timeline"
	"github.com/google/uuid"
)

// readSide seeds the log, replays every read model from it, reads the heavy
// customer's timeline, then runs the engine live and measures how fast an
// append shows in the customer 360 view.
func readSide(ctx context.Context, cfg Config, sut system, b *Backend, logf func(string, ...any), prof *os.File) error {
	// Seed, without fsync where the backend allows it: seeding is set-up,
	// not a measured figure (its rate is reported for information).
	sc, err := seedConfig(cfg)
	if err != nil {
		return err
	}
	if sc.Span != 0 {
		logf("seeding: %d customers' histories lengthened to span %.0f days, so that they hold about %d events", sc.Customers, spanOf(sc), sc.MaxEvents)
	}
	store, err := sut.seedStore(ctx, true)
	if err != nil {
		return err
	}
	sum, seeding, err := seedLog(ctx, store, sc, func(p seed.Progress) {
		if !p.Done {
			logf("seeding: %d events, %.0f events/s", p.Events, p.EventsPerSecond())
		}
	})
	if cerr := store.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	b.Seeding = seeding
	logf("seeded %d customers, %d events, %s in %s (%.0f events/s); histories spanning %.0f days",
		sum.Customers, sum.Events, seeding.how(), sum.Elapsed.Round(time.Millisecond), sum.EventsPerSecond(), seeding.SpanDays)

	store, err = sut.seedStore(ctx, false)
	if err != nil {
		return err
	}
	defer store.Close()
	rm, err := sut.readModels(ctx)
	if err != nil {
		return err
	}
	defer rm.Close()

	if b.Replay, err = replay(ctx, sut, store, rm, prof); err != nil {
		return err
	}
	logf("replay: %d events in %.2fs, %.0f events/s, peak RSS %.0f MiB; %s alone %.0f events/s, peak RSS %.0f MiB; ceiling (%s) %.0f events/s, ratio %.2f",
		b.Replay.Events, b.Replay.Seconds, b.Replay.EventsPerSecond, float64(b.Replay.PeakRSSBytes)/(1<<20),
		b.Replay.Single.ReadModel, b.Replay.Single.EventsPerSecond, float64(b.Replay.Single.PeakRSSBytes)/(1<<20),
		b.Replay.CeilingKind, b.Replay.CeilingEventsPerSecond, b.Replay.Ratio)
	if b.Timeline, err = timelineReads(ctx, store, rm, sum.Heavy, cfg.TimelineReads, cfg.Seed); err != nil {
		return err
	}
	logf("timeline page: p50 %.2f ms, p99 %.2f ms", b.Timeline.P50Ms, b.Timeline.P99Ms)
	if b.Live, err = live(ctx, store, rm, cfg.LiveSamples, cfg.Seed); err != nil {
		return err
	}
	logf("live latency: p50 %.2f ms, p99 %.2f ms", b.Live.P50Ms, b.Live.P99Ms)
	return nil
}

var quiet = slog.New(slog.DiscardHandler)

// replay rebuilds every read model (catalog.All) from position 0, then
// SingleReadModel alone, and times the backend's plain read of the log
// (the ceiling) in the same run.
func replay(ctx context.Context, sut system, store eventstore.Store, rm projections.Backend, prof *os.File) (Replay, error) {
	r, err := timedReplay(ctx, store, rm, catalog.All(catalog.Deps{}), prof)
	if err != nil {
		return Replay{}, err
	}
	if r.Single, err = single(ctx, store, rm); err != nil {
		return Replay{}, err
	}
	if r.JS, err = jsVsGo(ctx, store, rm); err != nil {
		return Replay{}, err
	}
	var c Throughput
	if c, r.CeilingKind, err = ceiling(ctx, sut, store); err != nil {
		return Replay{}, err
	}
	r.CeilingEventsPerSecond = c.EventsPerSecond
	if c.EventsPerSecond > 0 {
		r.Ratio = r.EventsPerSecond / c.EventsPerSecond
	}
	return r, nil
}

// readModelsNamed returns the catalog's read models of the given names.
func readModelsNamed(names ...string) []projections.Projection {
	ps, _ := catalog.Select(catalog.Deps{}, names...)
	return ps
}

// timedReplay rebuilds ps from position 0. Peak RSS is the kernel's
// high-water mark, reset just before (after returning the seeding's heap to
// the OS), so it covers the replay plus the process's baseline: an honest
// upper bound of what a replay process needs.
func timedReplay(ctx context.Context, store eventstore.Store, rm projections.Backend, ps []projections.Projection, prof *os.File) (Replay, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return Replay{}, fmt.Errorf("head: %w", err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	note := "VmHWM of this process, reset (clear_refs 5) just before the replay"
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		note = "VmHWM of this process since it started (could not reset: " + err.Error() + ")"
	}
	if prof != nil {
		if err := pprof.StartCPUProfile(prof); err != nil {
			return Replay{}, fmt.Errorf("cpu profile: %w", err)
		}
	}
	start := time.Now()
	err = projections.Replay(ctx, store, rm, ps, projections.Config{Logger: quiet}, nil)
	elapsed := time.Since(start)
	if prof != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return Replay{}, fmt.Errorf("replay: %w", err)
	}
	hwm, err := vmHWM()
	if err != nil {
		note = "unavailable: " + err.Error()
	}
	return Replay{Events: int(head), Seconds: elapsed.Seconds(), EventsPerSecond: float64(head) / elapsed.Seconds(), PeakRSSBytes: hwm, RSSNote: note}, nil
}

// vmHWM reads the peak resident set size from /proc/self/status.
func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// timelineReads pages once through the heavy customer's timeline to learn
// every page's cursor, then reads random full pages of 100 entries, each
// from the read model's keys and the log's events.
func timelineReads(ctx context.Context, store eventstore.Store, rm projections.Backend, customer uuid.UUID, n int, s uint64) (Latency, error) {
	events := timeline.FromLog(store)
	page := func(cursor string) (timeline.Result, error) {
		var res timeline.Result
		err := projections.View(ctx, rm, timeline.Name, func(r projections.Reader) error {
			var err error
			res, err = timeline.Page(ctx, r, events, customer, timeline.Query{Limit: 100, Cursor: cursor})
			return err
		})
		return res, err
	}
	cursors := []string{""}
	for {
		res, err := page(cursors[len(cursors)-1])
		if err != nil {
			return Latency{}, fmt.Errorf("timeline of %s: %w", customer, err)
		}
		if res.NextCursor == "" || len(res.Entries) < 100 {
			cursors = cursors[:len(cursors)-1] // keep only full pages
			break
		}
		cursors = append(cursors, res.NextCursor)
	}
	if len(cursors) == 0 {
		return Latency{}, fmt.Errorf("timeline of %s has no full page of 100 entries", customer)
	}
	r := rand.New(rand.NewPCG(s, 2))
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		res, err := page(cursors[r.IntN(len(cursors))])
		if err != nil {
			return Latency{}, err
		}
		lat = append(lat, time.Since(t0))
		if len(res.Entries) != 100 {
			return Latency{}, fmt.Errorf("timeline page has %d entries, want 100", len(res.Entries))
		}
	}
	l := Latency{Samples: n, What: fmt.Sprintf("timeline.Page of 100 entries at a random place in a %d-page history", len(cursors))}
	l.P50Ms, l.P99Ms, l.MaxMs = percentiles(lat)
	return l, nil
}

// live runs the engine on the replayed read models and measures, for each
// sample, the time from calling Append (a new customer's registration) to
// the customer 360 view showing it, polled every 200µs.
func live(ctx context.Context, store eventstore.Store, rm projections.Backend, n int, s uint64) (Latency, error) {
	eng, err := projections.NewEngine(store, rm, projections.Config{Logger: quiet})
	if err != nil {
		return Latency{}, err
	}
	for _, p := range catalog.All(catalog.Deps{}) {
		if err := eng.Register(p); err != nil {
			return Latency{}, err
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	finished := make(chan struct{})
	var runErr error
	go func() {
		runErr = eng.Run(runCtx)
		close(finished)
	}()
	defer func() {
		stop()
		<-finished
	}()
	if err := waitLive(ctx, eng, finished, &runErr); err != nil {
		return Latency{}, err
	}
	r := rand.New(rand.NewPCG(s, 3))
	ref := time.Now().UTC()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		id := uuid.UUID{}
		for j := range id {
			id[j] = byte(r.Uint32())
		}
		id[6], id[8] = id[6]&0x0f|0x80, id[8]&0x3f|0x80
		typ, version, data, err := domain.Encode(domain.CustomerRegistered{CustomerID: id, Name: "Live Probe " + strconv.Itoa(i), Country: "DE"})
		if err != nil {
			return Latency{}, err
		}
		ev := eventstore.EventData{ID: nextID(), Type: typ, Data: data, Metadata: eventstore.Metadata{OccurredAt: ref, Actor: "service:bench", Channel: "bench", SchemaVersion: version}}
		t0 := time.Now()
		res, err := store.Append(ctx, domain.StreamID(id), eventstore.NoStream, ev)
		if err != nil {
			return Latency{}, fmt.Errorf("live append: %w", err)
		}
		for {
			var v customer360.View
			err := projections.View(ctx, rm, customer360.Name, func(r projections.Reader) error {
				var err error
				v, err = customer360.Get(ctx, r, id)
				return err
			})
			if err == nil && v.Position >= res.Position {
				break
			}
			if err != nil && !errors.Is(err, projections.ErrNotFound) {
				return Latency{}, fmt.Errorf("live view: %w", err)
			}
			if time.Since(t0) > 10*time.Second {
				return Latency{}, fmt.Errorf("live: customer %s not visible after 10s", id)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
		time.Sleep(2 * time.Millisecond) // one append at a time: latency, not load
	}
	l := Latency{Samples: n, What: "Append (fsync/commit included) until customer360.Get shows it, engine live with every read model"}
	l.P50Ms, l.P99Ms, l.MaxMs = percentiles(lat)
	return l, nil
}

func waitLive(ctx context.Context, eng *projections.Engine, finished <-chan struct{}, runErr *error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		all := true
		for _, st := range eng.Status() {
			if st.State != projections.StateLive {
				all = false
			}
		}
		if all {
			return nil
		}
		select {
		case <-finished:
			return fmt.Errorf("engine stopped before going live: %w", *runErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("engine not live after 2 minutes")
		}
	}
}
