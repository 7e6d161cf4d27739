package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/cxledger/cxledger/eventstore"
)

// cancellationTests check that every call honours an already-cancelled
// context with an error wrapping context.Canceled, and that a cancelled
// append writes nothing. (An append cancelled while in flight may commit in
// a real database; the suite does not check that case.)
func (s *suite) cancellationTests() []test {
	withData := func(t *testing.T) (eventstore.Store, string) {
		t.Helper()
		st, stream := s.newStore(t), newStream()
		mustAppend(t, testContext(t), st, stream, eventstore.NoStream, newCustomer().batch(3)...)
		return st, stream
	}
	return []test{
		{"Append", func(t *testing.T) {
			st, stream := withData(t)
			ctx := testContext(t)
			before := snapshot(t, ctx, st)
			fresh := newStream()
			_, err := st.Append(cancelled(t), stream, eventstore.Exact(2), newCustomer().batch(2)...)
			wantErr(t, "Append to an existing stream with a cancelled context", err, context.Canceled)
			_, err = st.Append(cancelled(t), fresh, eventstore.Any, newCustomer().batch(2)...)
			wantErr(t, "Append to a new stream with a cancelled context", err, context.Canceled)
			assertUnchanged(t, ctx, st, before)
			assertStreamLen(t, ctx, st, stream, 3)
			assertStreamLen(t, ctx, st, fresh, 0)
		}},
		{"ReadStream", func(t *testing.T) {
			st, stream := withData(t)
			_, err := st.ReadStream(cancelled(t), stream, eventstore.ReadStreamOptions{})
			wantErr(t, "ReadStream with a cancelled context", err, context.Canceled)
			_, err = st.ReadStream(cancelled(t), stream, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true})
			wantErr(t, "ReadStream backwards with a cancelled context", err, context.Canceled)
		}},
		{"ReadAll", func(t *testing.T) {
			st, _ := withData(t)
			_, err := st.ReadAll(cancelled(t), eventstore.ReadAllOptions{})
			wantErr(t, "ReadAll with a cancelled context", err, context.Canceled)
		}},
		{"Head", func(t *testing.T) {
			st, _ := withData(t)
			_, err := st.Head(cancelled(t))
			wantErr(t, "Head with a cancelled context", err, context.Canceled)
		}},
		{"Subscribe", func(t *testing.T) {
			st, _ := withData(t)
			ctx, done := cancelled(t), make(chan error, 1)
			go func() {
				done <- st.Subscribe(ctx, eventstore.SubscribeOptions{}, func(context.Context, []eventstore.Record) error { return nil })
			}()
			err := waitEnd(t, testContext(t), done, "Subscribe with a cancelled context")
			wantErr(t, "Subscribe with a cancelled context", err, context.Canceled)
		}},
		{"SubscribeWhileLive", func(t *testing.T) {
			st, _ := withData(t)
			ctx := testContext(t)
			c := &collector{}
			cancel, done := c.subscribe(ctx, st, 0)
			c.waitFor(t, ctx, 3, done)
			cancel()
			err := waitEnd(t, ctx, done, "Subscribe cancelled while live")
			wantErr(t, "Subscribe cancelled while live", err, context.Canceled)
			c.check(t)
		}},
	}
}

