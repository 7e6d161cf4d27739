package backendtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/projections"
)

// shortTTL is the lease time of the expiry tests: long enough that a
// renewal in the same test never races it, short enough to wait out.
const shortTTL = 150 * time.Millisecond

// acquireWhenFree acquires name for owner, retrying while another owner's
// lease has not expired yet by the backend's clock (bounded by ctx).
func acquireWhenFree(t *testing.T, ctx context.Context, b projections.Backend, name, owner string) projections.Lease {
	t.Helper()
	for {
		l, err := b.AcquireLease(ctx, name, owner, time.Minute)
		if err == nil {
			return l
		}
		if !errors.Is(err, projections.ErrLeaseHeld) {
			t.Fatalf("AcquireLease(%s, %s): %v", name, owner, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lease %s never expired: %v", name, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// commitPut is a fenced Commit of one pair and a checkpoint.
func commitPut(ctx context.Context, b projections.Backend, ns string, c projections.Claim, key, value string, checkpoint uint64) error {
	return b.Commit(ctx, ns, c, func(w projections.Writer) error {
		if err := w.Put(ctx, key, []byte(value)); err != nil {
			return err
		}
		return w.SetCheckpoint(ctx, checkpoint)
	})
}

func wantFenced(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, projections.ErrFenced) {
		t.Fatalf("%s: got %v, want an error wrapping ErrFenced", what, err)
	}
}

func (s *suite) leaseTests() []test {
	return []test{
		{"AcquireRenewRelease", func(t *testing.T, ctx context.Context, b projections.Backend) {
			name := "projection/" + uuid.NewString()
			a, err := b.AcquireLease(ctx, name, "owner-a", time.Minute)
			if err != nil || a.Epoch < 1 || a.Owner != "owner-a" || a.Name != name {
				t.Fatalf("first AcquireLease: %+v, %v", a, err)
			}
			again, err := b.AcquireLease(ctx, name, "owner-a", time.Minute)
			if err != nil || again != a {
				t.Fatalf("holder's AcquireLease again: %+v, %v; want the same lease %+v", again, err, a)
			}
			if _, err := b.AcquireLease(ctx, name, "owner-b", time.Minute); !errors.Is(err, projections.ErrLeaseHeld) {
				t.Fatalf("AcquireLease of a held lease: %v, want ErrLeaseHeld", err)
			}
			if err := b.RenewLease(ctx, a, time.Minute); err != nil {
				t.Fatalf("RenewLease: %v", err)
			}
			if err := b.ReleaseLease(ctx, a); err != nil {
				t.Fatalf("ReleaseLease: %v", err)
			}
			if err := b.RenewLease(ctx, a, time.Minute); !errors.Is(err, projections.ErrLeaseLost) {
				t.Fatalf("RenewLease after release: %v, want ErrLeaseLost", err)
			}
			bl, err := b.AcquireLease(ctx, name, "owner-b", time.Minute)
			if err != nil {
				t.Fatalf("AcquireLease after release: %v", err)
			}
			if bl.Epoch <= a.Epoch {
				t.Fatalf("epoch after a release went from %d to %d: a release must keep the epoch so the next owner's grows", a.Epoch, bl.Epoch)
			}
			list, err := b.ListLeases(ctx)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, li := range list {
				if li.Name == name {
					found = true
					if li.Lease != bl || !li.Held || li.ExpiresIn <= 0 {
						t.Fatalf("ListLeases: %+v, want %+v held", li, bl)
					}
				}
			}
			if !found {
				t.Fatalf("ListLeases does not list %s: %+v", name, list)
			}
		}},
		{"ExpiryHandsOver", func(t *testing.T, ctx context.Context, b projections.Backend) {
			name := "reactor/" + uuid.NewString()
			a, err := b.AcquireLease(ctx, name, "owner-a", shortTTL)
			if err != nil {
				t.Fatal(err)
			}
			bl := acquireWhenFree(t, ctx, b, name, "owner-b")
			if bl.Epoch != a.Epoch+1 {
				t.Fatalf("takeover epoch %d, want %d", bl.Epoch, a.Epoch+1)
			}
			if err := b.RenewLease(ctx, a, time.Minute); !errors.Is(err, projections.ErrLeaseLost) {
				t.Fatalf("the former owner renewed a lease taken over: %v, want ErrLeaseLost", err)
			}
			// The former owner acquiring again while b holds it is refused.
			if _, err := b.AcquireLease(ctx, name, "owner-a", time.Minute); !errors.Is(err, projections.ErrLeaseHeld) {
				t.Fatalf("AcquireLease by the former owner: %v, want ErrLeaseHeld", err)
			}
		}},
		{"BadArguments", func(t *testing.T, ctx context.Context, b projections.Backend) {
			for _, tc := range []struct {
				name, owner string
				ttl         time.Duration
			}{{"", "o", time.Second}, {"n", "", time.Second}, {"n", "o", 0}} {
				if _, err := b.AcquireLease(ctx, tc.name, tc.owner, tc.ttl); err == nil {
					t.Errorf("AcquireLease(%q, %q, %s) succeeded", tc.name, tc.owner, tc.ttl)
				}
			}
		}},
	}
}

func (s *suite) fenceTests() []test {
	return []test{
		{"CommitNeverCreates", func(t *testing.T, ctx context.Context, b projections.Backend) {
			err := commitPut(ctx, b, "orders_v1_g2", projections.Claim{}, "k", `{}`, 1)
			wantFenced(t, err, "Commit to a missing namespace")
			spaces, err := b.Namespaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range spaces {
				if ns == "orders_v1_g2" {
					t.Fatal("Commit created the namespace it was refused")
				}
			}
		}},
		{"CommitComparesCheckpoint", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "orders", 10)
			wantFenced(t, commitPut(ctx, b, "orders", projections.Claim{From: 7}, "k", `{"stale":true}`, 12), "Commit from a stale checkpoint")
			if _, ok := get(t, ctx, b, "orders", "k"); ok {
				t.Fatal("a fenced Commit wrote its value")
			}
			if err := commitPut(ctx, b, "orders", projections.Claim{From: 10}, "k", `{"n":1}`, 12); err != nil {
				t.Fatalf("Commit from the current checkpoint: %v", err)
			}
			if got := checkpoint(t, ctx, b, "orders"); got != 12 {
				t.Fatalf("checkpoint %d, want 12", got)
			}
		}},
		{"OneOfConcurrentCommitsWins", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "orders", 5)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() {
					errs[i] = commitPut(ctx, b, "orders", projections.Claim{From: 5}, "k", `{"writer":`+string(rune('0'+i))+`}`, 6)
				})
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, projections.ErrFenced):
					t.Fatalf("a losing Commit: %v, want ErrFenced", err)
				}
			}
			if won != 1 {
				t.Fatalf("%d commits from the same checkpoint succeeded, want exactly 1", won)
			}
		}},
		{"PausedOwnerCannotCommit", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "orders", 3)
			name := "projection/orders/" + uuid.NewString()
			a, err := b.AcquireLease(ctx, name, "owner-a", shortTTL)
			if err != nil {
				t.Fatal(err)
			}
			// a "pauses" past its lease; b takes over and commits.
			bl := acquireWhenFree(t, ctx, b, name, "owner-b")
			if err := commitPut(ctx, b, "orders", projections.Claim{Lease: bl, From: 3}, "k", `{"by":"b"}`, 4); err != nil {
				t.Fatalf("the new owner's Commit: %v", err)
			}
			// a wakes and commits what it had applied from 3, and even
			// from the new checkpoint: both are refused.
			wantFenced(t, commitPut(ctx, b, "orders", projections.Claim{Lease: a, From: 3}, "k", `{"by":"a"}`, 4), "stale owner, stale checkpoint")
			wantFenced(t, commitPut(ctx, b, "orders", projections.Claim{Lease: a, From: 4}, "k", `{"by":"a"}`, 5), "stale owner, current checkpoint")
			if v, _ := get(t, ctx, b, "orders", "k"); v != `{"by":"b"}` {
				t.Fatalf("value %s, want the new owner's", v)
			}
			if got := checkpoint(t, ctx, b, "orders"); got != 4 {
				t.Fatalf("checkpoint %d, want 4", got)
			}
		}},
		{"ActivateRetiresTheOldNamespace", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "orders_v1_g1", 9)
			put(t, ctx, b, "orders_v1_g2", 9)
			if err := b.Activate(ctx, "orders", "orders_v1_g1"); err != nil {
				t.Fatal(err)
			}
			if err := commitPut(ctx, b, "orders_v1_g1", projections.Claim{From: 9}, "k", `{}`, 10); err != nil {
				t.Fatalf("Commit to the active namespace: %v", err)
			}
			if err := b.Activate(ctx, "orders", "orders_v1_g2"); err != nil {
				t.Fatal(err)
			}
			wantFenced(t, commitPut(ctx, b, "orders_v1_g1", projections.Claim{From: 10}, "k2", `{}`, 11), "Commit to a namespace switched away from")
			if err := commitPut(ctx, b, "orders_v1_g2", projections.Claim{From: 9}, "k", `{}`, 10); err != nil {
				t.Fatalf("Commit to the newly active namespace: %v", err)
			}
			if err := b.Drop(ctx, "orders_v1_g1"); err != nil {
				t.Fatal(err)
			}
			wantFenced(t, commitPut(ctx, b, "orders_v1_g1", projections.Claim{From: 10}, "k2", `{}`, 11), "Commit to a dropped namespace")
		}},
		{"CheckpointNeverMovesBackwards", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "orders", 20, kv{"a", `{"v":1}`})
			err := b.Update(ctx, "orders", func(w projections.Writer) error {
				if err := w.Put(ctx, "a", []byte(`{"v":2}`)); err != nil {
					return err
				}
				return w.SetCheckpoint(ctx, 19)
			})
			if !errors.Is(err, projections.ErrCheckpointBackwards) {
				t.Fatalf("Update moving the checkpoint from 20 to 19: %v, want ErrCheckpointBackwards", err)
			}
			err = commitPut(ctx, b, "orders", projections.Claim{From: 20}, "a", `{"v":3}`, 2)
			if !errors.Is(err, projections.ErrCheckpointBackwards) {
				t.Fatalf("Commit moving the checkpoint from 20 to 2: %v, want ErrCheckpointBackwards", err)
			}
			if v, _ := get(t, ctx, b, "orders", "a"); v != `{"v":1}` {
				t.Fatalf("value %s after refused writes, want the first", v)
			}
			if got := checkpoint(t, ctx, b, "orders"); got != 20 {
				t.Fatalf("checkpoint %d, want 20", got)
			}
		}},
		{"SwitchOnlyWhenCaughtUp", func(t *testing.T, ctx context.Context, b projections.Backend) {
			put(t, ctx, b, "orders_v1_g1", 10, kv{"k", `{"gen":1}`})
			put(t, ctx, b, "orders_v1_g2", 8, kv{"k", `{"gen":2}`})
			if err := b.Switch(ctx, "orders", "", "orders_v1_g1"); err != nil {
				t.Fatalf("first Switch (nothing active): %v", err)
			}
			if err := b.Switch(ctx, "orders", "orders_v1_g1", "orders_v1_g2"); !errors.Is(err, projections.ErrNotCaughtUp) {
				t.Fatalf("Switch to a namespace behind: %v, want ErrNotCaughtUp", err)
			}
			if ns, _ := b.Active(ctx, "orders"); ns != "orders_v1_g1" {
				t.Fatalf("active %s after a refused switch", ns)
			}
			if err := commitPut(ctx, b, "orders_v1_g2", projections.Claim{From: 8}, "k", `{"gen":2}`, 10); err != nil {
				t.Fatal(err)
			}
			wantFenced(t, b.Switch(ctx, "orders", "orders_v1_g9", "orders_v1_g2"), "Switch from a namespace that is not active")
			wantFenced(t, b.Switch(ctx, "orders", "orders_v1_g1", "orders_v1_g7"), "Switch to a missing namespace")
			if err := b.Switch(ctx, "orders", "orders_v1_g1", "orders_v1_g2"); err != nil {
				t.Fatalf("Switch once caught up: %v", err)
			}
			if ns, _ := b.Active(ctx, "orders"); ns != "orders_v1_g2" {
				t.Fatalf("active %s after the switch", ns)
			}
			wantFenced(t, commitPut(ctx, b, "orders_v1_g1", projections.Claim{From: 10}, "k", `{"gen":1}`, 11), "Commit to the namespace switched away from")
			var got string
			err := projections.View(ctx, b, "orders", func(r projections.Reader) error {
				v, _, err := r.Get(ctx, "k")
				got = string(v)
				return err
			})
			if err != nil || got != `{"gen":2}` {
				t.Fatalf("read after the switch: %s, %v", got, err)
			}
		}},
	}
}
