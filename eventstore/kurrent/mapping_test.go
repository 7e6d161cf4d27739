package kurrent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

// esdbError builds the client's error with a code. The client exports no
// constructor for it (only the server's answers make one), so the test sets
// the unexported fields of the pinned v4.2.0 type; a renamed field panics
// here rather than letting the mapping go untested.
func esdbError(code esdb.ErrorCode, msg string) error {
	e := &esdb.Error{}
	v := reflect.ValueOf(e).Elem()
	set := func(name string, val any) {
		f := v.FieldByName(name)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(val))
	}
	set("code", code)
	set("err", errors.New(msg))
	return e
}

func TestGlobalPosition(t *testing.T) {
	// A gRPC append of three events: commit == prepare for each.
	modern := []esdb.Position{{Commit: 1000, Prepare: 1000}, {Commit: 1180, Prepare: 1180}, {Commit: 1337, Prepare: 1337}}
	// An old explicit transaction: one commit record after three prepares.
	legacy := []esdb.Position{{Commit: 2400, Prepare: 2000}, {Commit: 2400, Prepare: 2150}, {Commit: 2400, Prepare: 2290}}
	for name, positions := range map[string][]esdb.Position{"implicit": modern, "explicit commit": legacy} {
		var prev uint64
		for i, p := range positions {
			g := globalPosition(p)
			if g <= prev {
				t.Errorf("%s: event %d at %+v maps to %d, not after %d: events of one append must be told apart", name, i, p, g, prev)
			}
			prev = g
			if g == 0 {
				t.Errorf("%s: position 0 is reserved for 'from the beginning'", name)
			}
			want := esdb.Position{Commit: p.Prepare, Prepare: p.Prepare}
			if got := allPosition(g); got != want {
				t.Errorf("%s: allPosition(%d) = %+v, want %+v (the event's own record, read inclusively)", name, g, got, want)
			}
		}
	}
	if got := globalPosition(esdb.Position{}); got != 1 {
		t.Errorf("globalPosition(log offset 0) = %d, want 1: positions start at 1", got)
	}
	if _, ok := allPosition(0).(esdb.Start); !ok {
		t.Errorf("allPosition(0) = %#v, want esdb.Start", allPosition(0))
	}
}

func TestExpectedRevision(t *testing.T) {
	cases := []struct {
		in   eventstore.ExpectedVersion
		want esdb.ExpectedRevision
	}{
		{eventstore.Any, esdb.Any{}},
		{eventstore.NoStream, esdb.NoStream{}},
		{eventstore.StreamExists, esdb.StreamExists{}},
		{eventstore.Exact(0), esdb.Revision(0)},
		{eventstore.Exact(41), esdb.Revision(41)},
		{eventstore.Exact(1 << 62), esdb.Revision(1 << 62)},
	}
	for _, c := range cases {
		got, err := expectedRevision(c.in)
		if err != nil || got != c.want {
			t.Errorf("expectedRevision(%s) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []eventstore.ExpectedVersion{-3, -5, -1 << 63} {
		if _, err := expectedRevision(bad); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("expectedRevision(%d) error = %v, want ErrInvalidEvent", int64(bad), err)
		}
	}
}

func TestMetadataEncoding(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	m := eventstore.Metadata{
		OccurredAt:    time.Date(2025, 3, 14, 9, 26, 53, 589_793_238, tokyo),
		Actor:         "user:ana",
		Channel:       "store:東京-渋谷",
		CorrelationID: uuid.NewString(),
		CausationID:   uuid.NewString(),
		SchemaVersion: 2,
	}
	b, err := encodeMetadata(m)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("metadata is not a JSON object other tools can read: %v", err)
	}
	// KurrentDB's own names, so that its projections and UI see them.
	if raw["$correlationId"] != m.CorrelationID || raw["$causationId"] != m.CausationID {
		t.Errorf("metadata %s: correlation and causation not under $correlationId / $causationId", b)
	}
	if raw["occurredAt"] != "2025-03-14T00:26:53.589793Z" {
		t.Errorf("occurredAt = %v, want UTC with exactly microseconds", raw["occurredAt"])
	}
	if raw["actor"] != "user:ana" || raw["channel"] != "store:東京-渋谷" || raw["schemaVersion"] != 2.0 {
		t.Errorf("metadata %s lacks actor, channel or schemaVersion", b)
	}
	got, err := decodeMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := m.Normalize(); got != want || got.OccurredAt.Location() != time.UTC {
		t.Errorf("round trip = %+v, want %+v in UTC", got, want)
	}

	// No metadata at all: nothing but an empty object, and back to zero.
	b, err = encodeMetadata(eventstore.Metadata{})
	if err != nil || string(b) != "{}" {
		t.Errorf("empty metadata encodes as %s, %v; want {}", b, err)
	}
	for _, in := range []string{"", "{}", `{"$correlationId":"","tool":"kurrentdb-ui"}`} {
		if got, err := decodeMetadata([]byte(in)); err != nil || got != (eventstore.Metadata{}) {
			t.Errorf("decodeMetadata(%q) = %+v, %v; want the zero Metadata", in, got, err)
		}
	}
	for _, in := range []string{"not json", `{"occurredAt":"yesterday"}`, `{"schemaVersion":"two"}`} {
		if _, err := decodeMetadata([]byte(in)); err == nil {
			t.Errorf("decodeMetadata(%q) succeeded; metadata we cannot read must be reported", in)
		}
	}
}

