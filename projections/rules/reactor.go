package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
)

// ReactorPrefix starts the name of every rule's reactor.
const ReactorPrefix = "rule_"

// Reactor returns the reactor that runs rule r, named "rule_<name>". On
// the trigger, when the conditions hold, it emits at once (after 0) or
// schedules a timer keyed by customer (and key value) that a cancelOn event
// cancels and a new trigger replaces; the timer's payload is the rendered
// event, so what fires is what the trigger decided. An emission whose data
// does not render to a valid event is logged on log (nil: discarded) and
// skipped; a refusal by the ledger (consent) is the engine's to log.
func Reactor(r Rule, log *slog.Logger) reactor.Reactor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ruleReactor{rule: r, log: log.With("rule", r.Name)}
}

type ruleReactor struct {
	rule Rule
	log  *slog.Logger
}

func (rr *ruleReactor) Name() string { return ReactorPrefix + rr.rule.Name }

func (rr *ruleReactor) Types() []string {
	return append([]string{rr.rule.On}, rr.rule.CancelOn...)
}

// payload is a timer's: the event to emit.
type payload struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func (rr *ruleReactor) React(_ context.Context, c *reactor.Context, e domain.Envelope) error {
	customer, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return err
	}
	f, err := fieldsOf(e.Event)
	if err != nil {
		return err
	}
	r := rr.rule
	if e.Type != r.On {
		key, ok := timerKey(r, customer, f)
		if !ok {
			return nil
		}
		return c.Cancel(key)
	}
	if !r.matches(f) {
		return nil
	}
	ev, err := r.render(f.with(r, e.ID))
	if err != nil {
		rr.log.Warn("rule emission skipped", "trigger", e.ID, "error", err)
		return nil
	}
	if r.After == 0 {
		return c.Emit(customer, ev)
	}
	key, ok := timerKey(r, customer, f)
	if !ok {
		rr.log.Warn("rule timer skipped: the trigger has no key value", "trigger", e.ID, "key", r.Key)
		return nil
	}
	typ, _, data, err := domain.Encode(ev)
	if err != nil {
		return err
	}
	p, err := json.Marshal(payload{Type: typ, Data: data})
	if err != nil {
		return err
	}
	return c.Schedule(key, customer, e.Metadata.OccurredAt.Add(r.After), p)
}

func (rr *ruleReactor) Fire(_ context.Context, c *reactor.Context, t reactor.Timer) error {
	var p payload
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return fmt.Errorf("timer %s: %w", t.Key, err)
	}
	ev, err := domain.Parse(p.Type, p.Data)
	if err != nil {
		rr.log.Warn("rule emission skipped", "timer", t.Key, "error", err)
		return nil
	}
	return c.Emit(t.Customer, ev)
}

// timerKey is the key of a rule's timer for customer: the customer, and
// the key field's value when the rule has one (false when the event has
// none).
func timerKey(r Rule, customer uuid.UUID, f fields) (string, bool) {
	if r.Key == "" {
		return customer.String(), true
	}
	v, ok := f.get(r.Key)
	if !ok {
		return "", false
	}
	return customer.String() + "/" + text(v), true
}
