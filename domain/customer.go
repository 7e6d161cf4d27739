package domain

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
)

// Customer is the aggregate of one customer stream: just the state its
// invariants need, folded from history. Read models live elsewhere.
//
// Use it in two steps, with the store's optimistic concurrency in between:
//
//	c := domain.NewCustomer(id)
//	for _, r := range history { c.ApplyAt(r.Event, r.Metadata.OccurredAt) } // fold, never fails
//	if err := c.CheckAt(newEvent, occurredAt); err != nil { … }             // decide
//	append newEvent at the version history ended with
//
// Check enforces the rules in the context of the whole history; Apply
// trusts history. The zero Customer is a customer with no events yet whose
// id is taken from its CustomerRegistered.
//
// # Time
//
// Most rules follow log order. Consent follows the world's clock too,
// because imports append old facts late: the decisions on one consent are
// ordered by occurred-at, then log order, and a marketing message that
// occurred at T needs the latest decision at or before T to be a grant
// (as the customer360 read model and the audit timeline order them).
// ApplyAt and CheckAt take the event's occurred-at (Metadata.OccurredAt)
// for that; Apply and Check are the undated forms: Apply dates a decision
// at the zero time (before every dated one, undated ones in log order),
// and Check judges a message by the latest decision of all.
type Customer struct {
	id         uuid.UUID
	registered bool
	forgotten  bool
	events     int

	tickets       map[uuid.UUID]TicketStatus
	clocks        map[uuid.UUID]*TicketClock // each ticket's service clock
	opportunities map[uuid.UUID]OpportunityState
	orders        map[uuid.UUID]OrderState
	refunds       map[uuid.UUID]uuid.UUID // refund id → its order
	// consents holds the decisions per channel and purpose, sorted by
	// occurred-at. Of decisions with equal occurred-at only the latest in
	// log order is kept: it overrides the others at every instant.
	consents map[Consent][]decision
	loyalty  loyalty
	// merges holds the merges in effect that the stream is a party to,
	// by merge id.
	merges map[uuid.UUID]mergeState
}

// decision is one ConsentGranted (granted) or ConsentWithdrawn, at the
// time it occurred (UTC, no monotonic reading).
type decision struct {
	at      time.Time
	granted bool
}

// Timed is an event with the time it occurred (its Metadata.OccurredAt),
// for CheckAllAt.
type Timed struct {
	Event Event
	At    time.Time
}

// Consent names one consent: a channel and a purpose.
type Consent struct {
	Channel ConsentChannel
	Purpose ConsentPurpose
}

// String returns "channel/purpose", the form rejections name.
func (c Consent) String() string { return string(c.Channel) + "/" + string(c.Purpose) }

// OpportunityOutcome is open until an opportunity is won or lost, which is
// final.
type OpportunityOutcome string

// Opportunity outcomes.
const (
	OutcomeOpen OpportunityOutcome = "open"
	OutcomeWon  OpportunityOutcome = "won"
	OutcomeLost OpportunityOutcome = "lost"
)

// OpportunityState is what the aggregate knows about one opportunity.
type OpportunityState struct {
	Stage   OpportunityStage
	Outcome OpportunityOutcome
}

// OrderState is what the aggregate knows about one order: what was paid,
// and how much of it was refunded, in the order's currency.
type OrderState struct {
	Amount   int64
	Currency string
	Refunded int64
}

// NewCustomer returns the empty aggregate of the customer with the given id
// (the stream's), so that Check refuses a CustomerRegistered for another id.
func NewCustomer(id uuid.UUID) *Customer {
	return &Customer{id: id}
}

// ID returns the customer id: the one given to NewCustomer or registered.
func (c *Customer) ID() uuid.UUID { return c.id }

// Registered reports whether CustomerRegistered was applied.
func (c *Customer) Registered() bool { return c.registered }

// Forgotten reports whether CustomerForgotten was applied.
func (c *Customer) Forgotten() bool { return c.forgotten }

