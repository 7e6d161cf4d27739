package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/google/uuid"
)

// cli runs one command line against the store selected by flags and
// returns its exit code and outputs.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	return cliWithin(t, 30*time.Second, stdin, args...)
}

// cliWithin is cli with its own hang guard, for commands whose work grows
// with the machine's load (the benchmark under the race detector).
func cliWithin(t *testing.T, limit time.Duration, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

type appended struct {
	CustomerID uuid.UUID `json:"customerId"`
	Version    uint64    `json:"version"`
	Position   uint64    `json:"position"`
}

func decodeAppended(t *testing.T, out string) appended {
	t.Helper()
	var a appended
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("append output %q: %v", out, err)
	}
	return a
}

// storeFlags returns the flags selecting each backend the CLI supports.
func storeFlags(t *testing.T) map[string][]string {
	return map[string][]string{
		"embedded": {"--data", t.TempDir()},
		"postgres": {"--store", pgtest.URL(t), "--pg-schema", pgtest.Schema(t)},
	}
}

func TestAppendReadRoundTrip(t *testing.T) {
	for name, store := range storeFlags(t) {
		t.Run(name, func(t *testing.T) {
			with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }

			code, out, errOut := cli(t, "", with("append", "--type", "CustomerRegistered", "--event", `{"name":"Zoë Ñúñez","country":"ES"}`, "--actor", "service:crm", "--channel", "web")...)
			if code != 0 {
				t.Fatalf("register: exit %d: %s", code, errOut)
			}
			reg := decodeAppended(t, out)
			if reg.CustomerID == uuid.Nil || reg.Version != 0 {
				t.Fatalf("register: %+v", reg)
			}
			customer := reg.CustomerID.String()

			eventID := uuid.NewString()
			call := with("append", "--customer", customer, "--id", eventID, "--expected", "0", "--type", "CallLogged",
				"--event", "-", "--occurred-at", "2026-03-01T09:30:00+01:00", "--correlation-id", "case-77")
			body := `{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"}`
			code, out, errOut = cli(t, body, call...)
			if code != 0 {
				t.Fatalf("call: exit %d: %s", code, errOut)
			}
			first := decodeAppended(t, out)
			// The same command again is an idempotent retry: same result.
			code, out, errOut = cli(t, body, call...)
			if code != 0 || decodeAppended(t, out) != first {
				t.Fatalf("retry: exit %d, %s %s; want %+v", code, out, errOut, first)
			}

			code, out, errOut = cli(t, "", with("read", "--json", customer)...)
			if code != 0 {
				t.Fatalf("read: exit %d: %s", code, errOut)
			}
			var recs []eventstore.Record
			sc := bufio.NewScanner(strings.NewReader(out))
			for sc.Scan() {
				var r eventstore.Record
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatal(err)
				}
				recs = append(recs, r)
			}
			if len(recs) != 2 {
				t.Fatalf("read %d records, want 2:\n%s", len(recs), out)
			}
			r := recs[1]
			if r.ID.String() != eventID || r.Type != "CallLogged" || string(r.Data) != body ||
				r.Metadata.CorrelationID != "case-77" || !r.Metadata.OccurredAt.Equal(time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)) {
				t.Fatalf("record read back differs: %+v", r)
			}

			code, out, _ = cli(t, "", with("read", "--all", "--types", "CallLogged")...)
			if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "CallLogged by user:") {
				t.Fatalf("read --all --types: exit %d:\n%s", code, out)
			}
		})
	}
}

func TestAppendErrors(t *testing.T) {
	store := []string{"--data", t.TempDir()}
	code, out, _ := cli(t, "", append([]string{"append"}, append(store, "--type", "CustomerRegistered", "--event", `{"name":"Ana"}`)...)...)
	if code != 0 {
		t.Fatalf("register: exit %d", code)
	}
	customer := decodeAppended(t, out).CustomerID.String()
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no type", []string{"--customer", customer, "--event", "{}"}, 2, "--type is required"},
		{"no event", []string{"--customer", customer, "--type", "NoteAdded"}, 2, "--event is required"},
		{"bad expected", []string{"--customer", customer, "--type", "NoteAdded", "--event", `{"body":"x"}`, "--expected", "soon"}, 2, "--expected"},
		{"bad customer", []string{"--customer", "42", "--type", "NoteAdded", "--event", `{"body":"x"}`}, 2, "--customer"},
		{"unknown type", []string{"--customer", customer, "--type", "CustomerUpdated", "--event", `{}`}, 1, "CustomerUpdated"},
		{"invalid field", []string{"--customer", customer, "--type", "SurveyAnswered", "--event", `{"score":11}`}, 1, "score"},
		{"unknown field", []string{"--customer", customer, "--type", "NoteAdded", "--event", `{"body":"x","colour":"red"}`}, 1, "colour"},
		{"bad actor", []string{"--customer", customer, "--type", "NoteAdded", "--event", `{"body":"x"}`, "--actor", "anonymous"}, 1, "metadata.actor"},
		{"stale version", []string{"--customer", customer, "--type", "NoteAdded", "--event", `{"body":"x"}`, "--expected", "7"}, 1, "wrong expected version"},
		{"invariant", []string{"--customer", customer, "--type", "TicketClosed", "--event", `{"ticketId":"` + uuid.NewString() + `"}`}, 1, "unknown ticket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := cli(t, "", append(append([]string{"append"}, store...), tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to mention %q)", code, tt.code, errOut, tt.msg)
			}
		})
	}
	code, out, _ = cli(t, "", append([]string{"read"}, append(store, customer)...)...)
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("after rejected appends the stream must hold only the registration:\n%s", out)
	}
}

