package script

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// benchHistory is 5,000 customers and 200,000 more events in a memstore,
// seeded once for every benchmark.
var (
	benchOnce sync.Once
	benchLog  *seeded
)

func benchSeed(b *testing.B) *seeded {
	benchOnce.Do(func() { benchLog = seed(&noCleanup{b}, 5_000, 200_000, 1) })
	return benchLog
}

// noCleanup keeps the seeded store open past the first benchmark.
type noCleanup struct{ testing.TB }

func (noCleanup) Cleanup(func()) {}

const countingScript = `fromAll().partitionBy(e => e.streamId).when({
	$init: () => ({ count: 0 }),
	$any: (s, e) => { s.count++; }
});`

const byTypeScript = `fromAll().when({
	$init: () => ({}),
	$any: (s, e) => { s[e.eventType] = (s[e.eventType] || 0) + 1; }
});`

// BenchmarkReplayCounting rebuilds a JavaScript read model counting each
// customer's events (partitioned by stream) on the embedded read-model
// backend. Target: ≥ 150,000 events/s.
func BenchmarkReplayCounting(b *testing.B) {
	benchReplay(b, func(b *testing.B) projections.Projection {
		return compile(b, "js_count", countingScript, Limits{}).Projection(1)
	})
}

// BenchmarkReplayByType counts every event by type in one state.
func BenchmarkReplayByType(b *testing.B) {
	benchReplay(b, func(b *testing.B) projections.Projection {
		return compile(b, "js_by_type", byTypeScript, Limits{}).Projection(1)
	})
}

// BenchmarkReplayBodySum reads every purchase's body (the lazy body's cost).
func BenchmarkReplayBodySum(b *testing.B) {
	benchReplay(b, func(b *testing.B) projections.Projection {
		return compile(b, "js_sum", `fromAll().partitionBy(e => e.streamId).when({
			$init: () => ({ total: 0 }),
			PurchaseCompleted: (s, e) => { s.total += e.body.amount; }
		});`, Limits{}).Projection(1)
	})
}

// BenchmarkReplayCountingGo is the same count as a Go projection: the
// JavaScript/Go ratio.
func BenchmarkReplayCountingGo(b *testing.B) {
	benchReplay(b, func(*testing.B) projections.Projection { return goCounter{} })
}

func benchReplay(b *testing.B, mk func(b *testing.B) projections.Projection) {
	sd := benchSeed(b)
	head, err := sd.store.Head(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0, _ := cpuTime()
	for b.Loop() {
		b.StopTimer()
		backend := projectiontest.Bolt(b)
		p := mk(b)
		b.StartTimer()
		if err := projections.Replay(context.Background(), sd.store, backend, []projections.Projection{p}, projections.Config{ProgressInterval: time.Hour}, nil); err != nil {
			b.Fatal(err)
		}
	}
	cpu1, _ := cpuTime()
	cpu := cpu1 - cpu0
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// The process's CPU time per event (all goroutines, set-up of each
	// backend included): on a machine shared with other work the wall
	// rate says more about the neighbours than about the code.
	b.ReportMetric(float64(cpu.Nanoseconds())/(float64(head)*float64(b.N)), "cpu-ns/event")
}

type goCount struct {
	Count int `json:"count"`
}

type goCounter struct{}

func (goCounter) Name() string    { return "go_count" }
func (goCounter) Version() int    { return 1 }
func (goCounter) Types() []string { return nil }
func (goCounter) Apply(tx *projections.Tx, e domain.Envelope) error {
	c, err := projections.Load[goCount](tx, partPrefix+e.Stream)
	if err != nil {
		return err
	}
	c.Count++
	return nil
}
