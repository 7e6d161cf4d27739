package notary_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/eventstore/notary/notarytest"
)

// memLedger is a memstore ledger for the suite: nothing survives a close,
// and nothing can be edited behind the store's back (the edits are tested
// on logs edited in memory below, and on real files by the cmd tests).
type memLedger struct{ s *memstore.Store }

func (l memLedger) Store() notarytest.Store                    { return l.s }
func (memLedger) Reopen(*testing.T) bool                       { return false }
func (memLedger) Tamper(*testing.T, notarytest.Tampering) bool { return false }

func newMemLedger(t *testing.T) notarytest.Ledger {
	s := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = s.Close() })
	return memLedger{s}
}

func TestSuiteMemstore(t *testing.T) { notarytest.Run(t, newMemLedger) }

// editedLog serves a copy of a log, edited, through ReadAll: what a
// tampered backend would return.
type editedLog struct{ recs []eventstore.Record }

func (l *editedLog) ReadAll(_ context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	var out []eventstore.Record
	for _, r := range l.recs {
		if r.Position > opts.After && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

// ledger40 returns a memstore with 40 events (positions 1 to 40) in
// customers of 8, synced, and its checkpoint.
func ledger40(t *testing.T) (*memstore.Store, notary.Checkpoint, notarytest.Reference) {
	t.Helper()
	ctx := notarytest.Context(t)
	s := memstore.New(memstore.Config{})
	t.Cleanup(func() { _ = s.Close() })
	for range 5 {
		notarytest.Customer(t, ctx, s, 8)
	}
	tree, err := notary.New(s, s, nil).Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp := notary.Checkpoint{Origin: "test", Size: tree.N, Hash: tree.Hash, Time: time.Now()}
	return s, cp, notarytest.Compute(t, ctx, s)
}

// forged returns a copy of r with a new id: an event the log never had.
func forged(r eventstore.Record) eventstore.Record {
	r.ID = uuid.New()
	r.Data = []byte(`{"forged":true}`)
	return r
}

// renumber gives recs the positions from first on, in order.
func renumber(recs []eventstore.Record, first uint64) []eventstore.Record {
	for i := range recs {
		recs[i].Position = first + uint64(i)
	}
	return recs
}

// TestVerifyLocatesDamage: for each kind of damage, Verify names the first
// bad leaf and position and what most likely happened, authenticated by the
// stored hashes.
func TestVerifyLocatesDamage(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(recs []eventstore.Record) []eventstore.Record
		damage notary.Damage
		leaf   int64
		pos    uint64
	}{
		{"altered", func(r []eventstore.Record) []eventstore.Record {
			r[12].Data = []byte(`{"amount":1}`)
			return r
		}, notary.DamageAltered, 12, 13},
		{"altered metadata only", func(r []eventstore.Record) []eventstore.Record {
			r[3].Metadata.Actor = "user:mallory"
			return r
		}, notary.DamageAltered, 3, 4},
		{"altered first", func(r []eventstore.Record) []eventstore.Record {
			r[0].RecordedAt = r[0].RecordedAt.Add(time.Microsecond)
			return r
		}, notary.DamageAltered, 0, 1},
		{"deleted, position left empty", func(r []eventstore.Record) []eventstore.Record {
			return slices.Delete(r, 20, 21)
		}, notary.DamageDeleted, 20, 21},
		{"deleted, later positions moved up", func(r []eventstore.Record) []eventstore.Record {
			return renumber(slices.Delete(r, 20, 23), 1)
		}, notary.DamageDeleted, 20, 21},
		{"inserted", func(r []eventstore.Record) []eventstore.Record {
			return renumber(slices.Insert(r, 7, forged(r[6])), 1)
		}, notary.DamageInserted, 7, 8},
		{"swapped neighbours", func(r []eventstore.Record) []eventstore.Record {
			r[30], r[31] = r[31], r[30]
			return renumber(r, 1)
		}, notary.DamageReordered, 30, 31},
		{"moved ten back", func(r []eventstore.Record) []eventstore.Record {
			moved := r[10]
			r = slices.Insert(slices.Delete(r, 10, 11), 20, moved)
			return renumber(r, 1)
		}, notary.DamageReordered, 10, 11},
		{"tail cut", func(r []eventstore.Record) []eventstore.Record {
			return r[:35]
		}, notary.DamageMissingTail, 35, 36},
		{"everything gone", func(r []eventstore.Record) []eventstore.Record {
			return nil
		}, notary.DamageMissingTail, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := notarytest.Context(t)
			s, cp, ref := ledger40(t)
			log := &editedLog{recs: tc.edit(slices.Clone(ref.Records))}
			rep, err := notary.Verify(ctx, log, s, cp)
			if !errors.Is(err, notary.ErrTampered) {
				t.Fatalf("Verify = %v, want ErrTampered", err)
			}
			if rep.FirstBadLeaf != tc.leaf || rep.FirstBadPosition != tc.pos || rep.Damage != tc.damage || !rep.Authenticated || !rep.HashesAuthentic {
				t.Fatalf("report %+v\nwant leaf %d, position %d, %s, authenticated", rep, tc.leaf, tc.pos, tc.damage)
			}
			t.Log(err)
		})
	}
}

