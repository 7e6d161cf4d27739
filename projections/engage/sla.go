package engage

import (
	"context"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
)

// SLAConfig configures SLAEscalation.
type SLAConfig struct {
	// SLA is how long a ticket of each priority may wait for its first
	// response. A priority left out takes its default: urgent 1h, high 4h,
	// normal 24h, low 72h.
	SLA map[domain.TicketPriority]time.Duration
}

// DefaultSLA returns the default SLA of every priority.
func DefaultSLA() map[domain.TicketPriority]time.Duration {
	return map[domain.TicketPriority]time.Duration{
		domain.PriorityUrgent: time.Hour,
		domain.PriorityHigh:   4 * time.Hour,
		domain.PriorityNormal: 24 * time.Hour,
		domain.PriorityLow:    72 * time.Hour,
	}
}

// withDefaults returns a copy of c with every priority set.
func (c SLAConfig) withDefaults() SLAConfig {
	sla := DefaultSLA()
	for p, d := range c.SLA {
		sla[p] = d
	}
	return SLAConfig{SLA: sla}
}

// Validate checks that every SLA names a known priority and is a positive
// whole number of seconds of at most a year (what TicketEscalated holds).
func (c SLAConfig) Validate() error {
	for p, d := range c.withDefaults().SLA {
		_, ok := DefaultSLA()[p]
		switch {
		case !ok:
			return fmt.Errorf("sla: unknown priority %q", p)
		case d < time.Second || d%time.Second != 0 || d > 366*24*time.Hour:
			return fmt.Errorf("sla of %s: %s, want whole seconds between 1s and 366 days", p, d)
		}
	}
	return nil
}

// SLAEscalation escalates tickets that breach their first-response SLA.
// When a ticket is opened it schedules "sla/<ticketId>" at the opening's
// occurred-at plus the SLA of the ticket's priority at opening; the first
// response (TicketUpdated with firstResponse), a resolution or a closing
// cancels it. When it fires it emits TicketEscalated with that priority,
// the SLA and the breach in words; the ledger refuses it (and the engine
// skips it) if the ticket is no longer open.
//
// A later change of priority does not move the deadline, and a reopened
// ticket is not timed again.
type SLAEscalation struct {
	cfg SLAConfig
}

// NewSLAEscalation returns the rule, or cfg's Validate error.
func NewSLAEscalation(cfg SLAConfig) (*SLAEscalation, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SLAEscalation{cfg: cfg.withDefaults()}, nil
}

// Name implements reactor.Reactor.
func (*SLAEscalation) Name() string { return "sla_escalation" }

// Types implements reactor.Reactor.
func (*SLAEscalation) Types() []string {
	return []string{domain.TypeTicketOpened, domain.TypeTicketUpdated, domain.TypeTicketResolved, domain.TypeTicketClosed}
}

// slaTimer is the payload of an SLA timer.
type slaTimer struct {
	Ticket     string                `json:"ticket"`
	Priority   domain.TicketPriority `json:"priority"`
	SLASeconds int64                 `json:"slaSeconds"`
}

func slaKey(ticket fmt.Stringer) string { return "sla/" + ticket.String() }

// React implements reactor.Reactor.
func (r *SLAEscalation) React(_ context.Context, c *reactor.Context, e domain.Envelope) error {
	switch ev := e.Event.(type) {
	case domain.TicketOpened:
		sla, ok := r.cfg.SLA[ev.Priority]
		if !ok {
			return nil // a priority the domain no longer accepts: no SLA
		}
		customer, err := customerOf(e)
		if err != nil {
			return err
		}
		p, err := payload(slaTimer{Ticket: ev.TicketID.String(), Priority: ev.Priority, SLASeconds: int64(sla / time.Second)})
		if err != nil {
			return err
		}
		return c.Schedule(slaKey(ev.TicketID), customer, e.Metadata.OccurredAt.Add(sla), p)
	case domain.TicketUpdated:
		if ev.FirstResponse {
			return c.Cancel(slaKey(ev.TicketID))
		}
	case domain.TicketResolved:
		return c.Cancel(slaKey(ev.TicketID))
	case domain.TicketClosed:
		return c.Cancel(slaKey(ev.TicketID))
	}
	return nil
}

// Fire implements reactor.Reactor.
func (r *SLAEscalation) Fire(_ context.Context, c *reactor.Context, t reactor.Timer) error {
	var p slaTimer
	if err := unpayload(t.Payload, &p); err != nil {
		return fmt.Errorf("sla timer %q: %w", t.Key, err)
	}
	var ev domain.TicketEscalated
	if err := ev.TicketID.UnmarshalText([]byte(p.Ticket)); err != nil {
		return fmt.Errorf("sla timer %q: %w", t.Key, err)
	}
	ev.Priority = p.Priority
	ev.SLASeconds = p.SLASeconds
	ev.Breach = "no first response within " + human(time.Duration(p.SLASeconds)*time.Second)
	return c.Emit(t.Customer, ev)
}
