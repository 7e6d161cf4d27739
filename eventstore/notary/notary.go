package notary

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
)

// Source is the part of an event store the notary reads.
type Source interface {
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
	Head(ctx context.Context) (uint64, error)
	Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error
}

// BatchSize is how many events the notary reads, hashes and stores at once.
const BatchSize = 1000

// maxConflicts bounds how often one batch is retried after another notary
// (another process on the same PostgreSQL schema) stored leaves first.
const maxConflicts = 8

// Notary keeps the stored hashes of a log up to date: Sync catches up to the
// log's head, Run follows it live. Several notaries, in one process or
// several, may share one HashStore: they compute the same leaves, and the
// store's AppendLeaves lets only one of them add each leaf.
//
// A Notary is safe for concurrent use.
type Notary struct {
	src    Source
	hashes HashStore
	log    *slog.Logger

	mu sync.Mutex
	// tree is the stored tree's right edge, and last the position of its
	// last leaf; nil until loaded, reset to nil when the store moved under
	// it.
	tree *builder
	last uint64
}

// New returns a notary over the log src whose stored hashes live in hashes.
// A nil logger discards.
func New(src Source, hashes HashStore, logger *slog.Logger) *Notary {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Notary{src: src, hashes: hashes, log: logger}
}

// Hashes returns the notary's hash store.
func (n *Notary) Hashes() HashStore { return n.hashes }

// Tree returns the stored tree: its size and root hash.
func (n *Notary) Tree(ctx context.Context) (tlog.Tree, error) {
	size, err := n.hashes.TreeSize(ctx)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("notary: tree: %w", err)
	}
	root, err := tlog.TreeHash(size, reader(ctx, n.hashes))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("notary: tree of size %d: %w", size, err)
	}
	return tlog.Tree{N: size, Hash: root}, nil
}

// TreeAt returns the stored tree's first size leaves as a tree: the root
// a checkpoint of that size must hold. It fails with ErrNotInTree when
// fewer leaves are stored.
func (n *Notary) TreeAt(ctx context.Context, size int64) (tlog.Tree, error) {
	if err := covered(ctx, n.hashes, size); err != nil {
		return tlog.Tree{}, fmt.Errorf("notary: tree of size %d: %w", size, err)
	}
	root, err := tlog.TreeHash(size, reader(ctx, n.hashes))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("notary: tree of size %d: %w", size, err)
	}
	return tlog.Tree{N: size, Hash: root}, nil
}

// Sync adds every event up to the log's head, as it was when Sync started,
// to the stored tree, and returns the tree. Events committed meanwhile may be
// included too.
func (n *Notary) Sync(ctx context.Context) (tlog.Tree, error) {
	head, err := n.src.Head(ctx)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("notary: sync: %w", err)
	}
	for {
		last, err := n.lastPosition(ctx)
		if err != nil {
			return tlog.Tree{}, fmt.Errorf("notary: sync: %w", err)
		}
		if last >= head {
			break
		}
		page, err := n.src.ReadAll(ctx, eventstore.ReadAllOptions{After: last, Limit: BatchSize})
		if err != nil {
			return tlog.Tree{}, fmt.Errorf("notary: sync after position %d: %w", last, err)
		}
		if len(page) == 0 {
			break
		}
		if err := n.add(ctx, page); err != nil {
			return tlog.Tree{}, fmt.Errorf("notary: sync: %w", err)
		}
	}
	return n.Tree(ctx)
}

// Run catches up, then follows the log live, adding each batch of new events
// to the stored tree, until ctx is done (it returns an error wrapping
// ctx.Err()), the store closes, or storing fails.
func (n *Notary) Run(ctx context.Context) error {
	tree, err := n.Sync(ctx)
	if err != nil {
		return err
	}
	last, err := n.lastPosition(ctx)
	if err != nil {
		return fmt.Errorf("notary: run: %w", err)
	}
	n.log.Info("notary following the log", "leaves", tree.N, "position", last)
	err = n.src.Subscribe(ctx, eventstore.SubscribeOptions{After: last, BatchSize: BatchSize},
		func(ctx context.Context, batch []eventstore.Record) error { return n.add(ctx, batch) })
	return fmt.Errorf("notary: run: %w", err)
}

