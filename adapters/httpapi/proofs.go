package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	auditlog "github.com/cxledger/cxledger/adapters/audit"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
)

// Notary is the tamper evidence the audit routes serve: the Merkle tree
// over the log (eventstore/notary.Notary).
type Notary interface {
	Sync(ctx context.Context) (tlog.Tree, error)
	TreeAt(ctx context.Context, size int64) (tlog.Tree, error)
	ProveInclusion(ctx context.Context, position uint64, treeSize int64) (int64, tlog.RecordProof, error)
	ProveConsistency(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error)
	Hashes() notary.HashStore
}

// ErrNoTamperEvidence: the backend keeps no Merkle tree (KurrentDB), or no
// checkpoint key is configured for a route that signs.
var ErrNoTamperEvidence = errors.New("tamper evidence not available")

func (s *Server) notary() (Notary, error) {
	if s.cfg.Notary == nil {
		return nil, fmt.Errorf("%w: this store keeps no Merkle tree", ErrNoTamperEvidence)
	}
	return s.cfg.Notary, nil
}

// treeParam reads size= (default: the tree synced to the log's head now).
func (s *Server) treeParam(r *http.Request, n Notary) (tlog.Tree, error) {
	raw := r.URL.Query().Get("size")
	if raw == "" {
		return n.Sync(r.Context())
	}
	size, err := uintParam(raw, "size", 0)
	if err != nil {
		return tlog.Tree{}, err
	}
	if size > 1<<62 {
		return tlog.Tree{}, malformed("size=%q is out of range", raw)
	}
	if _, err := n.Sync(r.Context()); err != nil {
		return tlog.Tree{}, err
	}
	return n.TreeAt(r.Context(), int64(size))
}

// TreeHead is the Merkle tree over the log's first Size events.
type TreeHead struct {
	Size int64     `json:"size"`
	Hash tlog.Hash `json:"hash"`
}

// tree: GET /v1/audit/tree?size= — the unsigned tree head.
func (s *Server) tree(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notary()
	if err != nil {
		return err
	}
	t, err := s.treeParam(r, n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, TreeHead{Size: t.N, Hash: t.Hash})
}

// checkpoint: GET /v1/audit/checkpoint — the tree synced to the log's head,
// signed with the server's checkpoint key, as a text note.
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notary()
	if err != nil {
		return err
	}
	if s.cfg.CheckpointSigner == nil {
		return fmt.Errorf("%w: no checkpoint key configured (serve --checkpoint-key)", ErrNoTamperEvidence)
	}
	t, err := n.Sync(r.Context())
	if err != nil {
		return err
	}
	msg, err := notary.Sign(notary.Checkpoint{Origin: s.origin(), Size: t.N, Hash: t.Hash, Time: s.cfg.Now()}, s.cfg.CheckpointSigner)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(msg)
	return nil
}

func (s *Server) origin() string {
	if s.cfg.CheckpointSigner != nil {
		return s.cfg.CheckpointSigner.Name()
	}
	return "cxledger"
}

// InclusionProof proves that the tree of Size leaves holds an event.
type InclusionProof struct {
	Position uint64            `json:"position"`
	Leaf     int64             `json:"leaf"`
	Size     int64             `json:"size"`
	Root     tlog.Hash         `json:"root"`
	LeafHash tlog.Hash         `json:"leafHash"`
	Proof    tlog.RecordProof  `json:"proof"`
	Record   eventstore.Record `json:"record"`
	// StoredData is the record's data exactly as stored (base64), which
	// the leaf hash covers; Record's inline JSON may be re-formatted by
	// the JSON encoding on the way.
	StoredData []byte `json:"storedData"`
}

