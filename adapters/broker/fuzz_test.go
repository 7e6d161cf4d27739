package broker

import (
	"errors"
	"testing"

	"github.com/cxledger/cxledger/adapters/strictjson"
	"github.com/cxledger/cxledger/domain"
	"github.com/google/uuid"
)

// FuzzDecodeMessage: a broker payload is outside input from any producer.
// Decoding never panics, fails only with ErrInvalidMessage, and what it
// accepts addresses exactly one customer and names a type and an event,
// which domain.Parse then reads without panicking.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"identifier":{"kind":"email","value":"ana@example.com"},"type":"CallLogged","event":{"direction":"inbound","durationSeconds":60,"agent":"user:marta","outcome":"connected"}}`,
		`{"customerId":"0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f","type":"NoteAdded","event":{"body":"Zoë ✓"},"occurredAt":"2026-01-02T10:00:00Z","actor":"service:crm","channel":"web","correlationId":"c-1"}`,
		`{"customerId":"00000000-0000-0000-0000-000000000000","type":"NoteAdded","event":{"body":"x"}}`,
		`{"identifier":{"kind":"phone","value":"+34 911 23 45 67"},"name":"Bruno","type":"CustomerRegistered","event":{}}`,
		`{"customerId":"0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f","type":"NoteAdded","event":{"body":"x"}} {}`,
		`{"type":"NoteAdded","event":null,"extra":1}`,
		`{"customerId":"0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f","type":"NoteAdded","TYPE":"CallLogged","event":{"body":"x"}}`,
		`{"customerId":"0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f","type":"NoteAdded","event":{"body":"\udc00"}}`,
		`[`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		tp, err := decodeMessage(payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v is not ErrInvalidMessage", err)
			}
			return
		}
		if (tp.CustomerID == nil) == (tp.Identifier == nil) || (tp.CustomerID != nil && *tp.CustomerID == uuid.Nil) {
			t.Fatalf("accepted a message addressing no customer or two: %s", payload)
		}
		if tp.Type == "" || len(tp.Event) == 0 {
			t.Fatalf("accepted a message without type or event: %s", payload)
		}
		if err := strictjson.Check(payload); err != nil {
			t.Fatalf("accepted a payload strictjson refuses: %v", err)
		}
		if _, err := domain.Parse(tp.Type, tp.Event); err != nil && !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrUnknownType) {
			t.Fatalf("domain.Parse: %v", err)
		}
	})
}
