// Package eventstore is the contract every cxledger event store implements:
// append to a stream with an expected version, read a stream, read the global
// log from a position, and subscribe to it (catch-up, then live).
//
// The package imports nothing else of cxledger. Backends live in subpackages
// named for their technology (boltstore, pgstore, kurrent) and all run the
// shared conformance suite in eventstore/storetest.
//
// Conventions shared by every backend:
//
//   - Stream versions are 0-based, as in KurrentDB: the first event of a stream
//     has version 0, so a stream holding n events is at version n-1.
//   - Global positions start at 1 and strictly increase in commit order. A
//     position, once read, is never followed by a smaller one committing later.
//     Positions may have gaps (KurrentDB commit positions do); consumers keep
//     the last position they processed and read "after" it.
//   - Times are UTC with microsecond precision; backends truncate on append so
//     that every backend returns exactly what it stored.
//   - Event data is a JSON document, stored and returned byte for byte.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Sentinel errors callers branch on with errors.Is. Backends wrap them with
// context (stream, position) and never return foreign driver errors for these
// conditions.
var (
	// ErrWrongExpectedVersion: the stream was not at the expected version.
	// The error is a *VersionConflictError carrying the actual version.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrNotFound: the stream has no events.
	ErrNotFound = errors.New("stream not found")
	// ErrInvalidEvent: the append was malformed (no events, nil or repeated
	// event id, empty or over-long type or stream name, data that is not
	// valid UTF-8 JSON). See ValidateAppend for the exact rules.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrEventTooLarge: one event's size (EventData.Size: data, type and
	// metadata strings) exceeds the store's limit.
	ErrEventTooLarge = errors.New("event too large")
	// ErrDuplicateEvent: an event id is already stored for a different event
	// (another stream, version, type or content). Retrying the very same
	// append is not a duplicate: it succeeds and writes nothing.
	ErrDuplicateEvent = errors.New("event id already used by another event")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// DefaultMaxEventSize is the default limit on one event's size (EventData.Size).
const DefaultMaxEventSize = 1 << 20

// Limits on names, enforced by ValidateAppend.
const (
	MaxStreamNameBytes = 512
	MaxTypeNameBytes   = 256
)

// ExpectedVersion is the optimistic-concurrency condition of an append: one of
// Any, NoStream, StreamExists, or an exact version made with Exact.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's state.
	Any ExpectedVersion = -2
	// NoStream requires that the stream has no events yet.
	NoStream ExpectedVersion = -1
	// StreamExists requires that the stream has at least one event.
	StreamExists ExpectedVersion = -4
)

// Exact requires that the stream's last event has version v.
func Exact(v uint64) ExpectedVersion { return ExpectedVersion(v) }

// IsExact reports whether e names an exact version, and which.
func (e ExpectedVersion) IsExact() (uint64, bool) {
	if e >= 0 {
		return uint64(e), true
	}
	return 0, false
}

// Valid reports whether e is one of the four kinds of expected version.
func (e ExpectedVersion) Valid() bool {
	return e >= 0 || e == Any || e == NoStream || e == StreamExists
}

func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	}
	if e >= 0 {
		return strconv.FormatInt(int64(e), 10)
	}
	return "invalid(" + strconv.FormatInt(int64(e), 10) + ")"
}

// Metadata says who recorded an event, when it happened in the world, through
// which channel, and why (correlation and causation). Backends store every
// field and return it unchanged (times truncated to microseconds).
type Metadata struct {
	// OccurredAt is when the touchpoint happened in the world; RecordedAt on
	// the Record is when the store accepted it.
	OccurredAt time.Time `json:"occurredAt"`
	// Actor is who recorded the event: "user:<id>", "service:<name>",
	// "import:<batch>".
	Actor string `json:"actor,omitempty"`
	// Channel is the touchpoint channel or source system.
	Channel string `json:"channel,omitempty"`
	// CorrelationID ties together every event of one business flow.
	CorrelationID string `json:"correlationId,omitempty"`
	// CausationID is the id of the event or command that caused this one.
	CausationID string `json:"causationId,omitempty"`
	// SchemaVersion is the version of the event type's payload schema.
	SchemaVersion int `json:"schemaVersion,omitempty"`
}

// EventData is an event proposed for appending.
type EventData struct {
	// ID is the event's identity and idempotency key; it must not be uuid.Nil.
	ID uuid.UUID
	// Type is the stable event type name, e.g. "PurchaseCompleted".
	Type string
	// Data is the event payload, a JSON document.
	Data []byte
	// Metadata travels with the event and is returned unchanged.
	Metadata Metadata
}

