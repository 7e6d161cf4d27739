package projections

import (
	"context"
	"testing"
)

// countingWriter counts the reads that reach the backend.
type countingWriter struct {
	Writer
	gets int
}

func (c *countingWriter) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c.gets++
	return c.Writer.Get(ctx, key)
}

type tally struct{ N int }

// A complete cache (a runner started on an empty namespace) answers a miss
// as absent without reading, and after dropping values past its limit reads
// a stored object again rather than taking it for absent; an incomplete one
// reads every miss.
func TestCompleteCacheReadsOnlyWhatItWrote(t *testing.T) {
	ctx := context.Background()
	mem := NewMemory()
	defer mem.Close()
	batch := func(cache *objectCache, fn func(tx *Tx) error) int {
		t.Helper()
		var gets int
		err := mem.Update(ctx, "ns", func(w Writer) error {
			cw := &countingWriter{Writer: w}
			tx := newTx(ctx, cw, cache)
			if err := fn(tx); err != nil {
				return err
			}
			gets = cw.gets
			return tx.flush()
		})
		if err != nil {
			t.Fatal(err)
		}
		cache.done()
		return gets
	}
	bump := func(keys ...string) func(tx *Tx) error {
		return func(tx *Tx) error {
			for _, k := range keys {
				c, err := Load[tally](tx, k)
				if err != nil {
					return err
				}
				c.N++
			}
			return nil
		}
	}

	cache := newObjectCache(2)
	cache.complete = true
	if gets := batch(cache, bump("a", "b", "c")); gets != 0 {
		t.Errorf("complete cache, new objects: %d reads, want 0", gets)
	}
	// Past its limit (3 > 2) it dropped the values and kept the keys.
	if gets := batch(cache, bump("a", "d")); gets != 1 {
		t.Errorf("complete cache after dropping values: %d reads, want 1 (a, stored)", gets)
	}
	err := mem.View(ctx, "ns", func(r Reader) error {
		for k, want := range map[string]int{"a": 2, "b": 1, "c": 1, "d": 1} {
			got, ok, err := Read[tally](ctx, r, k)
			if err != nil || !ok || got.N != want {
				t.Errorf("%s = %+v, %v, %v; want N=%d", k, got, ok, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	incomplete := newObjectCache(100)
	if gets := batch(incomplete, bump("a", "e")); gets != 2 {
		t.Errorf("incomplete cache: %d reads, want 2", gets)
	}
	cache.reset()
	if cache.complete || len(cache.m) != 0 {
		t.Errorf("reset left complete=%v with %d keys", cache.complete, len(cache.m))
	}
}
