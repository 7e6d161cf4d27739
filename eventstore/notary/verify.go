package notary

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
)

// Reader is the part of an event store Verify reads.
type Reader interface {
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
}

// Damage is what most likely happened at the first bad leaf, judged by
// comparing the events from there on with the stored leaf hashes.
type Damage int

// Kinds of damage.
const (
	// DamageNone: the events reproduce the checkpoint.
	DamageNone Damage = iota
	// DamageAltered: the event at the position is not the one the tree
	// holds there, and that event is nowhere near: its content was changed
	// (or it was replaced).
	DamageAltered
	// DamageDeleted: the event the tree holds at the leaf is gone; the
	// events after it moved up.
	DamageDeleted
	// DamageInserted: an event the tree does not hold sits before the one it
	// holds at the leaf.
	DamageInserted
	// DamageReordered: the event the tree holds at the leaf comes later, and
	// the event found there belongs later too.
	DamageReordered
	// DamageMissingTail: the log ends before the checkpoint's size: its last
	// events were removed.
	DamageMissingTail
	// DamageUnknown: the events do not reproduce the checkpoint, but no
	// trustworthy leaf hashes were available to say where or how.
	DamageUnknown
)

// String names the damage, as reports print it.
func (d Damage) String() string {
	switch d {
	case DamageNone:
		return "none"
	case DamageAltered:
		return "altered"
	case DamageDeleted:
		return "deleted"
	case DamageInserted:
		return "inserted"
	case DamageReordered:
		return "reordered"
	case DamageMissingTail:
		return "missing tail"
	case DamageUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Damage(%d)", int(d))
}

// Report is what Verify found.
type Report struct {
	// Checkpoint is the checkpoint verified against.
	Checkpoint Checkpoint
	// Leaves is the number of events read and hashed: Checkpoint.Size, or
	// fewer when the log ends early.
	Leaves int64
	// Root is the root recomputed from the events (zero when the log has
	// fewer events than Checkpoint.Size).
	Root tlog.Hash
	// Intact: the events reproduce the checkpoint's root.
	Intact bool

	// StoredLeaves is the size of the stored tree.
	StoredLeaves int64
	// HashesAuthentic: the stored leaf hashes of the checkpoint's first
	// Checkpoint.Size leaves reproduce its root, so they are the leaves the
	// checkpoint signed, and can say where the events differ.
	HashesAuthentic bool
	// FirstBadHash, with intact events, is the first stored hash (a tlog
	// stored-hash index) that differs from what the events give; -1 when
	// none does.
	FirstBadHash int64

	// FirstBadLeaf is the first leaf whose event differs (-1 when intact or
	// unknown), and FirstBadPosition that event's global position: for a
	// deleted event or a missing tail, the position the missing event had
	// (from the stored leaf positions).
	FirstBadLeaf     int64
	FirstBadPosition uint64
	// Damage is what most likely happened there.
	Damage Damage
	// Authenticated: FirstBadLeaf was found by comparing the events with
	// stored hashes that reproduce the checkpoint (HashesAuthentic), so it
	// is trustworthy. When false and FirstBadLeaf >= 0, it is only where the
	// events and the unauthenticated stored hashes first disagree.
	Authenticated bool
}

// Summary describes the report in one sentence.
func (r Report) Summary() string {
	cp := r.Checkpoint
	switch {
	case r.Intact && r.FirstBadHash >= 0:
		return fmt.Sprintf("the first %d events reproduce the checkpoint's root, but stored hash %d differs from them: proofs from the stored hashes cannot be trusted until they are rebuilt", cp.Size, r.FirstBadHash)
	case r.Intact && r.StoredLeaves >= cp.Size && !r.HashesAuthentic:
		return fmt.Sprintf("the first %d events reproduce the checkpoint's root, but the stored hashes do not", cp.Size)
	case r.Intact:
		return fmt.Sprintf("the first %d events reproduce the checkpoint's root %s", cp.Size, cp.Hash)
	case r.FirstBadLeaf < 0:
		return fmt.Sprintf("the events do not reproduce the checkpoint of size %d, and no trustworthy stored hashes say where (stored tree: %d leaves)", cp.Size, r.StoredLeaves)
	case r.Authenticated:
		return fmt.Sprintf("first bad global position %d (leaf %d): %s", r.FirstBadPosition, r.FirstBadLeaf, r.Damage)
	default:
		return fmt.Sprintf("first bad global position %d (leaf %d): %s — UNAUTHENTICATED: the stored hashes do not reproduce the checkpoint either, so this is only where the events and the stored hashes first disagree", r.FirstBadPosition, r.FirstBadLeaf, r.Damage)
	}
}

// Verify recomputes the leaf of every event up to cp.Size from the log and
// the tree's root, and compares it with the checkpoint. It only reads.
//
//   - Events reproduce the root, stored hashes match them: the Report is
//     Intact, and the error nil. A stored tree smaller than the checkpoint
//     (a notary behind) is not an error.
//   - Events reproduce the root but some stored hash differs: an error
//     wrapping ErrHashesDamaged (the ledger is intact; proofs are not).
//   - Events do not reproduce the root: an error wrapping ErrTampered naming
//     the first bad global position and leaf. The stored leaf hashes locate
//     it only after they are shown to reproduce the checkpoint's root
//     (Report.Authenticated); otherwise the first leaf where events and
//     stored hashes disagree is reported, marked unauthenticated.
//
// Other errors are failures to read.
func Verify(ctx context.Context, log Reader, hashes HashStore, cp Checkpoint) (Report, error) {
	rep := Report{Checkpoint: cp, FirstBadHash: -1, FirstBadLeaf: -1}
	fail := func(err error) (Report, error) { return rep, fmt.Errorf("notary: verify: %w", err) }
	if cp.Size < 0 {
		return fail(fmt.Errorf("%w: negative size", ErrBadCheckpoint))
	}
	stored, err := hashes.TreeSize(ctx)
	if err != nil {
		return fail(err)
	}
	rep.StoredLeaves = stored
	n := cp.Size
	compared := min(stored, n) // leaves compared with the stored hashes

	var (
		events    = newBuilder()      // the tree of the events
		fromStore = newBuilder()      // the tree of the stored leaf hashes
		after     uint64              // position of the last event read
		firstDiff int64          = -1 // first leaf where event and stored leaf differ
		before    uint64              // position of the event before firstDiff
		leaf      int64
	)
	for leaf < n {
		page, err := log.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: int(min(BatchSize, n-leaf))})
		if err != nil {
			return fail(err)
		}
		if len(page) == 0 {
			break
		}
		k := max(0, min(int64(len(page)), compared-leaf)) // leaves of this page with stored hashes
		base := tlog.StoredHashIndex(0, leaf)
		var sh []tlog.Hash
		if k > 0 {
			sh, err = readRange(ctx, hashes, base, tlog.StoredHashCount(leaf+k))
			if err != nil {
				return fail(err)
			}
		}
		for i, r := range page {
			h := LeafHash(r)
			produced, err := events.add(h)
			if err != nil {
				return fail(err)
			}
			if int64(i) < k {
				off := tlog.StoredHashIndex(0, leaf) - base
				if _, err := fromStore.add(sh[off]); err != nil {
					return fail(err)
				}
				if firstDiff < 0 && sh[off] != h {
					firstDiff, before = leaf, after
				}
				for j, p := range produced {
					if rep.FirstBadHash < 0 && sh[off+int64(j)] != p {
						rep.FirstBadHash = base + off + int64(j)
					}
				}
			}
			leaf++
			after = r.Position
		}
	}
	rep.Leaves = leaf
	if leaf == n {
		if rep.Root, err = events.root(); err != nil {
			return fail(err)
		}
		rep.Intact = rep.Root == cp.Hash
	}
	if stored >= n {
		// The stored leaves the events did not reach still count towards
		// the stored tree's root.
		for fromStore.n < n {
			end := min(n, fromStore.n+BatchSize)
			idx := make([]int64, 0, end-fromStore.n)
			for i := fromStore.n; i < end; i++ {
				idx = append(idx, tlog.StoredHashIndex(0, i))
			}
			sh, err := hashes.ReadHashes(ctx, idx)
			if err == nil && len(sh) != len(idx) {
				err = fmt.Errorf("read %d stored hashes, got %d", len(idx), len(sh))
			}
			if err != nil {
				return fail(err)
			}
			for _, h := range sh {
				if _, err := fromStore.add(h); err != nil {
					return fail(err)
				}
			}
		}
		root, err := fromStore.root()
		if err != nil {
			return fail(err)
		}
		rep.HashesAuthentic = root == cp.Hash
	}

	if rep.Intact {
		if rep.FirstBadHash >= 0 || stored >= n && !rep.HashesAuthentic {
			return rep, fmt.Errorf("notary: verify: %w: %s", ErrHashesDamaged, rep.Summary())
		}
		return rep, nil
	}
	rep.FirstBadHash = -1
	if firstDiff < 0 && leaf < compared {
		firstDiff, before = leaf, after // the events end where stored leaves go on
	}
	rep.Damage = DamageUnknown
	if firstDiff >= 0 {
		rep.FirstBadLeaf = firstDiff
		rep.Authenticated = rep.HashesAuthentic
		rep.Damage, rep.FirstBadPosition, err = classify(ctx, log, hashes, firstDiff, before, stored)
		if err != nil {
			return fail(err)
		}
	}
	return rep, fmt.Errorf("notary: verify: %w: %s", ErrTampered, rep.Summary())
}

