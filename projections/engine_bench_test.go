package projections

import (
	"context"
	"testing"
	"time"
)

// BenchmarkReplay rebuilds read models from a realistic log with the
// in-memory store and backend: the engine's own overhead (reading,
// decoding once, fanning out, batching), without disk or network. Report:
// events/s of the log.
func BenchmarkReplay(b *testing.B) {
	h := newHistory(b, 42)
	h.grow(5_000, 195_000)
	head := h.head()
	cfg := testConfig()
	cfg.PageSize, cfg.BatchSize, cfg.ProgressInterval = 0, 0, time.Hour
	b.ResetTimer()
	for b.Loop() {
		err := Replay(context.Background(), h.store, NewMemory(),
			[]Projection{&summary{}, &typed{name: "by_type"}, &typed{name: "purchases", types: []string{"PurchaseCompleted"}}}, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
