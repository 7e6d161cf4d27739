package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
)

// Message is what a Sender sends: the queued message with its recipient's
// address revealed. To is personal data: it lives in memory for the send
// and must never be logged (LogValue leaves it out).
type Message struct {
	// ID is the MessageQueued's message id, the idempotency key receivers
	// deduplicate by.
	ID       uuid.UUID
	Customer uuid.UUID
	Channel  domain.ConsentChannel
	Template string
	Purpose  domain.ConsentPurpose
	Campaign string
	// To is the recipient: an e-mail address or an E.164 phone number.
	To string
	// QueuedAt is when the message was queued (its occurred-at).
	QueuedAt time.Time
	// Attempt counts this worker's sends of the message, from 1.
	Attempt int
}

// LogValue implements slog.LogValuer without the recipient.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("message", m.ID.String()),
		slog.String("customer", m.Customer.String()),
		slog.String("channel", string(m.Channel)),
		slog.String("template", m.Template),
		slog.Int("attempt", m.Attempt),
	)
}

// String describes m without the recipient.
func (m Message) String() string {
	return fmt.Sprintf("message %s (%s, %s) for customer %s", m.ID, m.Channel, m.Template, m.Customer)
}

// Sender sends messages on one channel. Send returns nil once the receiver
// accepted the message. Any other error is temporary (the worker retries
// with backoff) unless it wraps ErrPermanent (a refusal retrying cannot
// change). Errors should be a *SendError, whose Detail the worker records;
// their text must not quote the recipient. Send must be safe for
// concurrent use.
type Sender interface {
	Send(ctx context.Context, m Message) error
	// Via names the adapter in the recorded outcome.
	Via() domain.DeliveryVia
}

// ErrPermanent marks a send refused for good (an HTTP 4xx, an SMTP 5xx):
// the message goes to the dead letter at once.
var ErrPermanent = errors.New("refused for good")

// SendError is a failed send. Detail is short and built from status codes
// only ("HTTP 503", "SMTP 550 5.1.1", "timeout"): it is recorded in the
// MessageFailed event, where a receiver's free text (which may quote the
// address) must not go.
type SendError struct {
	Detail    string
	Permanent bool
	Err       error
}

func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Err == nil {
		return fmt.Sprintf("send failed (%s): %s", kind, e.Detail)
	}
	return fmt.Sprintf("send failed (%s): %s: %v", kind, e.Detail, e.Err)
}

// Unwrap returns the cause, and ErrPermanent for a permanent failure.
func (e *SendError) Unwrap() []error {
	errs := []error{}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Permanent {
		errs = append(errs, ErrPermanent)
	}
	return errs
}

// detailOf is the Detail recorded for err.
func detailOf(err error) string {
	var se *SendError
	if errors.As(err, &se) && se.Detail != "" {
		return se.Detail
	}
	return "send failed"
}
