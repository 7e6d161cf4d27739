package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/adapters/exporter"
	"github.com/cxledger/cxledger/adapters/importer"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/parquet-go/parquet-go"
)

const importCustomer = "15cf8f44-2ec6-441c-9f2e-229a8d221eaf"

// importNDJSON has a bad row on line 3 (an unknown event type).
var importNDJSON = strings.Join([]string{
	`{"customerId":"` + importCustomer + `","type":"CustomerRegistered","event":{"name":"Zoë Ångström-Nguyễn","country":"FR"},"occurredAt":"2025-03-14T09:26:53Z"}`,
	`{"identifier":{"kind":"email","value":"bruno@example.es"},"customerName":"Bruno Díaz","type":"NoteAdded","event":{"body":"Called about order #10472"},"occurredAt":"2025-03-14T09:30:00Z","channel":"phone"}`,
	`{"customerId":"` + importCustomer + `","type":"CustomerUpdated","event":{},"occurredAt":"2025-03-14T09:31:00Z"}`,
	`{"customerId":"` + importCustomer + `","type":"CallLogged","event":{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"},"occurredAt":"2025-03-14T09:32:00Z"}`,
}, "\n") + "\n"

// freshStores returns, per backend, the flags of two empty stores.
func freshStores(t *testing.T) map[string][2][]string {
	return map[string][2][]string{
		"embedded": {{"--data", t.TempDir()}, {"--data", t.TempDir()}},
		"postgres": {
			{"--store", pgtest.URL(t), "--pg-schema", pgtest.Schema(t)},
			{"--store", pgtest.URL(t), "--pg-schema", pgtest.Schema(t)},
		},
	}
}

