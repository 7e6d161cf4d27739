package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/timeline"
)

// person is one customer's personal data, with the distinctive ASCII
// words a scan of the stored bytes looks for (case-insensitively).
type person struct {
	name, email, address, note, reason string
	words                              []string
}

var (
	zoePerson = person{
		name:    "Zoë Plaintextova-Nguyễn",
		email:   "Zoe.QXsecret@Example.org",
		address: "7 rue Quixotesque\n75011 Paris",
		note:    "door code QX-4711, ask for the quokka",
		reason:  "Zoë Plaintextova asked by phone",
		words:   []string{"plaintextova", "qxsecret", "quixotesque", "quokka"},
	}
	anaPerson = person{
		name:    "Ana Controlinha-Sousa",
		email:   "ana.ctrlsecret@example.pt",
		address: "Rua Zebrafinch 9, Lisboa",
		note:    "likes the wombat blend",
		words:   []string{"controlinha", "ctrlsecret", "zebrafinch", "wombat"},
	}
)

// backendUnderTest is one store the erasure test runs on: the CLI flags,
// the same as a storeConfig, and how to read every byte it keeps.
type backendUnderTest struct {
	flags []string
	cfg   storeConfig
	// stored returns everything the backend keeps on disk, as text.
	stored func(t *testing.T) string
}

func erasureBackends(t *testing.T) map[string]func(t *testing.T) backendUnderTest {
	return map[string]func(t *testing.T) backendUnderTest{
		"embedded": func(t *testing.T) backendUnderTest {
			dir := t.TempDir()
			return backendUnderTest{
				flags: []string{"--data", dir},
				cfg:   storeConfig{Data: dir},
				// The raw bytes of every file: the events (ledger.db), the
				// read models (readmodels.db), the keys (keys.db), the rest.
				stored: func(t *testing.T) string {
					var all bytes.Buffer
					files, err := os.ReadDir(dir)
					if err != nil {
						t.Fatal(err)
					}
					seen := map[string]bool{}
					for _, f := range files {
						b, err := os.ReadFile(filepath.Join(dir, f.Name()))
						if err != nil {
							t.Fatal(err)
						}
						seen[f.Name()] = len(b) > 0
						all.Write(b)
					}
					for _, name := range []string{dataFileName, "readmodels.db", "keys.db"} {
						if !seen[name] {
							t.Fatalf("no %s in the data directory: the scan would prove nothing", name)
						}
					}
					return all.String()
				},
			}
		},
		"postgres": func(t *testing.T) backendUnderTest {
			url, schema := pgtest.URL(t), pgtest.Schema(t)
			return backendUnderTest{
				flags: []string{"--store", url, "--pg-schema", schema},
				cfg:   storeConfig{Store: url, Schema: schema},
				// Every row of every table of the schema as text: the events,
				// the read models (rm_*), the keys, the bookkeeping.
				stored: func(t *testing.T) string {
					ctx := context.Background()
					conn, err := pgx.Connect(ctx, url)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close(ctx)
					rows, err := conn.Query(ctx, "select table_name from information_schema.tables where table_schema = $1 and table_type = 'BASE TABLE' order by 1", schema)
					if err != nil {
						t.Fatal(err)
					}
					tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
					if err != nil {
						t.Fatal(err)
					}
					var all strings.Builder
					rmTables, keyTable := 0, false
					for _, table := range tables {
						var text string
						if err := conn.QueryRow(ctx, "select coalesce(string_agg(t::text, E'\\n'), '') from "+schema+"."+table+" t").Scan(&text); err != nil {
							t.Fatalf("scan %s: %v", table, err)
						}
						if strings.HasPrefix(table, "rm_") && text != "" {
							rmTables++
						}
						keyTable = keyTable || table == "cxledger_keys" && text != ""
						all.WriteString(table + ":\n" + text + "\n")
					}
					if rmTables < 7 || !keyTable || !strings.Contains(all.String(), "CustomerRegistered") {
						t.Fatalf("the schema holds %d filled read-model tables, keys %v: the scan would prove nothing\n%s", rmTables, keyTable, tables)
					}
					return all.String()
				},
			}
		},
	}
}

