package attribution

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// DefaultName is the read model's name when Config.Name is empty.
const DefaultName = "attribution"

// version is the schema version of the stored records; bump it whenever
// Apply or the record layout changes.
const version = 1

// DefaultWindow is the attribution window when Config.Window is zero.
const DefaultWindow = 7 * 24 * time.Hour

// MaxWindow bounds Config.Window: a purchase's attribution reads the
// customer's touches of every calendar month its window spans.
const MaxWindow = 366 * 24 * time.Hour

// ActionLead is the touch of a LeadCaptured naming a campaign. It is not a
// CampaignTouched action; it is listed with them in Config.Qualifying.
const ActionLead domain.CampaignAction = "lead"

// Per-customer bounds (see the package documentation): beyond them the
// oldest facts, by occurred-at, are dropped and stop counting.
const (
	// MaxTouchesPerMonth bounds the qualifying touches kept per customer
	// and calendar month (UTC).
	MaxTouchesPerMonth = 5000
	// MaxPurchases bounds the purchases kept per customer.
	MaxPurchases = 5000
	// MaxRefunds bounds the refunds kept per customer.
	MaxRefunds = 5000
)

// DefaultQualifying returns the actions whose touches qualify for
// attribution when Config.Qualifying is empty: sent, delivered, viewed,
// clicked and lead.
func DefaultQualifying() []domain.CampaignAction {
	return []domain.CampaignAction{domain.ActionSent, domain.ActionDelivered, domain.ActionViewed, domain.ActionClicked, ActionLead}
}

// qualifiable lists the actions Config.Qualifying may name, in a stable
// order. Bounced and unsubscribed are absent: a bounce never reached the
// customer and an unsubscription is no invitation to buy.
var qualifiable = []domain.CampaignAction{
	domain.ActionSent, domain.ActionDelivered, domain.ActionViewed,
	domain.ActionClicked, domain.ActionConverted, ActionLead,
}

// Config configures the projection. Window and Qualifying decide what is
// stored: a read model is built with one Config, and Apply refuses to
// continue a read model built with another (rebuild it, e.g. `cxledger
// replay attribution`, or give the new Config its own Name).
type Config struct {
	// Name is the read model's name (default DefaultName), so that a
	// second instance, e.g. with another window, can run beside the first.
	Name string
	// Window is the attribution window: a touch at t can earn a purchase
	// at p when t ≤ p ≤ t + Window. Zero means DefaultWindow; otherwise
	// whole seconds from 1 s to MaxWindow.
	Window time.Duration
	// Qualifying lists the actions whose touches earn attribution and
	// make a customer reached: any of sent (CampaignTouched sent, and
	// EmailSent and SMSSent naming a campaign), delivered, viewed,
	// clicked, converted and ActionLead. Empty means DefaultQualifying.
	Qualifying []domain.CampaignAction
}

// Validate reports whether c is usable, naming the offending field.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Window < 0:
		errs = append(errs, fmt.Errorf("window %v: must not be negative", c.Window))
	case c.Window%time.Second != 0:
		errs = append(errs, fmt.Errorf("window %v: must be whole seconds", c.Window))
	case c.Window > MaxWindow:
		errs = append(errs, fmt.Errorf("window %v: at most %v", c.Window, MaxWindow))
	}
	for _, a := range c.Qualifying {
		if !slices.Contains(qualifiable, a) {
			errs = append(errs, fmt.Errorf("qualifying action %q: want one of %v", a, qualifiable))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("attribution config: %w", err)
	}
	return nil
}

// settings is a validated Config as stored in the meta record.
type settings struct {
	WindowSeconds int64                   `json:"windowSeconds"`
	Qualifying    []domain.CampaignAction `json:"qualifying"`
}

func (c Config) settings() settings {
	w := c.Window
	if w == 0 {
		w = DefaultWindow
	}
	q := slices.Clone(c.Qualifying)
	if len(q) == 0 {
		q = DefaultQualifying()
	}
	slices.Sort(q)
	return settings{WindowSeconds: int64(w / time.Second), Qualifying: slices.Compact(q)}
}

func (s settings) equal(o settings) bool {
	return s.WindowSeconds == o.WindowSeconds && slices.Equal(s.Qualifying, o.Qualifying)
}

