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
// one: positions are gapless, so any skip shows as a gap.
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
// (one "process") inserts position 1 and pauses before COMMIT. Store B
// (another) appends meanwhile: it must wait for A's lock rather than take
// position 2 and commit first, the interleaving in which a reader would pass
// position 1 for ever. A third store's subscriber, woken only by NOTIFY (its
// poll interval is an hour), must then see 1 and 2, in order.
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
	resA, resB := make(chan result, 1), make(chan result, 1)
	go func() {
		r, err := a.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(1))
		resA <- result{r, err}
	}()
	select {
	case <-inserted:
	case <-ctx.Done():
		t.Fatal("A never reached its insert")
	}
	go func() {
		r, err := b.Append(ctx, customerStream(), eventstore.NoStream, touchpoint(2))
		resB <- result{r, err}
	}()

	// B is parked on the advisory lock inside PostgreSQL, not failing and
	// not overtaking.
	waitForAdvisoryWaiter(t, ctx)
	select {
	case r := <-resB:
		t.Fatalf("B's append finished while A's transaction was open: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	if head, err := reader.Head(ctx); err != nil || head != 0 {
		t.Fatalf("head while A is uncommitted: %d, %v; want 0", head, err)
	}
	if page, err := reader.ReadAll(ctx, eventstore.ReadAllOptions{}); err != nil || len(page) != 0 {
		t.Fatalf("ReadAll while A is uncommitted: %d events, %v; want none", len(page), err)
	}
	if n := sub.count(); n != 0 {
		t.Fatalf("subscriber got %d events while A is uncommitted", n)
	}

	close(release)
	ra, rb := <-resA, <-resB
	if ra.err != nil || rb.err != nil {
		t.Fatalf("appends: A %v, B %v", ra.err, rb.err)
	}
	if ra.res.Position != 1 || rb.res.Position != 2 {
		t.Fatalf("positions: A %d, B %d; want 1 then 2 (lock order)", ra.res.Position, rb.res.Position)
	}
	sub.waitFor(t, 2, 10*time.Second)
}

// waitForAdvisoryWaiter waits until some backend of the test database is
// waiting on an advisory lock: the appender the test expects to be held back.
func waitForAdvisoryWaiter(t *testing.T, ctx context.Context) {
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
			and query like '%pg_advisory_xact_lock%'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no appender ever waited on the advisory lock")
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
