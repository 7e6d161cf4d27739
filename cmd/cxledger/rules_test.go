package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesList(t *testing.T) {
	code, out, errOut := cli(t, "", "rules", "list", "--file", "testdata/rules.json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"NAME", "follow_up_purchase", "PurchaseCompleted", "amount >= 5000", "72h0m0s", "RefundIssued", "NoteAdded",
		"ticket_sla", `priority in ["high","urgent"]`, "TicketResolved,TicketClosed (by ticketId)",
		"reorder_nudge", "720h0m0s", "CampaignTouched",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
}

func TestRulesBadFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rules":[{"name":"nudge","on":"PurchaseCompleted","after":"3 days","emit":{"type":"NoteAdded","data":{"body":"x"}}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"rules", "list", "--file", bad},
		{"rules", "test", "--data", t.TempDir(), "--file", bad, "0195c0de-0000-7000-8000-00000000c0de"},
		{"rules", "list"},
		{"rules", "frobnicate"},
	} {
		code, _, errOut := cli(t, "", args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
		if args[1] != "frobnicate" && len(args) > 2 && !strings.Contains(errOut, `rule "nudge": after: "3 days"`) {
			t.Errorf("%v: error %q does not name the rule and field", args, errOut)
		}
	}
}

func TestRulesTest(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := cli(t, "", "append", "--data", data, "--type", "CustomerRegistered", "--event", `{"name":"Zoë Ñúñez","country":"ES"}`,
		"--actor", "service:crm", "--channel", "web", "--occurred-at", "2026-03-02T09:00:00Z")
	if code != 0 {
		t.Fatalf("register: exit %d: %s", code, errOut)
	}
	customer := decodeAppended(t, out).CustomerID.String()
	const order = "0195c0de-7a1b-7c3d-8e4f-a1b2c3d4e5f6"
	for _, ev := range []struct{ typ, data, at string }{
		{"PurchaseCompleted", `{"orderId":"` + order + `","amount":7900,"currency":"EUR","lines":[{"sku":"moulin","quantity":1,"unitAmount":7900}]}`, "2026-03-02T10:00:00Z"},
	} {
		if code, _, errOut := cli(t, "", "append", "--data", data, "--customer", customer, "--type", ev.typ, "--event", ev.data,
			"--actor", "service:shop", "--channel", "web", "--occurred-at", ev.at); code != 0 {
			t.Fatalf("%s: exit %d: %s", ev.typ, code, errOut)
		}
	}
	code, out, errOut = cli(t, "", "rules", "test", "--data", data, "--file", "testdata/rules.json", "--now", "2026-03-06", customer)
	if code != 0 {
		t.Fatalf("rules test: exit %d: %s", code, errOut)
	}
	want := "follow_up_purchase: trigger v1 PurchaseCompleted at 2026-03-02T10:00:00Z; emitted at 2026-03-05T10:00:00Z: NoteAdded {\"body\":\"Follow up on order " + order + " (7900 EUR)\"}\n" +
		"reorder_nudge: trigger v1 PurchaseCompleted at 2026-03-02T10:00:00Z; scheduled at 2026-04-01T10:00:00Z: skipped: the ledger would refuse it: "
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "missing consent email/marketing (never granted)") {
		t.Fatalf("rules test printed:\n%s\nwant:\n%s…", out, want)
	}
	// --rule keeps one rule; store flags may also come before the subcommand.
	code, out, errOut = cli(t, "", "rules", "--data", data, "test", "--file", "testdata/rules.json", "--rule", "ticket_sla", "--now", "2026-03-06", customer)
	if code != 0 || !strings.HasPrefix(out, "no emissions") {
		t.Fatalf("--rule ticket_sla: exit %d: %s%s", code, out, errOut)
	}
}
