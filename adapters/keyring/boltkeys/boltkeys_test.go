package boltkeys_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/boltkeys"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
)

func newBackend(t *testing.T) keyring.Backend {
	b, err := boltkeys.Open(filepath.Join(t.TempDir(), boltkeys.FileName), boltkeys.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackend(t *testing.T) { keyringtest.RunBackend(t, newBackend) }

func TestKeyring(t *testing.T) { keyringtest.RunKeyring(t, newBackend) }

// A destroyed key leaves no copy in the file: bbolt frees the old page
// without clearing it, so Destroy compacts the file.
func TestDestroyLeavesNoCopyInTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), boltkeys.FileName)
	b, err := boltkeys.Open(path, boltkeys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	doomed, kept := uuid.New(), uuid.New()
	doomedKey := bytes.Repeat([]byte("DOOMED-KEY-BYTES"), 4)
	keptKey := bytes.Repeat([]byte("KEPT-KEY-BYTES!!"), 4)
	for c, k := range map[uuid.UUID][]byte{doomed: doomedKey, kept: keptKey} {
		if _, err := b.Create(ctx, c, keyring.Entry{Wrapped: k}); err != nil {
			t.Fatal(err)
		}
	}
	// Churn so that the doomed key's page is rewritten and freed a few times.
	for range 50 {
		if _, err := b.Create(ctx, uuid.New(), keyring.Entry{Wrapped: bytes.Repeat([]byte{7}, 60)}); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, doomedKey) {
		t.Fatal("test is broken: the key is not in the file before Destroy")
	}
	if err := b.Destroy(ctx, doomed, time.Now()); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, doomedKey) {
		t.Fatal("the destroyed key's bytes are still in the key file")
	}
	if !bytes.Contains(raw, keptKey) {
		t.Fatal("the compaction lost another customer's key")
	}
	if e, ok, err := b.Load(ctx, kept); err != nil || !ok || !bytes.Equal(e.Wrapped, keptKey) {
		t.Fatalf("Load after compaction = %+v, %v, %v", e, ok, err)
	}
	if e, ok, err := b.Load(ctx, doomed); err != nil || !ok || !e.Destroyed() {
		t.Fatalf("Load of the destroyed key = %+v, %v, %v", e, ok, err)
	}
}

func TestSecondProcessIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), boltkeys.FileName)
	b, err := boltkeys.Open(path, boltkeys.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := boltkeys.Open(path, boltkeys.Options{NoSync: true}); !errors.Is(err, boltkeys.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
}
