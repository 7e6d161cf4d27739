package notary

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// emptyRoot is the root of the tree without leaves: SHA-256 of nothing.
var emptyRoot, _ = tlog.TreeHash(0, nil)

// ProveInclusion returns the leaf holding the event at the global position
// and the proof that the tree of treeSize leaves contains it, from the stored
// hashes. It fails with ErrNotInTree when that event is not among the tree's
// first treeSize leaves, or the stored tree is smaller than treeSize.
func (n *Notary) ProveInclusion(ctx context.Context, position uint64, treeSize int64) (leaf int64, proof tlog.RecordProof, err error) {
	return proveInclusion(ctx, n.hashes, position, treeSize)
}

// ProveConsistency returns the proof that the tree of newSize leaves extends
// the tree of oldSize leaves (0 <= oldSize <= newSize <= the stored tree's
// size), from the stored hashes. The proof that anything extends the empty
// tree is empty.
func (n *Notary) ProveConsistency(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	return proveConsistency(ctx, n.hashes, oldSize, newSize)
}

func proveInclusion(ctx context.Context, hs HashStore, position uint64, treeSize int64) (int64, tlog.RecordProof, error) {
	leaf, ok, err := hs.LeafIndex(ctx, position)
	if err != nil {
		return 0, nil, fmt.Errorf("notary: prove position %d: %w", position, err)
	}
	if !ok {
		return 0, nil, fmt.Errorf("notary: prove position %d: %w: no stored leaf has that position", position, ErrNotInTree)
	}
	if leaf >= treeSize {
		return leaf, nil, fmt.Errorf("notary: prove position %d: %w: it is leaf %d, the tree has %d", position, ErrNotInTree, leaf, treeSize)
	}
	if err := covered(ctx, hs, treeSize); err != nil {
		return leaf, nil, fmt.Errorf("notary: prove position %d: %w", position, err)
	}
	proof, err := tlog.ProveRecord(treeSize, leaf, reader(ctx, hs))
	if err != nil {
		return leaf, nil, fmt.Errorf("notary: prove leaf %d in tree of size %d: %w", leaf, treeSize, err)
	}
	return leaf, proof, nil
}

func proveConsistency(ctx context.Context, hs HashStore, oldSize, newSize int64) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("notary: prove tree %d extends tree %d: sizes out of order", newSize, oldSize)
	}
	if err := covered(ctx, hs, newSize); err != nil {
		return nil, fmt.Errorf("notary: prove tree %d extends tree %d: %w", newSize, oldSize, err)
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	proof, err := tlog.ProveTree(newSize, oldSize, reader(ctx, hs))
	if err != nil {
		return nil, fmt.Errorf("notary: prove tree %d extends tree %d: %w", newSize, oldSize, err)
	}
	return proof, nil
}

// covered checks that the stored tree has at least size leaves.
func covered(ctx context.Context, hs HashStore, size int64) error {
	stored, err := hs.TreeSize(ctx)
	if err != nil {
		return err
	}
	if stored < size {
		return fmt.Errorf("%w: the stored tree has %d leaves, not %d (is the notary behind?)", ErrNotInTree, stored, size)
	}
	return nil
}

// CheckInclusion verifies that proof shows the checkpoint's tree holding
// leaf (a LeafHash) at index leafIndex. It fails with ErrNotInTree when the
// index is outside the checkpoint and with ErrInconsistent when the proof
// does not lead to the checkpoint's root. It needs nothing but its arguments:
// an auditor's tool can run it on a proof served over the network.
func CheckInclusion(cp Checkpoint, leafIndex int64, leaf tlog.Hash, proof tlog.RecordProof) error {
	if leafIndex < 0 || leafIndex >= cp.Size {
		return fmt.Errorf("notary: %w: leaf %d, checkpoint of size %d", ErrNotInTree, leafIndex, cp.Size)
	}
	if err := tlog.CheckRecord(proof, cp.Size, cp.Hash, leafIndex, leaf); err != nil {
		return fmt.Errorf("notary: %w: leaf %d is not in the checkpoint of size %d: %v", ErrInconsistent, leafIndex, cp.Size, err)
	}
	return nil
}

// CheckConsistency verifies that proof shows newer's tree extending older's:
// every event older covers is still there, unchanged and in order. It fails
// with ErrInconsistent otherwise, which means the log was rewritten or forked
// between the two checkpoints. Like CheckInclusion it needs nothing but its
// arguments.
func CheckConsistency(older, newer Checkpoint, proof tlog.TreeProof) error {
	fail := func(why string) error {
		return fmt.Errorf("notary: %w: checkpoint of size %d does not extend the one of size %d: %s", ErrInconsistent, newer.Size, older.Size, why)
	}
	switch {
	case older.Size < 0 || older.Size > newer.Size:
		return fail("the older checkpoint is larger")
	case older.Size == 0:
		if older.Hash != emptyRoot {
			return fail("the older, empty checkpoint has a root other than the empty tree's")
		}
		if len(proof) != 0 {
			return fail("a proof from the empty tree must be empty")
		}
		return nil
	}
	if err := tlog.CheckTree(proof, newer.Size, newer.Hash, older.Size, older.Hash); err != nil {
		return fail(err.Error())
	}
	return nil
}

// VerifyConsistency proves, from the stored hashes, that newer extends
// older, and checks the proof (CheckConsistency). Run Verify against newer
// first: a proof read from damaged stored hashes fails too.
func VerifyConsistency(ctx context.Context, hashes HashStore, older, newer Checkpoint) (tlog.TreeProof, error) {
	if older.Size > newer.Size {
		return nil, CheckConsistency(older, newer, nil)
	}
	proof, err := proveConsistency(ctx, hashes, older.Size, newer.Size)
	if err != nil {
		return nil, err
	}
	return proof, CheckConsistency(older, newer, proof)
}
