// Package merges is the identity map of merged customers: which customer
// an id resolves to (its survivor), and which customers a survivor
// absorbed. It and the recommendations' co-purchase counts (which count a
// merged group as one customer, see projections/recommend) are the only
// read models that fold CustomerMerged and CustomerUnmerged.
//
// # Design: resolve at read time, move nothing
//
// A merge moves no state. Every per-customer read model keeps folding each
// stream under its own customer id and skips the merge events, so that its
// stored state is the same as if the merge had never been recorded; an
// unmerge then restores every read model exactly (its digest equals a
// replay of the log without the merge and the unmerge), and new events
// land in the stream they were appended to. A read of a merged customer
// asks this map for the survivor's members and combines their histories
// (Combine): the histories merged in log order, the absorbed customers'
// CustomerRegistered left out (the survivor's profile stays; their later
// profile updates apply), as one stream of the survivor's. Folding that
// stream with the read model's own projection gives, by construction, the
// view of one customer who had had all those events from the start.
//
// # When a merge is in effect
//
// The ledger appends CustomerMerged to the absorbed stream first and then
// to the survivor's (the store has no transaction over two streams; each
// append checks its stream's expected version). A merge is in effect once
// both halves are in the log and until the first CustomerUnmerged of it.
// When the survivor's half loses a race, the ledger appends a
// CustomerUnmerged to the absorbed stream: a half alone never takes
// effect, and the unmerge removes it.
//
// # Key layout
//
//	m/<merge>                the merge: parties and which halves were seen
//	a/<absorbed>             the survivor an absorbed id resolves to
//	s/<survivor>/<absorbed>  the members of a survivor
//
// An unmerge deletes all three, so that a merge and its unmerge leave no
// trace in the read model either (the log and the auditor's timeline keep
// them).
package merges

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Name is the read model's name.
const Name = "merges"

// Version is the read model's schema version.
const Version = 1

// merge is the value at m/<merge>.
type merge struct {
	Survivor uuid.UUID `json:"survivor"`
	Absorbed uuid.UUID `json:"absorbed"`
	// SurvivorSide and AbsorbedSide say which halves are in the log.
	SurvivorSide bool `json:"survivorSide,omitempty"`
	AbsorbedSide bool `json:"absorbedSide,omitempty"`
	// Position is the log position where the merge took effect (0 while
	// only one half is in).
	Position uint64 `json:"position,omitempty"`
}

// Member is one customer absorbed by a survivor.
type Member struct {
	Customer uuid.UUID `json:"customer"`
	MergeID  uuid.UUID `json:"mergeId"`
	// Position is the log position where the merge took effect.
	Position uint64 `json:"position"`
}

// resolved is the value at a/<absorbed>.
type resolved struct {
	Survivor uuid.UUID `json:"survivor"`
	MergeID  uuid.UUID `json:"mergeId"`
}

func mergeKey(id uuid.UUID) string                  { return "m/" + id.String() }
func absorbedKey(id uuid.UUID) string               { return "a/" + id.String() }
func memberPrefix(s uuid.UUID) string               { return "s/" + s.String() + "/" }
func memberKey(s, a uuid.UUID) string               { return memberPrefix(s) + a.String() }
func sideOf(stream, id uuid.UUID) bool              { return stream == id }
func streamOf(e domain.Envelope) (uuid.UUID, error) { return domain.ParseStreamID(e.Stream) }

type projection struct{}

// New returns the identity map projection.
func New() projections.Projection { return projection{} }

// Name implements projections.Projection.
func (projection) Name() string { return Name }

// Version implements projections.Projection.
func (projection) Version() int { return Version }

// Types implements projections.Projection.
func (projection) Types() []string {
	return []string{domain.TypeCustomerMerged, domain.TypeCustomerUnmerged}
}

