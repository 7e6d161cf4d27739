package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Refund claw-backs by hand. Order O is 200.00 EUR and earned E = 200
// points (expiring); a bonus B of 50 never expires. Balance 250.
//
//  1. Refund R1 of 50.00 (25 %): due floor(200 × 5000 ÷ 20000) = 50, all
//     taken, from E's own remainder: E 150, B 50, balance 200.
//  2. Redeem 180: E first (it expires), then 30 of B: E 0, B 20,
//     balance 20.
//  3. Refund R2 of 100.00 (150.00 in all, 75 %): due 150 − 50 = 100; the
//     balance holds 20 (taken from B), 80 become debt: balance 0.
//  4. Refund R3 of the last 50.00: due 200 − 150 = 50, all debt (130); a
//     claw-back of 51 is refused (more than the earning has left), as are
//     a second one for R3, one naming another order's refund and one for
//     an unknown refund.
//  5. Earning N of 100 pays 100 of the debt: debt 30, balance 0, N has
//     nothing left; a redemption of 1 is refused.
//  6. Earning M of 50 pays the last 30: debt 0, balance 20, M 20 left.
func TestClawbackScenario(t *testing.T) {
	order, other := uuid.New(), uuid.New()
	e, b, n, m := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	r1, r2, r3, rOther := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c := NewCustomer(customerID)
	step := func(ev Event) {
		t.Helper()
		if err := c.CheckAt(ev, at); err != nil {
			t.Fatalf("%T: %v", ev, err)
		}
		c.ApplyAt(ev, at)
	}
	refused := func(ev Event, why string) {
		t.Helper()
		if err := c.CheckAt(ev, at); !errors.Is(err, ErrRejected) {
			t.Errorf("%s: %v, want a rejection", why, err)
		}
	}
	state := func(step string, balance, debt, remE, remB int64) {
		t.Helper()
		se, _ := c.Earning(e)
		sb, _ := c.Earning(b)
		if c.Points() != balance || c.Debt() != debt || se.Remaining != remE || sb.Remaining != remB {
			t.Errorf("after %s: balance %d debt %d, E %d B %d left; want %d, %d, %d, %d", step, c.Points(), c.Debt(), se.Remaining, sb.Remaining, balance, debt, remE, remB)
		}
	}
	step(CustomerRegistered{CustomerID: customerID, Name: "Zoë"})
	step(PurchaseCompleted{OrderID: order, Amount: 20_000, Currency: "EUR", Lines: []OrderLine{{SKU: "BIKE", Quantity: 1, UnitAmount: 20_000}}})
	step(PurchaseCompleted{OrderID: other, Amount: 1_000, Currency: "EUR", Lines: []OrderLine{{SKU: "BELL", Quantity: 1, UnitAmount: 1_000}}})
	step(PointsEarned{EarningID: e, Points: 200, Reason: EarnPurchase, OrderID: &order, ExpiresAt: at.AddDate(1, 0, 0)})
	step(PointsEarned{EarningID: b, Points: 50, Reason: EarnBonus, Rule: "welcome"})
	if d := c.ClawbackDue(order, e); d != 0 {
		t.Errorf("due before any refund: %d", d)
	}

	step(RefundIssued{RefundID: r1, OrderID: order, Amount: 5_000, Currency: "EUR"})
	if d := c.ClawbackDue(order, e); d != 50 {
		t.Errorf("due after R1: %d, want 50", d)
	}
	step(PointsClawedBack{EarningID: e, RefundID: r1, OrderID: order, Points: 50})
	state("R1", 200, 0, 150, 50)
	if d := c.ClawbackDue(order, e); d != 0 {
		t.Errorf("due after R1's claw-back: %d, want 0", d)
	}

	step(PointsRedeemed{RedemptionID: uuid.New(), Points: 180, Reward: "HELMET"})
	state("the redemption", 20, 0, 0, 20)

	step(RefundIssued{RefundID: r2, OrderID: order, Amount: 10_000, Currency: "EUR"})
	if d := c.ClawbackDue(order, e); d != 100 {
		t.Errorf("due after R2: %d, want 100", d)
	}
	step(PointsClawedBack{EarningID: e, RefundID: r2, OrderID: order, Points: 100})
	state("R2", 0, 80, 0, 0)

	step(RefundIssued{RefundID: r3, OrderID: order, Amount: 5_000, Currency: "EUR"})
	step(RefundIssued{RefundID: rOther, OrderID: other, Amount: 1_000, Currency: "EUR"})
	if d := c.ClawbackDue(order, e); d != 50 {
		t.Errorf("due after R3: %d, want 50", d)
	}
	refused(PointsClawedBack{EarningID: e, RefundID: r3, OrderID: order, Points: 51}, "more than the earning has left")
	refused(PointsClawedBack{EarningID: e, RefundID: rOther, OrderID: order, Points: 1}, "a refund of another order")
	refused(PointsClawedBack{EarningID: e, RefundID: rOther, OrderID: other, Points: 1}, "an earning of another order")
	refused(PointsClawedBack{EarningID: e, RefundID: uuid.New(), OrderID: order, Points: 1}, "an unknown refund")
	step(PointsClawedBack{EarningID: e, RefundID: r3, OrderID: order, Points: 50})
	state("R3", 0, 130, 0, 0)
	refused(PointsClawedBack{EarningID: e, RefundID: r3, OrderID: order, Points: 1}, "R3 again")
	if d := c.ClawbackDue(order, e); d != 0 {
		t.Errorf("due after the full refund's claw-backs: %d, want 0", d)
	}
	if se, _ := c.Earning(e); se.ClawedBack != 200 {
		t.Errorf("E clawed back %d, want all 200", se.ClawedBack)
	}

	step(PointsEarned{EarningID: n, Points: 100, Reason: EarnAdjustment})
	state("N", 0, 30, 0, 0)
	if sn, _ := c.Earning(n); sn.Remaining != 0 {
		t.Errorf("N has %d left, want 0 (it paid the debt)", sn.Remaining)
	}
	refused(PointsRedeemed{RedemptionID: uuid.New(), Points: 1, Reward: "PEN"}, "a redemption while in debt")
	step(PointsEarned{EarningID: m, Points: 50, Reason: EarnAdjustment})
	state("M", 20, 0, 0, 0)
	if sm, _ := c.Earning(m); sm.Remaining != 20 {
		t.Errorf("M has %d left, want 20", sm.Remaining)
	}
}

