// Package importer loads customer touchpoints from files (NDJSON and CSV)
// into the ledger, through the shared write path (adapters/ledger), so that
// an imported event is validated and decided against the customer's history
// exactly like one sent over HTTP.
//
// Imports are idempotent and resumable without any state of their own:
// every row's event id is derived from the batch key (a hash of the file's
// content, or a name the user gives) and the row's line number, so running
// the same import again re-appends the same ids, which the store recognises
// as retries and writes nothing for. An interrupted import is resumed by
// running it again.
//
// A row naming an identifier nobody holds registers a customer whose id
// derives from the identifier, so that every row, run and batch naming it
// finds the same one. With a keyring (Config.Keys) the id is the keyed,
// generational one broker ingest derives (keyring.DerivedCustomerIDs):
// nobody can recompute it from an address, and once its customer is
// forgotten the identifier derives a new customer's id, so that new rows
// with a forgotten customer's address create a new customer. A re-run of
// a batch across such an erasure still appends nothing: rows it had
// imported for the forgotten customer are recognised by their event ids
// in the forgotten stream and counted as Summary.Forgotten, neither
// refused nor re-attached to the new customer; rows it had not imported
// yet (an interrupted run) are new touchpoints and go to the new
// customer. Without a keyring the id is the unkeyed CustomerIDFor.
//
// Bad rows (malformed JSON or CSV, unknown types, invalid fields, rejected
// by an invariant, invalid UTF-8, too long) are reported with their line
// number and nothing is written for them; the other rows proceed.
package importer

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/google/uuid"
)

// Row is one decoded input row: a touchpoint whose customer may still have
// to be resolved from an identifier.
type Row struct {
	// Line is the 1-based line of the row in its file (for CSV, the line
	// the record starts on).
	Line int
	// ID is the event id the row gave explicitly, or uuid.Nil for one
	// derived from the batch and line.
	ID uuid.UUID
	// CustomerID is the customer the row names, or uuid.Nil when it names
	// an identifier instead.
	CustomerID uuid.UUID
	// Identifier finds (or creates) the customer when CustomerID is nil.
	Identifier *Identifier
	// CustomerName is the name given to a customer the import registers
	// for an unknown identifier; empty means the identifier's value.
	CustomerName string
	// Event is the parsed, validated payload.
	Event domain.Event
	// Metadata is complete: defaults (actor, channel) are already applied
	// and it passed Metadata.Validate.
	Metadata domain.Metadata

	// input is the row as read (at most MaxEchoBytes), echoed when the
	// append rejects it.
	input string
	// derivedRegistration marks a CustomerRegistered row naming an
	// identifier whose payload left customerId out: decoding filled in a
	// stand-in (registrationID), which the import replaces by the customer
	// the identifier resolves to.
	derivedRegistration bool
	// gone are forgotten customers an earlier run may have imported the
	// row for (see Importer.importedBefore); set when the row is resolved.
	gone []uuid.UUID
}

// Identifier is an e-mail address, phone number or external id naming a
// customer in an input row.
type Identifier struct {
	Kind domain.IdentifierKind
	// Value is the identifier as written in the input; it is what an
	// IdentifierLinked event made by the import stores.
	Value string
	// Normalized is domain.NormalizeIdentifier's form, the key customers
	// are resolved by.
	Normalized string
}

// Defaults completes rows that leave metadata out, and is the clock their
// metadata is validated against.
type Defaults struct {
	// Actor records rows without an actor, "import:<batch>" by convention.
	Actor string
	// Channel is the channel of rows without one (may be empty).
	Channel string
	// Now is the validating clock (default time.Now): occurredAt may lie
	// at most domain.MaxClockSkew after it.
	Now func() time.Time
}

func (d Defaults) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

// complete applies the defaults to md and validates it.
func (d Defaults) complete(md domain.Metadata) (domain.Metadata, error) {
	if md.Actor == "" {
		md.Actor = d.Actor
	}
	if md.Channel == "" {
		md.Channel = d.Channel
	}
	if err := md.Validate(d.now()); err != nil {
		return domain.Metadata{}, err
	}
	return md, nil
}

