package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// TestMigrateEmbeddedToPostgresAndBack copies a ledger written through the
// CLI to PostgreSQL and back to a fresh data directory, verifying each copy,
// and checks that a second run resumes with nothing left to copy.
func TestMigrateEmbeddedToPostgresAndBack(t *testing.T) {
	dataDir, backDir := t.TempDir(), t.TempDir()
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	for range 3 {
		code, out, errOut := cli(t, "", "append", "--data", dataDir, "--type", "CustomerRegistered", "--event", `{"name":"Zoë Ñúñez","country":"ES"}`, "--actor", "service:crm", "--channel", "web")
		if code != 0 {
			t.Fatalf("append: exit %d: %s", code, errOut)
		}
		c := decodeAppended(t, out)
		code, _, errOut = cli(t, "", "append", "--data", dataDir, "--customer", c.CustomerID.String(), "--type", "CallLogged", "--channel", "phone",
			"--event", `{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"}`)
		if code != 0 {
			t.Fatalf("append call: exit %d: %s", code, errOut)
		}
	}
	migrateCLI := func(from, to string, wantCopied, wantSkipped int64) migrateSummary {
		t.Helper()
		code, out, errOut := cli(t, "", "migrate", "--from", from, "--to", to, "--from-pg-schema", schema, "--to-pg-schema", schema, "--batch", "2")
		if code != 0 {
			t.Fatalf("migrate %s → %s: exit %d: %s", from, to, code, errOut)
		}
		var sum migrateSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("migrate output %q: %v", out, err)
		}
		if sum.Copied != wantCopied || sum.Skipped != wantSkipped || sum.Verified != 6 || !sum.RecordedAtPreserved || len(sum.Digest) != 64 {
			t.Errorf("migrate %s → %s = %+v, want %d copied, %d skipped, 6 verified", from, to, sum, wantCopied, wantSkipped)
		}
		if !strings.Contains(errOut, "phase=copy") || !strings.Contains(errOut, "phase=verify") {
			t.Errorf("no progress on stderr: %s", errOut)
		}
		return sum
	}
	there := migrateCLI(dataDir, url, 6, 0)
	again := migrateCLI(dataDir, url, 0, 6) // resumes: nothing left
	back := migrateCLI(url, backDir, 6, 0)
	if there.Digest != again.Digest || there.Digest != back.Digest {
		t.Errorf("digests differ: %s, %s, %s", there.Digest, again.Digest, back.Digest)
	}
	if code, _, _ := cli(t, "", "migrate", "--from", dataDir, "--to", dataDir); code != 2 {
		t.Errorf("migrate onto itself: exit %d, want 2", code)
	}
	if code, _, _ := cli(t, "", "migrate", "--to", dataDir); code != 2 {
		t.Errorf("migrate without --from: exit %d, want 2", code)
	}
}

