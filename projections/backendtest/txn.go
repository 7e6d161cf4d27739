package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/cxledger/cxledger/projections"
)

func (s *suite) atomicityTests() []test {
	return []test{
		{"FailedUpdateWritesNothing", func(t *testing.T, ctx context.Context, b projections.Backend) {
			a, c := uuid.New(), uuid.New()
			before := []kv{{customerKey(a), customerDoc(a, "Ada Obi", 1)}, {customerKey(c), customerDoc(c, "Chen Wei", 1)}}
			put(t, ctx, b, "customers", 10, before...)
			err := b.Update(ctx, "customers", func(w projections.Writer) error {
				n := uuid.New()
				for _, step := range []func() error{
					func() error { return w.Put(ctx, customerKey(n), []byte(customerDoc(n, "New One", 1))) },
					func() error { return w.Put(ctx, customerKey(a), []byte(customerDoc(a, "Ada Obi", 2))) },
					func() error { return w.Delete(ctx, customerKey(c)) },
					func() error { return w.SetCheckpoint(ctx, 20) },
				} {
					if err := step(); err != nil {
						return err
					}
				}
				return fmt.Errorf("apply event 20: %w", errBoom)
			})
			if !errors.Is(err, errBoom) {
				t.Fatalf("Update returned %v, want fn's error in the chain", err)
			}
			if d := equalKV(dump(t, ctx, b, "customers"), sortedKV(before)); d != "" {
				t.Fatalf("a failed Update changed the namespace: %s", d)
			}
			if got := checkpoint(t, ctx, b, "customers"); got != 10 {
				t.Fatalf("checkpoint %d after a failed Update, want 10", got)
			}
		}},
		{"FailedFirstUpdateCreatesNothing", func(t *testing.T, ctx context.Context, b projections.Backend) {
			err := b.Update(ctx, "fresh", func(w projections.Writer) error {
				if err := w.Put(ctx, "k", []byte(`{}`)); err != nil {
					return err
				}
				return errBoom
			})
			if !errors.Is(err, errBoom) {
				t.Fatalf("Update returned %v, want errBoom", err)
			}
			if got := checkpoint(t, ctx, b, "fresh"); got != 0 {
				t.Fatalf("checkpoint %d, want 0", got)
			}
			if got := dump(t, ctx, b, "fresh"); len(got) != 0 {
				t.Fatalf("failed Update left %d pairs", len(got))
			}
		}},
		{"ConcurrentUpdates", func(t *testing.T, ctx context.Context, b projections.Backend) {
			// Runners of different projections commit concurrently; each
			// namespace must end with every one of its batches.
			const runners, batches, perBatch = 4, 15, 20
			var g errgroup.Group
			for r := range runners {
				ns := fmt.Sprintf("model_%d", r)
				g.Go(func() error {
					for i := range batches {
						err := b.Update(ctx, ns, func(w projections.Writer) error {
							for j := range perBatch {
								if err := w.Put(ctx, fmt.Sprintf("k:%03d:%03d", i, j), []byte(fmt.Sprintf(`{"runner":%d}`, r))); err != nil {
									return err
								}
							}
							return w.SetCheckpoint(ctx, uint64(i+1))
						})
						if err != nil {
							return fmt.Errorf("%s batch %d: %w", ns, i, err)
						}
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			for r := range runners {
				ns := fmt.Sprintf("model_%d", r)
				if got := len(dump(t, ctx, b, ns)); got != batches*perBatch {
					t.Errorf("%s holds %d keys, want %d", ns, got, batches*perBatch)
				}
				if got := checkpoint(t, ctx, b, ns); got != batches {
					t.Errorf("%s checkpoint %d, want %d", ns, got, batches)
				}
			}
		}},
	}
}

func (s *suite) checkpointTests() []test {
	return []test{
		{"PerNamespace", func(t *testing.T, ctx context.Context, b projections.Backend) {
			if got := checkpoint(t, ctx, b, "timeline_v1"); got != 0 {
				t.Fatalf("checkpoint of a missing namespace = %d, want 0", got)
			}
			put(t, ctx, b, "timeline_v1", 5)
			put(t, ctx, b, "timeline_v2", 9)
			put(t, ctx, b, "timeline_v1", 1<<62+7)
			if got := checkpoint(t, ctx, b, "timeline_v1"); got != 1<<62+7 {
				t.Errorf("timeline_v1 checkpoint %d, want %d", got, uint64(1<<62+7))
			}
			if got := checkpoint(t, ctx, b, "timeline_v2"); got != 9 {
				t.Errorf("timeline_v2 checkpoint %d, want 9", got)
			}
		}},
		{"UpdateWithoutCheckpointKeepsIt", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "timeline", 42)
			if err := b.Update(ctx, "timeline", func(w projections.Writer) error {
				return w.Put(ctx, "k", []byte(`1`))
			}); err != nil {
				t.Fatal(err)
			}
			if got := checkpoint(t, ctx, b, "timeline"); got != 42 {
				t.Fatalf("checkpoint %d, want 42", got)
			}
		}},
		{"LastSetCheckpointWins", func(t *testing.T, ctx context.Context, b projections.Backend) {
			err := b.Update(ctx, "timeline", func(w projections.Writer) error {
				for _, p := range []uint64{3, 8, 6} {
					if err := w.SetCheckpoint(ctx, p); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := checkpoint(t, ctx, b, "timeline"); got != 6 {
				t.Fatalf("checkpoint %d, want 6 (the last one set)", got)
			}
		}},
	}
}

func (s *suite) cancellationTests() []test {
	return []test{
		{"CancelledBeforeUpdate", func(t *testing.T, ctx context.Context, b projections.Backend) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			called := false
			err := b.Update(cctx, "customers", func(w projections.Writer) error {
				called = true
				if err := w.Put(cctx, "k", []byte(`1`)); err != nil {
					return err
				}
				return w.SetCheckpoint(cctx, 1)
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Update with a cancelled context returned %v (fn called: %v), want context.Canceled", err, called)
			}
			if checkpoint(t, ctx, b, "customers") != 0 || len(dump(t, ctx, b, "customers")) != 0 {
				t.Fatal("a cancelled Update wrote")
			}
		}},
		{"CancelledDuringUpdate", func(t *testing.T, ctx context.Context, b projections.Backend) {
			// Commit or not is the backend's choice, but the outcome must
			// match what Update reports.
			cctx, cancel := context.WithCancel(ctx)
			err := b.Update(cctx, "customers", func(w projections.Writer) error {
				if err := w.Put(cctx, "k", []byte(`1`)); err != nil {
					return err
				}
				if err := w.SetCheckpoint(cctx, 1); err != nil {
					return err
				}
				cancel()
				return nil
			})
			cp := checkpoint(t, ctx, b, "customers")
			_, ok := get(t, ctx, b, "customers", "k")
			switch {
			case err == nil && (cp != 1 || !ok):
				t.Fatalf("Update reported success but checkpoint is %d, key present %v", cp, ok)
			case err != nil && (cp != 0 || ok):
				t.Fatalf("Update reported %v but committed (checkpoint %d, key present %v)", err, cp, ok)
			case err != nil && !errors.Is(err, context.Canceled):
				t.Fatalf("Update returned %v, want nil or context.Canceled", err)
			}
		}},
		{"CancelledView", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "customers", 1, kv{"a", `1`}, kv{"b", `2`})
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			err := b.View(cctx, "customers", func(r projections.Reader) error {
				_, _, err := r.Get(cctx, "a")
				return err
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("View with a cancelled context returned %v, want context.Canceled", err)
			}
			// Cancelled while the View is open: reads fail with the cause.
			cctx, cancel = context.WithCancel(ctx)
			err = b.View(cctx, "customers", func(r projections.Reader) error {
				cancel()
				if _, _, err := r.Get(cctx, "a"); !errors.Is(err, context.Canceled) {
					return fmt.Errorf("get after cancel: %v, want context.Canceled", err)
				}
				return r.Scan(cctx, "", "", func(string, []byte) (bool, error) { return true, nil })
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Scan after cancel returned %v, want context.Canceled", err)
			}
		}},
	}
}

func (s *suite) closeTests() []test {
	return []test{
		{"CallsFailAfterClose", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "customers", 1, kv{"a", `1`})
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := b.Update(ctx, "customers", func(projections.Writer) error { return nil }); err == nil {
				t.Error("Update after Close succeeded")
			}
			if err := b.View(ctx, "customers", func(projections.Reader) error { return nil }); err == nil {
				t.Error("View after Close succeeded")
			}
			if !s.features.ClosedEverywhere {
				t.Log("backend does not promise ClosedEverywhere: other methods after Close not checked")
				return
			}
			if _, err := b.Checkpoint(ctx, "customers"); err == nil {
				t.Error("Checkpoint after Close succeeded")
			}
			if _, err := b.Active(ctx, "customers"); err == nil {
				t.Error("Active after Close succeeded")
			}
			if err := b.Activate(ctx, "customers", "customers"); err == nil {
				t.Error("Activate after Close succeeded")
			}
			if err := b.Drop(ctx, "customers"); err == nil {
				t.Error("Drop after Close succeeded")
			}
			if _, err := b.Namespaces(ctx); err == nil {
				t.Error("Namespaces after Close succeeded")
			}
		}},
	}
}

func sortedKV(pairs []kv) []kv {
	out := slices.Clone(pairs)
	slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	return out
}
