package pgstore_test

import (
	"testing"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/storetest"
)

// testMaxEventSize is the production default: the suite's fixtures include
// realistic large events.
const testMaxEventSize = eventstore.DefaultMaxEventSize

// TestConformance runs the shared suite, each test on a fresh schema of its
// own. Idempotency is durable: event ids are kept by a unique index forever.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Features{DurableIdempotency: true, MaxEventSize: testMaxEventSize},
		func(t *testing.T) eventstore.Store {
			return openStore(t, "", pgstore.Options{MaxEventSize: testMaxEventSize})
		})
}