// RowError says why one input row was not imported. It is what Source.Next
// returns for a row that cannot be decoded, and what an import reports for
// every rejected row.
type RowError struct {
	// Line is the 1-based line of the row.
	Line int
	// Input is the row as read (truncated to MaxEchoBytes), so that a
	// rejects file can be fixed and imported again.
	Input string
	// Err is the reason: it wraps domain.ErrInvalid (with a
	// *domain.ValidationError naming the field), domain.ErrUnknownType,
	// domain.ErrRejected, domain.ErrForbidden (a type Config.Role may not
	// append), or a store sentinel such as
	// eventstore.ErrDuplicateEvent.
	Err error
}

// MaxEchoBytes bounds how much of a bad row a RowError keeps.
const MaxEchoBytes = 4096

// Error reads "line <n>: <reason>".
func (e *RowError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *RowError) Unwrap() error { return e.Err }

// Field returns the name of the offending field when the reason names
// one ("event.amount", "occurredAt"), or "".
func (e *RowError) Field() string {
	var ve *domain.ValidationError
	if errors.As(e.Err, &ve) {
		return ve.Field
	}
	return ""
}

func rowError(line int, input []byte, err error) *RowError {
	return &RowError{Line: line, Input: echo(input), Err: err}
}

// echo keeps the start of a row for reports.
func echo(input []byte) string {
	if len(input) > MaxEchoBytes {
		input = input[:MaxEchoBytes]
	}
	return string(input)
}

// invalid is a *domain.ValidationError for field.
func invalid(field, format string, args ...any) error {
	return &domain.ValidationError{Field: field, Rule: fmt.Sprintf(format, args...)}
}

// prefixed returns err with every validation field prefixed by prefix
// ("amount" becomes "event.amount"), so that a report names the field as
// it stands in the input row.
func prefixed(prefix string, err error) error {
	join := func(f string) string {
		if f == "" {
			return prefix
		}
		return prefix + "." + f
	}
	var ves domain.ValidationErrors
	if errors.As(err, &ves) {
		out := make(domain.ValidationErrors, len(ves))
		for i, ve := range ves {
			out[i] = &domain.ValidationError{Field: join(ve.Field), Rule: ve.Rule}
		}
		return out
	}
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return &domain.ValidationError{Field: join(ve.Field), Rule: ve.Rule}
	}
	return err
}

// Namespaces of the name-based (version 5) uuids the importer derives.
// They are part of every derived id ever stored: never change them.
var (
	eventNamespace    = uuid.MustParse("8f0c6e3a-5b1d-4c1e-9a57-2d3f6b0e7c41")
	customerNamespace = uuid.MustParse("c2a9d8e4-1f7b-4e0a-b3c6-5e8d9f1a2b73")
)

// EventID is the id of the event imported from line of batch, and suffix
// tells apart the events one row may produce ("" for the row's own event,
// "registered" and "linked" for those registering a new customer). The
// same batch and line always give the same id, which is what makes a
// repeated import write nothing.
func EventID(batch string, line int, suffix string) uuid.UUID {
	name := batch + "\x00" + strconv.Itoa(line)
	if suffix != "" {
		name += "\x00" + suffix
	}
	return uuid.NewSHA1(eventNamespace, []byte(name))
}

// CustomerIDFor is the id of the customer an import without a keyring
// (Config.Keys nil: plaintext mode, tests) registers for an identifier
// nobody holds yet: an unkeyed uuid v5 of the normalised identifier, so
// that every row, run and batch naming it finds the same customer. Anyone
// can recompute it from a guessed address, and it never changes, so a
// forgotten customer's address would lead back to the erased stream: with
// a keyring the import derives keyed ids instead
// (keyring.DerivedCustomerIDs, as broker ingest does).
func CustomerIDFor(kind domain.IdentifierKind, normalized string) uuid.UUID {
	return uuid.NewSHA1(customerNamespace, []byte(string(kind)+":"+normalized))
}

// newIdentifier normalises an identifier of a row.
func newIdentifier(field string, kind domain.IdentifierKind, value string) (*Identifier, error) {
	norm, err := domain.NormalizeIdentifier(kind, value)
	if err != nil {
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			if ve.Field == "kind" {
				return nil, &domain.ValidationError{Field: field + ".kind", Rule: ve.Rule}
			}
			return nil, &domain.ValidationError{Field: field + ".value", Rule: ve.Rule}
		}
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return &Identifier{Kind: kind, Value: value, Normalized: norm}, nil
}
