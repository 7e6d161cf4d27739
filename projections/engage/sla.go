package engage

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
)

// SLAConfig configures SLAEscalation.
type SLAConfig struct {
	// SLA is how long a ticket of each priority may wait for a response.
	// A priority left out takes its default: urgent 1h, high 4h, normal
	// 24h, low 72h (domain.DefaultTicketSLA).
	SLA map[domain.TicketPriority]time.Duration
	// Clocks reads a ticket's service clock from the customer's aggregate
	// (required).
	Clocks TicketClocks
}

// TicketClocks reads tickets' service clocks. The application implements
// it by folding the customer's stream (adapters/ledger), not from a read
// model that may lag.
type TicketClocks interface {
	// TicketClock returns the ticket's clock, and whether the ticket exists.
	TicketClock(ctx context.Context, customer, ticket uuid.UUID) (domain.TicketClock, bool, error)
}

// DefaultSLA returns the default SLA of every priority.
func DefaultSLA() map[domain.TicketPriority]time.Duration { return domain.DefaultTicketSLA() }

// withDefaults returns a copy of c with every priority set.
func (c SLAConfig) withDefaults() SLAConfig {
	sla := DefaultSLA()
	for p, d := range c.SLA {
		sla[p] = d
	}
	return SLAConfig{SLA: sla, Clocks: c.Clocks}
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
	if c.Clocks == nil {
		return fmt.Errorf("sla: no Clocks to read tickets' service clocks from")
	}
	return nil
}

// SLAEscalation escalates tickets that breach their response SLA, by the
// clock rule of domain.TicketClock: the deadline is the start of the
// ticket's current cycle (its opening or latest reopening) plus the SLA
// of the priority in force while it awaits a response, so a priority
// change recomputes it from the cycle's start and a reopening starts a new
// deadline from the reopen time at the current priority; time while the
// ticket was resolved never counts.
//
// On every ticket event it reads the ticket's clock from the aggregate
// (Clocks) and sets the timer "sla/<ticketId>" to the current cycle's
// deadline while the ticket awaits a response and was not escalated in
// this cycle, or cancels it otherwise (a response, a resolution or a
// closing). The aggregate may be ahead of the event being handled; the
// handler of each later event sets the timer again, so the timer always
// ends up where the latest clock says. When it fires it reads the clock
// again: nothing if the ticket no longer awaits a response, a new timer if
// the deadline moved later, and otherwise TicketEscalated with the
// cycle's priority, its SLA and the breach in words (the ledger refuses it
// if the ticket is no longer open, and the engine skips it). A deadline
// already past when a priority change sets it fires at once.
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
	return []string{domain.TypeTicketOpened, domain.TypeTicketUpdated, domain.TypeTicketResolved,
		domain.TypeTicketReopened, domain.TypeTicketClosed}
}

// slaTimer is the payload of an SLA timer.
type slaTimer struct {
	Ticket     string                `json:"ticket"`
	Priority   domain.TicketPriority `json:"priority"`
	SLASeconds int64                 `json:"slaSeconds"`
	// Cycle is the cycle's index: 0 for the opening, 1 for the first
	// reopening, and so on.
	Cycle int `json:"cycle,omitempty"`
}

func slaKey(ticket fmt.Stringer) string { return "sla/" + ticket.String() }

// ticketOf returns the ticket an event is about.
func ticketOf(e domain.Event) (uuid.UUID, bool) {
	switch ev := e.(type) {
	case domain.TicketOpened:
		return ev.TicketID, true
	case domain.TicketUpdated:
		return ev.TicketID, true
	case domain.TicketResolved:
		return ev.TicketID, true
	case domain.TicketReopened:
		return ev.TicketID, true
	case domain.TicketClosed:
		return ev.TicketID, true
	}
	return uuid.Nil, false
}

// React implements reactor.Reactor: it sets the ticket's timer to its
// clock's deadline, or cancels it.
func (r *SLAEscalation) React(ctx context.Context, c *reactor.Context, e domain.Envelope) error {
	ticket, ok := ticketOf(e.Event)
	if !ok {
		return nil
	}
	customer, err := customerOf(e)
	if err != nil {
		return err
	}
	clock, found, err := r.cfg.Clocks.TicketClock(ctx, customer, ticket)
	if err != nil {
		return fmt.Errorf("sla: clock of ticket %s: %w", ticket, err)
	}
	due, awaiting := clock.Awaiting(r.cfg.SLA)
	if !found || !awaiting {
		return c.Cancel(slaKey(ticket))
	}
	return r.schedule(c, customer, ticket, clock, due)
}

func (r *SLAEscalation) schedule(c *reactor.Context, customer, ticket uuid.UUID, clock domain.TicketClock, due time.Time) error {
	cycle, _ := clock.Current()
	p, err := payload(slaTimer{Ticket: ticket.String(), Priority: cycle.Priority,
		SLASeconds: int64(r.cfg.SLA[cycle.Priority] / time.Second), Cycle: len(clock.Cycles) - 1})
	if err != nil {
		return err
	}
	return c.Schedule(slaKey(ticket), customer, due, p)
}

// Fire implements reactor.Reactor.
func (r *SLAEscalation) Fire(ctx context.Context, c *reactor.Context, t reactor.Timer) error {
	var p slaTimer
	if err := unpayload(t.Payload, &p); err != nil {
		return fmt.Errorf("sla timer %q: %w", t.Key, err)
	}
	var ticket uuid.UUID
	if err := ticket.UnmarshalText([]byte(p.Ticket)); err != nil {
		return fmt.Errorf("sla timer %q: %w", t.Key, err)
	}
	clock, found, err := r.cfg.Clocks.TicketClock(ctx, t.Customer, ticket)
	if err != nil {
		return fmt.Errorf("sla: clock of ticket %s: %w", ticket, err)
	}
	due, awaiting := clock.Awaiting(r.cfg.SLA)
	switch {
	case !found || !awaiting:
		return nil
	case due.After(t.Due):
		return r.schedule(c, t.Customer, ticket, clock, due)
	}
	cycle, _ := clock.Current()
	sla := r.cfg.SLA[cycle.Priority]
	ev := domain.TicketEscalated{TicketID: ticket, Priority: cycle.Priority, SLASeconds: int64(sla / time.Second)}
	ev.Breach = "no first response within " + human(sla)
	if len(clock.Cycles) > 1 {
		ev.Breach = "no response within " + human(sla) + " of the reopening"
	}
	return c.Emit(t.Customer, ev)
}
