package analytics

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// randomRecord is a customer record as the projection may hold it: with
// or without purchases, days, money in several currencies (refund-only
// ones too) and survey answers named with anything.
func randomRecord(rng *rand.Rand) customerRecord {
	rec := customerRecord{Customer: fmt.Sprintf("%08x-9363-4d27-8279-1bc399c39ebb", rng.Uint32())}
	if rng.IntN(10) > 0 {
		rec.Orders = int64(1 + rng.IntN(30))
		at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(2000*24)) * time.Hour)
		rec.FirstPurchase, rec.LastPurchase = at, at.Add(time.Duration(rng.IntN(500*24))*time.Hour)
		day := dayNumber(at)
		for range 1 + rng.IntN(12) {
			rec.Days = append(rec.Days, day)
			day += int64(1 + rng.IntN(90))
		}
	}
	for _, code := range []string{"EUR", "USD", "JPY", "GBP"} {
		if rng.IntN(3) == 0 {
			if rec.Money == nil {
				rec.Money = map[string]money{}
			}
			rec.Money[code] = money{Orders: int64(rng.IntN(4)), Gross: rng.Int64N(1 << 40), Refunds: int64(rng.IntN(3)), Refunded: rng.Int64N(1 << 30)}
		}
	}
	if rng.IntN(2) == 0 {
		rec.Surveys = map[string]answer{`nps "q1" <\ü>`: {Score: rng.IntN(11), At: time.Unix(rng.Int64N(1<<31), 0).UTC()}}
	}
	return rec
}

// rfmFacts reads the projection's records as encoding/json does, and
// takes its fast path on every one of them.
func TestRFMFactsAgreesWithDecoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	today := dayNumber(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range 5000 {
		rec := randomRecord(rng)
		doc, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, buyer, ok := rfmFacts(doc, today)
		if !ok {
			t.Fatalf("record %d: fast path not taken for %s", i, doc)
		}
		wantBuyer := rec.Orders > 0 && len(rec.Days) > 0
		if buyer != wantBuyer {
			t.Fatalf("record %d: buyer %v, want %v: %s", i, buyer, wantBuyer, doc)
		}
		if buyer && got != buyerFacts(rec, today) {
			t.Fatalf("record %d: %+v, want %+v: %s", i, got, buyerFacts(rec, today), doc)
		}
	}
}

// FuzzRFMFacts: on any bytes the fast reader never panics, and what it
// accepts as a buyer's record encoding/json reads to the same facts.
func FuzzRFMFacts(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		doc, _ := json.Marshal(randomRecord(rng))
		f.Add(doc)
	}
	f.Add([]byte(`{"customer":"x","orders":2,"days":[1,-5],"money":{"EUR":{"orders":1,"gross":5,"refunds":0,"refunded":9}}}`))
	f.Add([]byte(`{"customer":"x\"","orders":1}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, buyer, ok := rfmFacts(doc, 20_000)
		if !ok || !buyer {
			return
		}
		var rec customerRecord
		if err := json.Unmarshal(doc, &rec); err != nil {
			return // not a record the projection writes
		}
		if rec.Orders > 0 && len(rec.Days) > 0 && got != buyerFacts(rec, 20_000) {
			t.Fatalf("%+v, encoding/json reads %+v", got, buyerFacts(rec, 20_000))
		}
	})
}
