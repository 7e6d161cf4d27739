// Package projectiontest gives read-model tests every backend to run on:
// EachBackend runs a subtest on a fresh memory, embedded (bbolt) and
// PostgreSQL backend, so that a projection's scenario test proves it
// behaves the same on each (compare them with projections.Digest).
//
// The PostgreSQL backend gets a fresh schema per test (pgtest.Schema): when
// the server is unreachable the test is skipped loudly, or fails under
// CI=true, as every database test in cxledger.
package projectiontest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/boltrm"
	"github.com/cxledger/cxledger/projections/pgrm"
)

// Memory returns a fresh in-memory backend, closed when the test ends.
func Memory(t testing.TB) projections.Backend {
	b := projections.NewMemory()
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Bolt returns a fresh embedded backend in a temporary directory, without
// fsync (a test never survives a crash anyway), closed when the test ends.
func Bolt(t testing.TB) projections.Backend {
	t.Helper()
	b, err := boltrm.Open(filepath.Join(t.TempDir(), boltrm.FileName), boltrm.Options{NoSync: true})
	if err != nil {
		t.Fatalf("projectiontest: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("projectiontest: %v", err)
		}
	})
	return b
}

// Postgres returns a backend on a fresh schema of the test database,
// closed before the schema is dropped when the test ends. It skips the test
// (fails it under CI=true) when the database cannot be reached.
func Postgres(t testing.TB) projections.Backend {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	b, err := pgrm.Open(context.Background(), url, pgrm.Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatalf("projectiontest: %v", err)
	}
	// Registered after Schema's cleanup, so it runs first: the pool is
	// closed before the schema is dropped.
	t.Cleanup(func() { _ = b.Close() })
	return b
}
