package domain_test

import (
	"errors"
	"fmt"

	"github.com/cxledger/cxledger/domain"
	"github.com/google/uuid"
)

// A command handler folds the stream, checks the new event, and appends it
// at the version the fold ended with.
func ExampleCustomer_Check() {
	id := uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	order := uuid.MustParse("44de0bb8-b9b6-42cb-b699-a1d767a2699c")
	history := []domain.Event{
		domain.CustomerRegistered{CustomerID: id, Name: "Zoë Nguyễn"},
		domain.PurchaseCompleted{OrderID: order, Amount: 12_990, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SNK-42", Quantity: 1, UnitAmount: 12_990}}},
	}
	c := domain.NewCustomer(id)
	for _, e := range history {
		c.Apply(e)
	}

	refund := domain.RefundIssued{RefundID: uuid.MustParse("457583b2-585c-4972-abb0-3fb81e8c1e8a"), OrderID: order, Amount: 20_000, Currency: "EUR"}
	err := c.Check(refund)
	var rejected *domain.RejectionError
	fmt.Println(errors.Is(err, domain.ErrRejected), errors.As(err, &rejected) && rejected.Entity == "order")
	fmt.Println(err)
	fmt.Println("next append expects version", c.Events()-1)
	// Output:
	// true true
	// rejected RefundIssued: order 44de0bb8-b9b6-42cb-b699-a1d767a2699c: refunds would total 20000 minor units, more than the 12990 paid
	// next append expects version 1
}

// Parse is for outside input: strict JSON, then validation naming the field.
func ExampleParse() {
	_, err := domain.Parse(domain.TypeSurveyAnswered, []byte(`{"survey":"nps-post-purchase","nps":11}`))
	var invalid *domain.ValidationError
	if errors.As(err, &invalid) {
		fmt.Println(invalid.Field, "—", invalid.Rule)
	}
	_, err = domain.Parse("CustomerUpdated", []byte(`{}`))
	fmt.Println(errors.Is(err, domain.ErrUnknownType), err)
	// Output:
	// nps — must be between 0 and 10
	// true unknown event type "CustomerUpdated"
}

func ExampleNormalizePhone() {
	for _, s := range []string{"+33 6 12 34 56 78", "0033 (6) 12.34.56.78", "06 12 34 56 78"} {
		e164, err := domain.NormalizePhone(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(e164)
	}
	// Output:
	// +33612345678
	// +33612345678
	// invalid phone: must start with + or 00 and the country code (E.164)
}
