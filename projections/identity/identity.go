// Package identity is the identity index: it resolves an e-mail address, a
// phone number or an external system id back to the customer it was linked
// to, so that a service holding any one identifier finds the customer.
//
// # Sources
//
// Only IdentifierLinked feeds the index. CustomerRegistered and
// ProfileUpdated carry no e-mail or phone field, and the addresses of
// interaction events (EmailReceived.From, SMSSent.To) are deliberately not
// indexed: a forwarded mail or a shared family phone would silently attach
// someone else's address to the customer. An address becomes an identifier
// only when somebody links it.
//
// Values are keyed in their canonical form (domain.NormalizeIdentifier:
// trimmed, lower-case e-mail, E.164 phone, "system:id" with a lower-case
// system) and queries normalise their input the same way. A stored value
// that no longer normalises (rules tighten over time) is skipped: it cannot
// be keyed, and history is not an error.
//
// # Sealed values
//
// With Keys (adapters/keyring), IdentifierLinked values are stored sealed
// (a token, see domain.PersonalFields), which cannot be normalised, and the
// index must hold no e-mail address or phone number either. Apply then
// opens the token in memory, normalises the plaintext and keys the index by
// its blind index (Keys.Blind: a keyed hash), and stores the value as it
// was stored in the event (the token) for display; Lookup blinds the
// queried value the same way. A token that no longer opens — the customer
// was forgotten and the key destroyed — is not indexed, so that a rebuild
// after an erasure leaves the forgotten identifiers out, and a new
// touchpoint with the same address finds nobody. Without Keys (nil) values
// are plaintext and keyed by their canonical form. An index is built and
// queried with the same Keys.
//
// # One identifier, several customers
//
// Last link wins: Lookup returns the customer whose link came last in the
// global log (highest position), because identifiers get reassigned — a
// phone number is recycled, a work address moves to a successor — and the
// newest link is the best guess. The index still keeps every customer that
// claims the identifier (Links), oldest first, so that callers can detect
// and report the ambiguity, and so that when the newest claimant is
// forgotten the previous one owns the identifier again instead of the
// identifier vanishing. Log order, not occurred-at, decides: it is the
// order in which the ledger learned the links and is identical on every
// replay.
//
// # Erasure
//
// CustomerForgotten drops every identifier of the customer (found through
// the per-customer list), and marks the customer forgotten so that any
// later IdentifierLinked of that stream (impossible through the aggregate,
// but possible in imported history) is ignored rather than resurrecting
// personal data.
//
// # Key layout
//
// Keys are strings compared as bytes; ids are canonical lower-case uuids.
//
//	v/<kind>/<value>            claim: every customer linking the value, oldest first
//	c/<customer>/<kind>/<value> one identifier of a customer
//	f/<customer>                erasure marker, no personal data
//
// <value> is the canonical value (with Keys, its blind index), or "#" and
// its SHA-256 in hex when it is longer than 512 bytes (backends cap keys at
// 1024 bytes).
//
// Kinds are a fixed set without '/', so "v/email/" and "c/<customer>/"
// are exact prefixes of one kind and one customer; keys are never parsed
// back, every value carries its own fields.
package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Name is the read model's name.
const Name = "identity"

// Version is the read model's schema version; bump it when the key layout
// or a stored value changes, so that the engine rebuilds the index.
// Version 2 keys identifiers by their blind index when the ledger has a
// keyring.
const Version = 2

// Link is one customer's claim on an identifier.
type Link struct {
	CustomerID uuid.UUID `json:"customerId"`
	// LinkedAt is when the latest link happened in the world (the event's
	// OccurredAt); a re-link of the same identifier moves it forward.
	LinkedAt time.Time `json:"linkedAt"`
	// Position is the global log position of the latest link; the link
	// with the highest position owns the identifier.
	Position uint64 `json:"position"`
}

// claim is the value at v/<kind>/<value>.
type claim struct {
	Kind  domain.IdentifierKind `json:"kind"`
	Value string                `json:"value"`
	// Links lists every customer claiming the value, by ascending
	// position: the last one is the owner Lookup returns.
	Links []Link `json:"links"`
}

// Identifier is one identifier of a customer, as Identifiers lists it.
type Identifier struct {
	Kind domain.IdentifierKind `json:"kind"`
	// Value is the canonical form, the one Lookup matches; with Keys, its
	// blind index.
	Value string `json:"value"`
	// Entered is the value as it was entered in the latest link, for
	// display ("Zoe.Nguyen@Example.fr"); with Keys, as stored: sealed
	// (reveal it at the edge).
	Entered  string    `json:"entered"`
	LinkedAt time.Time `json:"linkedAt"`
	Position uint64    `json:"position"`
	// Owner reports whether Lookup of this identifier returns this
	// customer; false when a later link gave it to another customer.
	Owner bool `json:"owner"`
}

