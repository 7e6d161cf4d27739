package domain

import "github.com/google/uuid"

// Commerce event type names.
const (
	TypePurchaseCompleted = "PurchaseCompleted"
	TypeRefundIssued      = "RefundIssued"
)

// PurchaseCompleted records a paid order. Amounts are integer minor units
// of Currency (schema v2; v1 stored decimal strings, see upcast.go). Amount
// is what the customer paid, and bounds the order's refunds. It must
// reconcile with the order's parts:
//
//	Amount = Σ lines (quantity × unitAmount) + Shipping + Tax − Discount
//
// Shipping, Tax and Discount are optional (0) and never negative: Tax is
// tax charged on top of the line prices (0 when they include it), Discount
// every order-level reduction (coupons, vouchers, points paid with). An
// amount no sum explains would let a writer inflate revenue, refunds and
// loyalty earnings at will.
//
// The three fields were added within schema v2: events stored before them
// decode with zeros and, as stored history, are not validated again.
type PurchaseCompleted struct {
	OrderID  uuid.UUID   `json:"orderId"`
	Amount   int64       `json:"amount"`
	Currency string      `json:"currency"`
	Lines    []OrderLine `json:"lines"`
	Shipping int64       `json:"shipping,omitempty"`
	Tax      int64       `json:"tax,omitempty"`
	Discount int64       `json:"discount,omitempty"`
}

// OrderLine is one product of an order, priced in the order's currency.
// Category, when given, groups products for recommendations ("coffee",
// "grinders").
type OrderLine struct {
	SKU         string `json:"sku"`
	Description string `json:"description,omitempty"`
	Category    string `json:"category,omitempty"`
	Quantity    int64  `json:"quantity"`
	UnitAmount  int64  `json:"unitAmount"`
}

// EventType implements Event.
func (PurchaseCompleted) EventType() string { return TypePurchaseCompleted }

// Validate implements Event.
func (e PurchaseCompleted) Validate() error {
	var v validator
	v.id("orderId", e.OrderID)
	v.money("amount", "currency", e.Amount, e.Currency, false)
	switch {
	case len(e.Lines) == 0:
		v.add("lines", "at least one line is required")
	case len(e.Lines) > maxLines:
		v.addf("lines", "at most %d lines", maxLines)
	default:
		for i, l := range e.Lines {
			f := index("lines", i) + "."
			v.line(f+"sku", l.SKU, true, maxShort)
			v.line(f+"description", l.Description, false, maxSubject)
			v.line(f+"category", l.Category, false, maxShort)
			v.intRange(f+"quantity", l.Quantity, 1, 1_000_000)
			switch {
			case l.UnitAmount < 0:
				v.add(f+"unitAmount", "must not be negative (minor units)")
			case l.UnitAmount > MaxAmount:
				v.addf(f+"unitAmount", "at most %d minor units", MaxAmount)
			case l.Quantity > 0 && l.UnitAmount > MaxAmount/l.Quantity:
				v.add(f+"unitAmount", "quantity × unitAmount is too large")
			}
		}
	}
	for _, part := range []struct {
		field string
		value int64
	}{{"shipping", e.Shipping}, {"tax", e.Tax}, {"discount", e.Discount}} {
		switch {
		case part.value < 0:
			v.add(part.field, "must not be negative (minor units)")
		case part.value > MaxAmount:
			v.addf(part.field, "at most %d minor units", MaxAmount)
		}
	}
	if len(v.errs) == 0 {
		// Every term is bounded by MaxAmount and there are at most
		// maxLines lines: the sum cannot overflow.
		var lines int64
		for _, l := range e.Lines {
			lines += l.Quantity * l.UnitAmount
		}
		if want := lines + e.Shipping + e.Tax - e.Discount; want != e.Amount {
			v.addf("amount", "must equal the lines (%d) + shipping (%d) + tax (%d) − discount (%d) = %d minor units, got %d", lines, e.Shipping, e.Tax, e.Discount, want, e.Amount)
		}
	}
	return v.err()
}

// RefundIssued records money paid back on an order, in the order's
// currency. RefundID makes each refund distinct (two refunds of 5.00 are
// two refunds), so the aggregate can refuse a replayed one.
type RefundIssued struct {
	RefundID uuid.UUID `json:"refundId"`
	OrderID  uuid.UUID `json:"orderId"`
	Amount   int64     `json:"amount"`
	Currency string    `json:"currency"`
	Reason   string    `json:"reason,omitempty"`
}

// EventType implements Event.
func (RefundIssued) EventType() string { return TypeRefundIssued }

// Validate implements Event.
func (e RefundIssued) Validate() error {
	var v validator
	v.id("refundId", e.RefundID)
	v.id("orderId", e.OrderID)
	v.money("amount", "currency", e.Amount, e.Currency, true)
	v.text("reason", e.Reason, false, maxText)
	return v.err()
}
