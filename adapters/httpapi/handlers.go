package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cxledger/cxledger/adapters/access"
	analystpkg "github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/duplicates"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/cxledger/cxledger/projections/merges"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/cxledger/cxledger/projections/timeline"
	"github.com/google/uuid"
)

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The status is sent: an encoding error can only be logged by the
	// server, which sees the broken connection anyway.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // event data stays byte for byte
	_ = enc.Encode(v)
	return nil
}

// customerID reads the {id} path value.
func customerID(r *http.Request) (uuid.UUID, error) {
	raw := r.PathValue("id")
	id, err := uuid.Parse(raw)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, malformed("customer id %q is not a uuid", raw)
	}
	return id, nil
}

// register: POST /v1/customers.
func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	id, tps, err := DecodeRegisterRequest(r.Body, s.cfg.Now(), func() uuid.UUID { return uuid.Must(uuid.NewV7()) })
	if err != nil {
		s.metrics.observeAppend("invalid", 0)
		return err
	}
	res, err := s.doAppend(r.Context(), id, eventstore.NoStream, tps)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/customers/"+id.String())
	return writeJSON(w, http.StatusCreated, AppendResponse{CustomerID: id, Stream: domain.StreamID(id), Version: res.Version, Position: res.Position})
}

// appendEvents: POST /v1/customers/{id}/events.
func (s *Server) appendEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	expected, tps, err := DecodeAppendRequest(r.Body, s.cfg.Now())
	if err != nil {
		s.metrics.observeAppend("invalid", 0)
		return forbiddenFirst(r.Context(), err)
	}
	res, err := s.doAppend(r.Context(), id, expected, tps)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, AppendResponse{CustomerID: id, Stream: domain.StreamID(id), Version: res.Version, Position: res.Position})
}

// forbiddenFirst turns the decoding error of a type no client may append
// (a log type such as AccessRecorded, which has no codec) into the 403
// naming who may, as the ledger answers for every other type: to the
// client it is a type it may not write, not an unknown one.
func forbiddenFirst(ctx context.Context, err error) error {
	var unknown *domain.UnknownTypeError
	if errors.As(err, &unknown) {
		if ferr := domain.MayAppend(principal(ctx).Role, unknown.Type); errors.Is(ferr, domain.ErrForbidden) {
			return ferr
		}
	}
	return err
}

// doAppend appends through the shared write path, as the request's role
// (which the authority table checks per event type), and counts the
// outcome.
//
// The append runs on a context detached from the client's connection (but
// bounded by the request timeout): a client that hangs up mid-append would
// otherwise cancel it at a point where its outcome is unknown, and a
// graceful shutdown must let appends already accepted finish.
func (s *Server) doAppend(ctx context.Context, id uuid.UUID, expected eventstore.ExpectedVersion, tps []ledger.Touchpoint) (eventstore.AppendResult, error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RequestTimeout)
	defer cancel()
	res, err := s.ledger.Append(actx, principal(ctx).Role, id, expected, tps...)
	outcome := "ok"
	if err != nil {
		p, internal := problemFor(err)
		outcome = p.Slug()
		if internal {
			outcome = "error"
		}
	}
	s.metrics.observeAppend(outcome, len(tps))
	return res, err
}

// readStream: GET /v1/customers/{id}/events?from=&limit=&backwards=.
func (s *Server) readStream(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := eventstore.ReadStreamOptions{}
	if opts.From, err = uintParam(q.Get("from"), "from", 0); err != nil {
		return err
	}
	if opts.Limit, err = limitParam(q.Get("limit"), 100, eventstore.DefaultReadLimit); err != nil {
		return err
	}
	if opts.Backwards, err = boolParam(q.Get("backwards"), "backwards"); err != nil {
		return err
	}
	if opts.Backwards && q.Get("from") == "" {
		opts.From = eventstore.FromEnd
	}
	recs, err := s.cfg.Store.ReadStream(r.Context(), domain.StreamID(id), opts)
	if err != nil {
		return err
	}
	// Page links count stored records; revealing changes only their data.
	if recs, err = s.cfg.Keyring.RevealRecords(r.Context(), recs); err != nil {
		return err
	}
	page := EventsPage{Events: nonNil(recs)}
	if len(recs) == opts.Limit {
		last := recs[len(recs)-1].Version
		switch {
		case !opts.Backwards:
			next := last + 1
			page.Next = &next
		case last > 0:
			next := last - 1
			page.Next = &next
		}
	}
	return writeJSON(w, http.StatusOK, page)
}

