package projections

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
)

// ownConfig is testConfig with leases short enough to hand over quickly.
func ownConfig(owner string) Config {
	c := testConfig()
	c.Owner, c.LeaseTTL, c.LeaseInterval = owner, 300*time.Millisecond, 30*time.Millisecond
	return c
}

// owners returns which of the engines owns projection name (by Status),
// failing the test if more than one claims it.
func owners(t *testing.T, name string, es ...*running) []*running {
	t.Helper()
	var out []*running
	for _, e := range es {
		if e.status(t, name).Owned {
			out = append(out, e)
		}
	}
	if len(out) > 1 {
		t.Fatalf("%d engines own %s at once", len(out), name)
	}
	return out
}

// TestEnginesShareOneBackend runs two engines on one backend, as two
// processes on one PostgreSQL schema would: each projection has one owner,
// every event is applied exactly once, the standby serves reads consistent
// with a position it waited for, and when the owner shuts down the other
// takes over from the stored checkpoint.
func TestEnginesShareOneBackend(t *testing.T) {
	h := newHistory(t, 21)
	h.grow(30, 300)
	b := NewMemory()
	cnt, sum := &counter{}, &summary{}
	a := start(t, h.store, b, ownConfig("engine-a"), cnt, sum)
	a.waitLive(t, cnt.Name(), h.head())
	other := start(t, h.store, b, ownConfig("engine-b"), &counter{}, &summary{})

	h.grow(5, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Read-your-writes through the engine that does not own them.
	if err := other.WaitFor(ctx, h.head(), cnt.Name(), sum.Name()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cnt.Name(), sum.Name()} {
		if o := owners(t, name, a, other); len(o) != 1 || o[0] != a {
			t.Fatalf("%s: owner is not the first engine", name)
		}
		var st Status
		waitFor(t, "standby status", func() bool { st = other.status(t, name); return st.Checkpoint >= h.head() })
		if st.State != StateStandby || st.Owner != "engine-a" || st.Owned || st.Lag != 0 {
			t.Fatalf("%s on the second engine: %+v, want standby owned by engine-a", name, st)
		}
	}
	st := a.status(t, cnt.Name())
	checkCounted(t, b, st.Namespace)

	// The owner shuts down cleanly: the other takes over and goes on.
	a.stop()
	waitFor(t, "takeover", func() bool {
		return other.status(t, cnt.Name()).Owned && other.status(t, sum.Name()).Owned
	})
	h.grow(3, 150)
	if err := other.WaitFor(ctx, h.head(), cnt.Name(), sum.Name()); err != nil {
		t.Fatal(err)
	}
	if cp := checkCounted(t, b, st.Namespace); cp != h.head() {
		t.Fatalf("checkpoint %d after takeover, head %d", cp, h.head())
	}
	for _, p := range []Projection{&counter{}, &summary{}} {
		if d, want := digestOf(t, b, p.Name()), replayDigest(t, h.store, p); d != want {
			t.Errorf("%s: digest after a handover differs from a single replay", p.Name())
		}
	}
}

// pausable is a backend whose lease renewals hang while paused: the owner
// process is stopped (SIGSTOP, a long GC pause) while its lease runs out.
type pausable struct {
	Backend
	mu     sync.Mutex
	paused chan struct{} // non-nil while paused; closed to resume
}

func (p *pausable) pause() {
	p.mu.Lock()
	p.paused = make(chan struct{})
	p.mu.Unlock()
}

func (p *pausable) resume() {
	p.mu.Lock()
	close(p.paused)
	p.paused = nil
	p.mu.Unlock()
}

func (p *pausable) RenewLease(ctx context.Context, l Lease, ttl time.Duration) error {
	p.mu.Lock()
	ch := p.paused
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return p.Backend.RenewLease(ctx, l, ttl)
}

// gatedCounter is a counter whose Apply waits while its gate is shut.
type gatedCounter struct {
	counter
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (g *gatedCounter) shut() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedCounter) open() {
	g.mu.Lock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
	g.mu.Unlock()
}

func (g *gatedCounter) Apply(tx *Tx, e domain.Envelope) error {
	g.mu.Lock()
	ch := g.gate
	g.mu.Unlock()
	if ch != nil {
		g.calls.Add(1) // seen blocking; counted again by the counter
		<-ch
	}
	return g.counter.Apply(tx, e)
}

// TestPausedOwnerCommitsNothing pauses the owner in the middle of a batch
// until its lease has expired and another engine has taken the projection
// over and applied the same events: when it wakes, its commit is fenced,
// it steps down, and every event still counts exactly once.
func TestPausedOwnerCommitsNothing(t *testing.T) {
	h := newHistory(t, 22)
	h.grow(20, 200)
	mem := NewMemory()
	slow := &pausable{Backend: mem}
	gated := &gatedCounter{}
	a := start(t, h.store, slow, ownConfig("engine-a"), gated)
	a.waitLive(t, gated.Name(), h.head())

	// Pause a: its renewals hang and its next batch blocks in Apply.
	slow.pause()
	gated.shut()
	before := gated.calls.Load()
	h.grow(2, 50)
	waitFor(t, "the owner blocked in its next batch", func() bool { return gated.calls.Load() > before })

	b := start(t, h.store, mem, ownConfig("engine-b"), &counter{})
	waitFor(t, "takeover by the second engine", func() bool { return b.status(t, gated.Name()).Owned })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.WaitFor(ctx, h.head(), gated.Name()); err != nil {
		t.Fatal(err)
	}

	// a wakes: its batch finishes, its commit must be refused.
	gated.open()
	slow.resume()
	waitFor(t, "the paused owner stepping down", func() bool { return !a.status(t, gated.Name()).Owned })
	h.grow(1, 40)
	if err := b.WaitFor(ctx, h.head(), gated.Name()); err != nil {
		t.Fatal(err)
	}
	ns := b.status(t, gated.Name()).Namespace
	if cp := checkCounted(t, mem, ns); cp != h.head() {
		t.Fatalf("checkpoint %d, head %d", cp, h.head())
	}
	if d, want := digestOf(t, mem, gated.Name()), replayDigest(t, h.store, &counter{}); d != want {
		t.Error("digest after a fenced owner differs from a single replay")
	}
}

// TestRebuildByAnotherEngine rebuilds a read model from the engine that
// does not own it, while the owner applies new events: one rebuild at a
// time across engines, the switch waits until the new generation has
// caught up with the owner's, the owner goes on on the new generation,
// and the result equals a single replay. Replay beside running engines
// does the same for every read model.
func TestRebuildByAnotherEngine(t *testing.T) {
	h := newHistory(t, 23)
	h.grow(25, 400)
	b := NewMemory()
	cnt := &counter{}
	owner := start(t, h.store, b, ownConfig("engine-a"), cnt)
	owner.waitLive(t, cnt.Name(), h.head())
	other := start(t, h.store, b, ownConfig("engine-b"), &counter{})
	before := owner.status(t, cnt.Name()).Namespace

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		for range 20 {
			h.touch()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var log progressLog
	if err := other.Rebuild(ctx, cnt.Name(), log.add); err != nil {
		t.Fatal(err)
	}
	<-writing
	after, err := b.Active(ctx, cnt.Name())
	if err != nil || after == before {
		t.Fatalf("active namespace after the rebuild: %s (before %s), %v", after, before, err)
	}
	if reps := log.all(); len(reps) == 0 || !reps[len(reps)-1].Done {
		t.Fatalf("progress reports %+v: want a last one with Done", reps)
	}
	// A second build while one runs elsewhere is refused: hold the lease.
	l, err := b.AcquireLease(ctx, RebuildLeaseName(cnt.Name()), "someone-else", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Rebuild(ctx, cnt.Name(), nil); !errors.Is(err, ErrRebuildInProgress) {
		t.Fatalf("a rebuild while another holds the rebuild lease: %v, want ErrRebuildInProgress", err)
	}
	if err := b.ReleaseLease(ctx, l); err != nil {
		t.Fatal(err)
	}

	h.grow(1, 30)
	if err := other.WaitFor(ctx, h.head(), cnt.Name()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the owner on the new generation", func() bool {
		st := owner.status(t, cnt.Name())
		return st.Owned && st.Namespace == after && st.Checkpoint >= h.head()
	})
	if cp := checkCounted(t, b, after); cp != h.head() {
		t.Fatalf("checkpoint %d, head %d", cp, h.head())
	}
	if ns, _ := b.Namespaces(ctx); slices.Contains(ns, before) {
		t.Fatalf("the old generation %s is still there: %v", before, ns)
	}

	// Replay beside the running engines: every read model switched, the
	// owner follows.
	if err := Replay(ctx, h.store, b, []Projection{&counter{}}, ownConfig("replay"), nil); err != nil {
		t.Fatal(err)
	}
	third, _ := b.Active(ctx, cnt.Name())
	if third == after {
		t.Fatal("Replay did not switch to a new generation")
	}
	h.grow(1, 10)
	if err := owner.WaitFor(ctx, h.head(), cnt.Name()); err != nil {
		t.Fatal(err)
	}
	checkCounted(t, b, third)
	if d, want := digestOf(t, b, cnt.Name()), replayDigest(t, h.store, &counter{}); d != want {
		t.Error("digest after rebuilds beside a live owner differs from a single replay")
	}
}
