// Package audit builds the auditor's timeline of one customer: every event
// of the customer's stream, read from the log itself (never a read model),
// with what happened, when it happened and when it was recorded, who
// recorded it through which channel, why (correlation and causation), and
// whether its inclusion proof leads to a signed checkpoint's root. It
// writes the timeline for a terminal, as JSON and as CSV, always with the
// checkpoint it was verified against.
package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/timeline"
)

// Filter selects entries. The proofs of the whole stream are checked
// whatever the filter, so damage outside the selection is still reported.
type Filter struct {
	// From and To bound the occurred-at time: [From, To); zero is open.
	From, To time.Time
	// Types keeps only these event types (all when empty).
	Types []string
	// Actor keeps only events recorded by this actor.
	Actor string
}

func (f Filter) match(r eventstore.Record) bool {
	at := r.Metadata.OccurredAt
	return (f.From.IsZero() || !at.Before(f.From)) &&
		(f.To.IsZero() || at.Before(f.To)) &&
		(len(f.Types) == 0 || slices.Contains(f.Types, r.Type)) &&
		(f.Actor == "" || r.Metadata.Actor == f.Actor)
}

// Entry is one event of the timeline.
type Entry struct {
	Position uint64    `json:"position"`
	Version  uint64    `json:"version"`
	EventID  uuid.UUID `json:"eventId"`
	Type     string    `json:"type"`
	// Summary says what happened, with personal data revealed (or shown as
	// erased once the customer was forgotten).
	Summary       string    `json:"summary"`
	OccurredAt    time.Time `json:"occurredAt"`
	RecordedAt    time.Time `json:"recordedAt"`
	Actor         string    `json:"actor,omitempty"`
	Channel       string    `json:"channel,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
	// Leaf is the event's leaf index in the Merkle tree (-1: none).
	Leaf int64 `json:"leaf"`
	// Proof is verified, newer than the checkpoint, FAILED or MISSING.
	Proof       string `json:"proof"`
	ProofDetail string `json:"proofDetail,omitempty"`
	// LeafHash and InclusionProof let an auditor's own tool check the
	// entry against the checkpoint: recompute the leaf hash from Record
	// with StoredData as its data (see eventstore/notary for the encoding),
	// then tlog.CheckRecord. Record's data is inline JSON, which JSON
	// encoders may re-indent; StoredData (base64) is the exact bytes the
	// leaf covers. Set only when asked for (Options.Proofs).
	LeafHash       string             `json:"leafHash,omitempty"`
	InclusionProof []string           `json:"inclusionProof,omitempty"`
	Record         *eventstore.Record `json:"record,omitempty"`
	StoredData     []byte             `json:"storedData,omitempty"`
}

// Checkpoint is the checkpoint a timeline was verified against.
type Checkpoint struct {
	Origin string    `json:"origin"`
	Size   int64     `json:"size"`
	Hash   string    `json:"hash"`
	Time   time.Time `json:"time"`
	// Signed is the signed note as the auditor holds it, when the timeline
	// was verified against one.
	Signed string `json:"signed,omitempty"`
}

// Timeline is the auditor's view of one customer's history.
type Timeline struct {
	Customer   uuid.UUID  `json:"customerId"`
	Checkpoint Checkpoint `json:"checkpoint"`
	// Verified is true when every event the checkpoint covers proved, no
	// version is missing, and nothing failed.
	Verified bool `json:"verified"`
	// Problem names the first failure, when not Verified.
	Problem string `json:"problem,omitempty"`
	// Events is the number of events in the stream; Entries holds those
	// the filter selected, in stream order.
	Events  int     `json:"events"`
	Entries []Entry `json:"entries"`
}

// Revealer turns the personal-data tokens of a customer's text into
// plaintext, or an erased marker once the customer's key is destroyed.
type Revealer interface {
	RevealFunc(ctx context.Context, customer uuid.UUID, s string, fn func(string) string) (string, error)
}

// Options configures Build.
type Options struct {
	Filter Filter
	// Reveal decrypts summaries; nil leaves them as stored.
	Reveal Revealer
	// Proofs adds each entry's leaf hash, inclusion proof and stored record.
	Proofs bool
	// Signed is the signed checkpoint's text, carried into the output.
	Signed string
}

// Build verifies customer's stream against cp with the stored hashes and
// returns the timeline. A tampered stream is not an error: the timeline
// says what failed (Verified false, Problem, per-entry Proof). A customer
// without events fails with an error wrapping projections.ErrNotFound.
func Build(ctx context.Context, store notary.StreamReader, hashes notary.HashStore, customer uuid.UUID, cp notary.Checkpoint, opts Options) (Timeline, error) {
	tl := Timeline{
		Customer: customer,
		Checkpoint: Checkpoint{
			Origin: cp.Origin, Size: cp.Size, Hash: cp.Hash.String(), Time: cp.Time, Signed: opts.Signed,
		},
		Entries: []Entry{},
	}
	statuses, err := notary.VerifyStream(ctx, store, hashes, domain.StreamID(customer), cp)
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
		return Timeline{}, fmt.Errorf("customer %s: %w", customer, projections.ErrNotFound)
	case errors.Is(err, notary.ErrTampered):
		tl.Problem = err.Error()
	case err != nil:
		return Timeline{}, fmt.Errorf("audit timeline of %s: %w", customer, err)
	}
	tl.Verified = err == nil
	if cp.Size == 0 && tl.Verified {
		tl.Verified, tl.Problem = false, "the checkpoint covers no events: nothing is proved"
	}
	tl.Events = len(statuses)
	for _, st := range statuses {
		r := st.Event
		if st.Status != notary.StatusMissing && !opts.Filter.match(r) {
			continue
		}
		e := Entry{
			Position: r.Position, Version: r.Version, EventID: r.ID, Type: r.Type,
			OccurredAt: r.Metadata.OccurredAt, RecordedAt: r.RecordedAt,
			Actor: r.Metadata.Actor, Channel: r.Metadata.Channel,
			CorrelationID: r.Metadata.CorrelationID, CausationID: r.Metadata.CausationID,
			Leaf: st.Leaf, Proof: st.Status.String(), ProofDetail: st.Detail,
		}
		if st.Status != notary.StatusMissing {
			if e.Summary, err = summarize(ctx, opts.Reveal, customer, r); err != nil {
				return Timeline{}, err
			}
		}
		if opts.Proofs && st.Status != notary.StatusMissing {
			rec := r
			e.Record = &rec
			e.StoredData = r.Data
			e.LeafHash = notary.LeafHash(r).String()
			if st.Status == notary.StatusVerified {
				proof, err := proveInclusion(ctx, hashes, r.Position, cp.Size)
				if err != nil {
					return Timeline{}, err
				}
				for _, h := range proof {
					e.InclusionProof = append(e.InclusionProof, h.String())
				}
			}
		}
		tl.Entries = append(tl.Entries, e)
	}
	return tl, nil
}

// summarize describes an event as the timeline read model does, revealed.
func summarize(ctx context.Context, reveal Revealer, customer uuid.UUID, r eventstore.Record) (string, error) {
	env, err := projections.Envelope(r)
	if err != nil {
		// A stored event this release cannot read is still an entry.
		return fmt.Sprintf("%s (unreadable: %v)", r.Type, err), nil
	}
	full, _ := timeline.Summarize(env)
	if reveal == nil {
		return full, nil
	}
	// Summaries keep sealed values whole; the plaintext is clipped to one
	// line as the timeline read model clips free text.
	s, err := reveal.RevealFunc(ctx, customer, full, timeline.Clip)
	if err != nil {
		return "", fmt.Errorf("audit timeline of %s: reveal: %w", customer, err)
	}
	return s, nil
}

// proveInclusion proves one position against a tree size with the stored
// hashes (the notary's proof, without a Notary).
func proveInclusion(ctx context.Context, hashes notary.HashStore, position uint64, size int64) (tlog.RecordProof, error) {
	_, proof, err := notary.New(nil, hashes, nil).ProveInclusion(ctx, position, size)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return proof, nil
}
