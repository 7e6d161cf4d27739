// Package customer360 is the unified customer view: everything an agent
// needs on one screen so that the customer never has to repeat themselves —
// profile, identifiers, consents, touches, open tickets and opportunities,
// orders and money, the latest NPS answer.
//
// # Ordering
//
// Events arrive in global log order. Profile fields, ticket, opportunity
// and order state follow that order, as the aggregate does. Facts whose
// meaning is "the latest in the world" follow occurred-at instead, because
// imports append old facts late: a consent's current state is decided by
// the grant or withdrawal that happened last (an imported 2019 grant does
// not override a 2024 withdrawal), the latest NPS answer is the one
// answered last, and first and last touch are the minimum and maximum
// occurred-at. Ties on occurred-at go to the later log position, which is
// deterministic on every replay.
//
// # Money
//
// Amounts are integer minor units, summed per ISO-4217 currency and never
// converted or mixed. Sums saturate instead of overflowing, so that no
// history can make Apply fail. Lifetime value is historical: spend minus
// refunds, per currency.
//
// # Loyalty
//
// View.Loyalty keeps the points account: the balance (earned − redeemed −
// expired, as the aggregate keeps it), the three totals, and the latest
// HistoryLen movements in log order. The tier is not stored: it depends on
// the clock (a rolling window), so SetTier computes it at query time from
// the orders with a domain.TierPolicy, and the stored view stays
// deterministic. Loyalty holds no personal data and survives an erasure.
//
// # Erasure
//
// After CustomerForgotten the view keeps counts, money, statuses and dates
// and shows the erasure (View.Erasure); personal data is blanked — name,
// locale, country, company, address, identifiers, ticket subjects,
// opportunity names, free-text reasons and NPS comments — and events that
// follow (possible only in imported history) add no personal data.
//
// # Sealed values
//
// With a keyring, personal values arrive sealed (tokens, see
// domain.PersonalFields) and the view stores them as they come: the edges
// that show the view reveal them (adapters/query), as plaintext or, once
// the key is destroyed, as erased. An identifier is then kept as its token
// rather than in canonical form (a token cannot be normalised): equal
// entered values give equal tokens and are listed once, and the edge
// normalises what it reveals.
//
// # Key layout
//
// One customer's read model lives under "c/<customer>/" (canonical uuid):
//
//	c/<customer>/a               the summary document (View without its lists)
//	c/<customer>/o/<order id>    one order
//	c/<customer>/p/<opportunity> one opportunity, open or not
//	c/<customer>/t/<ticket id>   one ticket, open or not
//
// so that Get is a single prefix scan, and an event rewrites only the
// summary and the one entity it touches, however long the history. Keys are
// never parsed back: every value carries its own id.
package customer360

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Name is the read model's name.
const Name = "customer360"

// Version is the read model's schema version; bump it when a key or a
// stored value changes, so that the engine rebuilds the view.
const Version = 2

