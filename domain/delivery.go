package domain

import "github.com/google/uuid"

// Delivery event type names: what became of a MessageQueued once the
// delivery worker (adapters/delivery) tried to send it. Each message gets
// exactly one outcome, recorded in the customer's stream under an event id
// derived from the message id, so the timeline shows what reached the
// customer and what did not, and why.
const (
	TypeMessageDelivered = "MessageDelivered"
	TypeMessageFailed    = "MessageFailed"
)

// DeliveryVia names the channel adapter that sent (or tried to send) a
// message.
type DeliveryVia string

// Delivery adapters.
const (
	ViaWebhook DeliveryVia = "webhook"
	ViaSMTP    DeliveryVia = "smtp"
)

var deliveryVias = []DeliveryVia{ViaWebhook, ViaSMTP}

// FailureReason says why a queued message was not delivered.
type FailureReason string

// Failure reasons.
const (
	// FailureConsentWithdrawn: a marketing message whose consent was
	// withdrawn after it was queued; it was not sent. (A cancellation is a
	// MessageFailed with this reason, not a type of its own: one outcome
	// type for "did not reach the customer" keeps readers simple.)
	FailureConsentWithdrawn FailureReason = "consent_withdrawn"
	// FailureCustomerErased: the customer was forgotten before the send;
	// nothing was sent. It is the only event that may follow
	// CustomerForgotten (it holds no personal data).
	FailureCustomerErased FailureReason = "customer_erased"
	// FailureNoRecipient: no address on file for the channel (no linked
	// e-mail or phone identifier).
	FailureNoRecipient FailureReason = "no_recipient"
	// FailureNoChannel: no adapter is configured for the message's channel.
	FailureNoChannel FailureReason = "no_channel"
	// FailureRejected: the receiver refused the message for good (an HTTP
	// 4xx other than 408/429, an SMTP 5xx): retrying cannot help.
	FailureRejected FailureReason = "rejected"
	// FailureAttemptsExhausted: the dead letter; every attempt failed with
	// a temporary error.
	FailureAttemptsExhausted FailureReason = "attempts_exhausted"
	// FailureExpired: the message waited longer than the worker's maximum
	// age (a worker started over an old backlog); it was not sent.
	FailureExpired FailureReason = "expired"
)

var failureReasons = []FailureReason{
	FailureConsentWithdrawn, FailureCustomerErased, FailureNoRecipient,
	FailureNoChannel, FailureRejected, FailureAttemptsExhausted, FailureExpired,
}

// maxAttempts bounds the attempts a delivery outcome may report.
const maxAttempts = 1000

// MessageDelivered records that a queued message (MessageID, the
// MessageQueued's) was accepted by the receiver: the webhook answered 2xx,
// or the SMTP server accepted the mail. Attempts counts the sends of the
// worker run that delivered it (from 1); a crash between a send and this
// record may have sent it once more before (README "Outbound delivery").
// It names no address: that stays sealed in the customer's identifiers.
type MessageDelivered struct {
	MessageID uuid.UUID      `json:"messageId"`
	Channel   ConsentChannel `json:"channel"`
	Via       DeliveryVia    `json:"via"`
	Attempts  int            `json:"attempts"`
}

// EventType implements Event.
func (MessageDelivered) EventType() string { return TypeMessageDelivered }

// Validate implements Event.
func (e MessageDelivered) Validate() error {
	var v validator
	v.id("messageId", e.MessageID)
	enum(&v, "channel", e.Channel, true, messageChannels)
	enum(&v, "via", e.Via, true, deliveryVias)
	v.intRange("attempts", int64(e.Attempts), 1, maxAttempts)
	return v.err()
}

// MessageFailed records that a queued message did not reach the customer,
// and why (Reason). Attempts counts the sends tried (0 when none was: a
// withdrawn consent, an erased customer, no address). Via names the
// adapter tried, when one was. Detail is a short technical cause the
// worker writes from status codes only ("HTTP 503", "SMTP 550 5.1.1",
// "timeout") — never a receiver's free text, which may quote the address.
type MessageFailed struct {
	MessageID uuid.UUID      `json:"messageId"`
	Channel   ConsentChannel `json:"channel"`
	Reason    FailureReason  `json:"reason"`
	Via       DeliveryVia    `json:"via,omitempty"`
	Attempts  int            `json:"attempts"`
	Detail    string         `json:"detail,omitempty"`
}

// EventType implements Event.
func (MessageFailed) EventType() string { return TypeMessageFailed }

// Validate implements Event.
func (e MessageFailed) Validate() error {
	var v validator
	v.id("messageId", e.MessageID)
	enum(&v, "channel", e.Channel, true, messageChannels)
	enum(&v, "reason", e.Reason, true, failureReasons)
	enum(&v, "via", e.Via, false, deliveryVias)
	v.intRange("attempts", int64(e.Attempts), 0, maxAttempts)
	v.line("detail", e.Detail, false, maxShort)
	return v.err()
}

// DeliveryOutcomeID is the event id of a message's outcome, whichever it
// is: derived from the message id, so that a worker recording an outcome
// twice (a crash, a fenced-out former owner) is refused by the store — an
// idempotent retry for the same outcome, ErrDuplicateEvent for another —
// and a message never has two.
func DeliveryOutcomeID(messageID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(deliveryNamespace, messageID[:])
}

// deliveryNamespace is the uuid namespace of DeliveryOutcomeID (a fixed
// random uuid: changing it would change every outcome id).
var deliveryNamespace = uuid.MustParse("6f1c7d2e-52a4-4d53-9f0e-7c1b3a8e9d41")
