package storetest

import (
	"errors"
	"testing"

	"github.com/cxledger/cxledger/eventstore"
)

// readFixture is a store with a stream of ten events (a large one among
// them) written in three appends, interleaved with another stream.
type readFixture struct {
	st     eventstore.Store
	stream string
	events []eventstore.EventData
}

func (s *suite) newReadFixture(t *testing.T) readFixture {
	t.Helper()
	ctx := testContext(t)
	f := readFixture{st: s.newStore(t), stream: newStream()}
	c, other, oc := newCustomer(), newStream(), newCustomer()
	appends := [][]eventstore.EventData{c.batch(3), append([]eventstore.EventData{c.next(), s.large(c)}, c.batch(2)...), c.batch(3)}
	for i, events := range appends {
		mustAppend(t, ctx, f.st, f.stream, eventstore.Any, events...)
		mustAppend(t, ctx, f.st, other, eventstore.Any, oc.batch(i+1)...)
		f.events = append(f.events, events...)
	}
	return f
}

// read reads f's stream with opts and checks that it returns the events at
// versions want, in that order.
func (f readFixture) read(t *testing.T, opts eventstore.ReadStreamOptions, want ...uint64) []eventstore.Record {
	t.Helper()
	recs := mustReadStream(t, testContext(t), f.st, f.stream, opts)
	got := make([]uint64, len(recs))
	for i, r := range recs {
		got[i] = r.Version
	}
	if len(got) != len(want) {
		t.Fatalf("ReadStream(%+v) returned versions %v, want %v", opts, got, want)
	}
	for i, r := range recs {
		if r.Version != want[i] {
			t.Fatalf("ReadStream(%+v) returned versions %v, want %v", opts, got, want)
		}
		checkRecord(t, r, f.stream, want[i], f.events[want[i]])
	}
	return recs
}

// versions returns from, from+step, ... for n numbers.
func versions(from uint64, step int, n int) []uint64 {
	v := make([]uint64, n)
	for i := range v {
		v[i] = uint64(int64(from) + int64(step*i))
	}
	return v
}

// readStreamTests check ReadStream forwards and backwards, from the ends and
// the middle, with limits and paging, past the end and on unknown streams.
func (s *suite) readStreamTests() []test {
	return []test{
		{"Forwards/FromStart", func(t *testing.T) {
			f := s.newReadFixture(t)
			recs := f.read(t, eventstore.ReadStreamOptions{}, versions(0, 1, 10)...)
			checkLog(t, recs, true)
			all := readAll(t, testContext(t), f.st, 0, 0, eventstore.Filter{})
			var want []eventstore.Record
			for _, r := range all {
				if r.Stream == f.stream {
					want = append(want, r)
				}
			}
			if err := sameRecords(recs, want); err != nil {
				t.Errorf("ReadStream differs from the stream's events in ReadAll: %v", err)
			}
		}},
		{"Forwards/FromMiddle", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 4}, versions(4, 1, 6)...)
		}},
		{"Forwards/FromLast", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 9}, 9)
		}},
		{"Forwards/Limit", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 2, Limit: 3}, 2, 3, 4)
			f.read(t, eventstore.ReadStreamOptions{From: 8, Limit: 5}, 8, 9)
		}},
		{"Forwards/PagingToTheEnd", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 0, Limit: 3}, 0, 1, 2)
			f.read(t, eventstore.ReadStreamOptions{From: 3, Limit: 3}, 3, 4, 5)
			f.read(t, eventstore.ReadStreamOptions{From: 6, Limit: 3}, 6, 7, 8)
			f.read(t, eventstore.ReadStreamOptions{From: 9, Limit: 3}, 9)
			f.read(t, eventstore.ReadStreamOptions{From: 10, Limit: 3})
		}},
		{"Forwards/PastTheEnd", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 10})
			f.read(t, eventstore.ReadStreamOptions{From: 11, Limit: 5})
			f.read(t, eventstore.ReadStreamOptions{From: 1 << 40})
		}},
		{"Backwards/FromEnd", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true}, versions(9, -1, 10)...)
		}},
		{"Backwards/FromMiddle", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 5, Backwards: true}, 5, 4, 3, 2, 1, 0)
		}},
		{"Backwards/FromLast", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 9, Backwards: true}, versions(9, -1, 10)...)
		}},
		{"Backwards/FromZero", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: 0, Backwards: true}, 0)
		}},
		{"Backwards/Limit", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 2}, 9, 8)
			f.read(t, eventstore.ReadStreamOptions{From: 1, Backwards: true, Limit: 5}, 1, 0)
		}},
		{"Backwards/PagingToTheStart", func(t *testing.T) {
			f := s.newReadFixture(t)
			f.read(t, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 4}, 9, 8, 7, 6)
			f.read(t, eventstore.ReadStreamOptions{From: 5, Backwards: true, Limit: 4}, 5, 4, 3, 2)
			f.read(t, eventstore.ReadStreamOptions{From: 1, Backwards: true, Limit: 4}, 1, 0)
		}},
		{"UnknownStream", func(t *testing.T) {
			f := s.newReadFixture(t)
			ctx := testContext(t)
			unknown := newStream()
			for _, opts := range []eventstore.ReadStreamOptions{{}, {From: 3, Limit: 2}, {From: eventstore.FromEnd, Backwards: true}} {
				recs, err := f.st.ReadStream(ctx, unknown, opts)
				if !errors.Is(err, eventstore.ErrNotFound) {
					t.Errorf("ReadStream(unknown stream, %+v) = %d events, %v; want ErrNotFound", opts, len(recs), err)
				}
			}
		}},
	}
}

