package pgkeys_test

import (
	"context"
	"testing"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/keyring/pgkeys"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

func newBackend(t *testing.T) keyring.Backend {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	b, err := pgkeys.Open(context.Background(), url, pgkeys.Options{Schema: schema, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Closed before the schema is dropped (cleanups run last in, first out).
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestBackend(t *testing.T) { keyringtest.RunBackend(t, newBackend) }

func TestKeyring(t *testing.T) { keyringtest.RunKeyring(t, newBackend) }

// Two processes opening the same schema at once both migrate safely.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			b, err := pgkeys.Open(context.Background(), url, pgkeys.Options{Schema: schema})
			if err == nil {
				_ = b.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
