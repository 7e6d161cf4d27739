package pgrm_test

import (
	"testing"

	"github.com/cxledger/cxledger/projections/backendtest"
)

// BenchmarkUpdate is the replay write path against the test database.
func BenchmarkUpdate(b *testing.B) {
	backendtest.BenchUpdate(b, open(b))
}
