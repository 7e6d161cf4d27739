package main

import (
	"encoding/csv"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// seedSmall seeds a small ledger into a new directory and returns it with
// the sample customer seed printed.
func seedSmall(t *testing.T, extra ...string) (dir, customer string) {
	dir, customer, _ = seedSmallOut(t, extra...)
	return dir, customer
}

// seedSmallOut is seedSmall, also returning what seed printed.
func seedSmallOut(t *testing.T, extra ...string) (dir, customer, out string) {
	t.Helper()
	dir = t.TempDir()
	code, out, errOut := cli(t, "", append([]string{"seed", "--data", dir, "--customers", "5", "--seed", "3"}, extra...)...)
	if code != 0 {
		t.Fatalf("seed: exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`sample customer: ([0-9a-f-]{36})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no sample customer in:\n%s", out)
	}
	return dir, m[1], out
}

// TestFlagsAfterArguments: flags are read in any position, as the README
// writes them (timeline ID --format csv, view ID --as-of DATE), and the
// single-dash long flags of the earlier CLI still work.
func TestFlagsAfterArguments(t *testing.T) {
	dir, c := seedSmall(t)

	code, out, errOut := cli(t, "", "view", c, "--as-of", "2030-01-01", "--data", dir)
	if code != 0 || !strings.Contains(out, c) {
		t.Fatalf("view ID --as-of: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut = cli(t, "", "timeline", c, "--format", "csv", "--data", dir)
	if code != 0 {
		t.Fatalf("timeline ID --format csv: exit %d: %s", code, errOut)
	}
	r := csv.NewReader(strings.NewReader(out))
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("timeline --format csv: %d rows, %v:\n%s", len(rows), err, out)
	}
	code, out, errOut = cli(t, "", "read", c, "--limit", "2", "--data", dir)
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("read ID --limit 2: exit %d, %d lines: %s", code, strings.Count(out, "\n"), errOut)
	}
	code, out, errOut = cli(t, "", "read", "-limit=1", "-data", dir, c)
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("read -limit=1 -data DIR ID: exit %d, %d lines: %s", code, strings.Count(out, "\n"), errOut)
	}
	// A flag's value that looks like a flag stays a value.
	code, out, errOut = cli(t, "", "forget", c, "--request", "DSR-1", "--reason", "-data", "--data", dir)
	if code != 0 || !strings.Contains(out, `"keyDestroyed":true`) {
		t.Fatalf("forget ID --reason -data: exit %d: %s %s", code, out, errOut)
	}
	// Help per command, and completion, are there.
	if code, out, _ := cli(t, "", "help", "timeline"); code != 0 || !strings.Contains(out, "--format") {
		t.Fatalf("help timeline: exit %d:\n%s", code, out)
	}
	if code, out, _ := cli(t, "", "completion", "bash"); code != 0 || !strings.Contains(out, "cxledger") {
		t.Fatalf("completion bash: exit %d", code)
	}
}

// TestFailedCommandCreatesNothing: a command that fails — a bad flag or
// argument, a read on a ledger that does not exist, a refused serve start —
// leaves the current directory as it was: no ./cxledger-data, no master
// key.
func TestFailedCommandCreatesNothing(t *testing.T) {
	scratch := t.TempDir()
	dupTokens := filepath.Join(scratch, "tokens.txt")
	if err := os.WriteFile(dupTokens, []byte("service tok-0123456789abcdef-one\n# again, as admin\nadmin tok-0123456789abcdef-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scratch, "bad.ndjson"), []byte(`{"bogus":1}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	const id = "0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f"

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"view with a bad --as-of after the id", []string{"view", id, "--as-of", "yesterday"}, 2, "--as-of"},
		{"view of a ledger that does not exist", []string{"view", id}, 1, "does not exist"},
		{"timeline with a bad format", []string{"timeline", id, "--format", "xml"}, 2, "--format"},
		{"timeline of a ledger that does not exist", []string{"timeline", id}, 1, "does not exist"},
		{"read of a bad id", []string{"read", "not-a-uuid"}, 2, "customer id"},
		{"read of a ledger that does not exist", []string{"read", id}, 1, "does not exist"},
		{"status of a ledger that does not exist", []string{"status"}, 1, "does not exist"},
		{"append without a type", []string{"append", "--customer", id}, 2, "--type"},
		{"append of an invalid event", []string{"append", "--customer", id, "--type", "CallLogged", "--event", `{"direction":"sideways"}`}, 1, "direction"},
		{"append to a customer never registered", []string{"append", "--customer", id, "--type", "CallLogged", "--event", `{"direction":"inbound","durationSeconds":60,"agent":"user:marta","outcome":"connected"}`}, 1, "not registered"},
		{"import of rejected rows only", []string{"import", filepath.Join(scratch, "bad.ndjson")}, 1, "rejected"},
		{"seed of no customers", []string{"seed", "--customers", "0"}, 2, "customers"},
		{"export in an unknown format", []string{"export", "--format", "xml"}, 2, "--format"},
		{"an unknown flag", []string{"read", id, "--bogus"}, 2, "--bogus"},
		{"serve with a token under two roles", []string{"serve", "--tokens", dupTokens}, 2, "line 3"},
		{"serve on a malformed address", []string{"serve", "--addr", "127.0.0.1:99999"}, 1, "--addr"},
		{"serve on a taken address", []string{"serve", "--addr", taken.Addr().String()}, 1, "--addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			t.Setenv("CXLEDGER_DATA", "")
			t.Setenv("CXLEDGER_STORE", "")
			t.Setenv("CXLEDGER_TOKENS", "")
			t.Setenv(envMasterKey, "")
			code, _, errOut := cli(t, "", tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.inStderr) {
				t.Errorf("exit %d, want %d with %q: %s", code, tc.code, tc.inStderr, errOut)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("the failed command created %s", e.Name())
			}
		})
	}
}

