package notary

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestBuilderMatchesTlog: the builder, which keeps only the tree's right
// edge, produces exactly the stored hashes and roots of tlog over a store
// that keeps everything, and its memory stays logarithmic.
func TestBuilderMatchesTlog(t *testing.T) {
	var all []tlog.Hash
	full := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	})
	b := newBuilder()
	for n := int64(0); n < 1100; n++ {
		var data [8]byte
		binary.BigEndian.PutUint64(data[:], uint64(n))
		leaf := tlog.RecordHash(data[:])
		want, err := tlog.StoredHashes(n, data[:], full)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.add(leaf)
		if err != nil {
			t.Fatalf("add leaf %d: %v", n, err)
		}
		if len(got) != len(want) {
			t.Fatalf("leaf %d: %d stored hashes, want %d", n, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("leaf %d: stored hash %d differs", n, i)
			}
		}
		all = append(all, want...)
		wantRoot, err := tlog.TreeHash(n+1, full)
		if err != nil {
			t.Fatal(err)
		}
		if root, err := b.root(); err != nil || root != wantRoot {
			t.Fatalf("root of %d leaves = %s, %v; want %s", n+1, root, err, wantRoot)
		}
		if len(b.hashes) > 11 { // one per set bit of n+1 < 2^11
			t.Fatalf("the builder retains %d hashes at size %d", len(b.hashes), n+1)
		}
	}
	if emptyRoot != sha256.Sum256(nil) {
		t.Fatal("the empty tree's root is not SHA-256 of nothing (RFC 6962)")
	}
}