// Events returns how many events were applied. When the whole stream was
// folded in order, the stream's version is Events()-1 (versions are
// 0-based), the expected version of the next append.
func (c *Customer) Events() int { return c.events }

// Ticket returns a ticket's status, and whether the ticket exists.
func (c *Customer) Ticket(id uuid.UUID) (TicketStatus, bool) {
	s, ok := c.tickets[id]
	return s, ok
}

// TicketClock returns a ticket's service clock (see TicketClock), and
// whether the ticket exists.
func (c *Customer) TicketClock(id uuid.UUID) (TicketClock, bool) {
	k, ok := c.clocks[id]
	if !ok {
		return TicketClock{}, false
	}
	return TicketClock{Priority: k.Priority, Cycles: slices.Clone(k.Cycles)}, true
}

// clock returns the clock of ticket id, creating it.
func (c *Customer) clock(id uuid.UUID) *TicketClock {
	if c.clocks == nil {
		c.clocks = make(map[uuid.UUID]*TicketClock)
	}
	k, ok := c.clocks[id]
	if !ok {
		k = &TicketClock{}
		c.clocks[id] = k
	}
	return k
}

// Opportunity returns an opportunity's state, and whether it exists.
func (c *Customer) Opportunity(id uuid.UUID) (OpportunityState, bool) {
	o, ok := c.opportunities[id]
	return o, ok
}

// Order returns an order's state, and whether it exists.
func (c *Customer) Order(id uuid.UUID) (OrderState, bool) {
	o, ok := c.orders[id]
	return o, ok
}

// Apply folds one event of history into the state, undated: it is
// ApplyAt(e, time.Time{}). Use ApplyAt when the occurred-at is known.
func (c *Customer) Apply(e Event) { c.ApplyAt(e, time.Time{}) }

// ApplyAt folds one event of history that occurred at at (its
// Metadata.OccurredAt) into the state; at places consent decisions in
// time and is ignored otherwise. ApplyAt is total: it never fails or
// panics, whatever the event, because history is history. Events that
// Check would have refused (possible in imported or legacy streams) are
// folded as sensibly as possible: an update to an unknown ticket creates
// it, a refund of an unknown order only marks the refund id used, an
// over-redemption or over-expiry takes the balance below zero, and
// events after CustomerForgotten still count. A nil or foreign event only
// counts as an event.
func (c *Customer) ApplyAt(e Event, at time.Time) {
	c.events++
	switch e := deref(e).(type) {
	case CustomerRegistered:
		if !c.registered && c.id == uuid.Nil {
			c.id = e.CustomerID
		}
		c.registered = true
	case CustomerForgotten:
		c.forgotten = true
	case ConsentGranted:
		c.setConsent(Consent{e.Channel, e.Purpose}, at, true)
	case ConsentWithdrawn:
		c.setConsent(Consent{e.Channel, e.Purpose}, at, false)

	case TicketOpened:
		c.setTicket(e.TicketID, StatusOpen)
		c.clock(e.TicketID).Apply(e, at)
	case TicketUpdated:
		c.clock(e.TicketID).Apply(e, at)
		status := StatusOpen
		if old, ok := c.tickets[e.TicketID]; ok {
			status = old
		}
		if e.Status != nil {
			status = *e.Status
		}
		c.setTicket(e.TicketID, status)
	case TicketResolved:
		c.setTicket(e.TicketID, StatusResolved)
		c.clock(e.TicketID).Apply(e, at)
	case TicketReopened:
		c.setTicket(e.TicketID, StatusOpen)
		c.clock(e.TicketID).Apply(e, at)
	case TicketEscalated:
		c.clock(e.TicketID).Apply(e, at)
	case TicketClosed:
		c.clock(e.TicketID).Apply(e, at)
		c.setTicket(e.TicketID, StatusClosed)

	case OpportunityOpened:
		c.setOpportunity(e.OpportunityID, func(o *OpportunityState) { o.Stage = e.Stage })
	case OpportunityStageChanged:
		c.setOpportunity(e.OpportunityID, func(o *OpportunityState) { o.Stage = e.Stage })
	case OpportunityWon:
		c.setOpportunity(e.OpportunityID, func(o *OpportunityState) { o.Outcome = OutcomeWon })
	case OpportunityLost:
		c.setOpportunity(e.OpportunityID, func(o *OpportunityState) { o.Outcome = OutcomeLost })

	case PurchaseCompleted:
		if c.orders == nil {
			c.orders = make(map[uuid.UUID]OrderState)
		}
		o := c.orders[e.OrderID]
		o.Amount, o.Currency = e.Amount, e.Currency
		c.orders[e.OrderID] = o
	case RefundIssued:
		if c.refunds == nil {
			c.refunds = make(map[uuid.UUID]uuid.UUID)
		}
		c.refunds[e.RefundID] = e.OrderID
		if o, ok := c.orders[e.OrderID]; ok && o.Currency == e.Currency && e.Amount > 0 {
			o.Refunded = min(o.Refunded+min(e.Amount, MaxAmount), 1<<62) // saturate: no overflow on any history
			c.orders[e.OrderID] = o
		}

	case PointsEarned, PointsRedeemed, PointsExpired, PointsClawedBack:
		c.loyalty.apply(e)

	case CustomerMerged, CustomerUnmerged:
		c.applyMerge(e)
	}
}