func TestRecordedAt(t *testing.T) {
	// The server's created time has 100 ns ticks; the contract keeps µs.
	created := time.Unix(1_741_900_000, 123_456_700).In(time.FixedZone("X", 3600))
	got := recordedAt(created)
	if got.Location() != time.UTC || got.Nanosecond()%1000 != 0 || created.Sub(got) >= time.Microsecond || got.After(created) {
		t.Errorf("recordedAt(%v) = %v, want UTC truncated to µs", created, got)
	}
}

func TestToRecord(t *testing.T) {
	data := []byte(`{"name":"Zoë"}`)
	meta, _ := encodeMetadata(eventstore.Metadata{Actor: "service:ingest"})
	ev := &esdb.RecordedEvent{
		EventID: uuid.New(), EventType: "CustomerRegistered", StreamID: "tenant1-customer-42",
		EventNumber: 7, Position: esdb.Position{Commit: 5000, Prepare: 5000},
		CreatedDate: time.Unix(1_700_000_000, 123_456_789), Data: data, UserMetadata: meta,
	}
	r, err := toRecord(ev, "tenant1-")
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream != "customer-42" || r.Version != 7 || r.Position != 5001 || r.ID != ev.EventID || r.Type != ev.EventType {
		t.Errorf("record = %+v", r)
	}
	if !r.RecordedAt.Equal(time.Unix(1_700_000_000, 123_456_000)) || r.Metadata.Actor != "service:ingest" {
		t.Errorf("record time/metadata = %v %+v", r.RecordedAt, r.Metadata)
	}
	data[0] = ' '
	if r.Data[0] != '{' {
		t.Error("record shares the client's data buffer")
	}
	ev.UserMetadata = []byte("garbage")
	if _, err := toRecord(ev, ""); err == nil || !strings.Contains(err.Error(), ev.EventID.String()) {
		t.Errorf("unreadable metadata: error %v, want one naming the event", err)
	}
}

