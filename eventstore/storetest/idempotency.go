package storetest

import (
	"testing"

	"github.com/cxledger/cxledger/eventstore"
)

// idempotencyTests check retries: the very same append again succeeds with
// the original result and writes nothing; ids stored for anything else fail
// with ErrDuplicateEvent and write nothing. Without DurableIdempotency only
// an immediate retry is checked.
func (s *suite) idempotencyTests() []test {
	tests := []test{
		{"ImmediateRetry/Any", func(t *testing.T) { s.testImmediateRetry(t, eventstore.Any, eventstore.Any) }},
		{"ImmediateRetry/NoStream", func(t *testing.T) { s.testImmediateRetry(t, eventstore.NoStream, eventstore.NoStream) }},
		{"ImmediateRetry/OriginalExactVersion", func(t *testing.T) { s.testImmediateRetry(t, eventstore.Exact(1), eventstore.Exact(1)) }},
		{"ImmediateRetry/AnyAfterExact", func(t *testing.T) { s.testImmediateRetry(t, eventstore.Exact(1), eventstore.Any) }},
		{"ImmediateRetry/StreamExists", func(t *testing.T) { s.testImmediateRetry(t, eventstore.Exact(1), eventstore.StreamExists) }},
	}
	if !s.features.DurableIdempotency {
		return append(tests, test{"Durable", func(t *testing.T) {
			t.Log("DurableIdempotency is false: durable dedupe (retries after later appends, wrong expected version on retry, " +
				"ids reused with other content, in another stream, partially or in another order) was not checked")
		}})
	}
	return append(tests,
		test{"RetryAfterLaterAppends", s.testRetryAfterLaterAppends},
		test{"RetryWithWrongExpectedVersion", s.testRetryWrongExpected},
		test{"SameIDDifferentData", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, _ *customer) (string, []eventstore.EventData) {
				e := orig[1]
				e.Data = []byte(`{"name":"Zoë Ñúñez","city":"大阪"}`)
				return "", []eventstore.EventData{orig[0], e}
			})
		}},
		test{"SameIDDifferentType", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, _ *customer) (string, []eventstore.EventData) {
				e := orig[1]
				e.Type = typeConsentWithdrawn
				return "", []eventstore.EventData{orig[0], e}
			})
		}},
		test{"SameIDDifferentMetadata", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, _ *customer) (string, []eventstore.EventData) {
				e := orig[1]
				e.Metadata.Actor = "service:importer"
				return "", []eventstore.EventData{orig[0], e}
			})
		}},
		test{"SameIDDifferentOccurredAt", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, _ *customer) (string, []eventstore.EventData) {
				e := orig[1]
				e.Metadata.OccurredAt = e.Metadata.OccurredAt.Add(1e6) // a millisecond
				return "", []eventstore.EventData{orig[0], e}
			})
		}},
		test{"SameIDInAnotherStream", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, _ *customer) (string, []eventstore.EventData) {
				return newStream(), orig
			})
		}},
		test{"PartialOverlap/StoredThenNew", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, c *customer) (string, []eventstore.EventData) {
				return "", []eventstore.EventData{orig[1], c.next()}
			})
		}},
		test{"PartialOverlap/NewThenStored", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, c *customer) (string, []eventstore.EventData) {
				return "", []eventstore.EventData{c.next(), orig[0], orig[1]}
			})
		}},
		test{"SameIDsInAnotherOrder", func(t *testing.T) {
			s.testDuplicate(t, func(orig []eventstore.EventData, _ *customer) (string, []eventstore.EventData) {
				return "", []eventstore.EventData{orig[1], orig[0]}
			})
		}},
	)
}

// retryFixture is a stream of two events (versions 0 and 1) and, in a second
// append with expected, two more (versions 2 and 3): the append to retry.
type retryFixture struct {
	st     eventstore.Store
	stream string
	c      *customer
	events []eventstore.EventData // the second append's
	res    eventstore.AppendResult
}