// setConsent records a decision on k that occurred at at, after the
// decisions with the same or an earlier occurred-at: later in log order
// wins a tie.
func (c *Customer) setConsent(k Consent, at time.Time, granted bool) {
	if c.consents == nil {
		c.consents = make(map[Consent][]decision)
	}
	at = at.UTC() // UTC drops the monotonic reading: comparisons use the wall clock
	ds := c.consents[k]
	i := sort.Search(len(ds), func(i int) bool { return ds[i].at.After(at) })
	if i > 0 && ds[i-1].at.Equal(at) {
		ds[i-1].granted = granted
		return
	}
	c.consents[k] = slices.Insert(ds, i, decision{at, granted})
}

// consentAt returns the latest decision on k at or before at (the latest
// of all when latest is set), and whether there is one.
func (c *Customer) consentAt(k Consent, at time.Time, latest bool) (granted, decided bool) {
	ds := c.consents[k]
	i := len(ds)
	if !latest {
		i = sort.Search(len(ds), func(i int) bool { return ds[i].at.After(at) })
	}
	if i == 0 {
		return false, false
	}
	return ds[i-1].granted, true
}

// Consented reports whether the customer's latest decision on k, by
// occurred-at and then log order, is a grant. No decision at all is no
// consent.
func (c *Customer) Consented(k Consent) bool {
	granted, _ := c.consentAt(k, time.Time{}, true)
	return granted
}

// ConsentedAt reports whether the customer's latest decision on k at or
// before at is a grant: whether a marketing message that occurred at at
// was allowed.
func (c *Customer) ConsentedAt(k Consent, at time.Time) bool {
	granted, _ := c.consentAt(k, at, false)
	return granted
}

func (c *Customer) setTicket(id uuid.UUID, s TicketStatus) {
	if c.tickets == nil {
		c.tickets = make(map[uuid.UUID]TicketStatus)
	}
	c.tickets[id] = s
}

func (c *Customer) setOpportunity(id uuid.UUID, update func(*OpportunityState)) {
	if c.opportunities == nil {
		c.opportunities = make(map[uuid.UUID]OpportunityState)
	}
	o, ok := c.opportunities[id]
	if !ok {
		o.Outcome = OutcomeOpen
	}
	update(&o)
	c.opportunities[id] = o
}

