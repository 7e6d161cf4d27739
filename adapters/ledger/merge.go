package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// MergeRequest asks to merge Absorbed into Survivor (or, for Unmerge, to
// undo merge MergeID of the two).
type MergeRequest struct {
	Survivor, Absorbed uuid.UUID
	// SurvivorVersion and AbsorbedVersion are the caller's concurrency
	// conditions on the two streams (eventstore.Any when the caller did
	// not read them): an append to either stream since the caller read it
	// fails the merge with eventstore.ErrWrongExpectedVersion.
	SurvivorVersion, AbsorbedVersion eventstore.ExpectedVersion
	// MergeID names the merge; uuid.Nil makes one for Merge. Unmerge
	// requires it.
	MergeID uuid.UUID
	// Reason says why; it is personal data, sealed like any.
	Reason string
	// Metadata of both events (OccurredAt, Actor, Channel, …).
	Metadata domain.Metadata
}

// MergeResult says where the two events landed.
type MergeResult struct {
	MergeID  uuid.UUID               `json:"mergeId"`
	Survivor eventstore.AppendResult `json:"survivor"`
	Absorbed eventstore.AppendResult `json:"absorbed"`
}

// halfID derives the event id of one half of a merge or unmerge from the
// merge id, so that a retried request is an idempotent retry of both
// appends.
func halfID(merge uuid.UUID, what string, customer uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(merge, []byte(what+"/"+customer.String()))
}

// Merge records that Absorbed is Survivor (domain.CustomerMerged on both
// streams, the absorbed one first: see projections/merges). Both streams'
// expected versions are checked before anything is written, and each
// append checks its own again; when the survivor's append then fails, a
// CustomerUnmerged is appended to the absorbed stream, so that the lone
// half never takes effect, and the survivor's error is returned.
//
// Errors: those of Append (domain.ErrForbidden, ErrInvalid, ErrRejected —
// e.g. the absorbed customer is already merged — and
// eventstore.ErrWrongExpectedVersion), and eventstore.ErrNotFound for an
// unknown customer.
func (s *Service) Merge(ctx context.Context, as domain.Role, req MergeRequest) (MergeResult, error) {
	if req.MergeID == uuid.Nil {
		req.MergeID = s.NewID()
	}
	ev := domain.CustomerMerged{MergeID: req.MergeID, Survivor: req.Survivor, Absorbed: req.Absorbed, Reason: req.Reason}
	if err := domain.MayAppend(as, ev.EventType()); err != nil {
		return MergeResult{}, err
	}
	if err := ev.Validate(); err != nil {
		return MergeResult{}, err
	}
	// Decide both sides first, so that a merge the survivor's history
	// refuses (or a survivor already moved) writes nothing at all.
	for _, side := range []struct {
		id       uuid.UUID
		expected eventstore.ExpectedVersion
	}{{req.Survivor, req.SurvivorVersion}, {req.Absorbed, req.AbsorbedVersion}} {
		if err := s.precheck(ctx, side.id, side.expected, ev); err != nil {
			return MergeResult{}, err
		}
	}
	res := MergeResult{MergeID: req.MergeID}
	var err error
	res.Absorbed, err = s.Append(ctx, as, req.Absorbed, req.AbsorbedVersion,
		Touchpoint{ID: halfID(req.MergeID, "merged", req.Absorbed), Event: ev, Metadata: req.Metadata})
	if err != nil {
		return MergeResult{}, fmt.Errorf("merge %s into %s: %w", req.Absorbed, req.Survivor, err)
	}
	res.Survivor, err = s.Append(ctx, as, req.Survivor, req.SurvivorVersion,
		Touchpoint{ID: halfID(req.MergeID, "merged", req.Survivor), Event: ev, Metadata: req.Metadata})
	if err != nil {
		undo := domain.CustomerUnmerged{MergeID: req.MergeID, Survivor: req.Survivor, Absorbed: req.Absorbed, Reason: "merge aborted: the survivor's half was not recorded"}
		md := req.Metadata
		md.Actor = "system:merge"
		if _, uerr := s.Append(ctx, domain.RoleSystem, req.Absorbed, eventstore.Any,
			Touchpoint{ID: halfID(req.MergeID, "aborted", req.Absorbed), Event: undo, Metadata: md}); uerr != nil {
			err = errors.Join(err, fmt.Errorf("and the absorbed half could not be withdrawn (it never takes effect alone): %w", uerr))
		}
		return MergeResult{}, fmt.Errorf("merge %s into %s: %w", req.Absorbed, req.Survivor, err)
	}
	return res, nil
}

