package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// envRunMain makes the test binary run main (see TestMain).
const envRunMain = "CXLEDGER_TEST_RUN_MAIN"

// TestWebhookDeliverySurvivesSIGKILL is the end-to-end case: a
// real `cxledger serve --run delivery` process delivers queued messages to
// a webhook and is SIGKILLed while the webhook holds a request it has
// received (sent, not yet recorded); a new process takes over. Every
// message reaches the webhook at least once and at most twice, always with
// its message id as Idempotency-Key, and the log holds exactly one
// MessageDelivered per message.
func TestWebhookDeliverySurvivesSIGKILL(t *testing.T) {
	ctx := context.Background()
	cfg := storeConfig{Store: pgtest.URL(t), Schema: pgtest.Schema(t)}
	log := slog.New(slog.DiscardHandler)
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := openKeyring(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	l := ledger.New(store)
	l.Keys = keys

	// Ten customers, a message queued for each.
	const n = 10
	var msgs []uuid.UUID
	for i := range n {
		c, m := uuid.New(), uuid.New()
		at := domain.Metadata{OccurredAt: time.Now().UTC().Add(-time.Minute), Actor: "service:shop"}
		if _, err := l.Append(ctx, domain.RoleService, c, eventstore.NoStream,
			ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: c, Name: "Zoë"}, Metadata: at},
			ledger.Touchpoint{Event: domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe" + string(rune('a'+i)) + "@example.com"}, Metadata: at}); err != nil {
			t.Fatal(err)
		}
		at.Actor = "system:reactor/thank_you_won"
		if _, err := l.Append(ctx, domain.RoleSystem, c, eventstore.Any, ledger.Touchpoint{Event: domain.MessageQueued{MessageID: m, Channel: domain.ConsentEmail, Template: "thank-you-won", Purpose: domain.PurposeService}, Metadata: at}); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}

	// The webhook: answers the first two requests, then holds every
	// request it receives until released (after the kill).
	secret := "whsec-e2e-7f3a"
	var mu sync.Mutex
	got := map[string]int{}
	total := 0
	third := make(chan struct{})
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := delivery.Verify([]byte(secret), r.Header.Get(delivery.HeaderSignature), body, time.Now(), 0); err != nil {
			t.Errorf("webhook: %v", err)
		}
		var p delivery.WebhookPayload
		_ = json.Unmarshal(body, &p)
		key := r.Header.Get(delivery.HeaderIdempotencyKey)
		if key != p.MessageID.String() {
			t.Errorf("Idempotency-Key %q for message %s", key, p.MessageID)
		}
		mu.Lock()
		got[key]++
		total++
		stall := total >= 3
		if total == 3 {
			close(third)
		}
		mu.Unlock()
		if stall {
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	defer unstall()

	serve := func() (*exec.Cmd, *bytes.Buffer) {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self, "serve", "--run", "delivery", "--store", cfg.Store, "--pg-schema", cfg.Schema,
			"--broker", "none", "--lease-ttl", "1s", "--webhook-url", hook.URL, "--delivery-backoff", "20ms")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CXLEDGER_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, envRunMain+"=1", envMasterKey+"="+os.Getenv(envMasterKey), envWebhookSecret+"="+secret)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}

	first, out1 := serve()
	select {
	case <-third: // a request is held: a message sent, its outcome not recorded
	case <-time.After(15 * time.Second):
		_ = first.Process.Kill()
		_ = first.Wait()
		t.Fatalf("the webhook got fewer than 3 requests; server log:\n%s", out1)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	unstall()

	second, out2 := serve()
	defer func() {
		_ = second.Process.Signal(os.Interrupt)
		_ = second.Wait()
	}()
	outcomes := map[uuid.UUID]int{}
	deadline := time.Now().Add(15 * time.Second)
	for {
		recs, err := store.ReadAll(ctx, eventstore.ReadAllOptions{Filter: eventstore.Filter{Types: []string{domain.TypeMessageDelivered, domain.TypeMessageFailed}}})
		if err != nil {
			t.Fatal(err)
		}
		clear(outcomes)
		for _, r := range recs {
			e, err := domain.Decode(r.Type, r.Metadata.SchemaVersion, r.Data)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := e.(domain.MessageDelivered)
			if !ok {
				t.Fatalf("outcome %+v, want delivered", e)
			}
			outcomes[d.MessageID]++
		}
		if len(outcomes) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered after the restart; server log:\n%s", len(outcomes), n, out2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	resent := 0
	for _, m := range msgs {
		if outcomes[m] != 1 {
			t.Errorf("message %s: %d MessageDelivered, want 1", m, outcomes[m])
		}
		switch c := got[m.String()]; {
		case c < 1 || c > 2:
			t.Errorf("message %s reached the webhook %d times, want 1 or 2", m, c)
		case c == 2:
			resent++
		}
	}
	if resent == 0 {
		t.Errorf("no message was sent again: the kill did not interrupt a delivery (received %v)", got)
	}
	if len(got) != n {
		t.Errorf("the webhook got %d distinct keys, want %d", len(got), n)
	}
}
