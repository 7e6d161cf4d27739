package domain

import "github.com/google/uuid"

// Identity resolution event type names.
const (
	TypeCustomerMerged   = "CustomerMerged"
	TypeCustomerUnmerged = "CustomerUnmerged"
)

// CustomerMerged records that two customer records are one person: the
// survivor absorbs the other customer. The same event (same MergeID, its
// own event id) is appended to both streams, the absorbed one first, so
// that both histories say it; the merge takes effect once both are in the
// log (projections/merges). Nothing moves: each stream keeps its events,
// and the read side resolves the absorbed id to the survivor and combines
// the two histories (see projections/merges).
type CustomerMerged struct {
	// MergeID names the merge; CustomerUnmerged names it to undo it.
	MergeID  uuid.UUID `json:"mergeId"`
	Survivor uuid.UUID `json:"survivor"`
	Absorbed uuid.UUID `json:"absorbed"`
	// Reason says why an operator or a service decided the two are one
	// person ("same gmail address, confirmed by phone"). It is free text
	// and may name the person: personal data (see PersonalFields).
	Reason string `json:"reason,omitempty"`
}

// EventType implements Event.
func (CustomerMerged) EventType() string { return TypeCustomerMerged }

// Validate implements Event.
func (e CustomerMerged) Validate() error {
	return validateMerge(e.MergeID, e.Survivor, e.Absorbed, e.Reason)
}

// CustomerUnmerged undoes the merge MergeID: the two customers are apart
// again, each with the events of its own stream (an event appended to
// the absorbed id while merged stays the absorbed customer's). It is
// appended to both streams, the survivor's first; the first one in the log
// ends the merge. It also ends a merge whose survivor half never committed
// (the ledger appends it to the absorbed stream when the second half of a
// merge loses a race).
type CustomerUnmerged struct {
	MergeID  uuid.UUID `json:"mergeId"`
	Survivor uuid.UUID `json:"survivor"`
	Absorbed uuid.UUID `json:"absorbed"`
	// Reason is personal data, like CustomerMerged's.
	Reason string `json:"reason,omitempty"`
}

// EventType implements Event.
func (CustomerUnmerged) EventType() string { return TypeCustomerUnmerged }

// Validate implements Event.
func (e CustomerUnmerged) Validate() error {
	return validateMerge(e.MergeID, e.Survivor, e.Absorbed, e.Reason)
}

func validateMerge(mergeID, survivor, absorbed uuid.UUID, reason string) error {
	var v validator
	v.id("mergeId", mergeID)
	v.id("survivor", survivor)
	v.id("absorbed", absorbed)
	if survivor != uuid.Nil && survivor == absorbed {
		v.add("absorbed", "must differ from survivor")
	}
	v.text("reason", reason, false, maxText)
	return v.err()
}

// IsIdentityResolution reports whether typ is a merge or an unmerge. The
// per-customer read models (customer 360, timeline) skip them: merges are
// resolved when a view is read, so that folding them changes no stored
// state and an unmerge restores every read model exactly.
func IsIdentityResolution(typ string) bool {
	return typ == TypeCustomerMerged || typ == TypeCustomerUnmerged
}

// mergeState is what the aggregate knows about one merge its stream is a
// party to.
type mergeState struct {
	survivor, absorbed uuid.UUID
}

// AbsorbedBy returns the survivor this customer is merged into, if a merge
// that absorbed it is in effect in its stream.
func (c *Customer) AbsorbedBy() (uuid.UUID, bool) {
	for _, m := range c.merges {
		if m.absorbed == c.id {
			return m.survivor, true
		}
	}
	return uuid.Nil, false
}

// Absorbed returns the customers merged into this one, in no order.
func (c *Customer) Absorbed() []uuid.UUID {
	var ids []uuid.UUID
	for _, m := range c.merges {
		if m.survivor == c.id {
			ids = append(ids, m.absorbed)
		}
	}
	return ids
}

// Merge returns the parties of merge id if it is in effect in this stream.
func (c *Customer) Merge(id uuid.UUID) (survivor, absorbed uuid.UUID, ok bool) {
	m, ok := c.merges[id]
	return m.survivor, m.absorbed, ok
}

func (c *Customer) applyMerge(e Event) {
	switch e := e.(type) {
	case CustomerMerged:
		if c.merges == nil {
			c.merges = make(map[uuid.UUID]mergeState)
		}
		c.merges[e.MergeID] = mergeState{survivor: e.Survivor, absorbed: e.Absorbed}
	case CustomerUnmerged:
		delete(c.merges, e.MergeID)
	}
}

// checkMerge decides a merge event against the stream's history: the
// stream must be one of the parties; an absorbed customer absorbs nobody
// and is absorbed once; a survivor is not itself absorbed; an unmerge
// names a merge in effect with the same parties.
func (c *Customer) checkMerge(reject rejectFunc, e Event) error {
	switch e := e.(type) {
	case CustomerMerged:
		if c.id != e.Survivor && c.id != e.Absorbed {
			return reject("customer", c.id, "the stream's customer is neither survivor nor absorbed")
		}
		if _, ok := c.merges[e.MergeID]; ok {
			return reject("merge", e.MergeID, "merge id already used")
		}
		if s, ok := c.AbsorbedBy(); ok {
			return reject("customer", c.id, "already merged into %s: merge into the survivor, or unmerge first", s)
		}
		if c.id == e.Absorbed && len(c.Absorbed()) > 0 {
			return reject("customer", c.id, "has customers merged into it: it can only survive a merge")
		}
	case CustomerUnmerged:
		s, a, ok := c.Merge(e.MergeID)
		if !ok {
			return reject("merge", e.MergeID, "no such merge in effect for this customer")
		}
		if s != e.Survivor || a != e.Absorbed {
			return reject("merge", e.MergeID, "survivor and absorbed must be the merge's")
		}
	}
	return nil
}