// Record is an event as stored: the proposed event plus where and when the
// store put it.
type Record struct {
	ID       uuid.UUID
	Stream   string
	Type     string
	Version  uint64 // 0-based position within the stream
	Position uint64 // global position, from 1, increasing in commit order
	// RecordedAt is the store clock when the event committed: UTC,
	// microseconds, and never smaller than the RecordedAt of an event with
	// a smaller position (backends clamp a clock that steps back).
	RecordedAt time.Time
	Data       []byte
	Metadata   Metadata
}

// AppendResult reports where an append landed.
type AppendResult struct {
	// Version is the stream's version after the append (its last event's).
	Version uint64
	// Position is the global position of the append's last event.
	Position uint64
}

// ReadStreamOptions selects a slice of one stream.
type ReadStreamOptions struct {
	// From is the first version to return (inclusive). Reading backwards,
	// FromEnd, or any version past the end, starts at the stream's last
	// event; reading forwards from past the end returns no events.
	From uint64
	// Backwards reads from From towards version 0.
	Backwards bool
	// Limit caps the number of events returned; 0 or less means
	// DefaultReadLimit.
	Limit int
}

// FromEnd, as ReadStreamOptions.From when reading backwards, starts at the
// stream's last event.
const FromEnd = ^uint64(0)

// DefaultReadLimit is used when a read's Limit is 0.
const DefaultReadLimit = 1000

// Filter restricts a read of the global log. The zero Filter matches all.
type Filter struct {
	// Types, when not empty, keeps only events of these types, compared
	// byte for byte: no pattern ("%" and "_" are characters like any
	// other), no case folding. A type no event can have (empty, not
	// UTF-8, holding NUL) matches nothing and is no error.
	Types []string
}

// StorableTypes returns f.Types without the types no event can have —
// not valid UTF-8 or holding NUL, which Append refuses — for a backend
// that cannot even compare them (PostgreSQL refuses NUL in a text
// parameter). matchAny is false when f has types but none of them is
// storable: the filter matches nothing. f.Types itself is returned when
// every type is storable.
func (f Filter) StorableTypes() (types []string, matchAny bool) {
	if !slices.ContainsFunc(f.Types, func(t string) bool { return !text(t) }) {
		return f.Types, true
	}
	for _, t := range f.Types {
		if text(t) {
			types = append(types, t)
		}
	}
	return types, len(types) > 0
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Record) bool {
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == r.Type {
			return true
		}
	}
	return false
}

// ReadAllOptions selects a page of the global log.
type ReadAllOptions struct {
	// After is the last position the caller already has: events with a
	// greater position are returned. 0 reads from the beginning.
	After uint64
	// Limit caps the number of events returned; 0 means DefaultReadLimit.
	Limit int
	// Filter keeps only matching events. A page holds Limit matching events
	// unless the end of the log was reached.
	Filter Filter
}

// SubscribeOptions says where a subscription starts and what it delivers.
type SubscribeOptions struct {
	// After is the last position the subscriber has processed (0: from the
	// beginning).
	After uint64
	// Filter keeps only matching events.
	Filter Filter
	// BatchSize caps the events handed to the handler at once; 0 means
	// DefaultReadLimit.
	BatchSize int
}

// Handler receives a subscription's events in global order, in batches of
// at least one. Returning an error stops the subscription with that error.
// The handler runs on the subscription's goroutine: a slow handler slows only
// its own subscription (the store buffers nothing for it).
type Handler func(ctx context.Context, batch []Record) error

