package storetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/eventstore/storetest"
)

// The suite is tested the way mutation testing would: each mutant is
// memstore with one realistic backend bug, and the suite must fail it in
// the subtests named. TestMutant runs the suite against one mutant when
// STORETEST_MUTANT names it; TestSuiteCatchesMutants runs it in a child
// process per mutant and reads the verdict.

const mutantEnv = "STORETEST_MUTANT"

// mutant is memstore.Store with one bug injected by wrapping a method.
type mutant struct {
	*memstore.Store
	name string
	mu   sync.Mutex
	seen map[uuid.UUID]bool
}

var mutants = []struct {
	name string
	// group is the suite group to run; mustFail are subtests (below the
	// group) that must fail.
	group    string
	mustFail []string
}{
	{"untyped-conflict", "ExpectedVersion", []string{"NewStream/StreamExists", "ExistingStream/ExactStale"}},
	{"reformatted-json", "Append", []string{"RecordsReturnedAsWritten"}},
	{"nanosecond-local-times", "Append", []string{"RecordsReturnedAsWritten"}},
	{"partial-write", "Append", []string{"InvalidEventInBatchWritesNone", "OversizedEventInBatchWritesNone"}},
	{"retry-is-duplicate", "Idempotency", []string{"ImmediateRetry/Any", "RetryAfterLaterAppends"}},
	{"ignores-context", "Cancellation", []string{"Append", "ReadStream", "ReadAll", "Head"}},
	{"short-filtered-pages", "ReadAll", []string{"Filter"}},
	{"unknown-stream-is-empty", "ReadStream", []string{"UnknownStream"}},
	{"backwards-skips-from", "ReadStream", []string{"Backwards/FromMiddle", "Backwards/PagingToTheStart"}},
	{"redelivers-batches", "Subscribe", []string{"FromStartThenLive", "BatchSize"}},
	{"foreign-error-after-close", "Close", []string{"LaterCallsFail", "AppendsInFlight"}},
	{"check-then-append", "Concurrency", []string{"OptimisticLocking"}},
}

func TestSuiteCatchesMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("mutants run the suite in child processes")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMutant$/^"+m.group+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed mutant %q; it must fail %v", m.name, m.mustFail)
			}
			for _, sub := range m.mustFail {
				if !bytes.Contains(out, []byte("--- FAIL: TestMutant/"+m.group+"/"+sub+" ")) {
					t.Errorf("mutant %q: subtest %s/%s did not fail; output:\n%s", m.name, m.group, sub, tail(out, 3000))
				}
			}
		})
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip(mutantEnv + " not set: run by TestSuiteCatchesMutants")
	}
	storetest.Run(t, storetest.Features{DurableIdempotency: true, MaxEventSize: 64 << 10}, func(t *testing.T) eventstore.Store {
		s := &mutant{Store: memstore.New(memstore.Config{MaxEventSize: 64 << 10}), name: name, seen: map[uuid.UUID]bool{}}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestPassesMemstore is the control: the unmutated store passes.
func TestPassesMemstore(t *testing.T) {
	storetest.Run(t, storetest.Features{DurableIdempotency: true, MaxEventSize: 64 << 10}, func(t *testing.T) eventstore.Store {
		s := memstore.New(memstore.Config{MaxEventSize: 64 << 10})
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

var errForeignClosed = errors.New("sql: database is closed")

func (m *mutant) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	switch m.name {
	case "untyped-conflict":
		res, err := m.Store.Append(ctx, stream, expected, events...)
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			err = fmt.Errorf("append: %w", eventstore.ErrWrongExpectedVersion)
		}
		return res, err
	case "partial-write":
		for i, e := range events {
			if eventstore.ValidateAppend(stream, eventstore.Any, []eventstore.EventData{e}, 64<<10) != nil && i > 0 {
				if _, err := m.Store.Append(ctx, stream, expected, events[:i]...); err != nil {
					return eventstore.AppendResult{}, err
				}
				break
			}
		}
	case "retry-is-duplicate":
		m.mu.Lock()
		for _, e := range events {
			if m.seen[e.ID] {
				m.mu.Unlock()
				return eventstore.AppendResult{}, eventstore.ErrDuplicateEvent
			}
		}
		res, err := m.Store.Append(ctx, stream, expected, events...)
		if err == nil {
			for _, e := range events {
				m.seen[e.ID] = true
			}
		}
		m.mu.Unlock()
		return res, err
	case "ignores-context", "foreign-error-after-close":
		ctx = context.Background()
		res, err := m.Store.Append(ctx, stream, expected, events...)
		if m.name == "foreign-error-after-close" && errors.Is(err, eventstore.ErrClosed) {
			err = errForeignClosed
		}
		return res, err
	case "check-then-append":
		if v, ok := expected.IsExact(); ok {
			recs, err := m.Store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 1})
			current := int64(-1)
			if err == nil {
				current = int64(recs[0].Version)
			}
			if current != int64(v) {
				return eventstore.AppendResult{}, &eventstore.VersionConflictError{Stream: stream, Expected: expected, Actual: current}
			}
			time.Sleep(time.Millisecond) // widen the window the bug has
			expected = eventstore.Any
		}
	}
	return m.Store.Append(ctx, stream, expected, events...)
}

func (m *mutant) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	switch m.name {
	case "ignores-context":
		ctx = context.Background()
	case "unknown-stream-is-empty":
		recs, err := m.Store.ReadStream(ctx, stream, opts)
		if errors.Is(err, eventstore.ErrNotFound) {
			return nil, nil
		}
		return recs, err
	case "backwards-skips-from":
		if opts.Backwards && opts.From != eventstore.FromEnd && opts.From > 0 {
			opts.From--
		}
	case "foreign-error-after-close":
		recs, err := m.Store.ReadStream(ctx, stream, opts)
		if errors.Is(err, eventstore.ErrClosed) {
			err = errForeignClosed
		}
		return recs, err
	}
	return m.mutate(m.Store.ReadStream(ctx, stream, opts))
}

func (m *mutant) ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	switch m.name {
	case "ignores-context":
		ctx = context.Background()
	case "short-filtered-pages":
		// Filters a page of Limit events instead of reading Limit matches.
		recs, err := m.Store.ReadAll(ctx, eventstore.ReadAllOptions{After: opts.After, Limit: opts.Limit})
		return filter(recs, opts.Filter), err
	}
	return m.mutate(m.Store.ReadAll(ctx, opts))
}

func (m *mutant) Head(ctx context.Context) (uint64, error) {
	if m.name == "ignores-context" {
		ctx = context.Background()
	}
	return m.Store.Head(ctx)
}

func (m *mutant) Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error {
	if m.name == "redelivers-batches" {
		inner := handle
		handle = func(ctx context.Context, batch []eventstore.Record) error {
			if err := inner(ctx, batch); err != nil {
				return err
			}
			return inner(ctx, batch[len(batch)-1:])
		}
	}
	return m.Store.Subscribe(ctx, opts, handle)
}

// mutate applies the mutants that corrupt returned records.
func (m *mutant) mutate(recs []eventstore.Record, err error) ([]eventstore.Record, error) {
	for i := range recs {
		switch m.name {
		case "reformatted-json":
			var b bytes.Buffer
			if json.Compact(&b, recs[i].Data) == nil {
				recs[i].Data = b.Bytes()
			}
		case "nanosecond-local-times":
			recs[i].Metadata.OccurredAt = recs[i].Metadata.OccurredAt.Local().Add(7)
		}
	}
	return recs, err
}

func filter(recs []eventstore.Record, f eventstore.Filter) []eventstore.Record {
	var out []eventstore.Record
	for _, r := range recs {
		if f.Match(r) {
			out = append(out, r)
		}
	}
	return out
}
