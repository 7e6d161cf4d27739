package backendtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/projections"
)

// PutsPerUpdate is the replay shape BenchUpdate measures: one engine batch
// flushing a thousand changed read-model objects at its end.
const PutsPerUpdate = 1000

// BenchUpdate measures the replay write path of a backend: each iteration
// is one Update of PutsPerUpdate Puts of ~500-byte JSON documents under
// fresh uuid keys (a replay mostly creates objects), plus the checkpoint.
// It reports puts/s.
func BenchUpdate(b *testing.B, be projections.Backend) {
	ctx := context.Background()
	values := make([][]byte, 64)
	for i := range values {
		id := uuid.New()
		values[i] = []byte(customerDoc(id, "Benchmark Customer", i) + strings.Repeat(" ", 0))
	}
	// Pad to ~500 bytes with a realistic field.
	for i, v := range values {
		pad := max(0, 500-len(v)-12)
		values[i] = append(v[:len(v)-1], []byte(fmt.Sprintf(`,"bio":"%s"}`, strings.Repeat("ü", pad/2)))...)
	}
	keys := make([]string, PutsPerUpdate)
	b.SetBytes(int64(PutsPerUpdate * len(values[0])))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		for j := range keys {
			keys[j] = "customer:" + uuid.NewString()
		}
		b.StartTimer()
		err := be.Update(ctx, "bench", func(w projections.Writer) error {
			for j, k := range keys {
				if err := w.Put(ctx, k, values[j%len(values)]); err != nil {
					return err
				}
			}
			return w.SetCheckpoint(ctx, uint64(i+1)*PutsPerUpdate)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*PutsPerUpdate)/b.Elapsed().Seconds(), "puts/s")
}