func TestIsSystemAndFilter(t *testing.T) {
	for _, c := range []struct {
		stream, typ string
		want        bool
	}{
		{"customer-1", "CallLogged", false},
		{"$stats-127.0.0.1:2113", "$statsCollected", true},
		{"$$customer-1", "$metadata", true},
		{"customer-1", "$>", true},
	} {
		if got := isSystem(c.stream, c.typ); got != c.want {
			t.Errorf("isSystem(%q, %q) = %v, want %v", c.stream, c.typ, got, c.want)
		}
	}
	if f := subscriptionFilter(""); f.Type != esdb.EventFilterType || f.Regex != `^[^\$].*` {
		t.Errorf("filter without prefix = %+v, want the server's system-event exclusion", f)
	}
	if f := subscriptionFilter("t1-"); f.Type != esdb.StreamFilterType || len(f.Prefixes) != 1 || f.Prefixes[0] != "t1-" {
		t.Errorf("filter with prefix = %+v, want a stream-prefix filter", f)
	}
	s := &Store{opts: Options{StreamPrefix: "t1-"}}
	if !s.ours(&esdb.RecordedEvent{StreamID: "t1-customer-1", EventType: "NoteAdded"}) ||
		s.ours(&esdb.RecordedEvent{StreamID: "t2-customer-1", EventType: "NoteAdded"}) {
		t.Error("ours must keep exactly the store's prefix")
	}
}

func TestActualFromConflict(t *testing.T) {
	for _, c := range []struct {
		msg    string
		want   int64
		wantOK bool
	}{
		{"wrong expected version: expecting '1' but got '3'", 3, true},
		{"wrong expected version: expecting 'no_stream' but got '0'", 0, true},
		{"wrong expected version: expecting 'stream_exists' but got 'no_stream'", -1, true},
		{"wrong expected version", 0, false},
		{"wrong expected version: expecting '1' but got '-7'", 0, false},
	} {
		got, ok := actualFromConflict(errors.New(c.msg))
		if got != c.want || ok != c.wantOK {
			t.Errorf("actualFromConflict(%q) = %d, %v; want %d, %v", c.msg, got, ok, c.want, c.wantOK)
		}
	}
}

func TestErrorCodeFindsWrappedErrors(t *testing.T) {
	inner := esdbError(esdb.ErrorCodeWrongExpectedVersion, "x")
	wrapped := fmt.Errorf("could not append: %w", inner)
	if code, ok := errorCode(wrapped); !ok || code != esdb.ErrorCodeWrongExpectedVersion {
		t.Errorf("errorCode(wrapped) = %v, %v; want the wrapped code", code, ok)
	}
	// What the style guide warns of: FromError misses the wrapped error.
	if e, _ := esdb.FromError(wrapped); e.Code() == esdb.ErrorCodeWrongExpectedVersion {
		t.Log("esdb.FromError now finds wrapped errors; errorCode still works")
	}
	if _, ok := errorCode(errors.New("plain")); ok {
		t.Error("errorCode found a code in a plain error")
	}
}

func TestMapError(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	cases := []struct {
		name   string
		ctx    context.Context
		closed bool
		err    error
		want   error
	}{
		{"cancelled context wins", cancelled, false, esdbError(esdb.ErrorCodeUnknown, "rpc error: code = Canceled"), context.Canceled},
		{"closed store", live, true, esdbError(esdb.ErrorUnavailable, "transport closing"), eventstore.ErrClosed},
		{"closed connection", live, false, esdbError(esdb.ErrorCodeConnectionClosed, ""), eventstore.ErrClosed},
		{"stream not found", live, false, esdbError(esdb.ErrorCodeResourceNotFound, "stream 'x' is not found"), eventstore.ErrNotFound},
		{"stream deleted", live, false, fmt.Errorf("read: %w", esdbError(esdb.ErrorCodeStreamDeleted, "")), eventstore.ErrNotFound},
		{"deadline", live, false, esdbError(esdb.ErrorCodeDeadlineExceeded, ""), context.DeadlineExceeded},
		{"append size", live, false, esdbError(esdb.ErrorCodeUnknown, "Maximum Append Size of 1048576 Exceeded."), eventstore.ErrEventTooLarge},
	}
	for _, c := range cases {
		got := mapError(c.ctx, c.closed, "op", c.err)
		if !errors.Is(got, c.want) {
			t.Errorf("%s: mapError = %v, want an error wrapping %v", c.name, got, c.want)
		}
		if !strings.HasPrefix(got.Error(), "kurrent: op: ") {
			t.Errorf("%s: %q does not name the backend and operation", c.name, got)
		}
	}
	other := esdbError(esdb.ErrorCodeAccessDenied, "no ACL")
	if got := mapError(live, false, "op", other); !errors.Is(got, other) {
		t.Errorf("unmapped error %v is not wrapped (%v)", other, got)
	}
}

