package domain

import "strings"

// Personal data at rest.
//
// The fields PersonalFields lists hold personal data: names, identifier
// values, addresses, birthdays, e-mail and SMS parties and contents, and every free
// text an agent or the customer wrote (summaries, notes, descriptions,
// comments, reasons, details, resolutions). The write path seals them
// before anything is stored — each non-empty string value is replaced by
// a token that only the customer's data key opens — so that destroying the
// key erases them everywhere at once (crypto-shredding), while the
// non-personal rest of every event (ids, amounts, currencies, statuses,
// times, enums) stays readable for aggregates, projections and audits.
//
// The domain only declares which fields are personal and what a sealed
// value looks like; it does no cryptography. Decode reads a sealed value
// as the string it is, so history folds the same whether it is sealed or
// not.

// SealedPrefix starts every sealed value (a token): "enc:v1:" followed by
// the customer's canonical uuid, ":" and the base64url ciphertext. A token
// is made only of ASCII letters, digits, '-', '_' and ':', so it appears
// verbatim inside JSON strings and never needs escaping.
const SealedPrefix = "enc:v1:"

// IsSealed reports whether s is a sealed value, judging by its prefix
// only: projections use it to keep a token whole (never clip it, never
// normalise it) and leave opening it to the edges that hold the keys.
func IsSealed(s string) bool { return strings.HasPrefix(s, SealedPrefix) }

// personalFields lists, per event type, the JSON paths of its personal
// fields: "name" is a top-level string field, "attendees[]" every string
// element of a top-level array. Types without personal data are absent.
var personalFields = map[string][]string{
	TypeCustomerRegistered: {"name", "company", "address", "birthday"},
	TypeProfileUpdated:     {"name", "company", "address", "birthday"},
	TypeIdentifierLinked:   {"value"},
	TypeConsentWithdrawn:   {"reason"},
	TypeCustomerForgotten:  {"reason"},
	TypeCustomerMerged:     {"reason"},
	TypeCustomerUnmerged:   {"reason"},

	TypeCallLogged:           {"summary"},
	TypeEmailSent:            {"subject", "from", "to"},
	TypeEmailReceived:        {"subject", "from", "to"},
	TypeEmailClicked:         {"url"},
	TypeChatConversationHeld: {"summary"},
	TypeMeetingHeld:          {"title", "location", "attendees[]", "notes"},
	TypeSMSSent:              {"to", "body"},
	TypeNoteAdded:            {"body"},

	TypeRefundIssued: {"reason"},

	TypeTicketOpened:   {"subject", "description"},
	TypeTicketUpdated:  {"comment"},
	TypeTicketResolved: {"resolution"},
	TypeTicketReopened: {"reason"},
	TypeTicketClosed:   {"reason"},

	TypeLeadCaptured:      {"interest"},
	TypeOpportunityOpened: {"name"},
	TypeOpportunityWon:    {"comment"},
	TypeOpportunityLost:   {"detail"},

	TypeSurveyAnswered: {"comment"},
}

// withoutPersonalData lists the event types that hold no personal data,
// each a decision as deliberate as a personal field: a new event type must
// be added to one list or the other (a test checks it).
var withoutPersonalData = map[string]bool{
	TypeConsentGranted:          true, // source and wording name a form and a text version
	TypeEmailOpened:             true,
	TypePurchaseCompleted:       true, // order lines describe products
	TypeOpportunityStageChanged: true,
	TypeCampaignTouched:         true,
	// Loyalty: points, ids, enums, times, a rule name and a catalogue
	// reward name; no free text about the customer.
	TypePointsEarned:     true,
	TypePointsRedeemed:   true,
	TypePointsExpired:    true,
	TypePointsClawedBack: true,
	// Automation: a ticket id, a priority and a breach the rule wrote
	// ("no first response within 4h"); a message names a template, never
	// the address or the text it is sent with; a discount is a code, a
	// percentage, a date and a short reason a rule or agent names
	// ("birthday") — the birthday itself stays in the sealed profile.
	TypeTicketEscalated: true,
	TypeMessageQueued:   true,
	TypeDiscountIssued:  true,
	// Delivery: a message id, enums, a count and a detail the worker
	// writes from status codes only, never a receiver's text.
	TypeMessageDelivered: true,
	TypeMessageFailed:    true,
}

// PersonalFields returns the JSON paths of the personal fields of an event
// type, in the current schema: "field" names a top-level string field and
// "field[]" every string element of a top-level array of strings. It
// returns nil for a type without personal data, or an unknown one. The
// result is a copy the caller may keep.
//
// What is not listed stays readable after an erasure: ids, amounts,
// currencies, enums and times, agents and actors (employees, not the
// customer), consent sources and wordings (form and text versions),
// campaign and survey names, message ids, order lines (products) and the
// CustomerForgotten request reference (a case number).
func PersonalFields(eventType string) []string {
	f := personalFields[eventType]
	if f == nil {
		return nil
	}
	return append([]string(nil), f...)
}