// readRange reads the stored hashes with indexes [from, to).
func readRange(ctx context.Context, hs HashStore, from, to int64) ([]tlog.Hash, error) {
	idx := make([]int64, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, i)
	}
	sh, err := hs.ReadHashes(ctx, idx)
	if err != nil {
		return nil, err
	}
	if len(sh) != len(idx) {
		return nil, fmt.Errorf("read %d stored hashes, got %d", len(idx), len(sh))
	}
	return sh, nil
}

// classifyWindow is how many events and stored leaves after the first bad
// leaf classify compares.
const classifyWindow = 32

// classify compares the events from leaf i on (those after position before)
// with the stored leaves from i on, and says what most likely happened and
// at which global position.
func classify(ctx context.Context, log Reader, hashes HashStore, i int64, before uint64, stored int64) (Damage, uint64, error) {
	recs, err := log.ReadAll(ctx, eventstore.ReadAllOptions{After: before, Limit: classifyWindow})
	if err != nil {
		return DamageUnknown, 0, err
	}
	ev := make([]tlog.Hash, len(recs))
	for j, r := range recs {
		ev[j] = LeafHash(r)
	}
	var st []tlog.Hash
	var mapped uint64 // the position the stored tree gives leaf i
	if stored > i {
		end := min(stored, i+classifyWindow)
		idx := make([]int64, 0, end-i)
		for j := i; j < end; j++ {
			idx = append(idx, tlog.StoredHashIndex(0, j))
		}
		if st, err = hashes.ReadHashes(ctx, idx); err != nil {
			return DamageUnknown, 0, err
		}
		pos, err := hashes.LeafPositions(ctx, i, 1)
		if err != nil {
			return DamageUnknown, 0, err
		}
		if len(pos) == 1 {
			mapped = pos[0]
		}
	}
	if mapped == 0 {
		mapped = before + 1
	}
	switch {
	case len(ev) == 0:
		return DamageMissingTail, mapped, nil
	case len(st) == 0:
		return DamageUnknown, recs[0].Position, nil
	}
	laterInEvents := indexOf(ev[1:], st[0]) >= 0 // the expected event comes later
	laterInStored := indexOf(st[1:], ev[0]) >= 0 // the event found belongs later
	switch {
	case laterInEvents && laterInStored:
		return DamageReordered, recs[0].Position, nil
	case laterInStored:
		return DamageDeleted, mapped, nil
	case laterInEvents:
		return DamageInserted, recs[0].Position, nil
	default:
		return DamageAltered, recs[0].Position, nil
	}
}

