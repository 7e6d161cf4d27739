package storetest

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

// expectedVersionTests check every kind of expected version against a
// stream without events and a stream at version 2. A success lands at the
// next version; a failure is a *VersionConflictError with the stream's
// actual version and writes nothing.
func (s *suite) expectedVersionTests() []test {
	cases := []struct {
		name     string
		existing int // events in the stream before the append
		expected eventstore.ExpectedVersion
		ok       bool
	}{
		{"NewStream/Any", 0, eventstore.Any, true},
		{"NewStream/NoStream", 0, eventstore.NoStream, true},
		{"NewStream/StreamExists", 0, eventstore.StreamExists, false},
		{"NewStream/ExactZero", 0, eventstore.Exact(0), false},
		{"NewStream/ExactFive", 0, eventstore.Exact(5), false},
		{"ExistingStream/Any", 3, eventstore.Any, true},
		{"ExistingStream/NoStream", 3, eventstore.NoStream, false},
		{"ExistingStream/StreamExists", 3, eventstore.StreamExists, true},
		{"ExistingStream/ExactCurrent", 3, eventstore.Exact(2), true},
		{"ExistingStream/ExactStale", 3, eventstore.Exact(1), false},
		{"ExistingStream/ExactZero", 3, eventstore.Exact(0), false},
		{"ExistingStream/ExactFuture", 3, eventstore.Exact(3), false},
	}
	var tests []test
	for _, tc := range cases {
		tests = append(tests, test{tc.name, func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			stream, c := newStream(), newCustomer()
			// Another stream, so that the global log is not empty.
			mustAppend(t, ctx, st, newStream(), eventstore.NoStream, newCustomer().batch(2)...)
			var prev eventstore.AppendResult
			if tc.existing > 0 {
				prev = mustAppend(t, ctx, st, stream, eventstore.NoStream, c.batch(tc.existing)...)
			}
			before := snapshot(t, ctx, st)
			events := c.batch(2)
			res, err := st.Append(ctx, stream, tc.expected, events...)
			if !tc.ok {
				wantConflict(t, err, stream, tc.expected, int64(tc.existing)-1)
				assertUnchanged(t, ctx, st, before)
				assertStreamLen(t, ctx, st, stream, tc.existing)
				return
			}
			if err != nil {
				t.Fatalf("Append(%s) to a stream of %d events: %v", tc.expected, tc.existing, err)
			}
			if want := uint64(tc.existing + len(events) - 1); res.Version != want {
				t.Errorf("AppendResult.Version = %d, want %d", res.Version, want)
			}
			if res.Position <= before.head || res.Position <= prev.Position {
				t.Errorf("AppendResult.Position = %d, not after the previous head %d", res.Position, before.head)
			}
			recs := mustReadStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
			if len(recs) != tc.existing+len(events) {
				t.Fatalf("stream holds %d events, want %d", len(recs), tc.existing+len(events))
			}
			for i, e := range events {
				checkRecord(t, recs[tc.existing+i], stream, uint64(tc.existing+i), e)
			}
			if last := recs[len(recs)-1]; last.Position != res.Position {
				t.Errorf("AppendResult.Position = %d, but the last event is at position %d", res.Position, last.Position)
			}
		}})
	}
	return tests
}

// appendTests check atomic multi-event appends and that records come back
// exactly as written.
func (s *suite) appendTests() []test {
	return []test{
		{"MultipleEventsAtomically", s.testMultiEventAppend},
		{"RecordsReturnedAsWritten", s.testRecordsAsWritten},
		{"InvalidEventInBatchWritesNone", func(t *testing.T) {
			s.testBatchWritesNone(t, func(c *customer) eventstore.EventData {
				e := c.next()
				e.Data = []byte(`{"name": "Zoë",`)
				return e
			}, eventstore.ErrInvalidEvent)
		}},
		{"OversizedEventInBatchWritesNone", func(t *testing.T) {
			s.testBatchWritesNone(t, func(c *customer) eventstore.EventData {
				return c.sized(s.maxEventSize() + 1)
			}, eventstore.ErrEventTooLarge)
		}},
		{"CallerBuffersNotRetained", s.testBuffersNotRetained},
	}
}

