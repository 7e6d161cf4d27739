package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// collector subscribes to s from the beginning and records every delivered
// position, failing the test on a position that is not exactly the next
// one: positions have no gaps unless an append fails after drawing them,
// which these tests never do, so any skip shows as a gap.
type collector struct {
	mu   sync.Mutex
	got  []uint64
	bad  error
	more chan struct{}
}

func collect(t *testing.T, ctx context.Context, s eventstore.Store) *collector {
	t.Helper()
	c := &collector{more: make(chan struct{}, 1)}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		done <- s.Subscribe(ctx, eventstore.SubscribeOptions{}, func(_ context.Context, batch []eventstore.Record) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, r := range batch {
				if want := uint64(len(c.got) + 1); r.Position != want && c.bad == nil {
					c.bad = fmt.Errorf("subscriber got position %d after %d: skipped or reordered", r.Position, want-1)
				}
				c.got = append(c.got, r.Position)
			}
			select {
			case c.more <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("subscription ended with %v", err)
		}
	})
	return c
}

// waitFor waits until the collector holds n positions, then checks them.
func (c *collector) waitFor(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		c.mu.Lock()
		got, bad := len(c.got), c.bad
		c.mu.Unlock()
		if bad != nil {
			t.Fatal(bad)
		}
		if got >= n {
			if got > n {
				t.Fatalf("subscriber got %d positions, want %d", got, n)
			}
			return
		}
		select {
		case <-c.more:
		case <-deadline:
			t.Fatalf("subscriber has %d of %d positions after %s", got, n, within)
		}
	}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

