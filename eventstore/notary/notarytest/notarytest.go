// Package notarytest is the suite every backend keeping a Merkle tree for
// eventstore/notary runs: the HashStore contract, the notary following the
// log (catch-up, restart, live, concurrent notaries), proofs, checkpoints,
// consistency and forks, and, for backends whose data a test can edit
// behind the store's back, tampering found and located by Verify.
//
// A backend's test calls Run with a constructor of fresh ledgers. Every
// subtest gets a ledger of its own and runs in parallel with the others.
package notarytest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
)

// Store is a backend under test: an event store that keeps the tree.
type Store interface {
	eventstore.Store
	notary.HashStore
}

// Ledger is one ledger of the backend under test, whose data outlives the
// store values opened on it.
type Ledger interface {
	// Store returns the open store; the same one until Reopen or Tamper.
	Store() Store
	// Reopen closes the store and opens the same data again, as a process
	// restart would. It returns false when the backend keeps nothing across
	// a close (memstore): the suite then restarts only the notary.
	Reopen(t *testing.T) bool
	// Tamper closes the store, applies tm to its data directly (bbolt
	// file, SQL), and opens it again. It returns false when the backend
	// offers no way to do that.
	Tamper(t *testing.T, tm Tampering) bool
}

// NewLedger returns a fresh, empty ledger; it registers its own cleanup.
type NewLedger func(t *testing.T) Ledger

// TamperKind is a way of damaging a log behind the store's back.
type TamperKind int

// Kinds of tampering.
const (
	// Alter changes the data of the event at Position (keeping it valid
	// JSON).
	Alter TamperKind = iota + 1
	// Delete removes the event at Position.
	Delete
	// Insert puts a forged event (a new id, otherwise a copy of the event at
	// Position) right after Position, moving every later event one position
	// on.
	Insert
	// Swap exchanges the events at Position and Other.
	Swap
	// Truncate removes every event from Position on.
	Truncate
)

// String names the kind of tampering.
func (k TamperKind) String() string {
	switch k {
	case Alter:
		return "alter"
	case Delete:
		return "delete"
	case Insert:
		return "insert"
	case Swap:
		return "swap"
	case Truncate:
		return "truncate"
	}
	return fmt.Sprintf("TamperKind(%d)", int(k))
}

// Tampering is one edit of a closed ledger's events.
type Tampering struct {
	Kind     TamperKind
	Position uint64
	// Other is the second position of a Swap.
	Other uint64
}

// Timeout bounds every subtest.
const Timeout = 60 * time.Second

// Run runs the suite against the backend.
func Run(t *testing.T, newLedger NewLedger) {
	t.Helper()
	s := &suite{newLedger: newLedger}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"HashStoreContract", s.testHashStoreContract},
		{"SyncMatchesReference", s.testSyncMatchesReference},
		{"ResumeAfterRestart", s.testResumeAfterRestart},
		{"Live", s.testLive},
		{"ConcurrentNotaries", s.testConcurrentNotaries},
		{"Proofs", s.testProofs},
		{"CheckpointAndVerify", s.testCheckpointAndVerify},
		{"ConsistencyAndFork", s.testConsistencyAndFork},
		{"MigratedLogSameTree", s.testMigratedLogSameTree},
		{"Tamper", s.testTamper},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

type suite struct {
	newLedger NewLedger
}