// subscribeTests check catch-up then live delivery, from the start and the
// middle, with filters and batch sizes, and how a subscription ends.
func (s *suite) subscribeTests() []test {
	return []test{
		{"FromStartThenLive", func(t *testing.T) { s.testCatchUpThenLive(t, 0, eventstore.Filter{}, 0) }},
		{"FromMiddleThenLive", func(t *testing.T) { s.testCatchUpThenLive(t, 4, eventstore.Filter{}, 0) }},
		{"FilterInCatchUpAndLive", func(t *testing.T) {
			s.testCatchUpThenLive(t, 0, eventstore.Filter{Types: []string{typePurchaseCompleted, typeConsentWithdrawn}}, 0)
		}},
		{"FilterFromMiddle", func(t *testing.T) {
			s.testCatchUpThenLive(t, 5, eventstore.Filter{Types: []string{typeCustomerRegistered, typeTicketOpened}}, 0)
		}},
		{"BatchSize", func(t *testing.T) { s.testCatchUpThenLive(t, 0, eventstore.Filter{}, 2) }},
		{"EmptyStoreThenLive", func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			c := &collector{}
			cancel, done := c.subscribe(ctx, st, 0)
			defer cancel()
			stream, cu := newStream(), newCustomer()
			mustAppend(t, ctx, st, stream, eventstore.NoStream, cu.batch(2)...)
			mustAppend(t, ctx, st, stream, eventstore.Exact(1), s.large(cu))
			got := c.waitFor(t, ctx, 3, done)
			if err := sameRecords(got, readAll(t, ctx, st, 0, 0, eventstore.Filter{})); err != nil {
				t.Errorf("subscription differs from ReadAll: %v", err)
			}
			c.check(t)
		}},
		{"HandlerErrorStopsIt", func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			mustAppend(t, ctx, st, newStream(), eventstore.NoStream, newCustomer().batch(5)...)
			errRefused := errors.New("projection refused the batch")
			calls := 0
			err := st.Subscribe(ctx, eventstore.SubscribeOptions{BatchSize: 2}, func(context.Context, []eventstore.Record) error {
				calls++
				if calls == 2 {
					return errRefused
				}
				return nil
			})
			wantErr(t, "Subscribe whose handler failed", err, errRefused)
			if calls != 2 {
				t.Errorf("handler called %d times; the subscription must stop at its first error (call 2)", calls)
			}
		}},
		{"HandlerErrorWhileLive", func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			stream, cu := newStream(), newCustomer()
			mustAppend(t, ctx, st, stream, eventstore.NoStream, cu.batch(2)...)
			errRefused := errors.New("projection refused the batch")
			caughtUp := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				seen := 0
				done <- st.Subscribe(ctx, eventstore.SubscribeOptions{}, func(_ context.Context, batch []eventstore.Record) error {
					if seen >= 2 {
						return errRefused
					}
					seen += len(batch)
					if seen == 2 {
						close(caughtUp)
					}
					return nil
				})
			}()
			select {
			case <-caughtUp:
			case err := <-done:
				t.Fatalf("subscription ended before catching up: %v", err)
			case <-ctx.Done():
				t.Fatalf("subscription did not catch up before the deadline")
			}
			mustAppend(t, ctx, st, stream, eventstore.Exact(1), cu.next())
			err := waitEnd(t, ctx, done, "Subscribe whose handler failed on a live event")
			wantErr(t, "Subscribe whose handler failed on a live event", err, errRefused)
		}},
	}
}

// testCatchUpThenLive writes history, subscribes after the from-th event
// (0: from the beginning) with filter and batchSize, waits for the history,
// then writes more and waits for it live. What arrives is what ReadAll
// returns, exactly once and in order.
func (s *suite) testCatchUpThenLive(t *testing.T, from int, filter eventstore.Filter, batchSize int) {
	ctx := testContext(t)
	st := s.newStore(t)
	a, ca := newStream(), newCustomer()
	b, cb := newStream(), newCustomer()
	mustAppend(t, ctx, st, a, eventstore.NoStream, ca.batch(4)...)
	mustAppend(t, ctx, st, b, eventstore.NoStream, cb.batch(3)...)
	mustAppend(t, ctx, st, a, eventstore.Exact(3), s.large(ca), ca.next())
	mustAppend(t, ctx, st, b, eventstore.Exact(2), cb.batch(5)...)
	history := readAll(t, ctx, st, 0, 0, eventstore.Filter{})
	var after uint64
	if from > 0 {
		after = history[from-1].Position
	}
	want := filtered(readAll(t, ctx, st, after, 0, eventstore.Filter{}), filter)

	c := &collector{filter: filter, batchSize: batchSize}
	cancel, done := c.subscribe(ctx, st, after)
	defer cancel()
	c.waitFor(t, ctx, len(want), done)

	// Live: appends to both streams, in several commits.
	mustAppend(t, ctx, st, a, eventstore.StreamExists, ca.batch(7)...)
	mustAppend(t, ctx, st, b, eventstore.Any, cb.batch(1)...)
	mustAppend(t, ctx, st, newStream(), eventstore.NoStream, newCustomer().batch(7)...)
	want = filtered(readAll(t, ctx, st, after, 0, eventstore.Filter{}), filter)
	got := c.waitFor(t, ctx, len(want), done)
	cancel()
	err := waitEnd(t, ctx, done, "subscription")
	wantErr(t, "cancelled subscription", err, context.Canceled)
	c.check(t)
	if err := sameRecords(c.received(), want); err != nil {
		t.Errorf("subscription after %d (types %v) differs from ReadAll: %v", after, filter.Types, err)
	}
	if len(got) == 0 {
		t.Errorf("fixture: nothing to deliver")
	}
}

