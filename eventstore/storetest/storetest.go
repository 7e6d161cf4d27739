// Package storetest is the conformance suite every eventstore backend runs:
// a backend's test calls Run with the features it honestly offers and a
// constructor for a fresh, empty store.
//
// Every subtest asks for its own store, runs in parallel with the others and
// uses a fresh uuid in every stream name ("customer-<uuid>"), so the suite
// works as well against one shared server as against in-process stores. Each
// subtest carries a deadline (Timeout): a hung backend fails, it does not
// hang the run.
package storetest

import (
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
)

// Features declares what a backend promises beyond the common contract, so
// the suite checks exactly that and says plainly what it did not check.
type Features struct {
	// DurableIdempotency: a retry with already-stored event ids is recognised
	// however long ago, and across restarts, the original append happened.
	// False for KurrentDB, whose dedupe by event id is an in-memory cache on
	// the server.
	DurableIdempotency bool
	// MaxEventSize is the limit the store under test enforces on one event;
	// 0 means eventstore.DefaultMaxEventSize.
	MaxEventSize int
	// AfterOnlyStoredPositions: ReadAll's After must be 0 or a position the
	// store returned, so the suite does not read after positions past the
	// head that no event has. True for KurrentDB, whose positions are log
	// offsets: the server cannot start a read in the middle of a record.
	AfterOnlyStoredPositions bool
}

// NewStore returns a fresh, empty store for one test; the constructor
// registers its own cleanup with t.Cleanup.
type NewStore func(t *testing.T) eventstore.Store

// Timeout bounds every subtest: its context is cancelled after this long
// (or at the test binary's own deadline, whichever comes first), so a hung
// backend fails with context.DeadlineExceeded instead of hanging.
const Timeout = 60 * time.Second

// suite carries the backend under test into every subtest.
type suite struct {
	features Features
	newStore NewStore
}

// Run runs the whole suite against the backend. Subtests are grouped by the
// part of the contract they check; every leaf runs in parallel.
func Run(t *testing.T, features Features, newStore NewStore) {
	t.Helper()
	s := &suite{features: features, newStore: newStore}
	groups := []struct {
		name  string
		tests []test
	}{
		{"ExpectedVersion", s.expectedVersionTests()},
		{"Append", s.appendTests()},
		{"Idempotency", s.idempotencyTests()},
		{"Validation", s.validationTests()},
		{"ReadStream", s.readStreamTests()},
		{"ReadAll", s.readAllTests()},
		{"Head", s.headTests()},
		{"Cancellation", s.cancellationTests()},
		{"Subscribe", s.subscribeTests()},
		{"Close", s.closeTests()},
		{"Concurrency", s.concurrencyTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t)
				})
			}
		})
	}
}

// test is one leaf of the suite.
type test struct {
	name string
	run  func(t *testing.T)
}

// maxEventSize is the limit of the store under test.
func (s *suite) maxEventSize() int {
	if s.features.MaxEventSize > 0 {
		return s.features.MaxEventSize
	}
	return eventstore.DefaultMaxEventSize
}
