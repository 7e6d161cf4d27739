package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/google/uuid"
)

// system is one backend under test: fresh stores for append cases, the
// baseline beside them, and the store and read models of the read side.
type system interface {
	name() string
	// freshStore opens an empty store sized for writers concurrent
	// appenders; release closes and deletes it.
	freshStore(ctx context.Context, writers int) (s eventstore.Store, release func() error, err error)
	// baseline runs the backend's plain-write baseline in the same shape.
	baseline(ctx context.Context, writers, size int, d time.Duration, rec []byte) (Throughput, string, error)
	// seedStore opens the (empty) store the read side is seeded into;
	// fast may trade durability for seeding speed. reopen returns it in
	// the production configuration.
	seedStore(ctx context.Context, fast bool) (eventstore.Store, error)
	readModels(ctx context.Context) (projections.Backend, error)
	close() error
}

// templates are realistic events (payloads and metadata from the seed
// generator) that the append cases copy with fresh ids.
func templates(s uint64) ([]eventstore.EventData, error) {
	g, err := seed.NewGenerator(seed.Config{Customers: 50, Seed: s})
	if err != nil {
		return nil, err
	}
	var out []eventstore.EventData
	for i := range 50 {
		h, err := g.Customer(i)
		if err != nil {
			return nil, err
		}
		out = append(out, h.Events...)
	}
	return out, nil
}

// ids makes time-ordered event ids without crypto/rand, whose cost would
// be measured too; the counter is shared by every case of a run.
var idCounter atomic.Uint64

func nextID() uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixMilli())<<16|idCounter.Add(1)&0xffff)
	binary.BigEndian.PutUint64(id[8:], idCounter.Load()*0x9E3779B97F4A7C15)
	id[6] = id[6]&0x0f | 0x70
	id[8] = id[8]&0x3f | 0x80
	return id
}

var streamCounter atomic.Uint64

func newStream() string {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], streamCounter.Add(1)*0xBF58476D1CE4E5B9)
	binary.BigEndian.PutUint64(id[8:], uint64(time.Now().UnixNano()))
	id[6] = id[6]&0x0f | 0x80
	id[8] = id[8]&0x3f | 0x80
	return domain.StreamID(id)
}

// timed runs op from writers goroutines until d has passed and returns the
// throughput and per-operation latency. op returns the events it wrote.
func timed(ctx context.Context, writers int, d time.Duration, op func(ctx context.Context, w int) (int, error)) (Throughput, error) {
	var lat [][]time.Duration
	return timedWithLatencies(ctx, writers, d, &lat, op)
}

// timedWithLatencies is timed, also handing back every operation's latency,
// per writer, in *latencies.
func timedWithLatencies(ctx context.Context, writers int, d time.Duration, latencies *[][]time.Duration, op func(ctx context.Context, w int) (int, error)) (Throughput, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([][]time.Duration, writers)
	*latencies = lat
	var events atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range writers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := op(ctx, w)
				if err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				events.Add(int64(n))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return Throughput{}, first
	}
	all := slices.Concat(lat...)
	t := Throughput{Operations: len(all), Events: int(events.Load()), Seconds: elapsed.Seconds()}
	t.EventsPerSecond = float64(t.Events) / elapsed.Seconds()
	t.P50Ms, t.P99Ms, _ = percentiles(all)
	return t, nil
}

// percentiles returns p50, p99 and the maximum in milliseconds.
func percentiles(d []time.Duration) (p50, p99, maxMs float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := min(len(d)-1, int(q*float64(len(d))))
		return ms(d[i])
	}
	return at(0.50), at(0.99), ms(d[len(d)-1])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// appendCase measures the ledger's appends in one shape, then the
// baseline in the same shape, each writer owning its stream and appending
// at the exact version its previous append ended at.
func appendCase(ctx context.Context, cfg Config, sut system, tpl []eventstore.EventData, writers, size int) (AppendCase, error) {
	c := AppendCase{Writers: writers, EventsPerAppend: size}
	store, release, err := sut.freshStore(ctx, writers)
	if err != nil {
		return c, err
	}
	streams := make([]string, writers)
	expected := make([]eventstore.ExpectedVersion, writers)
	batches := make([][]eventstore.EventData, writers)
	for w := range writers {
		streams[w], expected[w] = newStream(), eventstore.NoStream
		batches[w] = make([]eventstore.EventData, size)
		for i := range size {
			batches[w][i] = tpl[(w*size+i)%len(tpl)]
		}
	}
	c.Ledger, err = timed(ctx, writers, cfg.Duration, func(ctx context.Context, w int) (int, error) {
		for i := range batches[w] {
			batches[w][i].ID = nextID()
		}
		res, err := store.Append(ctx, streams[w], expected[w], batches[w]...)
		if err != nil {
			return 0, err
		}
		expected[w] = eventstore.Exact(res.Version)
		return size, nil
	})
	if rerr := release(); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return c, err
	}
	// The baseline stores each event as the ledger does: one JSON document
	// of the event with its metadata, of realistic size.
	rec, err := json.Marshal(tpl[len(tpl)/2])
	if err != nil {
		return c, fmt.Errorf("encode baseline record: %w", err)
	}
	c.Baseline, c.BaselineKind, err = sut.baseline(ctx, writers, size, cfg.Duration, rec)
	if err != nil {
		return c, fmt.Errorf("baseline: %w", err)
	}
	if c.Baseline.EventsPerSecond > 0 {
		c.Ratio = c.Ledger.EventsPerSecond / c.Baseline.EventsPerSecond
	}
	return c, nil
}
