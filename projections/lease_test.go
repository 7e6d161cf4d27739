package projections

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// flakyLeases fails the first acquisitions as an unreachable database would.
type flakyLeases struct {
	LocalLeases
	failures atomic.Int32
}

func (f *flakyLeases) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	if f.failures.Add(-1) >= 0 {
		return Lease{}, errors.New("connection refused")
	}
	return f.LocalLeases.AcquireLease(ctx, name, owner, ttl)
}

// TestRunOwnedOutlivesAnOutage: background work under a lease waits out a
// backend that cannot be reached, then runs; it never gives up for good.
func TestRunOwnedOutlivesAnOutage(t *testing.T) {
	f := &flakyLeases{}
	f.failures.Store(3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ran := make(chan struct{})
	err := RunOwned(ctx, f, LeaseConfig{Name: "relay/test", Owner: "me", TTL: 200 * time.Millisecond, Interval: 10 * time.Millisecond},
		func(ctx context.Context, l Lease) error {
			close(ran)
			cancel()
			return nil
		})
	if err != nil {
		t.Fatalf("RunOwned: %v", err)
	}
	select {
	case <-ran:
	default:
		t.Fatal("the work never ran after the backend came back")
	}
}
