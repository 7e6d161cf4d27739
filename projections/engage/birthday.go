package engage

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/google/uuid"
)

// Revealer opens a sealed personal value of a customer: the plaintext, or
// an erasure marker once the customer's key is destroyed
// (adapters/keyring.Keyring.Reveal, whose marker is keyring.Erased). A
// value that is not sealed comes back as it is.
type Revealer interface {
	Reveal(ctx context.Context, customer uuid.UUID, s string) (string, error)
}

// BirthdayConfig configures BirthdayGreeting.
type BirthdayConfig struct {
	// DaysBefore is how many days before the birthday the greeting is
	// sent (at midnight UTC); 0, the default, sends it on the day.
	DaysBefore int
	// PercentOff is the discount, 1 to 100; 0 means 10.
	PercentOff int
	// ValidFor is how long the discount code is valid after it is issued;
	// 0 means 30 days.
	ValidFor time.Duration
	// Message is the greeting; its defaults are email, template
	// "birthday", purpose marketing and campaign "birthday".
	Message Message
}

// Birthday greeting defaults.
const (
	DefaultBirthdayTemplate = "birthday"
	DefaultBirthdayCampaign = "birthday"
	// BirthdayReason is the Reason of the discounts the rule issues.
	BirthdayReason = "birthday"
)

func (c BirthdayConfig) withDefaults() BirthdayConfig {
	if c.PercentOff == 0 {
		c.PercentOff = 10
	}
	if c.ValidFor == 0 {
		c.ValidFor = 30 * 24 * time.Hour
	}
	if c.Message.Purpose == "" {
		c.Message.Purpose = domain.PurposeMarketing
	}
	if c.Message.Campaign == "" {
		c.Message.Campaign = DefaultBirthdayCampaign
	}
	c.Message = c.Message.withDefaults(DefaultBirthdayTemplate)
	return c
}

// Validate checks the lead time, the discount and the message.
func (c BirthdayConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.DaysBefore < 0 || c.DaysBefore > 31:
		return fmt.Errorf("birthday: %d days before, want 0 to 31", c.DaysBefore)
	case c.PercentOff < 1 || c.PercentOff > 100:
		return fmt.Errorf("birthday: %d%% off, want 1 to 100", c.PercentOff)
	case c.ValidFor < time.Hour || c.ValidFor > 366*24*time.Hour:
		return fmt.Errorf("birthday: discount valid for %s, want 1h to 366 days", c.ValidFor)
	}
	return c.Message.validate()
}

// BirthdayGreeting greets customers on their birthday with a discount.
//
// A CustomerRegistered or ProfileUpdated carrying a birthday schedules
// "birthday/<customerId>" at the next occurrence (midnight UTC, DaysBefore
// days earlier), strictly after the event occurred; a birthday without a
// year ("--MM-DD") is greeted the same. A 29 February birthday is greeted
// on 28 February in common years. A ProfileUpdated that clears the
// birthday, a value that does not reveal to a birthday (an erased one,
// keyring.Erased) and CustomerForgotten cancel it. The birthday is sealed
// personal data, opened through the Revealer (nil: values are plaintext).
// The timer holds the month and day (its due date shows them anyway) but
// never the year, and is cancelled when the customer is forgotten.
//
// When it fires it emits, in one append, a DiscountIssued (PercentOff,
// valid for ValidFor, reason "birthday", its id and code "BDAY-" + 8 hex
// digits derived from the timer) and the MessageQueued announcing it. A
// marketing message needs the customer's consent at that moment; a
// refused message refuses the discount with it (an unannounced discount
// is pointless), so without consent nothing is stored. It then schedules
// next year's greeting.
//
// The code is derived, not random, so a replay issues the same one; it
// is not a secret from whoever knows the customer id and birthday, so the
// checkout should accept it for that customer only.
type BirthdayGreeting struct {
	cfg  BirthdayConfig
	keys Revealer
}