// TestReadLimitAndAll: read stops at --limit (100 by default) and then says
// on standard error that more events follow and how to continue; --limit 0
// reads every event, across store pages.
func TestReadLimitAndAll(t *testing.T) {
	dir, _, seeded := seedSmallOut(t, "--heavy", "1100")
	m := regexp.MustCompile(`key account: ([0-9a-f-]{36})`).FindStringSubmatch(seeded)
	if m == nil {
		t.Fatalf("no key account in:\n%s", seeded)
	}
	heavy := m[1]
	code, out, _ := cli(t, "", "export", "--data", dir)
	if code != 0 {
		t.Fatalf("export: exit %d", code)
	}
	total := seedEvents(decodeRecords(t, out))
	if total <= 1100 {
		t.Fatalf("the seed wrote %d events, want more than the key account's 1100", total)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		lines  int
		notice string // in stderr; "" for none
	}{
		{"log, default limit", []string{"read", "--all"}, 100, "--after 100"},
		{"log, --limit 0", []string{"read", "--all", "--limit", "0"}, total, ""},
		{"stream, limit at the end", []string{"read", heavy, "--limit", "1100"}, 1100, ""},
		{"stream, default limit", []string{"read", heavy}, 100, "--from 100"},
		{"stream, --limit 0", []string{"read", heavy, "--limit", "0"}, 1100, ""},
		{"stream backwards, limit", []string{"read", heavy, "--backwards", "--limit", "3"}, 3, "--from 1096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, "", append(tc.args, "--json", "--data", dir)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			// Each read of the log is in the access log (AccessRecorded
			// entries after the seed's events): count the seed's events.
			recs := decodeRecords(t, out)
			if seedEvents(recs) != tc.lines {
				t.Errorf("%d events, want %d", len(recs), tc.lines)
			}
			for i := 1; i < len(recs); i++ {
				if recs[i].Position == recs[i-1].Position {
					t.Fatalf("event at position %d printed twice", recs[i].Position)
				}
			}
			if tc.notice == "" && errOut != "" {
				t.Errorf("unexpected notice: %s", errOut)
			}
			if tc.notice != "" && !(strings.Contains(errOut, "more events follow") && strings.Contains(errOut, tc.notice)) {
				t.Errorf("stderr %q lacks the notice naming %s", errOut, tc.notice)
			}
		})
	}
}

// seedEvents counts the records that are not access-log entries.
func seedEvents(recs []eventstore.Record) int {
	n := 0
	for _, r := range recs {
		if r.Type != domain.TypeAccessRecorded {
			n++
		}
	}
	return n
}

