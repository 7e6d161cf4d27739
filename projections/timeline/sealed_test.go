package timeline_test

import (
	"strings"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/timeline"
)

// A sealed value is quoted whole, however long: clipped, it would not
// open. The edge clips the plaintext with Clip once revealed.
func TestSummarizeKeepsTokensWhole(t *testing.T) {
	token := domain.SealedPrefix + zoe.String() + ":" + strings.Repeat("Ab9_-", 40)
	for _, c := range []struct {
		ev             domain.Event
		full, redacted string
	}{
		{domain.NoteAdded{Body: token}, "Note: " + token, "Note"},
		{domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: token}, "Email linked: " + token, "Email linked"},
		{domain.TicketOpened{TicketID: ticket1, Subject: token, Priority: domain.PriorityHigh, Channel: domain.TicketEmail}, "Ticket opened: " + token + " (high, email)", "Ticket opened (high, email)"},
		{domain.SurveyAnswered{Survey: "nps", NPS: new(9), Comment: token}, "Survey nps answered: NPS 9 — " + token, "Survey nps answered: NPS 9"},
		{domain.ProfileUpdated{Address: new(token)}, "Profile updated: address", "Profile updated: address"},
	} {
		full, redacted := timeline.Summarize(domain.Envelope{Type: c.ev.EventType(), Event: c.ev})
		if full != c.full || redacted != c.redacted {
			t.Errorf("Summarize(%T) = %q, %q; want %q, %q", c.ev, full, redacted, c.full, c.redacted)
		}
	}
	if got := timeline.Clip("  first line\nsecond"); got != "first line …" {
		t.Errorf("Clip of plaintext = %q", got)
	}
	if got := timeline.Clip(" " + token + " "); got != token {
		t.Errorf("Clip of a token = %q", got)
	}
}
