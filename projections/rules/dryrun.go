package rules

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/cxledger/cxledger/domain"
)

// Emission is what a rule would emit in a dry run.
type Emission struct {
	Rule    string
	Trigger domain.Envelope // the event that triggered the rule
	// Due is when the event would be emitted: the trigger's occurred-at
	// plus the rule's delay.
	Due time.Time
	// Fired is true when Due is at or before the dry run's now; false for
	// a timer still pending then.
	Fired bool
	// Event is the event emitted; nil when Skipped says why not.
	Event domain.Event
	// Skipped is why nothing is (or would be) emitted: the data did not
	// render to a valid event, or the ledger would refuse the event (a
	// marketing message without consent at Due).
	Skipped string
}

// pending is a dry run's timer.
type pending struct {
	Emission
	key string
	seq int // scheduling order, to break ties in due time
}

// DryRun folds one customer's history, in order, through rules as their
// reactors would see it on the log, with an in-memory timer set and a
// clock that follows the events' occurred-at: a timer fires before the
// first event that occurred after its due time (an event at the very due
// time still cancels it), and at the end every timer due by now fires;
// later ones are returned with Fired false. Every emission is decided as
// the ledger would decide it (domain.Customer.CheckAt at Due, against the
// history and what fired before it), so a marketing message without
// consent comes back Skipped. Emissions come in the order they happen.
//
// Emitted events are not fed back to the rules: a rule's reactor sees its
// own and other rules' emissions on the log, which a dry run of one
// history does not model.
func DryRun(rules []Rule, history []domain.Envelope, now time.Time) ([]Emission, error) {
	var out []Emission
	timers := make(map[string]*pending) // by rule and key
	seq := 0
	var cust *domain.Customer

	decide := func(em *Emission) {
		if em.Event == nil {
			return
		}
		if cust == nil {
			em.Event, em.Skipped = nil, "no customer stream"
			return
		}
		if err := cust.CheckAt(em.Event, em.Due); err != nil {
			em.Event, em.Skipped = nil, "the ledger would refuse it: "+err.Error()
			return
		}
		cust.ApplyAt(em.Event, em.Due)
	}
	fireUntil := func(t time.Time, inclusive bool) {
		var due []*pending
		for k, p := range timers {
			if p.Due.Before(t) || inclusive && p.Due.Equal(t) {
				due = append(due, p)
				delete(timers, k)
			}
		}
		sort.Slice(due, func(i, j int) bool {
			if !due[i].Due.Equal(due[j].Due) {
				return due[i].Due.Before(due[j].Due)
			}
			return due[i].seq < due[j].seq
		})
		for _, p := range due {
			p.Fired = true
			decide(&p.Emission)
			out = append(out, p.Emission)
		}
	}

	for _, e := range history {
		at := e.Metadata.OccurredAt
		fireUntil(at, false)
		if cust == nil {
			id, err := domain.ParseStreamID(e.Stream)
			if err != nil {
				return nil, fmt.Errorf("event %s: %w", e.ID, err)
			}
			cust = domain.NewCustomer(id)
		}
		cust.ApplyAt(e.Event, at)
		customer := cust.ID()
		f, err := fieldsOf(e.Event)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", e.ID, err)
		}
		for _, r := range rules {
			if e.Type != r.On {
				if key, ok := timerKey(r, customer, f); ok && slices.Contains(r.CancelOn, e.Type) {
					delete(timers, r.Name+"\x00"+key)
				}
				continue
			}
			if !r.matches(f) {
				continue
			}
			em := Emission{Rule: r.Name, Trigger: e, Due: at.Add(r.After).UTC().Truncate(time.Microsecond)}
			ev, err := r.render(f.with(r, e.ID))
			if err != nil {
				em.Skipped = err.Error()
			}
			em.Event = ev
			if r.After == 0 {
				em.Fired = true
				decide(&em)
				out = append(out, em)
				continue
			}
			key, ok := timerKey(r, customer, f)
			if !ok {
				continue
			}
			seq++
			timers[r.Name+"\x00"+key] = &pending{Emission: em, key: key, seq: seq}
		}
	}
	fireUntil(now, true)
	// What is still pending, in due order, decided against the history as
	// it stands.
	rest := make([]*pending, 0, len(timers))
	for _, p := range timers {
		rest = append(rest, p)
	}
	sort.Slice(rest, func(i, j int) bool {
		if !rest[i].Due.Equal(rest[j].Due) {
			return rest[i].Due.Before(rest[j].Due)
		}
		return rest[i].seq < rest[j].seq
	})
	for _, p := range rest {
		if p.Event != nil && cust != nil {
			if err := cust.CheckAt(p.Event, p.Due); err != nil {
				p.Event, p.Skipped = nil, "the ledger would refuse it: "+err.Error()
			}
		}
		out = append(out, p.Emission)
	}
	return out, nil
}