// readAll: GET /v1/events?after=&limit=&types=.
func (s *Server) readAll(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after", 0)
	if err != nil {
		return err
	}
	limit, err := limitParam(q.Get("limit"), 100, eventstore.DefaultReadLimit)
	if err != nil {
		return err
	}
	filter, err := feedFilter(r, q.Get("types"))
	if err != nil {
		return err
	}
	// The global feed is served as stored: personal data stays sealed.
	// It is revealed only through the per-customer routes, whose every
	// read by a person is in the access log.
	recs, err := s.cfg.Store.ReadAll(r.Context(), eventstore.ReadAllOptions{After: after, Limit: limit, Filter: filter})
	if err != nil {
		return err
	}
	page := EventsPage{Events: nonNil(recs)}
	if len(recs) == limit {
		next := recs[len(recs)-1].Position
		page.Next = &next
	}
	return writeJSON(w, http.StatusOK, page)
}

// lookup: GET /v1/customers?identifier=kind:value — the unified view of
// the identifier's owner.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) error {
	ident := r.URL.Query().Get("identifier")
	if ident == "" {
		return malformed("identifier is required: ?identifier=email:ana@example.com (kinds: email, phone, external)")
	}
	kind, value, ok := strings.Cut(ident, ":")
	if !ok {
		return malformed("identifier %q: want kind:value", ident)
	}
	if err := s.waitFor(r, identity.Name, customer360.Name); err != nil {
		return err
	}
	id, err := s.query.Lookup(r.Context(), domain.IdentifierKind(kind), value)
	if err != nil {
		if errors.Is(err, domain.ErrInvalid) {
			// A malformed identifier in a query string is a bad request,
			// not an invalid event.
			return malformed("identifier: %v", err)
		}
		return err
	}
	v, err := s.query.Customer(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Location", "/v1/customers/"+id.String())
	return writeJSON(w, http.StatusOK, v)
}

