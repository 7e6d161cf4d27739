package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
)

// testContext returns a context cancelled after Timeout, at the test
// binary's deadline, or when the test ends, whichever comes first.
func testContext(t *testing.T) context.Context {
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

// cancelled returns an already-cancelled context.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	return ctx
}

func mustAppend(t *testing.T, ctx context.Context, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctx, stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d events): %v", stream, expected, len(events), err)
	}
	return res
}

func mustReadStream(t *testing.T, ctx context.Context, s eventstore.Store, stream string, opts eventstore.ReadStreamOptions) []eventstore.Record {
	t.Helper()
	recs, err := s.ReadStream(ctx, stream, opts)
	if err != nil {
		t.Fatalf("ReadStream(%q, %+v): %v", stream, opts, err)
	}
	return recs
}

func mustHead(t *testing.T, ctx context.Context, s eventstore.Store) uint64 {
	t.Helper()
	h, err := s.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// readAll pages through the global log after position after with pages of
// limit events, checking that every page but the last is full (the
// contract's "a page holds Limit matching events unless the end of the log
// was reached") and that the last one is empty.
func readAll(t *testing.T, ctx context.Context, s eventstore.Store, after uint64, limit int, filter eventstore.Filter) []eventstore.Record {
	t.Helper()
	var all []eventstore.Record
	pageLimit := limit
	if pageLimit == 0 {
		pageLimit = eventstore.DefaultReadLimit
	}
	for {
		page, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: limit, Filter: filter})
		if err != nil {
			t.Fatalf("ReadAll(after %d, limit %d, %+v): %v", after, limit, filter, err)
		}
		if len(page) > pageLimit {
			t.Fatalf("ReadAll(after %d, limit %d): %d events, more than the limit", after, limit, len(page))
		}
		for _, r := range page {
			if r.Position <= after {
				t.Fatalf("ReadAll(after %d): event at position %d, not after %d", after, r.Position, after)
			}
			if !filter.Match(r) {
				t.Fatalf("ReadAll(filter %v): event %s of type %q does not match", filter.Types, r.ID, r.Type)
			}
			after = r.Position
		}
		all = append(all, page...)
		if len(page) == 0 {
			return all
		}
		if len(page) < pageLimit {
			// A short page must be the end: the next one is empty.
			next, err := s.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: limit, Filter: filter})
			if err != nil {
				t.Fatalf("ReadAll(after %d): %v", after, err)
			}
			if len(next) != 0 {
				t.Fatalf("ReadAll(after %d, limit %d) returned a short page of %d events although %d more matching events follow", after, limit, len(page), len(next))
			}
			return all
		}
	}
}

// logState is what a failed call must leave unchanged.
type logState struct {
	head uint64
	all  []eventstore.Record
}

func snapshot(t *testing.T, ctx context.Context, s eventstore.Store) logState {
	t.Helper()
	return logState{head: mustHead(t, ctx, s), all: readAll(t, ctx, s, 0, 0, eventstore.Filter{})}
}

// assertUnchanged checks that the global log is as in before: the same head
// and the same records.
func assertUnchanged(t *testing.T, ctx context.Context, s eventstore.Store, before logState) {
	t.Helper()
	after := snapshot(t, ctx, s)
	if after.head != before.head {
		t.Errorf("Head moved from %d to %d: a failed append wrote something", before.head, after.head)
	}
	if err := sameRecords(before.all, after.all); err != nil {
		t.Errorf("global log changed by a failed append: %v", err)
	}
}

// assertStreamLen checks that stream holds exactly n events (n == 0: the
// stream does not exist).
func assertStreamLen(t *testing.T, ctx context.Context, s eventstore.Store, stream string, n int) {
	t.Helper()
	recs, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})
	if n == 0 {
		if !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("ReadStream(%q) of a stream that should not exist: %d events, error %v; want ErrNotFound", stream, len(recs), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("ReadStream(%q): %v", stream, err)
	}
	if len(recs) != n {
		t.Errorf("stream %q holds %d events, want %d", stream, len(recs), n)
	}
}