// TestForgetErasesEverywhere is the acceptance test, on the
// embedded store and on PostgreSQL: personal data never reaches the disk
// in plaintext (events, read models, keys); after `forget` and a full
// rebuild of the read models the customer reads as erased in the view,
// the timeline, the stream and the export, is not found by e-mail, and
// keeps their figures (orders, refunds, tickets); the stored bytes of the
// events recorded before the erasure are unchanged; another customer is
// untouched.
func TestForgetErasesEverywhere(t *testing.T) {
	for name, newBackend := range erasureBackends(t) {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t)
			with := func(args ...string) []string { return append(append([]string{args[0]}, b.flags...), args[1:]...) }
			must := func(stdin string, args ...string) string {
				t.Helper()
				code, out, errOut := cli(t, stdin, with(args...)...)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
				}
				return out
			}
			jsonString := func(s string) string { b, _ := json.Marshal(s); return string(b) }
			register := func(p person) uuid.UUID {
				reg := decodeAppended(t, must("", "append", "--type", "CustomerRegistered", "--event",
					`{"name":`+jsonString(p.name)+`,"country":"FR","address":`+jsonString(p.address)+`}`))
				c := reg.CustomerID.String()
				for _, ev := range [][2]string{
					{"IdentifierLinked", `{"kind":"email","value":` + jsonString(p.email) + `}`},
					{"NoteAdded", `{"body":` + jsonString(p.note) + `}`},
					{"EmailSent", `{"messageId":"<m-` + c + `@shop.example>","subject":` + jsonString("Hello "+p.name) + `,"from":"shop@shop.example","to":` + jsonString(p.email) + `}`},
					{"PurchaseCompleted", `{"orderId":"` + uuid.NewSHA1(reg.CustomerID, []byte("order")).String() + `","amount":1250,"currency":"EUR","lines":[{"sku":"COF-1","description":"Coffee","quantity":1,"unitAmount":1250}]}`},
					{"RefundIssued", `{"refundId":"` + uuid.New().String() + `","orderId":"` + uuid.NewSHA1(reg.CustomerID, []byte("order")).String() + `","amount":250,"currency":"EUR","reason":` + jsonString("damaged, said "+p.name) + `}`},
					{"TicketOpened", `{"ticketId":"` + uuid.New().String() + `","subject":` + jsonString(p.name+": parcel damaged") + `,"priority":"high","channel":"email"}`},
					{"SurveyAnswered", `{"survey":"nps-q1","nps":9,"comment":` + jsonString(p.note) + `}`},
				} {
					must("", "append", "--customer", c, "--type", ev[0], "--event", ev[1])
				}
				return reg.CustomerID
			}
			zoe, ana := register(zoePerson), register(anaPerson)
			must("", "replay")

			// Before the erasure: revealed at the edges, sealed on disk.
			if out := must("", "view", zoe.String()); !strings.Contains(out, zoePerson.name) || !strings.Contains(out, strings.ToLower(zoePerson.email)) {
				t.Fatalf("view before the erasure does not show the name and canonical e-mail:\n%s", out)
			}
			if out := must("", "view", "--identifier", "email:"+zoePerson.email); !strings.Contains(out, zoe.String()) {
				t.Fatalf("lookup by e-mail before the erasure:\n%s", out)
			}
			if out := must("", "export", "--customer", zoe.String()); !strings.Contains(out, zoePerson.note) {
				t.Fatalf("export before the erasure does not show the note:\n%s", out)
			}
			checkAbsent(t, "before the erasure", b.stored(t), zoePerson, anaPerson)
			before := rawRecords(t, b.cfg)

			out := must("", "forget", zoe.String(), "--request", "DSR-2026-0007", "--reason", zoePerson.reason)
			if !strings.Contains(out, `"appended":true`) {
				t.Fatalf("forget: %s", out)
			}
			if out := must("", "forget", zoe.String(), "--request", "DSR-2026-0007"); !strings.Contains(out, `"appended":false`) {
				t.Fatalf("forget again: %s", out)
			}
			if code, _, errOut := cli(t, "", with("append", "--customer", zoe.String(), "--type", "NoteAdded", "--event", `{"body":"after"}`)...); code != 1 || !strings.Contains(errOut, "forgotten") {
				t.Fatalf("append after the erasure: exit %d, %s", code, errOut)
			}
			must("", "replay")

			// Nowhere on disk, after the erasure and a full rebuild.
			checkAbsent(t, "after the erasure and a rebuild", b.stored(t), zoePerson, anaPerson)
			after := rawRecords(t, b.cfg)
			if len(after) != len(before)+1 {
				t.Fatalf("%d events after the erasure, %d before: want one more", len(after), len(before))
			}
			for i, r := range before {
				if !bytes.Equal(after[i].Data, r.Data) || after[i].ID != r.ID {
					t.Fatalf("the stored bytes of event %s changed:\n%s\n%s", r.ID, r.Data, after[i].Data)
				}
			}

			// The view: erased, figures intact.
			var v query.CustomerView
			if err := json.Unmarshal([]byte(must("", "view", zoe.String())), &v); err != nil {
				t.Fatal(err)
			}
			if v.Erasure == nil || v.Erasure.Request != "DSR-2026-0007" || v.Profile != (customer360.Profile{}) || len(v.Identifiers) != 0 {
				t.Errorf("view after the erasure: erasure %+v, profile %+v, identifiers %+v", v.Erasure, v.Profile, v.Identifiers)
			}
			if v.Spend["EUR"] != 1250 || v.Refunds["EUR"] != 250 || v.LifetimeValue["EUR"] != 1000 || v.TicketCount != 1 || v.Events != 9 || len(v.Orders) != 1 {
				t.Errorf("figures after the erasure: spend %v refunds %v ltv %v tickets %d events %d orders %d", v.Spend, v.Refunds, v.LifetimeValue, v.TicketCount, v.Events, len(v.Orders))
			}
			if code, _, errOut := cli(t, "", with("view", "--identifier", "email:"+zoePerson.email)...); code != 1 || !strings.Contains(errOut, "not found") {
				t.Errorf("lookup of the forgotten e-mail: exit %d, %s", code, errOut)
			}

			// The stream and the export: every personal value erased.
			for _, args := range [][]string{{"read", "--json", zoe.String()}, {"export", "--customer", zoe.String()}} {
				out := must("", args...)
				checkAbsentText(t, args[0], out, zoePerson)
				if strings.Count(out, keyring.Erased) < 9 || strings.Contains(out, "enc:v1:") || !strings.Contains(out, `"amount":1250`) {
					t.Errorf("%s after the erasure: want personal values erased, figures kept:\n%s", args[0], out)
				}
			}

			// The timeline, as the API reads it.
			entries := timelineOf(t, b.cfg, zoe)
			if len(entries) != 9 {
				t.Fatalf("%d timeline entries, want 9", len(entries))
			}
			for _, e := range entries {
				if !e.Erased || strings.Contains(e.Summary, "enc:v1:") {
					t.Errorf("timeline entry %s %q erased %v", e.Type, e.Summary, e.Erased)
				}
				checkAbsentText(t, "timeline", e.Summary, zoePerson)
			}

			// Ana is untouched.
			if out := must("", "view", "--identifier", "email:"+anaPerson.email); !strings.Contains(out, anaPerson.name) {
				t.Errorf("the other customer's view:\n%s", out)
			}
			if out := must("", "export", "--customer", ana.String()); !strings.Contains(out, anaPerson.note) || strings.Contains(out, keyring.Erased) {
				t.Errorf("the other customer's export:\n%s", out)
			}
			if entries := timelineOf(t, b.cfg, ana); len(entries) < 2 || !strings.Contains(entries[1].Summary, strings.Split(anaPerson.email, "@")[0]) {
				t.Errorf("the other customer's timeline: %+v", entries)
			}
		})
	}
}

