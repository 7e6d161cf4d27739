package domain

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Loyalty event type names.
const (
	TypePointsEarned   = "PointsEarned"
	TypePointsRedeemed = "PointsRedeemed"
	TypePointsExpired  = "PointsExpired"
	// TypePointsClawedBack is a refund taking back purchase points.
	TypePointsClawedBack = "PointsClawedBack"
)

// MaxPoints bounds the points of one loyalty event, far above any real
// earning, so that thousands of them sum in an int64 without overflow.
const MaxPoints int64 = 1_000_000_000_000

// EarnReason says why points were earned.
type EarnReason string

// Earn reasons.
const (
	// EarnPurchase is the programme's rate applied to an order (OrderID).
	EarnPurchase EarnReason = "purchase"
	// EarnBonus comes from a promotional rule (Rule).
	EarnBonus EarnReason = "bonus"
	// EarnAdjustment is a manual correction by an agent.
	EarnAdjustment EarnReason = "adjustment"
)

var earnReasons = []EarnReason{EarnPurchase, EarnBonus, EarnAdjustment}

// PointsEarned credits loyalty points. EarningID names this credit: a
// PointsExpired names it to expire what is left of it, and the aggregate
// refuses a reused one, so a reactor that derives it from its cause (the
// order, the rule and the customer) is idempotent. OrderID is required for
// a purchase (one purchase earning per order) and optional otherwise; Rule
// names the rule of a bonus (required for bonuses). ExpiresAt, when set,
// is when the unspent remainder of this earning expires; without it the
// points never expire.
type PointsEarned struct {
	EarningID uuid.UUID  `json:"earningId"`
	Points    int64      `json:"points"`
	Reason    EarnReason `json:"reason"`
	OrderID   *uuid.UUID `json:"orderId,omitempty"`
	Rule      string     `json:"rule,omitempty"`
	ExpiresAt time.Time  `json:"expiresAt,omitzero"`
}

// EventType implements Event.
func (PointsEarned) EventType() string { return TypePointsEarned }

// Validate implements Event.
func (e PointsEarned) Validate() error {
	var v validator
	v.id("earningId", e.EarningID)
	v.intRange("points", e.Points, 1, MaxPoints)
	enum(&v, "reason", e.Reason, true, earnReasons)
	switch {
	case e.OrderID != nil && *e.OrderID == uuid.Nil:
		v.add("orderId", "must be a non-nil uuid when given")
	case e.Reason == EarnPurchase && e.OrderID == nil:
		v.add("orderId", "required for a purchase earning")
	}
	v.line("rule", e.Rule, e.Reason == EarnBonus, maxName)
	v.timestamp("expiresAt", e.ExpiresAt, false)
	return v.err()
}

// PointsRedeemed spends loyalty points on a reward. RedemptionID makes
// each redemption distinct; the aggregate refuses a reused one and any
// redemption above the balance. Reward names a catalogue reward (a code or
// a product name), never free text about the customer.
type PointsRedeemed struct {
	RedemptionID uuid.UUID `json:"redemptionId"`
	Points       int64     `json:"points"`
	Reward       string    `json:"reward"`
}

// EventType implements Event.
func (PointsRedeemed) EventType() string { return TypePointsRedeemed }

// Validate implements Event.
func (e PointsRedeemed) Validate() error {
	var v validator
	v.id("redemptionId", e.RedemptionID)
	v.intRange("points", e.Points, 1, MaxPoints)
	v.line("reward", e.Reward, true, maxName)
	return v.err()
}

// PointsExpired removes the unspent remainder of one earning (EarningID)
// once its ExpiresAt has passed. The expiry timer reads the remainder from
// the aggregate (Customer.Earning) and emits exactly that many Points;
// the aggregate refuses more than the remainder or the balance.
type PointsExpired struct {
	EarningID uuid.UUID `json:"earningId"`
	Points    int64     `json:"points"`
}

// EventType implements Event.
func (PointsExpired) EventType() string { return TypePointsExpired }

// Validate implements Event.
func (e PointsExpired) Validate() error {
	var v validator
	v.id("earningId", e.EarningID)
	v.intRange("points", e.Points, 1, MaxPoints)
	return v.err()
}

