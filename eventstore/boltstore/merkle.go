package boltstore

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
)

// The Merkle tree over the log (eventstore/notary) lives in three more
// buckets of the same file, created by the first AppendLeaves:
//
//	tree_hashes    8-byte big-endian stored-hash index (tlog.StoredHashIndex)
//	               → the 32-byte hash
//	tree_leaves    8-byte big-endian leaf index → 8-byte global position
//	tree_positions 8-byte big-endian global position → 8-byte leaf index
//
// All three only ever grow at the end, so their pages are packed full.
// Leaves are written by the store's writer as one more kind of request, so
// they join a group commit (and its fsync) instead of taking the write lock
// for a transaction of their own: the notary never holds up an append.
var (
	bucketTreeHashes    = []byte("tree_hashes")
	bucketTreeLeaves    = []byte("tree_leaves")
	bucketTreePositions = []byte("tree_positions")
)

// leafWrite is an AppendLeaves request.
type leafWrite struct {
	from      int64
	positions []uint64
	hashes    []tlog.Hash
	// vals holds the values handed to bbolt, which keeps them until the
	// commit: the positions, then the leaf indexes, 8 bytes each.
	vals []byte
}

// TreeSize returns the number of leaves of the stored Merkle tree (for
// eventstore/notary).
func (s *Store) TreeSize(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("boltstore: tree size: %w", err)
	}
	var size int64
	err := s.view(func(tx *bolt.Tx, _ buckets) error {
		n, _, err := lastLeaf(tx)
		size = n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("boltstore: tree size: %w", err)
	}
	return size, nil
}

// lastLeaf returns the stored tree's size and its last leaf's position.
func lastLeaf(tx *bolt.Tx) (size int64, last uint64, err error) {
	b := tx.Bucket(bucketTreeLeaves)
	if b == nil {
		return 0, 0, nil
	}
	k, v := b.Cursor().Last()
	if k == nil {
		return 0, 0, nil
	}
	leaf, err := u64(k)
	if err != nil {
		return 0, 0, fmt.Errorf("tree leaf key: %w", err)
	}
	if last, err = u64(v); err != nil {
		return 0, 0, fmt.Errorf("tree leaf %d: %w", leaf, err)
	}
	return int64(leaf) + 1, last, nil
}

// ReadHashes returns the stored Merkle hashes at the given indexes (for
// eventstore/notary). Ascending runs of indexes are read with one cursor
// walk.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: read stored hashes: %w", err)
	}
	out := make([]tlog.Hash, len(indexes))
	err := s.view(func(tx *bolt.Tx, _ buckets) error {
		b := tx.Bucket(bucketTreeHashes)
		if b == nil {
			if len(indexes) > 0 {
				return fmt.Errorf("stored hash %d: no tree stored", indexes[0])
			}
			return nil
		}
		c := b.Cursor()
		var key [8]byte
		var k, v []byte
		for i, x := range indexes {
			if x < 0 {
				return fmt.Errorf("stored hash %d: negative index", x)
			}
			want := appendU64(key[:0], uint64(x))
			if i > 0 && x == indexes[i-1]+1 && k != nil {
				k, v = c.Next()
			} else {
				k, v = c.Seek(want)
			}
			if !bytes.Equal(k, want) {
				return fmt.Errorf("stored hash %d: not stored", x)
			}
			if len(v) != tlog.HashSize {
				return fmt.Errorf("%w: stored hash %d has %d bytes", ErrCorrupt, x, len(v))
			}
			copy(out[i][:], v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: read stored hashes: %w", err)
	}
	return out, nil
}

// LeafPositions returns the global positions of up to n leaves from leaf
// from (for eventstore/notary).
func (s *Store) LeafPositions(ctx context.Context, from int64, n int) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: leaf positions: %w", err)
	}
	if from < 0 || n <= 0 {
		return nil, nil
	}
	var out []uint64
	err := s.view(func(tx *bolt.Tx, _ buckets) error {
		b := tx.Bucket(bucketTreeLeaves)
		if b == nil {
			return nil
		}
		var key [8]byte
		c := b.Cursor()
		want := uint64(from)
		for k, v := c.Seek(appendU64(key[:0], want)); k != nil && len(out) < n; k, v = c.Next() {
			leaf, err := u64(k)
			if err != nil {
				return err
			}
			if leaf != want {
				return fmt.Errorf("%w: tree leaf %d follows %d", ErrCorrupt, leaf, want-1)
			}
			pos, err := u64(v)
			if err != nil {
				return fmt.Errorf("tree leaf %d: %w", leaf, err)
			}
			out = append(out, pos)
			want++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: leaf positions from %d: %w", from, err)
	}
	return out, nil
}

// LeafIndex returns the leaf holding the event at a global position (for
// eventstore/notary).
func (s *Store) LeafIndex(ctx context.Context, position uint64) (int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, fmt.Errorf("boltstore: leaf index: %w", err)
	}
	var (
		leaf uint64
		ok   bool
	)
	err := s.view(func(tx *bolt.Tx, _ buckets) error {
		b := tx.Bucket(bucketTreePositions)
		if b == nil {
			return nil
		}
		var key [8]byte
		v := b.Get(appendU64(key[:0], position))
		if v == nil {
			return nil
		}
		var err error
		leaf, err = u64(v)
		ok = err == nil
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("boltstore: leaf index of position %d: %w", position, err)
	}
	return int64(leaf), ok, nil
}

// AppendLeaves stores new leaves of the Merkle tree atomically, as
// eventstore/notary's HashStore promises. The write joins the writer's next
// group commit; like Append, it is on disk (fsync) when AppendLeaves
// returns nil, and a ctx that ends before the writer takes it leaves
// nothing written.
func (s *Store) AppendLeaves(ctx context.Context, from int64, positions []uint64, hashes []tlog.Hash) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: append leaves: %w", err)
	}
	if len(positions) == 0 {
		return nil
	}
	if from < 0 {
		return fmt.Errorf("boltstore: append leaves from %d: negative leaf index", from)
	}
	if want := tlog.StoredHashCount(from+int64(len(positions))) - tlog.StoredHashCount(from); int64(len(hashes)) != want {
		return fmt.Errorf("boltstore: append leaves from %d: %d hashes for %d leaves, want %d", from, len(hashes), len(positions), want)
	}
	n := len(positions)
	vals := make([]byte, 0, 16*n)
	for i, p := range positions {
		if i > 0 && p <= positions[i-1] {
			return fmt.Errorf("boltstore: append leaves from %d: position %d does not follow %d", from, p, positions[i-1])
		}
		vals = appendU64(vals, p)
	}
	for i := range positions {
		vals = appendU64(vals, uint64(from)+uint64(i))
	}
	req := &appendReq{
		leaves: &leafWrite{from: from, positions: positions, hashes: hashes, vals: vals},
		size:   len(hashes)*tlog.HashSize + len(vals) + 24*n,
		done:   make(chan struct{}),
	}
	if err := s.submit(ctx, req); err != nil {
		return fmt.Errorf("boltstore: append leaves from %d: %w", from, err)
	}
	if req.err != nil {
		return fmt.Errorf("boltstore: append leaves from %d: %w", from, req.err)
	}
	return nil
}

