package domain

import (
	"strconv"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

// Profile and identity event type names.
const (
	TypeCustomerRegistered = "CustomerRegistered"
	TypeProfileUpdated     = "ProfileUpdated"
	TypeIdentifierLinked   = "IdentifierLinked"
	TypeConsentGranted     = "ConsentGranted"
	TypeConsentWithdrawn   = "ConsentWithdrawn"
	TypeCustomerForgotten  = "CustomerForgotten"
)

// CustomerRegistered starts every customer stream, exactly once.
type CustomerRegistered struct {
	// CustomerID repeats the stream's id so that the first event is
	// self-describing in exports.
	CustomerID uuid.UUID `json:"customerId"`
	Name       string    `json:"name"`
	// Locale is a BCP 47 language tag ("fr-FR"), Country an ISO 3166-1
	// alpha-2 region ("FR"); both optional.
	Locale  string `json:"locale,omitempty"`
	Country string `json:"country,omitempty"`
	Company string `json:"company,omitempty"`
	// Address is the postal address as free text (several lines allowed);
	// optional. It is personal data (see PersonalFields).
	Address string `json:"address,omitempty"`
	// Birthday is the customer's date of birth, "YYYY-MM-DD", or
	// "--MM-DD" when the year is unknown (see ParseBirthday); optional. It
	// is personal data (see PersonalFields).
	Birthday string `json:"birthday,omitempty"`
}

// EventType implements Event.
func (CustomerRegistered) EventType() string { return TypeCustomerRegistered }

// Validate implements Event.
func (e CustomerRegistered) Validate() error {
	var v validator
	v.id("customerId", e.CustomerID)
	v.line("name", e.Name, true, maxName)
	v.locale("locale", e.Locale)
	v.country("country", e.Country)
	v.line("company", e.Company, false, maxName)
	v.text("address", e.Address, false, maxAddress)
	v.birthday("birthday", e.Birthday)
	return v.err()
}

// maxAddress bounds a postal address written as free text.
const maxAddress = 500

// ProfileUpdated changes profile fields. A nil field is unchanged; a field
// set to "" is cleared (except name, which is required).
type ProfileUpdated struct {
	Name    *string `json:"name,omitempty"`
	Locale  *string `json:"locale,omitempty"`
	Country *string `json:"country,omitempty"`
	Company *string `json:"company,omitempty"`
	Address *string `json:"address,omitempty"`
	// Birthday is "YYYY-MM-DD" or "--MM-DD" (see ParseBirthday).
	Birthday *string `json:"birthday,omitempty"`
}

// EventType implements Event.
func (ProfileUpdated) EventType() string { return TypeProfileUpdated }

// Validate implements Event.
func (e ProfileUpdated) Validate() error {
	var v validator
	if e.Name == nil && e.Locale == nil && e.Country == nil && e.Company == nil && e.Address == nil && e.Birthday == nil {
		v.add("", "at least one of name, locale, country, company, address, birthday is required")
	}
	if e.Name != nil {
		v.line("name", *e.Name, true, maxName)
	}
	if e.Locale != nil {
		v.locale("locale", *e.Locale)
	}
	if e.Country != nil {
		v.country("country", *e.Country)
	}
	if e.Company != nil {
		v.line("company", *e.Company, false, maxName)
	}
	if e.Address != nil {
		v.text("address", *e.Address, false, maxAddress)
	}
	if e.Birthday != nil {
		v.birthday("birthday", *e.Birthday)
	}
	return v.err()
}

// IdentifierLinked attaches an e-mail address, phone number or external
// system id to the customer; the identity index resolves it back. Value is
// stored as entered; the index keys it by NormalizeIdentifier.
type IdentifierLinked struct {
	Kind  IdentifierKind `json:"kind"`
	Value string         `json:"value"`
}

// EventType implements Event.
func (IdentifierLinked) EventType() string { return TypeIdentifierLinked }

// Validate implements Event.
func (e IdentifierLinked) Validate() error {
	var v validator
	enum(&v, "kind", e.Kind, true, identifierKinds)
	v.line("value", e.Value, true, 320)
	if isOneOf(e.Kind, identifierKinds) && len(v.errs) == 0 {
		if _, err := NormalizeIdentifier(e.Kind, e.Value); err != nil {
			v.addErr("value", err)
		}
	}
	return v.err()
}

// ConsentChannel is how the customer may be contacted.
type ConsentChannel string

// Consent channels.
const (
	ConsentEmail    ConsentChannel = "email"
	ConsentSMS      ConsentChannel = "sms"
	ConsentPhone    ConsentChannel = "phone"
	ConsentPost     ConsentChannel = "post"
	ConsentPush     ConsentChannel = "push"
	ConsentWhatsApp ConsentChannel = "whatsapp"
)

var consentChannels = []ConsentChannel{ConsentEmail, ConsentSMS, ConsentPhone, ConsentPost, ConsentPush, ConsentWhatsApp}

// ConsentPurpose is what the customer's data may be used for; consent is
// recorded per channel and purpose (GDPR wants it granular).
type ConsentPurpose string

// Consent purposes.
const (
	PurposeMarketing   ConsentPurpose = "marketing"
	PurposeService     ConsentPurpose = "service"
	PurposeAnalytics   ConsentPurpose = "analytics"
	PurposeProfiling   ConsentPurpose = "profiling"
	PurposeThirdParty  ConsentPurpose = "third_party"
	PurposeSurveys     ConsentPurpose = "surveys"
	PurposeNewsletters ConsentPurpose = "newsletters"
)

var consentPurposes = []ConsentPurpose{PurposeMarketing, PurposeService, PurposeAnalytics, PurposeProfiling, PurposeThirdParty, PurposeSurveys, PurposeNewsletters}

// ConsentGranted records an opt-in for one channel and purpose. Source says
// where it was collected ("checkout-form"), Wording which text version the
// customer agreed to, so the grant can be proven later.
type ConsentGranted struct {
	Channel ConsentChannel `json:"channel"`
	Purpose ConsentPurpose `json:"purpose"`
	Source  string         `json:"source,omitempty"`
	Wording string         `json:"wording,omitempty"`
}

// EventType implements Event.
func (ConsentGranted) EventType() string { return TypeConsentGranted }

// Validate implements Event.
func (e ConsentGranted) Validate() error {
	var v validator
	enum(&v, "channel", e.Channel, true, consentChannels)
	enum(&v, "purpose", e.Purpose, true, consentPurposes)
	v.line("source", e.Source, false, maxName)
	v.line("wording", e.Wording, false, maxName)
	return v.err()
}

// ConsentWithdrawn records an opt-out for one channel and purpose. It is
// valid without a prior grant: an opt-out is always honoured.
type ConsentWithdrawn struct {
	Channel ConsentChannel `json:"channel"`
	Purpose ConsentPurpose `json:"purpose"`
	Reason  string         `json:"reason,omitempty"`
}

// EventType implements Event.
func (ConsentWithdrawn) EventType() string { return TypeConsentWithdrawn }

// Validate implements Event.
func (e ConsentWithdrawn) Validate() error {
	var v validator
	enum(&v, "channel", e.Channel, true, consentChannels)
	enum(&v, "purpose", e.Purpose, true, consentPurposes)
	v.text("reason", e.Reason, false, maxText)
	return v.err()
}

// CustomerForgotten marks an erasure request (GDPR art. 17). Nothing may be
// appended after it; the eraser then removes personal data downstream.
// Request is the ticket or case reference of the request.
type CustomerForgotten struct {
	Request string `json:"request,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// EventType implements Event.
func (CustomerForgotten) EventType() string { return TypeCustomerForgotten }

// Validate implements Event.
func (e CustomerForgotten) Validate() error {
	var v validator
	v.line("request", e.Request, false, maxName)
	v.text("reason", e.Reason, false, maxText)
	return v.err()
}

func (v *validator) locale(field, s string) {
	if s == "" {
		return
	}
	v.line(field, s, true, 35)
	if tag, err := language.Parse(s); err != nil || tag.String() != s {
		v.add(field, `must be a canonical BCP 47 language tag such as "fr-FR"`)
	}
}

func (v *validator) country(field, s string) {
	if s == "" {
		return
	}
	r, err := language.ParseRegion(s)
	if err != nil || len(s) != 2 || r.String() != s || !r.IsCountry() {
		v.add(field, `must be an upper-case ISO 3166-1 alpha-2 country code such as "FR"`)
	}
}

// Birthday is a parsed birthday: a month and day, and the year of birth
// when it is known (0 when not).
type Birthday struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseBirthday parses a birthday written "YYYY-MM-DD" (a calendar date
// between 1900 and 2199), or "--MM-DD" when the year is unknown (the ISO
// 8601 / vCard form without a year; "--02-29" is allowed). It does not
// judge a date in the future: the domain has no clock.
func ParseBirthday(s string) (Birthday, error) {
	bad := &ValidationError{Field: "birthday", Rule: `must be a date "YYYY-MM-DD", or "--MM-DD" when the year is unknown`}
	if len(s) != 10 && len(s) != 7 {
		return Birthday{}, bad
	}
	if len(s) == 10 {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil || t.Format(time.DateOnly) != s || t.Year() < 1900 || t.Year() >= 2200 {
			return Birthday{}, bad
		}
		return Birthday{Year: t.Year(), Month: t.Month(), Day: t.Day()}, nil
	}
	digits := func(s string) (int, bool) {
		if len(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	m, okM := digits(s[2:4])
	d, okD := digits(s[5:7])
	// A leap year (2000) admits --02-29.
	if s[:2] != "--" || s[4] != '-' || !okM || !okD || m < 1 || m > 12 || d < 1 ||
		time.Date(2000, time.Month(m), d, 0, 0, 0, 0, time.UTC).Day() != d {
		return Birthday{}, bad
	}
	return Birthday{Month: time.Month(m), Day: d}, nil
}

// birthday checks an optional birthday ("" is none, or cleared).
func (v *validator) birthday(field, s string) {
	if s == "" {
		return
	}
	if _, err := ParseBirthday(s); err != nil {
		v.addErr(field, err)
	}
}
