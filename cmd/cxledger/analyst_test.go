package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/script"
)

const (
	cliByType = `fromAll().when({
	$init: function () { return {}; },
	$any: function (s, e) { s[e.eventType] = (s[e.eventType] || 0) + 1; }
});`
	cliPerCustomer = `fromCategory('customer').foreachStream().when({
	$init: () => ({ events: 0 }),
	$any: (s, e) => { s.events++; }
});`
)

func writeScript(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.js")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// Analyst projections through the CLI on both stores: locally while no
// server runs, then through a running server (--server), which the
// embedded store requires.
func TestAnalystProjectionsCLI(t *testing.T) {
	for name, flags := range storeFlags(t) {
		t.Run(name, func(t *testing.T) {
			with := func(args ...string) []string { return append(append([]string{}, args...), flags...) }
			if code, _, errOut := acli(t, with("seed", "--customers", "6", "--seed", "5")...); code != 0 {
				t.Fatalf("seed: %s", errOut)
			}
			byType, perCustomer := writeScript(t, cliByType), writeScript(t, cliPerCustomer)

			// Local: created, replayed with a progress bar, then queried.
			code, out, errOut := acli(t, with("projections", "create", "by_type", "--file", byType)...)
			if code != 0 || !strings.Contains(out, "js_by_type version") || !strings.Contains(errOut, "] 100.0%") {
				t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
			}
			code, out, errOut = acli(t, with("projections", "state", "js_by_type")...)
			var st httpapi.StateOut
			if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Checkpoint == 0 {
				t.Fatalf("state: exit %d %s %s", code, out, errOut)
			}
			code, out, errOut = acli(t, with("query", "--file", byType, "--to", jsonNum(st.Checkpoint))...)
			var res analyst.ResultJSON
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
				t.Fatalf("query: exit %d %s %s", code, out, errOut)
			}
			if !sameJSON(t, res.State, st.State) || res.Position != st.Checkpoint {
				t.Errorf("query %s at %d, projection %s at %d", res.State, res.Position, st.State, st.Checkpoint)
			}
			// A refused script says where.
			code, _, errOut = acli(t, with("projections", "create", "bad", "--file", writeScript(t, "fromAll().when({\n $any: function (s, e) { s. = 1; }\n});"))...)
			if code != 1 || !strings.Contains(errOut, "line 2") {
				t.Errorf("bad script: exit %d %s", code, errOut)
			}
			code, out, _ = acli(t, with("status")...)
			if code != 0 || !strings.Contains(out, "js_by_type: analyst projection version") || !strings.Contains(out, "timeline") {
				t.Errorf("status:\n%s", out)
			}

			// Through a running server.
			cfg := storeConfigFrom(t, flags)
			m := startMain(t, cfg, nil)
			srv := []string{"--server", m.URL(), "--token", analystToken}
			code, out, errOut = acli(t, append([]string{"projections", "create", "per_customer", "--file", perCustomer}, srv...)...)
			if code != 0 || !strings.Contains(out, "js_per_customer version") {
				t.Fatalf("create via server: exit %d\n%s\n%s", code, out, errOut)
			}
			code, _, errOut = acli(t, "projections", "create", "nope", "--file", perCustomer, "--server", m.URL(), "--token", serviceToken)
			if code != 1 || !strings.Contains(errOut, "403") {
				t.Errorf("service token: exit %d %s", code, errOut)
			}
			code, out, errOut = acli(t, append([]string{"projections", "export", "js_per_customer", "--format", "csv"}, srv...)...)
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if code != 0 || err != nil || len(recs) != 7 || strings.Join(recs[0], ",") != "partition,events" {
				t.Errorf("export: exit %d %v %q %s", code, err, recs, errOut)
			}
			code, out, errOut = acli(t, append([]string{"projections", "export", "js_per_customer", "--format", "parquet"}, srv...)...)
			if code != 0 || !bytes.HasPrefix([]byte(out), []byte("PAR1")) {
				t.Errorf("parquet export: exit %d %s", code, errOut)
			}
			// The server's live state equals a query at its position.
			code, out, _ = acli(t, append([]string{"projections", "state", "js_per_customer"}, srv...)...)
			if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Partitions) != 6 {
				t.Fatalf("state via server: %s", out)
			}
			code, out, _ = acli(t, append([]string{"query", "--file", perCustomer, "--to", jsonNum(st.Checkpoint)}, srv...)...)
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Partitions) != len(st.Partitions) {
				t.Fatalf("query via server: %s", out)
			}
			for i := range res.Partitions {
				if res.Partitions[i].Key != st.Partitions[i].Key || !sameJSON(t, res.Partitions[i].State, st.Partitions[i].State) {
					t.Errorf("partition %d: query %+v, projection %+v", i, res.Partitions[i], st.Partitions[i])
				}
			}
			// Update and delete while the server runs.
			code, out, errOut = acli(t, append([]string{"projections", "update", "per_customer", "--file", writeScript(t, strings.Replace(cliPerCustomer, "s.events++", "s.events += 2", 1))}, srv...)...)
			if code != 0 {
				t.Fatalf("update: exit %d %s %s", code, out, errOut)
			}
			code, out, _ = acli(t, append([]string{"projections", "state", "js_per_customer"}, srv...)...)
			var after httpapi.StateOut
			if code != 0 || json.Unmarshal([]byte(out), &after) != nil || after.Version <= st.Version || !bytes.Contains(after.Partitions[0].State, []byte(`"events":`)) {
				t.Fatalf("state after update: %s", out)
			}
			var before, now struct{ Events int }
			_ = json.Unmarshal(st.Partitions[0].State, &before)
			_ = json.Unmarshal(after.Partitions[0].State, &now)
			if now.Events != 2*before.Events {
				t.Errorf("after update %d events, want %d", now.Events, 2*before.Events)
			}
			for _, n := range []string{"js_per_customer", "by_type"} {
				if code, _, errOut := acli(t, append([]string{"projections", "delete", n}, srv...)...); code != 0 {
					t.Fatalf("delete %s: %s", n, errOut)
				}
			}
			code, out, _ = acli(t, append([]string{"projections", "list", "--json"}, srv...)...)
			if code != 0 || strings.TrimSpace(out) != "null" && strings.TrimSpace(out) != "[]" {
				t.Errorf("list after delete: %s", out)
			}
			spaces, err := m.rm.Namespaces(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, ns := range spaces {
				if strings.HasPrefix(ns, "js_") {
					t.Errorf("namespace %s left behind", ns)
				}
			}
			leases, err := m.rm.ListLeases(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range leases {
				if strings.Contains(l.Name, "/js_") {
					t.Errorf("lease %+v left behind", l)
				}
			}
			if a, _ := m.rm.Active(context.Background(), "js_per_customer"); a != "" {
				t.Errorf("pointer to %s left behind", a)
			}
		})
	}
}

