package domain

import (
	"errors"
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// Money in events is an integer amount of the currency's minor units (cents
// for EUR, yen for JPY, fils for BHD) next to an ISO-4217 code: integers add
// up exactly, floats do not.

// MaxAmount bounds every amount in minor units. It is far above any real
// order (10 trillion euros) and leaves room to sum thousands of amounts in
// an int64 without overflow.
const MaxAmount int64 = 1_000_000_000_000_000

// CurrencyDigits returns the number of minor-unit digits of an ISO-4217
// currency code (2 for EUR, 0 for JPY, 3 for BHD). The code must be three
// upper-case letters naming a real currency; XXX (no currency) and XTS
// (testing) are refused.
func CurrencyDigits(code string) (int, error) {
	if len(code) != 3 || strings.ToUpper(code) != code {
		return 0, &ValidationError{Field: "currency", Rule: "must be an upper-case ISO-4217 code such as EUR"}
	}
	if code == "XXX" || code == "XTS" {
		return 0, &ValidationError{Field: "currency", Rule: "must be a real currency, not " + code}
	}
	u, err := currency.ParseISO(code)
	if err != nil {
		return 0, &ValidationError{Field: "currency", Rule: "unknown ISO-4217 code " + strconv.Quote(code)}
	}
	scale, _ := currency.Standard.Rounding(u)
	return scale, nil
}

// ParseAmount converts a decimal string such as "12.50" into minor units of
// currency (1250 for EUR). It refuses signs, exponents, thousands
// separators and more decimals than the currency has, rather than rounding
// money silently.
func ParseAmount(decimal, currencyCode string) (int64, error) {
	digits, err := CurrencyDigits(currencyCode)
	if err != nil {
		return 0, err
	}
	whole, frac, hasDot := strings.Cut(decimal, ".")
	if whole == "" || (hasDot && frac == "") || !allDigits(whole) || !allDigits(frac) {
		return 0, &ValidationError{Field: "amount", Rule: "must be a decimal such as 12.50, got " + strconv.Quote(decimal)}
	}
	if len(frac) > digits {
		return 0, &ValidationError{Field: "amount", Rule: currencyCode + " has " + strconv.Itoa(digits) + " decimal places, got " + strconv.Quote(decimal)}
	}
	s := whole + frac + strings.Repeat("0", digits-len(frac))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxAmount {
		return 0, &ValidationError{Field: "amount", Rule: "too large"}
	}
	return n, nil
}

// FormatAmount writes minor units as a decimal in the currency's digits
// (1250 EUR is "12.50"), the inverse of ParseAmount.
func FormatAmount(minor int64, currencyCode string) (string, error) {
	digits, err := CurrencyDigits(currencyCode)
	if err != nil {
		return "", err
	}
	if minor < 0 {
		return "", errors.New("domain: negative amount")
	}
	s := strconv.FormatInt(minor, 10)
	if digits == 0 {
		return s, nil
	}
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	return s[:len(s)-digits] + "." + s[len(s)-digits:], nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// money checks an amount in minor units and its currency. positive demands
// more than zero (a refund of nothing is a mistake); otherwise zero is fine
// (a free order).
func (v *validator) money(amountField, currencyField string, amount int64, code string, positive bool) {
	switch {
	case amount < 0:
		v.add(amountField, "must not be negative (minor units)")
	case positive && amount == 0:
		v.add(amountField, "must be greater than zero (minor units)")
	case amount > MaxAmount:
		v.addf(amountField, "at most %d minor units", MaxAmount)
	}
	if code == "" {
		v.add(currencyField, "required (ISO-4217 code such as EUR)")
		return
	}
	if _, err := CurrencyDigits(code); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			v.add(currencyField, ve.Rule)
		}
	}
}