// New returns the attribution projection. It never fails: a Config that
// does not Validate makes every Apply fail with the validation error, so
// that the engine reports it; validate configuration taken from users
// before starting.
func New(cfg Config) projections.Projection {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	p := &projection{
		name: cfg.Name, err: cfg.Validate(), set: cfg.settings(),
		maxTouches: MaxTouchesPerMonth, maxPurchases: MaxPurchases, maxRefunds: MaxRefunds,
	}
	p.window = time.Duration(p.set.WindowSeconds) * time.Second
	return p
}

type projection struct {
	name   string
	err    error
	set    settings
	window time.Duration
	// The per-customer bounds, fields so that tests can lower them.
	maxTouches, maxPurchases, maxRefunds int
}

// Name implements projections.Projection.
func (p *projection) Name() string { return p.name }

// Version implements projections.Projection.
func (*projection) Version() int { return version }

// Types implements projections.Projection.
func (*projection) Types() []string {
	return []string{
		domain.TypeCampaignTouched,
		domain.TypeEmailSent,
		domain.TypeEmailOpened,
		domain.TypeEmailClicked,
		domain.TypeSMSSent,
		domain.TypeLeadCaptured,
		domain.TypePurchaseCompleted,
		domain.TypeRefundIssued,
		domain.TypeCustomerForgotten,
	}
}

func (p *projection) qualifies(a domain.CampaignAction) bool {
	return slices.Contains(p.set.Qualifying, a)
}

// Keys. Customer ids are canonical lower-case uuids; every key of one
// customer but its record starts with customerKey(id) + "/".
const (
	metaKey        = "meta"
	totalsKey      = "totals"
	campaignPrefix = "campaign/"
	customerPrefix = "customer/"
)

func campaignKey(name string) string { return campaignPrefix + name }
func customerKey(id string) string   { return customerPrefix + id }

func touchesKey(id string, month time.Time) string {
	return customerKey(id) + "/touches/" + month.Format("2006-01")
}

// messageKey hashes the Message-ID (up to 998 characters of anything) into
// a short key.
func messageKey(id, messageID string) string {
	h := sha256.Sum256([]byte(messageID))
	return customerKey(id) + "/message/" + hex.EncodeToString(h[:16])
}

// metaRecord is the Config the read model is built with.
type metaRecord = settings

// totalsRecord counts every counted purchase, attributed or not.
type totalsRecord struct {
	Purchases int64            `json:"purchases,omitempty"`
	Revenue   map[string]money `json:"revenue,omitempty"`
}

// campaignRecord holds one campaign's figures.
type campaignRecord struct {
	Campaign     string `json:"campaign"`
	Sent         int64  `json:"sent,omitempty"`
	Delivered    int64  `json:"delivered,omitempty"`
	Bounced      int64  `json:"bounced,omitempty"`
	Viewed       int64  `json:"viewed,omitempty"`
	Clicked      int64  `json:"clicked,omitempty"`
	Converted    int64  `json:"converted,omitempty"`
	Unsubscribed int64  `json:"unsubscribed,omitempty"`
	Leads        int64  `json:"leads,omitempty"`
	// EmailOpened and EmailClicked count the campaign's messages opened
	// and clicked at least once.
	EmailOpened  int64 `json:"emailOpened,omitempty"`
	EmailClicked int64 `json:"emailClicked,omitempty"`
	// Reached counts the customers with a qualifying touch.
	Reached int64       `json:"reached,omitempty"`
	Last    modelRecord `json:"last"`
	First   modelRecord `json:"first"`
}

// modelRecord holds a campaign's attribution under one model.
type modelRecord struct {
	Purchases int64            `json:"purchases,omitempty"`
	Customers int64            `json:"customers,omitempty"`
	Revenue   map[string]money `json:"revenue,omitempty"`
}

// money is gross purchases and their refunds in one currency.
type money struct {
	Gross    int64 `json:"gross"`
	Refunded int64 `json:"refunded"`
}

