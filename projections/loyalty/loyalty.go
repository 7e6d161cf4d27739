// Package loyalty runs the loyalty programme's reactor (issue 8): purchase
// points and their expiry. Redemptions are decided by the customer
// aggregate (a redemption above the balance is refused) and tiers are
// computed at query time (domain.TierPolicy); neither needs a reactor.
//
// # Earning
//
// The reactor "loyalty_earn" answers each PurchaseCompleted with one
// PointsEarned{Reason: purchase} in the customer's stream:
//
//   - Points is floor(amount × Rate.Points / Rate.Per), the amount and Per
//     both in the order currency's minor units, computed exactly in
//     integers (no floats): 129.90 EUR at 1 point per 1 EUR earns 129,
//     1500 JPY at 1 point per 100 JPY earns 15. A purchase in a currency
//     without a rate in Config.Rates, or worth less than one point (a free
//     order), earns nothing.
//   - EarningID is PurchaseEarningID(orderId), derived from the order
//     alone, so a replay, a redone batch and the aggregate's "one purchase
//     earning per order" rule all agree on which earning an order has.
//   - ExpiresAt is the purchase's occurred-at plus Config.Expiry (to the
//     microsecond); with Expiry 0 the points never expire.
//
// # Expiry
//
// With an ExpiresAt, the reactor schedules the durable timer
// "expire/<earningId>" at that time. When it fires, the reactor asks
// Balances for what is left of the earning (neither redeemed nor expired;
// redemptions spend the earliest-expiring earnings first) and emits
// PointsExpired{EarningID, Points: remaining}; nothing when nothing is
// left or the earning is unknown (its PointsEarned was refused). The
// reactor keeps no state besides its timers: the remainder comes from the
// aggregate, which is why a re-fired timer or a replay emits nothing more —
// the aggregate then reports 0 remaining.
//
// # Refunds
//
// The reactor answers each RefundIssued of an order that earned purchase
// points with one PointsClawedBack{EarningID, RefundID, OrderID, Points}
// in the customer's stream. Points is what the aggregate says the
// refund owes (Balances.ClawbackDue): the earning's points in proportion
// to the order's refunded share over all its refunds so far, rounded
// down, minus what earlier claw-backs took. A full refund claws back every
// point, partial refunds their share, and the claw-backs of an order never
// total more than it earned (the aggregate refuses more, and a second
// claw-back for the same refund). Nothing is emitted when nothing is owed:
// an order without points, or a replay, where the aggregate already holds
// the claw-back.
//
// The balance never goes negative. Folding the claw-back takes what the
// balance holds and records the rest, points the customer already spent,
// as a debt that later earnings pay off before they count (see
// domain.PointsClawedBack); the customer view shows clawedBack and debt.
// The split happens in the fold, not here, so a redemption between this
// read and the append cannot make the claw-back wrong or refused.
// Tiers need nothing: they are computed at query time from each order's
// amount net of its refunds (domain.TierPolicy).
//
// # Changing the configuration
//
// Rates and Expiry apply to purchases the reactor handles after the
// change. A replay after a change re-derives the same EarningIDs, which the
// store already holds, so earnings keep their points; the timers, though,
// are scheduled at the new ExpiresAt, and an expiry before the stored
// ExpiresAt is refused by the aggregate (and skipped by the engine). Keep
// Expiry unchanged across a replay, or extend Balances to return the
// stored ExpiresAt.
//
// # Left to do: bonus points from rules
//
// A rule (projections/rules, or a reactor of its own) can emit
// PointsEarned{Reason: bonus, Rule: <rule name>} once its EarningID can be
// derived from its cause, so that replays and the aggregate's refusal of a
// reused earning id keep it to one bonus: uuid.NewSHA1(BonusSpace,
// rule name + "\x00" + the triggering event's id), or + the customer and a
// period ("2026-Q1") for a once-per-period bonus. The bonus then expires
// through the same "expire/<earningId>" timer, scheduled by whichever
// reactor emits it.
package loyalty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/reactor"
)

// Name is the reactor's name: its namespace is reactor.Namespace(Name).
const Name = "loyalty_earn"

