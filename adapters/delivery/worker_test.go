package delivery_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// TestWorkerDeliversEachMessageOnce: queued messages reach the webhook
// with the revealed address (the log holds only its token), each gets one
// MessageDelivered, and a second worker run over the same log from the
// beginning sends nothing again (the outcomes are known).
func TestWorkerDeliversEachMessageOnce(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	zoe := w.customer("zoe.faure@example.com")
	m1 := w.queue(zoe, domain.ConsentEmail, domain.PurposeMarketing)
	m2 := w.queue(zoe, domain.ConsentSMS, domain.PurposeService)
	w.worker(r, nil)
	out := w.waitOutcomes(m1, m2)

	for id, to := range map[uuid.UUID]string{m1: "zoe.faure@example.com", m2: "+33612345678"} {
		got := r.received(id)
		if len(got) != 1 || got[0].To != to || got[0].CustomerID != zoe || got[0].Template != "thank-you-won" {
			t.Errorf("message %s: received %+v, want one to %s", id, got, to)
		}
		if len(out[id]) != 1 {
			t.Fatalf("message %s: outcomes %v", id, out[id])
		}
		d, ok := out[id][0].(domain.MessageDelivered)
		if !ok || d.Attempts != 1 || d.Via != domain.ViaWebhook {
			t.Errorf("message %s: outcome %+v", id, out[id][0])
		}
	}
	// The address is sealed in the log.
	recs, err := w.store.ReadStream(context.Background(), domain.StreamID(zoe), eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if strings.Contains(string(rec.Data), "zoe.faure") {
			t.Fatalf("plaintext address in the log: %s", rec.Data)
		}
	}

	// A fresh worker from checkpoint 0 (another namespace) finds the
	// outcomes and sends nothing.
	before := r.total()
	m3 := w.queue(zoe, domain.ConsentEmail, domain.PurposeService)
	w.worker(r, func(c *delivery.Config) { c.Namespace = "delivery_second" })
	w.waitOutcomes(m3)
	// Both workers race for m3; whichever sends, the webhook sees m3 at
	// most twice and m1, m2 no more.
	if n := len(r.received(m1)) + len(r.received(m2)); n != 2 {
		t.Errorf("m1, m2 received %d times in all, want 2", n)
	}
	if got := r.total() - before; got < 1 || got > 2 {
		t.Errorf("%d sends after the restart, want 1 or 2 (m3 only)", got)
	}
	if n := len(w.outcomes()[m3]); n != 1 {
		t.Errorf("m3 has %d outcomes", n)
	}
}

// TestWorkerRetriesThenDeadLetters: 500s and 429s are retried with backoff
// until the receiver accepts; a message refused MaxAttempts times is
// recorded as MessageFailed (attempts_exhausted) with the status, and a
// 4xx goes to the dead letter at once (rejected).
func TestWorkerRetriesThenDeadLetters(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	zoe := w.customer("zoe@example.com")
	flaky := w.queue(zoe, domain.ConsentEmail, domain.PurposeService)
	dead := w.queue(zoe, domain.ConsentEmail, domain.PurposeService)
	gone := w.queue(zoe, domain.ConsentSMS, domain.PurposeService)
	r.respond = func(key string, n int) int {
		switch key {
		case flaky.String():
			return []int{500, 429, 200}[min(n, 3)-1]
		case dead.String():
			return http.StatusServiceUnavailable
		}
		return http.StatusGone
	}
	w.worker(r, func(c *delivery.Config) { c.MaxAttempts = 4 })
	out := w.waitOutcomes(flaky, dead, gone)

	if d, ok := out[flaky][0].(domain.MessageDelivered); !ok || d.Attempts != 3 || len(r.received(flaky)) != 3 {
		t.Errorf("flaky: %+v after %d sends, want delivered on the 3rd", out[flaky], len(r.received(flaky)))
	}
	want := domain.MessageFailed{MessageID: dead, Channel: domain.ConsentEmail, Reason: domain.FailureAttemptsExhausted, Via: domain.ViaWebhook, Attempts: 4, Detail: "HTTP 503"}
	if out[dead][0] != want || len(r.received(dead)) != 4 {
		t.Errorf("dead: %+v after %d sends, want %+v after 4", out[dead], len(r.received(dead)), want)
	}
	want = domain.MessageFailed{MessageID: gone, Channel: domain.ConsentSMS, Reason: domain.FailureRejected, Via: domain.ViaWebhook, Attempts: 1, Detail: "HTTP 410"}
	if out[gone][0] != want || len(r.received(gone)) != 1 {
		t.Errorf("gone: %+v after %d sends, want %+v after 1", out[gone], len(r.received(gone)), want)
	}
}

