package delivery_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/domain"
)

func message() delivery.Message {
	return delivery.Message{ID: uuid.New(), Customer: uuid.New(), Channel: domain.ConsentEmail, Template: "thank-you-won",
		Purpose: domain.PurposeService, To: "zoe@example.com", QueuedAt: time.Now(), Attempt: 1}
}

// TestSignatureVerifies: what Sign makes, Verify accepts with the same
// secret, body and a clock within the tolerance, and refuses otherwise.
func TestSignatureVerifies(t *testing.T) {
	at := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	body := []byte(`{"messageId":"x"}`)
	h := delivery.Sign(secret, at, body)
	if !strings.HasPrefix(h, "t=1796616000,v1=") {
		t.Fatalf("header %q", h)
	}
	for _, tc := range []struct {
		name   string
		secret []byte
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"valid", secret, h, string(body), at.Add(time.Minute), nil},
		{"rotated: second v1 matches", secret, delivery.Sign([]byte("old"), at, body) + "," + strings.Split(h, ",")[1], string(body), at, nil},
		{"wrong secret", []byte("other"), h, string(body), at, delivery.ErrBadSignature},
		{"tampered body", secret, h, `{"messageId":"y"}`, at, delivery.ErrBadSignature},
		{"replayed after tolerance", secret, h, string(body), at.Add(6 * time.Minute), delivery.ErrStale},
		{"from the future", secret, h, string(body), at.Add(-6 * time.Minute), delivery.ErrStale},
		{"timestamp changed", secret, strings.Replace(h, "t=1796616000", "t=1796616060", 1), string(body), at, delivery.ErrBadSignature},
		{"malformed", secret, "v1=zz", string(body), at, delivery.ErrBadSignature},
		{"empty", secret, "", string(body), at, delivery.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := delivery.Verify(tc.secret, tc.header, []byte(tc.body), tc.now, 0)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestWebhookClassifiesResponses: 2xx delivered; 408, 429 and 5xx
// temporary; other 4xx and redirects permanent; each with a detail made of
// the status only.
func TestWebhookClassifiesResponses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{200, true, false}, {202, true, false}, {204, true, false},
		{500, false, false}, {502, false, false}, {503, false, false}, {429, false, false}, {408, false, false},
		{400, false, true}, {401, false, true}, {404, false, true}, {410, false, true}, {302, false, true},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, "zoe@example.com is unknown here")
			}))
			defer srv.Close()
			wh, err := delivery.NewWebhook(delivery.WebhookConfig{URL: srv.URL, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			err = wh.Send(context.Background(), message())
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *delivery.SendError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *SendError", err, err)
			}
			if errors.Is(err, delivery.ErrPermanent) != tc.permanent {
				t.Errorf("permanent = %v, want %v", !tc.permanent, tc.permanent)
			}
			if want := "HTTP " + strconv.Itoa(tc.status); se.Detail != want {
				t.Errorf("detail %q", se.Detail)
			}
			if strings.Contains(err.Error(), "zoe") {
				t.Errorf("error quotes the receiver's text: %v", err)
			}
		})
	}
}

// TestWebhookTimeoutIsTemporary: a receiver slower than the timeout is a
// temporary failure ("timeout"), retried like a 5xx.
func TestWebhookTimeoutIsTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	wh, err := delivery.NewWebhook(delivery.WebhookConfig{URL: srv.URL, Secret: secret, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = wh.Send(context.Background(), message())
	var se *delivery.SendError
	if !errors.As(err, &se) || se.Detail != "timeout" || errors.Is(err, delivery.ErrPermanent) {
		t.Fatalf("Send = %v, want a temporary timeout", err)
	}
}

// TestWorkerRetriesTimeouts: a stalled receiver is retried, and delivered
// once it answers.
func TestWorkerRetriesTimeouts(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	zoe := w.customer("zoe@example.com")
	m := w.queue(zoe, domain.ConsentEmail, domain.PurposeService)
	stall := make(chan struct{})
	defer close(stall)
	r.respond = func(_ string, n int) int {
		if n == 1 {
			<-stall // the worker times out meanwhile
		}
		return http.StatusOK
	}
	wh, err := delivery.NewWebhook(delivery.WebhookConfig{URL: r.srv.URL, Secret: secret, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.worker(r, func(c *delivery.Config) { c.Email = wh })
	out := w.waitOutcomes(m)
	if d, ok := out[m][0].(domain.MessageDelivered); !ok || d.Attempts != 2 {
		t.Fatalf("%+v, want delivered on the 2nd attempt", out[m])
	}
}

// TestNewWebhookRefusesIncompleteConfig: no URL, a non-HTTP URL, or no
// secret.
func TestNewWebhookRefusesIncompleteConfig(t *testing.T) {
	for _, cfg := range []delivery.WebhookConfig{
		{Secret: secret},
		{URL: "ftp://example.com", Secret: secret},
		{URL: "https://example.com/hook"},
	} {
		if _, err := delivery.NewWebhook(cfg); err == nil {
			t.Errorf("NewWebhook(%+v) accepted", cfg)
		}
	}
}

// FuzzVerify: a receiver's verification of an outside header never panics,
// and accepts only what Sign made for the same body.
func FuzzVerify(f *testing.F) {
	at := time.Unix(1796616000, 0)
	f.Add(delivery.Sign(secret, at, []byte(`{}`)), []byte(`{}`))
	f.Add("t=1,v1=00,v1=zz,,=", []byte("x"))
	f.Add("t=-99999999999999999999,v1=", []byte(""))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		err := delivery.Verify(secret, header, body, at, 0)
		if err == nil && header != delivery.Sign(secret, at, body) && !strings.Contains(header, "v1=") {
			t.Fatalf("accepted %q without a v1 signature", header)
		}
	})
}