// TestLateCommitIsNotSkipped is the proof of the ordering technique. Store A
// (one "process") draws position 1 and pauses before COMMIT. Store B
// (another) appends meanwhile: it takes position 2 and commits first (appends
// no longer wait for each other), the interleaving in which a naive reader
// would pass position 1 for ever. Readers must wait for A instead: Head and
// ReadAll of a third store do not return while A is open, and its
// subscriber, woken only by NOTIFY (its poll interval is an hour), sees
// nothing until A commits, then 1 and 2, in order.
func TestLateCommitIsNotSkipped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := pgtest.Schema(t)
	a := openStore(t, schema, pgstore.Options{})
	b := openStore(t, schema, pgstore.Options{})
	reader := openStore(t, schema, pgstore.Options{Poll: time.Hour})
	sub := collect(t, ctx, reader)

	inserted, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	pgstore.SetAfterInsertHook(a, func() {
		once.Do(func() {
			close(inserted)
			<-release
		})
	})
	type result struct {
		res eventstore.AppendResult
		err error
	}
	resA := make(chan result, 1)
	go func() {
		r, err := a.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(1))
		resA <- result{r, err}
	}()
	select {
	case <-inserted:
	case <-ctx.Done():
		t.Fatal("A never reached its insert")
	}
	// B is not held back by A: it commits a later position first.
	rb, err := b.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(2))
	if err != nil {
		t.Fatal(err)
	}
	if rb.Position != 2 {
		t.Fatalf("B's position %d, want 2 (A drew 1)", rb.Position)
	}

	// The reader waits for A inside PostgreSQL rather than answer past it.
	type read struct {
		head uint64
		page []eventstore.Record
		err  error
	}
	readDone := make(chan read, 1)
	go func() {
		var r read
		if r.head, r.err = reader.Head(ctx); r.err == nil {
			r.page, r.err = reader.ReadAll(ctx, eventstore.ReadAllOptions{})
		}
		readDone <- r
	}()
	waitForAdvisoryWaiter(t, ctx, "%.head(%")
	select {
	case r := <-readDone:
		t.Fatalf("Head and ReadAll returned while A's transaction was open: head %d, %d events, %v", r.head, len(r.page), r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if n := sub.count(); n != 0 {
		t.Fatalf("subscriber got %d events while A is uncommitted", n)
	}

	close(release)
	ra := <-resA
	if ra.err != nil {
		t.Fatalf("append A: %v", ra.err)
	}
	if ra.res.Position != 1 {
		t.Fatalf("A's position %d, want 1", ra.res.Position)
	}
	r := <-readDone
	if r.err != nil || r.head != 2 || len(r.page) != 2 || r.page[0].Position != 1 || r.page[1].Position != 2 {
		t.Fatalf("after A's commit: head %d, %d events, %v; want head 2 and positions 1, 2", r.head, len(r.page), r.err)
	}
	sub.waitFor(t, 2, 10*time.Second)
}

// waitForAdvisoryWaiter waits until some backend of the test database whose
// query matches the LIKE pattern is waiting on an advisory lock: the reader
// the test expects to be held back.
func waitForAdvisoryWaiter(t *testing.T, ctx context.Context, pattern string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		var n int
		err := conn.QueryRow(ctx, `select count(*) from pg_stat_activity
			where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'
			and query like $1`, pattern).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no reader ever waited on an advisory lock")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestConcurrentWritersNoSkippedPosition hammers one schema from three
// Stores (three "processes") with commits randomly delayed between insert
// and COMMIT, while two subscribers on other Stores and a tailing ReadAll
// reader watch: every one of them must see positions 1, 2, 3, ... with no
// gap, in order, and end at the head.
func TestConcurrentWritersNoSkippedPosition(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	schema := pgtest.Schema(t)
	writers := make([]*pgstore.Store, 3)
	for i := range writers {
		writers[i] = openStore(t, schema, pgstore.Options{})
		pgstore.SetAfterInsertHook(writers[i], func() {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		})
	}
	subs := []*collector{
		collect(t, ctx, openStore(t, schema, pgstore.Options{Poll: time.Hour})),
		collect(t, ctx, openStore(t, schema, pgstore.Options{Poll: time.Hour})),
	}

	tailCtx, stopTail := context.WithCancel(ctx)
	tailErr := make(chan error, 1)
	tail := openStore(t, schema, pgstore.Options{})
	go func() {
		var after uint64
		for tailCtx.Err() == nil {
			page, err := tail.ReadAll(tailCtx, eventstore.ReadAllOptions{After: after, Limit: 7})
			if err != nil {
				if tailCtx.Err() != nil {
					break
				}
				tailErr <- err
				return
			}
			for _, r := range page {
				if r.Position != after+1 {
					tailErr <- fmt.Errorf("tailing reader got position %d after %d", r.Position, after)
					return
				}
				after = r.Position
			}
		}
		tailErr <- nil
	}()

	streams := []string{customerStream(), customerStream(), customerStream(), customerStream()}
	var g errgroup.Group
	total := make([]int, 12)
	for w := range total {
		s := writers[w%len(writers)]
		g.Go(func() error {
			for range 40 {
				n := 1 + rand.IntN(3)
				if _, err := s.Append(ctx, streams[rand.IntN(len(streams))], eventstore.Any, events(n)...); err != nil {
					return err
				}
				total[w] += n
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, n := range total {
		want += n
	}
	head, err := tail.Head(ctx)
	if err != nil || head != uint64(want) {
		t.Fatalf("head %d, %v; want %d (positions must be gapless)", head, err, want)
	}
	for _, c := range subs {
		c.waitFor(t, want, 20*time.Second)
	}
	// RecordedAt never decreases along the log, though three stores
	// committed concurrently: it is read where positions are drawn.
	var prev eventstore.Record
	for after := uint64(0); after < head; {
		page, err := tail.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if r.RecordedAt.Before(prev.RecordedAt) {
				t.Fatalf("RecordedAt %v at position %d is before %v at position %d", r.RecordedAt, r.Position, prev.RecordedAt, prev.Position)
			}
			prev = r
		}
		after = page[len(page)-1].Position
	}
	stopTail()
	if err := <-tailErr; err != nil {
		t.Fatal(err)
	}
}

// TestTwoStoresOptimisticConcurrency races read-decide-append loops on one
// stream from two Stores: every conflict is a *VersionConflictError, and the
// stream ends with exactly the successful appends at versions 0..n-1.
func TestTwoStoresOptimisticConcurrency(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	schema := pgtest.Schema(t)
	stores := []*pgstore.Store{openStore(t, schema, pgstore.Options{}), openStore(t, schema, pgstore.Options{})}
	stream := customerStream()
	const perWriter, writers = 10, 8
	var (
		g         errgroup.Group
		mu        sync.Mutex
		conflicts int
	)
	for w := range writers {
		s := stores[w%2]
		g.Go(func() error {
			for done := 0; done < perWriter; {
				expected := eventstore.NoStream
				recs, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 1})
				switch {
				case err == nil:
					expected = eventstore.Exact(recs[0].Version)
				case !errors.Is(err, eventstore.ErrNotFound):
					return err
				}
				_, err = s.Append(ctx, stream, expected, touchpoint(w))
				var conflict *eventstore.VersionConflictError
				switch {
				case err == nil:
					done++
				case errors.As(err, &conflict):
					mu.Lock()
					conflicts++
					mu.Unlock()
				default:
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	recs, err := stores[0].ReadStream(ctx, stream, eventstore.ReadStreamOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != perWriter*writers {
		t.Fatalf("stream holds %d events, want %d", len(recs), perWriter*writers)
	}
	for i, r := range recs {
		if r.Version != uint64(i) {
			t.Fatalf("event %d at version %d", i, r.Version)
		}
	}
	t.Logf("%d successful appends, %d conflicts", len(recs), conflicts)
}