// Two serve processes on one PostgreSQL schema: an analyst projection
// created through one is applied by exactly one of them, and its state's
// digest equals that of a single replay.
func TestAnalystProjectionTwoProcessesPostgres(t *testing.T) {
	flags := storeFlags(t)["postgres"]
	if code, _, errOut := acli(t, append([]string{"seed", "--customers", "8", "--seed", "9"}, flags...)...); code != 0 {
		t.Fatalf("seed: %s", errOut)
	}
	cfg := storeConfigFrom(t, flags)
	m1 := startMain(t, cfg, nil)
	m2 := startMain(t, cfg, nil)
	code, out, errOut := acli(t, "projections", "create", "shared", "--file", writeScript(t, cliPerCustomer), "--server", m1.URL(), "--token", analystToken)
	if code != 0 {
		t.Fatalf("create: %s %s", out, errOut)
	}
	ctx := context.Background()
	head, err := m1.store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	def, err := m2.analyst.Get(ctx, "js_shared")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := m2.analyst.Wait(wctx, def.Name, def.Version, head, 20*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	owners := 0
	for _, m := range []*Main{m1, m2} {
		for _, st := range m.engine.Status() {
			if st.Name == def.Name && st.Owned {
				owners++
			}
		}
	}
	if owners != 1 {
		t.Errorf("%d owners", owners)
	}
	prog, err := script.Compile(def.Name, def.Source, script.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ref := projections.NewMemory()
	if err := projections.Replay(ctx, m1.store, ref, []projections.Projection{prog.Projection(def.Version)}, projections.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	want, err := projections.Digest(ctx, ref, def.Name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := projections.Digest(ctx, m1.rm, def.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("digest of the live projection %s, of a single replay %s", got, want)
	}

	// Deleted through the other process: both let go, nothing is left.
	if code, _, errOut := acli(t, "projections", "delete", "shared", "--server", m2.URL(), "--token", analystToken); code != 0 {
		t.Fatalf("delete: %s", errOut)
	}
	spaces, err := m1.rm.Namespaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range spaces {
		if strings.HasPrefix(ns, "js_") {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	leases, err := m1.rm.ListLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if strings.Contains(l.Name, "/js_") {
			t.Errorf("lease %+v left behind", l)
		}
	}
	for _, m := range []*Main{m1, m2} {
		waitUntil(t, "both engines forget js_shared", func() bool {
			for _, st := range m.engine.Status() {
				if st.Name == def.Name {
					return false
				}
			}
			return true
		})
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for the engine's log and the
// progress bar writing stderr at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// acli is cli with outputs that goroutines may write concurrently.
func acli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func jsonNum(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// storeConfigFrom turns the test's store flags into the server's config.
func storeConfigFrom(t *testing.T, flags []string) storeConfig {
	t.Helper()
	var cfg storeConfig
	for i := 0; i+1 < len(flags); i += 2 {
		switch flags[i] {
		case "--data":
			cfg.Data = flags[i+1]
		case "--store":
			cfg.Store = flags[i+1]
		case "--pg-schema":
			cfg.Schema = flags[i+1]
		}
	}
	return cfg
}
