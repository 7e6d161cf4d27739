package boltrm_test

import (
	"path/filepath"
	"testing"

	"github.com/cxledger/cxledger/projections/backendtest"
	"github.com/cxledger/cxledger/projections/boltrm"
)

// BenchmarkUpdate is the replay write path; NoSync, as a replay could run
// (a crash mid-replay restarts it), and with fsync for comparison.
func BenchmarkUpdate(b *testing.B) {
	for _, noSync := range []bool{true, false} {
		name := "fsync"
		if noSync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			be, err := boltrm.Open(filepath.Join(b.TempDir(), boltrm.FileName), boltrm.Options{NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			backendtest.BenchUpdate(b, be)
		})
	}
}