func TestAppendErrorConflict(t *testing.T) {
	s := &Store{closed: make(chan struct{})}
	for _, c := range []struct {
		msg    string
		actual int64
	}{
		{"wrong expected version: expecting '1' but got '3'", 3},
		{"wrong expected version: expecting 'stream_exists' but got 'no_stream'", -1},
	} {
		err := s.appendError(context.Background(), "append", "customer-1", eventstore.Exact(1),
			fmt.Errorf("append: %w", esdbError(esdb.ErrorCodeWrongExpectedVersion, c.msg)))
		var vc *eventstore.VersionConflictError
		if !errors.As(err, &vc) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			t.Fatalf("appendError(%q) = %v, want a *VersionConflictError", c.msg, err)
		}
		if vc.Stream != "customer-1" || vc.Expected != eventstore.Exact(1) || vc.Actual != c.actual {
			t.Errorf("conflict = %+v, want actual %d", vc, c.actual)
		}
	}
	err := s.appendError(context.Background(), "append", "customer-1", eventstore.Any, esdbError(esdb.ErrorCodeStreamDeleted, ""))
	if err == nil || errors.Is(err, eventstore.ErrWrongExpectedVersion) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("append to a deleted stream: %v", err)
	}
}

func TestValidate(t *testing.T) {
	opts := Options{}
	opts.setDefaults()
	s := &Store{opts: opts}
	ev := func(typ string, size int) eventstore.EventData {
		return eventstore.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{"n":"` + strings.Repeat("z", size) + `"}`)}
	}
	if _, err := s.validate("$customer-1", eventstore.Any, []eventstore.EventData{ev("NoteAdded", 1)}); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("system stream name: %v, want ErrInvalidEvent", err)
	}
	if _, err := s.validate("customer-1", eventstore.Any, []eventstore.EventData{ev("$metadata", 1)}); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Errorf("system event type: %v, want ErrInvalidEvent", err)
	}
	big := []eventstore.EventData{ev("NoteAdded", 600<<10), ev("NoteAdded", 600<<10)}
	if _, err := s.validate("customer-1", eventstore.Any, big); !errors.Is(err, eventstore.ErrEventTooLarge) {
		t.Errorf("append over MaxAppendSize: %v, want ErrEventTooLarge", err)
	}
	out, err := s.validate("customer-1", eventstore.Exact(3), []eventstore.EventData{ev("NoteAdded", 10)})
	if err != nil || len(out) != 1 || out[0].ContentType != esdb.ContentTypeJson || out[0].EventType != "NoteAdded" {
		t.Errorf("valid append: %+v, %v", out, err)
	}
	if err := (Options{StreamPrefix: "$ce-"}).Validate(); err == nil {
		t.Error("a $ stream prefix must be refused")
	}
}

func TestParseURL(t *testing.T) {
	cfg, err := ParseURL("kurrentdb://admin:changeit@localhost:2113?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address != "localhost:2113" || !cfg.DisableTLS || cfg.Username != "admin" || cfg.Password != "changeit" {
		t.Errorf("kurrentdb:// parsed as %+v", cfg)
	}
	cfg, err = ParseURL("esdb://node1.example.com:2113?tls=true&tlsVerifyCert=false")
	if err != nil || cfg.DisableTLS || !cfg.SkipCertificateVerification {
		t.Errorf("esdb:// with TLS parsed as %+v, %v", cfg, err)
	}
	cfg, err = ParseURL("kurrentdb+discover://cluster.example.com:2113")
	if err != nil || !cfg.DnsDiscover {
		t.Errorf("kurrentdb+discover:// parsed as %+v, %v", cfg, err)
	}
	if _, err := ParseURL("postgres://localhost/test"); err == nil {
		t.Error("a postgres:// URL must be refused")
	}
}