// PointsClawedBack takes back the purchase points of a refunded amount:
// the loyalty reactor emits one per RefundIssued of an order that earned
// points (RefundID, OrderID, and EarningID the order's purchase earning).
//
// Points is what the refund owes: the earning's points in proportion to
// the order's refunded share, floor(points × refunded ÷ amount) over all
// the order's refunds so far, minus what earlier claw-backs of that
// earning took (Customer.ClawbackDue). A full refund thus claws back every
// point of the purchase, partial refunds claw back their share, and
// repeated refunds never more than the earning.
//
// The balance never goes negative: folding the event takes what the
// balance holds, up to Points (first from the earning's own unspent
// remainder, then from the others in expiry order), and records the rest,
// points already spent, as a debt (Customer.Debt). Later earnings pay
// the debt off before they count in the balance. The split is the fold's,
// not the writer's, so that a redemption appended between the reactor's
// read and its append cannot make the claw-back wrong or refused.
type PointsClawedBack struct {
	EarningID uuid.UUID `json:"earningId"`
	RefundID  uuid.UUID `json:"refundId"`
	OrderID   uuid.UUID `json:"orderId"`
	Points    int64     `json:"points"`
}

// EventType implements Event.
func (PointsClawedBack) EventType() string { return TypePointsClawedBack }

// Validate implements Event.
func (e PointsClawedBack) Validate() error {
	var v validator
	v.id("earningId", e.EarningID)
	v.id("refundId", e.RefundID)
	v.id("orderId", e.OrderID)
	v.intRange("points", e.Points, 1, MaxPoints)
	return v.err()
}

// Clawback is how one fold of a PointsClawedBack split its points.
type Clawback struct {
	// Taken came off the balance; Debt is the rest, owed by later
	// earnings.
	Taken, Debt int64
}

// SplitClawback splits a claw-back of points against a balance (see
// PointsClawedBack): what the balance holds is taken, the rest is debt.
// Read models that keep a balance fold claw-backs with it, in log order,
// to agree with the aggregate.
func SplitClawback(points, balance int64) Clawback {
	taken := min(max(points, 0), max(balance, 0))
	return Clawback{Taken: taken, Debt: max(points, 0) - taken}
}

// PayDebt is how much of an earning of points pays off debt (the rest
// counts in the balance).
func PayDebt(points, debt int64) int64 { return min(max(points, 0), max(debt, 0)) }

// EarningState is what the aggregate knows about one earning: its points,
// what is left of them (neither redeemed, expired, clawed back nor paid
// to a debt), when the remainder expires (zero: never), the order of a
// purchase earning and what refunds clawed back of it.
type EarningState struct {
	Points     int64
	Remaining  int64
	ExpiresAt  time.Time
	OrderID    uuid.UUID
	ClawedBack int64
}

// loyalty is the aggregate's loyalty state.
//
// Redemptions spend earnings in expiry order: the earning that expires
// first is spent first (earnings that never expire last), ties in log
// order. That makes "the unexpired remainder of an earning" well defined,
// and spares the customer's soonest-expiring points.
type loyalty struct {
	balance     int64                  // earned − redeemed − expired − taken by claw-backs − paid to debt
	debt        int64                  // claw-backs the balance could not cover
	clawRefunds map[uuid.UUID]struct{} // refunds already clawed back
	earnings    map[uuid.UUID]*EarningState
	order       []uuid.UUID // earning ids in log order
	redemptions map[uuid.UUID]struct{}
	earnedFor   map[uuid.UUID]struct{} // orders with a purchase earning
}

func (l *loyalty) clone() loyalty {
	n := loyalty{balance: l.balance, debt: l.debt, order: slices.Clone(l.order), clawRefunds: maps.Clone(l.clawRefunds)}
	if l.earnings != nil {
		n.earnings = make(map[uuid.UUID]*EarningState, len(l.earnings))
		for id, s := range l.earnings {
			c := *s
			n.earnings[id] = &c
		}
	}
	if l.redemptions != nil {
		n.redemptions = make(map[uuid.UUID]struct{}, len(l.redemptions))
		for id := range l.redemptions {
			n.redemptions[id] = struct{}{}
		}
	}
	if l.earnedFor != nil {
		n.earnedFor = make(map[uuid.UUID]struct{}, len(l.earnedFor))
		for id := range l.earnedFor {
			n.earnedFor[id] = struct{}{}
		}
	}
	return n
}

