package catalog_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// appendAll writes envelopes to the store as a service would have.
func appendAll(t *testing.T, ctx context.Context, s eventstore.Store, envs []domain.Envelope) {
	t.Helper()
	for _, e := range envs {
		typ, v, data, err := domain.Encode(e.Event)
		if err != nil {
			t.Fatal(err)
		}
		md := e.Metadata
		md.SchemaVersion = v
		if _, err := s.Append(ctx, e.Stream, eventstore.Any, eventstore.EventData{ID: e.ID, Type: typ, Data: data, Metadata: eventstore.Metadata(md)}); err != nil {
			t.Fatal(err)
		}
	}
}

// digests returns every catalogued read model's state digest.
func digests(t *testing.T, ctx context.Context, b projections.Backend) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range catalog.All(catalog.Deps{}) {
		d, err := projections.Digest(ctx, b, p.Name())
		if err != nil {
			t.Fatalf("digest %s: %v", p.Name(), err)
		}
		out[p.Name()] = d
	}
	return out
}

func replay(t *testing.T, ctx context.Context, s eventstore.Store, b projections.Backend) map[string]string {
	t.Helper()
	if err := projections.Replay(ctx, s, b, catalog.All(catalog.Deps{}), projections.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	return digests(t, ctx, b)
}

func startEngine(t *testing.T, ctx context.Context, s eventstore.Store, b projections.Backend) (*projections.Engine, func()) {
	t.Helper()
	e, err := projections.NewEngine(s, b, projections.Config{BatchSize: 64, PageSize: 50, HeadInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range catalog.All(catalog.Deps{}) {
		if err := e.Register(p); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	return e, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine run: %v", err)
		}
	}
}

// waitCaughtUp polls the engine's status until every read model has
// applied the store's head, or fails at the deadline.
func waitCaughtUp(t *testing.T, ctx context.Context, e *projections.Engine, s eventstore.Store) {
	t.Helper()
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		behind := ""
		for _, st := range e.Status() {
			if st.State == projections.StateFailed {
				t.Fatalf("%s failed: %v", st.Name, st.Err)
			}
			if st.Checkpoint < head || st.Rebuild != nil {
				behind = st.Name
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach position %d: %+v", behind, head, e.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEngineOnEveryBackend runs every read model live on every read-model
// backend while history grows, rebuilds one side by side mid-way, and
// checks that the live state equals a from-scratch replay, twice.
func TestEngineOnEveryBackend(t *testing.T) {
	history := projectiontest.RandomHistory(t, 7, 900)
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		store := memstore.New(memstore.Config{})
		appendAll(t, ctx, store, history[:300])

		e, stop := startEngine(t, ctx, store, b)
		waitCaughtUp(t, ctx, e, store)
		appendAll(t, ctx, store, history[300:600]) // live
		waitCaughtUp(t, ctx, e, store)

		rebuilt := make(chan error, 1)
		go func() { rebuilt <- e.Rebuild(ctx, "customer360", nil) }()
		appendAll(t, ctx, store, history[600:]) // during the rebuild
		if err := <-rebuilt; err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(t, ctx, e, store)
		live := digests(t, ctx, b)
		stop()

		for i := range 2 {
			fresh := projectiontest.Memory(t)
			if got := replay(t, ctx, store, fresh); !equal(got, live) {
				t.Fatalf("replay %d differs from the live read models:\nlive   %v\nreplay %v", i, live, got)
			}
		}
	})
}

// failingBackend fails one Update after its writes were made, as a crash
// before commit would: nothing of that transaction may persist.
type failingBackend struct {
	projections.Backend
	failAt, calls atomic.Int64
}

var errCrash = errors.New("simulated crash before commit")

func (f *failingBackend) Update(ctx context.Context, ns string, fn func(projections.Writer) error) error {
	return f.Backend.Update(ctx, ns, f.failing(fn))
}

// Commit is the engine runners' write: it fails the same way.
func (f *failingBackend) Commit(ctx context.Context, ns string, c projections.Claim, fn func(projections.Writer) error) error {
	return f.Backend.Commit(ctx, ns, c, f.failing(fn))
}

// failing wraps fn to fail after its writes when it is the failAt-th
// transaction.
func (f *failingBackend) failing(fn func(projections.Writer) error) func(projections.Writer) error {
	n := f.calls.Add(1)
	return func(w projections.Writer) error {
		if err := fn(w); err != nil {
			return err
		}
		if n == f.failAt.Load() {
			return errCrash
		}
		return nil
	}
}

// TestCrashAndResumeOnEveryBackend fails a read-model transaction mid-way,
// restarts the engine on the same backend, and checks that it resumes from
// the checkpoints and converges on the state of a full replay.
func TestCrashAndResumeOnEveryBackend(t *testing.T) {
	history := projectiontest.RandomHistory(t, 11, 600)
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		store := memstore.New(memstore.Config{})
		appendAll(t, ctx, store, history)

		crashing := &failingBackend{Backend: b}
		crashing.failAt.Store(9)
		e, stop := startEngine(t, ctx, store, crashing)
		deadline := time.Now().Add(60 * time.Second)
		for failed := false; !failed; {
			for _, st := range e.Status() {
				if st.State == projections.StateFailed {
					if !errors.Is(st.Err, errCrash) {
						t.Fatalf("%s failed with %v, want the simulated crash", st.Name, st.Err)
					}
					failed = true
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("the simulated crash never happened")
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop()

		e, stop = startEngine(t, ctx, store, b)
		waitCaughtUp(t, ctx, e, store)
		resumed := digests(t, ctx, b)
		stop()
		if want := replay(t, ctx, store, projectiontest.Memory(t)); !equal(resumed, want) {
			t.Fatalf("after crash and resume the read models differ from a replay:\nresumed %v\nreplay  %v", resumed, want)
		}
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
