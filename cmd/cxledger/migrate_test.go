package main

import (
	"encoding/json"
	"strings"
	"testing"

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
