package memstore

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// tree is the in-memory store of the log's Merkle tree (see
// eventstore/notary): tlog's stored hashes in index order, and the global
// position of each leaf.
type tree struct {
	mu        sync.RWMutex
	hashes    []tlog.Hash
	positions []uint64         // positions[i] is leaf i's global position
	leaves    map[uint64]int64 // global position -> leaf
}

// TreeSize returns the number of leaves of the stored Merkle tree (for
// eventstore/notary).
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	if err := s.usable(ctx); err != nil {
		return 0, fmt.Errorf("tree size: %w", err)
	}
	s.tree.mu.RLock()
	defer s.tree.mu.RUnlock()
	return int64(len(s.tree.positions)), nil
}

// ReadHashes returns the stored Merkle hashes at the given indexes (for
// eventstore/notary).
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.usable(ctx); err != nil {
		return nil, fmt.Errorf("read stored hashes: %w", err)
	}
	s.tree.mu.RLock()
	defer s.tree.mu.RUnlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s.tree.hashes)) {
			return nil, fmt.Errorf("read stored hashes: index %d not stored (%d are)", x, len(s.tree.hashes))
		}
		out[i] = s.tree.hashes[x]
	}
	return out, nil
}

// AppendLeaves stores new leaves of the Merkle tree, atomically, as
// eventstore/notary's HashStore promises.
func (s *Store) AppendLeaves(ctx context.Context, from int64, positions []uint64, hashes []tlog.Hash) error {
	if err := s.usable(ctx); err != nil {
		return fmt.Errorf("append leaves: %w", err)
	}
	s.tree.mu.Lock()
	defer s.tree.mu.Unlock()
	t := &s.tree
	size := int64(len(t.positions))
	if from != size {
		return fmt.Errorf("append leaves from %d: the stored tree has %d leaves", from, size)
	}
	if want := tlog.StoredHashCount(from+int64(len(positions))) - tlog.StoredHashCount(from); int64(len(hashes)) != want {
		return fmt.Errorf("append leaves from %d: %d hashes for %d leaves, want %d", from, len(hashes), len(positions), want)
	}
	last := uint64(0)
	if size > 0 {
		last = t.positions[size-1]
	}
	for _, p := range positions {
		if p <= last {
			return fmt.Errorf("append leaves from %d: position %d does not follow %d", from, p, last)
		}
		last = p
	}
	if t.leaves == nil {
		t.leaves = make(map[uint64]int64)
	}
	t.hashes = append(t.hashes, hashes...)
	for i, p := range positions {
		t.leaves[p] = from + int64(i)
	}
	t.positions = append(t.positions, positions...)
	return nil
}

// LeafPositions returns the global positions of up to n leaves from leaf
// from (for eventstore/notary).
func (s *Store) LeafPositions(ctx context.Context, from int64, n int) ([]uint64, error) {
	if err := s.usable(ctx); err != nil {
		return nil, fmt.Errorf("leaf positions: %w", err)
	}
	s.tree.mu.RLock()
	defer s.tree.mu.RUnlock()
	size := int64(len(s.tree.positions))
	if from < 0 || n <= 0 || from >= size {
		return nil, nil
	}
	end := min(size, from+int64(n))
	return append([]uint64(nil), s.tree.positions[from:end]...), nil
}

// LeafIndex returns the leaf holding the event at a global position (for
// eventstore/notary).
func (s *Store) LeafIndex(ctx context.Context, position uint64) (int64, bool, error) {
	if err := s.usable(ctx); err != nil {
		return 0, false, fmt.Errorf("leaf index: %w", err)
	}
	s.tree.mu.RLock()
	defer s.tree.mu.RUnlock()
	leaf, ok := s.tree.leaves[position]
	return leaf, ok, nil
}