// closeTests check that Close ends subscriptions with ErrClosed and makes
// later calls fail with ErrClosed, and that appends racing with Close
// either succeed or fail with ErrClosed.
func (s *suite) closeTests() []test {
	return []test{
		{"EndsSubscriptions", func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			mustAppend(t, ctx, st, newStream(), eventstore.NoStream, newCustomer().batch(3)...)
			live, filteredSub := &collector{}, &collector{filter: eventstore.Filter{Types: []string{"CustomerTeleported"}}}
			_, done := live.subscribe(ctx, st, 0)
			_, doneFiltered := filteredSub.subscribe(ctx, st, 0)
			live.waitFor(t, ctx, 3, done)
			if err := st.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			wantErr(t, "live subscription when the store closed", waitEnd(t, ctx, done, "Close"), eventstore.ErrClosed)
			wantErr(t, "idle filtered subscription when the store closed", waitEnd(t, ctx, doneFiltered, "Close"), eventstore.ErrClosed)
			live.check(t)
		}},
		{"LaterCallsFail", func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			stream := newStream()
			mustAppend(t, ctx, st, stream, eventstore.NoStream, newCustomer().batch(3)...)
			if err := st.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			_, err := st.Append(ctx, stream, eventstore.Any, newCustomer().next())
			wantErr(t, "Append after Close", err, eventstore.ErrClosed)
			_, err = st.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})
			wantErr(t, "ReadStream after Close", err, eventstore.ErrClosed)
			_, err = st.ReadAll(ctx, eventstore.ReadAllOptions{})
			wantErr(t, "ReadAll after Close", err, eventstore.ErrClosed)
			_, err = st.Head(ctx)
			wantErr(t, "Head after Close", err, eventstore.ErrClosed)
			done := make(chan error, 1)
			go func() {
				done <- st.Subscribe(ctx, eventstore.SubscribeOptions{}, func(context.Context, []eventstore.Record) error { return nil })
			}()
			wantErr(t, "Subscribe after Close", waitEnd(t, ctx, done, "Subscribe after Close"), eventstore.ErrClosed)
			// The contract does not say whether Close may be called twice;
			// the constructor's cleanup will call it again. Either nil or
			// ErrClosed is accepted.
			if err := st.Close(); err != nil && !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("second Close: %v; want nil or ErrClosed", err)
			}
		}},
		{"AppendsInFlight", func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			const writers = 8
			started := make(chan struct{}, writers)
			errs := make(chan error, writers)
			for range writers {
				go func() {
					stream, c := newStream(), newCustomer()
					for i := 0; ; i++ {
						_, err := st.Append(ctx, stream, eventstore.Any, c.next())
						if i == 0 {
							started <- struct{}{}
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			for range writers {
				<-started
			}
			if err := st.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for range writers {
				select {
				case err := <-errs:
					wantErr(t, "Append racing with Close", err, eventstore.ErrClosed)
				case <-ctx.Done():
					t.Fatalf("appends still succeed after Close")
				}
			}
		}},
	}
}