// logFixture is a store holding three customers' streams, appended in turns,
// and the records as the global log returns them.
type logFixture struct {
	st  eventstore.Store
	all []eventstore.Record
}

func (s *suite) newLogFixture(t *testing.T) logFixture {
	t.Helper()
	ctx := testContext(t)
	f := logFixture{st: s.newStore(t)}
	type writtenEvent struct {
		stream string
		e      eventstore.EventData
	}
	var written []writtenEvent
	streams := []string{newStream(), newStream(), newStream()}
	customers := []*customer{newCustomer(), newCustomer(), newCustomer()}
	versions := make([]uint64, len(streams))
	for round := range 4 {
		for i, stream := range streams {
			events := customers[i].batch(1 + (round+i)%3)
			if round == 2 && i == 1 {
				events = append(events, s.large(customers[i]))
			}
			mustAppend(t, ctx, f.st, stream, eventstore.Any, events...)
			for _, e := range events {
				written = append(written, writtenEvent{stream, e})
			}
		}
	}
	f.all = readAll(t, ctx, f.st, 0, 0, eventstore.Filter{})
	if len(f.all) != len(written) {
		t.Fatalf("ReadAll returned %d events, want the %d appended", len(f.all), len(written))
	}
	for i, w := range written {
		idx := 0
		for j := range streams {
			if streams[j] == w.stream {
				idx = j
			}
		}
		checkRecord(t, f.all[i], w.stream, versions[idx], w.e)
		versions[idx]++
	}
	checkLog(t, f.all, true)
	return f
}

