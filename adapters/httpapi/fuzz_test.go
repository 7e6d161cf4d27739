package httpapi

import (
	"bytes"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/strictjson"
	"github.com/cxledger/cxledger/domain"
)

// FuzzDecodeAppendRequest: whatever the body, the decoder never panics,
// every error it returns maps to a 4xx problem (never an internal 500), and
// what it accepts is valid and encodable.
func FuzzDecodeAppendRequest(f *testing.F) {
	f.Add([]byte(`{"expectedVersion":"any","events":[{"id":"0190f5a4-7b9e-7c3a-9d2e-4b1f6a8c0d11","type":"CallLogged","data":{"direction":"inbound","durationSeconds":754,"agent":"user:marta","outcome":"connected"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"user:marta","channel":"phone"}}]}`))
	f.Add([]byte(`{"expectedVersion":3,"events":[{"type":"NoteAdded","data":{"body":"Zoë ✓"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}]}`))
	f.Add([]byte(`{"expectedVersion":"no-stream","events":[{"type":"CustomerRegistered","data":{"customerId":"0190f5a4-7b9e-7c3a-9d2e-4b1f6a8c0d11","name":"Ana"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}]}`))
	f.Add([]byte(`{"events":[{"type":"PurchaseCompleted","data":{"lines":[{"quantity":-1}]},"metadata":{}}]}`))
	f.Add([]byte(`{"events":[]}`))
	f.Add([]byte(`{"expectedVersion":-7,"events":null}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`{"events":[{"type":"NoteAdded","data":"x"}]} trailing`))
	f.Add([]byte(`{"expectedVersion":0,"expectedVersion":"any","events":[{"type":"NoteAdded","data":{"body":"x"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}]}`))
	f.Add([]byte(`{"events":[{"type":"NoteAdded","data":{"body":"\udc00x"},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm"}}]}`))
	f.Add([]byte(``))
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		expected, tps, err := DecodeAppendRequest(bytes.NewReader(body), now)
		if err != nil {
			if p, internal := problemFor(err); internal || p.Status < 400 || p.Status > 499 {
				t.Fatalf("error %v maps to %d (internal %v)", err, p.Status, internal)
			}
			return
		}
		if err := strictjson.Check(body); err != nil {
			t.Fatalf("accepted a body strictjson refuses: %v", err)
		}
		if !expected.Valid() {
			t.Fatalf("accepted invalid expected version %d", int64(expected))
		}
		if len(tps) == 0 || len(tps) > maxEvents {
			t.Fatalf("accepted %d events", len(tps))
		}
		for i, tp := range tps {
			if _, _, _, err := domain.Encode(tp.Event); err != nil {
				t.Fatalf("event %d accepted but not encodable: %v", i, err)
			}
			if err := tp.Metadata.Validate(now); err != nil {
				t.Fatalf("event %d metadata accepted but invalid: %v", i, err)
			}
		}
	})
}