// customer: GET /v1/customers/{id}?minPosition=.
func (s *Server) customer(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	if err := s.waitFor(r, customer360.Name, analytics.CustomersName, merges.Name); err != nil {
		return err
	}
	v, err := s.query.Customer(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// timeline: GET /v1/customers/{id}/timeline?types=&channels=&from=&to=&limit=&cursor=.
func (s *Server) timeline(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tq := timeline.Query{Types: splitList(q.Get("types")), Channels: splitList(q.Get("channels")), Cursor: q.Get("cursor")}
	if tq.From, err = timeParam(q.Get("from"), "from"); err != nil {
		return err
	}
	if tq.To, err = timeParam(q.Get("to"), "to"); err != nil {
		return err
	}
	if tq.Limit, err = limitParam(q.Get("limit"), timeline.DefaultLimit, timeline.MaxLimit); err != nil {
		return err
	}
	if err := s.waitFor(r, timeline.Name, merges.Name); err != nil {
		return err
	}
	res, err := s.query.Timeline(r.Context(), id, tq)
	if err != nil {
		if errors.Is(err, domain.ErrInvalid) {
			return malformed("cursor: %v", err)
		}
		return err
	}
	if res.Entries == nil {
		res.Entries = []timeline.Entry{}
	}
	return writeJSON(w, http.StatusOK, res)
}

// pipeline: GET /v1/pipeline?closedFrom=&closedTo=.
func (s *Server) pipeline(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var opts pipeline.Options
	var err error
	if opts.ClosedFrom, err = timeParam(q.Get("closedFrom"), "closedFrom"); err != nil {
		return err
	}
	if opts.ClosedTo, err = timeParam(q.Get("closedTo"), "closedTo"); err != nil {
		return err
	}
	if err := s.waitFor(r, pipeline.DefaultName); err != nil {
		return err
	}
	rep, err := s.query.Pipeline(r.Context(), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// board: GET /v1/pipeline/board?stage=&limit=&cursor= — one stage's open
// opportunities, paged (a range read of the stage's index).
func (s *Server) board(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	stage := domain.OpportunityStage(q.Get("stage"))
	if !slices.Contains(pipeline.Stages, stage) {
		return malformed("stage %q: want one of %v", stage, pipeline.Stages)
	}
	limit, err := limitParam(q.Get("limit"), 50, 500)
	if err != nil {
		return err
	}
	if err := s.waitFor(r, pipeline.DefaultName, merges.Name); err != nil {
		return err
	}
	page, err := s.query.Board(r.Context(), stage, q.Get("cursor"), limit)
	if err != nil {
		if errors.Is(err, domain.ErrInvalid) {
			return malformed("cursor %q is not a cursor of this board", q.Get("cursor"))
		}
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// rfm: GET /v1/analytics/rfm — every buyer scored by the stored model,
// with the fit and analysis date the scores are as of.
func (s *Server) rfm(w http.ResponseWriter, r *http.Request) error {
	out, err := s.query.RFM(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// model: GET /v1/analytics/model — the stored analytics model.
func (s *Server) model(w http.ResponseWriter, r *http.Request) error {
	out, err := s.query.Model(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// decodeFitRequest reads the body of POST /v1/analytics/model/fit: the
// analysis date (default now), a calibration end a day or more before it,
// and the horizon in days (0–3660).
func decodeFitRequest(body io.Reader, now time.Time) (analytics.FitOptions, error) {
	var req fitRequest
	if err := decodeJSON(body, &req); err != nil {
		return analytics.FitOptions{}, err
	}
	var opts analytics.FitOptions
	var err error
	if opts.AsOf, err = timeParam(req.AsOf, "asOf"); err != nil {
		return analytics.FitOptions{}, err
	}
	if opts.CalibrationEnd, err = timeParam(req.CalibrationEnd, "calibrationEnd"); err != nil {
		return analytics.FitOptions{}, err
	}
	asOf := opts.AsOf
	if asOf.IsZero() {
		asOf = now
	}
	day := func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }
	switch {
	case req.HorizonDays < 0 || req.HorizonDays > 3660:
		return analytics.FitOptions{}, malformed("horizonDays=%d: want 0 (90) to 3660", req.HorizonDays)
	case !opts.CalibrationEnd.IsZero() && !day(opts.CalibrationEnd).Before(day(asOf)):
		return analytics.FitOptions{}, malformed("calibrationEnd %s must be a day before the analysis date %s", req.CalibrationEnd, asOf.UTC().Format(time.DateOnly))
	}
	opts.Horizon = req.HorizonDays
	return opts, nil
}

// fitRequest is the body of POST /v1/analytics/model/fit.
type fitRequest struct {
	// AsOf is the analysis date (RFC 3339 or YYYY-MM-DD; empty: now, and
	// the background fitter follows the clock again).
	AsOf string `json:"asOf"`
	// CalibrationEnd fits the parameters on the history up to it and
	// validates them on the rest (RFC 3339 or YYYY-MM-DD; optional).
	CalibrationEnd string `json:"calibrationEnd"`
	// HorizonDays is the horizon of expected purchases (0: 90).
	HorizonDays int `json:"horizonDays"`
}

// fitModel: POST /v1/analytics/model/fit — fit the analytics model now,
// as of an analysis date, and serve it.
func (s *Server) fitModel(w http.ResponseWriter, r *http.Request) error {
	opts, err := decodeFitRequest(r.Body, s.cfg.Now())
	if err != nil {
		return err
	}
	if err := s.waitFor(r, analytics.CustomersName); err != nil {
		return err
	}
	// The fit outlives the request's timeout (a large base takes seconds):
	// it is stored even if the client gives up; only a shutdown stops it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	fit, err := s.query.FitModel(ctx, opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, fit)
}

// score: GET /v1/analytics/customers/{id}.
func (s *Server) score(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	if err := s.waitFor(r, analytics.CustomersName); err != nil {
		return err
	}
	out, err := s.query.Score(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// channels: GET /v1/analytics/channels?from=&to= (default: the last 30
// days).
func (s *Server) channels(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	to, err := timeParam(q.Get("to"), "to")
	if err != nil {
		return err
	}
	if to.IsZero() {
		to = s.cfg.Now()
	}
	from, err := timeParam(q.Get("from"), "from")
	if err != nil {
		return err
	}
	if from.IsZero() {
		from = to.AddDate(0, 0, -30)
	}
	if to.Before(from) || to.Sub(from) > 3660*24*time.Hour {
		return malformed("from..to must be ordered and span at most ten years")
	}
	if err := s.waitFor(r, analytics.ChannelsName); err != nil {
		return err
	}
	out, err := s.query.ChannelMix(r.Context(), from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// tickets: GET /v1/analytics/tickets.
func (s *Server) tickets(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitFor(r, analytics.TicketsName); err != nil {
		return err
	}
	out, err := s.query.TicketSLA(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"priorities": nonNil(out)})
}

// nps: GET /v1/analytics/nps.
func (s *Server) nps(w http.ResponseWriter, r *http.Request) error {
	if err := s.waitFor(r, analytics.CustomersName); err != nil {
		return err
	}
	out, err := s.query.NPS(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// Whoami is the answer of GET /v1/whoami: who the request's token is.
type Whoami struct {
	// Role is the token's role (admin when auth is disabled).
	Role Role `json:"role"`
	// Name identifies the token's holder, as the access log does.
	Name string `json:"name"`
	// AuthDisabled is set when the server runs without tokens (loopback
	// only): every request is admin, and a client should say so.
	AuthDisabled bool `json:"authDisabled"`
}

// whoami: GET /v1/whoami — the token's role and name, so that a client
// (the web console) offers what the role may do and nothing else.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	return writeJSON(w, http.StatusOK, Whoami{Role: p.Role, Name: p.Name, AuthDisabled: s.cfg.AuthDisabled})
}

// ProjectionStatus is one read model in GET /v1/projections.
type ProjectionStatus struct {
	projections.Status
	// Digest is the SHA-256 of the read model's contents, with
	// ?digest=true: two ledgers whose digests agree hold the same model.
	Digest string `json:"digest,omitempty"`
	// Analyst is an analyst projection's definition (without its source),
	// with the script's failure if it stopped.
	Analyst *analystpkg.Definition `json:"analyst,omitempty"`
}

// projectionStatus: GET /v1/projections?digest=true.
func (s *Server) projectionStatus(w http.ResponseWriter, r *http.Request) error {
	withDigest, err := boolParam(r.URL.Query().Get("digest"), "digest")
	if err != nil {
		return err
	}
	var out []ProjectionStatus
	for _, st := range s.cfg.Projections.Status() {
		ps := ProjectionStatus{Status: st}
		if withDigest && st.Active != "" {
			if ps.Digest, err = projections.Digest(r.Context(), s.cfg.ReadModels, st.Name); err != nil {
				return err
			}
		}
		out = append(out, ps)
	}
	if err := s.analystStatus(r.Context(), out); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"projections": nonNil(out)})
}

// rebuild: POST /v1/projections/{name}/rebuild. The rebuild runs in the
// background (it may take hours); the answer is 202 with the status to
// poll.
func (s *Server) rebuild(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	i := slices.IndexFunc(s.cfg.Projections.Status(), func(st projections.Status) bool { return st.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: %q", projections.ErrUnknownProjection, name)
	}
	if st := s.cfg.Projections.Status()[i]; st.Rebuild != nil {
		return fmt.Errorf("%w: %s", projections.ErrRebuildInProgress, name)
	}
	log := loggerFrom(r.Context(), s.log)
	// The build starts here (it takes the rebuild lease, shared by every
	// process) and goes on in the background: a refusal — another build
	// of this read model, here or in another process — is answered now.
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		err := s.cfg.Projections.Rebuild(s.closing, name, func(projections.Progress) { once.Do(func() { close(started) }) })
		done <- err
		switch {
		case err == nil:
			log.Info("rebuild done", "projection", name)
		case s.closing.Err() != nil:
			log.Info("rebuild abandoned at shutdown", "projection", name)
		default:
			log.Error("rebuild failed", "projection", name, "error", err)
		}
	}()
	select {
	case <-started:
	case err := <-done:
		if err != nil {
			return err
		}
	}
	w.Header().Set("Location", "/v1/projections")
	return writeJSON(w, http.StatusAccepted, map[string]any{"projection": name, "status": "rebuilding"})
}

// ready: GET /readyz — the store answers and every read model is running
// within ReadyLag positions of the log.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.cfg.Store.Head(ctx); err != nil {
		s.writeError(w, r, fmt.Errorf("%w: store: %v", ErrNotReady, err))
		return
	}
	for _, st := range s.cfg.Projections.Status() {
		if strings.HasPrefix(st.Name, analystpkg.Prefix) {
			continue // an analyst's projection failing is theirs, not the server's
		}
		switch {
		case st.State == projections.StateFailed:
			s.writeError(w, r, fmt.Errorf("%w: read model %s failed: %s", ErrNotReady, st.Name, st.Error))
			return
		case st.Active == "" || st.Lag > s.cfg.ReadyLag:
			s.writeError(w, r, fmt.Errorf("%w: read model %s is %d positions behind", ErrNotReady, st.Name, st.Lag))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// waitFor makes reads consistent with the caller's own writes: with
// ?minPosition=P it waits (up to ConsistencyWait) until the named read
// models have applied position P, the Position of an append response. A
// P beyond the log's head is refused at once (400): no append answered
// with it, so no wait could end well. Every append is committed before it
// answers, so the head is never below a position a client was given.
func (s *Server) waitFor(r *http.Request, names ...string) error {
	raw := r.URL.Query().Get("minPosition")
	if raw == "" {
		return nil
	}
	want, err := uintParam(raw, "minPosition", 0)
	if err != nil {
		return err
	}
	behind := func() string {
		for _, st := range s.cfg.Projections.Status() {
			if slices.Contains(names, st.Name) && st.Checkpoint < want {
				return st.Name
			}
		}
		return ""
	}
	if behind() == "" {
		return nil
	}
	// A position beyond the log's head is none an append has answered
	// with: waiting for it would only end in a 503.
	head, err := s.cfg.Store.Head(r.Context())
	if err != nil {
		return err
	}
	if want > head {
		return malformed("minPosition=%d is beyond the log's head (%d): pass the position of an append response", want, head)
	}
	// The engine waits for the owner of each read model, in this process
	// or another (reading what the owner commits to the shared backend).
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ConsistencyWait)
	defer cancel()
	err = s.cfg.Projections.WaitFor(ctx, want, names...)
	switch {
	case err == nil:
		return nil
	case r.Context().Err() != nil:
		return r.Context().Err()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: read model %s has not reached position %d within %s", ErrNotReady, cmp.Or(behind(), strings.Join(names, ", ")), want, s.cfg.ConsistencyWait)
	}
	return err
}

// Parameter helpers: every malformed parameter is a 400 naming it.

func uintParam(s, name string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, malformed("%s=%q is not a non-negative integer", name, s)
	}
	return v, nil
}

func limitParam(s string, def, maxLimit int) (int, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > maxLimit {
		return 0, malformed("limit=%q: want 1 to %d", s, maxLimit)
	}
	return v, nil
}

func boolParam(s, name string) (bool, error) {
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, malformed("%s=%q: want true or false", name, s)
	}
	return v, nil
}

func timeParam(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if d, derr := time.Parse(time.DateOnly, s); derr == nil {
			return d, nil
		}
		return time.Time{}, malformed("%s=%q: want RFC 3339 or YYYY-MM-DD", name, s)
	}
	return t, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// feedFilter is the global feed's filter: the types asked for. The access
// log is the auditor's: for an analyst the feed holds the customers' events
// only (every domain type when none is asked for, never AccessRecorded).
func feedFilter(r *http.Request, types string) (eventstore.Filter, error) {
	f := eventstore.Filter{Types: splitList(types)}
	switch {
	case principal(r.Context()).Role != RoleAnalyst:
		return f, nil
	case slices.Contains(f.Types, access.Type):
		return f, fmt.Errorf("%w: the access log (%s) is the auditor's", ErrForbidden, access.Type)
	case len(f.Types) == 0:
		f.Types = domain.Types()
	}
	return f, nil
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// searchCustomers: GET /v1/customers/search?q=&limit=&cursor= — customers
// whose name has, for each word of q, a word starting with it (see
// projections/duplicates: blinded prefixes of 2 to 16 letters).
func (s *Server) searchCustomers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := limitParam(q.Get("limit"), 10, 100)
	if err != nil {
		return err
	}
	var after uuid.UUID
	if raw := q.Get("cursor"); raw != "" {
		if after, err = uuid.Parse(raw); err != nil || after == uuid.Nil {
			return malformed("cursor %q is not a cursor of this search", raw)
		}
	}
	if err := s.waitFor(r, duplicates.Name, customer360.Name, merges.Name); err != nil {
		return err
	}
	page, err := s.query.SearchNames(r.Context(), q.Get("q"), after, limit)
	if err != nil {
		if errors.Is(err, domain.ErrInvalid) {
			return malformed("q: want a word of at least %d letters", duplicates.MinPrefix)
		}
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}
