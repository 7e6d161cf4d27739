package domain

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// The clock rule by hand, default SLA (urgent 1h, high 4h, normal 24h,
// low 72h), times in hours after the opening at t0.
func TestTicketClock(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	h := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Hour))) }
	id := uuid.New()
	sla := DefaultTicketSLA()
	opened := func(p TicketPriority) Event {
		return TicketOpened{TicketID: id, Subject: "x", Priority: p, Channel: TicketEmail}
	}
	prio := func(p TicketPriority) Event { return TicketUpdated{TicketID: id, Priority: &p} }
	respond := TicketUpdated{TicketID: id, Comment: "ok", FirstResponse: true}
	resolved := TicketResolved{TicketID: id, Resolution: "done"}
	reopened := TicketReopened{TicketID: id, Reason: "again"}
	type step struct {
		at float64
		e  Event
	}
	tests := []struct {
		name     string
		steps    []step
		awaiting bool
		due      float64 // hours, when awaiting
		cycles   int
		breached []bool // per cycle, judged at 100 h
	}{
		{"opened normal", []step{{0, opened(PriorityNormal)}}, true, 24, 1, []bool{true}},
		{"raised to high: 4h from the opening", []step{{0, opened(PriorityNormal)}, {1, prio(PriorityHigh)}}, true, 4, 1, []bool{true}},
		{"raised to urgent after its hour: due already", []step{{0, opened(PriorityNormal)}, {2, prio(PriorityUrgent)}}, true, 1, 1, []bool{true}},
		{"lowered to low", []step{{0, opened(PriorityHigh)}, {1, prio(PriorityLow)}}, true, 72, 1, []bool{true}},
		{"answered in time", []step{{0, opened(PriorityHigh)}, {3, respond}}, false, 0, 1, []bool{false}},
		{"answered late", []step{{0, opened(PriorityHigh)}, {5, respond}}, false, 0, 1, []bool{true}},
		{"raised after the answer: that cycle keeps its deadline", []step{{0, opened(PriorityNormal)}, {3, respond}, {4, prio(PriorityUrgent)}}, false, 0, 1, []bool{false}},
		{"reopened: a new cycle at the current priority", []step{{0, opened(PriorityLow)}, {1, respond}, {2, prio(PriorityHigh)}, {3, resolved}, {50, reopened}}, true, 54, 2, []bool{false, true}},
		{"reopened and answered in time", []step{{0, opened(PriorityHigh)}, {1, resolved}, {10, reopened}, {12, respond}}, false, 0, 2, []bool{false, false}},
		{"resolved without an answer, late", []step{{0, opened(PriorityUrgent)}, {2, resolved}}, false, 0, 1, []bool{true}},
		{"escalated: no more escalation in this cycle", []step{{0, opened(PriorityUrgent)}, {1, TicketEscalated{TicketID: id, Priority: PriorityUrgent, Breach: "x", SLASeconds: 3600}}}, false, 0, 1, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k TicketClock
			for _, s := range tt.steps {
				k.Apply(s.e, h(s.at))
			}
			due, awaiting := k.Awaiting(sla)
			if awaiting != tt.awaiting || awaiting && !due.Equal(h(tt.due)) {
				t.Errorf("Awaiting = %s, %v; want %s, %v", due, awaiting, h(tt.due), tt.awaiting)
			}
			if len(k.Cycles) != tt.cycles {
				t.Fatalf("%d cycles, want %d: %+v", len(k.Cycles), tt.cycles, k.Cycles)
			}
			for i, c := range k.Cycles {
				if got := c.Breached(sla, h(100)); got != tt.breached[i] {
					t.Errorf("cycle %d breached = %v, want %v (%+v)", i, got, tt.breached[i], c)
				}
			}
		})
	}
}

// The aggregate keeps each ticket's clock, and its clones do not share it.
func TestCustomerTicketClock(t *testing.T) {
	c := fold(history()...) // the fixture ticket, opened
	k, ok := c.TicketClock(ticketID)
	if !ok || len(k.Cycles) != 1 {
		t.Fatalf("clock %+v, %v", k, ok)
	}
	n := c.Clone()
	n.Apply(TicketResolved{TicketID: ticketID, Resolution: "done"})
	n.Apply(TicketReopened{TicketID: ticketID, Reason: "again"})
	if k, _ := c.TicketClock(ticketID); len(k.Cycles) != 1 {
		t.Errorf("the clone's reopening shows in the original: %+v", k)
	}
	if k, _ := n.TicketClock(ticketID); len(k.Cycles) != 2 {
		t.Errorf("clone: %+v", k)
	}
}
