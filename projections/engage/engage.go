// Package engage holds the ledger's built-in engagement rules (issue 8),
// each a reactor.Reactor with a documented, validated Config:
//
//   - SLAEscalation ("sla_escalation") escalates a ticket that got no
//     response within its priority's SLA, by the clock of
//     domain.TicketClock: recomputed on a priority change, restarted on a
//     reopening (TicketEscalated);
//   - PurchaseFollowUp ("purchase_follow_up") queues a follow-up message
//     some days after a purchase, unless the order was refunded by then
//     (MessageQueued);
//   - ThankYouWon ("thank_you_won") queues a thank-you message when an
//     opportunity is won (MessageQueued);
//   - BirthdayGreeting ("birthday_greeting") issues a discount and queues
//     a greeting on the customer's birthday (DiscountIssued and
//     MessageQueued, stored together or not at all);
//   - AtRiskRetention ("at_risk_retention") queues a win-back offer when
//     the customer's churn risk crosses a threshold (MessageQueued).
//
// Everything a rule decides is itself an event on the customer's timeline,
// caused by its trigger (the event, or the timer the event scheduled), so
// an auditor sees why it happened. The rules write through the reactor
// engine's Appender, that is the ledger's write path: the aggregate refuses
// what a user could not store (a marketing message without the customer's
// marketing consent for its channel, an escalation of a ticket that is no
// longer open), and the engine logs and skips such a refusal. Every
// emitted id is derived from the trigger, so a redone batch or a replay
// emits nothing twice.
//
// Two rules read beyond the log, through interfaces they declare: the
// birthday greeting opens the sealed birthday with a Revealer (the
// keyring), the at-risk trigger asks Scores for the churn risk as of a
// check (the analytics read model).
package engage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/google/uuid"
)

var (
	_ reactor.Reactor = (*SLAEscalation)(nil)
	_ reactor.Reactor = (*PurchaseFollowUp)(nil)
	_ reactor.Reactor = (*ThankYouWon)(nil)
	_ reactor.Reactor = (*BirthdayGreeting)(nil)
	_ reactor.Reactor = (*AtRiskRetention)(nil)
)

// Message describes the message a rule queues (domain.MessageQueued).
type Message struct {
	// Channel is email or sms.
	Channel domain.ConsentChannel
	// Template names the messaging system's template.
	Template string
	// Purpose is service (needs no consent) or marketing (needs the
	// customer's marketing consent for Channel, or the ledger refuses it).
	Purpose domain.ConsentPurpose
	// Campaign optionally names the campaign, for attribution.
	Campaign string
}

// withDefaults fills an empty Channel with email, Template with template
// and Purpose with service.
func (m Message) withDefaults(template string) Message {
	if m.Channel == "" {
		m.Channel = domain.ConsentEmail
	}
	if m.Template == "" {
		m.Template = template
	}
	if m.Purpose == "" {
		m.Purpose = domain.PurposeService
	}
	return m
}

// queued is the message for trigger: its id is derived from the trigger
// and the template, so the same trigger queues the same message.
func (m Message) queued(trigger uuid.UUID) domain.MessageQueued {
	return domain.MessageQueued{
		MessageID: uuid.NewSHA1(trigger, []byte(m.Template)),
		Channel:   m.Channel,
		Template:  m.Template,
		Purpose:   m.Purpose,
		Campaign:  m.Campaign,
	}
}

// validate checks m as the domain would check its MessageQueued.
func (m Message) validate() error {
	if err := m.queued(uuid.Max).Validate(); err != nil {
		return fmt.Errorf("message: %w", err)
	}
	return nil
}

// customerOf returns the customer whose stream e is in.
func customerOf(e domain.Envelope) (uuid.UUID, error) {
	return domain.ParseStreamID(e.Stream)
}

// payload marshals a timer payload.
func payload(v any) (json.RawMessage, error) {
	return json.Marshal(v)
}

var errNoPayload = errors.New("timer without payload")

// unpayload unmarshals a timer payload into v.
func unpayload(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errNoPayload
	}
	return json.Unmarshal(raw, v)
}

// human writes d briefly for a breach: "1h", "72h", "30m", else d.String().
func human(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
