package notarytest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/notary"
)

// testHashStoreContract checks AppendLeaves' refusals and the empty store.
func (s *suite) testHashStoreContract(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	if size, err := st.TreeSize(ctx); err != nil || size != 0 {
		t.Fatalf("empty TreeSize = %d, %v", size, err)
	}
	if pos, err := st.LeafPositions(ctx, 0, 10); err != nil || len(pos) != 0 {
		t.Fatalf("empty LeafPositions = %v, %v", pos, err)
	}
	if _, ok, err := st.LeafIndex(ctx, 1); err != nil || ok {
		t.Fatalf("empty LeafIndex(1) = %t, %v", ok, err)
	}
	if _, err := st.ReadHashes(ctx, []int64{0}); err == nil {
		t.Fatal("ReadHashes of a hash not stored succeeded")
	}

	h := func(b byte) tlog.Hash { return tlog.Hash{b} }
	// Leaf 0 stores one hash, leaf 1 three (itself, then the two-leaf node).
	if err := st.AppendLeaves(ctx, 0, []uint64{1}, []tlog.Hash{h(1)}); err != nil {
		t.Fatalf("AppendLeaves(0): %v", err)
	}
	bad := []struct {
		name      string
		from      int64
		positions []uint64
		hashes    []tlog.Hash
	}{
		{"from behind the tree", 0, []uint64{2}, []tlog.Hash{h(2)}},
		{"from past the tree", 2, []uint64{3}, []tlog.Hash{h(3)}},
		{"too few hashes", 1, []uint64{2}, []tlog.Hash{h(2)}},
		{"too many hashes", 1, []uint64{2}, []tlog.Hash{h(2), h(3), h(4), h(5)}},
		{"position not after the last leaf's", 1, []uint64{1}, []tlog.Hash{h(2), h(3), h(4)}},
		{"positions not increasing", 1, []uint64{5, 4}, []tlog.Hash{h(2), h(3), h(4), h(5)}},
	}
	for _, tc := range bad {
		if err := st.AppendLeaves(ctx, tc.from, tc.positions, tc.hashes); err == nil {
			t.Errorf("AppendLeaves %s: accepted", tc.name)
		}
	}
	if size, err := st.TreeSize(ctx); err != nil || size != 1 {
		t.Fatalf("TreeSize after refusals = %d, %v; want 1", size, err)
	}
	// Positions may have gaps (KurrentDB's do).
	if err := st.AppendLeaves(ctx, 1, []uint64{7}, []tlog.Hash{h(2), h(3)}); err != nil {
		t.Fatalf("AppendLeaves(1): %v", err)
	}
	got, err := st.ReadHashes(ctx, []int64{2, 0, 1})
	if err != nil || len(got) != 3 || got[0] != h(3) || got[1] != h(1) || got[2] != h(2) {
		t.Fatalf("ReadHashes(2, 0, 1) = %v, %v", got, err)
	}
	if pos, err := st.LeafPositions(ctx, 1, 5); err != nil || len(pos) != 1 || pos[0] != 7 {
		t.Fatalf("LeafPositions(1, 5) = %v, %v", pos, err)
	}
	if leaf, ok, err := st.LeafIndex(ctx, 7); err != nil || !ok || leaf != 1 {
		t.Fatalf("LeafIndex(7) = %d, %t, %v", leaf, ok, err)
	}
	if _, ok, err := st.LeafIndex(ctx, 4); err != nil || ok {
		t.Fatalf("LeafIndex(4) = %t, %v; want not found", ok, err)
	}
}

// testSyncMatchesReference: the stored tree is exactly tlog's tree of the
// events, hash for hash.
func (s *suite) testSyncMatchesReference(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	if tree := mustSync(t, ctx, st); tree.N != 0 {
		t.Fatalf("Sync of an empty log: %+v", tree)
	}
	for i := range 6 {
		Customer(t, ctx, st, 3+i*2)
	}
	tree := mustSync(t, ctx, st)
	ref := Compute(t, ctx, st)
	if want := ref.Tree(int64(len(ref.Records))); tree != want {
		t.Fatalf("Sync = %d %s, want %d %s", tree.N, tree.Hash, want.N, want.Hash)
	}
	checkStoredHashes(t, ctx, st, ref)
	// A second Sync with nothing new changes nothing.
	if again := mustSync(t, ctx, st); again != tree {
		t.Fatalf("second Sync = %+v, want %+v", again, tree)
	}
}