func (s *suite) newRetryFixture(t *testing.T, expected eventstore.ExpectedVersion) retryFixture {
	t.Helper()
	ctx := testContext(t)
	f := retryFixture{st: s.newStore(t), stream: newStream(), c: newCustomer()}
	if expected != eventstore.NoStream {
		mustAppend(t, ctx, f.st, f.stream, eventstore.NoStream, f.c.batch(2)...)
	}
	f.events = append(f.c.batch(1), s.large(f.c))
	f.res = mustAppend(t, ctx, f.st, f.stream, expected, f.events...)
	return f
}

// retry appends f's events again and checks that the original result comes
// back and nothing is written.
func (f retryFixture) retry(t *testing.T, expected eventstore.ExpectedVersion, streamLen int) {
	t.Helper()
	ctx := testContext(t)
	before := snapshot(t, ctx, f.st)
	res, err := f.st.Append(ctx, f.stream, expected, f.events...)
	if err != nil {
		t.Fatalf("retrying the same append with expected %s: %v; want the original result", expected, err)
	}
	if res != f.res {
		t.Errorf("retry returned %+v, want the original %+v", res, f.res)
	}
	assertUnchanged(t, ctx, f.st, before)
	assertStreamLen(t, ctx, f.st, f.stream, streamLen)
}

func (s *suite) testImmediateRetry(t *testing.T, original, retry eventstore.ExpectedVersion) {
	f := s.newRetryFixture(t, original)
	n := 4
	if original == eventstore.NoStream {
		n = 2
	}
	f.retry(t, retry, n)
	f.retry(t, retry, n) // and once more
}

// testRetryAfterLaterAppends retries an append after the stream and the
// global log moved on: the retry is still recognised.
func (s *suite) testRetryAfterLaterAppends(t *testing.T) {
	ctx := testContext(t)
	f := s.newRetryFixture(t, eventstore.Exact(1))
	mustAppend(t, ctx, f.st, f.stream, eventstore.Exact(3), f.c.batch(2)...)
	mustAppend(t, ctx, f.st, newStream(), eventstore.NoStream, newCustomer().batch(3)...)
	f.retry(t, eventstore.Exact(1), 6)
	f.retry(t, eventstore.Any, 6)
	f.retry(t, eventstore.StreamExists, 6)
}

// testRetryWrongExpected retries with an expected version the original
// append could not have met: the conflict it would have met, with the
// stream's actual version.
func (s *suite) testRetryWrongExpected(t *testing.T) {
	ctx := testContext(t)
	f := s.newRetryFixture(t, eventstore.Exact(1))
	before := snapshot(t, ctx, f.st)
	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exact(0), eventstore.Exact(7)} {
		_, err := f.st.Append(ctx, f.stream, expected, f.events...)
		wantConflict(t, err, f.stream, expected, 3)
	}
	assertUnchanged(t, ctx, f.st, before)
}

// testDuplicate appends reuse's events after a stream was written: they
// reuse stored ids for something else, so the append fails with
// ErrDuplicateEvent (with expected Any and with the exact version the
// original append had) and writes nothing. An empty stream from reuse means
// the original stream.
func (s *suite) testDuplicate(t *testing.T, reuse func(orig []eventstore.EventData, c *customer) (string, []eventstore.EventData)) {
	ctx := testContext(t)
	f := s.newRetryFixture(t, eventstore.Exact(1))
	stream, events := reuse(f.events, f.c)
	if stream == "" {
		stream = f.stream
	}
	before := snapshot(t, ctx, f.st)
	for _, expected := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.Exact(1)} {
		if stream != f.stream && expected != eventstore.Any {
			expected = eventstore.NoStream
		}
		_, err := f.st.Append(ctx, stream, expected, events...)
		wantErr(t, "append reusing stored event ids for other events, expected "+expected.String(), err, eventstore.ErrDuplicateEvent)
	}
	assertUnchanged(t, ctx, f.st, before)
	assertStreamLen(t, ctx, f.st, f.stream, 4)
	if stream != f.stream {
		assertStreamLen(t, ctx, f.st, stream, 0)
	}
	// The original append is still a retry.
	f.retry(t, eventstore.Any, 4)
}
