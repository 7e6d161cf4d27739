// Package backends opens each real event store for tests that must hold on
// every backend: in-memory, embedded (bbolt, in a temporary directory) and
// PostgreSQL (in a fresh schema of the test database; see pgtest for how
// an unreachable server is reported).
package backends

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// Names lists the backends Each runs, in order.
var Names = []string{"memory", "embedded", "postgres"}

// Open opens a new, empty store of the named backend, closed when the test
// ends.
func Open(t testing.TB, name string) eventstore.Store {
	t.Helper()
	var (
		s   eventstore.Store
		err error
	)
	switch name {
	case "memory":
		s = memstore.New(memstore.Config{})
	case "embedded":
		s, err = boltstore.Open(filepath.Join(t.TempDir(), "ledger.db"), boltstore.Options{NoSync: true})
	case "postgres":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err = pgstore.Open(ctx, pgtest.URL(t), pgstore.Options{Schema: pgtest.Schema(t)})
	default:
		t.Fatalf("backends: unknown backend %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Each runs fn as a subtest per backend, each with a new, empty store.
func Each(t *testing.T, fn func(t *testing.T, s eventstore.Store)) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) { fn(t, Open(t, name)) })
	}
}
