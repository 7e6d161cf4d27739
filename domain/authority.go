package domain

import (
	"slices"
	"strings"
)

// Role is who writes to the ledger: one of the API's token roles, or
// RoleSystem, the ledger itself. Every write path (the HTTP API, broker
// ingest, import, the CLI, the reactors) appends as one Role, and the
// authority table (MayAppend) says which event types each may append.
type Role string

// Roles. The first four are the roles of API tokens (adapters/httpapi);
// RoleSystem has no token and is never given to a client.
const (
	// RoleService: systems that record touchpoints (a shop, a contact
	// centre, a CRM), through the API, the broker or an import.
	RoleService Role = "service"
	// RoleAnalyst reads read models only; it writes nothing.
	RoleAnalyst Role = "analyst"
	// RoleAuditor verifies; it writes nothing.
	RoleAuditor Role = "auditor"
	// RoleAdmin: an operator, who may also record what only a person
	// answerable for it should assert (a goodwill grant of points).
	RoleAdmin Role = "admin"
	// RoleSystem: the ledger itself — the reactors (loyalty, engagement,
	// declarative rules) and the erasure (Service.Forget, behind the admin
	// route /forget and `cxledger forget`), which do what their events
	// record: destroy a key, expire points, queue a message.
	RoleSystem Role = "system"
)

// AllRoles lists every role, RoleSystem last.
var AllRoles = []Role{RoleService, RoleAnalyst, RoleAuditor, RoleAdmin, RoleSystem}

// Authority is one row of the authority table: who may append an event
// type, and why.
type Authority struct {
	// Writers are the roles that may append the type, in AllRoles order.
	// RoleSystem is one of them on every row: the declarative rules emit
	// any type but CustomerRegistered and CustomerForgotten, and what they
	// emit is still decided against the customer's history.
	Writers []Role
	// Why explains the row in a sentence, for the README, the OpenAPI
	// document and the 403 a refused writer gets.
	Why string
}

// SystemOnly reports whether no client role may append the type.
func (a Authority) SystemOnly() bool {
	return len(a.Writers) == 1 && a.Writers[0] == RoleSystem
}

// Rows of the table, by kind of fact.
var (
	// touchpoint: what happened between the customer and the business,
	// recorded by the systems where it happened (service) or by an
	// operator correcting or back-filling history (admin).
	touchpoint = Authority{Writers: []Role{RoleService, RoleAdmin, RoleSystem}, Why: "a fact recorded where it happened (a service), or back-filled by an admin"}
	// erasure: appending CustomerForgotten is half of an erasure; the
	// other half destroys the customer's key, and a CustomerForgotten
	// found in the log makes `cxledger serve` finish that half. Only the
	// erasure itself (admin POST /v1/customers/{id}/forget, `cxledger
	// forget`) may append it, so that no generic append can erase anyone.
	erasure = Authority{Writers: []Role{RoleSystem}, Why: "only the erasure writes it: POST /v1/customers/{id}/forget (admin) or cxledger forget"}
	// earning: points are money's worth. The loyalty reactor earns them by
	// the program's rules; an admin may grant them by hand (goodwill); a
	// service may not mint them.
	earning = Authority{Writers: []Role{RoleAdmin, RoleSystem}, Why: "points are earned by the loyalty program's rules, or granted by an admin"}
	// redemption: the checkout spends points; the aggregate refuses more
	// than the balance.
	redemption = Authority{Writers: []Role{RoleService, RoleAdmin, RoleSystem}, Why: "points are spent at the checkout, within the balance"}
	// resolution: merging two customer records (and undoing it) is
	// decided by a service's matching or by an operator, each with a
	// reason; what it changes is resolved at read time and undone exactly
	// by an unmerge.
	resolution = Authority{Writers: []Role{RoleService, RoleAdmin, RoleSystem}, Why: "a merge of two customer records, or its undoing, decided by a service's matching or an admin, with a reason (POST /v1/customers/{id}/merge, /unmerge)"}
	// automation: what the ledger's own reactors decided (expiry, SLA
	// escalation, messages, discounts); asserting it from outside would
	// forge the automation's record.
	automation = Authority{Writers: []Role{RoleSystem}, Why: "only the ledger's reactors decide it"}
	// delivery: what became of a queued message is what the delivery
	// worker saw (adapters/delivery); asserting it from outside would
	// forge the record of what reached the customer.
	delivery = Authority{Writers: []Role{RoleSystem}, Why: "only the delivery worker records what became of a queued message"}
)

// TypeAccessRecorded is the access log's record of a read of personal
// data (adapters/access). It is not a customer event — no codec, never in
// a customer's stream — but it is in the log, so the table names who may
// write it: the access log alone.
const TypeAccessRecorded = "AccessRecorded"

// logTypes are the types of the log that are not customer events, each with
// a row in the table.
var logTypes = []string{TypeAccessRecorded}