// submit queues req for the writer and waits for its outcome, as Append
// does: a ctx ending before the writer takes the request abandons it.
func (s *Store) submit(ctx context.Context, req *appendReq) error {
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return eventstore.ErrClosed
	}
	select {
	case s.queue <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		<-req.done
	}
	return nil
}

// applyLeaves stores an AppendLeaves request inside the writer's
// transaction. A request that does not continue the stored tree is
// rejected alone.
func (w *batchWriter) applyLeaves(lw *leafWrite) (res eventstore.AppendResult, reqErr, fatal error) {
	size, last, err := lastLeaf(w.tx)
	if err != nil {
		return res, nil, err
	}
	if lw.from != size {
		return res, fmt.Errorf("the stored tree has %d leaves, not %d (another notary stored leaves first?)", size, lw.from), nil
	}
	if lw.positions[0] <= last {
		return res, fmt.Errorf("position %d does not follow the last leaf's, %d", lw.positions[0], last), nil
	}
	var bs [3]*bolt.Bucket
	for i, name := range [][]byte{bucketTreeHashes, bucketTreeLeaves, bucketTreePositions} {
		b, err := w.tx.CreateBucketIfNotExists(name)
		if err != nil {
			return res, nil, fmt.Errorf("create bucket %s: %w", name, err)
		}
		b.FillPercent = eventsFillPercent
		bs[i] = b
	}
	hashes, leaves, positions := bs[0], bs[1], bs[2]
	base := tlog.StoredHashIndex(0, lw.from)
	for i := range lw.hashes {
		w.key = appendU64(w.key[:0], uint64(base)+uint64(i))
		if err := hashes.Put(w.key, lw.hashes[i][:]); err != nil {
			return res, nil, fmt.Errorf("put stored hash %d: %w", base+int64(i), err)
		}
	}
	n := len(lw.positions)
	for i, p := range lw.positions {
		posVal := lw.vals[8*i : 8*i+8 : 8*i+8]
		leafVal := lw.vals[8*(n+i) : 8*(n+i)+8 : 8*(n+i)+8]
		if err := leaves.Put(leafVal, posVal); err != nil {
			return res, nil, fmt.Errorf("put tree leaf %d: %w", lw.from+int64(i), err)
		}
		if err := positions.Put(posVal, leafVal); err != nil {
			return res, nil, fmt.Errorf("put tree position %d: %w", p, err)
		}
	}
	w.wroteLeaves = true
	return res, nil, nil
}