// NewBirthdayGreeting returns the rule, revealing sealed birthdays with
// keys (nil when the ledger stores plaintext), or cfg's Validate error.
func NewBirthdayGreeting(cfg BirthdayConfig, keys Revealer) (*BirthdayGreeting, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &BirthdayGreeting{cfg: cfg.withDefaults(), keys: keys}, nil
}

// Name implements reactor.Reactor.
func (*BirthdayGreeting) Name() string { return "birthday_greeting" }

// Types implements reactor.Reactor.
func (*BirthdayGreeting) Types() []string {
	return []string{domain.TypeCustomerRegistered, domain.TypeProfileUpdated, domain.TypeCustomerForgotten}
}

func birthdayKey(customer uuid.UUID) string { return "birthday/" + customer.String() }

// birthdayTimer is the payload of a greeting timer.
type birthdayTimer struct {
	Month time.Month `json:"month"`
	Day   int        `json:"day"`
}

// React implements reactor.Reactor.
func (r *BirthdayGreeting) React(ctx context.Context, c *reactor.Context, e domain.Envelope) error {
	var value string
	switch ev := e.Event.(type) {
	case domain.CustomerRegistered:
		if ev.Birthday == "" {
			return nil
		}
		value = ev.Birthday
	case domain.ProfileUpdated:
		if ev.Birthday == nil {
			return nil
		}
		value = *ev.Birthday
	case domain.CustomerForgotten:
	default:
		return nil
	}
	customer, err := customerOf(e)
	if err != nil {
		return err
	}
	if value != "" && r.keys != nil {
		if value, err = r.keys.Reveal(ctx, customer, value); err != nil {
			return fmt.Errorf("reveal birthday: %w", err)
		}
	}
	b, err := domain.ParseBirthday(value)
	if value == "" || err != nil {
		// Cleared, erased (keyring.Erased) or forgotten: no greeting.
		return c.Cancel(birthdayKey(customer))
	}
	p, err := payload(birthdayTimer{Month: b.Month, Day: b.Day})
	if err != nil {
		return err
	}
	return c.Schedule(birthdayKey(customer), customer, r.next(b.Month, b.Day, e.Metadata.OccurredAt), p)
}

// Fire implements reactor.Reactor.
func (r *BirthdayGreeting) Fire(_ context.Context, c *reactor.Context, t reactor.Timer) error {
	var b birthdayTimer
	if err := unpayload(t.Payload, &b); err != nil {
		return fmt.Errorf("birthday timer: %w", err)
	}
	id := uuid.NewSHA1(c.Trigger(), []byte("discount"))
	discount := domain.DiscountIssued{
		DiscountID: id,
		Code:       "BDAY-" + strings.ToUpper(hex.EncodeToString(id[:4])),
		PercentOff: r.cfg.PercentOff,
		ValidUntil: t.Due.Add(r.cfg.ValidFor),
		Reason:     BirthdayReason,
	}
	if err := c.Emit(t.Customer, discount); err != nil {
		return err
	}
	if err := c.Emit(t.Customer, r.cfg.Message.queued(c.Trigger())); err != nil {
		return err
	}
	return c.Schedule(t.Key, t.Customer, r.next(b.Month, b.Day, t.Due), t.Payload)
}

// next returns when to greet a birthday on month/day next, strictly after
// after: DaysBefore days before its occurrence, at midnight UTC.
func (r *BirthdayGreeting) next(month time.Month, day int, after time.Time) time.Time {
	after = after.UTC()
	for y := after.Year() - 1; ; y++ {
		if at := occurrence(y, month, day).AddDate(0, 0, -r.cfg.DaysBefore); at.After(after) {
			return at
		}
	}
}

// occurrence is the birthday month/day in year, at midnight UTC: 29
// February falls on 28 February in a common year.
func occurrence(year int, month time.Month, day int) time.Time {
	if month == time.February && day == 29 && time.Date(year, time.February, 29, 0, 0, 0, 0, time.UTC).Month() != time.February {
		day = 28
	}
	return time.Date(year, month, day, 0, 0, 0, 0, time.UTC)
}