// View is the unified view of one customer.
type View struct {
	CustomerID uuid.UUID `json:"customerId"`
	// Registered is false only for a history that does not start with
	// CustomerRegistered (legacy imports).
	Registered   bool      `json:"registered"`
	RegisteredAt time.Time `json:"registeredAt,omitzero"`

	Profile     Profile      `json:"profile"`
	Identifiers []Identifier `json:"identifiers,omitempty"`
	// Consents has one entry per channel and purpose ever recorded, sorted
	// by channel then purpose.
	Consents []Consent `json:"consents,omitempty"`

	// FirstTouch and LastTouch are the earliest and latest touches by
	// occurred-at; nil before the first touch. See IsTouch.
	FirstTouch *Touch `json:"firstTouch,omitempty"`
	LastTouch  *Touch `json:"lastTouch,omitempty"`
	// Touches counts touches per channel (see TouchChannel).
	Touches map[string]int64 `json:"touches,omitempty"`

	// OpenTickets and OpenOpportunities are sorted by opening time, then
	// id; Orders by purchase time, then id. Get fills them.
	OpenTickets       []Ticket      `json:"openTickets,omitempty"`
	OpenOpportunities []Opportunity `json:"openOpportunities,omitempty"`
	Orders            []Order       `json:"orders,omitempty"`
	// TicketCount and OpportunityCount count every ticket and opportunity,
	// open or not.
	TicketCount      int64 `json:"ticketCount"`
	OpportunityCount int64 `json:"opportunityCount"`

	// Spend and Refunds are totals in minor units per currency code.
	Spend   map[string]int64 `json:"spend,omitempty"`
	Refunds map[string]int64 `json:"refunds,omitempty"`
	// LifetimeValue is historical: Spend minus Refunds, per currency.
	// Get fills it.
	LifetimeValue map[string]int64 `json:"lifetimeValue,omitempty"`

	// LatestNPS is the NPS answer given last (by occurred-at).
	LatestNPS *NPS `json:"latestNps,omitempty"`

	// Loyalty is the points account; its Tier is filled at query time
	// (SetTier).
	Loyalty Loyalty `json:"loyalty,omitzero"`

	// Segment and ChurnRisk are computed by the analytics package at query
	// time (they depend on the clock and on every other customer) and
	// filled by the query layer; Get leaves them empty. ChurnRisk is a
	// probability between 0 and 1.
	Segment   string   `json:"segment,omitempty"`
	ChurnRisk *float64 `json:"churnRisk,omitempty"`

	// Erasure is set once the customer was forgotten.
	Erasure *Erasure `json:"erasure,omitempty"`

	// Events counts the events folded; StreamVersion and Position are the
	// last one's, so that a caller that just appended can tell whether the
	// view has caught up.
	Events        int64  `json:"events"`
	StreamVersion uint64 `json:"streamVersion"`
	Position      uint64 `json:"position"`
}

// Profile is the customer's personal data from registration and updates.
type Profile struct {
	Name    string `json:"name,omitempty"`
	Locale  string `json:"locale,omitempty"`
	Country string `json:"country,omitempty"`
	Company string `json:"company,omitempty"`
	Address string `json:"address,omitempty"`
}

// Identifier is an identifier linked to the customer, in canonical form
// (sealed: as stored, see the package comment).
// The identity package owns resolution and conflicts; this is the list an
// agent reads.
type Identifier struct {
	Kind     domain.IdentifierKind `json:"kind"`
	Value    string                `json:"value"`
	LinkedAt time.Time             `json:"linkedAt"`
}

// ConsentStatus is the current state of one consent.
type ConsentStatus string

// Consent statuses.
const (
	ConsentGranted   ConsentStatus = "granted"
	ConsentWithdrawn ConsentStatus = "withdrawn"
)

