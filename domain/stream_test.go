package domain

import (
	"errors"
	"testing"

	"github.com/google/uuid"
)

func TestStreamID(t *testing.T) {
	if got, want := StreamID(customerID), "customer-15cf8f44-2ec6-441c-9f2e-229a8d221eaf"; got != want {
		t.Fatalf("StreamID = %q, want %q", got, want)
	}
	for _, id := range []uuid.UUID{customerID, otherID, uuid.New(), uuid.Must(uuid.NewV7())} {
		got, err := ParseStreamID(StreamID(id))
		if err != nil || got != id {
			t.Errorf("ParseStreamID(StreamID(%s)) = %s, %v", id, got, err)
		}
	}
}

func TestParseStreamIDRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"customer-",
		"customer",
		"15cf8f44-2ec6-441c-9f2e-229a8d221eaf", // no prefix
		"ticket-15cf8f44-2ec6-441c-9f2e-229a8d221eaf",   // other prefix
		"Customer-15cf8f44-2ec6-441c-9f2e-229a8d221eaf", // case
		"customer-15cf8f44",                             // what splitting on '-' would keep
		"customer-15CF8F44-2EC6-441C-9F2E-229A8D221EAF", // non-canonical
		"customer-15cf8f442ec6441c9f2e229a8d221eaf",     // non-canonical
		"customer-{15cf8f44-2ec6-441c-9f2e-229a8d221eaf}",
		"customer-urn:uuid:15cf8f44-2ec6-441c-9f2e-229a8d221eaf",
		"customer-15cf8f44-2ec6-441c-9f2e-229a8d221eaf-x",
		"customer-00000000-0000-0000-0000-000000000000",
	} {
		id, err := ParseStreamID(s)
		var ve *ValidationError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) || ve.Field != "stream" {
			t.Errorf("ParseStreamID(%q) = %s, %v; want an error naming stream", s, id, err)
		}
	}
}
