package domain

import (
	"net/url"
	"strings"
	"time"
)

// Interaction event type names.
const (
	TypeCallLogged           = "CallLogged"
	TypeEmailSent            = "EmailSent"
	TypeEmailReceived        = "EmailReceived"
	TypeEmailOpened          = "EmailOpened"
	TypeEmailClicked         = "EmailClicked"
	TypeChatConversationHeld = "ChatConversationHeld"
	TypeMeetingHeld          = "MeetingHeld"
	TypeSMSSent              = "SMSSent"
	TypeNoteAdded            = "NoteAdded"
)

// maxDuration bounds call, chat and meeting durations: longer is a unit bug.
const maxDuration = int64(24 * time.Hour / time.Second)

// CallDirection says who placed a call.
type CallDirection string

// Call directions.
const (
	CallInbound  CallDirection = "inbound"
	CallOutbound CallDirection = "outbound"
)

var callDirections = []CallDirection{CallInbound, CallOutbound}

// CallOutcome is how a call ended.
type CallOutcome string

// Call outcomes.
const (
	CallConnected CallOutcome = "connected"
	CallNoAnswer  CallOutcome = "no_answer"
	CallBusy      CallOutcome = "busy"
	CallVoicemail CallOutcome = "voicemail"
	CallFailed    CallOutcome = "failed"
	CallDropped   CallOutcome = "dropped"
)

var callOutcomes = []CallOutcome{CallConnected, CallNoAnswer, CallBusy, CallVoicemail, CallFailed, CallDropped}

// CallLogged records a phone call. Schema v2 stores the duration in whole
// seconds; v1 stored "mm:ss" (see upcast.go).
type CallLogged struct {
	Direction       CallDirection `json:"direction"`
	DurationSeconds int64         `json:"durationSeconds"`
	Agent           string        `json:"agent"`
	Outcome         CallOutcome   `json:"outcome"`
	Summary         string        `json:"summary,omitempty"`
}

// EventType implements Event.
func (CallLogged) EventType() string { return TypeCallLogged }

// Validate implements Event.
func (e CallLogged) Validate() error {
	var v validator
	enum(&v, "direction", e.Direction, true, callDirections)
	v.intRange("durationSeconds", e.DurationSeconds, 0, maxDuration)
	v.line("agent", e.Agent, true, maxName)
	enum(&v, "outcome", e.Outcome, true, callOutcomes)
	v.text("summary", e.Summary, false, maxText)
	return v.err()
}

// EmailSent records a message sent to the customer. MessageID is the
// RFC 5322 Message-ID that later opens, clicks and replies refer to.
type EmailSent struct {
	MessageID string `json:"messageId"`
	Subject   string `json:"subject"`
	From      string `json:"from"`
	To        string `json:"to"`
	Template  string `json:"template,omitempty"`
	Campaign  string `json:"campaign,omitempty"`
}

// EventType implements Event.
func (EmailSent) EventType() string { return TypeEmailSent }

// Validate implements Event.
func (e EmailSent) Validate() error {
	var v validator
	v.line("messageId", e.MessageID, true, 998)
	v.line("subject", e.Subject, false, maxSubject)
	v.email("from", e.From)
	v.email("to", e.To)
	v.line("template", e.Template, false, maxName)
	v.line("campaign", e.Campaign, false, maxName)
	return v.err()
}

// EmailReceived records a message from the customer; InReplyTo links it to
// one we sent.
type EmailReceived struct {
	MessageID string `json:"messageId"`
	Subject   string `json:"subject"`
	From      string `json:"from"`
	To        string `json:"to"`
	InReplyTo string `json:"inReplyTo,omitempty"`
}

// EventType implements Event.
func (EmailReceived) EventType() string { return TypeEmailReceived }

// Validate implements Event.
func (e EmailReceived) Validate() error {
	var v validator
	v.line("messageId", e.MessageID, true, 998)
	v.line("subject", e.Subject, false, maxSubject)
	v.email("from", e.From)
	v.email("to", e.To)
	v.line("inReplyTo", e.InReplyTo, false, 998)
	return v.err()
}

// EmailOpened records that the customer opened a message we sent.
type EmailOpened struct {
	MessageID string `json:"messageId"`
}

// EventType implements Event.
func (EmailOpened) EventType() string { return TypeEmailOpened }

