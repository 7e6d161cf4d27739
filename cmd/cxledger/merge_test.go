package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/projections/duplicates"
)

// cxledger duplicates proposes two records of one mailbox; merge makes
// view of the absorbed id show the survivor with both histories; unmerge
// undoes it; a merge with stale versions fails.
func TestMergeCommands(t *testing.T) {
	store := []string{"--data", t.TempDir()}
	with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := cli(t, "", with(args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	var ids []string
	for _, email := range []string{"zoe.nguyen@gmail.com", "zoenguyen@gmail.com"} {
		id := decodeAppended(t, must("append", "--type", "CustomerRegistered", "--event", `{"name":"Zoë Nguyen"}`)).CustomerID.String()
		must("append", "--customer", id, "--type", "IdentifierLinked", "--event", `{"kind":"email","value":"`+email+`"}`)
		ids = append(ids, id)
	}
	must("append", "--customer", ids[1], "--type", "NoteAdded", "--event", `{"body":"called"}`)
	must("replay")
	var pair duplicates.Pair
	if err := json.Unmarshal([]byte(must("duplicates")), &pair); err != nil || pair.Score != 0.9 {
		t.Fatalf("duplicates: %+v %v", pair, err)
	}
	if code, _, errOut := cli(t, "", with("merge", ids[0], ids[1], "--reason", "same", "--versions", "0,0")...); code != 1 || !strings.Contains(errOut, "version") {
		t.Fatalf("stale merge: exit %d %s", code, errOut)
	}
	var res ledger.MergeResult
	if err := json.Unmarshal([]byte(must("merge", ids[0], ids[1], "--reason", "same gmail", "--versions", "1,2")), &res); err != nil {
		t.Fatal(err)
	}
	must("replay")
	type view struct {
		CustomerID string `json:"customerId"`
		Events     int    `json:"events"`
	}
	var v view
	if err := json.Unmarshal([]byte(must("view", ids[1])), &v); err != nil || v.CustomerID != ids[0] || v.Events != 4 {
		t.Errorf("view of the absorbed id: %+v %v; want the survivor %s with 4 events", v, err, ids[0])
	}
	if out := strings.TrimSpace(must("duplicates")); out != "" {
		t.Errorf("duplicates after the merge: %s", out)
	}
	must("unmerge", ids[0], ids[1], "--reason", "two people", "--merge-id", res.MergeID.String())
	must("replay")
	if err := json.Unmarshal([]byte(must("view", ids[1])), &v); err != nil || v.CustomerID != ids[1] || v.Events != 3 {
		t.Errorf("view after unmerge: %+v %v", v, err)
	}
}