// wantConflict checks that err is the version conflict of an append to
// stream with expected, the stream being at actual (-1: no events).
func wantConflict(t *testing.T, err error, stream string, expected eventstore.ExpectedVersion, actual int64) {
	t.Helper()
	if err == nil {
		t.Fatalf("append to %q with expected %s succeeded; want ErrWrongExpectedVersion (actual %d)", stream, expected, actual)
	}
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("append to %q with expected %s: %v; want an error wrapping ErrWrongExpectedVersion", stream, expected, err)
	}
	var vc *eventstore.VersionConflictError
	if !errors.As(err, &vc) {
		t.Fatalf("append to %q with expected %s: %v (%T); want a *VersionConflictError", stream, expected, err, err)
	}
	if vc.Stream != stream || vc.Expected != expected || vc.Actual != actual {
		t.Errorf("conflict = {Stream %q, Expected %s, Actual %d}, want {Stream %q, Expected %s, Actual %d}",
			vc.Stream, vc.Expected, vc.Actual, stream, expected, actual)
	}
}

// wantErr checks that err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v; want an error wrapping %v", what, err, target)
	}
}

// checkRecord checks that got is want as stored in stream at version: every
// field as written, times normalized to UTC microseconds.
func checkRecord(t *testing.T, got eventstore.Record, stream string, version uint64, want eventstore.EventData) {
	t.Helper()
	if err := recordIs(got, stream, version, want); err != nil {
		t.Errorf("%v", err)
	}
}

func recordIs(got eventstore.Record, stream string, version uint64, want eventstore.EventData) error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("record %s@%d: "+format, append([]any{stream, version}, args...)...))
	}
	if got.ID != want.ID {
		add("ID = %s, want %s", got.ID, want.ID)
	}
	if got.Stream != stream {
		add("Stream = %q, want %q", got.Stream, stream)
	}
	if got.Version != version {
		add("Version = %d, want %d", got.Version, version)
	}
	if got.Type != want.Type {
		add("Type = %q, want %q", got.Type, want.Type)
	}
	if !bytes.Equal(got.Data, want.Data) {
		add("Data not returned byte for byte:\n got %.200q\nwant %.200q", got.Data, want.Data)
	}
	if got.Position == 0 {
		add("Position is 0; positions start at 1")
	}
	if err := checkTime("RecordedAt", got.RecordedAt, false); err != nil {
		add("%v", err)
	}
	m, w := got.Metadata, want.Metadata
	wantAt := w.OccurredAt
	if !wantAt.IsZero() {
		wantAt = wantAt.UTC().Truncate(time.Microsecond)
	}
	if !m.OccurredAt.Equal(wantAt) {
		add("Metadata.OccurredAt = %v, want %v (UTC, truncated to µs)", m.OccurredAt, wantAt)
	}
	if err := checkTime("Metadata.OccurredAt", m.OccurredAt, true); err != nil {
		add("%v", err)
	}
	if m.Actor != w.Actor || m.Channel != w.Channel || m.CorrelationID != w.CorrelationID ||
		m.CausationID != w.CausationID || m.SchemaVersion != w.SchemaVersion {
		add("Metadata = %+v, want %+v", m, w)
	}
	return errors.Join(errs...)
}

// checkTime checks the store's time conventions: UTC, microseconds.
func checkTime(name string, ts time.Time, zeroOK bool) error {
	if ts.IsZero() {
		if zeroOK {
			return nil
		}
		return fmt.Errorf("%s is not set", name)
	}
	if ts.Location() != time.UTC {
		return fmt.Errorf("%s = %v is in %v, want UTC", name, ts, ts.Location())
	}
	if ts.Nanosecond()%1000 != 0 {
		return fmt.Errorf("%s = %v has sub-microsecond precision", name, ts)
	}
	return nil
}

// sameRecord reports how a differs from b, or nil.
func sameRecord(a, b eventstore.Record) error {
	if a.Position != b.Position || !a.RecordedAt.Equal(b.RecordedAt) {
		return fmt.Errorf("event %s: position %d recorded %v, then position %d recorded %v", a.ID, a.Position, a.RecordedAt, b.Position, b.RecordedAt)
	}
	want := eventstore.EventData{ID: b.ID, Type: b.Type, Data: b.Data, Metadata: b.Metadata}
	return recordIs(a, b.Stream, b.Version, want)
}