// Consent is the state of one channel and purpose: the latest grant and
// the latest withdrawal (by occurred-at), and which of them is current.
type Consent struct {
	Channel domain.ConsentChannel `json:"channel"`
	Purpose domain.ConsentPurpose `json:"purpose"`
	Status  ConsentStatus         `json:"status"`
	// GrantedAt is when the latest grant happened, with its Source and
	// Wording as proof; zero when never granted.
	GrantedAt time.Time `json:"grantedAt,omitzero"`
	Source    string    `json:"source,omitempty"`
	Wording   string    `json:"wording,omitempty"`
	// WithdrawnAt is when the latest withdrawal happened, with its Reason;
	// zero when never withdrawn.
	WithdrawnAt time.Time `json:"withdrawnAt,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	// GrantedPosition and WithdrawnPosition break ties between a grant and
	// a withdrawal with the same occurred-at: the later position wins.
	GrantedPosition   uint64 `json:"grantedPosition,omitempty"`
	WithdrawnPosition uint64 `json:"withdrawnPosition,omitempty"`
}

// Touch is one contact between the customer and the business.
type Touch struct {
	At      time.Time `json:"at"`
	Type    string    `json:"type"`
	Channel string    `json:"channel"`
}

// Ticket is a support ticket.
type Ticket struct {
	ID       uuid.UUID             `json:"id"`
	Subject  string                `json:"subject,omitempty"`
	Priority domain.TicketPriority `json:"priority,omitempty"`
	Status   domain.TicketStatus   `json:"status"`
	Channel  domain.TicketChannel  `json:"channel,omitempty"`
	OpenedAt time.Time             `json:"openedAt,omitzero"`
	// Assignee is empty while the ticket is unassigned.
	Assignee string `json:"assignee,omitempty"`
}

// Open reports whether the ticket still needs work.
func (t Ticket) Open() bool {
	return t.Status != domain.StatusResolved && t.Status != domain.StatusClosed
}

// Opportunity is a potential sale.
type Opportunity struct {
	ID      uuid.UUID                 `json:"id"`
	Name    string                    `json:"name,omitempty"`
	Stage   domain.OpportunityStage   `json:"stage,omitempty"`
	Outcome domain.OpportunityOutcome `json:"outcome"`
	// Amount is in minor units of Currency.
	Amount        int64     `json:"amount"`
	Currency      string    `json:"currency,omitempty"`
	ExpectedClose string    `json:"expectedClose,omitempty"` // YYYY-MM-DD
	OpenedAt      time.Time `json:"openedAt,omitzero"`
}

// Order is a completed purchase and what was refunded of it, both in minor
// units of Currency.
type Order struct {
	ID          uuid.UUID `json:"id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Refunded    int64     `json:"refunded"`
	PurchasedAt time.Time `json:"purchasedAt"`
}

