package domain

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Upcaster rewrites the JSON of one schema version of an event type into
// the next version's JSON. Decode chains them from the stored version to
// the current one, so stored history is read as the current struct without
// ever being rewritten. Upcasters are pure and must accept every document
// the old version's writer produced.
type Upcaster func(data []byte) ([]byte, error)

// purchaseCompletedV1 is PurchaseCompleted as schema 1 stored it: amounts as
// decimal strings ("12.50"), which v2 replaced by integer minor units.
type purchaseCompletedV1 struct {
	OrderID  uuid.UUID `json:"orderId"`
	Amount   string    `json:"amount"`
	Currency string    `json:"currency"`
	Lines    []struct {
		SKU         string `json:"sku"`
		Description string `json:"description,omitempty"`
		Quantity    int64  `json:"quantity"`
		UnitPrice   string `json:"unitPrice"`
	} `json:"lines"`
}

// upcastPurchaseCompletedV1 converts decimal amounts into minor units of the
// order's currency ("12.50" EUR becomes 1250, "1500" JPY stays 1500) and
// renames unitPrice to unitAmount.
func upcastPurchaseCompletedV1(data []byte) ([]byte, error) {
	var v1 purchaseCompletedV1
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	amount, err := ParseAmount(v1.Amount, v1.Currency)
	if err != nil {
		return nil, fmt.Errorf("amount: %w", err)
	}
	v2 := PurchaseCompleted{OrderID: v1.OrderID, Amount: amount, Currency: v1.Currency}
	for i, l := range v1.Lines {
		unit, err := ParseAmount(l.UnitPrice, v1.Currency)
		if err != nil {
			return nil, fmt.Errorf("lines[%d].unitPrice: %w", i, err)
		}
		v2.Lines = append(v2.Lines, OrderLine{SKU: l.SKU, Description: l.Description, Quantity: l.Quantity, UnitAmount: unit})
	}
	return json.Marshal(v2)
}

// callLoggedV1 is CallLogged as schema 1 stored it: the duration as
// "mm:ss" text copied from the telephony export.
type callLoggedV1 struct {
	Direction CallDirection `json:"direction"`
	Duration  string        `json:"duration"`
	Agent     string        `json:"agent"`
	Outcome   CallOutcome   `json:"outcome"`
	Summary   string        `json:"summary,omitempty"`
}

// upcastCallLoggedV1 converts "mm:ss" (minutes may exceed 59) into
// durationSeconds.
func upcastCallLoggedV1(data []byte) ([]byte, error) {
	var v1 callLoggedV1
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	mm, ss, ok := strings.Cut(v1.Duration, ":")
	minutes, err1 := strconv.ParseInt(mm, 10, 32)
	seconds, err2 := strconv.ParseInt(ss, 10, 32)
	if !ok || err1 != nil || err2 != nil || minutes < 0 || seconds < 0 || seconds > 59 {
		return nil, fmt.Errorf("duration %q is not mm:ss", v1.Duration)
	}
	return json.Marshal(CallLogged{
		Direction:       v1.Direction,
		DurationSeconds: minutes*60 + seconds,
		Agent:           v1.Agent,
		Outcome:         v1.Outcome,
		Summary:         v1.Summary,
	})
}
