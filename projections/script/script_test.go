package script

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

func TestEventObject(t *testing.T) {
	sd := seed(t, 3, 30, 11)
	stream := domain.StreamID(sd.customers[2])
	p := compile(t, "event_object", `fromStream('`+stream+`').foreachStream().when({
		$any: (s, e) => {
			s.type = e.eventType; s.stream = e.streamId; s.seq = e.sequenceNumber; s.pos = e.position;
			s.partition = e.partition; s.actor = e.metadata.actor; s.occurred = e.occurredAt;
			s.recordedOk = new Date(e.recordedAt).getTime() > 0; s.id = e.eventId;
			s.rawSame = JSON.stringify(JSON.parse(e.bodyRaw)) === JSON.stringify(e.body) && e.data === e.body;
			s.keys = Object.keys(e).length;
			try { e.eventType = 'x'; } catch (err) {}
			s.readOnly = e.eventType !== 'x';
		}
	});`, Limits{})
	b := projectiontest.Memory(t)
	if err := replayTo(sd.store, b, p.Projection(1)); err != nil {
		t.Fatal(err)
	}
	var last rec
	seq := -1
	for _, r := range sd.recs {
		if r.stream == stream {
			last = r
			seq++
		}
	}
	recs, err := sd.store.ReadAll(context.Background(), eventstore.ReadAllOptions{After: last.pos - 1, Limit: 1})
	if err != nil || len(recs) != 1 {
		t.Fatalf("read back: %v %d", err, len(recs))
	}
	got := readAll(t, b, p).(map[string]any)[stream]
	sameJSON(t, "event seen by the last handler call", got, map[string]any{
		"type": last.typ, "stream": stream, "seq": seq, "pos": last.pos, "partition": stream,
		"actor": "user:marta.kowalska", "occurred": recs[0].Metadata.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
		"recordedOk": true, "id": recs[0].ID.String(), "rawSame": true, "keys": len(eventKeys), "readOnly": true,
	})
}

func TestDeterministicReplay(t *testing.T) {
	sd := seed(t, 30, 2000, 3)
	src := `fromAll().partitionBy(e => e.streamId).when({
		$init: () => ({ n: 0, types: {} }),
		$any: (s, e) => { s.n++; s.types[e.eventType] = e.occurredAt; s.when = new Date(e.occurredAt).toISOString(); }
	});`
	var digests []string
	for range 2 {
		p := compile(t, "twice", src, Limits{})
		b := projectiontest.Bolt(t)
		if err := replayTo(sd.store, b, p.Projection(1)); err != nil {
			t.Fatal(err)
		}
		d, err := projections.Digest(context.Background(), b, "twice")
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two replays differ: %s vs %s", digests[0], digests[1])
	}
}

// TestPoisonStopsOnlyItsProjection: a script that throws at one event stops
// there with the position and the JavaScript stack; another script in the
// same engine finishes.
func TestPoisonStopsOnlyItsProjection(t *testing.T) {
	sd := seed(t, 10, 300, 5)
	at := sd.recs[123].pos
	poison := compile(t, "poison", `function check(e) { if (e.position === `+jsonText(at)+`) { throw new Error('boom at ' + e.position); } }
fromAll().when({ $any: (s, e) => { check(e); } });`, Limits{})
	healthy := compile(t, "healthy", `fromAll().when({ $init: () => ({ n: 0 }), $any: (s) => { s.n++; } });`, Limits{})
	b := projectiontest.Memory(t)
	err := replayTo(sd.store, b, poison.Projection(1), healthy.Projection(1))
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("want a *ScriptError, got %v", err)
	}
	if se.Position != at || se.EventType != sd.recs[123].typ || !strings.Contains(se.Message, "boom at") ||
		!strings.Contains(se.Stack, "at check (poison.js:1:") {
		t.Errorf("script error %+v", se)
	}
	sameJSON(t, "healthy", readAll(t, b, healthy), map[string]int{"n": len(sd.recs)})
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLimitsAndSandbox: each script fails at its first event with a
// *ScriptError saying why.
func TestLimitsAndSandbox(t *testing.T) {
	sd := seed(t, 3, 40, 9)
	lim := Limits{EventBudget: 30 * time.Millisecond, StateBytes: 2048}
	tests := []struct{ name, src, want string }{
		{"loop", `fromAll().when({ $any: (s, e) => { for (;;) {} } });`, "time budget"},
		{"loop_in_partition", `fromAll().partitionBy(e => { while (true) {} }).when({ $any: (s, e) => s });`, "partitionBy ran past its time budget"},
		{"loop_in_tojson", `fromAll().when({ $any: (s, e) => { s.toJSON = () => { for (;;) {} }; } });`, "time budget"},
		{"state_growth", `fromAll().when({ $init: () => ({ l: [] }), $any: (s, e) => { s.l.push(e.eventId + e.bodyRaw); } });`, "over the limit of 2048"},
		{"big_at_once", `fromAll().when({ $any: (s, e) => { s.x = 'x'.repeat(5000); } });`, "over the limit of 2048"},
		{"recursion", `function f(n) { return f(n + 1) + 1; } fromAll().when({ $any: (s, e) => { f(0); } });`, "recursion deeper"},
		{"throw_value", `fromAll().when({ $any: () => { throw 'plain'; } });`, "threw: plain"},
		{"date_now", `fromAll().when({ $any: (s) => { s.t = Date.now(); } });`, "Date.now() is not available"},
		{"new_date", `fromAll().when({ $any: (s) => { s.t = new Date(); } });`, "new Date() without arguments"},
		{"date_call", `fromAll().when({ $any: (s) => { s.t = Date(); } });`, "Date() called without new"},
		{"random", `fromAll().when({ $any: (s) => { s.r = Math.random(); } });`, "Math.random() is not available"},
		{"eval", `fromAll().when({ $any: (s) => { s.r = eval('1'); } });`, "compiling code at run time"},
		{"function_ctor", `fromAll().when({ $any: (s) => { s.r = (() => 1).constructor('return 1')(); } });`, "compiling code at run time"},
		{"settimeout", `fromAll().when({ $any: (s) => { setTimeout(() => 1, 1); } });`, "setTimeout is not defined"},
		{"require", `fromAll().when({ $any: (s) => { require('fs'); } });`, "require is not defined"},
		{"emit_hidden", `var f = this['em' + 'it']; fromAll().when({ $any: (s, e) => { f('s', 'T', {}); } });`, "emit() is not available"},
		{"partition_key_too_long", `fromAll().partitionBy(e => 'k'.repeat(2000)).when({ $any: (s) => s });`, "over the limit of 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compile(t, tt.name, tt.src, lim)
			err := replayTo(sd.store, projectiontest.Memory(t), p.Projection(1))
			var se *ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("want a *ScriptError, got %v", err)
			}
			if !strings.Contains(se.Message, tt.want) || se.Position == 0 || se.EventID == "" {
				t.Errorf("got %+v, want a message with %q", se, tt.want)
			}
		})
	}
}

