package domain

import (
	"maps"
	"testing"
	"time"
)

// The tier rule at its boundaries, by hand: default levels are bronze 0,
// silver 500.00 (50000 cents), gold 2000.00 (200000 cents); the window is
// (now − 12 months, now].
func TestTierAt(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	start := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	in := now.AddDate(0, -2, 0)
	eur := func(at time.Time, n int64) Spend { return Spend{At: at, Amount: n, Currency: "EUR"} }
	usd := func(at time.Time, n int64) Spend { return Spend{At: at, Amount: n, Currency: "USD"} }
	jpy := func(at time.Time, n int64) Spend { return Spend{At: at, Amount: n, Currency: "JPY"} }
	yen := map[string][]TierLevel{"JPY": {{TierBronze, "0"}, {TierSilver, "50000"}, {TierGold, "200000"}}}

	tests := []struct {
		name     string
		policy   TierPolicy
		orders   []Spend
		tier     Tier
		currency string
		spend    map[string]int64
		next     Tier
		nextAt   int64
	}{
		{"no orders", TierPolicy{}, nil, TierBronze, "", nil, "", 0},
		{"just below silver", TierPolicy{}, []Spend{eur(in, 49_999)}, TierBronze, "EUR", map[string]int64{"EUR": 49_999}, TierSilver, 50_000},
		{"exactly silver", TierPolicy{}, []Spend{eur(in, 30_000), eur(in, 20_000)}, TierSilver, "EUR", map[string]int64{"EUR": 50_000}, TierGold, 200_000},
		{"refunds are net of the order", TierPolicy{}, []Spend{eur(in, 60_000-10_001)}, TierBronze, "EUR", map[string]int64{"EUR": 49_999}, TierSilver, 50_000},
		{"fully refunded order counts nothing", TierPolicy{}, []Spend{eur(in, 0), eur(in, 50_000)}, TierSilver, "EUR", map[string]int64{"EUR": 50_000}, TierGold, 200_000},
		{"exactly gold", TierPolicy{}, []Spend{eur(in, 200_000)}, TierGold, "EUR", map[string]int64{"EUR": 200_000}, "", 0},
		{"window start is excluded", TierPolicy{}, []Spend{eur(start, 100_000), eur(in, 199_999)}, TierSilver, "EUR", map[string]int64{"EUR": 199_999}, TierGold, 200_000},
		{"just after window start is included", TierPolicy{}, []Spend{eur(start.Add(time.Nanosecond), 1), eur(in, 199_999)}, TierGold, "EUR", map[string]int64{"EUR": 200_000}, "", 0},
		{"now is included, the future is not", TierPolicy{}, []Spend{eur(now, 50_000), eur(now.Add(time.Nanosecond), 500_000)}, TierSilver, "EUR", map[string]int64{"EUR": 50_000}, TierGold, 200_000},
		{"currencies are not added", TierPolicy{}, []Spend{eur(in, 40_000), usd(in, 30_000)}, TierBronze, "EUR", map[string]int64{"EUR": 40_000, "USD": 30_000}, TierSilver, 50_000},
		{"best currency wins", TierPolicy{}, []Spend{eur(in, 40_000), usd(in, 60_000)}, TierSilver, "USD", map[string]int64{"EUR": 40_000, "USD": 60_000}, TierGold, 200_000},
		{"a tie goes to the first code", TierPolicy{}, []Spend{usd(in, 50_000), eur(in, 50_000)}, TierSilver, "EUR", map[string]int64{"EUR": 50_000, "USD": 50_000}, TierGold, 200_000},
		{"default levels do not fit JPY", TierPolicy{}, []Spend{jpy(in, 1_000_000)}, TierBronze, "", map[string]int64{"JPY": 1_000_000}, "", 0},
		{"JPY thresholds", TierPolicy{Currencies: yen}, []Spend{jpy(in, 60_000)}, TierSilver, "JPY", map[string]int64{"JPY": 60_000}, TierGold, 200_000},
		{"one-month window", TierPolicy{Months: 1}, []Spend{eur(time.Date(2026, 2, 14, 12, 0, 0, 0, time.UTC), 100_000), eur(time.Date(2026, 2, 14, 12, 0, 1, 0, time.UTC), 60_000)}, TierSilver, "EUR", map[string]int64{"EUR": 60_000}, TierGold, 200_000},
		{"custom levels", TierPolicy{Levels: []TierLevel{{"member", "0"}, {"vip", "100.00"}}}, []Spend{eur(in, 10_000)}, "vip", "EUR", map[string]int64{"EUR": 10_000}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Validate(); err != nil {
				t.Fatal(err)
			}
			got := tt.policy.TierAt(tt.orders, now)
			if got.Tier != tt.tier || got.Currency != tt.currency || !maps.Equal(got.Spend, tt.spend) || got.Next != tt.next || got.NextSpend != tt.nextAt {
				t.Errorf("TierAt = %+v\nwant tier %s in %q, spend %v, next %s at %d", got, tt.tier, tt.currency, tt.spend, tt.next, tt.nextAt)
			}
			if tt.policy.Months == 0 && !got.WindowStart.Equal(start) {
				t.Errorf("WindowStart = %s, want %s", got.WindowStart, start)
			}
		})
	}
}

func TestTierPolicyValidate(t *testing.T) {
	for name, p := range map[string]TierPolicy{
		"negative months":    {Months: -1},
		"descending levels":  {Levels: []TierLevel{{TierBronze, "0"}, {TierGold, "2000.00"}, {TierSilver, "500.00"}}},
		"equal levels":       {Levels: []TierLevel{{TierBronze, "0"}, {TierSilver, "0"}}},
		"unparsable level":   {Levels: []TierLevel{{TierBronze, "0"}, {TierSilver, "500,00"}}},
		"too many decimals":  {Currencies: map[string][]TierLevel{"JPY": DefaultTierLevels}},
		"empty currency set": {Currencies: map[string][]TierLevel{"USD": {}}},
	} {
		if p.Validate() == nil {
			t.Errorf("%s: Validate() = nil", name)
		}
	}
	if err := (TierPolicy{}).Validate(); err != nil {
		t.Errorf("default policy: %v", err)
	}
}