// readAllTests check ReadAll from the start and the middle, paging, and
// type filters.
func (s *suite) readAllTests() []test {
	return []test{
		{"EmptyStore", func(t *testing.T) {
			st := s.newStore(t)
			recs, err := st.ReadAll(testContext(t), eventstore.ReadAllOptions{})
			if err != nil || len(recs) != 0 {
				t.Fatalf("ReadAll of an empty store = %d events, %v; want none, no error", len(recs), err)
			}
		}},
		{"FromStart", func(t *testing.T) {
			s.newLogFixture(t) // checks every record in order
		}},
		{"FromMiddle", func(t *testing.T) {
			f := s.newLogFixture(t)
			for _, i := range []int{0, 6, len(f.all) - 2} {
				got := readAll(t, testContext(t), f.st, f.all[i].Position, 0, eventstore.Filter{})
				if err := sameRecords(got, f.all[i+1:]); err != nil {
					t.Errorf("ReadAll after position %d: %v", f.all[i].Position, err)
				}
			}
		}},
		{"AfterHead", func(t *testing.T) {
			f := s.newLogFixture(t)
			head := mustHead(t, testContext(t), f.st)
			afters := []uint64{head, head + 1, head + 1000}
			if s.features.AfterOnlyStoredPositions {
				t.Log("AfterOnlyStoredPositions is true: ReadAll after positions past the head that no event has (head+1, head+1000) was not checked")
				afters = afters[:1]
			}
			for _, after := range afters {
				recs, err := f.st.ReadAll(testContext(t), eventstore.ReadAllOptions{After: after})
				if err != nil || len(recs) != 0 {
					t.Errorf("ReadAll after %d (head %d) = %d events, %v; want none, no error", after, head, len(recs), err)
				}
			}
		}},
		{"Paging", func(t *testing.T) {
			f := s.newLogFixture(t)
			for _, limit := range []int{1, 4, 5, len(f.all), len(f.all) + 1} {
				got := readAll(t, testContext(t), f.st, 0, limit, eventstore.Filter{})
				if err := sameRecords(got, f.all); err != nil {
					t.Errorf("ReadAll in pages of %d: %v", limit, err)
				}
			}
			first, err := f.st.ReadAll(testContext(t), eventstore.ReadAllOptions{Limit: 3})
			if err != nil || len(first) != 3 {
				t.Fatalf("ReadAll(limit 3) = %d events, %v; want 3", len(first), err)
			}
		}},
		{"Filter", func(t *testing.T) {
			f := s.newLogFixture(t)
			for _, filter := range []eventstore.Filter{
				{Types: []string{typePurchaseCompleted}},
				{Types: []string{typeConsentGranted, typeConsentWithdrawn, typeCallTranscribed}},
				{Types: []string{typeCustomerRegistered, typeEmailVerified, typeConsentGranted, typePurchaseCompleted, typeTicketOpened, typeNoteAdded, typeConsentWithdrawn, typeCallTranscribed}},
			} {
				want := filtered(f.all, filter)
				if len(want) == 0 {
					t.Fatalf("fixture: no events of types %v", filter.Types)
				}
				for _, limit := range []int{0, 1, 2, 3} {
					got := readAll(t, testContext(t), f.st, 0, limit, filter)
					if err := sameRecords(got, want); err != nil {
						t.Errorf("ReadAll(types %v, pages of %d): %v", filter.Types, limit, err)
					}
				}
				// From the middle of the log.
				after := f.all[len(f.all)/2].Position
				got := readAll(t, testContext(t), f.st, after, 2, filter)
				var wantAfter []eventstore.Record
				for _, r := range want {
					if r.Position > after {
						wantAfter = append(wantAfter, r)
					}
				}
				if err := sameRecords(got, wantAfter); err != nil {
					t.Errorf("ReadAll(types %v, after %d): %v", filter.Types, after, err)
				}
			}
		}},
		{"FilterIsLiteral", func(t *testing.T) {
			// Types are compared byte for byte: LIKE wildcards, case,
			// and types no event can have (NUL, invalid UTF-8) match
			// nothing and are no error — on PostgreSQL too, which
			// refuses NUL in text.
			f := s.newLogFixture(t)
			purchases := filtered(f.all, eventstore.Filter{Types: []string{typePurchaseCompleted}})
			if len(purchases) == 0 {
				t.Fatal("fixture: no purchases")
			}
			for _, typ := range []string{"%", "_", "%%", "Purchase%", "P_rchaseCompleted", "purchasecompleted", "PURCHASECOMPLETED",
				typePurchaseCompleted + "%", typePurchaseCompleted + " ", "\x00", typePurchaseCompleted + "\x00", "\xff", "Purchase\xffCompleted"} {
				recs, err := f.st.ReadAll(testContext(t), eventstore.ReadAllOptions{Filter: eventstore.Filter{Types: []string{typ}}})
				if err != nil || len(recs) != 0 {
					t.Errorf("ReadAll(type %q) = %d events, %v; want none, no error", typ, len(recs), err)
				}
			}
			got := readAll(t, testContext(t), f.st, 0, 2, eventstore.Filter{Types: []string{"\x00", "%", typePurchaseCompleted, "\xfe"}})
			if err := sameRecords(got, purchases); err != nil {
				t.Errorf("ReadAll(NUL, %%, %s, invalid UTF-8): %v", typePurchaseCompleted, err)
			}
		}},
		{"FilterMatchingNothing", func(t *testing.T) {
			f := s.newLogFixture(t)
			recs, err := f.st.ReadAll(testContext(t), eventstore.ReadAllOptions{Filter: eventstore.Filter{Types: []string{"CustomerTeleported"}}})
			if err != nil || len(recs) != 0 {
				t.Errorf("ReadAll(type nobody wrote) = %d events, %v; want none, no error", len(recs), err)
			}
		}},
	}
}

// headTests check Head on an empty store and after appends.
func (s *suite) headTests() []test {
	return []test{
		{"EmptyStore", func(t *testing.T) {
			st := s.newStore(t)
			if h := mustHead(t, testContext(t), st); h != 0 {
				t.Errorf("Head of an empty store = %d, want 0", h)
			}
		}},
		{"AfterAppends", func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			c := newCustomer()
			streams := []string{newStream(), newStream()}
			var last uint64
			for i := range 5 {
				res := mustAppend(t, ctx, st, streams[i%2], eventstore.Any, c.batch(1+i%3)...)
				if res.Position <= last {
					t.Errorf("append %d landed at position %d, not after %d", i, res.Position, last)
				}
				last = res.Position
				if h := mustHead(t, ctx, st); h != res.Position {
					t.Errorf("Head after append %d = %d, want its position %d", i, h, res.Position)
				}
			}
			all := readAll(t, ctx, st, 0, 0, eventstore.Filter{})
			if h := mustHead(t, ctx, st); len(all) == 0 || all[len(all)-1].Position != h {
				t.Errorf("Head = %d is not the last position of the log", h)
			}
		}},
	}
}