// TestSandboxAllows: what the sandbox keeps works (dates from events,
// Math, JSON, regular expressions, classes).
func TestSandboxAllows(t *testing.T) {
	sd := seed(t, 2, 5, 13)
	p := compile(t, "allowed", `class Acc { constructor() { this.n = 0; } }
fromAll().when({
	$init: () => new Acc(),
	$any: (s, e) => {
		s.n++;
		s.year = new Date(e.occurredAt).getUTCFullYear();
		s.utc = Date.UTC(2025, 0, 1);
		s.max = Math.max(1, 2);
		s.re = /^customer-/.test(e.streamId);
		s.spread = { ...e }.eventType === e.eventType;
	}
});`, Limits{})
	b := projectiontest.Memory(t)
	if err := replayTo(sd.store, b, p.Projection(1)); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "state", readAll(t, b, p), map[string]any{"n": len(sd.recs), "year": 2025, "utc": 1735689600000, "max": 2, "re": true, "spread": true})
}

func TestCompileRefusals(t *testing.T) {
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"syntax", "fromAll().when({\n  $any: (s, e) => { s.n++ \n});", "syntax error", 3},
		{"no_source", `var x = 1;`, "names no source", 0},
		{"no_when", `fromAll();`, "declares no handlers", 0},
		{"no_handler", `fromAll().when({ $init: () => ({}) });`, "no event handler", 0},
		{"emit", "fromAll().when({\n $any: (s, e) => { emit('s', 'T', {}); } });", "emit() is not supported", 2},
		{"linkTo", `fromAll().when({ $any: (s, e) => { linkTo('s', e); } });`, "linkTo() is not supported", 1},
		{"outputTo", `fromAll().when({ $any: (s, e) => s }).outputTo('x');`, "outputTo() is not", 1},
		{"unknown_type", `fromAll().when({ PurchaseComplete: (s, e) => s });`, `"PurchaseComplete" is not a cxledger event type`, 0},
		{"bistate", `fromAll().when({ $initShared: () => ({}), $any: (s) => s });`, "$initShared", 0},
		{"unknown_special", `fromAll().when({ $foo: () => ({}), $any: (s) => s });`, "unknown special handler", 0},
		{"two_sources", `fromAll(); fromCategory('customer').when({ $any: (s) => s });`, "one source", 1},
		{"partition_after_when", `fromAll().when({ $any: (s) => s }).partitionBy(e => e.streamId);`, "before when()", 1},
		{"top_level_loop", `while (true) {}`, "time budget", 0},
		{"top_level_throw", "\n\nthrow new Error('nope');", "threw: Error: nope", 3},
		{"top_level_time", `fromAll().when({ $any: (s) => s }); var t = Date.now();`, "Date.now() is not available", 1},
		{"handler_not_function", `fromAll().when({ $any: 1 });`, "not a function", 1},
		{"fromStream_empty", `fromStream('').when({ $any: (s) => s });`, "non-empty string", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.name, tt.src, Limits{EventBudget: 20 * time.Millisecond})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *CompileError, got %v", err)
			}
			if !strings.Contains(ce.Message, tt.want) || (tt.line != 0 && ce.Line != tt.line) {
				t.Errorf("got %q at line %d, want %q at line %d", ce.Message, ce.Line, tt.want, tt.line)
			}
		})
	}
}

