package domain

import (
	"errors"
	"strings"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrInvalid: an event, its metadata or an identifier is malformed. The
	// error is, or contains, a *ValidationError naming the field.
	ErrInvalid = errors.New("invalid")
	// ErrRejected: a well-formed event is not allowed by the customer's
	// history. The error is a *RejectionError naming the entity.
	ErrRejected = errors.New("rejected")
	// ErrForbidden: the writer's role may not append the event's type (see
	// MayAppend). The error is a *ForbiddenError naming who may.
	ErrForbidden = errors.New("forbidden")
	// ErrUnknownType: the event type name is not one the codec knows.
	ErrUnknownType = errors.New("unknown event type")
	// ErrUnsupportedSchemaVersion: stored data claims a schema version newer
	// than this build knows (written by a newer release) or one without an
	// upcaster. Reading it as the current schema could misread amounts.
	ErrUnsupportedSchemaVersion = errors.New("unsupported schema version")
)

// ValidationError says which field broke which rule. Field is the JSON path
// of the field as the client sent it ("lines[2].quantity",
// "metadata.occurredAt") so that an HTTP layer can report it verbatim.
type ValidationError struct {
	Field string
	Rule  string
}

// Error reads "invalid <field>: <rule>".
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return "invalid: " + e.Rule
	}
	return "invalid " + e.Field + ": " + e.Rule
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// ValidationErrors lists every problem of one value, in field order, so that
// a client can fix them all at once. errors.As(err, &ve) with a
// *ValidationError finds the first; errors.Is(err, ErrInvalid) holds.
type ValidationErrors []*ValidationError

// Error joins every problem with "; ".
func (es ValidationErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap exposes each problem to errors.Is and errors.As.
func (es ValidationErrors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// RejectionError says which entity of the customer's history forbids an
// event, and by which rule. Entity is "customer", "consent", "ticket",
// "opportunity", "order", "refund" or "loyalty"; ID is the entity's id
// when it has one.
type RejectionError struct {
	Type   string // the rejected event's type
	Entity string
	ID     string
	Rule   string
}

// Error reads "rejected <type>: <entity> <id>: <rule>".
func (e *RejectionError) Error() string {
	entity := e.Entity
	if e.ID != "" {
		entity += " " + e.ID
	}
	return "rejected " + e.Type + ": " + entity + ": " + e.Rule
}

// Unwrap makes errors.Is(err, ErrRejected) true.
func (e *RejectionError) Unwrap() error { return ErrRejected }
