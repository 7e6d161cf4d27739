package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	analystpkg "github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
)

// Errors of the HTTP layer itself; the store's, the domain's and the
// projections' sentinels are mapped by the same table.
var (
	// ErrMalformed: the request cannot be read (bad JSON, bad parameter).
	ErrMalformed = errors.New("malformed request")
	// ErrUnauthenticated: no bearer token, or an unknown one.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the token's role may not use the route.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: no such resource (route, customer, identifier).
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: the request body exceeds the server's limit.
	ErrTooLarge = errors.New("request body too large")
	// ErrUnsupportedMediaType: a body that is not JSON.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrNotReady: a read model is not built or has not caught up with a
	// position the caller asked for; retrying later helps.
	ErrNotReady = errors.New("not ready")
	// ErrBusy: too many live-feed subscribers.
	ErrBusy = errors.New("too many live subscribers")
	// ErrAccessLog: a personal-data read could not be recorded in the
	// access log, so it was not served.
	ErrAccessLog = errors.New("access log unavailable")
)

// ProblemTypeBase prefixes every problem type URI; the suffix is the slug
// of the table row ("version-conflict").
const ProblemTypeBase = "urn:cxledger:problem:"

// problemKind is one row of the error table.
type problemKind struct {
	err    error
	status int
	slug   string
	title  string
}

// errorTable maps errors to statuses: the one place where that decision is
// made (wtf's http/http.go). The first row whose error matches with
// errors.Is wins, so more specific rows come first. Anything else is an
// internal error: logged with the request id, shown as a generic 500.
var errorTable = []problemKind{
	{ErrMalformed, http.StatusBadRequest, "malformed", "Malformed request"},
	{ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", "Authentication required"},
	{ErrForbidden, http.StatusForbidden, "forbidden", "Role not allowed"},
	{domain.ErrForbidden, http.StatusForbidden, "forbidden", "Role may not append this event type"},
	{query.ErrMerged, http.StatusPermanentRedirect, "merged", "Customer merged into another"},
	{ErrNotFound, http.StatusNotFound, "not-found", "Not found"},
	{eventstore.ErrNotFound, http.StatusNotFound, "not-found", "Not found"},
	{projections.ErrNotFound, http.StatusNotFound, "not-found", "Not found"},
	{projections.ErrUnknownProjection, http.StatusNotFound, "not-found", "Not found"},
	{eventstore.ErrWrongExpectedVersion, http.StatusConflict, "version-conflict", "Wrong expected version"},
	{eventstore.ErrDuplicateEvent, http.StatusConflict, "duplicate-event", "Event id already used"},
	{domain.ErrRejected, http.StatusConflict, "rejected", "Rejected by the customer's history"},
	{projections.ErrRebuildInProgress, http.StatusConflict, "rebuild-in-progress", "Rebuild already in progress"},
	{analystpkg.ErrExists, http.StatusConflict, "exists", "Analyst projection already exists"},
	{analystpkg.ErrNotFound, http.StatusNotFound, "not-found", "Not found"},
	{analystpkg.ErrInvalid, http.StatusUnprocessableEntity, "invalid-script", "Invalid analyst projection"},
	{ErrNoAnalyst, http.StatusServiceUnavailable, "not-enabled", "Analyst projections not enabled"},
	{ErrTooLarge, http.StatusRequestEntityTooLarge, "too-large", "Request too large"},
	{eventstore.ErrEventTooLarge, http.StatusRequestEntityTooLarge, "too-large", "Event too large"},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"},
	{domain.ErrUnknownType, http.StatusUnprocessableEntity, "unknown-event-type", "Unknown event type"},
	{domain.ErrInvalid, http.StatusUnprocessableEntity, "invalid", "Invalid event"},
	{eventstore.ErrInvalidEvent, http.StatusUnprocessableEntity, "invalid", "Invalid event"},
	{ErrNotReady, http.StatusServiceUnavailable, "not-ready", "Read model not ready"},
	{analytics.ErrNoModel, http.StatusServiceUnavailable, "no-model", "Analytics model not fitted yet"},
	{projections.ErrNotActive, http.StatusServiceUnavailable, "not-ready", "Read model not ready"},
	{projections.ErrNotRunning, http.StatusServiceUnavailable, "not-ready", "Projection engine not running"},
	{ErrBusy, http.StatusServiceUnavailable, "busy", "Server busy"},
	{ErrNoTamperEvidence, http.StatusServiceUnavailable, "tamper-evidence-unavailable", "Tamper evidence not available"},
	{notary.ErrNotInTree, http.StatusNotFound, "not-in-tree", "Not in the Merkle tree"},
	{notary.ErrTampered, http.StatusInternalServerError, "tampered", "The log does not match its Merkle tree"},
	{ErrAccessLog, http.StatusServiceUnavailable, "access-log-unavailable", "Access log unavailable"},
	{eventstore.ErrClosed, http.StatusServiceUnavailable, "unavailable", "Store closed"},
}

// Problem is an RFC 9457 problem details document
// (application/problem+json) with cxledger's extension members. The Go
// client decodes it back into the store's and domain's errors.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// RequestID is the X-Request-Id of the request, to find it in the logs.
	RequestID string `json:"requestId,omitempty"`

	// Field and Rule name the first invalid field as a JSON path in the
	// request ("events[0].data.lines[2].quantity"); Errors lists them all.
	Field  string         `json:"field,omitempty"`
	Rule   string         `json:"rule,omitempty"`
	Errors []FieldProblem `json:"errors,omitempty"`

	// Stream, ExpectedVersion and ActualVersion describe a version
	// conflict. ActualVersion is -1 when the stream has no events; it is a
	// pointer so that 0 (one event) is not left out.
	Stream          string `json:"stream,omitempty"`
	ExpectedVersion string `json:"expectedVersion,omitempty"`
	ActualVersion   *int64 `json:"actualVersion,omitempty"`

	// EventType, Entity, EntityID and Rule describe a domain rejection
	// (EventType alone: the unknown type of an ErrUnknownType).
	EventType string `json:"eventType,omitempty"`
	Entity    string `json:"entity,omitempty"`
	EntityID  string `json:"entityId,omitempty"`

	// EventType, Role and AllowedRoles describe an event type the
	// request's role may not append (domain.MayAppend): AllowedRoles are
	// those that may, "system" alone for the ledger's own events.
	Role         string   `json:"role,omitempty"`
	AllowedRoles []string `json:"allowedRoles,omitempty"`

	// Line and Column locate a script the loader refused (1-based).
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Survivor is the customer a merged customer's reads redirect to
	// (status 308, with Location).
	Survivor string `json:"survivor,omitempty"`
}