// addMoney adds sign × (gross, refunded) to m[currency], dropping entries
// that return to zero so that the stored bytes depend only on the facts.
func addMoney(m *map[string]money, currency string, gross, refunded, sign int64) {
	if gross == 0 && refunded == 0 {
		return
	}
	if *m == nil {
		*m = map[string]money{}
	}
	v := (*m)[currency]
	v.Gross += sign * gross
	v.Refunded += sign * refunded
	if v == (money{}) {
		delete(*m, currency)
	} else {
		(*m)[currency] = v
	}
	if len(*m) == 0 {
		*m = nil
	}
}

// customerRecord holds one customer's attribution facts.
type customerRecord struct {
	// Forgotten marks a customer erased: later events are ignored.
	Forgotten bool `json:"forgotten,omitempty"`
	// Reached lists the campaigns with a qualifying touch, sorted.
	Reached []string `json:"reached,omitempty"`
	// Purchases, sorted by purchaseCmp, each with its current attribution.
	Purchases []purchase `json:"purchases,omitempty"`
	// Refunds, sorted by refundCmp.
	Refunds []refund `json:"refunds,omitempty"`
	// Last and First count the customer's counted purchases attributed to
	// each campaign, per model.
	Last  map[string]int64 `json:"last,omitempty"`
	First map[string]int64 `json:"first,omitempty"`
}

// purchase is a stored PurchaseCompleted and its derived attribution.
type purchase struct {
	At       time.Time `json:"at"`
	Order    string    `json:"order"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	state
}

// state is what a purchase contributes: whether it counts (the first
// stored purchase of its order id), its refunded amount, and the campaign
// it is attributed to per model ("" for none).
type state struct {
	Counted  bool   `json:"counted,omitempty"`
	Refunded int64  `json:"refunded,omitempty"`
	Last     string `json:"last,omitempty"`
	First    string `json:"first,omitempty"`
}

func purchaseCmp(a, b purchase) int {
	return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Order, b.Order), cmp.Compare(a.Amount, b.Amount), strings.Compare(a.Currency, b.Currency))
}

// refund is a stored RefundIssued.
type refund struct {
	At       time.Time `json:"at"`
	ID       string    `json:"id"`
	Order    string    `json:"order"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
}

func refundCmp(a, b refund) int {
	return cmp.Or(a.At.Compare(b.At), strings.Compare(a.ID, b.ID), strings.Compare(a.Order, b.Order), cmp.Compare(a.Amount, b.Amount), strings.Compare(a.Currency, b.Currency))
}

// touchRecord holds a customer's qualifying touches of one UTC month.
type touchRecord struct {
	// Touches, distinct and sorted by touchCmp.
	Touches []touch `json:"touches"`
}

// touch is a qualifying touch: when, and which campaign.
type touch struct {
	At       time.Time `json:"at"`
	Campaign string    `json:"campaign"`
}

func touchCmp(a, b touch) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	return strings.Compare(a.Campaign, b.Campaign)
}

// messageRecord links an e-mail's Message-ID to its campaign.
type messageRecord struct {
	// Campaign and SentAt are those of the campaign EmailSent that sorts
	// first by (occurred-at, campaign); empty until one is folded.
	Campaign string    `json:"campaign,omitempty"`
	SentAt   time.Time `json:"sentAt,omitzero"`
	Opened   bool      `json:"opened,omitempty"`
	Clicked  bool      `json:"clicked,omitempty"`
}

// insertSorted inserts v into the sorted set s unless it is there, and
// then drops the smallest element while s holds more than limit. It
// returns the new set, whether v was inserted, and the dropped element if
// any. The result is the limit largest elements of everything ever
// inserted, whatever the order of insertion.
func insertSorted[T any](s []T, v T, limit int, cmp func(a, b T) int) (out []T, inserted bool, dropped *T) {
	i, found := slices.BinarySearchFunc(s, v, cmp)
	if found {
		return s, false, nil
	}
	s = slices.Insert(s, i, v)
	if len(s) <= limit {
		return s, true, nil
	}
	d := s[0]
	return slices.Delete(s, 0, 1), i != 0, &d
}

// campaignName returns the campaign named by an event, or "" for none.
// Names are compared as recorded; a name that could not be a key (invalid
// UTF-8, NUL) is repaired rather than refused, since history is not an
// error.
func campaignName(s string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
