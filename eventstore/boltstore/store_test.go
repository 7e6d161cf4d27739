package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/cxledger/cxledger/eventstore"
)

// openTest opens a store that the test closes on cleanup. Tests keep fsync
// on: the suite is small, and it is the configuration that ships.
func openTest(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// event is a realistic touchpoint event.
func event(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:   uuid.New(),
		Type: typ,
		Data: fmt.Appendf(nil, `{"orderId":"ord-%d","amount":{"value":"%d.90","currency":"EUR"},"note":"café ☕"}`, n, n),
		Metadata: eventstore.Metadata{
			OccurredAt:    time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.FixedZone("CET", 3600)),
			Actor:         "user:" + uuid.NewString(),
			Channel:       "web",
			CorrelationID: uuid.NewString(),
			SchemaVersion: 2,
		},
	}
}

func customerStream() string { return "customer-" + uuid.NewString() }

func mustAppend(t testing.TB, s eventstore.Store, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append(%q, %s): %v", stream, exp, err)
	}
	return res
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "ledger.db") // parent created by Open
	stream := customerStream()
	first := []eventstore.EventData{event("PurchaseCompleted", 1), event("ReviewSubmitted", 2)}

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res1 := mustAppend(t, s, stream, eventstore.NoStream, first...)
	mustAppend(t, s, customerStream(), eventstore.Any, event("SupportTicketOpened", 3))
	before, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{})
	if h, _ := s.Head(ctx); h != 3 {
		t.Fatalf("Head after reopen = %d, want 3", h)
	}
	after, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("stream changed across reopen:\n got %v\nwant %v", after, before)
	}
	// The retry of the first append is still recognised...
	res, err := s.Append(ctx, stream, eventstore.NoStream, first...)
	if err != nil || res != res1 {
		t.Fatalf("retry after reopen = %+v, %v; want %+v, nil", res, err, res1)
	}
	// ...an id reused for something else is still a duplicate...
	dup := event("PurchaseCompleted", 99)
	dup.ID = first[0].ID
	if _, err := s.Append(ctx, customerStream(), eventstore.Any, dup); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("duplicate id after reopen: err = %v, want ErrDuplicateEvent", err)
	}
	// ...and versions and positions continue where they stopped.
	res = mustAppend(t, s, stream, eventstore.Exact(1), event("RefundRequested", 4))
	if res != (eventstore.AppendResult{Version: 2, Position: 4}) {
		t.Fatalf("append after reopen = %+v, want version 2 position 4", res)
	}
}

func TestOpenTwiceInOneProcessFailsAtOnce(t *testing.T) {
	// flock locks belong to the open file description, so a second Open of
	// the same file conflicts even inside one process.
	path := filepath.Join(t.TempDir(), "ledger.db")
	openTest(t, path, Options{})
	start := time.Now()
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("second Open succeeded")
	}
	checkInUse(t, err, path)
	if d := time.Since(start); d > time.Second {
		t.Errorf("second Open took %s to fail", d)
	}
}

const helperEnv = "BOLTSTORE_TEST_OPEN_PATH"

// TestHelperOpen is the child process of TestOpenHeldByAnotherProcess.
func TestHelperOpen(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestOpenHeldByAnotherProcess")
	}
	s, err := Open(path, Options{})
	if err == nil {
		s.Close()
		fmt.Println("CHILD-OPENED")
		return
	}
	fmt.Printf("CHILD-ERROR %v\n", err)
}

func TestOpenHeldByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	openTest(t, path, Options{})

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOpen$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("child took %s: Open should fail at once", d)
	}
	_, msg, ok := strings.Cut(string(out), "CHILD-ERROR ")
	if !ok {
		t.Fatalf("child opened a file held by this process:\n%s", out)
	}
	msg, _, _ = strings.Cut(msg, "\n")
	want := path + ": data file is in use by another process: held by pid " + strconv.Itoa(os.Getpid()) + " on "
	if !strings.Contains(msg, want) || !strings.Contains(msg, "(is another cxledger running?)") {
		t.Errorf("child's error = %q, want it to name this process (%q)", msg, want)
	}
}

func checkInUse(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is another cxledger running?") {
		t.Errorf("error %q does not name the file and the likely cause", err)
	}
}

// gate blocks the writer inside its first transaction (through the clock,
// which the writer reads there) until released, so a test can line up
// requests in the queue and have them committed as one batch.
type gate struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) now() time.Time {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return time.Now()
}

// waitQueued waits until n requests are queued behind the blocked writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(s.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type outcome struct {
	res eventstore.AppendResult
	err error
}