// FieldProblem is one invalid field.
type FieldProblem struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

// Slug returns the problem type without ProblemTypeBase.
func (p *Problem) Slug() string {
	if len(p.Type) > len(ProblemTypeBase) && p.Type[:len(ProblemTypeBase)] == ProblemTypeBase {
		return p.Type[len(ProblemTypeBase):]
	}
	return p.Type
}

// Error makes a Problem usable as an error by clients.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// problemFor builds the problem document of err. internal is true when no
// table row matched: the caller logs err and the client sees only a
// generic message, so that internals (SQL, file paths) never leak.
func problemFor(err error) (p *Problem, internal bool) {
	for _, k := range errorTable {
		if !errors.Is(err, k.err) {
			continue
		}
		p = &Problem{Type: ProblemTypeBase + k.slug, Title: k.title, Status: k.status, Detail: err.Error()}
		var conflict *eventstore.VersionConflictError
		if errors.As(err, &conflict) {
			actual := conflict.Actual
			p.Stream, p.ExpectedVersion, p.ActualVersion = conflict.Stream, FormatExpected(conflict.Expected), &actual
		}
		var rejection *domain.RejectionError
		if errors.As(err, &rejection) {
			p.EventType, p.Entity, p.EntityID, p.Rule = rejection.Type, rejection.Entity, rejection.ID, rejection.Rule
		}
		var forbidden *domain.ForbiddenError
		if errors.As(err, &forbidden) {
			p.EventType, p.Role = forbidden.Type, string(forbidden.Role)
			for _, r := range forbidden.Allowed {
				p.AllowedRoles = append(p.AllowedRoles, string(r))
			}
		}
		var invalid *analystpkg.InvalidError
		if errors.As(err, &invalid) {
			p.Line, p.Column = invalid.Line, invalid.Column
		}
		var unknown *domain.UnknownTypeError
		if errors.As(err, &unknown) {
			p.EventType = unknown.Type
		}
		for _, ve := range validationErrors(err) {
			p.Errors = append(p.Errors, FieldProblem{Field: ve.Field, Rule: ve.Rule})
		}
		if len(p.Errors) > 0 {
			p.Field, p.Rule = p.Errors[0].Field, p.Errors[0].Rule
		}
		return p, false
	}
	return &Problem{
		Type:   ProblemTypeBase + "internal",
		Title:  "Internal server error",
		Status: http.StatusInternalServerError,
		Detail: "the server failed; the request id locates the cause in its log",
	}, true
}

// neutralize passes every text member through domain.ForDisplay: they
// echo the request (its path, field names, values), and a bidi override or
// zero-width character in them would reach whoever reads the problem raw.
func (p *Problem) neutralize() {
	for _, s := range []*string{&p.Detail, &p.Instance, &p.Field, &p.Rule, &p.Stream, &p.EventType, &p.Entity, &p.EntityID} {
		*s = domain.ForDisplay(*s)
	}
	for i := range p.Errors {
		p.Errors[i].Field, p.Errors[i].Rule = domain.ForDisplay(p.Errors[i].Field), domain.ForDisplay(p.Errors[i].Rule)
	}
}

// validationErrors collects every *domain.ValidationError in err's tree,
// in order: errors.As would find only the first.
func validationErrors(err error) []*domain.ValidationError {
	var out []*domain.ValidationError
	var walk func(error)
	walk = func(e error) {
		if ve, ok := e.(*domain.ValidationError); ok {
			out = append(out, ve)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				walk(next)
			}
		case interface{ Unwrap() []error }:
			for _, next := range u.Unwrap() {
				walk(next)
			}
		}
	}
	walk(err)
	return out
}

// writeError answers with err's problem document. Internal errors are
// logged here, with the request id, and never shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemFor(err)
	p.Instance = r.URL.Path
	p.RequestID = requestID(r.Context())
	p.neutralize()
	log := loggerFrom(r.Context(), s.log)
	switch {
	case internal:
		log.ErrorContext(r.Context(), "request failed", "error", err)
	case p.Status >= 500:
		log.WarnContext(r.Context(), "request not served", "error", err)
	default:
		log.DebugContext(r.Context(), "request refused", "status", p.Status, "error", err)
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cxledger"`)
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if me, ok := errors.AsType[*query.MergedError](err); ok {
		// The absorbed id's reads are the survivor's: same route, the
		// survivor's id, same query.
		loc := strings.Replace(r.URL.Path, me.Customer.String(), me.Survivor.String(), 1)
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		p.Survivor = me.Survivor.String()
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// malformed wraps a reading problem as ErrMalformed (400).
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// logger returns the request's logger (request id attached) or fallback.
func loggerFrom(ctx interface{ Value(any) any }, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}
