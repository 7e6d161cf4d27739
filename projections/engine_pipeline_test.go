package projections

import (
	"context"
	"testing"
	"time"
)

// slowCommits delays every fenced commit, so that a runner folds its next
// batch while the last one is still being committed.
type slowCommits struct {
	Backend
	delay time.Duration
}

func (s slowCommits) Commit(ctx context.Context, ns string, c Claim, fn func(Writer) error) error {
	time.Sleep(s.delay)
	return s.Backend.Commit(ctx, ns, c, fn)
}

// TestPipelinedBatchesReadTheBatchInFlight folds many small batches, each
// while the one before it commits slowly, with an object cache that keeps
// almost nothing (so the next batch reads the one in flight through the
// backend path), and checks the result against one batch of everything.
func TestPipelinedBatchesReadTheBatchInFlight(t *testing.T) {
	h := newHistory(t, 21)
	h.grow(40, 600)
	ctx := context.Background()

	whole := NewMemory()
	cfg := testConfig()
	cfg.PageSize, cfg.BatchSize = 100_000, 100_000
	if err := Replay(ctx, h.store, whole, []Projection{&summary{}, &counter{}}, cfg, nil); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 20000} {
		piped := NewMemory()
		cfg := testConfig()
		cfg.PageSize, cfg.BatchSize, cfg.CacheLimit = 5, 5, limit
		if err := Replay(ctx, h.store, slowCommits{Backend: piped, delay: 200 * time.Microsecond}, []Projection{&summary{}, &counter{}}, cfg, nil); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{(&summary{}).Name(), (&counter{}).Name()} {
			if got, want := digestOf(t, piped, name), digestOf(t, whole, name); got != want {
				t.Errorf("cache limit %d: %s folded in small pipelined batches %s, in one batch %s", limit, name, got, want)
			}
		}
	}
}