// Apply implements projections.Projection.
func (projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	cid, err := streamOf(e)
	if err != nil {
		return fmt.Errorf("merges: event %s: %w", e.ID, err)
	}
	switch ev := e.Event.(type) {
	case domain.CustomerMerged:
		m, err := projections.Load[merge](tx, mergeKey(ev.MergeID))
		if err != nil {
			return err
		}
		if m.Position != 0 {
			return nil // both halves already in; a repeat changes nothing
		}
		m.Survivor, m.Absorbed = ev.Survivor, ev.Absorbed
		switch {
		case sideOf(cid, ev.Survivor):
			m.SurvivorSide = true
		case sideOf(cid, ev.Absorbed):
			m.AbsorbedSide = true
		default:
			return nil // in a third stream: not a half of anything
		}
		if m.SurvivorSide && m.AbsorbedSide {
			m.Position = e.Position
			if err := projections.Put(tx, absorbedKey(ev.Absorbed), resolved{Survivor: ev.Survivor, MergeID: ev.MergeID}); err != nil {
				return err
			}
			if err := projections.Put(tx, memberKey(ev.Survivor, ev.Absorbed), Member{Customer: ev.Absorbed, MergeID: ev.MergeID, Position: e.Position}); err != nil {
				return err
			}
		}
		return projections.Put(tx, mergeKey(ev.MergeID), *m)
	case domain.CustomerUnmerged:
		m, ok, err := projections.Get[merge](tx, mergeKey(ev.MergeID))
		if err != nil || !ok {
			return err // the other half's unmerge already ended it
		}
		tx.Delete(mergeKey(ev.MergeID))
		if m.Position != 0 {
			tx.Delete(absorbedKey(m.Absorbed))
			tx.Delete(memberKey(m.Survivor, m.Absorbed))
		}
	}
	return nil
}

// Resolve returns the survivor id resolves to, and true, when id was
// absorbed by a merge in effect; otherwise id itself and false.
func Resolve(ctx context.Context, r projections.Reader, id uuid.UUID) (uuid.UUID, bool, error) {
	v, ok, err := projections.Read[resolved](ctx, r, absorbedKey(id))
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("merges: resolve %s: %w", id, err)
	}
	if !ok {
		return id, false, nil
	}
	return v.Survivor, true, nil
}

// Members returns the customers merged into survivor, in the order the
// merges took effect; none for a customer that absorbed nobody.
func Members(ctx context.Context, r projections.Reader, survivor uuid.UUID) ([]Member, error) {
	var ms []Member
	err := r.Scan(ctx, memberPrefix(survivor), "", func(key string, value []byte) (bool, error) {
		var m Member
		if err := json.Unmarshal(value, &m); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		ms = append(ms, m)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("merges: members of %s: %w", survivor, err)
	}
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.Position, b.Position) })
	return ms, nil
}

// Group returns the ids whose histories make up the customer id resolves
// to: the survivor first, then its members in merge order. For a customer
// in no merge it is just id.
func Group(ctx context.Context, r projections.Reader, id uuid.UUID) (survivor uuid.UUID, ids []uuid.UUID, err error) {
	survivor, _, err = Resolve(ctx, r, id)
	if err != nil {
		return uuid.Nil, nil, err
	}
	ms, err := Members(ctx, r, survivor)
	if err != nil {
		return uuid.Nil, nil, err
	}
	ids = append(ids, survivor)
	for _, m := range ms {
		ids = append(ids, m.Customer)
	}
	return survivor, ids, nil
}

// Combine returns the history of a merged customer: the events of every
// history (each one customer's stream, in version order) merged by log
// position, without merge events and without the CustomerRegistered of
// any customer but survivor, each re-addressed to the survivor's stream
// with consecutive versions from 0. Folding it gives the view of one
// customer who had had all those events from the start (see the package
// comment). The envelopes are copies; the events inside are shared.
func Combine(survivor uuid.UUID, histories ...[]domain.Envelope) []domain.Envelope {
	n := 0
	for _, h := range histories {
		n += len(h)
	}
	all := make([]domain.Envelope, 0, n)
	stream := domain.StreamID(survivor)
	for _, h := range histories {
		for _, e := range h {
			if domain.IsIdentityResolution(e.Type) {
				continue
			}
			if e.Type == domain.TypeCustomerRegistered && e.Stream != stream {
				continue
			}
			all = append(all, e)
		}
	}
	slices.SortStableFunc(all, func(a, b domain.Envelope) int { return cmp.Compare(a.Position, b.Position) })
	for i := range all {
		all[i].Stream = stream
		all[i].Version = uint64(i)
	}
	return all
}

// Groups returns every merge in effect, as survivor → its members in
// merge order: one pass over the merges, not over the customers.
func Groups(ctx context.Context, r projections.Reader) (map[uuid.UUID][]Member, error) {
	groups := map[uuid.UUID][]Member{}
	err := r.Scan(ctx, "s/", "", func(key string, value []byte) (bool, error) {
		rest, _, _ := strings.Cut(strings.TrimPrefix(key, "s/"), "/")
		survivor, err := uuid.Parse(rest)
		if err != nil {
			return false, fmt.Errorf("merges: key %q: %w", key, err)
		}
		var m Member
		if err := json.Unmarshal(value, &m); err != nil {
			return false, fmt.Errorf("merges: decode %q: %w", key, err)
		}
		groups[survivor] = append(groups[survivor], m)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("merges: groups: %w", err)
	}
	for _, ms := range groups {
		slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.Position, b.Position) })
	}
	return groups, nil
}