// TestMigrateCarriesKeys migrates a ledger with sealed personal data
// embedded → PostgreSQL → embedded: each target reveals a live customer's
// plaintext in view, read and timeline, while a customer forgotten before
// the migration stays erased there; the keys are resumable like the
// events; and a target whose key store belongs to another master key is
// refused before anything is copied.
func TestMigrateCarriesKeys(t *testing.T) {
	dataDir, backDir := t.TempDir(), t.TempDir()
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	pg := []string{"--store", url, "--pg-schema", schema}
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := cli(t, "", args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	register := func(p person) string {
		c := decodeAppended(t, must("append", "--data", dataDir, "--type", "CustomerRegistered", "--event",
			`{"name":"`+p.name+`","country":"FR"}`)).CustomerID.String()
		must("append", "--data", dataDir, "--customer", c, "--type", "IdentifierLinked", "--event", `{"kind":"email","value":"`+p.email+`"}`)
		must("append", "--data", dataDir, "--customer", c, "--type", "NoteAdded", "--event", `{"body":"`+p.note+`"}`)
		return c
	}
	ana, zoe := register(anaPerson), register(zoePerson)
	must("forget", "--data", dataDir, zoe, "--request", "DSR-2026-0007")

	migrateCLI := func(from, to string) migrateSummary {
		t.Helper()
		out := must("migrate", "--from", from, "--to", to, "--from-pg-schema", schema, "--to-pg-schema", schema, "--batch", "3")
		var sum migrateSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("migrate output %q: %v", out, err)
		}
		return sum
	}
	wantKeys := keysSummary{Copied: 1, Tombstones: 1, Verified: 2}
	if sum := migrateCLI(dataDir, url); sum.Copied != 7 || sum.Keys != wantKeys {
		t.Fatalf("migrate embedded → PostgreSQL = %+v, want 7 events, Ana's key and Zoë's tombstone", sum)
	}
	if sum := migrateCLI(dataDir, url); sum.Copied != 0 || sum.Keys != (keysSummary{Skipped: 2, Verified: 2}) {
		t.Fatalf("migrate again = %+v, want nothing left to copy", sum)
	}
	if sum := migrateCLI(url, backDir); sum.Copied != 7 || sum.Keys != wantKeys {
		t.Fatalf("migrate PostgreSQL → embedded = %+v", sum)
	}

	for name, flags := range map[string][]string{"postgres": pg, "embedded back": {"--data", backDir}} {
		t.Run(name, func(t *testing.T) {
			with := func(args ...string) []string { return append(append([]string{args[0]}, flags...), args[1:]...) }
			must(with("replay")...)
			view := must(with("view", ana)...)
			read := must(with("read", "--json", ana)...)
			for what, out := range map[string]string{"view": view, "read": read} {
				if !strings.Contains(out, anaPerson.name) || !strings.Contains(out, anaPerson.email) || strings.Contains(out, "enc:v1:") {
					t.Errorf("%s of the live customer in the target does not reveal the plaintext:\n%s", what, out)
				}
			}
			if !strings.Contains(read, anaPerson.note) {
				t.Errorf("read of the live customer in the target does not reveal the note:\n%s", read)
			}
			cfg := storeConfig{Data: backDir}
			if name == "postgres" {
				cfg = storeConfig{Store: url, Schema: schema}
			}
			entries := timelineOf(t, cfg, uuid.MustParse(ana))
			var all strings.Builder
			for _, e := range entries {
				all.WriteString(e.Summary + "\n")
			}
			if !strings.Contains(all.String(), anaPerson.note) || strings.Contains(all.String(), "enc:v1:") {
				t.Errorf("the live customer's timeline in the target:\n%s", all.String())
			}
			for _, args := range [][]string{{"view", zoe}, {"read", "--json", zoe}} {
				out := must(with(args...)...)
				checkAbsentText(t, args[0]+" of the forgotten customer in the target", out, zoePerson)
				if strings.Contains(out, "enc:v1:") {
					t.Errorf("%s of the forgotten customer shows tokens:\n%s", args[0], out)
				}
			}
			if !strings.Contains(must(with("read", "--json", zoe)...), keyring.Erased) {
				t.Error("the forgotten customer's events do not read as erased in the target")
			}
			for _, e := range timelineOf(t, cfg, uuid.MustParse(zoe)) {
				checkAbsentText(t, "timeline of the forgotten customer", e.Summary, zoePerson)
			}
		})
	}

	// Another master key on the target's side: refused, nothing copied.
	otherDir := t.TempDir()
	otherKey := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := keyring.LoadOrCreateMasterKeyFile(otherKey); err != nil {
		t.Fatal(err)
	}
	// Sets up its key store under the other key.
	kr, err := openKeyring(context.Background(), storeConfig{Data: otherDir, MasterKeyFile: otherKey}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	kr.Close()
	code, _, errOut := cli(t, "", "migrate", "--from", dataDir, "--to", otherDir)
	if code != 1 || !strings.Contains(errOut, "another master key") {
		t.Fatalf("migrate into another master key's store: exit %d, %s", code, errOut)
	}
	if recs := rawRecords(t, storeConfig{Data: otherDir}); len(recs) != 0 {
		t.Fatalf("the refused migration copied %d events", len(recs))
	}
}

func TestStoreConfigParseKurrent(t *testing.T) {
	for _, s := range []string{"esdb://localhost:2113?tls=false", "kurrentdb://admin:changeit@node1:2113?tls=true&tlsVerifyCert=false", "kurrentdb+discover://cluster:2113", "esdb+discover://cluster:2113"} {
		kind, _, err := storeConfig{Store: s}.parse()
		if err != nil || kind != kindKurrent {
			t.Errorf("parse(%q) = %v, %v; want KurrentDB", s, kind, err)
		}
	}
	_, _, err := storeConfig{Store: "kurrentdb://admin:s3cret@node1:2113?tlsCAFile=/nonexistent/ca.crt"}.parse()
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("parse with a missing CA file = %v; want an error that does not show the password", err)
	}
	if got := storeSpec("./data", "s"); got.Data != "./data" || got.Store != "" {
		t.Errorf("storeSpec(dir) = %+v", got)
	}
	if got := storeSpec("kurrentdb://h:2113", "s"); got.Store != "kurrentdb://h:2113" {
		t.Errorf("storeSpec(url) = %+v", got)
	}
}