// authority is the table: every event type the codec knows has a row
// (a test enumerates Types()), and so does each of logTypes. No write path
// can append a log type (they have no codec; the access log writes its own
// "access-" streams); their rows make a client that tries get a 403 naming
// who writes them, like any system-only type.
var authority = map[string]Authority{
	TypeAccessRecorded: {Writers: []Role{RoleSystem}, Why: "only the access log records who read what (in access-<id> streams, never a customer's)"},

	TypeCustomerRegistered: touchpoint,
	TypeProfileUpdated:     touchpoint,
	TypeIdentifierLinked:   touchpoint,
	TypeConsentGranted:     touchpoint,
	TypeConsentWithdrawn:   touchpoint,
	TypeCustomerForgotten:  erasure,
	TypeCustomerMerged:     resolution,
	TypeCustomerUnmerged:   resolution,

	TypeCallLogged:           touchpoint,
	TypeEmailSent:            touchpoint,
	TypeEmailReceived:        touchpoint,
	TypeEmailOpened:          touchpoint,
	TypeEmailClicked:         touchpoint,
	TypeChatConversationHeld: touchpoint,
	TypeMeetingHeld:          touchpoint,
	TypeSMSSent:              touchpoint,
	TypeNoteAdded:            touchpoint,

	TypePurchaseCompleted: touchpoint,
	TypeRefundIssued:      touchpoint,

	TypeTicketOpened:   touchpoint,
	TypeTicketUpdated:  touchpoint,
	TypeTicketResolved: touchpoint,
	TypeTicketReopened: touchpoint,
	TypeTicketClosed:   touchpoint,

	TypeLeadCaptured:            touchpoint,
	TypeOpportunityOpened:       touchpoint,
	TypeOpportunityStageChanged: touchpoint,
	TypeOpportunityWon:          touchpoint,
	TypeOpportunityLost:         touchpoint,

	TypePointsEarned:     earning,
	TypePointsRedeemed:   redemption,
	TypePointsExpired:    automation,
	TypePointsClawedBack: automation,

	TypeCampaignTouched: touchpoint,
	TypeSurveyAnswered:  touchpoint,

	TypeTicketEscalated: automation,
	TypeMessageQueued:   automation,
	TypeDiscountIssued:  automation,

	TypeMessageDelivered: delivery,
	TypeMessageFailed:    delivery,
}

// AuthorityOf returns the row of an event type; an unknown type fails with
// an *UnknownTypeError.
func AuthorityOf(typ string) (Authority, error) {
	a, ok := authority[typ]
	if !ok {
		return Authority{}, &UnknownTypeError{Type: typ}
	}
	return Authority{Writers: slices.Clone(a.Writers), Why: a.Why}, nil
}

// MayAppend returns nil when role may append events of type typ, an
// *UnknownTypeError for a type without a row, and otherwise a
// *ForbiddenError (errors.Is(err, ErrForbidden)) naming the type, the
// role and the roles that may.
func MayAppend(role Role, typ string) error {
	a, ok := authority[typ]
	if !ok {
		return &UnknownTypeError{Type: typ}
	}
	if slices.Contains(a.Writers, role) {
		return nil
	}
	return &ForbiddenError{Type: typ, Role: role, Allowed: slices.Clone(a.Writers), Why: a.Why}
}

// ForbiddenError says that a role may not append an event type.
type ForbiddenError struct {
	Type    string
	Role    Role
	Allowed []Role // who may, in AllRoles order
	Why     string
}

// Error reads "forbidden: role service may not append CustomerForgotten;
// system only (…)".
func (e *ForbiddenError) Error() string {
	msg := "forbidden: role " + string(e.Role) + " may not append " + e.Type + "; " + WritersText(e.Allowed)
	if e.Why != "" {
		msg += " (" + e.Why + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// WritersText renders writers as the README's table does: "system only",
// or "may be appended by service, admin, system".
func WritersText(writers []Role) string {
	if len(writers) == 1 && writers[0] == RoleSystem {
		return "system only"
	}
	names := make([]string, len(writers))
	for i, w := range writers {
		names[i] = string(w)
	}
	return "may be appended by " + strings.Join(names, ", ")
}

// AuthorityTable renders the table as Markdown rows, one per type in
// Types() order: "| `Type` | writers | why |". The README and the OpenAPI
// document embed it, and tests check they hold exactly this.
func AuthorityTable() string {
	var b strings.Builder
	b.WriteString("| Event type | Who may append it | Why |\n|---|---|---|\n")
	for _, typ := range append(Types(), logTypes...) {
		a := authority[typ]
		who := "system only"
		if !a.SystemOnly() {
			names := make([]string, len(a.Writers))
			for i, w := range a.Writers {
				names[i] = string(w)
			}
			who = strings.Join(names, ", ")
		}
		b.WriteString("| `" + typ + "` | " + who + " | " + a.Why + " |\n")
	}
	return b.String()
}