// apply folds a loyalty event; it is total (history is history): a
// reused earning id replaces nothing, over-spending clamps remainders at
// zero while the balance records what history says.
func (l *loyalty) apply(e Event) {
	switch e := e.(type) {
	case PointsEarned:
		paid := PayDebt(e.Points, l.debt)
		l.debt -= paid
		l.balance = satAdd(l.balance, e.Points-paid)
		if e.OrderID != nil && e.Reason == EarnPurchase {
			if l.earnedFor == nil {
				l.earnedFor = make(map[uuid.UUID]struct{})
			}
			l.earnedFor[*e.OrderID] = struct{}{}
		}
		if _, ok := l.earnings[e.EarningID]; ok {
			return
		}
		if l.earnings == nil {
			l.earnings = make(map[uuid.UUID]*EarningState)
		}
		st := &EarningState{Points: e.Points, Remaining: max(e.Points-paid, 0), ExpiresAt: e.ExpiresAt.UTC()}
		if e.OrderID != nil && e.Reason == EarnPurchase {
			st.OrderID = *e.OrderID
		}
		l.earnings[e.EarningID] = st
		l.order = append(l.order, e.EarningID)
	case PointsRedeemed:
		l.balance = satAdd(l.balance, -e.Points)
		if l.redemptions == nil {
			l.redemptions = make(map[uuid.UUID]struct{})
		}
		l.redemptions[e.RedemptionID] = struct{}{}
		l.spend(e.Points)
	case PointsExpired:
		l.balance = satAdd(l.balance, -e.Points)
		if s, ok := l.earnings[e.EarningID]; ok {
			s.Remaining -= min(max(e.Points, 0), s.Remaining)
		}
	case PointsClawedBack:
		if l.clawRefunds == nil {
			l.clawRefunds = make(map[uuid.UUID]struct{})
		}
		l.clawRefunds[e.RefundID] = struct{}{}
		split := SplitClawback(e.Points, l.balance)
		l.balance = satAdd(l.balance, -split.Taken)
		l.debt = satAdd(l.debt, split.Debt)
		take := split.Taken
		if s, ok := l.earnings[e.EarningID]; ok {
			s.ClawedBack = satAdd(s.ClawedBack, max(e.Points, 0))
			own := min(take, s.Remaining)
			s.Remaining -= own
			take -= own
		}
		l.spend(take)
	}
}

// spend takes points from the remainders in expiry order.
func (l *loyalty) spend(points int64) {
	ids := slices.Clone(l.order)
	slices.SortStableFunc(ids, func(a, b uuid.UUID) int {
		ea, eb := l.earnings[a].ExpiresAt, l.earnings[b].ExpiresAt
		switch {
		case ea.IsZero() && eb.IsZero():
			return 0
		case ea.IsZero():
			return 1
		case eb.IsZero():
			return -1
		}
		return ea.Compare(eb)
	})
	for _, id := range ids {
		if points <= 0 {
			return
		}
		s := l.earnings[id]
		take := min(points, s.Remaining)
		s.Remaining -= take
		points -= take
	}
}

// check enforces the loyalty invariants on e, if it is a loyalty event.
func (l *loyalty) check(reject rejectFunc, e Event, at time.Time, latest bool, orderKnown func(uuid.UUID) bool) error {
	switch e := e.(type) {
	case PointsEarned:
		if _, ok := l.earnings[e.EarningID]; ok {
			return reject("loyalty", e.EarningID, "earning id already used")
		}
		if e.Reason == EarnPurchase && e.OrderID != nil {
			if !orderKnown(*e.OrderID) {
				return reject("order", *e.OrderID, "unknown order: purchase points need the purchase first")
			}
			if _, ok := l.earnedFor[*e.OrderID]; ok {
				return reject("order", *e.OrderID, "the order already earned its purchase points")
			}
		}
	case PointsRedeemed:
		if _, ok := l.redemptions[e.RedemptionID]; ok {
			return reject("loyalty", e.RedemptionID, "redemption id already used")
		}
		if e.Points > l.balance {
			return reject("loyalty", e.RedemptionID, "redeeming %d points exceeds the balance of %d", e.Points, max(l.balance, 0))
		}
	case PointsClawedBack:
		s, ok := l.earnings[e.EarningID]
		switch {
		case !ok || s.OrderID != e.OrderID:
			return reject("loyalty", e.EarningID, "not the purchase earning of order %s", e.OrderID)
		case hasKey(l.clawRefunds, e.RefundID):
			return reject("refund", e.RefundID, "the refund already clawed back its points")
		case e.Points > s.Points-s.ClawedBack:
			return reject("loyalty", e.EarningID, "clawing back %d points exceeds the %d left of the earning's %d", e.Points, s.Points-s.ClawedBack, s.Points)
		}
	case PointsExpired:
		s, ok := l.earnings[e.EarningID]
		switch {
		case !ok:
			return reject("loyalty", e.EarningID, "unknown earning")
		case e.Points > l.balance:
			return reject("loyalty", e.EarningID, "expiring %d points exceeds the balance of %d", e.Points, max(l.balance, 0))
		case s.ExpiresAt.IsZero():
			return reject("loyalty", e.EarningID, "the earning never expires")
		case !latest && at.Before(s.ExpiresAt):
			return reject("loyalty", e.EarningID, "the earning expires at %s, not before", s.ExpiresAt.Format(time.RFC3339))
		case e.Points > s.Remaining:
			return reject("loyalty", e.EarningID, "expiring %d points exceeds the earning's unexpired remainder of %d", e.Points, s.Remaining)
		}
	}
	return nil
}