// Unmerge undoes merge req.MergeID (domain.CustomerUnmerged on both
// streams, the survivor's first: the first one in the log ends the
// merge). Both expected versions are checked before anything is written;
// the absorbed half is then appended whatever the stream gained since, so
// that both histories end the merge.
func (s *Service) Unmerge(ctx context.Context, as domain.Role, req MergeRequest) (MergeResult, error) {
	ev := domain.CustomerUnmerged{MergeID: req.MergeID, Survivor: req.Survivor, Absorbed: req.Absorbed, Reason: req.Reason}
	if err := domain.MayAppend(as, ev.EventType()); err != nil {
		return MergeResult{}, err
	}
	if err := ev.Validate(); err != nil {
		return MergeResult{}, err
	}
	for _, side := range []struct {
		id       uuid.UUID
		expected eventstore.ExpectedVersion
	}{{req.Survivor, req.SurvivorVersion}, {req.Absorbed, req.AbsorbedVersion}} {
		if err := s.precheck(ctx, side.id, side.expected, ev); err != nil {
			return MergeResult{}, err
		}
	}
	res := MergeResult{MergeID: req.MergeID}
	var err error
	res.Survivor, err = s.Append(ctx, as, req.Survivor, req.SurvivorVersion,
		Touchpoint{ID: halfID(req.MergeID, "unmerged", req.Survivor), Event: ev, Metadata: req.Metadata})
	if err != nil {
		return MergeResult{}, fmt.Errorf("unmerge %s from %s: %w", req.Absorbed, req.Survivor, err)
	}
	res.Absorbed, err = s.Append(ctx, as, req.Absorbed, eventstore.Any,
		Touchpoint{ID: halfID(req.MergeID, "unmerged", req.Absorbed), Event: ev, Metadata: req.Metadata})
	if err != nil {
		return res, fmt.Errorf("unmerge %s from %s: the merge is ended, but the absorbed history does not say so yet (retry the unmerge): %w", req.Absorbed, req.Survivor, err)
	}
	return res, nil
}

// precheck decides ev against customer's current history and checks its
// version against expected, writing nothing.
func (s *Service) precheck(ctx context.Context, customer uuid.UUID, expected eventstore.ExpectedVersion, ev domain.Event) error {
	var err error
	ierr := s.inspectVersion(ctx, customer, func(c *domain.Customer, version int64) {
		if err = eventstore.CheckExpected(domain.StreamID(customer), expected, version); err != nil {
			return
		}
		if c.ID() == customer {
			err = c.Check(ev)
		}
	})
	if ierr != nil {
		return ierr
	}
	return err
}

// Group returns the customers whose histories are one customer with
// customer's: its survivor, if it was absorbed, and every customer the
// survivor absorbed, customer first, from the streams' histories.
func (s *Service) Group(ctx context.Context, customer uuid.UUID) ([]uuid.UUID, error) {
	var survivor uuid.UUID
	var ids []uuid.UUID
	err := s.inspect(ctx, customer, func(c *domain.Customer) {
		survivor = customer
		if sv, ok := c.AbsorbedBy(); ok {
			survivor = sv
		} else {
			ids = c.Absorbed()
		}
	})
	if err != nil {
		return nil, err
	}
	if survivor != customer {
		if err := s.inspect(ctx, survivor, func(c *domain.Customer) { ids = c.Absorbed() }); err != nil {
			return nil, err
		}
	}
	group := []uuid.UUID{customer}
	for _, id := range append([]uuid.UUID{survivor}, ids...) {
		if !containsID(group, id) {
			group = append(group, id)
		}
	}
	return group, nil
}

func containsID(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
