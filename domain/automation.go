package domain

import (
	"time"

	"github.com/google/uuid"
)

// Automation event type names: what the ledger's own engagement rules
// decide (projections/engage), each recorded on the customer's timeline
// with the triggering event or timer as its causation, so that an auditor
// sees why it happened.
const (
	TypeTicketEscalated = "TicketEscalated"
	TypeMessageQueued   = "MessageQueued"
	TypeDiscountIssued  = "DiscountIssued"
)

// TicketEscalated records that a ticket breached its service level: it got
// no first response within SLASeconds of being opened. Priority is the
// ticket's priority the SLA was taken from; Breach says in words what was
// missed ("no first response within 4h"). Only an open ticket (neither
// resolved nor closed) is escalated.
type TicketEscalated struct {
	TicketID   uuid.UUID      `json:"ticketId"`
	Priority   TicketPriority `json:"priority"`
	Breach     string         `json:"breach"`
	SLASeconds int64          `json:"slaSeconds"`
}

// EventType implements Event.
func (TicketEscalated) EventType() string { return TypeTicketEscalated }

// maxSLASeconds bounds an SLA to a year: longer is a unit bug.
const maxSLASeconds = 366 * 24 * 3600

// Validate implements Event.
func (e TicketEscalated) Validate() error {
	var v validator
	v.id("ticketId", e.TicketID)
	enum(&v, "priority", e.Priority, true, ticketPriorities)
	v.line("breach", e.Breach, true, maxName)
	v.intRange("slaSeconds", e.SLASeconds, 1, maxSLASeconds)
	return v.err()
}

// messageChannels are the channels a MessageQueued may use.
var messageChannels = []ConsentChannel{ConsentEmail, ConsentSMS}

// messagePurposes are the purposes of a MessageQueued.
var messagePurposes = []ConsentPurpose{PurposeService, PurposeMarketing}

// MessageQueued asks the messaging system to send the customer a templated
// message on a channel, to the contact on file: the event names the
// template, never the address or the text, so it holds no personal data.
// Purpose is service (a follow-up on an order, a thank-you) or marketing;
// a marketing message needs the customer's marketing consent for the
// channel (see MarketingConsent), a service message none. Campaign
// optionally names the campaign the message belongs to, for attribution.
type MessageQueued struct {
	MessageID uuid.UUID      `json:"messageId"`
	Channel   ConsentChannel `json:"channel"`
	Template  string         `json:"template"`
	Purpose   ConsentPurpose `json:"purpose"`
	Campaign  string         `json:"campaign,omitempty"`
}

// EventType implements Event.
func (MessageQueued) EventType() string { return TypeMessageQueued }

// Validate implements Event.
func (e MessageQueued) Validate() error {
	var v validator
	v.id("messageId", e.MessageID)
	enum(&v, "channel", e.Channel, true, messageChannels)
	v.line("template", e.Template, true, maxName)
	enum(&v, "purpose", e.Purpose, true, messagePurposes)
	v.line("campaign", e.Campaign, false, maxName)
	return v.err()
}

// DiscountIssued records that the customer was given a discount code:
// PercentOff percent off (1 to 100) until ValidUntil. Code is what the
// customer enters at checkout (upper-case letters, digits and '-', as a
// rule derives it: "BDAY-1A2B3C4D"); Reason is a short name for why it was
// issued ("birthday", "goodwill"). It holds no personal data.
//
// A discount is not itself a marketing message and needs no consent (an
// agent may issue one to settle a complaint). A rule that issues one to be
// announced by a marketing MessageQueued emits both in one append, so the
// message's consent decides for both: they are stored together or refused
// together (projections/engage.BirthdayGreeting).
type DiscountIssued struct {
	DiscountID uuid.UUID `json:"discountId"`
	Code       string    `json:"code"`
	PercentOff int       `json:"percentOff"`
	ValidUntil time.Time `json:"validUntil"`
	Reason     string    `json:"reason"`
}

// EventType implements Event.
func (DiscountIssued) EventType() string { return TypeDiscountIssued }

// Validate implements Event.
func (e DiscountIssued) Validate() error {
	var v validator
	v.id("discountId", e.DiscountID)
	v.line("code", e.Code, true, maxShort)
	for _, r := range e.Code {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' {
			v.add("code", "must be upper-case letters A-Z, digits and '-'")
			break
		}
	}
	v.intRange("percentOff", int64(e.PercentOff), 1, 100)
	v.timestamp("validUntil", e.ValidUntil, true)
	v.line("reason", e.Reason, true, maxShort)
	return v.err()
}
