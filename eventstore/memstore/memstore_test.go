package memstore_test

import (
	"testing"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/storetest"
)

// TestConformance runs the shared suite. The limit is lowered so that the
// size tests do not shuffle megabytes around; the default is checked by
// TestDefaultLimit.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{DurableIdempotency: true, MaxEventSize: 256 << 10}, newStore(memstore.Config{MaxEventSize: 256 << 10}))
}

// TestConformanceDefaults runs the suite on a store with the zero Config.
func TestConformanceDefaults(t *testing.T) {
	storetest.Run(t, storetest.Features{DurableIdempotency: true}, newStore(memstore.Config{}))
}

func newStore(cfg memstore.Config) storetest.NewStore {
	return func(t *testing.T) eventstore.Store {
		s := memstore.New(cfg)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
}
