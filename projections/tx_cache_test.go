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

// writeCounter counts the writes that reach the backend.
type writeCounter struct {
	Writer
	puts, deletes int
}

func (c *writeCounter) Put(ctx context.Context, key string, value []byte) error {
	c.puts++
	return c.Writer.Put(ctx, key, value)
}

func (c *writeCounter) Delete(ctx context.Context, key string) error {
	c.deletes++
	return c.Writer.Delete(ctx, key)
}

// An object loaded but left as it was, or read, deleted and put back the same,
// is not stored again; a changed one is, and so is a delete of a stored
// key, while a delete of a key never stored is not sent. With a cache that
// keeps nothing between batches, and with one that keeps everything.
func TestUnchangedObjectsAreNotWrittenAgain(t *testing.T) {
	ctx := context.Background()
	for _, limit := range []int{-1, 100} { // -1: forget everything after each batch
		mem := NewMemory()
		cache := newObjectCache(limit)
		batch := func(fn func(tx *Tx) error) (puts, deletes int) {
			t.Helper()
			err := mem.Update(ctx, "ns", func(w Writer) error {
				wc := &writeCounter{Writer: w}
				tx := newTx(ctx, wc, cache)
				if err := fn(tx); err != nil {
					return err
				}
				if err := tx.flush(); err != nil {
					return err
				}
				puts, deletes = wc.puts, wc.deletes
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if limit < 0 {
				complete := cache.complete
				cache.reset()
				cache.complete = complete
			} else {
				cache.done()
			}
			return puts, deletes
		}
		if p, d := batch(func(tx *Tx) error { return Put(tx, "a", tally{N: 1}) }); p != 1 || d != 0 {
			t.Errorf("limit %d: first put: %d puts, %d deletes", limit, p, d)
		}
		if p, d := batch(func(tx *Tx) error { _, err := Load[tally](tx, "a"); return err }); p != 0 || d != 0 {
			t.Errorf("limit %d: unchanged Load: %d puts, %d deletes; want none", limit, p, d)
		}
		if p, d := batch(func(tx *Tx) error {
			if _, _, err := Get[tally](tx, "a"); err != nil {
				return err
			}
			tx.Delete("a")
			return Put(tx, "a", tally{N: 1})
		}); p != 0 || d != 0 {
			t.Errorf("limit %d: delete and the same put: %d puts, %d deletes; want none", limit, p, d)
		}
		if p, d := batch(func(tx *Tx) error {
			c, err := Load[tally](tx, "a")
			c.N++
			return err
		}); p != 1 || d != 0 {
			t.Errorf("limit %d: changed Load: %d puts, %d deletes; want 1 put", limit, p, d)
		}
		if p, d := batch(func(tx *Tx) error { tx.Delete("a"); return nil }); p != 0 || d != 1 {
			t.Errorf("limit %d: delete of a stored key: %d puts, %d deletes; want 1 delete", limit, p, d)
		}
		err := mem.View(ctx, "ns", func(r Reader) error {
			if _, ok, err := r.Get(ctx, "a"); ok || err != nil {
				t.Errorf("limit %d: a still stored (%v)", limit, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		cache.complete = true
		if p, d := batch(func(tx *Tx) error { tx.Delete("never"); return nil }); p != 0 || d != 0 {
			t.Errorf("limit %d: delete of a key a complete cache never saw: %d puts, %d deletes; want none", limit, p, d)
		}
		mem.Close()
	}
}
