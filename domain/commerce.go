package domain

import "github.com/google/uuid"

// Commerce event type names.
const (
	TypePurchaseCompleted = "PurchaseCompleted"
	TypeRefundIssued      = "RefundIssued"
)

// PurchaseCompleted records a paid order. Amounts are integer minor units
// of Currency (schema v2; v1 stored decimal strings, see upcast.go). Amount
// is what the customer paid, and bounds the order's refunds; it need not
// equal the sum of the lines, which leave out shipping, tax and discounts.
type PurchaseCompleted struct {
	OrderID  uuid.UUID   `json:"orderId"`
	Amount   int64       `json:"amount"`
	Currency string      `json:"currency"`
	Lines    []OrderLine `json:"lines"`
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