// testResumeAfterRestart: a new notary, after the store restarted,
// continues the stored tree instead of starting over.
func (s *suite) testResumeAfterRestart(t *testing.T) {
	ctx := Context(t)
	l := s.newLedger(t)
	Customer(t, ctx, l.Store(), 11)
	first := mustSync(t, ctx, l.Store())
	Customer(t, ctx, l.Store(), 9)
	if !l.Reopen(t) {
		t.Log("the backend keeps nothing across a restart: only the notary restarts")
	}
	st := l.Store()
	if size, err := st.TreeSize(ctx); err != nil || size != first.N {
		t.Fatalf("TreeSize after restart = %d, %v; want %d", size, err, first.N)
	}
	n := notary.New(st, st, nil)
	if tree, err := n.Tree(ctx); err != nil || tree != first {
		t.Fatalf("Tree after restart = %+v, %v; want %+v", tree, err, first)
	}
	tree, err := n.Sync(ctx)
	if err != nil {
		t.Fatalf("Sync after restart: %v", err)
	}
	ref := Compute(t, ctx, st)
	if want := ref.Tree(20); tree != want {
		t.Fatalf("Sync after restart = %+v, want %+v", tree, want)
	}
	if ref.Roots[first.N] != first.Hash {
		t.Fatal("the tree before the restart is not a prefix of the one after")
	}
	checkStoredHashes(t, ctx, st, ref)
}

