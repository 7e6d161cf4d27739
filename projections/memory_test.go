package projections_test

import (
	"testing"

	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/backendtest"
)

// Memory is held to the same suite as the durable backends, so that
// read-model tests on it predict their behaviour in production. It
// validates names, keys and values as they do, but does not follow a
// dropped namespace to its read model's active one, and fails only Update
// and View after Close: the suite skips those checks for it.
func TestMemoryConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Features{Validates: true}, func(t *testing.T) projections.Backend {
		b := projections.NewMemory()
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}