// NPS is a Net Promoter Score answer.
type NPS struct {
	Score    int       `json:"score"`
	Survey   string    `json:"survey"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
	Position uint64    `json:"position"`
}

// HistoryLen is how many loyalty movements the view keeps.
const HistoryLen = 20

// Loyalty is the customer's loyalty account, in points.
type Loyalty struct {
	// Balance is Earned − Redeemed − Expired − ClawedBack + Debt: never
	// negative, as in the aggregate (domain.PointsClawedBack).
	Balance  int64 `json:"balance"`
	Earned   int64 `json:"earned"`
	Redeemed int64 `json:"redeemed"`
	Expired  int64 `json:"expired"`
	// ClawedBack is what refunds took back in all; Debt the part of it the
	// balance could not cover (points already spent), which later earnings
	// pay off before they count in the balance.
	ClawedBack int64 `json:"clawedBack,omitempty"`
	Debt       int64 `json:"debt,omitempty"`
	// History holds the latest HistoryLen movements, oldest first, in log
	// order.
	History []Movement `json:"history,omitempty"`
	// Tier is computed at query time by SetTier, never stored.
	Tier *domain.TierStatus `json:"tier,omitempty"`
}

// Movement is one loyalty event: Type is its event type (PointsEarned,
// PointsRedeemed, PointsExpired or PointsClawedBack) and Points its
// (positive) points; the other fields are the event's own, when it has
// them. Debt is, for a claw-back, the part the balance could not cover.
type Movement struct {
	Type         string            `json:"type"`
	Points       int64             `json:"points"`
	At           time.Time         `json:"at"`
	Position     uint64            `json:"position"`
	EarningID    uuid.UUID         `json:"earningId,omitzero"`
	Reason       domain.EarnReason `json:"reason,omitempty"`
	OrderID      *uuid.UUID        `json:"orderId,omitempty"`
	Rule         string            `json:"rule,omitempty"`
	ExpiresAt    time.Time         `json:"expiresAt,omitzero"`
	RedemptionID uuid.UUID         `json:"redemptionId,omitzero"`
	Reward       string            `json:"reward,omitempty"`
	RefundID     uuid.UUID         `json:"refundId,omitzero"`
	Debt         int64             `json:"debt,omitempty"`
}

// SetTier computes the customer's tier at now with policy p from the
// view's orders (each net of its refunds, at its purchase time; see
// domain.TierPolicy) and stores it in v.Loyalty.Tier. v must come from
// Get, which fills the orders.
func (v *View) SetTier(p domain.TierPolicy, now time.Time) {
	orders := make([]domain.Spend, 0, len(v.Orders))
	for _, o := range v.Orders {
		orders = append(orders, domain.Spend{At: o.PurchasedAt, Amount: satAdd(o.Amount, negate(o.Refunded)), Currency: o.Currency})
	}
	st := p.TierAt(orders, now)
	v.Loyalty.Tier = &st
}

// loyaltyMovement folds one loyalty event into the account.
// Claw-backs and debt follow the aggregate's rule, in log order: a
// claw-back takes what the balance holds and leaves the rest as debt
// (domain.SplitClawback), an earning pays the debt first (domain.PayDebt).
func loyaltyMovement(l *Loyalty, m Movement) {
	switch m.Type {
	case domain.TypePointsEarned:
		l.Earned = satAdd(l.Earned, m.Points)
		l.Debt -= domain.PayDebt(m.Points, l.Debt)
	case domain.TypePointsRedeemed:
		l.Redeemed = satAdd(l.Redeemed, m.Points)
	case domain.TypePointsExpired:
		l.Expired = satAdd(l.Expired, m.Points)
	case domain.TypePointsClawedBack:
		m.Debt = domain.SplitClawback(m.Points, l.Balance).Debt
		l.ClawedBack = satAdd(l.ClawedBack, m.Points)
		l.Debt = satAdd(l.Debt, m.Debt)
	}
	l.Balance = satAdd(satAdd(satAdd(satAdd(l.Earned, negate(l.Redeemed)), negate(l.Expired)), negate(l.ClawedBack)), l.Debt)
	h := append(slices.Clip(l.History), m)
	if len(h) > HistoryLen {
		h = slices.Clone(h[len(h)-HistoryLen:])
	}
	l.History = h
}

// Erasure records the customer's erasure request.
type Erasure struct {
	At time.Time `json:"at"`
	// Request is the case reference of the request, not personal data.
	Request string `json:"request,omitempty"`
}

func prefix(id uuid.UUID) string           { return "c/" + id.String() + "/" }
func summaryKey(id uuid.UUID) string       { return prefix(id) + "a" }
func orderKey(c, id uuid.UUID) string      { return prefix(c) + "o/" + id.String() }
func opportunityKey(c, o uuid.UUID) string { return prefix(c) + "p/" + o.String() }
func ticketKey(c, t uuid.UUID) string      { return prefix(c) + "t/" + t.String() }

// projection implements projections.Projection.
type projection struct{}

// New returns the customer 360 projection.
func New() projections.Projection { return projection{} }

// Name implements projections.Projection.
func (projection) Name() string { return Name }

// Version implements projections.Projection.
func (projection) Version() int { return Version }

// Types implements projections.Projection: every type, since every event
// counts and moves StreamVersion.
func (projection) Types() []string { return nil }

// Apply implements projections.Projection.
func (projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	if domain.IsIdentityResolution(e.Type) {
		// Merges are resolved when a view is read (projections/merges), so
		// that an unmerge leaves this read model exactly as before.
		return nil
	}
	cid, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("customer360: event %s: %w", e.ID, err)
	}
	v, err := projections.Load[View](tx, summaryKey(cid))
	if err != nil {
		return err
	}
	v.CustomerID = cid
	v.Events++
	v.StreamVersion, v.Position = e.Version, e.Position
	at := e.Metadata.OccurredAt
	erased := v.Erasure != nil
	// pii keeps personal data out of the view once the customer is erased.
	pii := func(s string) string {
		if erased {
			return ""
		}
		return s
	}

	if IsTouch(e.Type) {
		touch(v, Touch{At: at, Type: e.Type, Channel: TouchChannel(e)})
	}

	switch ev := e.Event.(type) {
	case domain.CustomerRegistered:
		v.Registered, v.RegisteredAt = true, at
		v.Profile = Profile{Name: pii(ev.Name), Locale: pii(ev.Locale), Country: pii(ev.Country), Company: pii(ev.Company), Address: pii(ev.Address)}
	case domain.ProfileUpdated:
		if erased {
			break
		}
		set := func(dst *string, src *string) {
			if src != nil {
				*dst = *src
			}
		}
		set(&v.Profile.Name, ev.Name)
		set(&v.Profile.Locale, ev.Locale)
		set(&v.Profile.Country, ev.Country)
		set(&v.Profile.Company, ev.Company)
		set(&v.Profile.Address, ev.Address)
	case domain.IdentifierLinked:
		value, err := ev.Value, error(nil)
		if !domain.IsSealed(value) {
			value, err = domain.NormalizeIdentifier(ev.Kind, ev.Value)
		}
		if erased || err != nil {
			break // an unkeyable legacy value is left out, as in the identity index
		}
		if !slices.ContainsFunc(v.Identifiers, func(i Identifier) bool { return i.Kind == ev.Kind && i.Value == value }) {
			v.Identifiers = append(slices.Clip(v.Identifiers), Identifier{Kind: ev.Kind, Value: value, LinkedAt: at})
		}
	case domain.ConsentGranted:
		c := consent(v, ev.Channel, ev.Purpose)
		if c.GrantedPosition == 0 || !at.Before(c.GrantedAt) {
			c.GrantedAt, c.GrantedPosition = at, e.Position
			c.Source, c.Wording = ev.Source, ev.Wording
		}
		c.Status = consentStatus(c)
	case domain.ConsentWithdrawn:
		c := consent(v, ev.Channel, ev.Purpose)
		if c.WithdrawnPosition == 0 || !at.Before(c.WithdrawnAt) {
			c.WithdrawnAt, c.WithdrawnPosition = at, e.Position
			c.Reason = pii(ev.Reason)
		}
		c.Status = consentStatus(c)
	case domain.CustomerForgotten:
		return forget(tx, v, cid, ev, at)

	case domain.PurchaseCompleted:
		o, err := projections.Load[Order](tx, orderKey(cid, ev.OrderID))
		if err != nil {
			return err
		}
		if o.ID != uuid.Nil { // a reused order id (legacy): replace, do not count twice
			v.Spend = addMoney(v.Spend, o.Currency, negate(o.Amount))
		}
		o.ID, o.Amount, o.Currency, o.PurchasedAt = ev.OrderID, ev.Amount, ev.Currency, at
		v.Spend = addMoney(v.Spend, ev.Currency, ev.Amount)
	case domain.RefundIssued:
		// The refund counts in its own currency even when the order is
		// unknown or in another currency (legacy history): money went back.
		v.Refunds = addMoney(v.Refunds, ev.Currency, ev.Amount)
		o, ok, err := projections.Get[Order](tx, orderKey(cid, ev.OrderID))
		if err != nil {
			return err
		}
		if ok && o.Currency == ev.Currency {
			o.Refunded = satAdd(o.Refunded, ev.Amount)
			if err := projections.Put(tx, orderKey(cid, ev.OrderID), o); err != nil {
				return err
			}
		}

	case domain.TicketOpened:
		t, err := loadTicket(tx, v, cid, ev.TicketID)
		if err != nil {
			return err
		}
		t.Subject, t.Priority, t.Channel, t.OpenedAt = pii(ev.Subject), ev.Priority, ev.Channel, at
		t.Status = domain.StatusOpen
	case domain.TicketUpdated:
		t, err := loadTicket(tx, v, cid, ev.TicketID)
		if err != nil {
			return err
		}
		if ev.Status != nil {
			t.Status = *ev.Status
		}
		if ev.Priority != nil {
			t.Priority = *ev.Priority
		}
		if ev.Assignee != nil {
			t.Assignee = *ev.Assignee // an agent, not the customer's data
		}
	case domain.TicketResolved:
		return setTicketStatus(tx, v, cid, ev.TicketID, domain.StatusResolved)
	case domain.TicketReopened:
		return setTicketStatus(tx, v, cid, ev.TicketID, domain.StatusOpen)
	case domain.TicketClosed:
		return setTicketStatus(tx, v, cid, ev.TicketID, domain.StatusClosed)

	case domain.OpportunityOpened:
		o, err := loadOpportunity(tx, v, cid, ev.OpportunityID)
		if err != nil {
			return err
		}
		o.Name, o.Stage, o.Amount, o.Currency = pii(ev.Name), ev.Stage, ev.Amount, ev.Currency
		o.ExpectedClose, o.OpenedAt = ev.ExpectedClose, at
	case domain.OpportunityStageChanged:
		o, err := loadOpportunity(tx, v, cid, ev.OpportunityID)
		if err != nil {
			return err
		}
		o.Stage = ev.Stage
	case domain.OpportunityWon:
		o, err := loadOpportunity(tx, v, cid, ev.OpportunityID)
		if err != nil {
			return err
		}
		o.Outcome = domain.OutcomeWon
	case domain.OpportunityLost:
		o, err := loadOpportunity(tx, v, cid, ev.OpportunityID)
		if err != nil {
			return err
		}
		o.Outcome = domain.OutcomeLost

	case domain.PointsEarned:
		loyaltyMovement(&v.Loyalty, Movement{Type: domain.TypePointsEarned, Points: ev.Points, At: at, Position: e.Position,
			EarningID: ev.EarningID, Reason: ev.Reason, OrderID: ev.OrderID, Rule: ev.Rule, ExpiresAt: ev.ExpiresAt})
	case domain.PointsRedeemed:
		loyaltyMovement(&v.Loyalty, Movement{Type: domain.TypePointsRedeemed, Points: ev.Points, At: at, Position: e.Position,
			RedemptionID: ev.RedemptionID, Reward: ev.Reward})
	case domain.PointsExpired:
		loyaltyMovement(&v.Loyalty, Movement{Type: domain.TypePointsExpired, Points: ev.Points, At: at, Position: e.Position, EarningID: ev.EarningID})
	case domain.PointsClawedBack:
		loyaltyMovement(&v.Loyalty, Movement{Type: domain.TypePointsClawedBack, Points: ev.Points, At: at, Position: e.Position,
			EarningID: ev.EarningID, OrderID: &ev.OrderID, RefundID: ev.RefundID})

	case domain.SurveyAnswered:
		if ev.NPS != nil && (v.LatestNPS == nil || !at.Before(v.LatestNPS.At)) {
			v.LatestNPS = &NPS{Score: *ev.NPS, Survey: ev.Survey, Comment: pii(ev.Comment), At: at, Position: e.Position}
		}
	}
	return nil
}

// touchTypes are the events that record a contact between the customer and
// the business, in either direction. Profile changes, consents, notes and
// back-office work on tickets and opportunities are not touches.
var touchTypes = map[string]bool{
	domain.TypeCallLogged: true, domain.TypeEmailSent: true, domain.TypeEmailReceived: true,
	domain.TypeEmailOpened: true, domain.TypeEmailClicked: true, domain.TypeChatConversationHeld: true,
	domain.TypeMeetingHeld: true, domain.TypeSMSSent: true, domain.TypeCampaignTouched: true,
	domain.TypeLeadCaptured: true, domain.TypePurchaseCompleted: true, domain.TypeTicketOpened: true,
	domain.TypeSurveyAnswered: true,
}

// IsTouch reports whether events of type typ count as touches: calls,
// e-mails (sent, received, opened, clicked), chats, meetings, SMS,
// campaign touches, captured leads, purchases, opened tickets and survey
// answers.
func IsTouch(typ string) bool { return touchTypes[typ] }

// TouchChannel names the medium of an event. Where the payload fixes it,
// it wins over the metadata's channel (which often names a source system
// such as "zendesk"): a call is "phone", e-mail events "email", an SMS
// "sms", a campaign touch or a ticket its own channel. Other events use
// the metadata's channel, then "chat" or "meeting" for those, else
// "unknown".
func TouchChannel(e domain.Envelope) string { return domain.Medium(e.Event, e.Metadata.Channel) }

func touch(v *View, t Touch) {
	if v.FirstTouch == nil || t.At.Before(v.FirstTouch.At) {
		first := t
		v.FirstTouch = &first
	}
	if v.LastTouch == nil || !t.At.Before(v.LastTouch.At) {
		last := t
		v.LastTouch = &last
	}
	if v.Touches == nil {
		v.Touches = map[string]int64{}
	}
	v.Touches[t.Channel]++
}

// consent returns the consent of channel and purpose, adding it in sorted
// place when it is new.
func consent(v *View, ch domain.ConsentChannel, p domain.ConsentPurpose) *Consent {
	cmp := func(c Consent, _ struct{}) int {
		if n := strings.Compare(string(c.Channel), string(ch)); n != 0 {
			return n
		}
		return strings.Compare(string(c.Purpose), string(p))
	}
	i, found := slices.BinarySearchFunc(v.Consents, struct{}{}, cmp)
	if !found {
		v.Consents = slices.Insert(slices.Clip(v.Consents), i, Consent{Channel: ch, Purpose: p})
	}
	return &v.Consents[i]
}

// consentStatus decides between the latest grant and the latest
// withdrawal: the later in the world wins, then the later in the log.
func consentStatus(c *Consent) ConsentStatus {
	switch {
	case c.GrantedPosition == 0:
		return ConsentWithdrawn
	case c.WithdrawnPosition == 0:
		return ConsentGranted
	case c.GrantedAt.After(c.WithdrawnAt):
		return ConsentGranted
	case c.GrantedAt.Equal(c.WithdrawnAt) && c.GrantedPosition > c.WithdrawnPosition:
		return ConsentGranted
	}
	return ConsentWithdrawn
}

// loadTicket loads a ticket, creating it (and counting it) when it is new:
// an update of an unknown ticket in legacy history creates it, as the
// aggregate does.
func loadTicket(tx *projections.Tx, v *View, cid, id uuid.UUID) (*Ticket, error) {
	t, err := projections.Load[Ticket](tx, ticketKey(cid, id))
	if err != nil {
		return nil, err
	}
	if t.ID == uuid.Nil {
		t.ID, t.Status = id, domain.StatusOpen
		v.TicketCount++
	}
	return t, nil
}

func setTicketStatus(tx *projections.Tx, v *View, cid, id uuid.UUID, s domain.TicketStatus) error {
	t, err := loadTicket(tx, v, cid, id)
	if err != nil {
		return err
	}
	t.Status = s
	return nil
}

func loadOpportunity(tx *projections.Tx, v *View, cid, id uuid.UUID) (*Opportunity, error) {
	o, err := projections.Load[Opportunity](tx, opportunityKey(cid, id))
	if err != nil {
		return nil, err
	}
	if o.ID == uuid.Nil {
		o.ID, o.Outcome = id, domain.OutcomeOpen
		v.OpportunityCount++
	}
	return o, nil
}

// forget blanks every personal field of the view and its tickets and
// opportunities, and records the erasure. Orders hold no personal data.
func forget(tx *projections.Tx, v *View, cid uuid.UUID, ev domain.CustomerForgotten, at time.Time) error {
	if v.Erasure == nil {
		v.Erasure = &Erasure{At: at, Request: ev.Request}
	}
	v.Profile = Profile{}
	v.Identifiers = nil
	for i := range v.Consents {
		v.Consents[i].Reason = ""
	}
	if v.LatestNPS != nil {
		v.LatestNPS.Comment = ""
	}
	var tickets, opportunities []string
	err := tx.Scan(prefix(cid), "", func(key string, _ []byte) (bool, error) {
		switch {
		case strings.HasPrefix(key, prefix(cid)+"t/"):
			tickets = append(tickets, key)
		case strings.HasPrefix(key, prefix(cid)+"p/"):
			opportunities = append(opportunities, key)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, k := range tickets {
		t, err := projections.Load[Ticket](tx, k)
		if err != nil {
			return err
		}
		t.Subject = ""
	}
	for _, k := range opportunities {
		o, err := projections.Load[Opportunity](tx, k)
		if err != nil {
			return err
		}
		o.Name = ""
	}
	return nil
}

// satAdd adds without overflowing: totals saturate at the int64 limits,
// far beyond any real figure (amounts are bounded by domain.MaxAmount).
func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

func negate(a int64) int64 {
	if a == math.MinInt64 {
		return math.MaxInt64
	}
	return -a
}

// addMoney adds amount to the total of currency in m, allocating m when
// needed. The map is copied first: it may be shared with a copy handed out
// by projections.Get.
func addMoney(m map[string]int64, currency string, amount int64) map[string]int64 {
	out := make(map[string]int64, len(m)+1)
	for k, n := range m {
		out[k] = n
	}
	out[currency] = satAdd(out[currency], amount)
	return out
}

// Get returns the view of a customer, or projections.ErrNotFound when no
// event of the customer was folded. Segment and ChurnRisk are left empty
// (see View).
func Get(ctx context.Context, r projections.Reader, customerID uuid.UUID) (View, error) {
	var v View
	found := false
	p := prefix(customerID)
	err := r.Scan(ctx, p, "", func(key string, value []byte) (bool, error) {
		var err error
		switch {
		case key == summaryKey(customerID):
			found = true
			err = json.Unmarshal(value, &v)
		case strings.HasPrefix(key, p+"t/"):
			var t Ticket
			if err = json.Unmarshal(value, &t); err == nil && t.Open() {
				v.OpenTickets = append(v.OpenTickets, t)
			}
		case strings.HasPrefix(key, p+"p/"):
			var o Opportunity
			if err = json.Unmarshal(value, &o); err == nil && o.Outcome == domain.OutcomeOpen {
				v.OpenOpportunities = append(v.OpenOpportunities, o)
			}
		case strings.HasPrefix(key, p+"o/"):
			var o Order
			if err = json.Unmarshal(value, &o); err == nil {
				v.Orders = append(v.Orders, o)
			}
		}
		if err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		return true, nil
	})
	if err != nil {
		return View{}, fmt.Errorf("customer360: get %s: %w", customerID, err)
	}
	if !found {
		return View{}, fmt.Errorf("customer360: customer %s: %w", customerID, projections.ErrNotFound)
	}
	// Keys are in id order; present the lists in time order.
	slices.SortFunc(v.OpenTickets, func(a, b Ticket) int { return byTimeThenID(a.OpenedAt, b.OpenedAt, a.ID, b.ID) })
	slices.SortFunc(v.OpenOpportunities, func(a, b Opportunity) int { return byTimeThenID(a.OpenedAt, b.OpenedAt, a.ID, b.ID) })
	slices.SortFunc(v.Orders, func(a, b Order) int { return byTimeThenID(a.PurchasedAt, b.PurchasedAt, a.ID, b.ID) })
	for cur, n := range v.Spend {
		v.LifetimeValue = addMoney(v.LifetimeValue, cur, n)
	}
	for cur, n := range v.Refunds {
		v.LifetimeValue = addMoney(v.LifetimeValue, cur, negate(n))
	}
	return v, nil
}

func byTimeThenID(ta, tb time.Time, a, b uuid.UUID) int {
	if n := ta.Compare(tb); n != 0 {
		return n
	}
	return strings.Compare(a.String(), b.String())
}
