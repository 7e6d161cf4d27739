package seed_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

func openBolt(t *testing.T) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "ledger.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// readLog is the whole log in position order.
func readLog(t *testing.T, store eventstore.Store) []eventstore.Record {
	t.Helper()
	var out []eventstore.Record
	for {
		var after uint64
		if len(out) > 0 {
			after = out[len(out)-1].Position
		}
		page, err := store.ReadAll(context.Background(), eventstore.ReadAllOptions{After: after, Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
	}
}

// byStream is the log's records per stream, in log order, without what
// the store decides (position, RecordedAt).
func byStream(log []eventstore.Record) map[string][]eventstore.Record {
	out := map[string][]eventstore.Record{}
	for _, r := range log {
		r.Position, r.RecordedAt = 0, time.Time{}
		out[r.Stream] = append(out[r.Stream], r)
	}
	return out
}

// recorder is an Importer that remembers every call and checks that no two
// overlap.
type recorder struct {
	store    seed.Importer
	inFlight atomic.Int32
	mu       sync.Mutex
	calls    [][]eventstore.Record
	overlap  atomic.Bool
}

func (r *recorder) Import(ctx context.Context, records []eventstore.Record) error {
	if r.inFlight.Add(1) > 1 {
		r.overlap.Store(true)
	}
	defer r.inFlight.Add(-1)
	r.mu.Lock()
	r.calls = append(r.calls, records)
	r.mu.Unlock()
	return r.store.Import(ctx, records)
}

// TestImportMatchesSeed imports into one store and seeds another with the
// same configuration: the same records in the same per-stream order, the
// same summary, and a log whose RecordedAt never decreases, written in
// batches within the bound.
func TestImportMatchesSeed(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  seed.Config
	}{
		{"heavy account split over batches", seed.Config{Customers: 150, Seed: 3, HeavyEvents: 2500, ImportEvents: 1000, ChunkEvents: 300, Concurrency: 4}},
		{"MaxEvents cut, no customer count", seed.Config{MaxEvents: 5000, Seed: 9, ImportEvents: 700, Generators: 3}},
		{"customers and MaxEvents", seed.Config{Customers: 60, MaxEvents: 1234, HeavyEvents: 600, Seed: 11, ImportEvents: 500, Generators: 1}},
		{"one batch", seed.Config{Customers: 30, Seed: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			seeded, imported := openBolt(t), openBolt(t)
			want, err := seed.Seed(ctx, seeded, tc.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{store: imported}
			var last seed.Progress
			got, err := seed.Import(ctx, rec, tc.cfg, func(p seed.Progress) { last = p })
			if err != nil {
				t.Fatal(err)
			}
			if got.Elapsed <= 0 || !last.Done || last.Events != got.Events || last.Customers != got.Customers {
				t.Errorf("summary %+v, last progress %+v", got, last)
			}
			got.Elapsed, want.Elapsed = 0, 0
			if got != want {
				t.Errorf("Import's summary %+v, Seed's %+v", got, want)
			}
			if got.HeavyEvents != tc.cfg.HeavyEvents {
				t.Errorf("heavy account of %d events, want %d", got.HeavyEvents, tc.cfg.HeavyEvents)
			}
			if tc.cfg.MaxEvents > 0 && got.Events != tc.cfg.MaxEvents {
				t.Errorf("%d events, want the MaxEvents cut at %d", got.Events, tc.cfg.MaxEvents)
			}

			seededLog, importedLog := readLog(t, seeded), readLog(t, imported)
			if len(importedLog) != got.Events || len(seededLog) != want.Events {
				t.Fatalf("logs of %d (Import) and %d (Seed) events, summaries say %d and %d", len(importedLog), len(seededLog), got.Events, want.Events)
			}
			if a, b := byStream(importedLog), byStream(seededLog); !reflect.DeepEqual(a, b) {
				t.Fatalf("the imported streams differ from the seeded ones (%d and %d streams)", len(a), len(b))
			}
			for i := 1; i < len(importedLog); i++ {
				if importedLog[i].RecordedAt.Before(importedLog[i-1].RecordedAt) {
					t.Fatalf("record %d recorded at %v, before the previous one's %v", i, importedLog[i].RecordedAt, importedLog[i-1].RecordedAt)
				}
			}

			limit := tc.cfg.ImportEvents
			if limit == 0 {
				limit = seed.DefaultImportEvents
			}
			if rec.overlap.Load() {
				t.Error("Import calls overlapped")
			}
			n := 0
			for i, call := range rec.calls {
				if len(call) == 0 || len(call) > limit {
					t.Errorf("call %d imports %d records, want 1 to %d", i, len(call), limit)
				}
				for _, r := range call {
					if !r.RecordedAt.Equal(call[0].RecordedAt) {
						t.Errorf("call %d: records recorded at %v and %v, want one stamp per batch", i, call[0].RecordedAt, r.RecordedAt)
						break
					}
				}
				n += len(call)
			}
			if min := (got.Events + limit - 1) / limit; len(rec.calls) < min || n != got.Events {
				t.Errorf("%d calls of %d records in all, want at least %d calls of %d", len(rec.calls), n, min, got.Events)
			}
		})
	}
}

// TestImportBatchesHoldWholeCustomers: a batch ends at a customer's end
// unless that customer alone is longer than the bound.
func TestImportBatchesHoldWholeCustomers(t *testing.T) {
	rec := &recorder{store: memstore.New(memstore.Config{})}
	cfg := seed.Config{Customers: 80, Seed: 5, HeavyEvents: 1200, ImportEvents: 500}
	if _, err := seed.Import(context.Background(), rec, cfg, nil); err != nil {
		t.Fatal(err)
	}
	for i, call := range rec.calls[:len(rec.calls)-1] {
		lastOf, firstOfNext := call[len(call)-1], rec.calls[i+1][0]
		if firstOfNext.Version != 0 && firstOfNext.Stream != lastOf.Stream {
			t.Errorf("call %d starts %s at version %d: a customer split although the previous call ended with another", i+1, firstOfNext.Stream, firstOfNext.Version)
		}
		if firstOfNext.Version != 0 && len(call) != cfg.ImportEvents {
			t.Errorf("call %d of %d records split a customer before the bound of %d", i, len(call), cfg.ImportEvents)
		}
	}
}

// TestImportTwice: the import path is no idempotent retry; a second import
// of the same history is refused whole and writes nothing. Which sentinel
// says so is the store's choice: memstore and boltstore check the stream's
// version before the ids (ErrWrongExpectedVersion), pgstore the ids first
// (ErrDuplicateEvent).
func TestImportTwice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) eventstore.Store
	}{
		{"memstore", func(*testing.T) eventstore.Store { return memstore.New(memstore.Config{}) }},
		{"boltstore", func(t *testing.T) eventstore.Store { return openBolt(t) }},
		{"pgstore", func(t *testing.T) eventstore.Store {
			s, err := pgstore.Open(context.Background(), pgtest.URL(t), pgstore.Options{Schema: pgtest.Schema(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store := tc.store(t)
			imp := store.(seed.Importer)
			cfg := seed.Config{Customers: 50, Seed: 8, ImportEvents: 400}
			if _, err := seed.Import(ctx, imp, cfg, nil); err != nil {
				t.Fatal(err)
			}
			head, err := store.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = seed.Import(ctx, imp, cfg, nil)
			if !errors.Is(err, eventstore.ErrDuplicateEvent) && !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
				t.Fatalf("second import: %v, want ErrDuplicateEvent or ErrWrongExpectedVersion", err)
			}
			if h, _ := store.Head(ctx); h != head {
				t.Fatalf("the refused import moved the head from %d to %d", head, h)
			}
			// The ids alone are enough to refuse it: the same events in
			// new streams are still duplicates.
			rec := readLog(t, store)[0]
			rec.Stream, rec.Version, rec.RecordedAt = rec.Stream+"-copy", 0, time.Now().UTC().Truncate(time.Microsecond)
			if err := imp.Import(ctx, []eventstore.Record{rec}); !errors.Is(err, eventstore.ErrDuplicateEvent) {
				t.Fatalf("re-import of %s: %v, want ErrDuplicateEvent", rec.ID, err)
			}
		})
	}
}

// failing refuses its second call.
type failing struct {
	calls atomic.Int32
}

var errRefused = errors.New("refused")

func (f *failing) Import(context.Context, []eventstore.Record) error {
	if f.calls.Add(1) == 2 {
		return errRefused
	}
	return nil
}

// TestImportStopsAtTheFirstError: the store's error comes back wrapped,
// and nothing is imported after it.
func TestImportStopsAtTheFirstError(t *testing.T) {
	f := &failing{}
	_, err := seed.Import(context.Background(), f, seed.Config{Customers: 200, Seed: 2, ImportEvents: 300}, nil)
	if !errors.Is(err, errRefused) {
		t.Fatalf("got %v, want the store's error", err)
	}
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("%d Import calls, want 2 (none after the refused one)", n)
	}
	if _, err := seed.Import(context.Background(), f, seed.Config{Customers: 10, ImportEvents: -1}, nil); err == nil {
		t.Fatal("negative ImportEvents accepted")
	}
}

