package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/merges"
)

// mergers: who reads the duplicate candidates a merge is decided from.
var mergers = []Role{RoleService, RoleAnalyst}

// MergeRequest is the body of POST /v1/customers/{id}/merge (the path's
// customer survives, Absorbed is merged into it) and of
// POST /v1/customers/{id}/unmerge (MergeID required).
type MergeRequest struct {
	Absorbed uuid.UUID `json:"absorbed"`
	// Reason says why; personal data, sealed with each customer's key.
	Reason string `json:"reason"`
	// MergeID names the merge to undo (unmerge), or the merge to record
	// (merge; optional: a retry with the same id is idempotent).
	MergeID uuid.UUID `json:"mergeId,omitempty"`
	// ExpectedVersion and AbsorbedExpectedVersion are the versions of the
	// two streams the caller decided on; when given, an append to either
	// stream since then fails the request with 409.
	ExpectedVersion         *uint64 `json:"expectedVersion,omitempty"`
	AbsorbedExpectedVersion *uint64 `json:"absorbedExpectedVersion,omitempty"`
}

// MergeResponse answers a merge or an unmerge: where each half landed.
type MergeResponse struct {
	MergeID  uuid.UUID  `json:"mergeId"`
	Survivor MergedHalf `json:"survivor"`
	Absorbed MergedHalf `json:"absorbed"`
}

// MergedHalf is one stream's event of a merge or unmerge.
type MergedHalf struct {
	CustomerID uuid.UUID `json:"customerId"`
	Version    uint64    `json:"version"`
	Position   uint64    `json:"position"`
}

// DecodeMergeRequest reads a MergeRequest strictly (see decodeJSON): no
// unknown fields, an absorbed id and a reason.
func DecodeMergeRequest(body io.Reader, unmerge bool) (MergeRequest, error) {
	var req MergeRequest
	data, err := io.ReadAll(body)
	if err != nil {
		return MergeRequest{}, jsonProblem(err)
	}
	if err := strictBody(data); err != nil {
		return MergeRequest{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return MergeRequest{}, malformed("body: want {\"absorbed\": \"ID\", \"reason\": \"…\"}: %v", err)
	}
	if dec.More() {
		return MergeRequest{}, malformed("body: data after the JSON object")
	}
	if req.Absorbed == uuid.Nil {
		return MergeRequest{}, &domain.ValidationError{Field: "absorbed", Rule: "required: the id of the other customer"}
	}
	if req.Reason == "" {
		return MergeRequest{}, &domain.ValidationError{Field: "reason", Rule: "required: why the two are (or are not) one person"}
	}
	if unmerge && req.MergeID == uuid.Nil {
		return MergeRequest{}, &domain.ValidationError{Field: "mergeId", Rule: "required: the merge to undo"}
	}
	return req, nil
}

func expected(v *uint64) eventstore.ExpectedVersion {
	if v == nil {
		return eventstore.Any
	}
	return eventstore.Exact(*v)
}

// merge: POST /v1/customers/{id}/merge — the path's customer absorbs
// another (domain.CustomerMerged on both streams).
func (s *Server) merge(w http.ResponseWriter, r *http.Request) error {
	return s.mergeOrUnmerge(w, r, false)
}

// unmerge: POST /v1/customers/{id}/unmerge — undoes a merge.
func (s *Server) unmerge(w http.ResponseWriter, r *http.Request) error {
	return s.mergeOrUnmerge(w, r, true)
}

func (s *Server) mergeOrUnmerge(w http.ResponseWriter, r *http.Request, unmerge bool) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := DecodeMergeRequest(r.Body, unmerge)
	if err != nil {
		return err
	}
	p := principal(r.Context())
	actor := "user:" + p.Name
	if p.Name == "" {
		actor = "user:" + string(p.Role)
	}
	req := ledger.MergeRequest{
		Survivor: id, Absorbed: body.Absorbed, MergeID: body.MergeID, Reason: body.Reason,
		SurvivorVersion: expected(body.ExpectedVersion), AbsorbedVersion: expected(body.AbsorbedExpectedVersion),
		Metadata: domain.Metadata{OccurredAt: s.cfg.Now().UTC(), Actor: actor, Channel: "api", CorrelationID: requestID(r.Context())},
	}
	// Like an append: detached from the client's connection, so that a
	// hang-up cannot cut the two halves apart.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.RequestTimeout)
	defer cancel()
	var res ledger.MergeResult
	if unmerge {
		res, err = s.ledger.Unmerge(ctx, domain.Role(p.Role), req)
	} else {
		res, err = s.ledger.Merge(ctx, domain.Role(p.Role), req)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Location", "/v1/customers/"+id.String())
	return writeJSON(w, http.StatusOK, MergeResponse{
		MergeID:  res.MergeID,
		Survivor: MergedHalf{CustomerID: id, Version: res.Survivor.Version, Position: res.Survivor.Position},
		Absorbed: MergedHalf{CustomerID: body.Absorbed, Version: res.Absorbed.Version, Position: res.Absorbed.Position},
	})
}

// duplicates: GET /v1/identity/duplicates?customer=&limit=&cursor=.
func (s *Server) duplicates(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var customer uuid.UUID
	if raw := q.Get("customer"); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil || id == uuid.Nil {
			return malformed("customer %q is not a uuid", raw)
		}
		customer = id
	}
	limit, err := limitParam(q.Get("limit"), 50, 500)
	if err != nil {
		return err
	}
	if err := s.waitFor(r, duplicates.Name, merges.Name); err != nil {
		return err
	}
	page, err := s.query.Duplicates(r.Context(), customer, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}
