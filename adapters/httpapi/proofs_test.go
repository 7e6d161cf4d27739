package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	auditlog "github.com/cxledger/cxledger/adapters/audit"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
)

// withNotary serves the Merkle tree of the harness's store, signing with a
// fresh key; it returns the auditor's verifier key.
func withNotary(t *testing.T) (func(*httpapi.Config), string) {
	skey, vkey, err := notary.GenerateKey("ledger.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notary.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *httpapi.Config) {
		s := c.Store.(eventstore.Store)
		c.Notary = notary.New(s, s.(notary.HashStore), nil)
		c.CheckpointSigner = signer
	}, vkey
}

// TestProofRoutes is an auditor's own tool: it keeps signed checkpoints,
// then checks the server's proofs against them without trusting it.
func TestProofRoutes(t *testing.T) {
	tune, vkey := withNotary(t)
	h := start(t, tune)
	verifier, err := notary.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	getCheckpoint := func() notary.Checkpoint {
		t.Helper()
		r := h.call(t, httpapi.RoleAuditor, "GET", "/v1/audit/checkpoint", "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("checkpoint: %d %s", r.status, r.body)
		}
		cp, err := notary.Open(r.body, verifier)
		if err != nil {
			t.Fatalf("the served checkpoint does not open with the auditor's key: %v\n%s", err, r.body)
		}
		return cp
	}
	id := h.register(t)
	older := getCheckpoint()
	if older.Size != 2 || older.Origin != "ledger.test" {
		t.Fatalf("checkpoint %+v", older)
	}
	other := h.register(t)
	r := h.call(t, httpapi.RoleService, "POST", "/v1/customers/"+id.String()+"/events", callBody("1", uuid.New()))
	if r.status != http.StatusOK {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	newer := getCheckpoint()
	if newer.Size != 5 {
		t.Fatalf("newer checkpoint size %d, want 5", newer.Size)
	}

	// Consistency: the newer tree extends the older one.
	r = h.call(t, httpapi.RoleAuditor, "GET", fmt.Sprintf("/v1/audit/proof/consistency?from=%d&to=%d", older.Size, newer.Size), "")
	var cons httpapi.ConsistencyProof
	if err := json.Unmarshal(r.body, &cons); err != nil || r.status != 200 {
		t.Fatalf("consistency: %d %s", r.status, r.body)
	}
	if err := tlog.CheckTree(cons.Proof, newer.Size, newer.Hash, older.Size, older.Hash); err != nil {
		t.Errorf("consistency proof does not check: %v", err)
	}

	// Inclusion of one event, recomputing its leaf from the record.
	r = h.call(t, httpapi.RoleAuditor, "GET", fmt.Sprintf("/v1/audit/proof/inclusion?position=3&size=%d", newer.Size), "")
	var inc httpapi.InclusionProof
	if err := json.Unmarshal(r.body, &inc); err != nil || r.status != 200 {
		t.Fatalf("inclusion: %d %s", r.status, r.body)
	}
	if inc.Record.Stream != "customer-"+other.String() || notary.LeafHash(inc.Record) != inc.LeafHash {
		t.Errorf("inclusion record %+v", inc.Record)
	}
	if err := tlog.CheckRecord(inc.Proof, newer.Size, newer.Hash, inc.Leaf, notary.LeafHash(inc.Record)); err != nil {
		t.Errorf("inclusion proof does not check: %v", err)
	}

	// The auditor's timeline, proved against the older checkpoint's size.
	r = h.call(t, httpapi.RoleAuditor, "GET", fmt.Sprintf("/v1/customers/%s/audit?proofs=true&size=%d", id, older.Size), "")
	var tl auditlog.Timeline
	if err := json.Unmarshal(r.body, &tl); err != nil || r.status != 200 {
		t.Fatalf("audit timeline: %d %s", r.status, r.body)
	}
	// Proved against an older size, the timeline is not signed (only the
	// head is); the auditor compares its root with the checkpoint held.
	if !tl.Verified || tl.Events != 3 || len(tl.Entries) != 3 || tl.Checkpoint.Signed != "" || tl.Checkpoint.Size != older.Size || tl.Checkpoint.Hash != older.Hash.String() {
		t.Fatalf("timeline %+v", tl)
	}
	r = h.call(t, httpapi.RoleAuditor, "GET", fmt.Sprintf("/v1/customers/%s/audit", id), "")
	var head auditlog.Timeline
	if err := json.Unmarshal(r.body, &head); err != nil || r.status != 200 || head.Checkpoint.Signed == "" {
		t.Fatalf("timeline at the head: %d %s", r.status, r.body)
	}
	if cp, err := notary.Open([]byte(head.Checkpoint.Signed), verifier); err != nil || cp.Size != head.Checkpoint.Size {
		t.Errorf("timeline's checkpoint: %+v %v", cp, err)
	}
	for i, e := range tl.Entries {
		want := "verified"
		if i == 2 {
			want = "newer than the checkpoint"
		}
		if e.Proof != want {
			t.Errorf("entry %d proof %q, want %q", i, e.Proof, want)
		}
		if e.Proof != "verified" {
			continue
		}
		var proof tlog.RecordProof
		for _, s := range e.InclusionProof {
			ph, _ := tlog.ParseHash(s)
			proof = append(proof, ph)
		}
		rec := *e.Record
		rec.Data = e.StoredData // the exact bytes the leaf covers
		if err := tlog.CheckRecord(proof, older.Size, older.Hash, e.Leaf, notary.LeafHash(rec)); err != nil {
			t.Errorf("entry %d does not check against the auditor's checkpoint: %v", i, err)
		}
	}
	// The audit timeline is a personal-data read: it is in the access log.
	if got := h.accessLog(t, "customer="+id.String()); len(got) != 2 || got[0].Resource != "audit-timeline" {
		t.Errorf("access log = %+v", got)
	}

	for path, status := range map[string]int{
		"/v1/audit/proof/inclusion":                        400,
		"/v1/audit/proof/inclusion?position=99":            404,
		"/v1/audit/proof/inclusion?position=1&size=999":    404,
		"/v1/audit/proof/consistency?from=3&to=2":          400,
		"/v1/audit/proof/consistency?from=1&to=999":        404,
		"/v1/audit/tree?size=x":                            400,
		"/v1/customers/" + id.String() + "/audit?proofs=2": 400,
	} {
		if r := h.call(t, httpapi.RoleAuditor, "GET", path, ""); r.status != status {
			t.Errorf("%s: %d %s, want %d", path, r.status, r.body, status)
		}
	}
}

// Without a Merkle tree the audit routes say so.
func TestProofRoutesWithoutNotary(t *testing.T) {
	h := start(t, nil)
	id := h.register(t)
	for _, p := range []string{"/v1/audit/checkpoint", "/v1/audit/tree", "/v1/customers/" + id.String() + "/audit"} {
		r := h.call(t, httpapi.RoleAuditor, "GET", p, "")
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "tamper-evidence-unavailable") {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
}