func indexOf(hs []tlog.Hash, h tlog.Hash) int {
	for i, x := range hs {
		if x == h {
			return i
		}
	}
	return -1
}

// StreamReader is the part of an event store VerifyStream reads.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
}

// Status is the outcome of checking one event of a stream.
type Status int

// Outcomes of VerifyStream, per event.
const (
	// StatusVerified: the event's inclusion proof leads to the checkpoint's
	// root.
	StatusVerified Status = iota + 1
	// StatusNewer: the event was recorded after the checkpoint's last
	// event; a later checkpoint covers it.
	StatusNewer
	// StatusFailed: the event is not in the checkpointed tree as stored.
	StatusFailed
	// StatusMissing: a version of the stream is absent, although a later
	// version is present (Event holds only Stream and Version).
	StatusMissing
)

// String names the status, as reports print it.
func (s Status) String() string {
	switch s {
	case StatusVerified:
		return "verified"
	case StatusNewer:
		return "newer than the checkpoint"
	case StatusFailed:
		return "FAILED"
	case StatusMissing:
		return "MISSING"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// EventStatus is the outcome for one event of a stream.
type EventStatus struct {
	Event eventstore.Record
	// Leaf is the event's leaf index, -1 when it has none.
	Leaf   int64
	Status Status
	// Detail says why an event failed.
	Detail string
}

// VerifyStream checks every event of stream against cp: each event the
// checkpoint covers gets its leaf and an inclusion proof from the stored
// hashes, checked against the checkpoint's root (CheckInclusion); later
// events are reported newer. It fails with an error wrapping ErrTampered
// when any event failed or a version is missing between present ones (the
// statuses say which), with ErrNotInTree when the stored tree is smaller
// than the checkpoint, and with eventstore.ErrNotFound when the stream has
// no events. A stream's last events removed without trace are found by
// Verify, not here.
func VerifyStream(ctx context.Context, store StreamReader, hashes HashStore, stream string, cp Checkpoint) ([]EventStatus, error) {
	fail := func(err error) ([]EventStatus, error) {
		return nil, fmt.Errorf("notary: verify stream %q: %w", stream, err)
	}
	if err := covered(ctx, hashes, cp.Size); err != nil {
		return fail(err)
	}
	var cpLast uint64 // position of the checkpoint's last leaf
	if cp.Size > 0 {
		pos, err := hashes.LeafPositions(ctx, cp.Size-1, 1)
		if err != nil {
			return fail(err)
		}
		if len(pos) != 1 {
			return fail(fmt.Errorf("no stored position for leaf %d", cp.Size-1))
		}
		cpLast = pos[0]
	}
	var out []EventStatus
	bad := -1
	var next uint64 // the version expected next
	var lastPos uint64
	sawNewer := false
	for from := uint64(0); ; {
		page, err := store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: from, Limit: BatchSize})
		if err != nil {
			return fail(err)
		}
		for _, r := range page {
			if r.Stream != stream || r.Version < next {
				if bad < 0 {
					bad = len(out)
				}
				out = append(out, EventStatus{Event: r, Leaf: -1, Status: StatusFailed,
					Detail: fmt.Sprintf("read as version %d of %q after version %d of %q: the stream's index does not match its events", r.Version, r.Stream, next, stream)})
				continue
			}
			for ; next < r.Version; next++ {
				if bad < 0 {
					bad = len(out)
				}
				out = append(out, EventStatus{Event: eventstore.Record{Stream: stream, Version: next}, Leaf: -1, Status: StatusMissing,
					Detail: fmt.Sprintf("version %d is absent, version %d is present", next, r.Version)})
			}
			next = r.Version + 1
			st := checkEvent(ctx, hashes, cp, cpLast, r)
			// In an honest log a stream's positions grow with its versions,
			// so no verified event follows one newer than the checkpoint:
			// a version moved to another position (and re-hashed) breaks
			// that, however well its own proof goes.
			switch {
			case lastPos > 0 && r.Position <= lastPos:
				st.Status = StatusFailed
				st.Detail = fmt.Sprintf("position %d does not follow position %d of the previous version: the stream was reordered", r.Position, lastPos)
			case st.Status == StatusVerified && sawNewer:
				st.Status = StatusFailed
				st.Detail = "an earlier version is newer than the checkpoint, this one is in it: the stream was reordered"
			}
			lastPos = max(lastPos, r.Position)
			sawNewer = sawNewer || st.Status == StatusNewer
			if st.Status == StatusFailed && bad < 0 {
				bad = len(out)
			}
			out = append(out, st)
		}
		if len(page) < BatchSize {
			break
		}
		from = page[len(page)-1].Version + 1
	}
	if bad >= 0 {
		b := out[bad]
		where := fmt.Sprintf("version %d (position %d)", b.Event.Version, b.Event.Position)
		if b.Status == StatusMissing {
			where = fmt.Sprintf("version %d", b.Event.Version)
		}
		return out, fmt.Errorf("notary: verify stream %q: %w: %s %s: %s", stream, ErrTampered, where, b.Status, b.Detail)
	}
	return out, nil
}

// checkEvent proves one event of a stream against cp.
func checkEvent(ctx context.Context, hashes HashStore, cp Checkpoint, cpLast uint64, r eventstore.Record) EventStatus {
	st := EventStatus{Event: r, Leaf: -1, Status: StatusFailed}
	if r.Position > cpLast {
		st.Status = StatusNewer
		if leaf, ok, err := hashes.LeafIndex(ctx, r.Position); err == nil && ok {
			st.Leaf = leaf
		}
		return st
	}
	leaf, proof, err := proveInclusion(ctx, hashes, r.Position, cp.Size)
	if err != nil {
		st.Detail = fmt.Sprintf("no proof: position %d is within the checkpoint, but: %v", r.Position, err)
		return st
	}
	st.Leaf = leaf
	if err := CheckInclusion(cp, leaf, LeafHash(r), proof); err != nil {
		st.Detail = fmt.Sprintf("the event as stored is not leaf %d of the checkpoint (its inclusion proof fails)", leaf)
		return st
	}
	st.Status = StatusVerified
	return st
}