// testLive: Run follows concurrent appends live.
func (s *suite) testLive(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	Customer(t, ctx, st, 5)
	n := notary.New(st, st, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := AppendCustomer(ctx, st, 13); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	head, err := st.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	want := int64(5 + 4*13)
	deadline := time.Now().Add(20 * time.Second)
	var tree tlog.Tree
	for {
		if tree, err = n.Tree(ctx); err != nil {
			t.Fatalf("Tree: %v", err)
		}
		if tree.N == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v, want context.Canceled", err)
	}
	if tree.N != want {
		t.Fatalf("the live notary reached %d leaves, want %d (head %d)", tree.N, want, head)
	}
	ref := Compute(t, ctx, st)
	if tree != ref.Tree(want) {
		t.Fatalf("live tree %+v, want %+v", tree, ref.Tree(want))
	}
	checkStoredHashes(t, ctx, st, ref)
}

// testConcurrentNotaries: notaries sharing one hash store (several
// processes on one database) neither fail nor corrupt the tree.
func (s *suite) testConcurrentNotaries(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 8 {
			if _, err := AppendCustomer(ctx, st, 5); err != nil {
				t.Error(err)
			}
		}
	})
	errs := make(chan error, 3*10)
	for range 3 {
		n := notary.New(st, st, nil)
		wg.Go(func() {
			for range 10 {
				if _, err := n.Sync(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Sync: %v", err)
	}
	tree := mustSync(t, ctx, st)
	ref := Compute(t, ctx, st)
	if tree != ref.Tree(40) {
		t.Fatalf("tree %+v, want %+v", tree, ref.Tree(40))
	}
	checkStoredHashes(t, ctx, st, ref)
}

// testProofs: every event's inclusion proof and every pair of sizes'
// consistency proof check against the reference roots.
func (s *suite) testProofs(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	for range 4 {
		Customer(t, ctx, st, 6)
	}
	n := notary.New(st, st, nil)
	tree, err := n.Sync(ctx)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	ref := Compute(t, ctx, st)
	cpAt := func(size int64) notary.Checkpoint {
		return notary.Checkpoint{Origin: "test", Size: size, Hash: ref.Roots[size], Time: time.Now()}
	}
	for size := int64(1); size <= tree.N; size++ {
		cp := cpAt(size)
		for i, r := range ref.Records {
			leaf, proof, err := n.ProveInclusion(ctx, r.Position, size)
			if int64(i) >= size {
				if !errors.Is(err, notary.ErrNotInTree) {
					t.Fatalf("ProveInclusion(position %d, size %d) = %v, want ErrNotInTree", r.Position, size, err)
				}
				continue
			}
			if err != nil || leaf != int64(i) {
				t.Fatalf("ProveInclusion(position %d, size %d) = leaf %d, %v; want leaf %d", r.Position, size, leaf, err, i)
			}
			if err := notary.CheckInclusion(cp, leaf, notary.LeafHash(r), proof); err != nil {
				t.Fatalf("CheckInclusion(leaf %d, size %d): %v", leaf, size, err)
			}
			other := ref.Records[(i+1)%len(ref.Records)]
			if err := notary.CheckInclusion(cp, leaf, notary.LeafHash(other), proof); !errors.Is(err, notary.ErrInconsistent) {
				t.Fatalf("CheckInclusion of another event at leaf %d = %v, want ErrInconsistent", leaf, err)
			}
		}
	}
	if _, _, err := n.ProveInclusion(ctx, ref.Records[len(ref.Records)-1].Position+1, tree.N); !errors.Is(err, notary.ErrNotInTree) {
		t.Fatalf("ProveInclusion past the head = %v, want ErrNotInTree", err)
	}
	if _, _, err := n.ProveInclusion(ctx, ref.Records[0].Position, tree.N+1); !errors.Is(err, notary.ErrNotInTree) {
		t.Fatalf("ProveInclusion in a tree larger than stored = %v, want ErrNotInTree", err)
	}
	for older := int64(0); older <= tree.N; older++ {
		for newer := older; newer <= tree.N; newer++ {
			proof, err := n.ProveConsistency(ctx, older, newer)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", older, newer, err)
			}
			if err := notary.CheckConsistency(cpAt(older), cpAt(newer), proof); err != nil {
				t.Fatalf("CheckConsistency(%d, %d): %v", older, newer, err)
			}
			if older > 0 && newer > older {
				forged := cpAt(older)
				forged.Hash = ref.Roots[older-1]
				if err := notary.CheckConsistency(forged, cpAt(newer), proof); !errors.Is(err, notary.ErrInconsistent) {
					t.Fatalf("CheckConsistency(%d, %d) with another old root = %v, want ErrInconsistent", older, newer, err)
				}
			}
		}
	}
}

// testCheckpointAndVerify: a signed checkpoint opens to what was signed;
// Verify accepts the intact log, also after it grew; VerifyStream proves a
// customer's events.
func (s *suite) testCheckpointAndVerify(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	stream := Customer(t, ctx, st, 7)
	Customer(t, ctx, st, 5)
	n := notary.New(st, st, nil)
	tree, err := n.Sync(ctx)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	signer, verifier := Keys(t, "ledger.example.com/cxledger")
	cp := notary.Checkpoint{Origin: "ledger.example.com/cxledger", Size: tree.N, Hash: tree.Hash, Time: time.Now().UTC().Truncate(time.Microsecond)}
	msg, err := notary.Sign(cp, signer)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	opened, err := notary.Open(msg, verifier)
	if err != nil || opened != cp {
		t.Fatalf("Open = %+v, %v; want %+v", opened, err, cp)
	}
	rep, err := notary.Verify(ctx, st, st, opened)
	if err != nil || !rep.Intact || rep.Leaves != 12 || rep.Root != cp.Hash || !rep.HashesAuthentic {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}

	// The log grows, the same customer too: the old checkpoint still holds.
	if _, err := st.Append(ctx, stream, eventstore.Exact(6), Event([16]byte{1}, "later", 7)); err != nil {
		t.Fatalf("append: %v", err)
	}
	Customer(t, ctx, st, 4)
	if _, err := n.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if rep, err := notary.Verify(ctx, st, st, cp); err != nil || !rep.Intact {
		t.Fatalf("Verify after growth = %+v, %v", rep, err)
	}
	statuses, err := notary.VerifyStream(ctx, st, st, stream, cp)
	if err != nil {
		t.Fatalf("VerifyStream: %v", err)
	}
	if len(statuses) != 8 {
		t.Fatalf("VerifyStream: %d statuses, want 8", len(statuses))
	}
	for i, es := range statuses {
		want := notary.StatusVerified
		if i == 7 {
			want = notary.StatusNewer
		}
		if es.Status != want || es.Event.Version != uint64(i) {
			t.Errorf("event %d: %s (leaf %d, %s), want %s", i, es.Status, es.Leaf, es.Detail, want)
		}
	}
	if _, err := notary.VerifyStream(ctx, st, st, "customer-00000000-0000-0000-0000-000000000001", cp); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("VerifyStream of an unknown stream = %v, want ErrNotFound", err)
	}
}

// testConsistencyAndFork: a later checkpoint of the same log extends an
// earlier one; a log rewritten from some event on does not, and Verify
// names the first rewritten position.
func (s *suite) testConsistencyAndFork(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	Customer(t, ctx, st, 12)
	n := notary.New(st, st, nil)
	older := checkpointOf(t, ctx, n)
	Customer(t, ctx, st, 8)
	newer := checkpointOf(t, ctx, n)
	if _, err := notary.VerifyConsistency(ctx, st, older, newer); err != nil {
		t.Fatalf("VerifyConsistency of one log's checkpoints: %v", err)
	}
	if _, err := notary.VerifyConsistency(ctx, st, newer, older); !errors.Is(err, notary.ErrInconsistent) {
		t.Fatalf("VerifyConsistency with the checkpoints swapped = %v, want ErrInconsistent", err)
	}

	// The fork: the same first 6 events (imported as they are), then a
	// history of its own.
	ref := Compute(t, ctx, st)
	fork := s.newLedger(t).Store()
	imp, ok := eventstore.Store(fork).(eventstore.Importer)
	if !ok {
		t.Fatal("the backend does not implement eventstore.Importer")
	}
	if err := imp.Import(ctx, ref.Records[:6]); err != nil {
		t.Fatalf("Import: %v", err)
	}
	Customer(t, ctx, fork, 16)
	forked := checkpointOf(t, ctx, notary.New(fork, fork, nil))
	if _, err := notary.VerifyConsistency(ctx, fork, older, forked); !errors.Is(err, notary.ErrInconsistent) {
		t.Fatalf("VerifyConsistency of a forked log = %v, want ErrInconsistent", err)
	}
	prefix := notary.Checkpoint{Origin: older.Origin, Size: 6, Hash: ref.Roots[6], Time: older.Time}
	if _, err := notary.VerifyConsistency(ctx, fork, prefix, forked); err != nil {
		t.Fatalf("VerifyConsistency up to the fork point: %v", err)
	}
	// The fork's own stored hashes match its events and cannot reproduce
	// the original's root: Verify says the log does not match, but cannot
	// say where.
	rep, err := notary.Verify(ctx, fork, fork, older)
	if !errors.Is(err, notary.ErrTampered) || rep.HashesAuthentic || rep.FirstBadLeaf != -1 || rep.Damage != notary.DamageUnknown {
		t.Fatalf("Verify of the fork against the original's checkpoint = %+v, %v; want ErrTampered, not located", rep, err)
	}
}

// testMigratedLogSameTree: the same events in another store (here a
// memstore, through Import) give the same tree, whatever positions it
// assigns.
func (s *suite) testMigratedLogSameTree(t *testing.T) {
	ctx := Context(t)
	st := s.newLedger(t).Store()
	for range 3 {
		Customer(t, ctx, st, 7)
	}
	tree := mustSync(t, ctx, st)
	ref := Compute(t, ctx, st)
	copyStore := memstore.New(memstore.Config{})
	defer copyStore.Close()
	if err := copyStore.Import(ctx, ref.Records); err != nil {
		t.Fatalf("Import into memstore: %v", err)
	}
	if got := mustSync(t, ctx, copyStore); got != tree {
		t.Fatalf("tree of the copy = %+v, want %+v", got, tree)
	}
}

// checkpointOf syncs n and returns an unsigned checkpoint of its tree.
func checkpointOf(t *testing.T, ctx context.Context, n *notary.Notary) notary.Checkpoint {
	t.Helper()
	tree, err := n.Sync(ctx)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return notary.Checkpoint{Origin: "ledger.example.com/cxledger", Size: tree.N, Hash: tree.Hash, Time: time.Now().UTC().Truncate(time.Microsecond)}
}

// Keys returns a fresh signer and verifier named name.
func Keys(t *testing.T, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := notary.GenerateKey(name)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	signer, err := notary.NewSigner(skey)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	verifier, err := notary.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return signer, verifier
}

// tamperCases are the tamperings of a 30-event log (positions 1 to 30)
// and what Verify must report.
var tamperCases = []struct {
	tm      Tampering
	damage  notary.Damage
	leaf    int64
	badPos  uint64
	stream  bool // VerifyStream of the event's stream fails too
	lastBad bool // the last leaf no longer matches: a notary refuses to go on
}{
	{Tampering{Kind: Alter, Position: 17}, notary.DamageAltered, 16, 17, true, false},
	{Tampering{Kind: Alter, Position: 30}, notary.DamageAltered, 29, 30, true, true},
	{Tampering{Kind: Delete, Position: 17}, notary.DamageDeleted, 16, 17, true, false},
	{Tampering{Kind: Insert, Position: 16}, notary.DamageInserted, 16, 17, false, true},
	{Tampering{Kind: Swap, Position: 17, Other: 19}, notary.DamageReordered, 16, 17, true, false},
	{Tampering{Kind: Truncate, Position: 28}, notary.DamageMissingTail, 27, 28, false, true},
}

// testTamper damages a checkpointed log behind the store's back in each
// way, and checks that Verify fails naming the first bad position.
func (s *suite) testTamper(t *testing.T) {
	for _, tc := range tamperCases {
		t.Run(fmt.Sprintf("%s_%d", tc.tm.Kind, tc.tm.Position), func(t *testing.T) {
			t.Parallel()
			ctx := Context(t)
			l := s.newLedger(t)
			for range 5 {
				Customer(t, ctx, l.Store(), 6)
			}
			cp := checkpointOf(t, ctx, notary.New(l.Store(), l.Store(), nil))
			if cp.Size != 30 {
				t.Fatalf("checkpoint of %d events, want 30", cp.Size)
			}
			ref := Compute(t, ctx, l.Store())
			victim := ref.Records[tc.tm.Position-1]
			if !l.Tamper(t, tc.tm) {
				t.Skip("the backend offers no way to edit its data behind the store's back")
			}
			st := l.Store()
			rep, err := notary.Verify(ctx, st, st, cp)
			if !errors.Is(err, notary.ErrTampered) {
				t.Fatalf("Verify after %s = %v, want ErrTampered", tc.tm.Kind, err)
			}
			if rep.Intact || rep.FirstBadLeaf != tc.leaf || rep.FirstBadPosition != tc.badPos || rep.Damage != tc.damage || !rep.Authenticated {
				t.Fatalf("Verify after %s: %+v\nwant leaf %d, position %d, %s, authenticated", tc.tm.Kind, rep, tc.leaf, tc.badPos, tc.damage)
			}
			t.Logf("%s at %d: %v", tc.tm.Kind, tc.tm.Position, err)

			// The victim's stream fails too: a proof fails (ErrTampered), or
			// the backend cannot even read the stream any more (a bbolt
			// stream index pointing at a deleted event).
			_, err = notary.VerifyStream(ctx, st, st, victim.Stream, cp)
			if tc.stream && err == nil {
				t.Errorf("VerifyStream of %s after %s succeeded", victim.Stream, tc.tm.Kind)
			}
			if tc.stream {
				t.Logf("VerifyStream: %v", err)
			}
			_, err = notary.New(st, st, nil).Sync(ctx)
			if tc.lastBad && !errors.Is(err, notary.ErrTampered) {
				t.Errorf("Sync after %s = %v, want ErrTampered (the last leaf no longer matches)", tc.tm.Kind, err)
			}
			if !tc.lastBad && err != nil {
				t.Errorf("Sync after %s: %v", tc.tm.Kind, err)
			}
		})
	}
}