// Store is the full contract implemented by every backend. Consumers should
// declare the smaller interface they need (an Appender, a reader) instead of
// depending on all of it.
//
// All methods are safe for concurrent use and honour context cancellation,
// returning an error that wraps ctx.Err(). An Append cancelled while the
// store was committing it may still have committed: its outcome is unknown,
// and the caller settles it by retrying with the same event ids.
type Store interface {
	// Append adds events to stream, atomically: all of them commit, at
	// consecutive versions and increasing global positions, or none does.
	//
	// The append fails with ErrWrongExpectedVersion (a *VersionConflictError)
	// when the stream is not at expected. Appending events whose ids are
	// already stored, at the same place in the same stream with the same
	// type and content, succeeds and returns the original result without
	// writing anything (an idempotent retry); ids stored for anything else
	// fail with ErrDuplicateEvent. Malformed input fails with ErrInvalidEvent
	// or ErrEventTooLarge and writes nothing.
	//
	// The checks run in this order, and the first failing one decides the
	// error: input validation, then event ids (retry or ErrDuplicateEvent),
	// then the expected version.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream returns up to opts.Limit events of one stream in version
	// order (or reverse order with opts.Backwards). A stream without events
	// fails with ErrNotFound; a From past the end returns no events.
	ReadStream(ctx context.Context, stream string, opts ReadStreamOptions) ([]Record, error)

	// ReadAll returns up to opts.Limit events of the global log with a
	// position greater than opts.After, in position order. It never returns
	// an event while an event with a smaller position may still commit.
	ReadAll(ctx context.Context, opts ReadAllOptions) ([]Record, error)

	// Head returns the global position of the last committed event (0 when
	// the store is empty).
	Head(ctx context.Context) (uint64, error)

	// Subscribe delivers every event after opts.After that matches the
	// filter to handle, exactly once and in position order: first the
	// stored history (catch-up), then new events as they commit (live). It
	// blocks until ctx is done (returning an error wrapping ctx.Err()), the
	// handler fails (returning its error) or the store closes (ErrClosed).
	Subscribe(ctx context.Context, opts SubscribeOptions, handle Handler) error

	// Close releases the store. Appends in flight finish or fail with
	// ErrClosed; subscriptions end with ErrClosed; every later call fails
	// with ErrClosed. Closing again does nothing and returns nil.
	Close() error
}

// VersionConflictError is the error of an append whose expected version did
// not match. It unwraps to ErrWrongExpectedVersion.
type VersionConflictError struct {
	Stream   string
	Expected ExpectedVersion
	// Actual is the stream's version, or -1 when it has no events.
	Actual int64
}

func (e *VersionConflictError) Error() string {
	actual := "no stream"
	if e.Actual >= 0 {
		actual = strconv.FormatInt(e.Actual, 10)
	}
	return fmt.Sprintf("append to %q: %s: expected %s, actual %s", e.Stream, ErrWrongExpectedVersion, e.Expected, actual)
}

// Unwrap makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *VersionConflictError) Unwrap() error { return ErrWrongExpectedVersion }

// CheckExpected reports whether a stream at version current (-1: no events)
// satisfies expected, returning a *VersionConflictError when it does not.
func CheckExpected(stream string, expected ExpectedVersion, current int64) error {
	ok := false
	switch {
	case expected == Any:
		ok = true
	case expected == NoStream:
		ok = current == -1
	case expected == StreamExists:
		ok = current >= 0
	case expected >= 0:
		ok = int64(expected) == current
	}
	if ok {
		return nil
	}
	return &VersionConflictError{Stream: stream, Expected: expected, Actual: current}
}

// ValidateAppend checks an append's arguments the same way for every backend:
// a stream name, a valid expected version, at least one event, non-nil and
// distinct ids, a type, valid UTF-8 JSON data, and each event within maxSize
// bytes (data plus metadata strings). Errors wrap ErrInvalidEvent or
// ErrEventTooLarge and name the offending event by index and id.
func ValidateAppend(stream string, expected ExpectedVersion, events []EventData, maxSize int) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalidEvent)
	}
	if !text(stream) || len(stream) > MaxStreamNameBytes {
		return fmt.Errorf("%w: stream name must be valid UTF-8 without NUL, at most %d bytes", ErrInvalidEvent, MaxStreamNameBytes)
	}
	if !expected.Valid() {
		return fmt.Errorf("%w: expected version %d is not any, no stream, stream exists or >= 0", ErrInvalidEvent, int64(expected))
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: append to %q has no events", ErrInvalidEvent, stream)
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxEventSize
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, e := range events {
		if e.ID == uuid.Nil {
			return fmt.Errorf("%w: event %d: id is the nil uuid", ErrInvalidEvent, i)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: event %d: id %s appears twice in one append", ErrInvalidEvent, i, e.ID)
		}
		seen[e.ID] = struct{}{}
		if e.Type == "" || len(e.Type) > MaxTypeNameBytes || !text(e.Type) {
			return fmt.Errorf("%w: event %d (%s): type must be 1 to %d bytes of UTF-8 without NUL", ErrInvalidEvent, i, e.ID, MaxTypeNameBytes)
		}
		if size := e.Size(); size > maxSize {
			return fmt.Errorf("%w: event %d (%s): %d bytes, limit %d", ErrEventTooLarge, i, e.ID, size, maxSize)
		}
		if !utf8.Valid(e.Data) || !json.Valid(e.Data) {
			return fmt.Errorf("%w: event %d (%s): data is not valid UTF-8 JSON", ErrInvalidEvent, i, e.ID)
		}
		m := e.Metadata
		for _, s := range []string{m.Actor, m.Channel, m.CorrelationID, m.CausationID} {
			if !text(s) {
				return fmt.Errorf("%w: event %d (%s): metadata is not valid UTF-8 without NUL", ErrInvalidEvent, i, e.ID)
			}
		}
	}
	return nil
}