// Validate implements Event.
func (e EmailOpened) Validate() error {
	var v validator
	v.line("messageId", e.MessageID, true, 998)
	return v.err()
}

// EmailClicked records that the customer followed a link of a message.
type EmailClicked struct {
	MessageID string `json:"messageId"`
	URL       string `json:"url"`
}

// EventType implements Event.
func (EmailClicked) EventType() string { return TypeEmailClicked }

// Validate implements Event.
func (e EmailClicked) Validate() error {
	var v validator
	v.line("messageId", e.MessageID, true, 998)
	v.url("url", e.URL)
	return v.err()
}

// ChatConversationHeld records a finished chat (web chat, WhatsApp, …).
// Agent is empty when a bot handled the whole conversation.
type ChatConversationHeld struct {
	ConversationID  string `json:"conversationId"`
	Agent           string `json:"agent,omitempty"`
	Messages        int64  `json:"messages"`
	DurationSeconds int64  `json:"durationSeconds"`
	Summary         string `json:"summary,omitempty"`
}

// EventType implements Event.
func (ChatConversationHeld) EventType() string { return TypeChatConversationHeld }

// Validate implements Event.
func (e ChatConversationHeld) Validate() error {
	var v validator
	v.line("conversationId", e.ConversationID, true, maxName)
	v.line("agent", e.Agent, false, maxName)
	v.intRange("messages", e.Messages, 1, 100_000)
	v.intRange("durationSeconds", e.DurationSeconds, 0, maxDuration)
	v.text("summary", e.Summary, false, maxText)
	return v.err()
}

// MeetingHeld records a meeting with the customer; its start is the
// metadata's OccurredAt.
type MeetingHeld struct {
	Title           string   `json:"title"`
	DurationSeconds int64    `json:"durationSeconds"`
	Location        string   `json:"location,omitempty"`
	Attendees       []string `json:"attendees,omitempty"`
	Notes           string   `json:"notes,omitempty"`
}

// EventType implements Event.
func (MeetingHeld) EventType() string { return TypeMeetingHeld }

// Validate implements Event.
func (e MeetingHeld) Validate() error {
	var v validator
	v.line("title", e.Title, true, maxSubject)
	v.intRange("durationSeconds", e.DurationSeconds, 1, maxDuration)
	v.line("location", e.Location, false, maxName)
	if len(e.Attendees) > maxAttendee {
		v.addf("attendees", "at most %d attendees", maxAttendee)
	} else {
		for i, a := range e.Attendees {
			v.line(index("attendees", i), a, true, maxName)
		}
	}
	v.text("notes", e.Notes, false, maxText)
	return v.err()
}

// SMSSent records a text message sent to the customer's phone. Campaign,
// when set, makes it a marketing message that needs SMS marketing consent.
type SMSSent struct {
	To       string `json:"to"`
	Body     string `json:"body"`
	Campaign string `json:"campaign,omitempty"`
}

// EventType implements Event.
func (SMSSent) EventType() string { return TypeSMSSent }

// Validate implements Event.
func (e SMSSent) Validate() error {
	var v validator
	if _, err := NormalizePhone(e.To); err != nil {
		v.addErr("to", err)
	}
	v.text("body", e.Body, true, 1600) // ten concatenated segments
	v.line("campaign", e.Campaign, false, maxName)
	return v.err()
}

// NoteAdded records a free-text note an agent wrote about the customer.
type NoteAdded struct {
	Body string `json:"body"`
}

// EventType implements Event.
func (NoteAdded) EventType() string { return TypeNoteAdded }

// Validate implements Event.
func (e NoteAdded) Validate() error {
	var v validator
	v.text("body", e.Body, true, maxText)
	return v.err()
}

// canonical reads an empty attendee list as none.
func (e MeetingHeld) canonical() Event {
	if len(e.Attendees) == 0 {
		e.Attendees = nil
	}
	return e
}

func (v *validator) email(field, s string) {
	if _, err := NormalizeEmail(s); err != nil {
		v.addErr(field, err)
	}
}

// url accepts absolute http and https links only: anything else in a
// click is tracking noise or an injection attempt.
func (v *validator) url(field, s string) {
	v.line(field, s, true, maxURL)
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, " \t") {
		v.add(field, "must be an absolute http or https URL")
	}
}
