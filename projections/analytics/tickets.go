package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// ticketPrefix starts every key of the tickets read model:
// ticket/<customer uuid>/<ticket uuid>.
const ticketPrefix = "ticket/"

// Version 2: the ticket's service clock (domain.TicketClock) replaced the
// opening, first-response and resolution times.
const ticketsVersion = 2

// Priorities are the ticket priorities, most urgent first: the order of
// TicketSLA's rows.
var Priorities = []domain.TicketPriority{
	domain.PriorityUrgent,
	domain.PriorityHigh,
	domain.PriorityNormal,
	domain.PriorityLow,
}

// NewTickets returns the tickets projection: per ticket, its service
// clock (domain.TicketClock: current priority, and per cycle its start,
// response, stop and end), for TicketSLA.
func NewTickets(cfg Config) projections.Projection {
	return tickets{name: cfg.name(TicketsName)}
}

type tickets struct{ name string }

// Name implements projections.Projection.
func (p tickets) Name() string { return p.name }

// Version implements projections.Projection.
func (tickets) Version() int { return ticketsVersion }

// Types implements projections.Projection.
func (tickets) Types() []string {
	return []string{
		domain.TypeTicketOpened, domain.TypeTicketUpdated, domain.TypeTicketResolved,
		domain.TypeTicketReopened, domain.TypeTicketClosed,
	}
}

// ticketRecord is one stored ticket.
type ticketRecord struct {
	Clock domain.TicketClock `json:"clock"`
}

// Apply implements projections.Projection.
func (p tickets) Apply(tx *projections.Tx, e domain.Envelope) error {
	customer, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	var id string
	switch ev := e.Event.(type) {
	case domain.TicketOpened:
		id = ev.TicketID.String()
	case domain.TicketUpdated:
		id = ev.TicketID.String()
	case domain.TicketResolved:
		id = ev.TicketID.String()
	case domain.TicketReopened:
		id = ev.TicketID.String()
	case domain.TicketClosed:
		id = ev.TicketID.String()
	default:
		return nil
	}
	t, err := projections.Load[ticketRecord](tx, ticketPrefix+customer.String()+"/"+id)
	if err != nil {
		return err
	}
	t.Clock.Apply(e.Event, e.Metadata.OccurredAt)
	return nil
}

// Durations summarises a set of durations, in seconds (fractions kept).
// MedianSeconds and P90Seconds use the nearest-rank method: the p-th
// percentile of n sorted values is the value at rank ⌈p·n ÷ 100⌉
// (1-based), always an observed value; the median of an even count is the
// lower middle value.
type Durations struct {
	Count         int     `json:"count"`
	MedianSeconds float64 `json:"medianSeconds"`
	P90Seconds    float64 `json:"p90Seconds"`
}

func summarise(d []time.Duration) Durations {
	slices.Sort(d)
	return Durations{Count: len(d), MedianSeconds: nearestRank(d, 50).Seconds(), P90Seconds: nearestRank(d, 90).Seconds()}
}

// nearestRank returns the p-th percentile of sorted values, 0 if none.
func nearestRank(sorted []time.Duration, p int) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := (p*n + 99) / 100 // ⌈p·n/100⌉
	return sorted[max(rank, 1)-1]
}

// PrioritySLA holds the service figures of one priority.
type PrioritySLA struct {
	Priority domain.TicketPriority `json:"priority"`
	// Tickets counts every ticket; Unresolved those without a standing
	// resolution (never resolved, or reopened since), closed or not.
	Tickets    int `json:"tickets"`
	Unresolved int `json:"unresolved"`
	// FirstResponse is the time from the start of a cycle (the opening, or
	// a reopening) to its first response, over cycles with a response.
	FirstResponse Durations `json:"firstResponse"`
	// Resolution is the time a resolved ticket was open, over tickets with
	// a standing resolution: the sum of its cycles, each from its start to
	// its resolution or closing, so time while resolved does not count.
	Resolution Durations `json:"resolution"`
	// Breaches counts the cycles that breached their response deadline
	// (domain.TicketClock): the clock stopped after it, or still runs past
	// it at the report's time; Overdue counts the latter.
	Breaches int `json:"breaches"`
	Overdue  int `json:"overdue"`
}

// TicketSLAOptions sets what TicketSLA judges deadlines by.
type TicketSLAOptions struct {
	// SLA is the response SLA per priority; nil means
	// domain.DefaultTicketSLA, the escalation reactor's default.
	SLA map[domain.TicketPriority]time.Duration
	// Now is the report's time, for the cycles still awaiting a response;
	// zero counts none of them as breached.
	Now time.Time
}

// TicketSLA returns the service figures per priority, most urgent first,
// every priority included. A ticket counts under its current priority;
// each cycle's deadline is taken from its own priority (the one in force
// until its clock stopped), by the rule of domain.TicketClock.
func TicketSLA(ctx context.Context, r projections.Reader, opts TicketSLAOptions) ([]PrioritySLA, error) {
	sla := opts.SLA
	if sla == nil {
		sla = domain.DefaultTicketSLA()
	}
	type acc struct {
		tickets, unresolved int
		breaches, overdue   int
		response, resolve   []time.Duration
	}
	by := map[domain.TicketPriority]*acc{}
	for _, p := range Priorities {
		by[p] = &acc{}
	}
	err := r.Scan(ctx, ticketPrefix, "", func(key string, value []byte) (bool, error) {
		var t ticketRecord
		if err := json.Unmarshal(value, &t); err != nil {
			return false, fmt.Errorf("analytics: decode %q: %w", key, err)
		}
		a := by[t.Clock.Priority]
		if a == nil { // a ticket never opened in the history read
			return true, nil
		}
		a.tickets++
		var open time.Duration
		for _, c := range t.Clock.Cycles {
			if !c.RespondedAt.IsZero() {
				a.response = append(a.response, max(0, c.RespondedAt.Sub(c.Start)))
			}
			if !c.EndedAt.IsZero() {
				open += max(0, c.EndedAt.Sub(c.Start))
			}
			running := c.StoppedAt.IsZero()
			if (!running || !opts.Now.IsZero()) && c.Breached(sla, opts.Now) {
				a.breaches++
				if running {
					a.overdue++
				}
			}
		}
		if last, ok := t.Clock.Current(); !ok || !last.Resolved {
			a.unresolved++
		} else {
			a.resolve = append(a.resolve, open)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]PrioritySLA, 0, len(Priorities))
	for _, p := range Priorities {
		a := by[p]
		out = append(out, PrioritySLA{
			Priority: p, Tickets: a.tickets, Unresolved: a.unresolved,
			FirstResponse: summarise(a.response), Resolution: summarise(a.resolve),
			Breaches: a.breaches, Overdue: a.overdue,
		})
	}
	return out, nil
}