func checkAbsent(t *testing.T, when, stored string, people ...person) {
	t.Helper()
	for _, p := range people {
		checkAbsentText(t, when+": stored data", stored, p)
	}
}

func checkAbsentText(t *testing.T, where, text string, p person) {
	t.Helper()
	lower := strings.ToLower(text)
	for _, w := range p.words {
		if i := strings.Index(lower, w); i >= 0 {
			t.Errorf("%s holds plaintext %q: …%s…", where, w, text[max(0, i-60):min(len(text), i+60)])
		}
	}
}

// rawRecords reads the whole log as stored, bypassing every edge.
func rawRecords(t *testing.T, cfg storeConfig) []eventstore.Record {
	t.Helper()
	ctx := context.Background()
	store, err := openStore(ctx, cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recs, err := store.ReadAll(ctx, eventstore.ReadAllOptions{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// timelineOf reads a customer's whole timeline through adapters/query with
// the keyring, as the API does.
func timelineOf(t *testing.T, cfg storeConfig, customer uuid.UUID) []timeline.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kr, err := openKeyring(ctx, cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	rm, err := openReadModels(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	store, err := openStore(ctx, cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	q := query.New(rm)
	q.Keys, q.Log = kr, store
	res, err := q.Timeline(ctx, customer, timeline.Query{Limit: timeline.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return res.Entries
}