// Check decides whether e may be appended after the folded history. It
// validates e first (errors wrap ErrInvalid), then enforces the stream's
// invariants (errors are *RejectionError, wrapping ErrRejected):
//
//   - the first event is CustomerRegistered, and it happens only once, for
//     the id given to NewCustomer;
//   - nothing at all follows CustomerForgotten;
//   - ticket, opportunity, order and refund ids are never reused;
//   - tickets and opportunities must exist before they are changed;
//   - only an open ticket (neither resolved nor closed) is escalated;
//   - a closed ticket only reopens; a resolved ticket is not resolved
//     again and changes status only by reopening; only a resolved or
//     closed ticket reopens;
//   - a won or lost opportunity is final; a stage change changes the stage;
//   - refunds go to a known order, in its currency, and never sum to more
//     than it paid;
//   - the loyalty balance (earned − redeemed − expired − clawed back,
//     see PointsClawedBack) never goes negative: a redemption or an expiry
//     above it is refused, a claw-back above it leaves a debt; earning and
//     redemption ids are never reused; purchase points go to a known
//     order, once; an expiry names a known earning that expires, takes at
//     most its unexpired remainder (redemptions spend the earliest-expiring
//     earnings first) and, for CheckAt, not before its ExpiresAt; a
//     claw-back names a refund of the earning's order, once per refund,
//     and the claw-backs of an earning never total more than its points;
//   - a marketing message (see MarketingConsent) needs the customer's
//     marketing consent for its channel; service messages need none.
//     Check, undated, needs the latest decision of all to be a grant;
//     CheckAt needs the latest at or before the message's time.
//
// Check does not change c: Apply (ApplyAt) the event once it is stored.
func (c *Customer) Check(e Event) error { return c.check(e, time.Time{}, true) }

// CheckAt is Check for an event that occurred at at (its
// Metadata.OccurredAt): a marketing message needs the latest decision on
// its consent at or before at, by occurred-at and then log order, to be a
// grant, and is refused as "never granted" when there is no decision by
// then, as "withdrawn" when the latest is a withdrawal. The other rules
// follow log order and ignore at.
func (c *Customer) CheckAt(e Event, at time.Time) error { return c.check(e, at, false) }

// check is Check (latest) or CheckAt(e, at).
func (c *Customer) check(e Event, at time.Time, latest bool) error {
	e = deref(e)
	if e == nil {
		return &ValidationError{Rule: "event is nil"}
	}
	if err := e.Validate(); err != nil {
		return err
	}
	typ := e.EventType()
	reject := func(entity string, id uuid.UUID, format string, args ...any) error {
		r := &RejectionError{Type: typ, Entity: entity, Rule: fmt.Sprintf(format, args...)}
		if id != uuid.Nil {
			r.ID = id.String()
		}
		return r
	}

	if c.forgotten && !erasedOutcome(e) {
		return reject("customer", c.id, "forgotten: no event may follow CustomerForgotten")
	}
	if reg, ok := e.(CustomerRegistered); ok {
		switch {
		case c.registered:
			return reject("customer", c.id, "already registered")
		case c.id != uuid.Nil && reg.CustomerID != c.id:
			return reject("customer", c.id, "customerId %s does not match the stream's customer", reg.CustomerID)
		}
		return nil
	}
	if !c.registered {
		return reject("customer", c.id, "not registered: the first event must be CustomerRegistered")
	}

	if need, ok := MarketingConsent(e); ok {
		if granted, decided := c.consentAt(need, at, latest); !granted {
			why := "never granted"
			if decided {
				why = "withdrawn"
			}
			return reject("consent", c.id, "missing consent %s (%s): a marketing message needs the customer's %s consent for %s; service messages need none", need, why, need.Purpose, need.Channel)
		}
	}

	switch e := e.(type) {
	case CustomerMerged, CustomerUnmerged:
		return c.checkMerge(reject, e)
	case TicketOpened:
		if _, ok := c.tickets[e.TicketID]; ok {
			return reject("ticket", e.TicketID, "ticket id already used")
		}
	case TicketUpdated:
		return c.checkTicket(reject, e.TicketID, TypeTicketUpdated, e.Status != nil)
	case TicketResolved:
		return c.checkTicket(reject, e.TicketID, TypeTicketResolved, true)
	case TicketReopened:
		return c.checkTicket(reject, e.TicketID, TypeTicketReopened, true)
	case TicketClosed:
		return c.checkTicket(reject, e.TicketID, TypeTicketClosed, true)
	case TicketEscalated:
		return c.checkTicket(reject, e.TicketID, TypeTicketEscalated, false)

	case OpportunityOpened:
		if _, ok := c.opportunities[e.OpportunityID]; ok {
			return reject("opportunity", e.OpportunityID, "opportunity id already used")
		}
	case OpportunityStageChanged:
		o, err := c.checkOpportunity(reject, e.OpportunityID)
		if err != nil {
			return err
		}
		if o.Stage == e.Stage {
			return reject("opportunity", e.OpportunityID, "already in stage %s", e.Stage)
		}
	case OpportunityWon:
		_, err := c.checkOpportunity(reject, e.OpportunityID)
		return err
	case OpportunityLost:
		_, err := c.checkOpportunity(reject, e.OpportunityID)
		return err

	case PurchaseCompleted:
		if _, ok := c.orders[e.OrderID]; ok {
			return reject("order", e.OrderID, "order id already used")
		}
	case RefundIssued:
		if _, ok := c.refunds[e.RefundID]; ok {
			return reject("refund", e.RefundID, "refund id already used")
		}
		o, ok := c.orders[e.OrderID]
		switch {
		case !ok:
			return reject("order", e.OrderID, "unknown order")
		case o.Currency != e.Currency:
			return reject("order", e.OrderID, "refund in %s but the order was paid in %s", e.Currency, o.Currency)
		case e.Amount > o.Amount-o.Refunded:
			return reject("order", e.OrderID, "refunds would total %d minor units, more than the %d paid", o.Refunded+e.Amount, o.Amount)
		}

	case PointsClawedBack:
		if order, ok := c.refunds[e.RefundID]; !ok || order != e.OrderID {
			return reject("refund", e.RefundID, "a claw-back names a refund of its order")
		}
		return c.loyalty.check(reject, e, at, latest, nil)
	case PointsEarned, PointsRedeemed, PointsExpired:
		return c.loyalty.check(reject, e, at, latest, func(id uuid.UUID) bool { _, ok := c.orders[id]; return ok })
	}
	return nil
}

