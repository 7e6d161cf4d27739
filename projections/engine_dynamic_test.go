package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEngineRemoveWhileRunning(t *testing.T) {
	h := newHistory(t, 21)
	h.grow(30, 300)
	b := NewMemory()
	sum, cnt := &summary{}, &counter{name: "js_counter"}
	e := start(t, h.store, b, testConfig(), sum)
	if err := e.Register(cnt); err != nil {
		t.Fatal(err)
	}
	e.waitLive(t, cnt.Name(), h.head())
	st := e.waitLive(t, sum.Name(), h.head())
	if !st.Owned {
		t.Fatalf("summary not owned: %+v", st)
	}

	if err := e.Remove(cnt.Name()); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(cnt.Name()); !errors.Is(err, ErrUnknownProjection) {
		t.Errorf("second Remove = %v, want ErrUnknownProjection", err)
	}
	calls := cnt.calls.Load()
	for range 50 {
		h.touch()
	}
	e.waitLive(t, sum.Name(), h.head()) // the others go on
	if got := cnt.calls.Load(); got != calls {
		t.Errorf("removed projection applied %d more events", got-calls)
	}
	for _, s := range e.Status() {
		if s.Name == cnt.Name() {
			t.Errorf("removed projection still listed: %+v", s)
		}
	}
	leases, err := b.ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.Name == LeaseName(cnt.Name()) && l.Held {
			t.Errorf("lease of a removed projection still held: %+v", l)
		}
	}
	if err := e.WaitFor(context.Background(), 1, cnt.Name()); !errors.Is(err, ErrUnknownProjection) {
		t.Errorf("WaitFor a removed projection = %v", err)
	}

	// Dropped for good: no namespace, no pointer, no lease left behind.
	ctx := context.Background()
	if err := DropReadModel(ctx, b, cnt.Name(), "test-deleter", time.Second, time.Second); err != nil {
		t.Fatal(err)
	}
	spaces, _ := b.Namespaces(ctx)
	for _, ns := range spaces {
		if strings.HasPrefix(ns, cnt.Name()) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	if a, _ := b.Active(ctx, cnt.Name()); a != "" {
		t.Errorf("pointer left behind: %s", a)
	}
	leases, _ = b.ListLeases(ctx)
	for _, l := range leases {
		if strings.HasSuffix(l.Name, "/"+cnt.Name()) {
			t.Errorf("lease left behind: %+v", l)
		}
	}

	// Added again under the same name, it starts from nothing.
	again := &counter{name: "js_counter"}
	if err := e.Register(again); err != nil {
		t.Fatal(err)
	}
	st = e.waitLive(t, again.Name(), h.head())
	if n := checkCounted(t, b, st.Namespace); n != h.head() {
		t.Errorf("re-added projection counted %d events, want %d", n, h.head())
	}
}

func TestEngineReplaceBuildsTheNewVersionBeside(t *testing.T) {
	h := newHistory(t, 22)
	h.grow(40, 400)
	b := NewMemory()
	e := start(t, h.store, b, testConfig())
	if err := e.Register(&summary{version: 1}); err != nil {
		t.Fatal(err)
	}
	st := e.waitLive(t, "customer_summary", h.head())
	if v, _ := IsNamespaceOf("customer_summary", st.Active); v != 1 {
		t.Fatalf("active %s, want version 1", st.Active)
	}
	if err := e.Replace(&summary{version: 1}); err == nil {
		t.Error("Replace with the same version accepted")
	}
	if err := e.Replace(&counter{name: "nobody"}); !errors.Is(err, ErrUnknownProjection) {
		t.Errorf("Replace of an unknown projection = %v", err)
	}

	v2 := &summary{version: 2}
	if err := e.Replace(v2); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		h.touch() // appends go on during the build
	}
	head := h.head()
	waitFor(t, "version 2 active and live", func() bool {
		st = e.status(t, v2.Name())
		if st.State == StateFailed {
			t.Fatalf("failed: %v", st.Err)
		}
		v, _ := IsNamespaceOf(v2.Name(), st.Active)
		return v == 2 && st.State == StateLive && st.Checkpoint >= head && st.Rebuild == nil
	})
	if got, want := digestOf(t, b, v2.Name()), replayDigest(t, h.store, &summary{version: 2}); got != want {
		t.Errorf("digest after Replace %s, replay of version 2 %s", got, want)
	}
	spaces, _ := b.Namespaces(context.Background())
	for _, ns := range spaces {
		if v, ok := IsNamespaceOf(v2.Name(), ns); ok && v == 1 {
			t.Errorf("old version's namespace %s left behind", ns)
		}
	}
}

// Two engines on one backend learn of an added projection at different
// moments, and of its replacement and removal; it is applied exactly once
// throughout, by whichever engine holds its lease.
func TestEnginesShareARuntimeProjectionExactlyOnce(t *testing.T) {
	h := newHistory(t, 23)
	h.grow(20, 200)
	b := NewMemory()
	cfg := testConfig()
	cfg.LeaseTTL, cfg.LeaseInterval = 200*time.Millisecond, 20*time.Millisecond
	e1 := start(t, h.store, b, cfg)
	e2 := start(t, h.store, b, cfg)
	const name = "js_shared"
	if err := e1.Register(&counter{name: name}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		h.touch()
	}
	if err := e2.Register(&counter{name: name}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		h.touch()
	}
	// The owner drops it (a delete seen there first): the other takes over.
	owner, other := e1, e2
	if !e1.status(t, name).Owned {
		owner, other = e2, e1
	}
	if err := owner.Remove(name); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		h.touch()
	}
	st := other.waitLive(t, name, h.head())
	if !st.Owned {
		t.Fatalf("the remaining engine does not own %s: %+v", name, st)
	}
	if n := checkCounted(t, b, st.Namespace); n != h.head() {
		t.Errorf("counted %d events, want %d", n, h.head())
	}
}

// Adds, replacements and removals race with each other, with appends and
// with the engine's own lease work (run with -race).
func TestEngineRuntimeChangesRace(t *testing.T) {
	h := newHistory(t, 24)
	h.grow(20, 100)
	b := NewMemory()
	cfg := testConfig()
	cfg.LeaseTTL, cfg.LeaseInterval = 100*time.Millisecond, 10*time.Millisecond
	e := start(t, h.store, b, cfg, &summary{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			name := fmt.Sprintf("js_race_%d", w)
			for i := range 15 {
				if err := e.Register(&summary2{name: name, version: 1}); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := e.Replace(&summary2{name: name, version: 2}); err != nil {
						t.Error(err)
						return
					}
				}
				_ = e.Status()
				if err := e.Remove(name); err != nil {
					t.Error(err)
					return
				}
			}
			if err := e.Register(&summary2{name: name, version: 3}); err != nil {
				t.Error(err)
			}
		})
	}
	for range 100 {
		h.touch()
	}
	wg.Wait()
	head := h.head()
	want := replayDigest(t, h.store, &summary2{name: "js_race_0", version: 3})
	for w := range 3 {
		name := fmt.Sprintf("js_race_%d", w)
		waitFor(t, name+" at version 3", func() bool {
			st := e.status(t, name)
			v, _ := IsNamespaceOf(name, st.Active)
			return v == 3 && st.State == StateLive && st.Checkpoint >= head
		})
		// Another name, the same code: the same state.
		if got := digestOf(t, b, name); got != want {
			t.Errorf("%s digest %s, replay %s", name, got, want)
		}
	}
}

// summary2 is summary under another name.
type summary2 struct {
	name    string
	version int
	summary
}

func (p *summary2) Name() string { return p.name }
func (p *summary2) Version() int { return p.version }
