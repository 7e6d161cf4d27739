package engage

import (
	"context"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/google/uuid"
)

// Scores tells a customer's churn risk (projections/analytics: the rhythm
// score ChurnRisk, 0 to 1) as of a given time; ok is false when the
// customer has no score (no rhythm known). adapters/query.Service
// implements it over the analytics read model.
type Scores interface {
	ChurnRisk(ctx context.Context, customer uuid.UUID, at time.Time) (risk float64, ok bool, err error)
}

// AtRiskConfig configures AtRiskRetention.
type AtRiskConfig struct {
	// Threshold is the churn risk at or above which a customer is at
	// risk, in (0, 1]; 0 means 0.7 (a silence of about 1.2 of the
	// customer's usual gaps between purchases).
	Threshold float64
	// CheckEvery is how often the risk is checked, from the last
	// purchase on; 0 means 7 days.
	CheckEvery time.Duration
	// Message is the offer; its defaults are email, template "win-back",
	// purpose marketing and campaign "win-back".
	Message Message
}

// At-risk retention defaults.
const (
	DefaultAtRiskTemplate = "win-back"
	DefaultAtRiskCampaign = "win-back"
)

func (c AtRiskConfig) withDefaults() AtRiskConfig {
	if c.Threshold == 0 {
		c.Threshold = 0.7
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = 7 * 24 * time.Hour
	}
	if c.Message.Purpose == "" {
		c.Message.Purpose = domain.PurposeMarketing
	}
	if c.Message.Campaign == "" {
		c.Message.Campaign = DefaultAtRiskCampaign
	}
	c.Message = c.Message.withDefaults(DefaultAtRiskTemplate)
	return c
}

// Validate checks the threshold, the period and the message.
func (c AtRiskConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case !(c.Threshold > 0 && c.Threshold <= 1):
		return fmt.Errorf("at-risk: threshold %v, want more than 0 and at most 1", c.Threshold)
	case c.CheckEvery < time.Hour || c.CheckEvery > 366*24*time.Hour:
		return fmt.Errorf("at-risk: check every %s, want 1h to 366 days", c.CheckEvery)
	}
	return c.Message.validate()
}

// AtRiskRetention sends a win-back offer when a customer's churn risk
// crosses a threshold.
//
// Each PurchaseCompleted (re)schedules "at_risk/<customerId>" at its
// occurred-at plus CheckEvery, below the threshold; CustomerForgotten
// cancels it. When the timer fires, the rule asks Scores for the risk at
// the due time: the first check at or above Threshold after one below it
// (a crossing) emits the offer (MessageQueued, id derived from the timer);
// checks that stay above emit nothing, and a check below arms the rule
// again. Whether the last check was above is kept in the timer's payload.
// Every check schedules the next, CheckEvery later; a customer without a
// score is checked again later. A marketing offer needs the customer's
// consent at the check: without it the offer is refused and not retried
// during that crossing.
//
// The risk is read from the analytics read model at the due time, so a
// replay decides on the read model as it is then; the ids derived from the
// timer keep an offer already stored from being stored twice.
type AtRiskRetention struct {
	cfg    AtRiskConfig
	scores Scores
}

// NewAtRiskRetention returns the rule reading churn risks from scores, or
// cfg's Validate error.
func NewAtRiskRetention(cfg AtRiskConfig, scores Scores) (*AtRiskRetention, error) {
	if scores == nil {
		return nil, fmt.Errorf("at-risk: no Scores")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &AtRiskRetention{cfg: cfg.withDefaults(), scores: scores}, nil
}

// Name implements reactor.Reactor.
func (*AtRiskRetention) Name() string { return "at_risk_retention" }

// Types implements reactor.Reactor.
func (*AtRiskRetention) Types() []string {
	return []string{domain.TypePurchaseCompleted, domain.TypeCustomerForgotten}
}

func atRiskKey(customer uuid.UUID) string { return "at_risk/" + customer.String() }

// atRiskTimer is the payload of a check: whether the last check found the
// customer at risk.
type atRiskTimer struct {
	Above bool `json:"above"`
}

// React implements reactor.Reactor.
func (r *AtRiskRetention) React(_ context.Context, c *reactor.Context, e domain.Envelope) error {
	customer, err := customerOf(e)
	if err != nil {
		return err
	}
	switch e.Event.(type) {
	case domain.PurchaseCompleted:
		return r.schedule(c, customer, e.Metadata.OccurredAt.Add(r.cfg.CheckEvery), false)
	case domain.CustomerForgotten:
		return c.Cancel(atRiskKey(customer))
	}
	return nil
}

func (r *AtRiskRetention) schedule(c *reactor.Context, customer uuid.UUID, due time.Time, above bool) error {
	p, err := payload(atRiskTimer{Above: above})
	if err != nil {
		return err
	}
	return c.Schedule(atRiskKey(customer), customer, due, p)
}

// Fire implements reactor.Reactor.
func (r *AtRiskRetention) Fire(ctx context.Context, c *reactor.Context, t reactor.Timer) error {
	var last atRiskTimer
	if err := unpayload(t.Payload, &last); err != nil {
		return fmt.Errorf("at-risk timer: %w", err)
	}
	risk, ok, err := r.scores.ChurnRisk(ctx, t.Customer, t.Due)
	if err != nil {
		return fmt.Errorf("churn risk: %w", err)
	}
	above := last.Above
	if ok {
		above = risk >= r.cfg.Threshold
	}
	if above && !last.Above {
		if err := c.Emit(t.Customer, r.cfg.Message.queued(c.Trigger())); err != nil {
			return err
		}
	}
	return r.schedule(c, t.Customer, t.Due.Add(r.cfg.CheckEvery), above)
}