// erasedOutcome reports whether e records that a message was not sent
// because its customer was erased: the one event that may follow
// CustomerForgotten, so that every queued message gets its outcome. It
// holds no personal data.
func erasedOutcome(e Event) bool {
	f, ok := e.(MessageFailed)
	return ok && f.Reason == FailureCustomerErased
}

type rejectFunc func(entity string, id uuid.UUID, format string, args ...any) error

// checkTicket applies the ticket life cycle: open ⇄ (updates) → resolved →
// closed, with reopen from resolved or closed back to open. A resolved
// ticket still takes comments, but changing its status needs a reopen;
// only a ticket neither resolved nor closed is escalated.
func (c *Customer) checkTicket(reject rejectFunc, id uuid.UUID, typ string, changesStatus bool) error {
	status, ok := c.tickets[id]
	if !ok {
		return reject("ticket", id, "unknown ticket")
	}
	switch {
	case status == StatusClosed && typ != TypeTicketReopened:
		return reject("ticket", id, "closed: only TicketReopened may follow")
	case status == StatusResolved && typ == TypeTicketResolved:
		return reject("ticket", id, "already resolved")
	case status == StatusResolved && typ == TypeTicketUpdated && changesStatus:
		return reject("ticket", id, "resolved: reopen it before changing its status")
	case status == StatusResolved && typ == TypeTicketEscalated:
		return reject("ticket", id, "resolved: only an open ticket is escalated")
	case typ == TypeTicketReopened && status != StatusResolved && status != StatusClosed:
		return reject("ticket", id, "only a resolved or closed ticket can be reopened, status is %s", status)
	}
	return nil
}

func (c *Customer) checkOpportunity(reject rejectFunc, id uuid.UUID) (OpportunityState, error) {
	o, ok := c.opportunities[id]
	switch {
	case !ok:
		return o, reject("opportunity", id, "unknown opportunity")
	case o.Outcome != OutcomeOpen:
		return o, reject("opportunity", id, "%s: won and lost opportunities are final", o.Outcome)
	}
	return o, nil
}

