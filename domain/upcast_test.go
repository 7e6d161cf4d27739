package domain

import (
	"reflect"
	"testing"
)

func TestUpcastPurchaseCompletedV1(t *testing.T) {
	tests := []struct {
		name string
		v1   string
		want PurchaseCompleted
	}{
		{
			name: "EUR with cents",
			v1:   `{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"129.90","currency":"EUR","lines":[{"sku":"SNK-42-WHT","description":"Baskets blanches","quantity":1,"unitPrice":"89.90"},{"sku":"SOCK-3P","quantity":2,"unitPrice":"20"}]}`,
			want: PurchaseCompleted{OrderID: orderID, Amount: 12_990, Currency: "EUR", Lines: []OrderLine{
				{SKU: "SNK-42-WHT", Description: "Baskets blanches", Quantity: 1, UnitAmount: 8_990},
				{SKU: "SOCK-3P", Quantity: 2, UnitAmount: 2_000},
			}},
		},
		{
			name: "JPY has no minor unit",
			v1:   `{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"15800","currency":"JPY","lines":[{"sku":"和菓子-12","quantity":2,"unitPrice":"7900"}]}`,
			want: PurchaseCompleted{OrderID: orderID, Amount: 15_800, Currency: "JPY", Lines: []OrderLine{{SKU: "和菓子-12", Quantity: 2, UnitAmount: 7_900}}},
		},
		{
			name: "BHD has three decimals",
			v1:   `{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"12.5","currency":"BHD","lines":[{"sku":"DATES-1KG","quantity":1,"unitPrice":"12.500"}]}`,
			want: PurchaseCompleted{OrderID: orderID, Amount: 12_500, Currency: "BHD", Lines: []OrderLine{{SKU: "DATES-1KG", Quantity: 1, UnitAmount: 12_500}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode(TypePurchaseCompleted, 1, []byte(tt.v1))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, tt.want) {
				t.Errorf("got %#v\nwant %#v", e, tt.want)
			}
			if err := e.Validate(); err != nil {
				t.Errorf("upcast event invalid: %v", err)
			}
		})
	}
}

func TestUpcastPurchaseCompletedV1Errors(t *testing.T) {
	for _, v1 := range []string{
		`{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"12.505","currency":"EUR","lines":[]}`, // too many decimals
		`{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"12,50","currency":"EUR","lines":[]}`,  // comma
		`{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"12.50","currency":"???","lines":[]}`,  // currency
		`{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"12.50","currency":"EUR","lines":[{"sku":"A","quantity":1,"unitPrice":"-1"}]}`,
		`{"amount":12.50}`, // not v1 at all
	} {
		if e, err := Decode(TypePurchaseCompleted, 1, []byte(v1)); err == nil {
			t.Errorf("Decode(%s) = %#v, want error", v1, e)
		}
	}
}

func TestUpcastCallLoggedV1(t *testing.T) {
	v1 := `{"direction":"outbound","duration":"72:05","agent":"user:marta.kowalska","outcome":"connected","summary":"Renouvellement"}`
	e, err := Decode(TypeCallLogged, 1, []byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	want := CallLogged{Direction: CallOutbound, DurationSeconds: 72*60 + 5, Agent: "user:marta.kowalska", Outcome: CallConnected, Summary: "Renouvellement"}
	if e != want {
		t.Errorf("got %#v, want %#v", e, want)
	}
	for _, bad := range []string{"72", "1:60", "-1:00", "a:b", ""} {
		if _, err := Decode(TypeCallLogged, 1, []byte(`{"direction":"inbound","duration":"`+bad+`","agent":"a","outcome":"busy"}`)); err == nil {
			t.Errorf("duration %q accepted", bad)
		}
	}
}

// The current version decodes as is: upcasters run only for older data.
func TestDecodeCurrentVersionSkipsUpcasters(t *testing.T) {
	_, version, data, err := Encode(validEvents()[TypePurchaseCompleted])
	if err != nil {
		t.Fatal(err)
	}
	if version != 2 {
		t.Fatalf("PurchaseCompleted schema version %d, want 2", version)
	}
	if _, err := Decode(TypePurchaseCompleted, version, data); err != nil {
		t.Fatal(err)
	}
	// Reading v2 data as v1 fails loudly instead of misreading amounts.
	if _, err := Decode(TypePurchaseCompleted, 1, data); err == nil {
		t.Error("v2 data read as v1 without error")
	}
}

// Every registered chain reaches the current version.
func TestUpcasterChainsComplete(t *testing.T) {
	for typ, d := range registry {
		for v := 1; v < d.version; v++ {
			if d.upcasters[v] == nil {
				t.Errorf("%s: no upcaster from v%d", typ, v)
			}
		}
	}
}
