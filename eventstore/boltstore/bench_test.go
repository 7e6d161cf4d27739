package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cxledger/cxledger/eventstore"
)

// Benchmarks, fsync on throughout (the shipped configuration):
//
//	go test -run '^$' -bench . -benchtime 5s ./eventstore/boltstore/
//
// BenchmarkAppend and BenchmarkRawBolt run the same shapes with the same
// group commit; compare their events/s. RawBolt/puts=events is one bare Put
// per event (the bbolt floor); RawBolt/puts=layout makes the same puts the
// store makes (event, stream index, event id), isolating the store's own
// overhead (validation, encoding, checks, hand-off) from its index design.
// ids=random uses random event ids, as uuid v4 gives; ids=ordered uses
// time-ordered ids, as uuid v7 gives, which turn the id index's random
// inserts into appends. BenchmarkReadAll replays a pre-filled log of
// $BOLTSTORE_BENCH_EVENTS events (default 100,000; the target is stated for
// 1,000,000).

type benchShape struct {
	writers, events int
	ordered         bool // time-ordered ids instead of random ones
}

func (sh benchShape) String() string {
	ids := "random"
	if sh.ordered {
		ids = "ordered"
	}
	return fmt.Sprintf("writers=%d/events=%d/ids=%s", sh.writers, sh.events, ids)
}

var benchShapes = []benchShape{
	{1, 1, false}, {8, 1, false}, {1, 100, false}, {8, 100, false},
	{8, 1, true}, {8, 100, true},
}

// runWriters runs b.N operations spread over writers goroutines and reports
// events per second.
func runWriters(b *testing.B, writers, events int, op func(w, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
				if err := op(w, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*events)/time.Since(start).Seconds(), "events/s")
}

func benchEvents(n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = event("PurchaseCompleted", i)
	}
	return evs
}

// idCounter makes benchmark ids distinct without uuid.New, whose
// crypto/rand would be measured too.
var idCounter atomic.Uint64

// nextID returns a fresh id. Random-like ids carry the counter little-endian
// in their first bytes, so consecutive ids land all over the id index;
// ordered ids carry it big-endian, as a uuid v7's timestamp does.
func nextID(ordered bool) [16]byte {
	n := idCounter.Add(1)
	var id [16]byte
	if ordered {
		binary.BigEndian.PutUint64(id[:], n)
	} else {
		binary.LittleEndian.PutUint64(id[:], n*0x9E3779B97F4A7C15)
	}
	id[8] = 0x80
	return id
}

func BenchmarkAppend(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(sh.String(), func(b *testing.B) {
			s := openTest(b, filepath.Join(b.TempDir(), "ledger.db"), Options{})
			// Per writer: one stream and one event slice, given fresh ids per
			// append (else every append after the first would be a retry).
			streams := make([]string, sh.writers)
			evs := make([][]eventstore.EventData, sh.writers)
			for w := range streams {
				streams[w] = customerStream()
				evs[w] = benchEvents(sh.events)
			}
			ctx := context.Background()
			c0 := s.commits.Load()
			runWriters(b, sh.writers, sh.events, func(w, _ int) error {
				for j := range evs[w] {
					evs[w][j].ID = nextID(sh.ordered)
				}
				_, err := s.Append(ctx, streams[w], eventstore.Any, evs[w]...)
				return err
			})
			b.ReportMetric(float64(b.N)/float64(s.commits.Load()-c0), "appends/commit")
		})
	}
}

// rawReq is one append of the raw baseline.
type rawReq struct {
	writer int
	ids    [][16]byte
	done   chan error
}

// BenchmarkRawBolt is the baseline: the same writers, events per append and
// group commit (one writer goroutine draining a queue into one transaction)
// as BenchmarkAppend, with bare bbolt puts of a pre-encoded record.
func BenchmarkRawBolt(b *testing.B) {
	for _, layout := range []bool{false, true} {
		for _, sh := range benchShapes {
			name := "puts=events/" + sh.String()
			if layout {
				name = "puts=layout/" + sh.String()
			}
			b.Run(name, func(b *testing.B) { benchRaw(b, sh, layout) })
		}
	}
}

func benchRaw(b *testing.B, sh benchShape, layout bool) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{
		FreelistType: bolt.FreelistMapType, InitialMmapSize: DefaultInitialMmapSize, NoStatistics: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketStreams, bucketIDs} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	rec := sampleRecord()
	e := event("PurchaseCompleted", 1)
	rec.Data, rec.Metadata = e.Data, e.Metadata.Normalize()
	val := encodeRecord(nil, &rec)
	prefixes := make([][]byte, sh.writers)
	for w := range prefixes {
		prefixes[w] = appendStreamPrefix(nil, customerStream())
	}
	versions := make([]uint64, sh.writers)

	queue := make(chan *rawReq, DefaultMaxBatch)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var pos uint64
		batch := make([]*rawReq, 0, DefaultMaxBatch)
		prev := 0
		for r := range queue {
			batch = append(batch[:0], r)
			if prev > 1 { // as Store.runWriter does
				runtime.Gosched()
			}
		drain:
			for len(batch) < DefaultMaxBatch {
				select {
				case r, ok := <-queue:
					if !ok {
						break drain
					}
					batch = append(batch, r)
				default:
					break drain
				}
			}
			prev = len(batch)
			err := db.Update(func(tx *bolt.Tx) error {
				events, streams, ids := tx.Bucket(bucketEvents), tx.Bucket(bucketStreams), tx.Bucket(bucketIDs)
				events.FillPercent = eventsFillPercent
				for _, r := range batch {
					for i := range r.ids {
						pos++
						p := appendU64(nil, pos)
						if err := events.Put(p, val); err != nil {
							return err
						}
						if !layout {
							continue
						}
						if err := streams.Put(appendU64(prefixes[r.writer], versions[r.writer]), p); err != nil {
							return err
						}
						versions[r.writer]++
						if err := ids.Put(r.ids[i][:], p); err != nil {
							return err
						}
					}
				}
				return nil
			})
			for _, r := range batch {
				r.done <- err
			}
		}
	}()
	ids := make([][][16]byte, sh.writers)
	for w := range ids {
		ids[w] = make([][16]byte, sh.events)
	}
	runWriters(b, sh.writers, sh.events, func(w, _ int) error {
		for j := range ids[w] {
			ids[w][j] = nextID(sh.ordered)
		}
		r := &rawReq{writer: w, ids: ids[w], done: make(chan error, 1)}
		queue <- r
		return <-r.done
	})
	close(queue)
	<-writerDone
}

// BenchmarkReadAll replays the whole log in pages of DefaultReadLimit, as a
// projection rebuild does.
func BenchmarkReadAll(b *testing.B) {
	n := 100_000
	if v := os.Getenv("BOLTSTORE_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatalf("BOLTSTORE_BENCH_EVENTS: %v", err)
		}
	}
	s := openTest(b, filepath.Join(b.TempDir(), "ledger.db"), Options{NoSync: true})
	ctx := context.Background()
	const perAppend = 500
	evs := benchEvents(perAppend)
	for done := 0; done < n; done += perAppend {
		for j := range evs {
			evs[j].ID = nextID(false)
		}
		batch := evs[:min(perAppend, n-done)]
		if _, err := s.Append(ctx, fmt.Sprintf("customer-%d", done%997), eventstore.Any, batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		read := 0
		for after := uint64(0); ; {
			page, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after})
			if err != nil {
				b.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			read += len(page)
			after = page[len(page)-1].Position
		}
		if read != n {
			b.Fatalf("read %d events, want %d", read, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "events/s")
}