// CheckAll decides a batch of undated events meant for one append: each
// is checked (Check) against the history plus the batch's earlier events
// (a registration followed by its first identifiers, say), folded with
// Apply. c is not changed. The error names the offending event's index.
func (c *Customer) CheckAll(events ...Event) error {
	next := c.clone()
	for i, e := range events {
		if err := next.Check(e); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		next.Apply(e)
	}
	return nil
}

// CheckAllAt is CheckAll for dated events: each is checked with CheckAt
// at its time, against the history plus the batch's earlier events,
// folded with ApplyAt. A grant in the batch thus allows a send of the
// same batch only if the send occurred at or after it.
func (c *Customer) CheckAllAt(events []Timed) error {
	next := c.clone()
	for i, t := range events {
		if err := next.CheckAt(t.Event, t.At); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		next.ApplyAt(t.Event, t.At)
	}
	return nil
}

// Clone returns an independent copy of c: applying events to one never
// changes the other. Callers that keep an aggregate between decisions (a
// cache of folded histories) decide and fold on a clone, so that a failed
// decision or append cannot leave the kept aggregate half-updated.
func (c *Customer) Clone() *Customer { return c.clone() }

func (c *Customer) clone() *Customer {
	n := *c
	n.tickets = maps.Clone(c.tickets)
	if c.clocks != nil {
		n.clocks = make(map[uuid.UUID]*TicketClock, len(c.clocks))
		for id, k := range c.clocks {
			n.clocks[id] = &TicketClock{Priority: k.Priority, Cycles: slices.Clone(k.Cycles)}
		}
	}
	n.opportunities = maps.Clone(c.opportunities)
	n.orders = maps.Clone(c.orders)
	n.refunds = maps.Clone(c.refunds)
	n.loyalty = c.loyalty.clone()
	n.merges = maps.Clone(c.merges)
	// The decision lists are changed in place (inserts, ties): copy them
	// too, not only the map.
	if c.consents != nil {
		n.consents = make(map[Consent][]decision, len(c.consents))
		for k, ds := range c.consents {
			n.consents[k] = slices.Clone(ds)
		}
	}
	return &n
}

// campaignConsent maps the campaign channels addressed to one person to the
// consent channel they need. Social, display, search, event and web
// campaigns reach an audience, not a customer's inbox, so they need no
// per-customer consent.
var campaignConsent = map[CampaignChannel]ConsentChannel{
	CampaignEmail:      ConsentEmail,
	CampaignSMS:        ConsentSMS,
	CampaignPush:       ConsentPush,
	CampaignDirectMail: ConsentPost,
}

// MarketingConsent returns the consent a marketing message needs, and false
// for anything else. Marketing messages are a campaign's send to one
// customer (CampaignTouched with action sent on email, SMS, push or direct
// mail), an EmailSent or SMSSent that names a campaign, and a
// MessageQueued whose purpose is marketing (its channel's consent; a
// service-purpose message, even with a campaign, needs none). Reactions to a
// send (delivered, viewed, clicked, bounced, unsubscribed) are facts about
// the customer, never refused, and messages without a campaign are service
// messages (an order confirmation, a ticket reply).
func MarketingConsent(e Event) (Consent, bool) {
	switch e := deref(e).(type) {
	case CampaignTouched:
		ch, ok := campaignConsent[e.Channel]
		if ok && e.Action == ActionSent {
			return Consent{ch, PurposeMarketing}, true
		}
	case EmailSent:
		if e.Campaign != "" {
			return Consent{ConsentEmail, PurposeMarketing}, true
		}
	case SMSSent:
		if e.Campaign != "" {
			return Consent{ConsentSMS, PurposeMarketing}, true
		}
	case MessageQueued:
		if e.Purpose == PurposeMarketing {
			return Consent{e.Channel, PurposeMarketing}, true
		}
	}
	return Consent{}, false
}
