// Package domain is cxledger's pure model: the customer event types, their
// validation and JSON codec, the Customer aggregate that enforces the
// invariants of one customer stream, and the identity normalisation the
// identity index relies on.
//
// It does no I/O and imports nothing else of cxledger (not even eventstore):
// adapters convert eventstore records with domain.Metadata(record.Metadata)
// and Decode, and the domain never learns how events are stored.
//
// Three error sentinels let callers branch without parsing messages:
//
//   - ErrInvalid: an event or its metadata breaks a rule on its own (a
//     *ValidationError names the JSON field and the rule; HTTP 422).
//   - ErrRejected: a valid event breaks an invariant of the customer's
//     history (a *RejectionError names the entity and the rule; HTTP 409).
//   - ErrUnknownType: an event type name the codec does not know.
//
// Event type names are explicit constants and never derived from Go type
// names, so renaming a Go type can never change stored history.
package domain