// damagedHashes returns other hashes than stored at some indexes.
type damagedHashes struct {
	notary.HashStore
	bad map[int64]tlog.Hash
}

func (d damagedHashes) ReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	hs, err := d.HashStore.ReadHashes(ctx, idx)
	for i, x := range idx {
		if h, ok := d.bad[x]; ok && err == nil {
			hs[i] = h
		}
	}
	return hs, err
}

// TestVerifyDistrustsDamagedHashes: stored hashes that do not reproduce the
// checkpoint are never used to clear or to locate with authority.
func TestVerifyDistrustsDamagedHashes(t *testing.T) {
	ctx := notarytest.Context(t)
	s, cp, ref := ledger40(t)
	forgedLeaf := tlog.RecordHash([]byte("forged"))

	t.Run("intact events, damaged leaf hash", func(t *testing.T) {
		hs := damagedHashes{s, map[int64]tlog.Hash{tlog.StoredHashIndex(0, 25): forgedLeaf}}
		rep, err := notary.Verify(ctx, s, hs, cp)
		if !errors.Is(err, notary.ErrHashesDamaged) || errors.Is(err, notary.ErrTampered) {
			t.Fatalf("Verify = %v, want ErrHashesDamaged only", err)
		}
		if !rep.Intact || rep.HashesAuthentic || rep.FirstBadHash != tlog.StoredHashIndex(0, 25) {
			t.Fatalf("report %+v", rep)
		}
	})
	t.Run("intact events, damaged interior hash", func(t *testing.T) {
		interior := tlog.StoredHashIndex(2, 3) // the node over leaves 12 to 15
		hs := damagedHashes{s, map[int64]tlog.Hash{interior: forgedLeaf}}
		rep, err := notary.Verify(ctx, s, hs, cp)
		if !errors.Is(err, notary.ErrHashesDamaged) || !rep.Intact || rep.FirstBadHash != interior {
			t.Fatalf("Verify = %+v, %v; want ErrHashesDamaged at %d", rep, err, interior)
		}
		// Proofs through the damaged node fail; the event is reported failed.
		statuses, err := notary.VerifyStream(ctx, s, hs, ref.Records[13].Stream, cp)
		if !errors.Is(err, notary.ErrTampered) {
			t.Fatalf("VerifyStream with a damaged proof node = %v", err)
		}
		failed := 0
		for _, st := range statuses {
			if st.Status == notary.StatusFailed {
				failed++
			}
		}
		if failed == 0 || failed == len(statuses) {
			t.Fatalf("%d of %d events failed, want those under the damaged node only", failed, len(statuses))
		}
	})
	t.Run("altered event and damaged hashes: unauthenticated", func(t *testing.T) {
		// The attacker alters event 31 and rewrites its stored leaf to
		// match, and also damages leaf 9's: the stored leaves no longer
		// reproduce the checkpoint, so the disagreement found at leaf 9 is
		// reported without authority, and nothing is cleared.
		recs := slices.Clone(ref.Records)
		recs[30].Data = []byte(`{"amount":0}`)
		hs := damagedHashes{s, map[int64]tlog.Hash{
			tlog.StoredHashIndex(0, 30): notary.LeafHash(recs[30]),
			tlog.StoredHashIndex(0, 9):  forgedLeaf,
		}}
		rep, err := notary.Verify(ctx, &editedLog{recs}, hs, cp)
		if !errors.Is(err, notary.ErrTampered) {
			t.Fatalf("Verify = %v, want ErrTampered", err)
		}
		if rep.HashesAuthentic || rep.Authenticated || rep.FirstBadLeaf != 9 {
			t.Fatalf("report %+v; want unauthenticated, leaf 9", rep)
		}
		if !strings.Contains(err.Error(), "UNAUTHENTICATED") {
			t.Fatalf("the error does not say the location is unauthenticated: %v", err)
		}
	})
	t.Run("altered event, hashes rewritten to match: detected, not located", func(t *testing.T) {
		recs := slices.Clone(ref.Records)
		recs[30].Data = []byte(`{"amount":0}`)
		hs := damagedHashes{s, map[int64]tlog.Hash{tlog.StoredHashIndex(0, 30): notary.LeafHash(recs[30])}}
		rep, err := notary.Verify(ctx, &editedLog{recs}, hs, cp)
		if !errors.Is(err, notary.ErrTampered) || rep.FirstBadLeaf != -1 || rep.Damage != notary.DamageUnknown {
			t.Fatalf("Verify = %+v, %v; want ErrTampered, not located", rep, err)
		}
	})
}

