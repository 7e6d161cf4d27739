package domain

import (
	"errors"
	"testing"
)

func TestCurrencyDigits(t *testing.T) {
	for code, want := range map[string]int{"EUR": 2, "USD": 2, "JPY": 0, "KRW": 0, "BHD": 3, "CHF": 2} {
		if got, err := CurrencyDigits(code); err != nil || got != want {
			t.Errorf("CurrencyDigits(%s) = %d, %v; want %d", code, got, err, want)
		}
	}
	for _, code := range []string{"", "eur", "Eur", "EURO", "EU", "ABC", "XXX", "XTS", "€"} {
		if _, err := CurrencyDigits(code); !errors.Is(err, ErrInvalid) {
			t.Errorf("CurrencyDigits(%q) = %v, want ErrInvalid", code, err)
		}
	}
}

func TestParseAndFormatAmount(t *testing.T) {
	tests := []struct {
		decimal, currency string
		minor             int64
		formatted         string
	}{
		{"12.50", "EUR", 1250, "12.50"},
		{"12.5", "EUR", 1250, "12.50"},
		{"12", "EUR", 1200, "12.00"},
		{"0.05", "USD", 5, "0.05"},
		{"0", "EUR", 0, "0.00"},
		{"1500", "JPY", 1500, "1500"},
		{"1.234", "BHD", 1234, "1.234"},
		{"0.001", "BHD", 1, "0.001"},
		{"10000000000000.00", "EUR", MaxAmount, "10000000000000.00"},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.decimal, tt.currency)
		if err != nil || got != tt.minor {
			t.Errorf("ParseAmount(%q, %s) = %d, %v; want %d", tt.decimal, tt.currency, got, err, tt.minor)
		}
		if s, err := FormatAmount(tt.minor, tt.currency); err != nil || s != tt.formatted {
			t.Errorf("FormatAmount(%d, %s) = %q, %v; want %q", tt.minor, tt.currency, s, err, tt.formatted)
		}
	}
	for _, tt := range []struct{ decimal, currency string }{
		{"12.505", "EUR"}, {"12.5", "JPY"}, {"-1.00", "EUR"}, {"+1", "EUR"}, {"1e3", "EUR"},
		{"1,000.00", "EUR"}, {"12.", "EUR"}, {".5", "EUR"}, {"", "EUR"}, {"12.50", "eur"},
		{"10000000000000.01", "EUR"}, {"99999999999999999999", "JPY"}, {" 1", "EUR"},
	} {
		if got, err := ParseAmount(tt.decimal, tt.currency); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseAmount(%q, %s) = %d, %v; want ErrInvalid", tt.decimal, tt.currency, got, err)
		}
	}
	if _, err := FormatAmount(-1, "EUR"); err == nil {
		t.Error("FormatAmount(-1) succeeded")
	}
}
