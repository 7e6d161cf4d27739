package boltstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cxledger/cxledger/eventstore"
)

// TestRejectionsAndRetriesWriteNoByte: a batch holding only rejected
// appends and idempotent retries rolls back instead of committing an empty
// transaction, so the data file stays byte for byte what it was (a commit
// would write a new meta page even with nothing in it).
func TestRejectionsAndRetriesWriteNoByte(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := openTest(t, path, Options{})
	ctx := context.Background()
	stream := customerStream()
	first := event("AccountOpened", 0)
	mustAppend(t, s, stream, eventstore.NoStream, first)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.Append(ctx, stream, eventstore.NoStream, event("CallLogged", 1)); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("conflict: %v", err)
	}
	stolen := event("CallLogged", 2)
	stolen.ID = first.ID
	if _, err := s.Append(ctx, customerStream(), eventstore.Any, stolen); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("duplicate: %v", err)
	}
	if res, err := s.Append(ctx, stream, eventstore.NoStream, first); err != nil || res.Position != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}

	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the data file changed although nothing was appended")
	}
	// The store still appends after the rollbacks.
	if res := mustAppend(t, s, stream, eventstore.Exact(0), event("CallLogged", 3)); res.Position != 2 {
		t.Fatalf("append after rollbacks: %+v", res)
	}
}