// cancelling passes calls to a store, cancelling a context at the first.
type cancelling struct {
	*memstore.Store
	cancel context.CancelFunc
}

func (c cancelling) Import(ctx context.Context, records []eventstore.Record) error {
	c.cancel()
	return c.Store.Import(context.WithoutCancel(ctx), records)
}

func (c cancelling) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	c.cancel()
	return c.Store.Append(context.WithoutCancel(ctx), stream, expected, events...)
}

// A run cancelled half-way fails with the context's error, never as a
// finished seeding of fewer customers. (Cancellation reaches the run by
// several paths; this does not single out the feeder's, whose stop on
// cancellation inOrder also reports as the context's error.)
func TestCancelledSeedingFails(t *testing.T) {
	for range 10 {
		ctx, cancel := context.WithCancel(t.Context())
		store := cancelling{memstore.New(memstore.Config{}), cancel}
		if sum, err := seed.Import(ctx, store, seed.Config{Customers: 2000, Seed: 1, ImportEvents: 1000}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Import cancelled after its first call: %d events, %v; want context.Canceled", sum.Events, err)
		}
		ctx, cancel = context.WithCancel(t.Context())
		store = cancelling{memstore.New(memstore.Config{}), cancel}
		if sum, err := seed.Seed(ctx, store, seed.Config{Customers: 2000, Seed: 1}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Seed cancelled after its first append: %d events, %v; want context.Canceled", sum.Events, err)
		}
	}
}