// DefaultExpiry is the programme's usual expiry period: 365 days.
const DefaultExpiry = 365 * 24 * time.Hour

// Namespaces of the derived earning ids. They enter stored ids: never
// change them.
var (
	// PurchaseSpace derives purchase earnings from order ids.
	PurchaseSpace = uuid.MustParse("3b8f0e6c-52d4-4c1a-9e7f-8a2d4b6c1e90")
	// BonusSpace is reserved for bonus earnings (see the package doc).
	BonusSpace = uuid.MustParse("a4c7d2e1-9b3f-4e8a-b5d6-1f0e2c3a4b57")
)

// PurchaseEarningID is the EarningID of the purchase points of order.
func PurchaseEarningID(order uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(PurchaseSpace, order[:])
}

// ExpiryKey is the key of the timer expiring earning.
func ExpiryKey(earning uuid.UUID) string { return "expire/" + earning.String() }

// Rate is Points points per Per of a currency: {1, "1"} is one point per
// euro for EUR, {1, "100"} one point per 100 yen for JPY, {3, "2.00"}
// three points per two euros.
type Rate struct {
	// Points is at least 1.
	Points int64 `json:"points"`
	// Per is a decimal amount in major units, in the currency's own
	// digits (ParseAmount: "1", "1.00", "100"; not "0.5" for JPY).
	Per string `json:"per"`
}

// Config configures the programme.
type Config struct {
	// Rates maps an ISO-4217 code to its earning rate. A purchase in a
	// currency without a rate earns nothing.
	Rates map[string]Rate
	// Expiry is how long after the purchase its points expire; 0 means
	// never (DefaultExpiry is the usual 365 days).
	Expiry time.Duration
}

// Validate checks the rates (a real currency, Points ≥ 1, Per > 0) and
// that Expiry is not negative.
func (c Config) Validate() error {
	_, err := c.rates()
	return err
}

// rate is a Rate in minor units.
type rate struct {
	points, per uint64
}

func (c Config) rates() (map[string]rate, error) {
	if c.Expiry < 0 {
		return nil, errors.New("loyalty config: expiry must not be negative")
	}
	out := make(map[string]rate, len(c.Rates))
	codes := make([]string, 0, len(c.Rates))
	for code := range c.Rates {
		codes = append(codes, code)
	}
	slices.Sort(codes) // the first error in code order, deterministically
	for _, code := range codes {
		r := c.Rates[code]
		if r.Points < 1 || r.Points > domain.MaxPoints {
			return nil, fmt.Errorf("loyalty config: rate %s: points must be 1 to %d", code, domain.MaxPoints)
		}
		per, err := domain.ParseAmount(r.Per, code)
		if err != nil {
			return nil, fmt.Errorf("loyalty config: rate %s: per: %w", code, err)
		}
		if per == 0 {
			return nil, fmt.Errorf("loyalty config: rate %s: per must be above zero", code)
		}
		out[code] = rate{points: uint64(r.Points), per: uint64(per)}
	}
	return out, nil
}

// Balances reads the loyalty state of a customer's aggregate. The
// application implements it by folding the customer's stream (not a read
// model that may lag: the remainder must include every event stored
// before the timer fires).
type Balances interface {
	// Earning returns what is left of the customer's earning (neither
	// redeemed nor expired), and whether the earning exists.
	Earning(ctx context.Context, customer, earning uuid.UUID) (remaining int64, found bool, err error)
	// ClawbackDue returns the points a claw-back of the order's purchase
	// earning owes now (domain.Customer.ClawbackDue); 0 when nothing is.
	ClawbackDue(ctx context.Context, customer, order, earning uuid.UUID) (int64, error)
}

// Reactor is the "loyalty_earn" reactor (see the package documentation).
type Reactor struct {
	rates    map[string]rate
	expiry   time.Duration
	balances Balances
}

var _ reactor.Reactor = (*Reactor)(nil)

// New returns the reactor for cfg, reading remainders from balances.
func New(cfg Config, balances Balances) (*Reactor, error) {
	rates, err := cfg.rates()
	if err != nil {
		return nil, err
	}
	if balances == nil {
		return nil, errors.New("loyalty: nil Balances")
	}
	return &Reactor{rates: rates, expiry: cfg.Expiry, balances: balances}, nil
}