// text reports whether s can be stored as text by every backend: valid
// UTF-8 without NUL (PostgreSQL text cannot hold NUL).
func text(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// Size is the number of bytes an event counts against the size limit: its
// data, type and metadata strings.
func (e EventData) Size() int {
	m := e.Metadata
	return len(e.Data) + len(e.Type) + len(m.Actor) + len(m.Channel) + len(m.CorrelationID) + len(m.CausationID)
}

// Normalize returns m with OccurredAt in UTC truncated to microseconds, the
// precision every backend keeps.
func (m Metadata) Normalize() Metadata {
	if !m.OccurredAt.IsZero() {
		m.OccurredAt = m.OccurredAt.UTC().Truncate(time.Microsecond)
	}
	return m
}

// Now returns the store clock reading for a new record: UTC, microseconds.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// SameEvent reports whether a stored record holds exactly the proposed event
// (id, type, data and metadata), which makes a repeated append an idempotent
// retry rather than a duplicate.
func SameEvent(r Record, e EventData) bool {
	return r.ID == e.ID && r.Type == e.Type && string(r.Data) == string(e.Data) && r.Metadata.equal(e.Metadata.Normalize())
}

func (m Metadata) equal(o Metadata) bool {
	return m.OccurredAt.Equal(o.OccurredAt) && m.Actor == o.Actor && m.Channel == o.Channel &&
		m.CorrelationID == o.CorrelationID && m.CausationID == o.CausationID && m.SchemaVersion == o.SchemaVersion
}

// ResolveRetry decides what an append means when some of its event ids may
// already be stored; every backend calls it so that retries behave alike.
// stored[i] is the record already stored under events[i].ID, or nil; current
// is the stream's version (-1: no events).
//
//   - No id stored: retry is false and err nil; the caller appends normally.
//   - Every id stored, in this stream, at consecutive versions, with the same
//     content, and expected matching the stream as it was before them: an
//     idempotent retry. retry is true and res is the original result.
//   - Every id stored like that but expected not matching the stream as it
//     was before them: a *VersionConflictError carrying the stream's
//     current version.
//
// Append boundaries are not stored, so a retry of any consecutive run of
// one stream's events (part of an earlier append, or parts of two) is
// recognised as a retry and answers with that run's last version and
// position. KurrentDB behaves the same way.
//   - Anything else (some ids stored, other streams, other content, other
//     order): ErrDuplicateEvent naming the first offending id.
func ResolveRetry(stream string, expected ExpectedVersion, current int64, events []EventData, stored []*Record) (res AppendResult, retry bool, err error) {
	found := 0
	for _, r := range stored {
		if r != nil {
			found++
		}
	}
	if found == 0 {
		return AppendResult{}, false, nil
	}
	for i, e := range events {
		r := stored[i]
		switch {
		case r == nil:
			return AppendResult{}, false, fmt.Errorf("%w: append to %q repeats some stored event ids but not event %d (%s)", ErrDuplicateEvent, stream, i, e.ID)
		case r.Stream != stream:
			return AppendResult{}, false, fmt.Errorf("%w: event %s is stored in stream %q", ErrDuplicateEvent, e.ID, r.Stream)
		case r.Version != stored[0].Version+uint64(i):
			return AppendResult{}, false, fmt.Errorf("%w: event %s is stored at version %d, not in this append's order", ErrDuplicateEvent, e.ID, r.Version)
		case !SameEvent(*r, e):
			return AppendResult{}, false, fmt.Errorf("%w: event %s is stored with different type, data or metadata", ErrDuplicateEvent, e.ID)
		}
	}
	if err := CheckExpected(stream, expected, int64(stored[0].Version)-1); err != nil {
		return AppendResult{}, false, &VersionConflictError{Stream: stream, Expected: expected, Actual: current}
	}
	last := stored[len(stored)-1]
	return AppendResult{Version: last.Version, Position: last.Position}, true, nil
}
