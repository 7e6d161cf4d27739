package domain

import "time"

// DefaultTicketSLA returns the default first-response SLA of every
// priority: urgent 1h, high 4h, normal 24h, low 72h.
func DefaultTicketSLA() map[TicketPriority]time.Duration {
	return map[TicketPriority]time.Duration{
		PriorityUrgent: time.Hour,
		PriorityHigh:   4 * time.Hour,
		PriorityNormal: 24 * time.Hour,
		PriorityLow:    72 * time.Hour,
	}
}

// TicketClock is a ticket's service clock. The rule, which the escalation
// reactor (projections/engage) and the SLA figures (projections/analytics)
// both follow:
//
//   - A ticket's clock runs in cycles. The first starts at its opening; a
//     reopening starts a new one at the reopen's time. Time while the
//     ticket was resolved or closed belongs to no cycle, so it never
//     counts.
//   - In each cycle the ticket awaits a response: the clock stops at the
//     first update flagged FirstResponse after the cycle's start, or at a
//     resolution or closing, whichever comes first.
//   - The cycle's deadline is its start plus the SLA of the priority in
//     force while the clock runs: a priority change before the clock stops
//     recomputes it from the cycle's start (raising a ticket to urgent two
//     hours after it opened makes it due one hour after the opening, that
//     is, at once); a change after the clock stopped does not move the
//     deadline of that cycle, only of the cycles after it.
//   - A cycle breaches when its clock stops after the deadline, or is
//     still running past it. It is escalated at most once (TicketEscalated
//     stops the escalation for that cycle, not the clock).
//
// Events are taken in log order, at their occurred-at; an event dated
// before the cycle's start counts as at the start.
type TicketClock struct {
	// Priority is the ticket's current priority.
	Priority TicketPriority `json:"priority,omitempty"`
	// Cycles are the ticket's cycles, oldest first (one per opening or
	// reopening).
	Cycles []TicketCycle `json:"cycles,omitempty"`
}

// TicketCycle is one cycle of a ticket's clock (see TicketClock).
type TicketCycle struct {
	// Start is the opening's or the reopening's occurred-at.
	Start time.Time `json:"start"`
	// Priority is the priority the deadline is taken from: the current one
	// while the clock runs, frozen when it stops.
	Priority TicketPriority `json:"priority,omitempty"`
	// RespondedAt is the first response in the cycle (zero: none).
	RespondedAt time.Time `json:"respondedAt,omitzero"`
	// StoppedAt is when the response clock stopped: the first response,
	// resolution or closing in the cycle (zero: still running).
	StoppedAt time.Time `json:"stoppedAt,omitzero"`
	// EndedAt is the resolution or closing that ended the cycle (zero:
	// the ticket is open in this cycle).
	EndedAt time.Time `json:"endedAt,omitzero"`
	// Resolved says EndedAt is a resolution (not a closing without one).
	Resolved bool `json:"resolved,omitempty"`
	// Escalated says a TicketEscalated was recorded in this cycle.
	Escalated bool `json:"escalated,omitempty"`
}

// Deadline returns the cycle's response deadline under sla, and false for
// a priority without an SLA.
func (c TicketCycle) Deadline(sla map[TicketPriority]time.Duration) (time.Time, bool) {
	d, ok := sla[c.Priority]
	if !ok {
		return time.Time{}, false
	}
	return c.Start.Add(d), true
}

// Breached reports whether the cycle breached its deadline under sla as
// of now: its clock stopped after the deadline, or still runs past it.
func (c TicketCycle) Breached(sla map[TicketPriority]time.Duration, now time.Time) bool {
	due, ok := c.Deadline(sla)
	if !ok {
		return false
	}
	if c.StoppedAt.IsZero() {
		return now.After(due)
	}
	return c.StoppedAt.After(due)
}

// Current returns the latest cycle, and false before the opening.
func (k *TicketClock) Current() (TicketCycle, bool) {
	if len(k.Cycles) == 0 {
		return TicketCycle{}, false
	}
	return k.Cycles[len(k.Cycles)-1], true
}

// Awaiting returns the running cycle's deadline under sla when the ticket
// awaits a response and has not been escalated in this cycle: what the
// escalation reactor times. False otherwise.
func (k *TicketClock) Awaiting(sla map[TicketPriority]time.Duration) (time.Time, bool) {
	c, ok := k.Current()
	if !ok || !c.StoppedAt.IsZero() || c.Escalated {
		return time.Time{}, false
	}
	return c.Deadline(sla)
}

// Apply folds one ticket event that occurred at at into the clock; other
// events are ignored. It is total: an event before the opening starts the
// first cycle, as the aggregate's fold does.
func (k *TicketClock) Apply(e Event, at time.Time) {
	at = at.UTC()
	cur := func() *TicketCycle {
		if len(k.Cycles) == 0 {
			k.Cycles = append(k.Cycles, TicketCycle{Start: at, Priority: k.Priority})
		}
		return &k.Cycles[len(k.Cycles)-1]
	}
	stop := func(c *TicketCycle, t time.Time) {
		if c.StoppedAt.IsZero() {
			c.StoppedAt = t
		}
	}
	switch e := deref(e).(type) {
	case TicketOpened:
		k.Priority = e.Priority
		if len(k.Cycles) == 0 {
			k.Cycles = append(k.Cycles, TicketCycle{Start: at, Priority: e.Priority})
			return
		}
		if c := cur(); c.StoppedAt.IsZero() {
			c.Priority = e.Priority
		}
	case TicketUpdated:
		c := cur()
		t := laterOf(at, c.Start)
		if e.Priority != nil {
			k.Priority = *e.Priority
			if c.StoppedAt.IsZero() {
				c.Priority = *e.Priority
			}
		}
		if e.FirstResponse && c.RespondedAt.IsZero() && c.EndedAt.IsZero() {
			c.RespondedAt = t
			stop(c, t)
		}
	case TicketResolved:
		c := cur()
		t := laterOf(at, c.Start)
		stop(c, t)
		if c.EndedAt.IsZero() || !c.Resolved {
			c.EndedAt, c.Resolved = t, true
		}
	case TicketClosed:
		c := cur()
		t := laterOf(at, c.Start)
		stop(c, t)
		if c.EndedAt.IsZero() {
			c.EndedAt = t
		}
	case TicketReopened:
		start := at
		if c, ok := k.Current(); ok {
			start = laterOf(at, c.Start)
		}
		k.Cycles = append(k.Cycles, TicketCycle{Start: start, Priority: k.Priority})
	case TicketEscalated:
		cur().Escalated = true
	}
}

func laterOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}