func decodeRecords(t *testing.T, ndjson string) []eventstore.Record {
	t.Helper()
	var recs []eventstore.Record
	for line := range strings.Lines(ndjson) {
		var r eventstore.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestVerifyCustomerSummary: verify --customer --summary prints the
// customer's one line of counts instead of a line per event.
func TestVerifyCustomerSummary(t *testing.T) {
	dir := t.TempDir()
	store := []string{"--data", dir}
	customer := appendHistory(t, store, 6)
	vkey, cpFile := checkpointCLI(t, dir, store)
	appendHistory(t, store, 1) // newer than the checkpoint, another customer

	args := []string{"verify", "--data", dir, "--checkpoint", cpFile, "--verifier", vkey, "--customer", customer}
	code, full, errOut := cli(t, "", args...)
	if code != 0 || strings.Count(full, "  version ") != 6 {
		t.Fatalf("verify --customer: exit %d, want a line per event:\n%s%s", code, full, errOut)
	}
	code, out, errOut := cli(t, "", append(args, "--summary")...)
	if code != 0 {
		t.Fatalf("verify --summary: exit %d: %s", code, errOut)
	}
	var customerLines []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "customer ") || strings.HasPrefix(line, "  ") {
			customerLines = append(customerLines, line)
		}
	}
	if len(customerLines) != 1 || !strings.Contains(customerLines[0], "6 events: 6 verified, 0 newer than the checkpoint, 0 failed, 0 missing") {
		t.Fatalf("verify --summary: want one line of counts, got:\n%s", out)
	}
	if code, _, _ := cli(t, "", "verify", "--data", dir, "--checkpoint", cpFile, "--verifier", vkey, "--summary"); code != 2 {
		t.Fatalf("--summary without --customer: exit %d, want 2", code)
	}
}

// TestStatusLagCountsFoldedEvents: the access record an offline view
// appends is folded by no read model, so status shows no lag for it; an
// event a read model folds is lag for that read model only.
func TestStatusLagCountsFoldedEvents(t *testing.T) {
	dir, c := seedSmall(t)
	if code, _, errOut := cli(t, "", "replay", "--data", dir); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	type row struct {
		Name       string `json:"name"`
		Checkpoint uint64 `json:"checkpoint"`
		Head       uint64 `json:"head"`
		Lag        uint64 `json:"lag"`
	}
	status := func() map[string]row {
		t.Helper()
		code, out, errOut := cli(t, "", "status", "--json", "--digest=false", "--data", dir)
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		var rows []row
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
		m := map[string]row{}
		for _, r := range rows {
			m[r.Name] = r
		}
		return m
	}
	if code, _, errOut := cli(t, "", "view", c, "--data", dir); code != 0 {
		t.Fatalf("view: exit %d: %s", code, errOut)
	}
	for name, r := range status() {
		if r.Head != r.Checkpoint+1 || r.Lag != 0 {
			t.Errorf("after an offline view, %s: checkpoint %d, head %d, lag %d; want the access record past the checkpoint and lag 0", name, r.Checkpoint, r.Head, r.Lag)
		}
	}
	if code, _, errOut := cli(t, "", "append", "--data", dir, "--customer", c, "--type", "CallLogged",
		"--event", `{"direction":"inbound","durationSeconds":60,"agent":"user:marta","outcome":"connected"}`); code != 0 {
		t.Fatalf("append: exit %d: %s", code, errOut)
	}
	st := status()
	for name, want := range map[string]uint64{"customer360": 1, "analytics_channels": 1, "analytics_tickets": 0} {
		if r, ok := st[name]; !ok || r.Lag != want || r.Head != r.Checkpoint+2 {
			t.Errorf("after a call, %s: %+v, want lag %d with the head 2 past the checkpoint", name, r, want)
		}
	}
}

// TestFailedImportKeepsWhatItWrote: a command that fails after writing
// events into the store it created keeps that store: only an empty one is
// taken back.
func TestFailedImportKeepsWhatItWrote(t *testing.T) {
	src, _ := seedSmall(t)
	code, out, errOut := cli(t, "", "export", "--data", src)
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	first, _, _ := strings.Cut(out, "\n")
	in := filepath.Join(t.TempDir(), "rows.ndjson")
	if err := os.WriteFile(in, []byte(first+"\n"+`{"bogus":1}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new-ledger")
	if code, _, errOut := cli(t, "", "import", in, "--data", dir); code != 1 || !strings.Contains(errOut, "rejected") {
		t.Fatalf("import of a good and a bad row: exit %d, want 1: %s", code, errOut)
	}
	code, out, errOut = cli(t, "", "read", "--all", "--json", "--data", dir)
	if code != 0 || len(decodeRecords(t, out)) != 1 {
		t.Fatalf("read after the partial import: exit %d, %s %s; want the good row", code, out, errOut)
	}
}
