package notary

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// HashStore keeps what makes proofs fast: the tree's stored hashes (tlog's
// dense layout, tlog.StoredHashIndex) and the global position of each leaf.
// Backends implement it beside their events (boltstore, pgstore, memstore).
// It is append-only, and it is a cache of what the events determine: Verify
// checks it against a signed root before relying on it.
//
// All methods are safe for concurrent use, take the context first, and fail
// with an error wrapping eventstore.ErrClosed once the store is closed.
type HashStore interface {
	// TreeSize returns the number of leaves stored (0 when none).
	TreeSize(ctx context.Context) (int64, error)

	// ReadHashes returns the stored hashes at the given stored-hash indexes,
	// in the order asked. An index not stored is an error.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)

	// AppendLeaves stores leaves from, from+1, ... atomically: positions[i]
	// is the global position of leaf from+i, and hashes are the stored
	// hashes those leaves add, from index tlog.StoredHashIndex(0, from) on
	// (tlog.StoredHashCount(from+len(positions)) -
	// tlog.StoredHashCount(from) of them). It fails, storing nothing, when
	// from is not the current TreeSize (another writer came first), when the
	// counts do not match, or when the positions do not strictly increase
	// past the last stored leaf's.
	AppendLeaves(ctx context.Context, from int64, positions []uint64, hashes []tlog.Hash) error

	// LeafPositions returns the global positions of leaves from, from+1, ...,
	// at most n of them (fewer at the end of the stored tree).
	LeafPositions(ctx context.Context, from int64, n int) ([]uint64, error)

	// LeafIndex returns the leaf holding the event at the global position,
	// and false when no stored leaf has that position.
	LeafIndex(ctx context.Context, position uint64) (int64, bool, error)
}

// reader adapts a HashStore to tlog.HashReader, which has no context.
func reader(ctx context.Context, hs HashStore) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hashes, err := hs.ReadHashes(ctx, indexes)
		if err == nil && len(hashes) != len(indexes) {
			err = fmt.Errorf("read %d stored hashes, got %d", len(indexes), len(hashes))
		}
		return hashes, err
	})
}

// builder grows a tree one leaf at a time with tlog, keeping in memory only
// the stored hashes tlog can still ask for: those of the complete subtrees
// along the tree's right edge (at most one per level). tlog does all the
// hashing; builder only decides which hashes to forget, so recomputing the
// root of a log of any length takes memory logarithmic in it.
type builder struct {
	n      int64
	hashes map[int64]tlog.Hash
}

func newBuilder() *builder { return &builder{hashes: make(map[int64]tlog.Hash)} }

// clone returns an independent copy, to build on without changing b.
func (b *builder) clone() *builder {
	c := &builder{n: b.n, hashes: make(map[int64]tlog.Hash, len(b.hashes))}
	for k, v := range b.hashes {
		c.hashes[k] = v
	}
	return c
}

// ReadHashes implements tlog.HashReader over the retained hashes.
func (b *builder) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := b.hashes[x]
		if !ok {
			return nil, fmt.Errorf("stored hash %d not retained at tree size %d", x, b.n)
		}
		out[i] = h
	}
	return out, nil
}

// add appends a leaf and returns the stored hashes it produces (the ones a
// HashStore keeps for it, from index tlog.StoredHashIndex(0, n)).
func (b *builder) add(leaf tlog.Hash) ([]tlog.Hash, error) {
	hs, err := tlog.StoredHashesForRecordHash(b.n, leaf, b)
	if err != nil {
		return nil, err
	}
	base := tlog.StoredHashIndex(0, b.n)
	for i, h := range hs {
		b.hashes[base+int64(i)] = h
	}
	b.n++
	b.prune()
	return hs, nil
}

// root returns the tree hash of the leaves added so far.
func (b *builder) root() (tlog.Hash, error) { return tlog.TreeHash(b.n, b) }

// prune forgets every hash that is not on the right edge of the tree.
func (b *builder) prune() {
	keep := frontier(b.n)
	if len(b.hashes) <= len(keep) {
		return
	}
	for k := range b.hashes {
		if !contains(keep, k) {
			delete(b.hashes, k)
		}
	}
}

// frontier returns the stored-hash indexes of the complete subtrees a tree of
// n leaves decomposes into, largest first: all tlog needs to hash the tree or
// add the next leaf.
func frontier(n int64) []int64 {
	var idx []int64
	var start int64
	for level := 62; level >= 0; level-- {
		size := int64(1) << level
		if n&size != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, start>>level))
			start += size
		}
	}
	return idx
}

func contains(s []int64, x int64) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// loadBuilder returns a builder at the stored tree's size n, with the
// frontier hashes read from hs.
func loadBuilder(ctx context.Context, hs HashStore, n int64) (*builder, error) {
	b := newBuilder()
	b.n = n
	idx := frontier(n)
	if len(idx) == 0 {
		return b, nil
	}
	hashes, err := hs.ReadHashes(ctx, idx)
	if err != nil {
		return nil, fmt.Errorf("read the stored tree's edge at size %d: %w", n, err)
	}
	if len(hashes) != len(idx) {
		return nil, fmt.Errorf("read %d stored hashes, got %d", len(idx), len(hashes))
	}
	for i, x := range idx {
		b.hashes[x] = hashes[i]
	}
	return b, nil
}