// Proportional claw-backs round down each time against the cumulative
// refund, so partial refunds add up to exactly the earning: 129 points
// for 129.90; refunding 15.00 owes floor(129 × 1500 ÷ 12990) = 14, the
// remaining 114.90 owes 129 − 14 = 115.
func TestClawbackDueRounding(t *testing.T) {
	c := fold(history()...) // the fixture order: 129.90 EUR
	c.Apply(PointsEarned{EarningID: earningID, Points: 129, Reason: EarnPurchase, OrderID: ptr(orderID)})
	c.Apply(RefundIssued{RefundID: refundID, OrderID: orderID, Amount: 1_500, Currency: "EUR"})
	if d := c.ClawbackDue(orderID, earningID); d != 14 {
		t.Fatalf("due %d, want 14", d)
	}
	c.Apply(PointsClawedBack{EarningID: earningID, RefundID: refundID, OrderID: orderID, Points: 14})
	second := uuid.New()
	c.Apply(RefundIssued{RefundID: second, OrderID: orderID, Amount: 11_490, Currency: "EUR"})
	if d := c.ClawbackDue(orderID, earningID); d != 115 {
		t.Fatalf("due %d, want 115", d)
	}
	if err := c.Check(PointsClawedBack{EarningID: earningID, RefundID: second, OrderID: orderID, Points: 115}); err != nil {
		t.Fatal(err)
	}
}