// Context returns a context cancelled after Timeout, near the test binary's
// deadline, or when the test ends.
func Context(t *testing.T) context.Context {
	t.Helper()
	timeout := Timeout
	if d, ok := t.Deadline(); ok {
		if left := time.Until(d) - time.Second; left < timeout && left > 0 {
			timeout = left
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// Customer appends a realistic history of n events to a new customer
// stream of s, in appends of up to three events, and returns the stream.
func Customer(t *testing.T, ctx context.Context, s eventstore.Store, n int) string {
	t.Helper()
	stream, err := AppendCustomer(ctx, s, n)
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

// AppendCustomer is Customer for goroutines other than the test's.
func AppendCustomer(ctx context.Context, s eventstore.Store, n int) (string, error) {
	id := uuid.New()
	stream := "customer-" + id.String()
	correlation := uuid.NewString()
	for i := 0; i < n; i += 3 {
		var batch []eventstore.EventData
		for j := i; j < min(n, i+3); j++ {
			batch = append(batch, Event(id, correlation, j))
		}
		if _, err := s.Append(ctx, stream, eventstore.Any, batch...); err != nil {
			return "", fmt.Errorf("append %d events to %s: %w", len(batch), stream, err)
		}
	}
	return stream, nil
}

// Event returns the i-th event of a customer's history: unicode payloads,
// numbers, nested JSON, metadata with correlation ids and a non-UTC
// occurred-at time.
func Event(customer uuid.UUID, correlation string, i int) eventstore.EventData {
	types := []string{"CustomerRegistered", "EmailAddressVerified", "CallLogged", "PurchaseCompleted", "SupportTicketOpened", "NoteAdded"}
	typ := types[i%len(types)]
	data, _ := json.Marshal(map[string]any{
		"customerId": customer,
		"seq":        i,
		"name":       "Zoë Ñúñez",
		"note":       fmt.Sprintf("réclamation n°%d — ✓ 東京-渋谷 🚀", i),
		"amount":     map[string]any{"minor": 129800 + i, "currency": "JPY"},
	})
	return eventstore.EventData{
		ID:   uuid.New(),
		Type: typ,
		Data: data,
		Metadata: eventstore.Metadata{
			OccurredAt:    time.Date(2025, 3, 14, 9, 26, 53, 589_793_238, time.FixedZone("JST", 9*3600)).Add(time.Duration(i) * time.Minute),
			Actor:         "user:" + uuid.NewString(),
			Channel:       "phone",
			CorrelationID: correlation,
			SchemaVersion: 1 + i%2,
		},
	}
}

// Reference is a tree computed from a log's events with tlog and nothing
// else: every stored hash in memory, and the root at every size.
type Reference struct {
	Records []eventstore.Record
	Stored  []tlog.Hash
	Roots   []tlog.Hash // Roots[n] is the root of the first n events
}

// Compute reads the whole log of s and builds its reference tree.
func Compute(t *testing.T, ctx context.Context, s notary.Reader) Reference {
	t.Helper()
	var ref Reference
	rd := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = ref.Stored[x]
		}
		return out, nil
	})
	ref.Roots = append(ref.Roots, mustTreeHash(t, 0, rd))
	var after uint64
	for {
		page, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after})
		if err != nil {
			t.Fatalf("read all after %d: %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			n := int64(len(ref.Records))
			hs, err := tlog.StoredHashes(n, notary.Encode(nil, r), rd)
			if err != nil {
				t.Fatalf("reference stored hashes of leaf %d: %v", n, err)
			}
			ref.Stored = append(ref.Stored, hs...)
			ref.Records = append(ref.Records, r)
			ref.Roots = append(ref.Roots, mustTreeHash(t, n+1, rd))
			after = r.Position
		}
	}
	return ref
}

func mustTreeHash(t *testing.T, n int64, rd tlog.HashReader) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(n, rd)
	if err != nil {
		t.Fatalf("reference tree hash of size %d: %v", n, err)
	}
	return h
}

// Tree returns the reference tree of the first n events.
func (r Reference) Tree(n int64) tlog.Tree { return tlog.Tree{N: n, Hash: r.Roots[n]} }

// mustSync syncs a new notary over l's store and returns the tree.
func mustSync(t *testing.T, ctx context.Context, s Store) tlog.Tree {
	t.Helper()
	tree, err := notary.New(s, s, nil).Sync(ctx)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return tree
}

// checkStoredHashes compares every stored hash of s with the reference.
func checkStoredHashes(t *testing.T, ctx context.Context, s Store, ref Reference) {
	t.Helper()
	size, err := s.TreeSize(ctx)
	if err != nil {
		t.Fatalf("TreeSize: %v", err)
	}
	if size != int64(len(ref.Records)) {
		t.Fatalf("TreeSize = %d, want %d", size, len(ref.Records))
	}
	idx := make([]int64, len(ref.Stored))
	for i := range idx {
		idx[i] = int64(i)
	}
	got, err := s.ReadHashes(ctx, idx)
	if err != nil {
		t.Fatalf("ReadHashes(all %d): %v", len(idx), err)
	}
	for i := range got {
		if got[i] != ref.Stored[i] {
			t.Fatalf("stored hash %d = %s, want %s", i, got[i], ref.Stored[i])
		}
	}
	pos, err := s.LeafPositions(ctx, 0, len(ref.Records)+5)
	if err != nil {
		t.Fatalf("LeafPositions: %v", err)
	}
	if len(pos) != len(ref.Records) {
		t.Fatalf("LeafPositions returned %d positions, want %d", len(pos), len(ref.Records))
	}
	for i, r := range ref.Records {
		if pos[i] != r.Position {
			t.Fatalf("leaf %d has position %d, want %d", i, pos[i], r.Position)
		}
		leaf, ok, err := s.LeafIndex(ctx, r.Position)
		if err != nil || !ok || leaf != int64(i) {
			t.Fatalf("LeafIndex(%d) = %d, %t, %v; want %d", r.Position, leaf, ok, err, i)
		}
	}
}
