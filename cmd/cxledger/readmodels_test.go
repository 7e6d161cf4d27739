package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/google/uuid"
)

func TestReplayStatusView(t *testing.T) {
	for name, store := range storeFlags(t) {
		t.Run(name, func(t *testing.T) {
			with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
			must := func(stdin string, args ...string) string {
				t.Helper()
				code, out, errOut := cli(t, stdin, with(args...)...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errOut)
				}
				return out
			}
			customer := decodeAppended(t, must("", "append", "--type", "CustomerRegistered", "--event", `{"name":"Zoë Ñúñez"}`)).CustomerID.String()
			must("", "append", "--customer", customer, "--type", "IdentifierLinked", "--event", `{"kind":"email","value":"  Zoe.Nunez@Example.ES "}`)
			must("", "append", "--customer", customer, "--type", "PurchaseCompleted", "--channel", "web", "--event",
				`{"orderId":"`+uuid.NewString()+`","amount":1250,"currency":"EUR","lines":[{"sku":"TEA-GREEN","quantity":2,"unitAmount":625}]}`)

			if code, _, errOut := cli(t, "", with("view", customer)...); code != 1 || !strings.Contains(errOut, "cxledger replay") {
				t.Fatalf("view before any build: exit %d, %q; want a hint to replay", code, errOut)
			}
			out := must("", "replay")
			if strings.Count(out, "done, now serving reads") != 11 || !strings.Contains(out, "rebuilt 11 read model(s)") {
				t.Fatalf("replay output:\n%s", out)
			}

			var rows []struct {
				Name       string
				Checkpoint uint64
				Lag        uint64
				Digest     string
			}
			if err := json.Unmarshal([]byte(must("", "status", "--json")), &rows); err != nil {
				t.Fatal(err)
			}
			digests := map[string]string{}
			for _, r := range rows {
				if r.Checkpoint != 3 || r.Lag != 0 || len(r.Digest) != 64 {
					t.Errorf("status %+v: want checkpoint 3, lag 0, a digest", r)
				}
				digests[r.Name] = r.Digest
			}
			// A second replay rebuilds into a new generation: same state.
			must("", "replay", "customer360", "identity")
			if err := json.Unmarshal([]byte(must("", "status", "--json", "customer360", "identity")), &rows); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Digest != digests[r.Name] {
					t.Errorf("%s: digest after rebuild %s, before %s", r.Name, r.Digest, digests[r.Name])
				}
			}

			var v struct {
				CustomerID string           `json:"customerId"`
				Spend      map[string]int64 `json:"spend"`
				Score      *struct {
					Segment string `json:"segment"`
				} `json:"score"`
			}
			if err := json.Unmarshal([]byte(must("", "view", "--identifier", "email:zoe.nunez@example.es")), &v); err != nil {
				t.Fatal(err)
			}
			if v.CustomerID != customer || v.Spend["EUR"] != 1250 || v.Score == nil || v.Score.Segment == "" {
				t.Fatalf("view: %+v", v)
			}
			if code, _, errOut := cli(t, "", with("replay", "nosuch")...); code != 2 || !strings.Contains(errOut, "unknown read model nosuch") {
				t.Fatalf("replay nosuch: exit %d %q", code, errOut)
			}
		})
	}
}

// TestProjectKeepsReadModelsLive runs 'cxledger project' on PostgreSQL,
// where other processes may read the read models while it runs, and checks
// that an event appended afterwards reaches them without a replay.
func TestProjectKeepsReadModelsLive(t *testing.T) {
	store := []string{"--store", pgtest.URL(t), "--pg-schema", pgtest.Schema(t)}
	with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
	code, out, errOut := cli(t, "", with("append", "--type", "CustomerRegistered", "--event", `{"name":"Ana"}`)...)
	if code != 0 {
		t.Fatal(errOut)
	}
	customer := decodeAppended(t, out).CustomerID.String()

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		var out, errOut strings.Builder
		done <- run(ctx, with("project"), strings.NewReader(""), &out, &errOut)
	}()
	defer func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("project exited %d after interrupt", code)
		}
	}()

	code, _, errOut = cli(t, "", with("append", "--customer", customer, "--type", "NoteAdded", "--event", `{"body":"called back, all good"}`)...)
	if code != 0 {
		t.Fatal(errOut)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, _ := cli(t, "", with("status", "--json", "--digest=false", "timeline", "customer360")...)
		if code == 0 && strings.Count(out, `"checkpoint":2`) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read models never reached position 2 while project ran: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