// lastPosition returns the position of the stored tree's last leaf (0 when
// empty), loading the tree's state if needed.
func (n *Notary) lastPosition(ctx context.Context) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.loadLocked(ctx); err != nil {
		return 0, err
	}
	return n.last, nil
}

// loadLocked reads the stored tree's right edge and last leaf, once, and
// checks that the last leaf still matches the event at its position: a
// notary never extends a tree that does not belong to this log.
func (n *Notary) loadLocked(ctx context.Context) error {
	if n.tree != nil {
		return nil
	}
	size, err := n.hashes.TreeSize(ctx)
	if err != nil {
		return err
	}
	tree, err := loadBuilder(ctx, n.hashes, size)
	if err != nil {
		return err
	}
	var last uint64
	if size > 0 {
		pos, err := n.hashes.LeafPositions(ctx, size-1, 1)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("stored tree of %d leaves has no position for its last leaf", size)
		}
		last = pos[0]
		if err := n.checkLeaf(ctx, size-1, last); err != nil {
			return err
		}
	}
	n.tree, n.last = tree, last
	return nil
}

// checkLeaf compares the stored hash of leaf i with the event at pos.
func (n *Notary) checkLeaf(ctx context.Context, i int64, pos uint64) error {
	stored, err := n.hashes.ReadHashes(ctx, []int64{tlog.StoredHashIndex(0, i)})
	if err != nil {
		return err
	}
	recs, err := n.src.ReadAll(ctx, eventstore.ReadAllOptions{After: pos - 1, Limit: 1})
	if err != nil {
		return err
	}
	if len(recs) == 0 || recs[0].Position != pos {
		return fmt.Errorf("%w: the event at position %d (leaf %d) is missing from the log", ErrTampered, pos, i)
	}
	if len(stored) != 1 || LeafHash(recs[0]) != stored[0] {
		return fmt.Errorf("%w: the event at position %d no longer hashes to leaf %d", ErrTampered, pos, i)
	}
	return nil
}

// add appends the events of recs not yet in the stored tree (those after its
// last leaf's position) as new leaves, in one AppendLeaves.
func (n *Notary) add(ctx context.Context, recs []eventstore.Record) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := n.loadLocked(ctx); err != nil {
			return err
		}
		fresh := recs
		for len(fresh) > 0 && fresh[0].Position <= n.last {
			fresh = fresh[1:]
		}
		if len(fresh) == 0 {
			return nil
		}
		next := n.tree.clone()
		from := next.n
		positions := make([]uint64, len(fresh))
		var hashes []tlog.Hash
		for i, r := range fresh {
			if i > 0 && r.Position <= positions[i-1] {
				return fmt.Errorf("events out of order: position %d after %d", r.Position, positions[i-1])
			}
			positions[i] = r.Position
			hs, err := next.add(LeafHash(r))
			if err != nil {
				return fmt.Errorf("hash leaf %d (position %d): %w", from+int64(i), r.Position, err)
			}
			hashes = append(hashes, hs...)
		}
		err := n.hashes.AppendLeaves(ctx, from, positions, hashes)
		if err == nil {
			n.tree, n.last = next, positions[len(positions)-1]
			return nil
		}
		// Another notary may have stored these leaves first: reload and
		// keep only what is still missing.
		n.tree = nil
		size, serr := n.hashes.TreeSize(ctx)
		if serr != nil || size <= from || attempt == maxConflicts || ctx.Err() != nil {
			return fmt.Errorf("store leaves %d to %d (positions %d to %d): %w", from, from+int64(len(positions))-1,
				positions[0], positions[len(positions)-1], err)
		}
		n.log.Debug("notary: another writer stored leaves first", "from", from, "size", size)
	}
}
