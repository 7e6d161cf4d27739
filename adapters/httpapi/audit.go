package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/google/uuid"
)

// personalReads names the routes that read one customer's personal data,
// and the resource the access log calls each. A read by an auditor,
// analyst or admin through one of them is recorded before it is served;
// services reading back their own writes are not (they are machines on a
// hot path, and their writes are in the ledger already).
//
// Routes over many customers leave no entry: GET /v1/events and the live
// feed serve personal data as stored, sealed (the CLI's read --all, tail
// and export, which reveal it, record one entry per customer shown); the
// reports (pipeline, campaigns, channels, tickets, NPS) hold figures; the
// RFM report holds customer ids and scores but no name or contact, and
// recording it per customer would cost an append per buyer on every
// report — the score of one customer, which an analyst looks up about
// that person, is recorded.
var personalReads = map[string]string{
	// The lookup finds the customer by an identifier and answers with the
	// view: logged under the customer found, without the identifier.
	"GET /v1/customers": "lookup",
	// A name search shows names: one entry per customer in the answer,
	// without the search text (it is a name too).
	"GET /v1/customers/search":               "search",
	"GET /v1/customers/{id}":                 "view",
	"GET /v1/customers/{id}/as-of":           "view-as-of",
	"GET /v1/customers/{id}/events":          "events",
	"GET /v1/customers/{id}/timeline":        "timeline",
	"GET /v1/customers/{id}/audit":           "audit-timeline",
	"GET /v1/customers/{id}/recommendations": "recommendations",
	// A customer's analytics score (RFM, segment, churn risk) is
	// profiling: personal data about them.
	"GET /v1/analytics/customers/{id}": "score",
}

// loggedRead returns the access-log entry a request must leave, and false
// when it needs none: not a personal-data route, a service, or a malformed
// customer id (the handler refuses it; nothing is read).
func (s *Server) loggedRead(r *http.Request, pattern string) (access.Entry, bool) {
	resource, ok := personalReads[pattern]
	who := principal(r.Context())
	if !ok || who.Role == RoleService {
		return access.Entry{}, false
	}
	e := access.Entry{
		Reader: who.Name, Role: string(who.Role), Resource: resource,
		Query: r.URL.RawQuery, Via: "http", RequestID: requestID(r.Context()),
	}
	if resource == "lookup" {
		// The identifier is personal data: the log keeps only its kind.
		kind, _, _ := strings.Cut(r.URL.Query().Get("identifier"), ":")
		e.Query = "identifier=" + kind + ":…"
		return e, true // the customer comes from the answer
	}
	if resource == "search" {
		e.Query = "q=…"
		return e, true // the customers come from the answer
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil || id == uuid.Nil {
		return access.Entry{}, false
	}
	e.Customer = id
	return e, true
}

// serveLogged runs a personal-data read into a buffer and sends it only
// once the read is in the access log. A read that cannot be logged is
// refused (503), never served unlogged; a failed read (404, 400) is sent
// as is and not logged, since it showed nothing.
func (s *Server) serveLogged(w http.ResponseWriter, r *http.Request, rt route, e access.Entry) {
	buf := &bufferedResponse{header: http.Header{}}
	if err := rt.handle(buf, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if buf.status == 0 {
		buf.status = http.StatusOK
	}
	if buf.status < 300 && e.Resource == "search" {
		if err := s.recordSearch(r, buf.body.Bytes(), e); err != nil {
			s.writeError(w, r, err)
			return
		}
		maps.Copy(w.Header(), buf.header)
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.body.Bytes())
		return
	}
	if buf.status < 300 && e.Customer == uuid.Nil {
		var found struct {
			CustomerID uuid.UUID `json:"customerId"`
		}
		if err := json.Unmarshal(buf.body.Bytes(), &found); err != nil || found.CustomerID == uuid.Nil {
			s.writeError(w, r, fmt.Errorf("%w: the answer names no customer to record", ErrAccessLog))
			return
		}
		e.Customer = found.CustomerID
	}
	if buf.status < 300 {
		if err := s.access.Record(r.Context(), e); err != nil {
			s.writeError(w, r, fmt.Errorf("%w: the read could not be recorded: %w", ErrAccessLog, err))
			return
		}
	}
	maps.Copy(w.Header(), buf.header)
	w.WriteHeader(buf.status)
	_, _ = w.Write(buf.body.Bytes())
}

// recordSearch records one access-log entry per customer a name search
// shows; an answer showing nobody leaves none.
func (s *Server) recordSearch(r *http.Request, body []byte, e access.Entry) error {
	var found query.SearchPage
	if err := json.Unmarshal(body, &found); err != nil {
		return fmt.Errorf("%w: the answer names no customers to record: %w", ErrAccessLog, err)
	}
	for _, hit := range found.Results {
		e.Customer = hit.CustomerID
		if err := s.access.Record(r.Context(), e); err != nil {
			return fmt.Errorf("%w: the read could not be recorded: %w", ErrAccessLog, err)
		}
	}
	return nil
}

// bufferedResponse holds a response until the access log has the read.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// asOfParams reads at= (required) and basis=.
func asOfParams(r *http.Request) (query.AsOf, error) {
	q := r.URL.Query()
	at, err := timeParam(q.Get("at"), "at")
	if err != nil {
		return query.AsOf{}, err
	}
	if at.IsZero() {
		return query.AsOf{}, malformed("at is required: RFC 3339 or YYYY-MM-DD")
	}
	basis, err := query.ParseBasis(q.Get("basis"))
	if err != nil {
		return query.AsOf{}, malformed("basis=%q: want recorded or occurred", q.Get("basis"))
	}
	return query.AsOf{At: at, Basis: basis}, nil
}

// customerAsOf: GET /v1/customers/{id}/as-of?at=…&basis=…&score=….
func (s *Server) customerAsOf(w http.ResponseWriter, r *http.Request) error {
	id, err := customerID(r)
	if err != nil {
		return err
	}
	a, err := asOfParams(r)
	if err != nil {
		return err
	}
	score, err := boolParam(r.URL.Query().Get("score"), "score")
	if err != nil {
		return err
	}
	v, err := s.history.Customer(r.Context(), id, a, score)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// pipelineAsOf: GET /v1/pipeline/as-of?at=…&basis=….
func (s *Server) pipelineAsOf(w http.ResponseWriter, r *http.Request) error {
	a, err := asOfParams(r)
	if err != nil {
		return err
	}
	rep, err := s.history.Pipeline(r.Context(), a, pipeline.Options{})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// accessLog: GET /v1/audit/access?customer=…&reader=…&from=…&to=…&after=…&limit=….
func (s *Server) accessLog(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var aq access.Query
	if raw := q.Get("customer"); raw != "" {
		id, err := uuid.Parse(raw)
		if err != nil || id == uuid.Nil {
			return malformed("customer=%q is not a uuid", raw)
		}
		aq.Customer = id
	}
	aq.Reader = q.Get("reader")
	var err error
	if aq.From, err = timeParam(q.Get("from"), "from"); err != nil {
		return err
	}
	if aq.To, err = timeParam(q.Get("to"), "to"); err != nil {
		return err
	}
	if aq.After, err = uintParam(q.Get("after"), "after", 0); err != nil {
		return err
	}
	if aq.Limit, err = limitParam(q.Get("limit"), 100, 1000); err != nil {
		return err
	}
	page, err := s.access.Search(r.Context(), aq)
	if err != nil {
		return err
	}
	if page.Entries == nil {
		page.Entries = []access.Entry{}
	}
	return writeJSON(w, http.StatusOK, page)
}