// inclusion: GET /v1/audit/proof/inclusion?position=&size=.
func (s *Server) inclusion(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notary()
	if err != nil {
		return err
	}
	pos, err := uintParam(r.URL.Query().Get("position"), "position", 0)
	if err != nil {
		return err
	}
	if pos == 0 {
		return malformed("position is required (from 1)")
	}
	t, err := s.treeParam(r, n)
	if err != nil {
		return err
	}
	recs, err := s.cfg.Store.ReadAll(r.Context(), eventstore.ReadAllOptions{After: pos - 1, Limit: 1})
	if err != nil {
		return err
	}
	if len(recs) == 0 || recs[0].Position != pos {
		return fmt.Errorf("%w: no event at position %d", ErrNotFound, pos)
	}
	leaf, proof, err := n.ProveInclusion(r.Context(), pos, t.N)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, InclusionProof{Position: pos, Leaf: leaf, Size: t.N, Root: t.Hash, LeafHash: notary.LeafHash(recs[0]), Proof: proof, Record: recs[0], StoredData: recs[0].Data})
}

// ConsistencyProof proves that the tree of To leaves extends the tree of
// From leaves.
type ConsistencyProof struct {
	From     int64          `json:"from"`
	To       int64          `json:"to"`
	FromRoot tlog.Hash      `json:"fromRoot"`
	ToRoot   tlog.Hash      `json:"toRoot"`
	Proof    tlog.TreeProof `json:"proof"`
}

// consistency: GET /v1/audit/proof/consistency?from=&to=.
func (s *Server) consistency(w http.ResponseWriter, r *http.Request) error {
	n, err := s.notary()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from, err := uintParam(q.Get("from"), "from", 0)
	if err != nil {
		return err
	}
	to, err := uintParam(q.Get("to"), "to", 0)
	if err != nil {
		return err
	}
	if from > to || to > 1<<62 {
		return malformed("want 0 <= from <= to")
	}
	if _, err := n.Sync(r.Context()); err != nil {
		return err
	}
	older, err := n.TreeAt(r.Context(), int64(from))
	if err != nil {
		return err
	}
	newer, err := n.TreeAt(r.Context(), int64(to))
	if err != nil {
		return err
	}
	proof, err := n.ProveConsistency(r.Context(), int64(from), int64(to))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ConsistencyProof{From: older.N, To: newer.N, FromRoot: older.Hash, ToRoot: newer.Hash, Proof: proof})
}

// auditTimeline: GET /v1/customers/{id}/audit?size=&from=&to=&types=&actor=&proofs=
// — the auditor's timeline from the log, every event proved against the
// tree of size leaves (default: now), signed when the server has a key.
func (s *Server) auditTimeline(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	n, err := s.notary()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var f auditlog.Filter
	if f.From, err = timeParam(q.Get("from"), "from"); err != nil {
		return err
	}
	if f.To, err = timeParam(q.Get("to"), "to"); err != nil {
		return err
	}
	f.Types, f.Actor = splitList(q.Get("types")), q.Get("actor")
	proofs, err := boolParam(q.Get("proofs"), "proofs")
	if err != nil {
		return err
	}
	t, err := s.treeParam(r, n)
	if err != nil {
		return err
	}
	cp := notary.Checkpoint{Origin: s.origin(), Size: t.N, Hash: t.Hash, Time: s.cfg.Now().UTC().Truncate(time.Microsecond)}
	var signed string
	// Only the tree at the head is signed: a signed "size N at time T" for
	// an older N would read like a rollback beside the auditor's newer
	// checkpoints. For an older size the auditor compares the returned
	// root with the checkpoint they hold.
	if s.cfg.CheckpointSigner != nil && r.URL.Query().Get("size") == "" {
		msg, err := notary.Sign(cp, s.cfg.CheckpointSigner)
		if err != nil {
			return err
		}
		signed = string(msg)
	}
	tl, err := auditlog.Build(r.Context(), s.cfg.Store, n.Hashes(), id, cp, auditlog.Options{Filter: f, Reveal: s.revealer(), Proofs: proofs, Signed: signed})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tl)
}

// revealer returns what turns personal-data tokens into plaintext for the
// auditor's timeline (nil: the summaries stay as stored).
func (s *Server) revealer() auditlog.Revealer {
	if s.cfg.Keyring == nil {
		return nil
	}
	return s.cfg.Keyring
}