// entry is the value at c/<customer>/<kind>/<value>: an Identifier without
// Owner, which changes with other customers' links and is computed by
// Identifiers instead of being stored.
type entry struct {
	Kind     domain.IdentifierKind `json:"kind"`
	Value    string                `json:"value"`
	Entered  string                `json:"entered"`
	LinkedAt time.Time             `json:"linkedAt"`
	Position uint64                `json:"position"`
}

// forgotten is the value at f/<customer>.
type forgotten struct {
	At       time.Time `json:"at"`
	Position uint64    `json:"position"`
}

// maxKeyValue is the longest value written into a key as is. Durable
// backends accept keys of at most 1024 bytes, and an external id may reach
// 256 four-byte runes after its system name; a longer value is keyed by
// "#" and its SHA-256 instead. No canonical value starts with "#" and is
// that long (e-mails have an "@", phones start with "+", external ids with
// a letter), so the two forms never collide.
const maxKeyValue = 512

func keyValue(value string) string {
	if len(value) <= maxKeyValue {
		return value
	}
	sum := sha256.Sum256([]byte(value))
	return "#" + hex.EncodeToString(sum[:])
}

func claimKey(kind domain.IdentifierKind, value string) string {
	return "v/" + string(kind) + "/" + keyValue(value)
}

func customerPrefix(id uuid.UUID) string { return "c/" + id.String() + "/" }

func customerKey(id uuid.UUID, kind domain.IdentifierKind, value string) string {
	return customerPrefix(id) + string(kind) + "/" + keyValue(value)
}

func forgottenKey(id uuid.UUID) string { return "f/" + id.String() }

// Keys opens sealed identifier values and blinds canonical ones
// (adapters/keyring.Keyring). A nil Keys means plaintext values, keyed as
// they are.
type Keys interface {
	// Open returns the plaintext of a value stored in customer's
	// IdentifierLinked: the value itself when it is not sealed. ok is
	// false when it is sealed and cannot be opened any more (the customer
	// was forgotten). The error is the key store's, and stops the
	// projection until it is restarted.
	Open(ctx context.Context, customer uuid.UUID, stored string) (plain string, ok bool, err error)
	// Blind returns the index key of a canonical identifier: a keyed hash
	// that reveals nothing without the key.
	Blind(kind domain.IdentifierKind, canonical string) string
}

// projection implements projections.Projection.
type projection struct{ keys Keys }

// New returns the identity index projection; keys opens and blinds
// sealed values (nil: plaintext, see the package comment).
func New(keys Keys) projections.Projection { return projection{keys: keys} }

// Name implements projections.Projection.
func (projection) Name() string { return Name }

// Version implements projections.Projection.
func (projection) Version() int { return Version }

// Types implements projections.Projection: only links and erasures touch
// the index.
func (projection) Types() []string {
	return []string{domain.TypeIdentifierLinked, domain.TypeCustomerForgotten}
}

// Apply implements projections.Projection.
func (p projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	switch ev := e.Event.(type) {
	case domain.IdentifierLinked:
		cid, err := domain.ParseStreamID(e.Stream)
		if err != nil {
			return fmt.Errorf("identity: event %s: %w", e.ID, err)
		}
		return p.link(tx, cid, ev, e)
	case domain.CustomerForgotten:
		cid, err := domain.ParseStreamID(e.Stream)
		if err != nil {
			return fmt.Errorf("identity: event %s: %w", e.ID, err)
		}
		return forget(tx, cid, e)
	}
	return nil
}

func (p projection) link(tx *projections.Tx, cid uuid.UUID, ev domain.IdentifierLinked, e domain.Envelope) error {
	if _, gone, err := projections.Get[forgotten](tx, forgottenKey(cid)); err != nil || gone {
		return err
	}
	plain := ev.Value
	if p.keys != nil {
		var ok bool
		var err error
		if plain, ok, err = p.keys.Open(tx.Context(), cid, ev.Value); err != nil {
			return fmt.Errorf("identity: event %s: open identifier: %w", e.ID, err)
		} else if !ok {
			return nil // erased; see the package comment
		}
	}
	value, err := domain.NormalizeIdentifier(ev.Kind, plain)
	if err != nil {
		return nil // not keyable; see the package comment
	}
	if p.keys != nil {
		value = p.keys.Blind(ev.Kind, value)
	}
	c, err := projections.Load[claim](tx, claimKey(ev.Kind, value))
	if err != nil {
		return err
	}
	c.Kind, c.Value = ev.Kind, value
	c.Links = removeLink(c.Links, cid)
	c.Links = append(c.Links, Link{CustomerID: cid, LinkedAt: e.Metadata.OccurredAt, Position: e.Position})
	return projections.Put(tx, customerKey(cid, ev.Kind, value), entry{
		Kind: ev.Kind, Value: value, Entered: ev.Value, LinkedAt: e.Metadata.OccurredAt, Position: e.Position,
	})
}

