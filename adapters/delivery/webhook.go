package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
)

// Webhook headers.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>": the
	// HMAC, under the shared secret, of the timestamp, a '.', and the raw
	// body (see Sign and Verify).
	HeaderSignature = "X-Cxledger-Signature"
	// HeaderIdempotencyKey carries the message id: the same on every
	// attempt and every resend after a crash.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderAttempt carries the attempt number of this worker run (from 1).
	HeaderAttempt = "X-Cxledger-Attempt"
)

// DefaultSignatureTolerance is how far a signature's timestamp may be from
// the receiver's clock for Verify (5 minutes), which bounds replays.
const DefaultSignatureTolerance = 5 * time.Minute

// WebhookPayload is the JSON body a webhook receives.
type WebhookPayload struct {
	MessageID  uuid.UUID             `json:"messageId"`
	CustomerID uuid.UUID             `json:"customerId"`
	Channel    domain.ConsentChannel `json:"channel"`
	Template   string                `json:"template"`
	Purpose    domain.ConsentPurpose `json:"purpose"`
	Campaign   string                `json:"campaign,omitempty"`
	// To is the recipient's address (e-mail or E.164 phone), revealed for
	// this send.
	To       string    `json:"to"`
	QueuedAt time.Time `json:"queuedAt"`
}

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// URL receives a POST per message. Required (http or https).
	URL string
	// Secret signs every request (HeaderSignature). Required.
	Secret []byte
	// Timeout bounds one attempt, connection to response (default 10s).
	Timeout time.Duration
	// Client sends the requests (default: a client with Timeout that
	// follows no redirects).
	Client *http.Client
	// Now is the signing clock (default time.Now).
	Now func() time.Time
}

// Webhook delivers messages by POSTing them, signed, to a URL. It is safe
// for concurrent use.
type Webhook struct {
	cfg WebhookConfig
}

// NewWebhook returns a Webhook, or an error when cfg is incomplete.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, errors.New("delivery: webhook: URL must be http:// or https://")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("delivery: webhook: missing secret")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: cfg.Timeout,
			// A redirect is a configuration error to fix, not to follow
			// with a signed body.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Webhook{cfg: cfg}, nil
}

// Via implements Sender.
func (w *Webhook) Via() domain.DeliveryVia { return domain.ViaWebhook }

// Send implements Sender: 2xx is delivered; 408, 425, 429, 5xx, timeouts
// and connection failures are temporary; every other status is permanent.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	body, err := json.Marshal(WebhookPayload{
		MessageID: m.ID, CustomerID: m.Customer, Channel: m.Channel, Template: m.Template,
		Purpose: m.Purpose, Campaign: m.Campaign, To: m.To, QueuedAt: m.QueuedAt.UTC(),
	})
	if err != nil {
		return &SendError{Detail: "encode", Permanent: true, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return &SendError{Detail: "bad request", Permanent: true, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cxledger-delivery/1")
	req.Header.Set(HeaderIdempotencyKey, m.ID.String())
	req.Header.Set(HeaderAttempt, strconv.Itoa(m.Attempt))
	req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, w.cfg.Now(), body))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		// The error text names the URL, never the recipient.
		detail := "connection failed"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			detail = "timeout"
		}
		return &SendError{Detail: detail, Err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500:
		return &SendError{Detail: "HTTP " + strconv.Itoa(code)}
	default:
		return &SendError{Detail: "HTTP " + strconv.Itoa(code), Permanent: true}
	}
}

// Sign returns the HeaderSignature value for body sent at t:
// "t=<unix seconds>,v1=<hex of HMAC-SHA256(secret, "<unix seconds>.<body>")>".
// The timestamp is signed with the body, so a captured request cannot be
// replayed later than the receiver's tolerance.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Signature verification errors.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook signature timestamp outside the tolerance")
)

// Verify checks a HeaderSignature value against body as a receiver must:
// the HMAC matches (compared in constant time) and the timestamp is within
// tolerance of now (0: DefaultSignatureTolerance). Several v1 values (a
// secret being rotated) match if any does.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: malformed header", ErrBadSignature)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Second))
	}
	return nil
}