// sameRecords reports how two lists of records differ, or nil.
func sameRecords(got, want []eventstore.Record) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if err := sameRecord(got[i], want[i]); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

// checkLog checks records of the global log in the order read: strictly
// increasing positions and, when the appends were sequential, RecordedAt
// never going back. (The contract does not order RecordedAt of concurrent
// appends, whose clock readings may be taken in another order than their
// commits.)
func checkLog(t *testing.T, recs []eventstore.Record, sequential bool) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		p, r := recs[i-1], recs[i]
		if r.Position <= p.Position {
			t.Errorf("position %d (event %s) follows position %d: positions must strictly increase", r.Position, r.ID, p.Position)
		}
		if sequential && r.RecordedAt.Before(p.RecordedAt) {
			t.Errorf("RecordedAt %v at position %d is before %v at position %d", r.RecordedAt, r.Position, p.RecordedAt, p.Position)
		}
	}
}

// collector is a subscription handler that keeps what it receives and lets
// the test wait for it.
type collector struct {
	batchSize int // limit on a batch, 0: DefaultReadLimit
	filter    eventstore.Filter

	mu      sync.Mutex
	recs    []eventstore.Record
	batches int
	errs    []error
	changed eventstore.Signal
}

func (c *collector) handle(_ context.Context, batch []eventstore.Record) error {
	c.mu.Lock()
	defer func() {
		c.mu.Unlock()
		c.changed.Notify()
	}()
	c.batches++
	limit := c.batchSize
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	if len(batch) == 0 {
		c.errs = append(c.errs, errors.New("handler called with an empty batch"))
	}
	if len(batch) > limit {
		c.errs = append(c.errs, fmt.Errorf("batch of %d events, BatchSize is %d", len(batch), limit))
	}
	for _, r := range batch {
		if n := len(c.recs); n > 0 && r.Position <= c.recs[n-1].Position {
			c.errs = append(c.errs, fmt.Errorf("event %s at position %d delivered after position %d: not exactly once in order", r.ID, r.Position, c.recs[n-1].Position))
		}
		if !c.filter.Match(r) {
			c.errs = append(c.errs, fmt.Errorf("event %s of type %q delivered through filter %v", r.ID, r.Type, c.filter.Types))
		}
		c.recs = append(c.recs, r)
	}
	return nil
}

// received returns a copy of what was delivered so far.
func (c *collector) received() []eventstore.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.Record(nil), c.recs...)
}

// waitFor blocks until n events were delivered, failing the test at the
// deadline of ctx or if the subscription ends first.
func (c *collector) waitFor(t *testing.T, ctx context.Context, n int, done <-chan error) []eventstore.Record {
	t.Helper()
	for {
		wake := c.changed.C()
		c.mu.Lock()
		got := len(c.recs)
		c.mu.Unlock()
		if got >= n {
			return c.received()
		}
		select {
		case <-wake:
		case err := <-done:
			t.Fatalf("subscription ended after %d of %d events: %v", got, n, err)
		case <-ctx.Done():
			t.Fatalf("subscription delivered %d of %d events before the deadline: %v", got, n, ctx.Err())
		}
	}
}

// check reports every contract violation the handler saw.
func (c *collector) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		t.Error(err)
	}
}

// subscribe starts s.Subscribe with c as the handler in a goroutine. Cancel
// the returned function to end it; the channel yields Subscribe's error.
func (c *collector) subscribe(ctx context.Context, s eventstore.Store, after uint64) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, eventstore.SubscribeOptions{After: after, Filter: c.filter, BatchSize: c.batchSize}, c.handle)
	}()
	return cancel, done
}

// waitEnd waits for a subscription to return and returns its error.
func waitEnd(t *testing.T, ctx context.Context, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatalf("%s: Subscribe did not return before the deadline", what)
		return nil
	}
}

// filtered keeps the records that match f.
func filtered(recs []eventstore.Record, f eventstore.Filter) []eventstore.Record {
	var out []eventstore.Record
	for _, r := range recs {
		if f.Match(r) {
			out = append(out, r)
		}
	}
	return out
}
