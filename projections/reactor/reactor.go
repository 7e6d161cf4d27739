// Package reactor runs reactors: process managers that read the global log
// from their own checkpoint, as read models do, and answer events and
// durable timers by appending new events.
//
// # Why beside projections
//
// A reactor is a projection whose "read model" is its own small state — the
// timers it has pending — and whose side effect is appending events. It
// reads the log exactly like a projection (projections.Source, from a
// checkpoint, in position order), keeps its state and checkpoint in a
// projections.Backend namespace ("reactor_<name>", see Namespace), and so
// runs on every read-model backend (embedded bbolt, PostgreSQL, memory)
// with the same one-transaction commit of state and checkpoint. It writes
// to the ledger only through an Appender, which the application implements
// with the ledger's write path (validation and aggregate invariants), so a
// reactor can never store what a user could not.
//
// # Exactly once in effect
//
// For each batch of log events the engine calls React, appends what the
// reactor emitted, and only then commits the timer changes and the
// checkpoint in one backend transaction. A crash between the append and
// the commit redoes the batch after restart: delivery is at least once.
// The appended ids make it exactly once in effect: an emitted event's id is
// derived from its trigger (the n-th emission for event E by reactor R is
// uuid.NewSHA1(E, "R/n"); for a timer, from the timer's id, itself derived
// from the reactor, key and due time), so a redone batch, a re-fired timer
// or a full replay from position 0 appends the very same ids, which the
// event store accepts as idempotent retries without writing anything. React
// and Fire must therefore be deterministic: what they emit may depend only
// on the trigger and on nothing that changes between runs.
//
// # Durable timers
//
// Context.Schedule stores a timer under a key of the reactor's choosing
// ("sla/<ticket>"); scheduling the key again replaces it, Context.Cancel
// removes it. Timers live in the namespace in due order, so a timer due
// while the process was down fires right after restart. The engine fires
// due timers every Config.TimerInterval, calls Fire, appends what it
// emitted and then deletes the timer in one transaction (again at least
// once, made exactly once in effect by the derived ids).
//
// A timer fires only once the reactor has read the log up to its due time
// (the last event it processed was recorded at or after the due time) or up
// to the head: so during a catch-up or a replay, an event that cancelled a
// timer in time is applied before that timer could fire.
package reactor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/google/uuid"
)

// Reactor answers events and timers by emitting events.
//
// React and Fire must be deterministic (see the package documentation):
// no clocks, randomness or map order in what they emit or schedule. An
// error stops the reactor's current batch or timer; it is retried after
// Config.RetryDelay, so a poison event blocks only its reactor.
type Reactor interface {
	// Name identifies the reactor: lower-case letters, digits and
	// underscores, starting with a letter, at most 30 bytes. It names the
	// namespace and enters every derived id: renaming a reactor replays it
	// from position 0 under new ids.
	Name() string
	// Types lists the event types React handles; empty means every type of
	// the domain.
	Types() []string
	// React handles one event of the log.
	React(ctx context.Context, c *Context, e domain.Envelope) error
	// Fire handles a due timer.
	Fire(ctx context.Context, c *Context, t Timer) error
}

