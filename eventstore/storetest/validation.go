package storetest

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

// appendArgs are the arguments of one Append.
type appendArgs struct {
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
}

// validationTests check that malformed appends fail with ErrInvalidEvent or
// ErrEventTooLarge and write nothing, to a new stream as to an existing one,
// and that an event exactly at the size limit fits.
func (s *suite) validationTests() []test {
	invalid := []struct {
		name  string
		want  error
		spoil func(a *appendArgs, c *customer)
	}{
		{"EmptyStream", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.stream = "" }},
		{"StreamNotUTF8", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.stream += "-\xff\xfe" }},
		{"NilID", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].ID = uuid.Nil }},
		{"DuplicateIDInAppend", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[2].ID = a.events[0].ID }},
		{"DuplicateEventInAppend", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[2] = a.events[0] }},
		{"EmptyType", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].Type = "" }},
		{"TypeNotUTF8", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].Type = "Kund\xe9Registered" }},
		{"DataNotJSON", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].Data = []byte(`{"name": "Zoë", "city":`) }},
		{"DataNotAJSONDocument", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].Data = []byte(`{"a":1} {"b":2}`) }},
		{"DataEmpty", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].Data = nil }},
		{"DataNotUTF8", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].Data = []byte("{\"name\":\"Zo\xeb N\xfa\xf1ez\"}") }},
		{"MetadataNotUTF8", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events[1].Metadata.Channel = "store:\x93Tokyo\x94" }},
		{"NoEvents", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.events = nil }},
		{"InvalidExpectedVersion/-3", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.expected = -3 }},
		{"InvalidExpectedVersion/-5", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.expected = -5 }},
		{"InvalidExpectedVersion/MinInt64", eventstore.ErrInvalidEvent, func(a *appendArgs, _ *customer) { a.expected = -1 << 63 }},
		{"DataJustOverLimit", eventstore.ErrEventTooLarge, func(a *appendArgs, c *customer) { a.events[1] = c.sized(s.maxEventSize() + 1) }},
		{"MetadataOverLimit", eventstore.ErrEventTooLarge, func(a *appendArgs, c *customer) {
			e := c.next()
			rest := e.Size() - len(e.Metadata.CorrelationID)
			e.Metadata.CorrelationID = strings.Repeat("ü", (s.maxEventSize()-rest)/2+1) // 2 bytes each
			a.events[1] = e
		}},
	}
	var tests []test
	for _, tc := range invalid {
		tests = append(tests, test{tc.name, func(t *testing.T) {
			ctx := testContext(t)
			st := s.newStore(t)
			existing, c := newStream(), newCustomer()
			mustAppend(t, ctx, st, existing, eventstore.NoStream, c.batch(2)...)
			fresh := newStream()
			before := snapshot(t, ctx, st)
			for _, a := range []appendArgs{
				{existing, eventstore.Exact(1), c.batch(3)},
				{fresh, eventstore.NoStream, newCustomer().batch(3)},
				{fresh, eventstore.Any, newCustomer().batch(3)},
			} {
				tc.spoil(&a, c)
				_, err := st.Append(ctx, a.stream, a.expected, a.events...)
				wantErr(t, tc.name+" (expected "+a.expected.String()+")", err, tc.want)
			}
			assertUnchanged(t, ctx, st, before)
			assertStreamLen(t, ctx, st, existing, 2)
			assertStreamLen(t, ctx, st, fresh, 0)
		}})
	}
	return append(tests, test{"ExactlyAtLimitFits", s.testAtLimit})
}

// testAtLimit appends an event whose data, type and metadata strings are
// exactly MaxEventSize bytes: it is stored and returned byte for byte.
func (s *suite) testAtLimit(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	stream, c := newStream(), newCustomer()
	e := c.sized(s.maxEventSize())
	if e.Size() != s.maxEventSize() {
		t.Fatalf("fixture: event of %d bytes, want %d", e.Size(), s.maxEventSize())
	}
	events := []eventstore.EventData{c.next(), e, c.next()}
	res := mustAppend(t, ctx, st, stream, eventstore.NoStream, events...)
	if res.Version != 2 {
		t.Errorf("AppendResult.Version = %d, want 2", res.Version)
	}
	recs := mustReadStream(t, ctx, st, stream, eventstore.ReadStreamOptions{})
	if len(recs) != len(events) {
		t.Fatalf("stream holds %d events, want %d", len(recs), len(events))
	}
	for i, e := range events {
		checkRecord(t, recs[i], stream, uint64(i), e)
	}
}
