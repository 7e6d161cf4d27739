package boltstore

import (
	"path/filepath"
	"testing"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/storetest"
)

const testMaxEventSize = 64 << 10

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{DurableIdempotency: true, MaxEventSize: testMaxEventSize},
		func(t *testing.T) eventstore.Store {
			return openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{MaxEventSize: testMaxEventSize})
		})
}