// TestVerifyWithNotaryBehind: a stored tree smaller than the checkpoint
// (its notary not caught up) does not make an intact log fail.
func TestVerifyWithNotaryBehind(t *testing.T) {
	ctx := notarytest.Context(t)
	s := memstore.New(memstore.Config{})
	defer s.Close()
	for range 3 {
		notarytest.Customer(t, ctx, s, 5)
	}
	if _, err := notary.New(s, s, nil).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	notarytest.Customer(t, ctx, s, 5)
	ref := notarytest.Compute(t, ctx, s)
	cp := notary.Checkpoint{Origin: "test", Size: 20, Hash: ref.Roots[20], Time: time.Now()}
	rep, err := notary.Verify(ctx, s, s, cp)
	if err != nil || !rep.Intact || rep.StoredLeaves != 15 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if _, err := notary.VerifyStream(ctx, s, s, ref.Records[0].Stream, cp); !errors.Is(err, notary.ErrNotInTree) {
		t.Fatalf("VerifyStream with the notary behind = %v, want ErrNotInTree", err)
	}
	// An empty checkpoint holds for any log.
	if rep, err := notary.Verify(ctx, s, s, notary.Checkpoint{Origin: "test", Hash: ref.Roots[0], Time: time.Now()}); err != nil || !rep.Intact {
		t.Fatalf("Verify of the empty checkpoint = %+v, %v", rep, err)
	}
}

// TestNotaryRefusesForeignTree: a notary never extends stored hashes that
// belong to another log.
func TestNotaryRefusesForeignTree(t *testing.T) {
	ctx := notarytest.Context(t)
	a, b := memstore.New(memstore.Config{}), memstore.New(memstore.Config{})
	defer a.Close()
	defer b.Close()
	notarytest.Customer(t, ctx, a, 6)
	notarytest.Customer(t, ctx, b, 9)
	if _, err := notary.New(a, a, nil).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := notary.New(b, a, nil).Sync(ctx); !errors.Is(err, notary.ErrTampered) {
		t.Fatalf("Sync of log b over log a's tree = %v, want ErrTampered", err)
	}
}

// TestNotaryRunStopsWithStore: Run ends when the store closes.
func TestNotaryRunStopsWithStore(t *testing.T) {
	ctx := notarytest.Context(t)
	s := memstore.New(memstore.Config{})
	notarytest.Customer(t, ctx, s, 3)
	done := make(chan error, 1)
	go func() { done <- notary.New(s, s, nil).Run(ctx) }()
	time.Sleep(20 * time.Millisecond)
	_ = s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Fatalf("Run after Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when the store closed")
	}
}
