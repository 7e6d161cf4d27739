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

const ticketsVersion = 1

// Priorities are the ticket priorities, most urgent first: the order of
// TicketSLA's rows.
var Priorities = []domain.TicketPriority{
	domain.PriorityUrgent,
	domain.PriorityHigh,
	domain.PriorityNormal,
	domain.PriorityLow,
}

// NewTickets returns the tickets projection: per ticket, its current
// priority and the times of opening, first response and resolution, for
// TicketSLA.
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
	Priority domain.TicketPriority `json:"priority,omitempty"`
	OpenedAt time.Time             `json:"openedAt"`
	// FirstResponseAt is the earliest update flagged FirstResponse.
	FirstResponseAt time.Time `json:"firstResponseAt,omitzero"`
	// ResolvedAt is the latest resolution not undone by a reopen.
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
	Closed     bool      `json:"closed,omitempty"`
	Reopened   int64     `json:"reopened,omitempty"`
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
	at := e.Metadata.OccurredAt.UTC()
	if t.OpenedAt.IsZero() { // first event of the ticket, normally TicketOpened
		t.OpenedAt = at
	}
	switch ev := e.Event.(type) {
	case domain.TicketOpened:
		t.Priority = ev.Priority
		if at.Before(t.OpenedAt) {
			t.OpenedAt = at
		}
	case domain.TicketUpdated:
		if ev.Priority != nil {
			t.Priority = *ev.Priority
		}
		if ev.FirstResponse && (t.FirstResponseAt.IsZero() || at.Before(t.FirstResponseAt)) {
			t.FirstResponseAt = at
		}
	case domain.TicketResolved:
		t.ResolvedAt = at
	case domain.TicketReopened:
		t.ResolvedAt, t.Closed = time.Time{}, false
		t.Reopened++
	case domain.TicketClosed:
		t.Closed = true
	}
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
	// FirstResponse is the time from opening to the first response, over
	// tickets with a first response.
	FirstResponse Durations `json:"firstResponse"`
	// Resolution is the time from opening to the standing resolution,
	// over resolved tickets.
	Resolution Durations `json:"resolution"`
}

// TicketSLA returns the service figures per priority, most urgent first,
// every priority included. A ticket counts under its current priority.
func TicketSLA(ctx context.Context, r projections.Reader) ([]PrioritySLA, error) {
	type acc struct {
		tickets, unresolved int
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
		a := by[t.Priority]
		if a == nil { // a ticket never opened in the history read
			return true, nil
		}
		a.tickets++
		if !t.FirstResponseAt.IsZero() {
			a.response = append(a.response, max(0, t.FirstResponseAt.Sub(t.OpenedAt)))
		}
		if t.ResolvedAt.IsZero() {
			a.unresolved++
		} else {
			a.resolve = append(a.resolve, max(0, t.ResolvedAt.Sub(t.OpenedAt)))
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
		})
	}
	return out, nil
}
