package eventstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestRecordJSONRoundTrip(t *testing.T) {
	r := Record{
		ID:         uuid.MustParse("0b6d3f5e-8a34-4b8e-9d61-1f0c9a7e2b11"),
		Stream:     "customer-5f1c2a9e-3b7d-4c21-8f0e-6a2d9b4c7e13",
		Type:       "PurchaseCompleted",
		Version:    41,
		Position:   90210,
		RecordedAt: time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC),
		Data:       []byte(`{"orderId":"o-1","amount":{"amountMinor":1250,"currency":"EUR"},"note":"Zoë, 東京 <b>&</b>"}`),
		Metadata: Metadata{
			OccurredAt: time.Date(2026, 3, 1, 9, 29, 58, 0, time.UTC), Actor: "service:shop",
			Channel: "web", CorrelationID: "c-77", CausationID: "cmd-9", SchemaVersion: 2,
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["data"]) != string(r.Data) {
		t.Fatalf("data not inline: %s", m["data"])
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, r)
	}
}

func TestCheckExpected(t *testing.T) {
	tests := []struct {
		expected ExpectedVersion
		current  int64
		ok       bool
	}{
		{Any, -1, true}, {Any, 7, true},
		{NoStream, -1, true}, {NoStream, 0, false},
		{StreamExists, -1, false}, {StreamExists, 0, true},
		{Exact(0), 0, true}, {Exact(0), -1, false}, {Exact(3), 4, false},
	}
	for _, tt := range tests {
		err := CheckExpected("s", tt.expected, tt.current)
		if (err == nil) != tt.ok {
			t.Errorf("CheckExpected(%s, %d) = %v, want ok=%v", tt.expected, tt.current, err, tt.ok)
		}
		if err != nil {
			var vc *VersionConflictError
			if !errors.As(err, &vc) || !errors.Is(err, ErrWrongExpectedVersion) || vc.Actual != tt.current || vc.Expected != tt.expected {
				t.Errorf("CheckExpected(%s, %d): conflict error %#v lacks versions", tt.expected, tt.current, err)
			}
		}
	}
}