// satAdd adds points saturating at ±2⁶², so that no history overflows.
func satAdd(a, b int64) int64 {
	const limit = 1 << 62
	a, b = min(max(a, -limit), limit), min(max(b, -limit), limit)
	return min(max(a+b, -limit), limit) // |a+b| ≤ 2⁶³−2⁶², no overflow
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// Points returns the customer's loyalty balance: points earned minus
// redeemed, expired, clawed back and paid to a debt. Check keeps it from
// going negative; a claw-back the balance cannot cover leaves a Debt.
func (c *Customer) Points() int64 { return c.loyalty.balance }

// Debt returns the points clawed back by refunds that the balance could
// not cover (they were spent already); later earnings pay it off first.
func (c *Customer) Debt() int64 { return c.loyalty.debt }

// ClawbackDue returns the points a claw-back of order's purchase earning
// owes now (see PointsClawedBack): the earning's points in proportion to
// the order's refunded share, floor(points × refunded ÷ amount), minus
// what earlier claw-backs took; 0 when the order, its earning or its
// refunds are unknown, or when nothing more is owed.
func (c *Customer) ClawbackDue(order, earning uuid.UUID) int64 {
	o, ok := c.orders[order]
	s, ok2 := c.loyalty.earnings[earning]
	if !ok || !ok2 || s.OrderID != order || o.Amount <= 0 || o.Refunded <= 0 || s.Points <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(s.Points), uint64(min(o.Refunded, o.Amount)))
	q, _ := bits.Div64(hi, lo, uint64(o.Amount)) // refunded ≤ amount: q ≤ points, no overflow
	return max(int64(q)-s.ClawedBack, 0)
}

// Earning returns the state of one earning, and whether it exists. The
// expiry timer emits PointsExpired{Points: Remaining} at ExpiresAt when
// Remaining is above zero.
func (c *Customer) Earning(id uuid.UUID) (EarningState, bool) {
	s, ok := c.loyalty.earnings[id]
	if !ok {
		return EarningState{}, false
	}
	return *s, true
}

// Tier is a loyalty tier.
type Tier string

// The default tiers.
const (
	TierBronze Tier = "bronze"
	TierSilver Tier = "silver"
	TierGold   Tier = "gold"
)

// TierLevel is one tier and the spend that reaches it: a decimal amount in
// major units ("500.00"), read in each currency's own digits.
type TierLevel struct {
	Tier     Tier   `json:"tier"`
	MinSpend string `json:"minSpend"`
}

// TierPolicy configures tiers by rolling spend.
//
// # The rule
//
// A customer's spend in a currency is the sum, over the orders purchased
// in the window (after now.AddDate(0, -Months, 0), which normalises
// 31 March minus one month to 3 March, up to and including now), of what
// was paid minus what was refunded of that order.
// A refund counts against its order, whatever its own date, so a refund of
// an order bought before the window does not lower the spend in it. The
// tier in a currency is the highest level whose MinSpend that spend
// reaches.
//
// # Currencies
//
// Amounts in different currencies are never converted or added. The
// customer's tier is the best tier reached in any one currency, and
// TierStatus.Currency names it (for most customers, who buy in one
// currency, their main currency). Currencies without thresholds
// (Currencies without an entry and Levels failing to parse in that
// currency, e.g. "500.00" for JPY, which has no minor unit) do not count.
type TierPolicy struct {
	// Months is the rolling window in calendar months; 0 means 12.
	Months int
	// Levels are the tiers in ascending order of MinSpend; the first one
	// is what every customer has. Empty means DefaultTierLevels.
	Levels []TierLevel
	// Currencies overrides Levels for one currency (its tiers must be the
	// same, thresholds in that currency), e.g. JPY: 0, 50000, 200000.
	Currencies map[string][]TierLevel
}

