package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
)

// IDKeys is what deriving customer ids from identifiers needs: a
// *Keyring. Edges that register customers for identifiers nobody holds
// (broker ingest, import) declare it, or a larger interface holding it.
type IDKeys interface {
	// CustomerID derives the id of generation's customer for an
	// identifier with a keyed hash (Keyring.CustomerID).
	CustomerID(kind domain.IdentifierKind, canonical string, generation int) uuid.UUID
	// Forgotten reports whether customer's key was destroyed.
	Forgotten(ctx context.Context, customer uuid.UUID) (bool, error)
}

// MaxGenerations bounds how many forgotten customers one identifier may
// leave behind before DerivedCustomerIDs refuses to derive another.
const MaxGenerations = 1000

// ErrTooManyGenerations: MaxGenerations customers registered for one
// identifier were forgotten. A property of the identifier, not of the
// moment: retrying cannot help.
var ErrTooManyGenerations = errors.New("too many customers registered for the identifier were forgotten")

// DerivedCustomerIDs returns the ids derived for an identifier (kind and
// its canonical value, domain.NormalizeIdentifier's), generation by
// generation from 0, up to the first whose customer is not forgotten,
// which is last: the id a customer registered for the identifier now
// takes. The ones before it are forgotten customers', so that a forgotten
// customer's address registers a new customer instead of landing on the
// erased stream, and nobody without the master key can tell either id
// from the address.
//
// Every edge that registers customers for identifiers derives their ids
// with this function, so that all of them — broker ingest, imports, in
// any process, on any retry — converge on one customer per identifier
// and generation. keys must be a real keyring: without one (plaintext
// mode) callers keep their unkeyed derivation. Errors are the key store's,
// or ErrTooManyGenerations.
func DerivedCustomerIDs(ctx context.Context, keys IDKeys, kind domain.IdentifierKind, canonical string) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	for g := range MaxGenerations {
		id := keys.CustomerID(kind, canonical, g)
		if id == uuid.Nil {
			return nil, errors.New("derive customer id: no keyring (a nil *Keyring derives no id)")
		}
		ids = append(ids, id)
		forgotten, err := keys.Forgotten(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("derive customer id: %w", err)
		}
		if !forgotten {
			return ids, nil
		}
	}
	return nil, fmt.Errorf("derive customer id: %w (%d)", ErrTooManyGenerations, MaxGenerations)
}
