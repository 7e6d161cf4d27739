package projections

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

func TestEngineCatchesUpThenAppliesLiveEventsPromptly(t *testing.T) {
	h := newHistory(t, 1)
	h.grow(150, 1500)
	b := NewMemory()
	sum, cnt := &summary{}, &counter{}
	e := start(t, h.store, b, testConfig(), sum, cnt)
	e.waitLive(t, sum.Name(), h.head())
	e.waitLive(t, cnt.Name(), h.head())

	// A new event is visible in the read model within tens of milliseconds.
	c := h.customers[0]
	began := time.Now()
	pos := h.append(c, domain.NoteAdded{Body: "Called back about order #10472 — resolved."})
	key := "customer/" + domain.StreamID(c)
	waitFor(t, "live note", func() bool {
		var cs customerSummary
		if err := View(context.Background(), b, sum.Name(), func(r Reader) error {
			v, _, err := Read[customerSummary](context.Background(), r, key)
			cs = v
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return cs.Notes > 0 && e.status(t, sum.Name()).Checkpoint >= pos
	})
	if took := time.Since(began); took > 500*time.Millisecond {
		t.Errorf("live event took %v to show", took)
	} else {
		t.Logf("live event visible after %v", took)
	}

	st := e.waitLive(t, cnt.Name(), pos)
	if st.Lag != 0 || st.Head != pos || st.Namespace != "event_counter_v1_g1" || st.Active != st.Namespace {
		t.Errorf("status %+v", st)
	}
	if got := checkCounted(t, b, st.Namespace); got != pos {
		t.Errorf("counted through %d, want %d", got, pos)
	}
	if got, want := cnt.calls.Load(), int64(pos); got != want {
		t.Errorf("counter applied %d events, want %d", got, want)
	}
	e.stop()
	if d, want := digestOf(t, b, sum.Name()), replayDigest(t, h.store, &summary{}); d != want {
		t.Errorf("digest after catch-up and live %s, full replay %s", d, want)
	}
}

func TestEngineResumesFromCheckpointAfterRestart(t *testing.T) {
	h := newHistory(t, 2)
	h.grow(40, 400)
	b := NewMemory()
	first := &counter{}
	e := start(t, h.store, b, testConfig(), first)
	e.waitLive(t, first.Name(), h.head())
	e.stop()
	stoppedAt := h.head()
	if st := e.status(t, first.Name()); st.State != StateStopped {
		t.Errorf("after Run returned: state %s", st.State)
	}

	h.grow(5, 300) // while nothing runs
	second := &counter{}
	e = start(t, h.store, b, testConfig(), second)
	st := e.waitLive(t, second.Name(), h.head())
	if got, want := second.calls.Load(), int64(h.head()-stoppedAt); got != want {
		t.Errorf("after restart applied %d events, want the %d new ones", got, want)
	}
	checkCounted(t, b, st.Namespace)
	if ns, _ := b.Namespaces(context.Background()); !slices.Equal(ns, []string{"event_counter_v1_g1"}) {
		t.Errorf("namespaces %v", ns)
	}
}

func TestEngineCrashMidBatchLeavesStateAtCheckpoint(t *testing.T) {
	h := newHistory(t, 3)
	h.grow(60, 900)
	mem := NewMemory()
	// The fourth transaction dies after the projection applied its events.
	b := &flakyBackend{Backend: mem, prefix: "event_counter", failAt: 4}
	cnt := &counter{}
	e := start(t, h.store, b, testConfig(), cnt)
	var st Status
	waitFor(t, "crash", func() bool { st = e.status(t, cnt.Name()); return st.State == StateFailed })
	if !errors.Is(st.Err, errCrash) || !strings.Contains(st.Error, "event_counter") {
		t.Fatalf("failure %v", st.Err)
	}
	if pe := (*ProjectionError)(nil); errors.As(st.Err, &pe) {
		t.Errorf("a backend failure is not a poison event: %v", pe)
	}
	if st.Checkpoint == 0 || st.Checkpoint >= h.head() || st.Lag != h.head()-st.Checkpoint {
		t.Errorf("status after crash %+v", st)
	}
	e.stop()
	if cp := checkCounted(t, mem, st.Namespace); cp != st.Checkpoint {
		t.Errorf("stored checkpoint %d, status %d", cp, st.Checkpoint)
	}

	// Restart (a new process): resumes from the checkpoint and converges.
	again := &counter{}
	e = start(t, h.store, mem, testConfig(), again)
	e.waitLive(t, again.Name(), h.head())
	checkCounted(t, mem, st.Namespace)
	if got, want := again.calls.Load(), int64(h.head()-st.Checkpoint); got != want {
		t.Errorf("restart applied %d events, want %d", got, want)
	}
	e.stop()
	if d, want := digestOf(t, mem, cnt.Name()), replayDigest(t, h.store, &counter{}); d != want {
		t.Errorf("digest after crash and restart differs from a full replay")
	}
}

func TestEngineRestartAfterTransientFailure(t *testing.T) {
	h := newHistory(t, 4)
	h.grow(30, 300)
	b := NewMemory()
	var failing atomic.Bool
	failing.Store(true)
	flaky := &counter{}
	target := h.head() / 2
	flaky.fail = func(e domain.Envelope) error {
		if failing.Load() && e.Position == target {
			return errors.New("read model service unavailable")
		}
		return nil
	}
	e := start(t, h.store, b, testConfig(), flaky)
	waitFor(t, "failure", func() bool { return e.status(t, flaky.Name()).State == StateFailed })
	if err := e.Restart("nope"); !errors.Is(err, ErrUnknownProjection) {
		t.Errorf("Restart(unknown) = %v", err)
	}
	// Failed stays failed, until restarted once the cause is gone.
	h.grow(0, 10)
	if st := e.status(t, flaky.Name()); st.State != StateFailed || st.Checkpoint >= target {
		t.Errorf("status %+v", st)
	}
	failing.Store(false)
	if err := e.Restart(flaky.Name()); err != nil {
		t.Fatal(err)
	}
	st := e.waitLive(t, flaky.Name(), h.head())
	if err := e.Restart(flaky.Name()); !errors.Is(err, ErrNotFailed) {
		t.Errorf("Restart(live) = %v", err)
	}
	checkCounted(t, b, st.Namespace)
}

func TestEnginePoisonEventStopsOnlyThatProjection(t *testing.T) {
	h := newHistory(t, 5)
	h.grow(30, 200)
	c := h.customers[3]
	poison := h.append(c, domain.NoteAdded{Body: "☠ malformed import row 4711"})
	h.grow(10, 200)

	errBug := errors.New("note body not understood")
	bad := &counter{name: "note_index", fail: func(e domain.Envelope) error {
		if n, ok := e.Event.(domain.NoteAdded); ok && strings.HasPrefix(n.Body, "☠") {
			return errBug
		}
		return nil
	}}
	good := &summary{}
	b := NewMemory()
	e := start(t, h.store, b, testConfig(), bad, good)
	e.waitLive(t, good.Name(), h.head())
	var st Status
	waitFor(t, "poison failure", func() bool { st = e.status(t, bad.Name()); return st.State == StateFailed })

	var pe *ProjectionError
	if !errors.As(st.Err, &pe) {
		t.Fatalf("error %v is not a *ProjectionError", st.Err)
	}
	if pe.Projection != "note_index" || pe.Position != poison || pe.EventType != domain.TypeNoteAdded ||
		pe.EventID == "" || !errors.Is(st.Err, errBug) || pe.Namespace != "note_index_v1_g1" {
		t.Errorf("ProjectionError %+v", pe)
	}
	for _, want := range []string{"note_index", "position", pe.EventID, errBug.Error()} {
		if !strings.Contains(st.Error, want) {
			t.Errorf("error %q does not name %q", st.Error, want)
		}
	}
	if st.Checkpoint >= poison {
		t.Errorf("checkpoint %d passed the poison event at %d", st.Checkpoint, poison)
	}
	checkCounted(t, b, st.Namespace) // nothing skipped, nothing half-applied

	// The others go on; the failed one stays put and its lag grows.
	more := h.append(h.customers[0], domain.NoteAdded{Body: "Follow-up call booked."})
	e.waitLive(t, good.Name(), more)
	waitFor(t, "lag", func() bool {
		st = e.status(t, bad.Name())
		return st.Head == more && st.Lag == more-st.Checkpoint
	})
	if st.State != StateFailed {
		t.Errorf("state %s", st.State)
	}

	// Restarting does not skip it: the projection stops at the same event.
	calls := bad.calls.Load()
	if err := e.Restart(bad.Name()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "poison again", func() bool {
		st = e.status(t, bad.Name())
		return st.State == StateFailed && bad.calls.Load() > calls
	})
	if !errors.As(st.Err, &pe) || pe.Position != poison {
		t.Errorf("after restart: %v", st.Err)
	}
}

func TestEngineUndecodableEventIsPoisonForItsHandlersOnly(t *testing.T) {
	h := newHistory(t, 6)
	h.grow(10, 50)
	// An event written by a newer release with a schema this one lacks.
	res, err := h.store.Append(context.Background(), domain.StreamID(h.customers[0]), eventstore.Any, eventDataRaw(t, domain.TypeNoteAdded, 99))
	if err != nil {
		t.Fatal(err)
	}
	h.grow(0, 20)
	all, some := &counter{}, &summary{}
	// summary handles NoteAdded too; a projection handling neither type
	// of the bad record goes on.
	other := &typed{name: "purchases", types: []string{domain.TypePurchaseCompleted}}
	e := start(t, h.store, NewMemory(), testConfig(), all, some, other)
	e.waitLive(t, other.Name(), h.head())
	for _, name := range []string{all.Name(), some.Name()} {
		var st Status
		waitFor(t, name+" failed", func() bool { st = e.status(t, name); return st.State == StateFailed })
		var pe *ProjectionError
		if !errors.As(st.Err, &pe) || pe.Position != res.Position || !errors.Is(st.Err, domain.ErrUnsupportedSchemaVersion) {
			t.Errorf("%s: %v", name, st.Err)
		}
	}
}

func TestEngineNewProjectionCatchesUpAlone(t *testing.T) {
	h := newHistory(t, 7)
	h.grow(40, 400)
	b := NewMemory()
	old := &summary{}
	e := start(t, h.store, b, testConfig(), old)
	e.waitLive(t, old.Name(), h.head())
	e.stop()

	// An analyst adds a projection: registered next to the old one, it
	// starts from 0 while the old one resumes where it was.
	oldAgain, added := &summary{}, &counter{}
	e = start(t, h.store, b, testConfig(), oldAgain, added)
	e.waitLive(t, added.Name(), h.head())
	e.waitLive(t, oldAgain.Name(), h.head())
	if n := oldAgain.calls.Load(); n != 0 {
		t.Errorf("existing projection re-applied %d events", n)
	}
	if got := added.calls.Load(); got != int64(h.head()) {
		t.Errorf("new projection applied %d events, want %d", got, h.head())
	}

	// Registered while running, one catches up on its own as well.
	late := &counter{name: "late_counter"}
	if err := e.Register(late); err != nil {
		t.Fatal(err)
	}
	if err := e.Register(&counter{name: "late_counter"}); !errors.Is(err, ErrDuplicateProjection) {
		t.Errorf("duplicate Register = %v", err)
	}
	st := e.waitLive(t, late.Name(), h.head())
	checkCounted(t, b, st.Namespace)
	if n := oldAgain.calls.Load(); n != 0 {
		t.Errorf("existing projection re-applied %d events", n)
	}
}

func TestEngineRebuildSideBySideWhileAppending(t *testing.T) {
	h := newHistory(t, 8)
	h.grow(100, 2000)
	b := NewMemory()
	sum := &summary{}
	cfg := testConfig()
	cfg.PageSize, cfg.BatchSize = 16, 32 // a slow rebuild: many progress reports
	e := start(t, h.store, b, cfg, sum)
	e.waitLive(t, sum.Name(), h.head())
	ctx := context.Background()
	oldNS, _ := b.Active(ctx, sum.Name())

	// Appends go on during the rebuild.
	stopAppends, appended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(appended)
		for {
			select {
			case <-stopAppends:
				return
			default:
				h.touch()
				time.Sleep(200 * time.Microsecond)
			}
		}
	}()

	var log progressLog
	readsDuring := 0
	err := e.Rebuild(ctx, sum.Name(), func(p Progress) {
		log.add(p)
		if p.Done {
			return
		}
		// Readers keep reading the live generation, which keeps moving.
		if active, _ := b.Active(ctx, sum.Name()); active != oldNS {
			t.Errorf("during rebuild readers see %s, want %s", active, oldNS)
		}
		if d := digestOf(t, b, sum.Name()); d == "" {
			t.Error("empty digest")
		}
		if st := e.status(t, sum.Name()); st.State != StateRebuilding || st.Rebuild == nil || st.Namespace != oldNS {
			t.Errorf("status during rebuild %+v", st)
		}
		readsDuring++
	})
	close(stopAppends)
	<-appended
	if err != nil {
		t.Fatal(err)
	}
	if readsDuring == 0 {
		t.Error("no progress reported during the rebuild")
	}
	reps := log.all()
	last := reps[len(reps)-1]
	if !last.Done || last.Namespace != "customer_summary_v1_g2" || last.Position == 0 || last.Position > last.Head {
		t.Errorf("last progress %+v", last)
	}
	for _, p := range reps[:len(reps)-1] {
		if p.Done || p.Position > p.Head {
			t.Errorf("progress %+v", p)
		}
	}
	active, _ := b.Active(ctx, sum.Name())
	if active != "customer_summary_v1_g2" {
		t.Errorf("active %s after rebuild", active)
	}
	if ns, _ := b.Namespaces(ctx); !slices.Equal(ns, []string{active}) {
		t.Errorf("namespaces after rebuild %v: the old one should be dropped", ns)
	}

	// The new generation goes on live and equals a replay from scratch.
	pos := h.append(h.customers[1], domain.NoteAdded{Body: "After the switch."})
	st := e.waitLive(t, sum.Name(), pos)
	if st.Namespace != active || st.Rebuild != nil {
		t.Errorf("status after rebuild %+v", st)
	}
	e.stop()
	if d, want := digestOf(t, b, sum.Name()), replayDigest(t, h.store, &summary{}); d != want {
		t.Errorf("digest after rebuild differs from a full replay")
	}
}

func TestEngineRebuildErrors(t *testing.T) {
	h := newHistory(t, 9)
	h.grow(5, 20)
	b := NewMemory()
	ctx := context.Background()
	e, err := NewEngine(h.store, b, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Rebuild(ctx, "customer_summary", nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Rebuild before Run = %v", err)
	}
	r := start(t, h.store, b, testConfig(), &summary{})
	if err := r.Rebuild(ctx, "nope", nil); !errors.Is(err, ErrUnknownProjection) {
		t.Errorf("Rebuild(unknown) = %v", err)
	}
	// A rebuild cancelled before the switch is dropped and leaves the
	// live generation alone.
	gate := &gated{Projection: &counter{}, gate: make(chan struct{})}
	gate.open.Store(true)
	if err := r.Register(gate); err != nil {
		t.Fatal(err)
	}
	r.waitLive(t, gate.Name(), h.head())
	gate.open.Store(false) // the rebuild blocks in its first Apply
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = r.Rebuild(cctx, gate.Name(), func(p Progress) {
		if p.Namespace != "event_counter_v1_g2" {
			t.Errorf("progress %+v", p)
		}
		if err := r.Rebuild(ctx, gate.Name(), nil); !errors.Is(err, ErrRebuildInProgress) {
			t.Errorf("second Rebuild = %v", err)
		}
		cancel()
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Rebuild = %v", err)
	}
	gate.open.Store(true)
	if ns, _ := b.Namespaces(ctx); !slices.Equal(ns, []string{"customer_summary_v1_g1", "event_counter_v1_g1"}) {
		t.Errorf("namespaces after cancelled rebuild %v", ns)
	}
	if err := r.Rebuild(ctx, gate.Name(), nil); err != nil {
		t.Errorf("rebuild after a cancelled one: %v", err)
	}
	r.waitLive(t, gate.Name(), h.head())
}

func TestEngineVersionBumpBuildsBesideTheOldVersion(t *testing.T) {
	h := newHistory(t, 10)
	h.grow(50, 500)
	b := NewMemory()
	ctx := context.Background()
	e := start(t, h.store, b, testConfig(), &summary{version: 1})
	e.waitLive(t, "customer_summary", h.head())
	e.stop()
	v1Digest := digestOf(t, b, "customer_summary")

	// Version 2 is deployed: it builds beside version 1, which serves reads
	// (frozen: its code is gone) until version 2 has caught up.
	v2 := &gated{Projection: &summary{version: 2}, gate: make(chan struct{})}
	e = start(t, h.store, b, testConfig(), v2)
	waitFor(t, "build started", func() bool { return v2.entered.Load() })
	st := e.status(t, "customer_summary")
	if st.State != StateRebuilding || st.Active != "customer_summary_v1_g1" || st.Namespace != "customer_summary_v2_g2" || st.Rebuild == nil {
		t.Errorf("status during version build %+v", st)
	}
	if d := digestOf(t, b, "customer_summary"); d != v1Digest {
		t.Error("version 1 changed while version 2 was building")
	}
	close(v2.gate)
	waitFor(t, "switch to v2", func() bool {
		active, _ := b.Active(ctx, "customer_summary")
		return active == "customer_summary_v2_g2"
	})
	e.waitLive(t, "customer_summary", h.head())
	waitFor(t, "v1 dropped", func() bool {
		ns, _ := b.Namespaces(ctx)
		return slices.Equal(ns, []string{"customer_summary_v2_g2"})
	})
	e.stop()
	if d, want := digestOf(t, b, "customer_summary"), replayDigest(t, h.store, &summary{version: 2}); d != want {
		t.Error("version 2 differs from a full replay")
	}

	// An older binary finds a newer read model: it refuses to touch it.
	e = start(t, h.store, b, testConfig(), &summary{version: 1})
	waitFor(t, "refusal", func() bool { return e.status(t, "customer_summary").State == StateFailed })
	if st := e.status(t, "customer_summary"); !strings.Contains(st.Error, "newer") {
		t.Errorf("older binary: %v", st.Err)
	}
	if ns, _ := b.Namespaces(ctx); !slices.Equal(ns, []string{"customer_summary_v2_g2"}) {
		t.Errorf("older binary touched namespaces: %v", ns)
	}
}

func TestEngineVersionBuildResumesAfterRestart(t *testing.T) {
	h := newHistory(t, 11)
	h.grow(30, 1500)
	b := NewMemory()
	e := start(t, h.store, b, testConfig(), &summary{version: 1})
	e.waitLive(t, "customer_summary", h.head())
	e.stop()

	// Version 2 crashes part-way through its build...
	mid := h.head() * 3 / 4
	v2 := &summary{version: 2}
	crashing := &failing{Projection: v2, at: mid}
	e = start(t, h.store, b, testConfig(), crashing)
	waitFor(t, "v2 build failed", func() bool { return e.status(t, "customer_summary").State == StateFailed })
	st := e.status(t, "customer_summary")
	if st.Active != "customer_summary_v1_g1" || st.Rebuild == nil || st.Rebuild.Namespace != "customer_summary_v2_g2" {
		t.Errorf("status %+v", st)
	}
	e.stop()
	done := st.Rebuild.Position
	if done == 0 || done >= mid {
		t.Fatalf("build checkpoint %d, want within (0, %d)", done, mid)
	}

	// ...and the next start resumes it from its checkpoint.
	v2again := &summary{version: 2}
	e = start(t, h.store, b, testConfig(), v2again)
	waitFor(t, "switch", func() bool {
		active, _ := b.Active(context.Background(), "customer_summary")
		return active == "customer_summary_v2_g2"
	})
	e.waitLive(t, "customer_summary", h.head())
	e.stop()
	if d, want := digestOf(t, b, "customer_summary"), replayDigest(t, h.store, &summary{version: 2}); d != want {
		t.Error("resumed version build differs from a full replay")
	}
}

func TestDeterminism(t *testing.T) {
	h := newHistory(t, 12)
	ctx := context.Background()
	b := NewMemory()
	sum, cnt := &summary{}, &counter{}
	e := start(t, h.store, b, testConfig(), sum, cnt)
	// Incremental: the log grows in many small appends while the engine runs.
	for range 20 {
		h.grow(3, 40)
		time.Sleep(time.Millisecond)
	}
	e.waitLive(t, sum.Name(), h.head())
	e.waitLive(t, cnt.Name(), h.head())
	e.stop()

	full1, full2 := NewMemory(), NewMemory()
	for _, fb := range []Backend{full1, full2} {
		if err := Replay(ctx, h.store, fb, []Projection{&summary{}, &counter{}}, testConfig(), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{sum.Name(), cnt.Name()} {
		inc, a, b2 := digestOf(t, b, name), digestOf(t, full1, name), digestOf(t, full2, name)
		if a != b2 {
			t.Errorf("%s: two full rebuilds differ: %s %s", name, a, b2)
		}
		if inc != a {
			t.Errorf("%s: incremental %s, full rebuild %s", name, inc, a)
		}
	}
	// Replay into the engine's backend switches generations in place.
	if err := Replay(ctx, h.store, b, []Projection{&summary{}}, testConfig(), nil); err != nil {
		t.Fatal(err)
	}
	if active, _ := b.Active(ctx, sum.Name()); active != "customer_summary_v1_g2" {
		t.Errorf("active after replay %s", active)
	}
	if d := digestOf(t, b, sum.Name()); d != digestOf(t, full1, sum.Name()) {
		t.Error("replay over an existing read model differs")
	}
}

func TestReplayReportsProgressAndFailures(t *testing.T) {
	h := newHistory(t, 13)
	h.grow(50, 3000)
	ctx := context.Background()
	b := NewMemory()
	cfg := testConfig()
	cfg.PageSize, cfg.BatchSize, cfg.ProgressInterval = 8, 8, time.Millisecond
	var log progressLog
	slow := &counter{name: "slow", fail: func(domain.Envelope) error { time.Sleep(20 * time.Microsecond); return nil }}
	bad := &counter{name: "bad", fail: func(e domain.Envelope) error {
		if e.Position == 100 {
			return errors.New("bug")
		}
		return nil
	}}
	err := Replay(ctx, h.store, b, []Projection{slow, bad}, cfg, log.add)
	var pe *ProjectionError
	if !errors.As(err, &pe) || pe.Projection != "bad" || pe.Position != 100 {
		t.Fatalf("Replay = %v", err)
	}
	if ns, _ := b.Namespaces(ctx); !slices.Equal(ns, []string{"slow_v1_g1"}) {
		t.Errorf("namespaces %v: the failed build should be dropped", ns)
	}
	var during, done int
	for _, p := range log.all() {
		if p.Projection != "slow" {
			continue
		}
		if p.Done {
			done++
			if p.Position != h.head() || p.ETA != 0 {
				t.Errorf("final progress %+v", p)
			}
		} else if p.Position < p.Head {
			during++
		}
	}
	if during == 0 || done != 1 {
		t.Errorf("progress: %d reports during, %d done", during, done)
	}
}

func TestViewAndDigest(t *testing.T) {
	ctx := context.Background()
	b := NewMemory()
	if err := View(ctx, b, "customer_summary", func(Reader) error { return nil }); !errors.Is(err, ErrNotActive) {
		t.Errorf("View before a build = %v", err)
	}
	put := func(ns string, kv ...string) {
		t.Helper()
		if err := b.Update(ctx, ns, func(w Writer) error {
			for i := 0; i < len(kv); i += 2 {
				if err := w.Put(ctx, kv[i], []byte(kv[i+1])); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Same bytes, different split between key and value: different state.
	put("a_v1_g1", "a1", `2`)
	put("a_v1_g2", "a", `12`)
	d1, _ := digestNamespace(ctx, b, "a_v1_g1")
	d2, _ := digestNamespace(ctx, b, "a_v1_g2")
	if d1 == d2 || len(d1) != 64 {
		t.Errorf("digests %s %s", d1, d2)
	}
	// Insertion order does not matter, only state.
	put("b_v1_g1", "k2", "2", "k1", "1")
	put("b_v1_g2", "k1", "1")
	put("b_v1_g2", "k2", "2")
	d3, _ := digestNamespace(ctx, b, "b_v1_g1")
	d4, _ := digestNamespace(ctx, b, "b_v1_g2")
	if d3 != d4 {
		t.Error("equal state, different digests")
	}

	// A switch during a read: fn runs again on the new namespace.
	if err := b.Activate(ctx, "b", "b_v1_g1"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	var got []byte
	err := View(ctx, b, "b", func(r Reader) error {
		calls++
		if calls == 1 {
			put("b_v1_g2", "k1", `"new"`)
			if err := b.Activate(ctx, "b", "b_v1_g2"); err != nil {
				return err
			}
			if err := b.Drop(ctx, "b_v1_g1"); err != nil {
				return err
			}
		}
		v, _, err := r.Get(ctx, "k1")
		got = v
		return err
	})
	if err != nil || calls != 2 || string(got) != `"new"` {
		t.Errorf("View across a switch: calls %d, got %q, err %v", calls, got, err)
	}
}

func TestNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name, ns string
		ver, gen int
		ok       bool
	}{
		{"orders", "orders_v1_g1", 1, 1, true},
		{"orders", "orders_v12_g305", 12, 305, true},
		{"orders", "orders_v2_v1_g1", 0, 0, false}, // read model "orders_v2"
		{"orders_v2", "orders_v2_v1_g1", 1, 1, true},
		{"orders", "orders_v01_g1", 0, 0, false},
		{"orders", "orders_v1_g1x", 0, 0, false},
		{"orders", "orders_v1", 0, 0, false},
		{"orders", "ordersx_v1_g1", 0, 0, false},
		{"orders", "", 0, 0, false},
	} {
		v, g, ok := parseNamespace(tc.name, tc.ns)
		if v != tc.ver || g != tc.gen || ok != tc.ok {
			t.Errorf("parseNamespace(%q, %q) = %d, %d, %v", tc.name, tc.ns, v, g, ok)
		}
		if ok && NamespaceFor(tc.name, v, g) != tc.ns {
			t.Errorf("NamespaceFor does not round-trip %q", tc.ns)
		}
	}
	if ns := "rm_" + NamespaceFor(strings.Repeat("x", 30), maxVersion, 999_999_999); len(ns) > 63 {
		t.Errorf("longest namespace is %d bytes", len(ns))
	}
}

func TestRegisterValidates(t *testing.T) {
	e, err := NewEngine(newHistory(t, 14).store, NewMemory(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Projection{
		&typed{name: "Customer360"}, &typed{name: "drop table"}, &typed{name: "x", version: -1}, nil,
	} {
		if err := e.Register(p); err == nil {
			t.Errorf("Register(%v) accepted", p)
		}
	}
	if _, err := NewEngine(nil, NewMemory(), Config{}); err == nil {
		t.Error("NewEngine without a source")
	}
}