// DefaultTierLevels are bronze from 0, silver from 500.00 and gold from
// 2000.00, in any currency with a minor unit of two digits or more.
var DefaultTierLevels = []TierLevel{{TierBronze, "0"}, {TierSilver, "500.00"}, {TierGold, "2000.00"}}

// Spend is one order for the tier rule: its amount net of refunds, in
// minor units of Currency, at its purchase time.
type Spend struct {
	At       time.Time
	Amount   int64
	Currency string
}

// TierStatus is a customer's tier at a time.
type TierStatus struct {
	Tier Tier `json:"tier"`
	// Currency is the currency whose spend reached Tier; empty when the
	// tier is the first level by default.
	Currency string `json:"currency,omitempty"`
	// Spend is the net spend per currency in the window, minor units.
	Spend map[string]int64 `json:"spend,omitempty"`
	// WindowStart is the exclusive start of the window, now the inclusive
	// end.
	WindowStart time.Time `json:"windowStart"`
	// Next is the tier above, and NextSpend the spend in Currency (minor
	// units) that reaches it; empty at the top tier and without Currency.
	Next      Tier  `json:"next,omitempty"`
	NextSpend int64 `json:"nextSpend,omitempty"`
}

// Validate checks the policy: at least one level when Levels is set,
// ascending thresholds that parse in every currency listed in Currencies.
func (p TierPolicy) Validate() error {
	if p.Months < 0 {
		return errors.New("tier policy: months must not be negative")
	}
	for cur, levels := range p.Currencies {
		if _, err := thresholds(levels, cur); err != nil {
			return fmt.Errorf("tier policy: %s: %w", cur, err)
		}
	}
	if _, err := thresholds(p.levels(), "EUR"); err != nil {
		return fmt.Errorf("tier policy: %w", err)
	}
	return nil
}

func (p TierPolicy) levels() []TierLevel {
	if len(p.Levels) == 0 {
		return DefaultTierLevels
	}
	return p.Levels
}

// thresholds parses levels in currency: minor units, ascending.
func thresholds(levels []TierLevel, currency string) ([]int64, error) {
	if len(levels) == 0 {
		return nil, errors.New("no levels")
	}
	out := make([]int64, len(levels))
	for i, l := range levels {
		n, err := ParseAmount(l.MinSpend, currency)
		if err != nil {
			return nil, fmt.Errorf("level %s: %w", l.Tier, err)
		}
		if i > 0 && n <= out[i-1] {
			return nil, fmt.Errorf("level %s: thresholds must ascend", l.Tier)
		}
		out[i] = n
	}
	return out, nil
}

// TierAt applies the policy to orders at now (see TierPolicy). It is pure:
// the same orders, policy and now give the same answer.
func (p TierPolicy) TierAt(orders []Spend, now time.Time) TierStatus {
	months := p.Months
	if months == 0 {
		months = 12
	}
	start := now.AddDate(0, -months, 0)
	st := TierStatus{Tier: p.levels()[0].Tier, WindowStart: start}
	for _, o := range orders {
		if o.At.After(start) && !o.At.After(now) && o.Amount > 0 {
			if st.Spend == nil {
				st.Spend = map[string]int64{}
			}
			st.Spend[o.Currency] = satAdd(st.Spend[o.Currency], o.Amount)
		}
	}
	best := -1
	currencies := make([]string, 0, len(st.Spend))
	for cur := range st.Spend {
		currencies = append(currencies, cur)
	}
	slices.Sort(currencies) // a tie goes to the first currency in code order
	for _, cur := range currencies {
		levels, ok := p.Currencies[cur]
		if !ok {
			levels = p.levels()
		}
		limits, err := thresholds(levels, cur)
		if err != nil {
			continue
		}
		i := 0
		for i+1 < len(limits) && st.Spend[cur] >= limits[i+1] {
			i++
		}
		if st.Spend[cur] < limits[0] {
			continue
		}
		if i > best {
			best = i
			st.Tier, st.Currency = levels[i].Tier, cur
			st.Next, st.NextSpend = "", 0
			if i+1 < len(levels) {
				st.Next, st.NextSpend = levels[i+1].Tier, limits[i+1]
			}
		}
	}
	return st
}