// removeLink returns links without cid's link, in a new slice: the old one
// may be shared with a copy returned by projections.Get.
func removeLink(links []Link, cid uuid.UUID) []Link {
	out := make([]Link, 0, len(links)+1)
	for _, l := range links {
		if l.CustomerID != cid {
			out = append(out, l)
		}
	}
	return out
}

func forget(tx *projections.Tx, cid uuid.UUID, e domain.Envelope) error {
	// Collect first, change after: mutating while a backend cursor is
	// open is not something every backend allows.
	var keys []string
	var ids []entry
	err := tx.Scan(customerPrefix(cid), "", func(key string, value []byte) (bool, error) {
		var id entry
		if err := json.Unmarshal(value, &id); err != nil {
			return false, fmt.Errorf("identity: decode %q: %w", key, err)
		}
		keys, ids = append(keys, key), append(ids, id)
		return true, nil
	})
	if err != nil {
		return err
	}
	for i, id := range ids {
		ck := claimKey(id.Kind, id.Value)
		c, err := projections.Load[claim](tx, ck)
		if err != nil {
			return err
		}
		c.Links = removeLink(c.Links, cid)
		if len(c.Links) == 0 {
			tx.Delete(ck)
		}
		tx.Delete(keys[i])
	}
	return projections.Put(tx, forgottenKey(cid), forgotten{At: e.Metadata.OccurredAt, Position: e.Position})
}

// normalize wraps the domain's normalisation so that a bad query value is
// reported as domain.ErrInvalid (a *domain.ValidationError), like any
// other malformed input.
func normalize(kind domain.IdentifierKind, value string) (string, error) {
	v, err := domain.NormalizeIdentifier(kind, value)
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	return v, nil
}

// Lookup returns the customer owning an identifier: the latest link wins
// (see the package comment). value is normalised as the index stores it,
// so " Zoe@Example.FR" finds "zoe@example.fr" and "0033 6 12 34 56 78"
// finds "+33612345678", then blinded with keys, which must be the Keys
// the index was built with (nil: none). A value that does not normalise
// fails with an error wrapping domain.ErrInvalid; an unknown one with
// projections.ErrNotFound.
func Lookup(ctx context.Context, r projections.Reader, keys Keys, kind domain.IdentifierKind, value string) (uuid.UUID, error) {
	links, err := Links(ctx, r, keys, kind, value)
	if err != nil {
		return uuid.Nil, err
	}
	return links[len(links)-1].CustomerID, nil
}

// Links returns every customer claiming an identifier, oldest link first;
// the last one is the owner Lookup returns, and more than one means the
// identifier is ambiguous. Arguments and errors are Lookup's.
func Links(ctx context.Context, r projections.Reader, keys Keys, kind domain.IdentifierKind, value string) ([]Link, error) {
	v, err := normalize(kind, value)
	if err != nil {
		return nil, err
	}
	key := v
	if keys != nil {
		key = keys.Blind(kind, v)
	}
	c, ok, err := projections.Read[claim](ctx, r, claimKey(kind, key))
	if err != nil {
		return nil, fmt.Errorf("identity: lookup %s: %w", kind, err)
	}
	if !ok || len(c.Links) == 0 {
		return nil, fmt.Errorf("identity: %s %q: %w", kind, v, projections.ErrNotFound)
	}
	return c.Links, nil
}

// Identifiers lists the identifiers linked to a customer, ordered by kind
// ("email" < "external" < "phone") then value (values over 512 bytes by
// their hash, see the key layout), each saying whether the
// customer still owns it. A customer without identifiers, unknown or
// forgotten, has none: the result is empty, not an error.
func Identifiers(ctx context.Context, r projections.Reader, customerID uuid.UUID) ([]Identifier, error) {
	var ids []Identifier
	err := r.Scan(ctx, customerPrefix(customerID), "", func(key string, value []byte) (bool, error) {
		var id entry
		if err := json.Unmarshal(value, &id); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		ids = append(ids, Identifier{Kind: id.Kind, Value: id.Value, Entered: id.Entered, LinkedAt: id.LinkedAt, Position: id.Position})
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("identity: identifiers of %s: %w", customerID, err)
	}
	for i := range ids {
		c, ok, err := projections.Read[claim](ctx, r, claimKey(ids[i].Kind, ids[i].Value))
		if err != nil {
			return nil, fmt.Errorf("identity: identifiers of %s: %w", customerID, err)
		}
		ids[i].Owner = ok && len(c.Links) > 0 && c.Links[len(c.Links)-1].CustomerID == customerID
	}
	return ids, nil
}