// appendAsync starts an append and returns where its outcome will arrive.
func appendAsync(ctx context.Context, s *Store, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.EventData) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := s.Append(ctx, stream, exp, evs...)
		ch <- outcome{res, err}
	}()
	return ch
}

func TestGroupCommitBatchesConcurrentAppends(t *testing.T) {
	g := newGate()
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Now: g.now})
	ctx := context.Background()

	first := appendAsync(ctx, s, customerStream(), eventstore.NoStream, event("AccountOpened", 0))
	<-g.entered // the writer holds the first append in its transaction
	const n = 200
	var outs []<-chan outcome
	for i := range n {
		outs = append(outs, appendAsync(ctx, s, customerStream(), eventstore.NoStream, event("PurchaseCompleted", i)))
	}
	waitQueued(t, s, n)
	close(g.release)

	positions := map[uint64]bool{}
	for _, ch := range append(outs, first) {
		o := <-ch
		if o.err != nil {
			t.Fatal(o.err)
		}
		positions[o.res.Position] = true
	}
	if got := s.commits.Load(); got != 2 {
		t.Errorf("%d appends took %d commits, want 2 (the first alone, the rest as one batch)", n+1, got)
	}
	for p := uint64(1); p <= n+1; p++ {
		if !positions[p] {
			t.Fatalf("position %d not assigned: positions must be gapless", p)
		}
	}
}

func TestGroupCommitIsolatesRequests(t *testing.T) {
	g := newGate()
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Now: g.now})
	ctx := context.Background()
	streamA, streamB := customerStream(), customerStream()

	blocker := appendAsync(ctx, s, customerStream(), eventstore.NoStream, event("AccountOpened", 0))
	<-g.entered
	a := []eventstore.EventData{event("PurchaseCompleted", 1), event("InvoiceSent", 2)}
	stolen := event("PurchaseCompleted", 3)
	stolen.ID = a[1].ID
	// Queued one at a time so that the batch order is known.
	reqs := []struct {
		name   string
		stream string
		exp    eventstore.ExpectedVersion
		evs    []eventstore.EventData
	}{
		{"a creates stream A", streamA, eventstore.NoStream, a},
		{"b also expects no stream A", streamA, eventstore.NoStream, []eventstore.EventData{event("CallLogged", 4)}},
		{"c retries a", streamA, eventstore.NoStream, a},
		{"d reuses an id of a", streamB, eventstore.Any, []eventstore.EventData{stolen}},
		{"e continues A after a", streamA, eventstore.Exact(1), []eventstore.EventData{event("RefundRequested", 5)}},
		{"f creates stream B", streamB, eventstore.NoStream, []eventstore.EventData{event("AccountOpened", 6)}},
	}
	var outs []<-chan outcome
	for i, r := range reqs {
		outs = append(outs, appendAsync(ctx, s, r.stream, r.exp, r.evs...))
		waitQueued(t, s, i+1)
	}
	close(g.release)
	if o := <-blocker; o.err != nil {
		t.Fatal(o.err)
	}
	got := make([]outcome, len(outs))
	for i, ch := range outs {
		got[i] = <-ch
	}
	want := []struct {
		res eventstore.AppendResult
		err error
	}{
		{eventstore.AppendResult{Version: 1, Position: 3}, nil},
		{eventstore.AppendResult{}, eventstore.ErrWrongExpectedVersion},
		{eventstore.AppendResult{Version: 1, Position: 3}, nil},
		{eventstore.AppendResult{}, eventstore.ErrDuplicateEvent},
		{eventstore.AppendResult{Version: 2, Position: 4}, nil},
		{eventstore.AppendResult{Version: 0, Position: 5}, nil},
	}
	for i, w := range want {
		if got[i].res != w.res || !errors.Is(got[i].err, w.err) || (w.err == nil) != (got[i].err == nil) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", reqs[i].name, got[i].res, got[i].err, w.res, w.err)
		}
	}
	if c := s.commits.Load(); c != 2 {
		t.Errorf("commits = %d, want 2", c)
	}
}

