package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cxledger/cxledger/eventstore"
)

// concurrencyTests check optimistic locking under contention, and that
// concurrent writers never make a reader or a subscriber miss, repeat or
// reorder an event.
func (s *suite) concurrencyTests() []test {
	return []test{
		{"OptimisticLocking", s.testOptimisticLocking},
		{"WritersWithLiveReaders", s.testWritersWithLiveReaders},
		{"ReadWhileStreamIsCreated", s.testReadWhileStreamIsCreated},
	}
}

// testReadWhileStreamIsCreated reads streams from version 0 while they are
// being created: each read must say the stream is not found or return its
// first events, never an empty answer for a stream that exists (a backend
// that checks existence in a second statement can fall between the two).
func (s *suite) testReadWhileStreamIsCreated(t *testing.T) {
	const streams, readers = 40, 4
	ctx := testContext(t)
	st := s.newStore(t)
	names := make([]string, streams)
	for i := range names {
		names[i] = newStream()
	}
	var g errgroup.Group
	for r := range readers {
		g.Go(func() error {
			for _, name := range names {
				for {
					recs, err := st.ReadStream(ctx, name, eventstore.ReadStreamOptions{From: 0, Limit: 10})
					switch {
					case errors.Is(err, eventstore.ErrNotFound):
						continue // not created yet: ask again
					case err != nil:
						return fmt.Errorf("reader %d: %w", r, err)
					case len(recs) == 0:
						return fmt.Errorf("reader %d: stream %s exists but reading it from version 0 returned no events", r, name)
					}
					break
				}
			}
			return nil
		})
	}
	for _, name := range names {
		c := newCustomer()
		mustAppend(t, ctx, st, name, eventstore.NoStream, c.next())
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// testOptimisticLocking races many goroutines appending to one stream with
// the same exact expected version, for several rounds: exactly one wins
// each round, every other gets a conflict naming the winner's version, and
// the stream ends up with the winners' events and no holes.
func (s *suite) testOptimisticLocking(t *testing.T) {
	const racers, rounds = 32, 6
	ctx := testContext(t)
	st := s.newStore(t)
	stream := newStream()
	var want []eventstore.EventData
	current := int64(-1)
	for round := range rounds {
		expected := eventstore.NoStream
		if current >= 0 {
			expected = eventstore.Exact(uint64(current))
		}
		type outcome struct {
			events []eventstore.EventData
			res    eventstore.AppendResult
			err    error
		}
		outcomes := make([]outcome, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range racers {
			c := newCustomer()
			outcomes[g].events = c.batch(1 + g%2)
			wg.Go(func() {
				<-start
				o := &outcomes[g]
				o.res, o.err = st.Append(ctx, stream, expected, o.events...)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for g, o := range outcomes {
			if o.err != nil {
				continue
			}
			if winner >= 0 {
				t.Fatalf("round %d: racers %d and %d both appended with expected %s", round, winner, g, expected)
			}
			winner = g
		}
		if winner < 0 {
			t.Fatalf("round %d: no racer succeeded with expected %s; first error: %v", round, expected, outcomes[0].err)
		}
		w := outcomes[winner]
		current += int64(len(w.events))
		if w.res.Version != uint64(current) {
			t.Errorf("round %d: winner's AppendResult.Version = %d, want %d", round, w.res.Version, current)
		}
		want = append(want, w.events...)
		for g, o := range outcomes {
			if g != winner {
				wantConflict(t, o.err, stream, expected, current)
			}
		}
	}
	recs := mustReadStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
	if len(recs) != len(want) {
		t.Fatalf("stream holds %d events, want the %d the winners appended", len(recs), len(want))
	}
	for i, e := range want {
		checkRecord(t, recs[i], stream, uint64(i), e)
	}
	checkLog(t, recs, true)
	if err := sameRecords(readAll(t, ctx, st, 0, 0, eventstore.Filter{}), recs); err != nil {
		t.Errorf("global log differs from the stream: %v", err)
	}
}

// testWritersWithLiveReaders runs 16 writers on distinct streams (50
// appends of 1 to 3 events each) while two subscriptions (one filtered, in
// small batches) and a ReadAll poller follow the log from the start. Each
// receives every event exactly once, in strictly increasing position order:
// the same records ReadAll returns once the writers are done.
func (s *suite) testWritersWithLiveReaders(t *testing.T) {
	const writers, appends = 16, 50
	ctx := testContext(t)
	st := s.newStore(t)

	all := &collector{}
	cancelAll, doneAll := all.subscribe(ctx, st, 0)
	defer cancelAll()
	purchases := &collector{filter: eventstore.Filter{Types: []string{typePurchaseCompleted, typeTicketOpened}}, batchSize: 7}
	cancelPurchases, donePurchases := purchases.subscribe(ctx, st, 0)
	defer cancelPurchases()

	// The poller reads the log after what it has, as a projection would.
	writing := make(chan struct{})
	var polled []eventstore.Record
	pollErr := make(chan error, 1)
	go func() {
		var after uint64
		finishing := false
		for {
			page, err := st.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 25})
			if err != nil {
				pollErr <- fmt.Errorf("ReadAll(after %d): %w", after, err)
				return
			}
			for _, r := range page {
				if r.Position <= after {
					pollErr <- fmt.Errorf("ReadAll(after %d) returned position %d", after, r.Position)
					return
				}
				after = r.Position
			}
			polled = append(polled, page...)
			if len(page) > 0 {
				continue
			}
			if finishing {
				pollErr <- nil // read to the end after the writers were done
				return
			}
			select {
			case <-writing:
				finishing = true
			case <-time.After(time.Millisecond): // polling interval
			case <-ctx.Done():
				pollErr <- ctx.Err()
				return
			}
		}
	}()

	g, gctx := errgroup.WithContext(ctx)
	streams := make([]string, writers)
	for w := range writers {
		streams[w] = newStream()
		g.Go(func() error {
			c := newCustomer()
			version := int64(-1)
			var last uint64
			for i := range appends {
				events := c.batch(1 + (w+i)%3)
				expected := eventstore.NoStream
				if version >= 0 {
					expected = eventstore.Exact(uint64(version))
				}
				res, err := st.Append(gctx, streams[w], expected, events...)
				if err != nil {
					return fmt.Errorf("writer %d, append %d: %w", w, i, err)
				}
				version += int64(len(events))
				if res.Version != uint64(version) || res.Position <= last {
					return fmt.Errorf("writer %d, append %d: result %+v, want version %d and a position after %d", w, i, res, version, last)
				}
				last = res.Position
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	close(writing)

	final := readAll(t, ctx, st, 0, 0, eventstore.Filter{})
	checkLog(t, final, false)
	got := all.waitFor(t, ctx, len(final), doneAll)
	wantPurchases := filtered(final, purchases.filter)
	purchases.waitFor(t, ctx, len(wantPurchases), donePurchases)
	select {
	case err := <-pollErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("ReadAll poller did not reach the end of the log before the deadline")
	}

	cancelAll()
	cancelPurchases()
	for _, done := range []<-chan error{doneAll, donePurchases} {
		if err := waitEnd(t, ctx, done, "subscription"); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled subscription returned %v; want context.Canceled", err)
		}
	}
	all.check(t)
	purchases.check(t)
	if err := sameRecords(all.received(), final); err != nil {
		t.Errorf("subscription differs from ReadAll: %v", err)
	}
	if err := sameRecords(purchases.received(), wantPurchases); err != nil {
		t.Errorf("filtered subscription differs from ReadAll: %v", err)
	}
	if err := sameRecords(polled, final); err != nil {
		t.Errorf("ReadAll polled during the writes differs from ReadAll after them: %v", err)
	}
	// Every stream is whole: versions 0.. in position order.
	next := make(map[string]uint64, writers)
	for _, r := range got {
		if r.Version != next[r.Stream] {
			t.Fatalf("stream %s: version %d delivered where %d was due", r.Stream, r.Version, next[r.Stream])
		}
		next[r.Stream]++
	}
	if len(next) != writers {
		t.Errorf("events of %d streams delivered, want %d", len(next), writers)
	}
}