func TestProgramDeclaration(t *testing.T) {
	tests := []struct {
		src         string
		partitioned bool
		handles     map[string]bool
	}{
		{`fromAll().when({ $any: (s) => s });`, false, map[string]bool{"PurchaseCompleted": true, "NoteAdded": true, "AccessRecorded": false}},
		{`fromCategory('customer').foreachStream().when({ NoteAdded: (s) => s });`, true, map[string]bool{"NoteAdded": true, "PurchaseCompleted": false}},
		{`fromAll().partitionBy(e => e.body.currency).when({ PurchaseCompleted: (s) => s });`, true, map[string]bool{"PurchaseCompleted": true, "NoteAdded": false}},
	}
	for _, tt := range tests {
		p := compile(t, "decl", tt.src, Limits{})
		if p.Partitioned() != tt.partitioned || p.Name() != "decl" {
			t.Errorf("%s: partitioned %v", tt.src, p.Partitioned())
		}
		for typ, want := range tt.handles {
			if p.Handles(typ) != want {
				t.Errorf("%s: Handles(%s) = %v", tt.src, typ, !want)
			}
		}
	}
	if Category(domain.StreamID(uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf"))) != "customer" {
		t.Error("a customer stream's category is not customer")
	}
}

func TestQuery(t *testing.T) {
	sd := seed(t, 20, 600, 21)
	p := compile(t, "q", `fromAll().partitionBy(e => e.eventType).when({ $init: () => ({ n: 0 }), $any: (s) => { s.n++; } });`, Limits{})
	head, _ := sd.store.Head(context.Background())
	tests := []struct{ from, to uint64 }{{0, 0}, {1, head}, {100, 250}, {250, 250}, {head, 0}, {head + 5, 0}}
	for _, tt := range tests {
		var calls int
		var lastProgress Progress
		res, err := Query(context.Background(), sd.store, p, tt.from, tt.to, func(pr Progress) { calls++; lastProgress = pr })
		if err != nil {
			t.Fatal(err)
		}
		to := tt.to
		if to == 0 {
			to = head
		}
		want := map[string]map[string]int{}
		events := 0
		for _, r := range sd.recs {
			if r.pos >= tt.from && r.pos <= to {
				if want[r.typ] == nil {
					want[r.typ] = map[string]int{"n": 0}
				}
				want[r.typ]["n"]++
				events++
			}
		}
		got := map[string]any{}
		for _, pt := range res.Partitions {
			var v any
			if err := json.Unmarshal(pt.State, &v); err != nil {
				t.Fatal(err)
			}
			got[pt.Key] = v
		}
		sameJSON(t, "query", got, want)
		if !res.Partitioned || calls == 0 || lastProgress.Events != int64(events) || lastProgress.Head != to {
			t.Errorf("from %d to %d: partitioned %v, %d progress calls, last %+v, want %d events", tt.from, tt.to, res.Partitioned, calls, lastProgress, events)
		}
	}
	if h, _ := sd.store.Head(context.Background()); h != head {
		t.Errorf("a query wrote to the store: head %d, was %d", h, head)
	}
}

// TestStoredJSONIsGoJSON: states are stored as encoding/json would write
// them (projections.JSONAppender's rule), escapes included.
func TestStoredJSONIsGoJSON(t *testing.T) {
	for _, s := range []string{`{"a":1}`, `{"n":"<b> & </b>"}`, "{\"s\":\"\u2028x\u2029\"}", `{"z":"Zoë ⭐ 石井"}`, `[1.5,null,true,"\u0001"]`} {
		got, err := asGoJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(json.RawMessage(s))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: got %s, want %s", s, got, want)
		}
	}
}

// TestOneProjectionTwoRunners: the engine may apply one projection from two
// runners at once (a rebuild beside the live read model); they share its
// runtime, one call at a time, and agree.
func TestOneProjectionTwoRunners(t *testing.T) {
	sd := seed(t, 25, 1500, 29)
	p := compile(t, "shared", `fromAll().partitionBy(e => e.streamId).when({
		$init: () => ({ n: 0 }), $any: (s, e) => { s.n++; s.last = e.position; }
	}).transformBy(s => ({ n: s.n }));`, Limits{})
	proj := p.Projection(1)
	backends := []projections.Backend{projectiontest.Bolt(t), projectiontest.Memory(t)}
	errs := make(chan error, len(backends))
	for _, b := range backends {
		go func() { errs <- replayTo(sd.store, b, proj) }()
	}
	for range backends {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[string]int{}
	for _, r := range sd.recs {
		if want[r.stream] == nil {
			want[r.stream] = map[string]int{"n": 0}
		}
		want[r.stream]["n"]++
	}
	var digests []string
	for _, b := range backends {
		sameJSON(t, "read model", readAll(t, b, p), want)
		d, err := projections.Digest(context.Background(), b, "shared")
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("the two runners differ: %v", digests)
	}
}