func TestAppendCancelledWhileQueuedWritesNothing(t *testing.T) {
	g := newGate()
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Now: g.now})
	blocker := appendAsync(context.Background(), s, customerStream(), eventstore.NoStream, event("AccountOpened", 0))
	<-g.entered

	ctx, cancel := context.WithCancel(context.Background())
	stream := customerStream()
	queued := appendAsync(ctx, s, stream, eventstore.NoStream, event("PurchaseCompleted", 1))
	waitQueued(t, s, 1)
	cancel()
	if o := <-queued; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled append: err = %v, want context.Canceled", o.err)
	}
	close(g.release)
	if o := <-blocker; o.err != nil {
		t.Fatal(o.err)
	}
	// A later commit proves the writer has passed the abandoned request.
	mustAppend(t, s, customerStream(), eventstore.NoStream, event("AccountOpened", 2))
	if _, err := s.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{}); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("cancelled append was written: ReadStream err = %v", err)
	}
	if h, _ := s.Head(context.Background()); h != 2 {
		t.Fatalf("Head = %d, want 2 (no gap, no abandoned write)", h)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustAppend(t, s, customerStream(), eventstore.NoStream, event("AccountOpened", 0))

	delivered := make(chan struct{})
	subErr := make(chan error, 1)
	go func() {
		var once sync.Once
		subErr <- s.Subscribe(ctx, eventstore.SubscribeOptions{}, func(context.Context, []eventstore.Record) error {
			once.Do(func() { close(delivered) })
			return nil
		})
	}()
	<-delivered
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-subErr:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("subscription ended with %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("subscription still running after Close")
	}
	if _, err := s.Append(ctx, customerStream(), eventstore.Any, event("AccountOpened", 1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, eventstore.ReadAllOptions{}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadAll after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadStream(ctx, "x", eventstore.ReadStreamOptions{}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadStream after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Head(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Head after Close: %v, want ErrClosed", err)
	}
	if err := s.Subscribe(ctx, eventstore.SubscribeOptions{}, nil); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	// The lock is released: the file opens again.
	openTest(t, path, Options{})
}

func TestCloseDuringConcurrentAppends(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ledger.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Append(context.Background(), customerStream(), eventstore.NoStream, event("PurchaseCompleted", i))
				if errors.Is(err, eventstore.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // every append got an answer
}

// TestStreamNamesSharingPrefixes: names that are prefixes of each other, or
// whose bytes look like a length prefix, keep separate indexes.
func TestStreamNamesSharingPrefixes(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{NoSync: true})
	ctx := context.Background()
	names := []string{"a", "ab", "a\x01", "a\x01\x01\x01\x01\x01\x01\x01\x01\x02", "a\x01b", "b", "\x01", "\x01a"}
	for round := range 3 {
		for _, n := range names {
			mustAppend(t, s, n, eventstore.Any, event("Touched", round))
		}
	}
	for _, n := range names {
		for _, back := range []bool{false, true} {
			opts := eventstore.ReadStreamOptions{Backwards: back}
			if back {
				opts.From = eventstore.FromEnd
			}
			recs, err := s.ReadStream(ctx, n, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 3 {
				t.Fatalf("stream %q backwards=%v: %d events, want 3", n, back, len(recs))
			}
			for i, r := range recs {
				want := uint64(i)
				if back {
					want = uint64(2 - i)
				}
				if r.Stream != n || r.Version != want {
					t.Errorf("stream %q backwards=%v: event %d is %q v%d", n, back, i, r.Stream, r.Version)
				}
			}
		}
	}
}

func TestReadsReportCorruptRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stream := customerStream()
	mustAppend(t, s, stream, eventstore.NoStream, event("AccountOpened", 0), event("PurchaseCompleted", 1), event("InvoiceSent", 2))
	s.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).Put(appendU64(nil, 2), []byte{recordFormatV1, 1, 2, 3})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{})
	ctx := context.Background()
	if _, err := s.ReadAll(ctx, eventstore.ReadAllOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "position 2") {
		t.Errorf("ReadAll over a corrupt record: %v, want ErrCorrupt naming position 2", err)
	}
	if _, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadStream over a corrupt record: %v, want ErrCorrupt", err)
	}
	if recs, err := s.ReadAll(ctx, eventstore.ReadAllOptions{Limit: 1}); err != nil || len(recs) != 1 {
		t.Errorf("ReadAll before the corrupt record: %d records, %v", len(recs), err)
	}
	if recs, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: 2}); err != nil || len(recs) != 1 {
		t.Errorf("ReadAll after the corrupt record: %d records, %v", len(recs), err)
	}
}

func TestOpenRefusesCorruptLastRecord(t *testing.T) {
	// Open reads the last event (for its RecordedAt); a damaged tail means
	// a damaged file, reported at once rather than appended to.
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, customerStream(), eventstore.NoStream, event("AccountOpened", 0))
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).Put(appendU64(nil, 1), []byte{9})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with a corrupt last record: %v, want ErrCorrupt", err)
	}
}

func TestOpenRejectsOtherLayoutVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyFormat, []byte{layoutVersion + 1})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a newer layout: %v, want ErrCorrupt", err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{MaxEventSize: -1}, {MaxEventSize: 2 << 30}, {LockTimeout: -time.Second}, {MaxBatch: -1}} {
		if s, err := Open(filepath.Join(t.TempDir(), "ledger.db"), o); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

func TestRecordedAtFromInjectedClock(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.FixedZone("X", -7200))
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Now: func() time.Time { return at }})
	stream := customerStream()
	mustAppend(t, s, stream, eventstore.NoStream, event("AccountOpened", 0))
	recs, err := s.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := at.UTC().Truncate(time.Microsecond)
	if got := recs[0].RecordedAt; got != want {
		t.Errorf("RecordedAt = %v, want %v", got, want)
	}
}

// TestManyStreamsVersions: the stream head is derived from the index by a
// cursor step; with thousands of interleaved streams that step crosses
// B+tree pages.
func TestManyStreamsVersions(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{NoSync: true})
	ctx := context.Background()
	streams := make([]string, 3000)
	for i := range streams {
		streams[i] = customerStream()
	}
	for round := range 3 {
		for i, st := range streams {
			exp := eventstore.NoStream
			if round > 0 {
				exp = eventstore.Exact(uint64(round - 1))
			}
			res := mustAppend(t, s, st, exp, event("Touched", i))
			if res.Version != uint64(round) {
				t.Fatalf("stream %d round %d: version %d", i, round, res.Version)
			}
		}
	}
	for _, st := range []string{streams[0], streams[1500], streams[2999]} {
		recs, err := s.ReadStream(ctx, st, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 2})
		if err != nil || len(recs) != 2 || recs[0].Version != 2 || recs[1].Version != 1 {
			t.Fatalf("ReadStream backwards: %v, %v", recs, err)
		}
	}
}

func TestFailedCommitFailsWholeBatch(t *testing.T) {
	g := newGate()
	s := openTest(t, filepath.Join(t.TempDir(), "ledger.db"), Options{Now: g.now})
	ctx := context.Background()
	diskFull := errors.New("no space left on device")
	txs := 0 // touched by the writer goroutine only
	s.testHookCommit = func() error {
		if txs++; txs == 2 {
			return diskFull // the second transaction: the batch of three below
		}
		return nil
	}
	blocker := appendAsync(ctx, s, customerStream(), eventstore.NoStream, event("AccountOpened", 0))
	<-g.entered
	streams := []string{customerStream(), customerStream(), customerStream()}
	var outs []<-chan outcome
	for i, st := range streams {
		outs = append(outs, appendAsync(ctx, s, st, eventstore.NoStream, event("PurchaseCompleted", i)))
	}
	waitQueued(t, s, len(streams))
	close(g.release)
	if o := <-blocker; o.err != nil {
		t.Fatal(o.err)
	}
	for i, ch := range outs {
		if o := <-ch; !errors.Is(o.err, diskFull) || o.res != (eventstore.AppendResult{}) {
			t.Fatalf("append %d: %+v, %v; want the commit error", i, o.res, o.err)
		}
	}
	if h, _ := s.Head(ctx); h != 1 {
		t.Fatalf("Head after failed commit = %d, want 1", h)
	}
	for _, st := range streams {
		if _, err := s.ReadStream(ctx, st, eventstore.ReadStreamOptions{}); !errors.Is(err, eventstore.ErrNotFound) {
			t.Fatalf("stream of a failed commit: %v, want ErrNotFound", err)
		}
	}
	// Positions stay gapless after the failure.
	if res := mustAppend(t, s, streams[0], eventstore.NoStream, event("PurchaseCompleted", 9)); res.Position != 2 {
		t.Fatalf("next append at position %d, want 2", res.Position)
	}
}

func TestRecordedAtNeverGoesBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	var mu sync.Mutex
	clock := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(t time.Time) { mu.Lock(); defer mu.Unlock(); clock = t }

	s, err := Open(path, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, customerStream(), eventstore.NoStream, event("AccountOpened", 0))
	set(now().Add(-time.Hour)) // NTP steps the clock back
	mustAppend(t, s, customerStream(), eventstore.NoStream, event("AccountOpened", 1))
	s.Close()
	s = openTest(t, path, Options{Now: now}) // the clamp survives a restart
	mustAppend(t, s, customerStream(), eventstore.NoStream, event("AccountOpened", 2))

	recs, err := s.ReadAll(context.Background(), eventstore.ReadAllOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, r := range recs {
		if !r.RecordedAt.Equal(want) {
			t.Errorf("position %d: RecordedAt %v, want %v", r.Position, r.RecordedAt, want)
		}
	}
}