// Timer is a durable timer as scheduled by a reactor.
type Timer struct {
	// Key is the reactor's name for the timer, unique within the reactor.
	Key string `json:"key"`
	// Customer is whose timer it is (the stream emissions usually go to).
	Customer uuid.UUID `json:"customer"`
	// Due is when the timer fires (UTC, microseconds).
	Due time.Time `json:"due"`
	// Payload is the reactor's data for Fire.
	Payload json.RawMessage `json:"payload,omitempty"`
	// CausationID is the id of the event that scheduled the timer, and
	// CorrelationID that event's correlation, carried to what Fire emits.
	CausationID   string `json:"causationId,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
}

// timerSpace is the namespace of timer ids.
var timerSpace = uuid.MustParse("6f1d2a53-3c0e-4f7b-9a55-0d3c8e4b7a21")

// ID returns the timer's id for reactor name: derived from the name, the
// key and the due time, so the same timer has the same id on every run and
// rescheduling it to another time gives another id.
func (t Timer) ID(name string) uuid.UUID {
	return uuid.NewSHA1(timerSpace, []byte(name+"\x00"+t.Key+"\x00"+strconv.FormatInt(t.Due.UnixNano(), 10)))
}

// Emitted is an event a reactor emits, ready for the Appender.
type Emitted struct {
	// ID is derived from the trigger (see the package documentation).
	ID       uuid.UUID
	Event    domain.Event
	Metadata domain.Metadata
}

// Appender appends a reactor's events to a customer's stream. The
// application implements it with the ledger's write path (adapters/ledger).
//
// Append must be idempotent by event id: appending events whose ids are
// already stored (a redone batch, a replay) must succeed without writing —
// an eventstore idempotent retry, or eventstore.ErrDuplicateEvent for the
// same id, counts as success. An error wrapping domain.ErrRejected (an
// invariant forbids the event, retrying cannot help) makes the engine log
// and skip the emission; any other error is retried.
type Appender interface {
	Append(ctx context.Context, customer uuid.UUID, events ...Emitted) error
}

// Context collects what a reactor does for one trigger: the events it
// emits and the timers it schedules or cancels. It is valid only during the
// React or Fire call it is passed to.
type Context struct {
	name    string
	trigger uuid.UUID // the event id, or the timer id
	meta    domain.Metadata
	emitted []emission
	changes []change
}

type emission struct {
	customer uuid.UUID
	Emitted
}

// change schedules (timer != nil) or cancels a key.
type change struct {
	key   string
	timer *Timer
}

// maxTimerKey leaves room for the "due/<nanos>/" prefix within
// projections.MaxKeyLen.
const maxTimerKey = 900

// Trigger returns the id of what is being handled: the event, or the timer.
func (c *Context) Trigger() uuid.UUID { return c.trigger }

// Emit emits event to customer's stream. Its id is derived from the
// trigger and the number of events emitted before it for that trigger;
// its metadata from the trigger: caused by the trigger, in its
// correlation, recorded by actor "system:reactor/<name>", occurred when the
// trigger occurred (an event) or fell due (a timer).
func (c *Context) Emit(customer uuid.UUID, event domain.Event) error {
	if customer == uuid.Nil {
		return errors.New("emit: no customer")
	}
	if event == nil {
		return errors.New("emit: nil event")
	}
	n := len(c.emitted)
	c.emitted = append(c.emitted, emission{customer: customer, Emitted: Emitted{
		ID:       uuid.NewSHA1(c.trigger, []byte(c.name+"/"+strconv.Itoa(n))),
		Event:    event,
		Metadata: c.meta,
	}})
	return nil
}

// Schedule sets the timer key to fire at due for customer with payload,
// replacing any timer of that key. Due is truncated to microseconds (the
// store's precision), so the derived ids do not depend on finer clocks.
func (c *Context) Schedule(key string, customer uuid.UUID, due time.Time, payload json.RawMessage) error {
	if err := checkTimerKey(key); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	if due.Before(time.Unix(0, 0)) {
		return fmt.Errorf("schedule %q: due %s is before 1970", key, due)
	}
	if payload != nil && !json.Valid(payload) {
		return fmt.Errorf("schedule %q: payload is not JSON", key)
	}
	t := &Timer{
		Key: key, Customer: customer, Due: due.UTC().Truncate(time.Microsecond),
		Payload:       append(json.RawMessage(nil), payload...),
		CausationID:   c.trigger.String(),
		CorrelationID: c.meta.CorrelationID,
	}
	c.changes = append(c.changes, change{key: key, timer: t})
	return nil
}

// Cancel removes the timer key, if any.
func (c *Context) Cancel(key string) error {
	if err := checkTimerKey(key); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	c.changes = append(c.changes, change{key: key})
	return nil
}

func checkTimerKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty timer key")
	case len(key) > maxTimerKey:
		return fmt.Errorf("timer key of %d bytes, more than %d", len(key), maxTimerKey)
	case !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("timer key %q: want valid UTF-8 without NUL", key)
	}
	return nil
}

// eventContext is the Context for event e.
func eventContext(name string, e domain.Envelope) *Context {
	return &Context{name: name, trigger: e.ID, meta: domain.Metadata{
		OccurredAt:    e.Metadata.OccurredAt,
		Actor:         Actor(name),
		CorrelationID: correlation(e),
		CausationID:   e.ID.String(),
	}}
}

// correlation is e's correlation id, or e's own id when it starts a flow.
func correlation(e domain.Envelope) string {
	if e.Metadata.CorrelationID != "" {
		return e.Metadata.CorrelationID
	}
	return e.ID.String()
}

// timerContext is the Context for timer t.
func timerContext(name string, t Timer) *Context {
	id := t.ID(name)
	corr := t.CorrelationID
	if corr == "" {
		corr = t.CausationID
	}
	return &Context{name: name, trigger: id, meta: domain.Metadata{
		OccurredAt:    t.Due,
		Actor:         Actor(name),
		CorrelationID: corr,
		CausationID:   id.String(),
	}}
}

// Actor is the metadata actor of what reactor name emits. It uses the
// domain's "system" kind, since domain.ActorKinds has no "reactor".
func Actor(name string) string { return "system:reactor/" + name }

// Namespace returns the backend namespace holding reactor name's timers and
// checkpoint. Dropping it replays the reactor from position 0.
func Namespace(name string) string { return "reactor_" + name }

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)

// Validate checks what the engine relies on: a usable name.
func Validate(r Reactor) error {
	name := r.Name()
	if !namePattern.MatchString(name) {
		return fmt.Errorf("reactor name %q: want lower-case letters, digits and underscores, starting with a letter, at most 30", name)
	}
	return projections.CheckName("namespace", Namespace(name))
}

// Keys of a reactor's namespace.
const (
	duePrefix = "due/"
	keyPrefix = "key/"
)

// dueKey sorts timers by due time: 20 zero-padded digits of Unix nanoseconds.
func dueKey(t Timer) string {
	return fmt.Sprintf("%s%020d/%s", duePrefix, t.Due.UnixNano(), t.Key)
}

// keyRef is stored at "key/<key>": where the key's timer is.
type keyRef struct {
	Due string `json:"due"` // the timer's dueKey
}
