package engage

import (
	"context"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/google/uuid"
)

// FollowUpConfig configures PurchaseFollowUp.
type FollowUpConfig struct {
	// After is how long after the purchase (its occurred-at) the message
	// is queued; 0 means 7 days.
	After time.Duration
	// MinAmount maps a currency to the least order amount, in its minor
	// units, that gets a follow-up; a currency not in the map (and an empty
	// map) has no minimum.
	MinAmount map[string]int64
	// Message is the message queued; its defaults are email, template
	// "purchase-follow-up" and purpose service. A marketing purpose makes
	// the ledger require the customer's marketing consent for the channel.
	Message Message
}

// DefaultFollowUpTemplate is the template of the default follow-up.
const DefaultFollowUpTemplate = "purchase-follow-up"

func (c FollowUpConfig) withDefaults() FollowUpConfig {
	if c.After == 0 {
		c.After = 7 * 24 * time.Hour
	}
	c.Message = c.Message.withDefaults(DefaultFollowUpTemplate)
	return c
}

// Validate checks the delay, the minimums and the message.
func (c FollowUpConfig) Validate() error {
	c = c.withDefaults()
	if c.After < 0 {
		return fmt.Errorf("follow-up: negative delay %s", c.After)
	}
	for cur, least := range c.MinAmount {
		if least < 0 {
			return fmt.Errorf("follow-up: negative minimum %d for %s", least, cur)
		}
	}
	return c.Message.validate()
}

// PurchaseFollowUp queues a message some time after a purchase. On
// PurchaseCompleted (at or above the currency's minimum) it schedules
// "follow_up/<orderId>" at the purchase's occurred-at plus After; any
// RefundIssued for that order before it fires cancels it — even a partial
// refund, to keep the rule simple: a customer who returned something is
// better not asked how the order went. When it fires it emits
// MessageQueued, whose id is derived from the timer and the template.
type PurchaseFollowUp struct {
	cfg FollowUpConfig
}

// NewPurchaseFollowUp returns the rule, or cfg's Validate error.
func NewPurchaseFollowUp(cfg FollowUpConfig) (*PurchaseFollowUp, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &PurchaseFollowUp{cfg: cfg.withDefaults()}, nil
}

// Name implements reactor.Reactor.
func (*PurchaseFollowUp) Name() string { return "purchase_follow_up" }

// Types implements reactor.Reactor.
func (*PurchaseFollowUp) Types() []string {
	return []string{domain.TypePurchaseCompleted, domain.TypeRefundIssued}
}

func followUpKey(order uuid.UUID) string { return "follow_up/" + order.String() }

// React implements reactor.Reactor.
func (r *PurchaseFollowUp) React(_ context.Context, c *reactor.Context, e domain.Envelope) error {
	switch ev := e.Event.(type) {
	case domain.PurchaseCompleted:
		if least, ok := r.cfg.MinAmount[ev.Currency]; ok && ev.Amount < least {
			return nil
		}
		customer, err := customerOf(e)
		if err != nil {
			return err
		}
		return c.Schedule(followUpKey(ev.OrderID), customer, e.Metadata.OccurredAt.Add(r.cfg.After), nil)
	case domain.RefundIssued:
		return c.Cancel(followUpKey(ev.OrderID))
	}
	return nil
}

// Fire implements reactor.Reactor.
func (r *PurchaseFollowUp) Fire(_ context.Context, c *reactor.Context, t reactor.Timer) error {
	return c.Emit(t.Customer, r.cfg.Message.queued(c.Trigger()))
}
