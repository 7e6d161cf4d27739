package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTypesCoverRegistryAndFixtures(t *testing.T) {
	types := Types()
	if !slices.IsSorted(types) {
		t.Errorf("Types() not sorted: %v", types)
	}
	fixtures := validEvents()
	if len(types) != len(fixtures) {
		t.Errorf("Types() has %d names, fixtures %d", len(types), len(fixtures))
	}
	for _, typ := range types {
		e, ok := fixtures[typ]
		if !ok {
			t.Errorf("no fixture for %s", typ)
			continue
		}
		if got := e.EventType(); got != typ {
			t.Errorf("fixture for %s reports type %s", typ, got)
		}
		// The registry's decoder must produce the struct of the same name.
		d := registry[typ]
		got, err := d.decode([]byte(`{}`), false)
		if err != nil || got.EventType() != typ {
			t.Errorf("registry decoder for %s produced %T, %v", typ, got, err)
		}
	}
}

// Stored type names are forever: this list may only grow.
func TestTypeNamesAreStable(t *testing.T) {
	want := []string{
		"CallLogged", "CampaignTouched", "ChatConversationHeld", "ConsentGranted", "ConsentWithdrawn",
		"CustomerForgotten", "CustomerRegistered", "EmailClicked", "EmailOpened", "EmailReceived",
		"EmailSent", "IdentifierLinked", "LeadCaptured", "MeetingHeld", "NoteAdded", "OpportunityLost",
		"OpportunityOpened", "OpportunityStageChanged", "OpportunityWon", "ProfileUpdated",
		"PurchaseCompleted", "RefundIssued", "SMSSent", "SurveyAnswered", "TicketClosed",
		"TicketOpened", "TicketReopened", "TicketResolved", "TicketUpdated",
	}
	for _, name := range want {
		if _, ok := registry[name]; !ok {
			t.Errorf("stored type name %q disappeared", name)
		}
	}
}

func TestValidEventsValidate(t *testing.T) {
	for typ, e := range validEvents() {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func TestValidationErrorShape(t *testing.T) {
	err := PurchaseCompleted{Amount: -5, Currency: "eur"}.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(err, ErrInvalid) false for %v", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "orderId" {
		t.Fatalf("errors.As first field = %+v, want orderId", ve)
	}
	var all ValidationErrors
	if !errors.As(err, &all) {
		t.Fatalf("errors.As ValidationErrors failed for %v", err)
	}
	var fields []string
	for _, e := range all {
		fields = append(fields, e.Field)
	}
	if want := []string{"orderId", "amount", "currency", "lines"}; !slices.Equal(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
	if !strings.Contains(err.Error(), "invalid amount: must not be negative") {
		t.Errorf("message %q does not name field and rule", err)
	}
	if errors.Is(err, ErrRejected) {
		t.Error("a validation error must not be a rejection")
	}
}
