package httpapi

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/strictjson"
)

// BenchmarkDecodeAppendRequest measures decoding a 100-event append body,
// and the strict JSON check's share of it (Check alone).
func BenchmarkDecodeAppendRequest(b *testing.B) {
	var evs []string
	for i := range 100 {
		evs = append(evs, fmt.Sprintf(`{"id":"0190f5a4-7b9e-7c3a-9d2e-4b1f6a8c%04x","type":"PurchaseCompleted","data":{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2%04x","amount":10000,"currency":"EUR","lines":[{"sku":"SNK-42","quantity":1,"unitAmount":10000}]},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"user:marta","channel":"web"}}`, i, i))
	}
	body := []byte(`{"expectedVersion":"any","events":[` + strings.Join(evs, ",") + `]}`)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	b.Run("Decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := DecodeAppendRequest(bytes.NewReader(body), now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("StrictCheckOnly", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := strictjson.Check(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
