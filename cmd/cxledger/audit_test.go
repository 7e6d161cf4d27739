package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/adapters/audit"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/projections/loyalty"
)

const (
	auditorToken = "auditor-token-0123456789"
	adminToken   = "admin-token-0123456789ab"
)

// call sends one request with a bearer token and returns status and body.
func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAuditorWalkthrough is the README's auditor walkthrough, run against
// the real server on the embedded and the PostgreSQL store: consent
// enforced on marketing, a signed checkpoint served and kept outside, the
// customer's timeline proved against it over HTTP and by the CLI (JSON and
// CSV), every read in the access log under the reader's name, the
// customer as of an earlier date, then erasure: the old checkpoint still
// verifies the whole log, and the personal data shows as erased.
func TestAuditorWalkthrough(t *testing.T) {
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			skey, vkey, err := notary.GenerateKey("ledger.example")
			if err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(dir, "checkpoint.key")
			if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
				t.Fatal(err)
			}
			verifier, _ := notary.NewVerifier(vkey)
			toks, err := loadTokens("", "service:"+serviceToken+",admin:"+adminToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := toks.AddNamed("auditor", auditorToken, "alice"); err != nil {
				t.Fatal(err)
			}
			m := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: slog.New(slog.DiscardHandler), ShutdownTimeout: 10 * time.Second, CheckpointKeyFile: keyFile}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := m.Run(ctx); err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			base := m.URL()

			// A customer; a marketing e-mail is refused until consent.
			id := uuid.New()
			st, body := call(t, "POST", base+"/v1/customers", serviceToken, fmt.Sprintf(`{"customerId":%q,"name":"Zoé Nguyen","identifiers":[{"kind":"email","value":"zoe.walkthrough@example.fr"}],"metadata":{"occurredAt":"2026-01-10T09:00:00Z","actor":"service:web","channel":"web"}}`, id))
			if st != http.StatusCreated {
				t.Fatalf("register: %d %s", st, body)
			}
			events := func(evs ...string) string {
				return `{"events":[` + strings.Join(evs, ",") + `]}`
			}
			ev := func(typ, data, at string) string {
				return fmt.Sprintf(`{"type":%q,"data":%s,"metadata":{"occurredAt":%q,"actor":"service:marketing","channel":"mailchimp","correlationId":"spring-2026"}}`, typ, data, at)
			}
			send := ev("CampaignTouched", `{"campaign":"spring-2026","channel":"email","action":"sent"}`, "2026-02-01T09:00:00Z")
			st, body = call(t, "POST", base+"/v1/customers/"+id.String()+"/events", serviceToken, events(send))
			if st != http.StatusConflict || !strings.Contains(string(body), "missing consent email/marketing (never granted)") {
				t.Fatalf("marketing without consent: %d %s", st, body)
			}
			if st, body = call(t, "POST", base+"/v1/customers/"+id.String()+"/events", serviceToken, events(
				ev("ConsentGranted", `{"channel":"email","purpose":"marketing","source":"preference-center"}`, "2026-01-20T09:00:00Z"),
				send,
				ev("NoteAdded", `{"body":"Asked for the spring catalogue"}`, "2026-02-02T09:00:00Z"),
			)); st != http.StatusOK {
				t.Fatalf("with consent: %d %s", st, body)
			}

			// The auditor fetches a signed checkpoint and keeps it.
			st, signed := call(t, "GET", base+"/v1/audit/checkpoint", auditorToken, "")
			if st != 200 {
				t.Fatalf("checkpoint: %d %s", st, signed)
			}
			cp, err := notary.Open(signed, verifier)
			if err != nil || cp.Size != 5 {
				t.Fatalf("checkpoint %+v: %v", cp, err)
			}
			cpFile := filepath.Join(dir, "cp-1.txt")
			if err := os.WriteFile(cpFile, signed, 0o600); err != nil {
				t.Fatal(err)
			}

			// The timeline over HTTP, each proof checked by the auditor.
			st, body = call(t, "GET", fmt.Sprintf("%s/v1/customers/%s/audit?proofs=true&size=%d", base, id, cp.Size), auditorToken, "")
			var tl audit.Timeline
			if err := json.Unmarshal(body, &tl); err != nil || st != 200 || !tl.Verified || len(tl.Entries) != 5 {
				t.Fatalf("audit timeline: %d %s", st, body)
			}
			for _, e := range tl.Entries {
				var proof tlog.RecordProof
				for _, h := range e.InclusionProof {
					ph, _ := tlog.ParseHash(h)
					proof = append(proof, ph)
				}
				if err := notary.CheckInclusion(cp, e.Leaf, notary.LeafHash(*e.Record), proof); err != nil {
					t.Errorf("version %d: %v", e.Version, err)
				}
			}
			if s := tl.Entries[4].Summary; s != "Note: Asked for the spring catalogue" {
				t.Errorf("revealed note %q", s)
			}
			if tl.Entries[2].Type != "ConsentGranted" || tl.Entries[2].Actor != "service:marketing" || tl.Entries[2].CorrelationID != "spring-2026" {
				t.Errorf("consent entry %+v", tl.Entries[2])
			}

			// What the company knew on 25 January: consent, no campaign yet.
			st, body = call(t, "GET", base+"/v1/customers/"+id.String()+"/as-of?at=2026-01-25&basis=occurred", auditorToken, "")
			if st != 200 || !strings.Contains(string(body), `"events":3`) || !strings.Contains(string(body), "Zoé Nguyen") {
				t.Fatalf("as-of: %d %s", st, body)
			}

			// Both reads are in the access log, under alice's name.
			st, body = call(t, "GET", base+"/v1/audit/access?reader=alice", auditorToken, "")
			var page access.Page
			if err := json.Unmarshal(body, &page); err != nil || st != 200 || len(page.Entries) != 2 ||
				page.Entries[0].Resource != "audit-timeline" || page.Entries[1].Resource != "view-as-of" || page.Entries[0].Customer != id {
				t.Fatalf("access log: %d %s", st, body)
			}

			// Erasure.
			if st, body = call(t, "POST", base+"/v1/customers/"+id.String()+"/forget", adminToken, `{"request":"DSR-2026-001","reason":"art. 17 request by e-mail"}`); st != 200 {
				t.Fatalf("forget: %d %s", st, body)
			}
			st, signed2 := call(t, "GET", base+"/v1/audit/checkpoint", auditorToken, "")
			if st != 200 {
				t.Fatalf("checkpoint 2: %d %s", st, signed2)
			}
			cp2File := filepath.Join(dir, "cp-2.txt")
			if err := os.WriteFile(cp2File, signed2, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}

			// Offline, with the CLI: the whole log against the newer
			// checkpoint, consistent with the older; the timeline in JSON and
			// CSV with the checkpoint it was verified against.
			store := storeArgs(cfg)
			with := func(args ...string) []string { return append(append([]string{args[0]}, store...), args[1:]...) }
			code, out, errOut := cli(t, "", with("verify", "--checkpoint", cp2File, "--older", cpFile, "--verifier", vkey, "--customer", id.String())...)
			if code != 0 || !strings.Contains(out, "log         OK") || !strings.Contains(out, "older       OK") {
				t.Fatalf("verify after forget: %d\n%s%s", code, out, errOut)
			}
			jsonFile := filepath.Join(dir, "timeline.json")
			if code, out, errOut = cli(t, "", with("timeline", "--checkpoint", cpFile, "--verifier", vkey, "--format", "json", "--out", jsonFile, "--reader", "bob", id.String())...); code != 0 {
				t.Fatalf("timeline json: %d\n%s%s", code, out, errOut)
			}
			data, _ := os.ReadFile(jsonFile)
			var offline audit.Timeline
			if err := json.Unmarshal(data, &offline); err != nil || !offline.Verified || offline.Checkpoint.Signed != string(signed) || offline.Events != 6 {
				t.Fatalf("offline timeline: %v %s", err, data)
			}
			if s := offline.Entries[4].Summary; s != "Note: "+keyring.Erased {
				t.Errorf("forgotten note %q", s)
			}
			if p := offline.Entries[5].Proof; p != "newer than the checkpoint" {
				t.Errorf("forget entry proof %q", p)
			}
			code, out, errOut = cli(t, "", with("timeline", "--format", "csv", "--types", "ConsentGranted,CustomerForgotten", "--reader", "bob", id.String())...)
			if code != 0 || !strings.Contains(out, "# VERIFIED") {
				t.Fatalf("timeline csv: %d\n%s%s", code, out, errOut)
			}
			rows, err := csv.NewReader(strings.NewReader(out[strings.Index(out, "position,"):])).ReadAll()
			if err != nil || len(rows) != 3 || rows[1][3] != "ConsentGranted" || rows[2][3] != "CustomerForgotten" || rows[2][12] != "verified" {
				t.Fatalf("csv rows %v %q", err, rows)
			}
			if strings.Contains(out+string(data), "Asked for the spring") || strings.Contains(out+string(data), "Zoé") {
				t.Error("personal data of a forgotten customer in the CLI timeline")
			}
			code, out, errOut = cli(t, "", with("view", "--as-of", "2026-01-25", "--basis", "occurred", "--reader", "bob", id.String())...)
			if code != 0 || !strings.Contains(out, `"events": 3`) || !strings.Contains(out, `"name": "`+keyring.Erased+`"`) {
				t.Fatalf("view --as-of after forget: %d\n%s%s", code, out, errOut)
			}

			// The CLI's reads are in the access log too, under bob.
			m2 := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: slog.New(slog.DiscardHandler), ShutdownTimeout: 10 * time.Second}
			if err := m2.Run(ctx); err != nil {
				t.Fatal(err)
			}
			defer m2.Close()
			st, body = call(t, "GET", m2.URL()+"/v1/audit/access?customer="+id.String()+"&reader=bob", auditorToken, "")
			if err := json.Unmarshal(body, &page); err != nil || st != 200 || len(page.Entries) != 3 || page.Entries[0].Via != "cli" || page.Entries[2].Resource != "view-as-of" {
				t.Fatalf("bob's reads: %d %s", st, body)
			}
		})
	}
}