func TestTailFollowsLiveAppends(t *testing.T) {
	dir := t.TempDir()
	// tail and append run in one process here, so they share the store:
	// open it once through the same code path the CLI uses.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := openStore(ctx, storeConfig{Data: dir}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	tailCtx, stopTail := context.WithCancel(ctx)
	go func() {
		fs := newFlagSet()
		runTail := tailCommand(fs)
		if err := fs.Parse([]string{"--json"}); err != nil {
			done <- err
			return
		}
		done <- runTail(tailCtx, &env{cfg: storeConfig{Data: dir}, store: store, stdout: pw, log: discardLogger()})
		pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	// Appends made after tail started arrive in order.
	var want []uuid.UUID
	for i := 0; i < 3; i++ {
		id := uuid.New()
		want = append(want, id)
		if _, err := store.Append(ctx, "customer-"+uuid.NewString(), eventstore.NoStream, eventstore.EventData{
			ID: id, Type: "NoteAdded", Data: []byte(`{"body":"live ` + string(rune('A'+i)) + `"}`),
			Metadata: eventstore.Metadata{OccurredAt: time.Now(), Actor: "user:test"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want {
		if !lines.Scan() {
			t.Fatalf("tail ended after %d lines: %v", i, lines.Err())
		}
		var r eventstore.Record
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.ID != want[i] {
			t.Fatalf("line %d: event %s, want %s", i, r.ID, want[i])
		}
	}
	stopTail()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err == nil || tailCtx.Err() == nil {
		t.Fatalf("tail returned %v after cancel", err)
	}
}

func TestStoreConfigParse(t *testing.T) {
	tests := []struct {
		cfg  storeConfig
		kind storeKind
		err  string
	}{
		{storeConfig{Data: "/var/lib/cx"}, kindEmbedded, ""},
		{storeConfig{Data: "d", Store: "embedded"}, kindEmbedded, ""},
		{storeConfig{Data: ""}, 0, "--data"},
		{storeConfig{Store: "postgres://u@db:5432/crm"}, kindPostgres, ""},
		{storeConfig{Store: "postgresql://u:secret@db/crm?sslmode=require"}, kindPostgres, ""},
		{storeConfig{Store: "postgres:///crm"}, 0, "no host"},
		{storeConfig{Store: "mysql://u@db/crm"}, 0, `unsupported store "mysql"`},
		{storeConfig{Store: "postgres://u:p%zz@db/crm"}, 0, "not a valid"},
	}
	for _, tt := range tests {
		kind, path, err := tt.cfg.parse()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parse(%+v) = %v, want error containing %q", tt.cfg, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
			continue
		}
		if err != nil || kind != tt.kind {
			t.Errorf("parse(%+v) = %v, %v; want kind %v", tt.cfg, kind, err, tt.kind)
		}
		if kind == kindEmbedded && path != filepath.Join(tt.cfg.Data, dataFileName) {
			t.Errorf("parse(%+v): data file %q", tt.cfg, path)
		}
	}
}

func FuzzStoreConfigParse(f *testing.F) {
	for _, s := range []string{"", "embedded", "postgres://u@h:5432/db", "postgresql://u:p@h/db?sslmode=disable", "postgres://%", "x://y", "postgres:///"} {
		f.Add(s, "./cxledger-data")
	}
	f.Fuzz(func(t *testing.T, store, data string) {
		kind, _, err := storeConfig{Store: store, Data: data}.parse()
		if err == nil && kind == kindPostgres && !strings.HasPrefix(strings.TrimSpace(store), "postgres") {
			t.Fatalf("%q selected PostgreSQL", store)
		}
	})
}