// TestWorkerChecksAgainAtSendTime: a marketing message whose consent was
// withdrawn after it was queued, and a message of a customer erased after
// it was queued, are not sent, and say why; a service message of a
// customer who withdrew marketing consent still goes.
func TestWorkerChecksAgainAtSendTime(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	ctx := context.Background()
	ana := w.customer("ana@example.com")
	marketing := w.queue(ana, domain.ConsentEmail, domain.PurposeMarketing)
	service := w.queue(ana, domain.ConsentEmail, domain.PurposeService)
	w.append(ana, domain.RoleService, domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing})

	bob := w.customer("bob@example.com")
	erased := w.queue(bob, domain.ConsentEmail, domain.PurposeService)
	if _, err := w.ledger.Forget(ctx, bob, ledgerTouchpoint(domain.CustomerForgotten{Request: "DSR-7"})); err != nil {
		t.Fatal(err)
	}
	noAddress := uuid.New()
	carl := uuid.New()
	w.append(carl, domain.RoleService, domain.CustomerRegistered{CustomerID: carl, Name: "Carl"})
	w.append(carl, domain.RoleSystem, domain.MessageQueued{MessageID: noAddress, Channel: domain.ConsentSMS, Template: "t", Purpose: domain.PurposeService})

	w.worker(r, nil)
	out := w.waitOutcomes(marketing, service, erased, noAddress)
	for id, reason := range map[uuid.UUID]domain.FailureReason{marketing: domain.FailureConsentWithdrawn, erased: domain.FailureCustomerErased, noAddress: domain.FailureNoRecipient} {
		f, ok := out[id][0].(domain.MessageFailed)
		if !ok || f.Reason != reason || f.Attempts != 0 {
			t.Errorf("message %s: %+v, want MessageFailed %s", id, out[id], reason)
		}
		if n := len(r.received(id)); n != 0 {
			t.Errorf("message %s sent %d times", id, n)
		}
	}
	if _, ok := out[service][0].(domain.MessageDelivered); !ok || len(r.received(service)) != 1 {
		t.Errorf("service message: %+v", out[service])
	}
}

// TestWorkerStopsRetryingWhenConsentIsWithdrawn: consent withdrawn while a
// marketing message waits for its retry cancels the retry.
func TestWorkerStopsRetryingWhenConsentIsWithdrawn(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	ana := w.customer("ana@example.com")
	m := w.queue(ana, domain.ConsentEmail, domain.PurposeMarketing)
	withdrawn := make(chan struct{})
	r.respond = func(string, int) int {
		select {
		case <-withdrawn:
		default:
			w.append(ana, domain.RoleService, domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing})
			close(withdrawn)
		}
		return http.StatusServiceUnavailable
	}
	w.worker(r, func(c *delivery.Config) { c.MaxAttempts = 10 })
	out := w.waitOutcomes(m)
	want := domain.MessageFailed{MessageID: m, Channel: domain.ConsentEmail, Reason: domain.FailureConsentWithdrawn, Via: domain.ViaWebhook, Attempts: 1}
	if out[m][0] != want || len(r.received(m)) != 1 {
		t.Errorf("%+v after %d sends, want %+v after 1", out[m], len(r.received(m)), want)
	}
}

// TestWorkerWithoutSenderForChannel: an SMS with only e-mail configured is
// recorded as no_channel.
func TestWorkerWithoutSenderForChannel(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	zoe := w.customer("zoe@example.com")
	m := w.queue(zoe, domain.ConsentSMS, domain.PurposeService)
	w.worker(r, func(c *delivery.Config) { c.SMS = nil })
	out := w.waitOutcomes(m)
	if f, ok := out[m][0].(domain.MessageFailed); !ok || f.Reason != domain.FailureNoChannel {
		t.Errorf("%+v", out[m])
	}
}

// TestWorkerKeyDestroyedBeforeTheEvent: a key destroyed before the
// CustomerForgotten reached the stream (another process's erasure half
// done) reveals the address as erased: nothing is sent, customer_erased.
func TestWorkerKeyDestroyedBeforeTheEvent(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	zoe := w.customer("zoe@example.com")
	m := w.queue(zoe, domain.ConsentEmail, domain.PurposeService)
	if err := w.keys.Forget(context.Background(), zoe); err != nil {
		t.Fatal(err)
	}
	w.worker(r, nil)
	out := w.waitOutcomes(m)
	if f, ok := out[m][0].(domain.MessageFailed); !ok || f.Reason != domain.FailureCustomerErased || len(r.received(m)) != 0 {
		t.Fatalf("%+v, %d sends", out[m], len(r.received(m)))
	}
}