// Name implements reactor.Reactor.
func (*Reactor) Name() string { return Name }

// Types implements reactor.Reactor.
func (*Reactor) Types() []string {
	return []string{domain.TypePurchaseCompleted, domain.TypeRefundIssued}
}

// Points returns the points a purchase of amount minor units of currency
// earns: floor(amount × points / per), 0 without a rate, at most
// domain.MaxPoints.
func (r *Reactor) Points(amount int64, currency string) int64 {
	rt, ok := r.rates[currency]
	if !ok || amount <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(amount), rt.points)
	if hi >= rt.per { // the quotient would not fit in 64 bits
		return domain.MaxPoints
	}
	q, _ := bits.Div64(hi, lo, rt.per)
	return int64(min(q, uint64(domain.MaxPoints)))
}

// expiryPayload is the payload of an expiry timer.
type expiryPayload struct {
	EarningID uuid.UUID `json:"earningId"`
}

// React implements reactor.Reactor: purchase points and their expiry
// timer, and the claw-back of a refund.
func (r *Reactor) React(ctx context.Context, c *reactor.Context, e domain.Envelope) error {
	if refund, ok := e.Event.(domain.RefundIssued); ok {
		return r.clawBack(ctx, c, e, refund)
	}
	p, ok := e.Event.(domain.PurchaseCompleted)
	if !ok {
		return nil
	}
	points := r.Points(p.Amount, p.Currency)
	if points == 0 {
		return nil
	}
	customer, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return err
	}
	order := p.OrderID
	earned := domain.PointsEarned{
		EarningID: PurchaseEarningID(order),
		Points:    points,
		Reason:    domain.EarnPurchase,
		OrderID:   &order,
	}
	if r.expiry > 0 {
		// Microseconds, as timers are: the timer fires at ExpiresAt exactly.
		earned.ExpiresAt = e.Metadata.OccurredAt.Add(r.expiry).UTC().Truncate(time.Microsecond)
	}
	if err := c.Emit(customer, earned); err != nil {
		return err
	}
	if earned.ExpiresAt.IsZero() {
		return nil
	}
	payload, err := json.Marshal(expiryPayload{EarningID: earned.EarningID})
	if err != nil {
		return err
	}
	return c.Schedule(ExpiryKey(earned.EarningID), customer, earned.ExpiresAt, payload)
}

// Fire implements reactor.Reactor: it expires what is left of an earning.
func (r *Reactor) Fire(ctx context.Context, c *reactor.Context, t reactor.Timer) error {
	if !strings.HasPrefix(t.Key, "expire/") {
		return nil // no other timers exist
	}
	var p expiryPayload
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return fmt.Errorf("loyalty: timer %s: %w", t.Key, err)
	}
	remaining, found, err := r.balances.Earning(ctx, t.Customer, p.EarningID)
	if err != nil {
		return fmt.Errorf("loyalty: earning %s of %s: %w", p.EarningID, t.Customer, err)
	}
	if !found || remaining <= 0 {
		return nil
	}
	return c.Emit(t.Customer, domain.PointsExpired{EarningID: p.EarningID, Points: min(remaining, domain.MaxPoints)})
}

// clawBack emits the claw-back a refund owes (see the package
// documentation), if any.
func (r *Reactor) clawBack(ctx context.Context, c *reactor.Context, e domain.Envelope, refund domain.RefundIssued) error {
	customer, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return err
	}
	earning := PurchaseEarningID(refund.OrderID)
	due, err := r.balances.ClawbackDue(ctx, customer, refund.OrderID, earning)
	if err != nil {
		return fmt.Errorf("loyalty: claw-back of order %s of %s: %w", refund.OrderID, customer, err)
	}
	if due <= 0 {
		return nil
	}
	return c.Emit(customer, domain.PointsClawedBack{EarningID: earning, RefundID: refund.RefundID, OrderID: refund.OrderID, Points: min(due, domain.MaxPoints)})
}