// storeArgs returns the CLI flags selecting cfg's store.
func storeArgs(cfg storeConfig) []string {
	if cfg.Store != "" {
		return []string{"--store", cfg.Store, "--pg-schema", cfg.Schema}
	}
	return []string{"--data", cfg.Data}
}

// TestServeFinishesInterruptedErasure: a forget that crashed after its
// CustomerForgotten but before destroying the key is finished by the
// server's eraser: the name reads as erased without anyone re-running it.
func TestServeFinishesInterruptedErasure(t *testing.T) {
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			store, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			kr, err := openKeyring(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			l := ledger.New(store)
			l.Keys = kr
			id := uuid.New()
			md := domain.Metadata{OccurredAt: time.Now().UTC(), Actor: "user:dpo"}
			if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream,
				ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Interrupted Person"}, Metadata: md},
				ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-9"}, Metadata: md}, // the key is not destroyed: the crash
			); err != nil {
				t.Fatal(err)
			}
			if gone, err := kr.Forgotten(ctx, id); err != nil || gone {
				t.Fatalf("the key is already gone (%v, %v): the test sets nothing up", gone, err)
			}
			_ = kr.Close()
			_ = store.Close()

			m := startMain(t, cfg, nil)
			deadline := time.Now().Add(15 * time.Second)
			for {
				st, body := call(t, "GET", m.URL()+"/v1/customers/"+id.String()+"/events", serviceToken, "")
				if st == 200 && strings.Contains(string(body), `"name":"`+keyring.Erased+`"`) && !strings.Contains(string(body), "Interrupted Person") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the interrupted erasure was not finished: %d %s", st, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestServeRunsRules: `serve --rules` runs the operator's rules as
// reactors through the write path: an urgent ticket gets its note at once,
// caused by the ticket's event; the ticket opened before the rule existed
// gets none (a new rule starts at the head).
func TestServeRunsRules(t *testing.T) {
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			rulesFile := filepath.Join(dir, "rules.json")
			if err := os.WriteFile(rulesFile, []byte(`{"rules":[{"name":"urgent_ticket","on":"TicketOpened","when":[{"field":"priority","op":"==","value":"urgent"}],"emit":{"type":"NoteAdded","data":{"body":"Urgent ticket {{ticketId}}: call the customer back today"}}}]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			toks, err := loadTokens("", "service:"+serviceToken)
			if err != nil {
				t.Fatal(err)
			}
			id := uuid.New()
			ticket := func(base string, tid uuid.UUID) {
				t.Helper()
				st, body := call(t, "POST", base+"/v1/customers/"+id.String()+"/events", serviceToken,
					fmt.Sprintf(`{"events":[{"type":"TicketOpened","data":{"ticketId":%q,"subject":"Broken grinder","priority":"urgent","channel":"email"},"metadata":{"occurredAt":"2026-03-01T09:00:00Z","actor":"service:zendesk"}}]}`, tid))
				if st != http.StatusOK {
					t.Fatalf("ticket: %d %s", st, body)
				}
			}
			// Before the rule exists.
			m0 := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: slog.New(slog.DiscardHandler), ShutdownTimeout: 10 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := m0.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if st, body := call(t, "POST", m0.URL()+"/v1/customers", serviceToken, fmt.Sprintf(`{"customerId":%q,"name":"Zoé","metadata":{"occurredAt":"2026-03-01T08:00:00Z","actor":"service:web"}}`, id)); st != http.StatusCreated {
				t.Fatalf("register: %d %s", st, body)
			}
			old := uuid.New()
			ticket(m0.URL(), old)
			if err := m0.Close(); err != nil {
				t.Fatal(err)
			}

			m := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: slog.New(slog.DiscardHandler), ShutdownTimeout: 10 * time.Second, RulesFile: rulesFile}
			if err := m.Run(ctx); err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			reactorsStarted(t, m) // the reactors start at the head
			fresh := uuid.New()
			ticket(m.URL(), fresh)
			deadline := time.Now().Add(15 * time.Second)
			for {
				_, body := call(t, "GET", m.URL()+"/v1/customers/"+id.String()+"/events", serviceToken, "")
				if strings.Contains(string(body), "Urgent ticket "+fresh.String()) {
					if strings.Contains(string(body), "Urgent ticket "+old.String()) {
						t.Fatalf("the rule acted on history from before it existed: %s", body)
					}
					if !strings.Contains(string(body), `"actor":"system:reactor/rule_urgent_ticket"`) || !strings.Contains(string(body), `"causationId"`) {
						t.Errorf("the note's metadata: %s", body)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no note from the rule: %s", body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if code, _, errOut := cli(t, "", "serve", "--data", t.TempDir(), "--rules", filepath.Join(dir, "missing.json")); code != 2 {
				t.Errorf("serve with a missing rules file: exit %d %s", code, errOut)
			}
		})
	}
}

// TestServeRunsLoyalty: with --loyalty-rates the server's loyalty reactor
// earns points on a purchase (129.90 EUR at 1 point per euro: 129), shown
// in the customer view with its history and tier.
func TestServeRunsLoyalty(t *testing.T) {
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			rates, err := parseRates("EUR=1/1,JPY=1/100")
			if err != nil {
				t.Fatal(err)
			}
			toks, err := loadTokens("", "service:"+serviceToken)
			if err != nil {
				t.Fatal(err)
			}
			m := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: slog.New(slog.DiscardHandler), ShutdownTimeout: 10 * time.Second,
				Loyalty: &loyalty.Config{Rates: rates, Expiry: loyalty.DefaultExpiry}}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := m.Run(ctx); err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			reactorsStarted(t, m) // the reactors start at the head
			id := uuid.New()
			now := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
			if st, body := call(t, "POST", m.URL()+"/v1/customers", serviceToken, fmt.Sprintf(`{"customerId":%q,"name":"Zoé","metadata":{"occurredAt":%q,"actor":"service:web"}}`, id, now)); st != http.StatusCreated {
				t.Fatalf("register: %d %s", st, body)
			}
			order := uuid.New()
			if st, body := call(t, "POST", m.URL()+"/v1/customers/"+id.String()+"/events", serviceToken, fmt.Sprintf(`{"events":[{"type":"PurchaseCompleted","data":{"orderId":%q,"amount":12990,"currency":"EUR","lines":[{"sku":"BEANS","quantity":1,"unitAmount":12990}]},"metadata":{"occurredAt":%q,"actor":"service:shop"}}]}`, order, now)); st != http.StatusOK {
				t.Fatalf("purchase: %d %s", st, body)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				_, body := call(t, "GET", m.URL()+"/v1/customers/"+id.String(), serviceToken, "")
				var v struct {
					Loyalty struct {
						Balance int64 `json:"balance"`
						Earned  int64 `json:"earned"`
						History []struct {
							Type string `json:"type"`
						} `json:"history"`
					} `json:"loyalty"`
				}
				_ = json.Unmarshal(body, &v)
				if v.Loyalty.Balance == 129 {
					if v.Loyalty.Earned != 129 || len(v.Loyalty.History) != 1 {
						t.Errorf("loyalty = %+v", v.Loyalty)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no points earned: %s", body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// A refund of 15.00 claws back floor(129 × 1500 ÷ 12990) = 14.
			if st, body := call(t, "POST", m.URL()+"/v1/customers/"+id.String()+"/events", serviceToken, fmt.Sprintf(`{"events":[{"type":"RefundIssued","data":{"refundId":%q,"orderId":%q,"amount":1500,"currency":"EUR"},"metadata":{"occurredAt":%q,"actor":"service:shop"}}]}`, uuid.New(), order, now)); st != http.StatusOK {
				t.Fatalf("refund: %d %s", st, body)
			}
			deadline = time.Now().Add(15 * time.Second)
			for {
				_, body := call(t, "GET", m.URL()+"/v1/customers/"+id.String(), serviceToken, "")
				var v struct {
					Loyalty struct {
						Balance    int64 `json:"balance"`
						ClawedBack int64 `json:"clawedBack"`
					} `json:"loyalty"`
				}
				_ = json.Unmarshal(body, &v)
				if v.Loyalty.ClawedBack == 14 && v.Loyalty.Balance == 115 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no claw-back: %s", body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := parseRates("EUR=one/1"); err == nil {
				t.Error("a bad rate was accepted")
			}
		})
	}
}

// TestServeRunsAutomations: --automations thank_you_won queues the
// thank-you message when an opportunity is won, caused by the win.
func TestServeRunsAutomations(t *testing.T) {
	names, err := parseAutomations("all")
	if err != nil || len(names) != 5 {
		t.Fatalf("parseAutomations = %v, %v", names, err)
	}
	if _, err := parseAutomations("birthday_party"); err == nil {
		t.Error("an unknown automation was accepted")
	}
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			toks, err := loadTokens("", "service:"+serviceToken)
			if err != nil {
				t.Fatal(err)
			}
			m := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: slog.New(slog.DiscardHandler), ShutdownTimeout: 10 * time.Second, Automations: names}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := m.Run(ctx); err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			reactorsStarted(t, m) // the reactors start at the head
			id, opp := uuid.New(), uuid.New()
			now := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
			if st, body := call(t, "POST", m.URL()+"/v1/customers", serviceToken, fmt.Sprintf(`{"customerId":%q,"name":"Zoé","metadata":{"occurredAt":%q,"actor":"service:web"}}`, id, now)); st != http.StatusCreated {
				t.Fatalf("register: %d %s", st, body)
			}
			if st, body := call(t, "POST", m.URL()+"/v1/customers/"+id.String()+"/events", serviceToken, fmt.Sprintf(`{"events":[
				{"type":"OpportunityOpened","data":{"opportunityId":%[1]q,"name":"Office machines","amount":500000,"currency":"EUR","stage":"proposal","expectedClose":"2026-12-31"},"metadata":{"occurredAt":%[2]q,"actor":"user:ana"}},
				{"type":"OpportunityWon","data":{"opportunityId":%[1]q},"metadata":{"occurredAt":%[2]q,"actor":"user:ana"}}]}`, opp, now)); st != http.StatusOK {
				t.Fatalf("win: %d %s", st, body)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				_, body := call(t, "GET", m.URL()+"/v1/customers/"+id.String()+"/events", serviceToken, "")
				if strings.Contains(string(body), `"type":"MessageQueued"`) {
					if !strings.Contains(string(body), `"template":"thank-you-won"`) || !strings.Contains(string(body), `"actor":"system:reactor/thank_you_won"`) {
						t.Errorf("the thank-you: %s", body)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no thank-you: %s", body)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// The attribution window comes from CXLEDGER_ATTRIBUTION_WINDOW, checked.
func TestAttributionWindowFromEnv(t *testing.T) {
	t.Setenv(envAttributionWindow, "72h")
	d, err := catalogDeps(nil)
	if err != nil || d.Attribution.Window != 72*time.Hour {
		t.Fatalf("deps = %+v, %v", d.Attribution, err)
	}
	for _, bad := range []string{"a week", "-1h", "9000h"} {
		t.Setenv(envAttributionWindow, bad)
		if _, err := catalogDeps(nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// reactorsStarted waits until every reactor of m has its namespace: each
// then starts at the head it read on creating it, and acts on whatever is
// appended after.
func reactorsStarted(t *testing.T, m *Main) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sts, err := m.react.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		spaces, err := m.rm.Namespaces(ctx)
		if err != nil {
			t.Fatal(err)
		}
		started := len(sts) > 0
		for _, st := range sts {
			started = started && slices.Contains(spaces, st.Namespace)
		}
		if started {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("reactors %+v not started", sts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
