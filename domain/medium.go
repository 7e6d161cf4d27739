package domain

import "strings"

// Medium names the medium an event used: where the payload fixes it (a
// call is by phone, a campaign touch or ticket names its channel) that
// wins, otherwise the metadata's channel, otherwise a default for chats and
// meetings, otherwise "unknown". Every read model that counts touches per
// channel uses it, so the customer view, the timeline and the analytics
// agree.
func Medium(e Event, metadataChannel string) string {
	switch ev := e.(type) {
	case CallLogged:
		return "phone"
	case EmailSent, EmailReceived, EmailOpened, EmailClicked:
		return "email"
	case SMSSent:
		return "sms"
	case CampaignTouched:
		return string(ev.Channel)
	case TicketOpened:
		return string(ev.Channel)
	}
	if ch := strings.TrimSpace(metadataChannel); ch != "" {
		return ch
	}
	switch e.(type) {
	case ChatConversationHeld:
		return "chat"
	case MeetingHeld:
		return "meeting"
	}
	return "unknown"
}