func TestImportExportCLI(t *testing.T) {
	for name, stores := range freshStores(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "touchpoints.ndjson")
			if err := os.WriteFile(in, []byte(importNDJSON), 0o600); err != nil {
				t.Fatal(err)
			}
			first, second := stores[0], stores[1]
			with := func(store []string, args ...string) []string {
				return append(append([]string{args[0]}, store...), args[1:]...)
			}

			rejects := filepath.Join(dir, "rejects.ndjson")
			code, out, errOut := cli(t, "", with(first, "import", "--rejects", rejects, in)...)
			if code != 1 || !strings.Contains(errOut, "line=3") || !strings.Contains(errOut, "CustomerUpdated") {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			var sum struct{ Rows, Imported, Rejected, Registered int }
			if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Rows != 4 || sum.Imported != 3 || sum.Rejected != 1 || sum.Registered != 1 {
				t.Fatalf("summary %q: %+v %v", out, sum, err)
			}
			rej, err := os.ReadFile(rejects)
			if err != nil || !strings.Contains(string(rej), `"line":3`) || !strings.Contains(string(rej), `CustomerUpdated`) {
				t.Fatalf("rejects file %q: %v", rej, err)
			}
			log := readJSON(t, first)
			if len(log) != 5 { // Zoë: registered, call; Bruno: registered, linked, note
				t.Fatalf("%d events after import", len(log))
			}

			// The same file again: same batch (its hash), nothing written.
			if code, _, errOut := cli(t, "", with(first, "import", in)...); code != 1 || !strings.Contains(errOut, "line=3") {
				t.Fatalf("second import: exit %d: %s", code, errOut)
			}
			if again := readJSON(t, first); len(again) != len(log) {
				t.Fatalf("second import wrote %d events", len(again)-len(log))
			}

			// Export, import the export into the second store: same events.
			export := filepath.Join(dir, "log.ndjson")
			if code, _, errOut := cli(t, "", with(first, "export", "--out", export, "--page", "2")...); code != 0 {
				t.Fatalf("export: exit %d: %s", code, errOut)
			}
			if code, _, errOut := cli(t, "", with(second, "import", "--batch", "restore", export)...); code != 0 {
				t.Fatalf("import the export: exit %d: %s", code, errOut)
			}
			restored := readJSON(t, second)
			if !slices.EqualFunc(sortedByStream(log), sortedByStream(restored), sameEvent) {
				t.Fatalf("restored log differs:\n%v\n%v", log, restored)
			}

			// One customer as NDJSON on stdout.
			code, out, errOut = cli(t, "", with(first, "export", "--customer", importCustomer, "--types", "CallLogged")...)
			if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"type":"CallLogged"`) {
				t.Fatalf("export one customer: exit %d\n%s\n%s", code, out, errOut)
			}

			// Parquet.
			pq := filepath.Join(dir, "log.parquet")
			if code, _, errOut := cli(t, "", with(first, "export", "--format", "parquet", "--out", pq)...); code != 0 {
				t.Fatalf("export parquet: exit %d: %s", code, errOut)
			}
			rows, err := parquet.ReadFile[exporter.Row](pq)
			rows = slices.DeleteFunc(rows, func(r exporter.Row) bool { return r.Type == domain.TypeAccessRecorded })
			if err != nil || len(rows) != len(log) || rows[0].EventID != log[0].ID.String() {
				t.Fatalf("parquet rows %+v: %v", rows, err)
			}
		})
	}
}

func TestImportCSVWithFlags(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "notes.csv")
	csv := "Email,When,Note,Minutes\n" +
		"zoe@example.fr,2025-03-14,Asked about delivery,12\n" +
		"zoe@example.fr,14/03/2025,Bad date,3\n" +
		"bruno@example.es,2025-03-15,\"Wants a call back, after 17:00\",5\n"
	if err := os.WriteFile(in, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	store := []string{"--data", t.TempDir()}
	args := append([]string{"import"}, store...)
	args = append(args, "--identifier", "email=Email", "--type", "NoteAdded", "--occurred-at-column", "When", "--time-layout", "2006-01-02",
		"--field", "body=Note", "--channel", "crm", in)
	code, out, errOut := cli(t, "", args...)
	if code != 1 || !strings.Contains(errOut, "line=3") || !strings.Contains(errOut, "field=When") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	log := readJSON(t, store)
	if len(log) != 6 || log[2].Metadata.Channel != "crm" || log[2].Type != "NoteAdded" {
		t.Fatalf("log %+v", log)
	}

	// Usage errors: a mapping that does not fit the header, stdin
	// without --batch.
	if code, _, errOut := cli(t, "", "import", "--data", t.TempDir(), "--customer-column", "Id", "--type", "NoteAdded", "--occurred-at-column", "When", in); code != 2 {
		t.Fatalf("bad mapping: exit %d: %s", code, errOut)
	}
	if code, _, errOut := cli(t, "{}\n", "import", "--data", t.TempDir(), "-"); code != 2 || !strings.Contains(errOut, "--batch") {
		t.Fatalf("stdin without batch: exit %d: %s", code, errOut)
	}
	if code, out, errOut := cli(t, importNDJSON, "import", "--data", t.TempDir(), "--batch", "stdin", "--strict", "-"); code != 1 || !strings.Contains(out, `"imported":2`) {
		t.Fatalf("strict from stdin: exit %d\n%s\n%s", code, out, errOut)
	}
}

// readJSON reads a store's whole log through the CLI.
func readJSON(t *testing.T, store []string) []eventstore.Record {
	t.Helper()
	code, out, errOut := cli(t, "", append(append([]string{"read"}, store...), "--all", "--json", "--limit", "10000")...)
	if code != 0 {
		t.Fatalf("read: exit %d: %s", code, errOut)
	}
	var recs []eventstore.Record
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var r eventstore.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == domain.TypeAccessRecorded {
			continue // the footprint of earlier reads, this test's own
		}
		recs = append(recs, r)
	}
	return recs
}

// sortedByStream orders records by stream, then version: the order an
// import must keep (the global order across customers may differ).
func sortedByStream(recs []eventstore.Record) []eventstore.Record {
	s := slices.Clone(recs)
	slices.SortFunc(s, func(a, b eventstore.Record) int {
		if c := strings.Compare(a.Stream, b.Stream); c != 0 {
			return c
		}
		return int(a.Version) - int(b.Version)
	})
	return s
}

func sameEvent(a, b eventstore.Record) bool {
	return a.ID == b.ID && a.Stream == b.Stream && a.Version == b.Version && a.Type == b.Type &&
		string(a.Data) == string(b.Data) && a.Metadata == b.Metadata
}

// TestImportAfterForget: on both backends, `import` registers a customer
// for an unknown e-mail under the keyed id broker ingest derives (not the
// unkeyed uuid v5); a re-run appends nothing; after `forget`, a re-run of
// the same file still appends nothing (its rows stay with the erased
// customer), and a new file with the same e-mail registers a NEW customer
// — the next generation — that `view --identifier` finds.
func TestImportAfterForget(t *testing.T) {
	for name, store := range storeFlags(t) {
		t.Run(name, func(t *testing.T) {
			with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
			must := func(args ...string) string {
				t.Helper()
				code, out, errOut := cli(t, "", with(args...)...)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
				}
				return out
			}
			dir := t.TempDir()
			file := func(name string, rows ...string) string {
				path := filepath.Join(dir, name)
				if err := os.WriteFile(path, []byte(strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}
			const email = "ana.sousa@example.pt"
			row := func(body string) string {
				return `{"identifier":{"kind":"email","value":"Ana.Sousa@Example.pt"},"customerName":"Ana Sousa","type":"NoteAdded","event":{"body":"` + body + `"},"occurredAt":"2025-03-14T09:26:53Z"}`
			}
			march := file("march.ndjson", row("asked for a refund"), row("refund sent"))
			gen0, gen1 := testKeyring(t).CustomerID(domain.IdentifierEmail, email, 0), testKeyring(t).CustomerID(domain.IdentifierEmail, email, 1)
			if gen0 == importer.CustomerIDFor(domain.IdentifierEmail, email) {
				t.Fatal("the keyed id is the unkeyed uuid v5")
			}
			summary := func(out string) map[string]any {
				t.Helper()
				var m map[string]any
				if err := json.Unmarshal([]byte(out), &m); err != nil {
					t.Fatalf("import output %q: %v", out, err)
				}
				return m
			}
			if s := summary(must("import", march)); s["imported"] != 2.0 || s["registered"] != 1.0 {
				t.Fatalf("import: %v", s)
			}
			log := customerEvents(t, store)
			if len(log) != 4 || log[0].Stream != domain.StreamID(gen0) {
				t.Fatalf("after the import the log holds %d events, the first in %s; want 4 in %s", len(log), log[0].Stream, domain.StreamID(gen0))
			}
			if s := summary(must("import", march)); s["imported"] != 2.0 || len(customerEvents(t, store)) != 4 {
				t.Fatalf("a re-run: %v, %d events", s, len(customerEvents(t, store)))
			}

			must("replay")
			must("forget", gen0.String(), "--request", "DSR-2026-0011")
			if s := summary(must("import", march)); s["forgotten"] != 2.0 || s["rejected"] != 0.0 || len(customerEvents(t, store)) != 5 {
				t.Fatalf("a re-run after the erasure: %v, %d events; want both rows counted forgotten and nothing appended", s, len(customerEvents(t, store)))
			}

			april := file("april.ndjson", row("new here"))
			if s := summary(must("import", april)); s["imported"] != 1.0 || s["registered"] != 1.0 {
				t.Fatalf("a new file after the erasure: %v", s)
			}
			log = customerEvents(t, store)
			if len(log) != 8 || log[5].Stream != domain.StreamID(gen1) {
				t.Fatalf("the new file's events: %d events, %s; want the new customer %s", len(log), log[5].Stream, gen1)
			}
			must("replay")
			if out := must("view", "--identifier", "email:"+email); !strings.Contains(out, gen1.String()) || !strings.Contains(out, "Ana Sousa") {
				t.Fatalf("the e-mail finds:\n%s", out)
			}
			if s := summary(must("import", march)); s["forgotten"] != 2.0 || len(customerEvents(t, store)) != 8 {
				t.Fatalf("a re-run of the first file once the e-mail names the new customer: %v, %d events", s, len(customerEvents(t, store)))
			}
		})
	}
}

// customerEvents reads the customers' events of a store's log (leaving out
// the access log, which CLI reads such as view write to).
func customerEvents(t *testing.T, store []string) []eventstore.Record {
	t.Helper()
	return slices.DeleteFunc(readJSON(t, store), func(r eventstore.Record) bool { return !strings.HasPrefix(r.Stream, "customer-") })
}