func (s *suite) testMultiEventAppend(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	stream, c := newStream(), newCustomer()
	first := mustAppend(t, ctx, st, stream, eventstore.NoStream, c.next())
	events := append(c.batch(3), s.large(c), c.next())
	res := mustAppend(t, ctx, st, stream, eventstore.Exact(0), events...)
	if res.Version != uint64(len(events)) {
		t.Errorf("AppendResult.Version = %d, want %d (the last event's)", res.Version, len(events))
	}
	recs := mustReadStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
	if len(recs) != 1+len(events) {
		t.Fatalf("stream holds %d events, want %d", len(recs), 1+len(events))
	}
	checkLog(t, recs, true)
	for i, e := range events {
		r := recs[1+i]
		checkRecord(t, r, stream, uint64(1+i), e)
		if r.Position <= first.Position {
			t.Errorf("event %d at position %d, not after the previous append's %d", i, r.Position, first.Position)
		}
	}
	if last := recs[len(recs)-1].Position; res.Position != last {
		t.Errorf("AppendResult.Position = %d, want %d (the last event's)", res.Position, last)
	}
	if h := mustHead(t, ctx, st); h != res.Position {
		t.Errorf("Head = %d, want %d", h, res.Position)
	}
	// The global log holds the append's events together and in order.
	all := readAll(t, ctx, st, 0, 0, eventstore.Filter{})
	if err := sameRecords(all, recs); err != nil {
		t.Errorf("ReadAll differs from ReadStream: %v", err)
	}
}

// testRecordsAsWritten appends every kind of fixture, a large event and an
// event without metadata, to two interleaved streams, and compares what
// ReadStream and ReadAll return with what was written.
func (s *suite) testRecordsAsWritten(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	a, ca := newStream(), newCustomer()
	b, cb := newStream(), newCustomer()
	bare := eventstore.EventData{ID: uuid.New(), Type: typeNoteAdded, Data: []byte(`{}`)}
	type written struct {
		stream  string
		version uint64
		event   eventstore.EventData
	}
	var log []written
	add := func(stream string, events ...eventstore.EventData) {
		n := 0
		for _, w := range log {
			if w.stream == stream {
				n++
			}
		}
		mustAppend(t, ctx, st, stream, eventstore.Any, events...)
		for i, e := range events {
			log = append(log, written{stream, uint64(n + i), e})
		}
	}
	add(a, ca.batch(4)...)
	add(b, cb.next(), bare)
	add(a, s.large(ca))
	add(b, cb.batch(6)...)
	add(a, ca.batch(3)...)

	all := readAll(t, ctx, st, 0, 0, eventstore.Filter{})
	if len(all) != len(log) {
		t.Fatalf("ReadAll returned %d events, want %d", len(all), len(log))
	}
	checkLog(t, all, true)
	for i, w := range log {
		checkRecord(t, all[i], w.stream, w.version, w.event)
	}
	for _, stream := range []string{a, b} {
		recs := mustReadStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
		var want []eventstore.Record
		for _, r := range all {
			if r.Stream == stream {
				want = append(want, r)
			}
		}
		if err := sameRecords(recs, want); err != nil {
			t.Errorf("ReadStream(%q) differs from the stream's events in ReadAll: %v", stream, err)
		}
	}
}

// testBatchWritesNone appends valid events around one bad event, to a new
// stream and to an existing one: the append fails with want and writes none.
func (s *suite) testBatchWritesNone(t *testing.T, bad func(*customer) eventstore.EventData, want error) {
	ctx := testContext(t)
	st := s.newStore(t)
	existing, c := newStream(), newCustomer()
	mustAppend(t, ctx, st, existing, eventstore.NoStream, c.batch(2)...)
	fresh, cf := newStream(), newCustomer()
	before := snapshot(t, ctx, st)

	events := append(c.batch(2), bad(c), c.next())
	_, err := st.Append(ctx, existing, eventstore.Exact(1), events...)
	wantErr(t, "append with one bad event to an existing stream", err, want)

	events = append(cf.batch(2), bad(cf), cf.next())
	_, err = st.Append(ctx, fresh, eventstore.Any, events...)
	wantErr(t, "append with one bad event to a new stream", err, want)

	assertUnchanged(t, ctx, st, before)
	assertStreamLen(t, ctx, st, existing, 2)
	assertStreamLen(t, ctx, st, fresh, 0)
}

// testBuffersNotRetained checks that the store keeps its own copy of event
// data ("stored and returned byte for byte"): changing the caller's slice
// after Append, or a returned record's slice after a read, changes nothing.
func (s *suite) testBuffersNotRetained(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	stream, c := newStream(), newCustomer()
	e := c.next()
	original := bytes.Clone(e.Data)
	mustAppend(t, ctx, st, stream, eventstore.NoStream, e)
	for i := range e.Data {
		e.Data[i] = ' '
	}
	recs := mustReadStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
	if !bytes.Equal(recs[0].Data, original) {
		t.Fatalf("stored data changed with the caller's buffer after Append: %.80q", recs[0].Data)
	}
	for i := range recs[0].Data {
		recs[0].Data[i] = ' '
	}
	again := mustReadStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
	all := readAll(t, ctx, st, 0, 0, eventstore.Filter{})
	if !bytes.Equal(again[0].Data, original) || !bytes.Equal(all[0].Data, original) {
		t.Fatalf("stored data changed with a returned record's buffer")
	}
}
