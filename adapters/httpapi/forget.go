package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/google/uuid"
)

// adminOnly: routes no role but admin may use.
var adminOnly []Role

// ForgetRequest is the body of POST /v1/customers/{id}/forget.
type ForgetRequest struct {
	// Request is the reference of the erasure request (a case or ticket
	// number); required. It stays readable after the erasure.
	Request string `json:"request"`
	// Reason is free text; it is sealed with the customer's key like any
	// personal data, so it is erased with the rest.
	Reason string `json:"reason,omitempty"`
}

// ForgetResponse answers an erasure.
type ForgetResponse struct {
	CustomerID uuid.UUID `json:"customerId"`
	Stream     string    `json:"stream"`
	// Appended is false when the customer was already forgotten (a
	// repeated request): only the key was destroyed, again.
	Appended bool `json:"appended"`
	// Version and Position are the CustomerForgotten's, when appended.
	Version  *uint64 `json:"version,omitempty"`
	Position *uint64 `json:"position,omitempty"`
	// KeyDestroyed reports that the customer's data key is gone: every
	// personal value of theirs now reads as erased.
	KeyDestroyed bool `json:"keyDestroyed"`
}

// DecodeForgetRequest reads a ForgetRequest strictly: one JSON object of
// valid UTF-8 without repeated keys or lone surrogates (as every body, see
// decodeJSON), no unknown fields, a request reference.
func DecodeForgetRequest(body io.Reader) (ForgetRequest, error) {
	var req ForgetRequest
	data, err := io.ReadAll(body)
	if err != nil {
		return ForgetRequest{}, jsonProblem(err)
	}
	if err := strictBody(data); err != nil {
		return ForgetRequest{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return ForgetRequest{}, malformed("body: want {\"request\": \"REF\", \"reason\": \"…\"}: %v", err)
	}
	if dec.More() {
		return ForgetRequest{}, malformed("body: data after the JSON object")
	}
	if strings.TrimSpace(req.Request) == "" {
		return ForgetRequest{}, &domain.ValidationError{Field: "request", Rule: "required: the reference of the erasure request"}
	}
	return req, nil
}

// forget: POST /v1/customers/{id}/forget (admin only) — the customer's
// erasure (GDPR art. 17): CustomerForgotten is appended, then the
// customer's data key destroyed, so that no answer of the API, export or
// read model shows their personal data again. Repeating it is harmless and
// finishes an erasure a crash interrupted.
func (s *Server) forget(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	req, err := DecodeForgetRequest(r.Body)
	if err != nil {
		return err
	}
	actor := "user:" + principal(r.Context()).Name
	if actor == "user:" {
		actor = "user:admin"
	}
	tp := ledger.Touchpoint{
		Event:    domain.CustomerForgotten{Request: req.Request, Reason: req.Reason},
		Metadata: domain.Metadata{OccurredAt: s.cfg.Now().UTC(), Actor: actor, Channel: "api", CorrelationID: requestID(r.Context())},
	}
	// As an append: detached from the client's connection, bounded by the
	// request timeout, so that a hang-up cannot cut it in two.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.ledger.Forget(ctx, id, tp)
	if err != nil {
		return err
	}
	out := ForgetResponse{CustomerID: id, Stream: domain.StreamID(id), Appended: res.Appended, KeyDestroyed: s.cfg.Keyring != nil}
	if res.Appended {
		out.Version, out.Position = &res.Version, &res.Position
	}
	loggerFrom(r.Context(), s.log).Info("customer forgotten", "customer", id, "appended", res.Appended, "key_destroyed", out.KeyDestroyed)
	return writeJSON(w, http.StatusOK, out)
}
