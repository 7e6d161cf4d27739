package engage

import (
	"context"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
)

// ThankYouConfig configures ThankYouWon.
type ThankYouConfig struct {
	// Message is the message queued; its defaults are email, template
	// "thank-you-won" and purpose service.
	Message Message
}

// DefaultThankYouTemplate is the template of the default thank-you.
const DefaultThankYouTemplate = "thank-you-won"

func (c ThankYouConfig) withDefaults() ThankYouConfig {
	c.Message = c.Message.withDefaults(DefaultThankYouTemplate)
	return c
}

// Validate checks the message.
func (c ThankYouConfig) Validate() error { return c.withDefaults().Message.validate() }

// ThankYouWon queues a thank-you message as soon as an opportunity is won
// (at the win's occurred-at); the message id is derived from the
// OpportunityWon event and the template.
type ThankYouWon struct {
	cfg ThankYouConfig
}

// NewThankYouWon returns the rule, or cfg's Validate error.
func NewThankYouWon(cfg ThankYouConfig) (*ThankYouWon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &ThankYouWon{cfg: cfg.withDefaults()}, nil
}

// Name implements reactor.Reactor.
func (*ThankYouWon) Name() string { return "thank_you_won" }

// Types implements reactor.Reactor.
func (*ThankYouWon) Types() []string { return []string{domain.TypeOpportunityWon} }

// React implements reactor.Reactor.
func (r *ThankYouWon) React(_ context.Context, c *reactor.Context, e domain.Envelope) error {
	if _, ok := e.Event.(domain.OpportunityWon); !ok {
		return nil
	}
	customer, err := customerOf(e)
	if err != nil {
		return err
	}
	return c.Emit(customer, r.cfg.Message.queued(c.Trigger()))
}

// Fire implements reactor.Reactor: the rule schedules no timers.
func (*ThankYouWon) Fire(context.Context, *reactor.Context, reactor.Timer) error { return nil }
