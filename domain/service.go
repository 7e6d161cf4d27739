package domain

import "github.com/google/uuid"

// Service (ticket) event type names.
const (
	TypeTicketOpened   = "TicketOpened"
	TypeTicketUpdated  = "TicketUpdated"
	TypeTicketResolved = "TicketResolved"
	TypeTicketReopened = "TicketReopened"
	TypeTicketClosed   = "TicketClosed"
)

// TicketPriority orders the support queue.
type TicketPriority string

// Ticket priorities.
const (
	PriorityLow    TicketPriority = "low"
	PriorityNormal TicketPriority = "normal"
	PriorityHigh   TicketPriority = "high"
	PriorityUrgent TicketPriority = "urgent"
)

var ticketPriorities = []TicketPriority{PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent}

// TicketChannel is where a ticket came from.
type TicketChannel string

// Ticket channels.
const (
	TicketEmail  TicketChannel = "email"
	TicketPhone  TicketChannel = "phone"
	TicketChat   TicketChannel = "chat"
	TicketWeb    TicketChannel = "web"
	TicketSocial TicketChannel = "social"
	TicketStore  TicketChannel = "store"
)

var ticketChannels = []TicketChannel{TicketEmail, TicketPhone, TicketChat, TicketWeb, TicketSocial, TicketStore}

// TicketStatus is where a ticket stands. Resolved and closed are reached
// only through TicketResolved and TicketClosed, never by TicketUpdated, so
// that every resolution carries its own event.
type TicketStatus string

// Ticket statuses.
const (
	StatusOpen            TicketStatus = "open"
	StatusInProgress      TicketStatus = "in_progress"
	StatusWaitingCustomer TicketStatus = "waiting_on_customer"
	StatusWaitingThird    TicketStatus = "waiting_on_third_party"
	StatusResolved        TicketStatus = "resolved"
	StatusClosed          TicketStatus = "closed"
)

// updatableStatuses are the statuses TicketUpdated may set.
var updatableStatuses = []TicketStatus{StatusOpen, StatusInProgress, StatusWaitingCustomer, StatusWaitingThird}

// TicketOpened records a new support ticket.
type TicketOpened struct {
	TicketID    uuid.UUID      `json:"ticketId"`
	Subject     string         `json:"subject"`
	Priority    TicketPriority `json:"priority"`
	Channel     TicketChannel  `json:"channel"`
	Description string         `json:"description,omitempty"`
}

// EventType implements Event.
func (TicketOpened) EventType() string { return TypeTicketOpened }

// Validate implements Event.
func (e TicketOpened) Validate() error {
	var v validator
	v.id("ticketId", e.TicketID)
	v.line("subject", e.Subject, true, maxSubject)
	enum(&v, "priority", e.Priority, true, ticketPriorities)
	enum(&v, "channel", e.Channel, true, ticketChannels)
	v.text("description", e.Description, false, maxText)
	return v.err()
}

// TicketUpdated changes an open ticket. Nil fields are unchanged; an empty
// Assignee unassigns. FirstResponse marks the update that answered the
// customer for the first time (the SLA clock stops at its OccurredAt).
type TicketUpdated struct {
	TicketID      uuid.UUID       `json:"ticketId"`
	Status        *TicketStatus   `json:"status,omitempty"`
	Priority      *TicketPriority `json:"priority,omitempty"`
	Assignee      *string         `json:"assignee,omitempty"`
	Comment       string          `json:"comment,omitempty"`
	FirstResponse bool            `json:"firstResponse,omitempty"`
}

// EventType implements Event.
func (TicketUpdated) EventType() string { return TypeTicketUpdated }

// Validate implements Event.
func (e TicketUpdated) Validate() error {
	var v validator
	v.id("ticketId", e.TicketID)
	if e.Status == nil && e.Priority == nil && e.Assignee == nil && e.Comment == "" && !e.FirstResponse {
		v.add("", "at least one of status, priority, assignee, comment, firstResponse is required")
	}
	if e.Status != nil {
		if *e.Status == StatusResolved || *e.Status == StatusClosed {
			v.add("status", "use TicketResolved or TicketClosed to resolve or close")
		} else {
			enum(&v, "status", *e.Status, true, updatableStatuses)
		}
	}
	if e.Priority != nil {
		enum(&v, "priority", *e.Priority, true, ticketPriorities)
	}
	if e.Assignee != nil {
		v.line("assignee", *e.Assignee, false, maxName)
	}
	v.text("comment", e.Comment, false, maxText)
	return v.err()
}

// TicketResolved records that the customer's problem was solved.
type TicketResolved struct {
	TicketID   uuid.UUID `json:"ticketId"`
	Resolution string    `json:"resolution"`
}

// EventType implements Event.
func (TicketResolved) EventType() string { return TypeTicketResolved }

// Validate implements Event.
func (e TicketResolved) Validate() error {
	var v validator
	v.id("ticketId", e.TicketID)
	v.text("resolution", e.Resolution, true, maxText)
	return v.err()
}

// TicketReopened brings a resolved or closed ticket back to open.
type TicketReopened struct {
	TicketID uuid.UUID `json:"ticketId"`
	Reason   string    `json:"reason"`
}

// EventType implements Event.
func (TicketReopened) EventType() string { return TypeTicketReopened }

// Validate implements Event.
func (e TicketReopened) Validate() error {
	var v validator
	v.id("ticketId", e.TicketID)
	v.text("reason", e.Reason, true, maxText)
	return v.err()
}

// TicketClosed ends a ticket; only TicketReopened may follow.
type TicketClosed struct {
	TicketID uuid.UUID `json:"ticketId"`
	Reason   string    `json:"reason,omitempty"`
}

// EventType implements Event.
func (TicketClosed) EventType() string { return TypeTicketClosed }

// Validate implements Event.
func (e TicketClosed) Validate() error {
	var v validator
	v.id("ticketId", e.TicketID)
	v.text("reason", e.Reason, false, maxText)
	return v.err()
}
