// Package backendtest is the conformance suite every projections.Backend
// runs: a backend's test calls Run with the features it honestly offers and
// a constructor for a fresh, empty backend.
//
// Every subtest asks for its own backend and runs in parallel with the
// others; each carries a deadline (Timeout), so a hung backend fails
// instead of hanging the run. Fixtures look like production: uuid keys,
// realistic customer documents, unicode, large values.
package backendtest

import (
	"context"
	"testing"
	"time"

	"github.com/cxledger/cxledger/projections"
)

// Features declares what a backend promises beyond the common contract, so
// that the suite checks exactly that and says plainly what it skipped.
type Features struct {
	// Validates: the backend rejects namespace and read-model names that
	// are not lower-case identifiers, keys that are empty, longer than
	// 1,024 bytes, not UTF-8 or holding NUL, and values that are not JSON,
	// as the PostgreSQL backend must. A backend that accepts them lets a
	// projection pass its tests and fail in production.
	Validates bool
	// FollowsDrop: View of a namespace that was dropped after it served a
	// read model reads that read model's active namespace instead, so a
	// reader that resolved Active just before a rebuild switched over and
	// dropped the old generation reads the new one, neither failing nor
	// seeing an empty read model.
	FollowsDrop bool
	// ClosedEverywhere: every method fails after Close, not only Update
	// and View.
	ClosedEverywhere bool
}

// NewBackend returns a fresh, empty backend for one test; the constructor
// registers its own cleanup with t.Cleanup. The suite calls Close itself
// only in the Close tests; calling it again must not fail the cleanup.
type NewBackend func(t *testing.T) projections.Backend

// Timeout bounds every subtest: its context is cancelled after this long.
const Timeout = 60 * time.Second

type suite struct {
	features   Features
	newBackend NewBackend
}

type test struct {
	name string
	run  func(t *testing.T, ctx context.Context, b projections.Backend)
}

// Run runs the whole suite against the backend. Subtests are grouped by the
// part of the contract they check; every leaf runs in parallel.
func Run(t *testing.T, features Features, newBackend NewBackend) {
	t.Helper()
	s := &suite{features: features, newBackend: newBackend}
	groups := []struct {
		name  string
		tests []test
	}{
		{"ReadWrite", s.readWriteTests()},
		{"Scan", s.scanTests()},
		{"Atomicity", s.atomicityTests()},
		{"Checkpoint", s.checkpointTests()},
		{"Namespaces", s.namespaceTests()},
		{"Switch", s.switchTests()},
		{"Validation", s.validationTests()},
		{"Cancellation", s.cancellationTests()},
		{"Close", s.closeTests()},
		{"Lease", s.leaseTests()},
		{"Fence", s.fenceTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					ctx, cancel := context.WithTimeout(t.Context(), Timeout)
					defer cancel()
					tc.run(t, ctx, s.newBackend(t))
				})
			}
		})
	}
}
