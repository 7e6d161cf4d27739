package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cxledger/cxledger/adapters/access"
	analystpkg "github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/projections/script"
)

// Analyst projections (JavaScript) and one-time queries: the routes that
// define, read and run them. Definitions go through Config.Analyst (every
// process on the database sees them); reading state needs only the
// backend.

// ErrNoAnalyst: the server runs without analyst projections.
var ErrNoAnalyst = errors.New("analyst projections not enabled on this server")

// ProjectionRequest is the body of POST /v1/projections and PUT
// /v1/projections/{name}.
type ProjectionRequest struct {
	// Name is the projection's name (POST only; PUT takes it from the
	// path): "js_" is prefixed when missing.
	Name string `json:"name,omitempty"`
	// Source is the JavaScript (KurrentDB projection syntax).
	Source string `json:"source"`
}

// QueryRequest is the body of POST /v1/queries.
type QueryRequest struct {
	Source string `json:"source"`
	// From and To bound the positions read, inclusive; 0 means the start
	// and the head.
	From uint64 `json:"from,omitempty"`
	To   uint64 `json:"to,omitempty"`
	// Format is json (default), csv or parquet.
	Format string `json:"format,omitempty"`
}

// DecodeProjectionRequest reads a create or update body strictly: unknown
// members, duplicate keys and trailing data are refused (400), as is a
// missing source.
func DecodeProjectionRequest(body []byte) (ProjectionRequest, error) {
	var req ProjectionRequest
	if err := decodeJSON(bytes.NewReader(body), &req); err != nil {
		return ProjectionRequest{}, err
	}
	if strings.TrimSpace(req.Source) == "" {
		return ProjectionRequest{}, malformed("source is required")
	}
	return req, nil
}

func (s *Server) analystManager() (*analystpkg.Manager, error) {
	if s.cfg.Analyst == nil {
		return nil, ErrNoAnalyst
	}
	return s.cfg.Analyst, nil
}

// recordAnalyst records a create, update, read or query in the access log;
// the request is refused when it cannot be.
func (s *Server) recordAnalyst(r *http.Request, resource, name string) error {
	who := principal(r.Context())
	q := "name=" + name
	if r.URL.RawQuery != "" {
		q += "&" + r.URL.RawQuery
	}
	err := s.access.Record(r.Context(), access.Entry{
		Customer: analystpkg.Subject(name), Reader: who.Name, Role: string(who.Role), Resource: resource,
		Query: q, Via: "http", RequestID: requestID(r.Context()),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAccessLog, err)
	}
	return nil
}

func actor(r *http.Request) string {
	who := principal(r.Context())
	return string(who.Role) + ":" + who.Name
}

// wantsEvents reports whether the client asked for a stream of progress
// events (Accept: text/event-stream).
func wantsEvents(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// createProjection: POST /v1/projections.
func (s *Server) createProjection(w http.ResponseWriter, r *http.Request) error {
	return s.defineProjection(w, r, "")
}

// updateProjection: PUT /v1/projections/{name}.
func (s *Server) updateProjection(w http.ResponseWriter, r *http.Request) error {
	return s.defineProjection(w, r, r.PathValue("name"))
}

func (s *Server) defineProjection(w http.ResponseWriter, r *http.Request, pathName string) error {
	m, err := s.analystManager()
	if err != nil {
		return err
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return jsonProblem(err)
	}
	req, err := DecodeProjectionRequest(body)
	if err != nil {
		return err
	}
	update := pathName != ""
	if update {
		if req.Name != "" {
			return malformed("name goes in the path, not the body")
		}
		req.Name = pathName
	} else if req.Name == "" {
		return malformed("name is required")
	}
	name, err := analystpkg.Canonical(req.Name)
	if err != nil {
		return err
	}
	if _, err := m.Validate(name, req.Source); err != nil {
		return err // refused before anything is logged or stored
	}
	resource := "analyst-projection-create"
	if update {
		resource = "analyst-projection-update"
	}
	if err := s.recordAnalyst(r, resource, name); err != nil {
		return err
	}
	head, err := s.cfg.Store.Head(r.Context())
	if err != nil {
		return err
	}
	var def analystpkg.Definition
	if update {
		def, err = m.Update(r.Context(), name, req.Source, actor(r))
	} else {
		def, err = m.Create(r.Context(), name, req.Source, actor(r))
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/projections/"+def.Name)
	if !wantsEvents(r) {
		status := http.StatusCreated
		if update {
			status = http.StatusOK
		}
		return writeJSON(w, status, def)
	}
	// Progress as Server-Sent Events until the new version serves reads
	// at the head as it was, or fails; the client leaving stops the wait,
	// not the build.
	sse := s.startSSE(w, r)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	err = m.Wait(ctx, def.Name, def.Version, head, 500*time.Millisecond, func(p analystpkg.Progress) {
		_ = sse.event("progress", p)
	})
	if err != nil {
		var f *analystpkg.Failed
		if errors.As(err, &f) {
			return sse.event("failed", f)
		}
		if ctx.Err() == nil {
			p, _ := problemFor(err)
			return sse.event("error", p)
		}
		return nil
	}
	return sse.event("done", def)
}

// sseWriter writes Server-Sent Events on a response whose headers it sent.
type sseWriter struct {
	mu sync.Mutex
	w  http.ResponseWriter
	rc *http.ResponseController
	to time.Duration
}

func (s *Server) startSSE(w http.ResponseWriter, r *http.Request) *sseWriter {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w, rc: rc, to: s.cfg.SSEWriteTimeout}
}

func (e *sseWriter) event(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.rc.SetWriteDeadline(time.Now().Add(e.to))
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return err
	}
	return e.rc.Flush()
}

// ProjectionDetail is GET /v1/projections/{name}: the definition with its
// source, and the read model's status as GET /v1/projections shows it
// (absent while no process has registered it).
type ProjectionDetail struct {
	analystpkg.Definition
	Status *ProjectionStatus `json:"status,omitempty"`
}

// getProjection: GET /v1/projections/{name} — the definition, its source
// and its status.
func (s *Server) getProjection(w http.ResponseWriter, r *http.Request) error {
	m, err := s.analystManager()
	if err != nil {
		return err
	}
	def, err := m.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	out := ProjectionDetail{Definition: def}
	for _, st := range s.cfg.Projections.Status() {
		if st.Name == def.Name {
			out.Status = &ProjectionStatus{Status: st}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// deleteProjection: DELETE /v1/projections/{name}.
func (s *Server) deleteProjection(w http.ResponseWriter, r *http.Request) error {
	m, err := s.analystManager()
	if err != nil {
		return err
	}
	name, err := analystpkg.Canonical(r.PathValue("name"))
	if err != nil {
		return err
	}
	if _, err := m.Get(r.Context(), name); err != nil {
		return err
	}
	if err := s.recordAnalyst(r, "analyst-projection-delete", name); err != nil {
		return err
	}
	if err := m.Delete(r.Context(), name, actor(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// StateOut is GET /v1/projections/{name}/state.
type StateOut struct {
	Name        string `json:"name"`
	Version     int    `json:"version"`
	Partitioned bool   `json:"partitioned"`
	// Checkpoint is the position the served state has applied.
	Checkpoint uint64 `json:"checkpoint"`
	// Partition and State: the whole state of an unpartitioned projection,
	// or one partition's (?partition=).
	Partition  string                     `json:"partition,omitempty"`
	State      json.RawMessage            `json:"state,omitempty"`
	Partitions []analystpkg.PartitionJSON `json:"partitions,omitempty"`
	// Next is the cursor of the next page of partitions ("" at the end).
	Next string `json:"next,omitempty"`
}

// projectionState: GET /v1/projections/{name}/state[?partition=K |
// ?after=CURSOR&limit=N].
func (s *Server) projectionState(w http.ResponseWriter, r *http.Request) error {
	m, err := s.analystManager()
	if err != nil {
		return err
	}
	def, err := m.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := uintParam(q.Get("limit"), "limit", 100)
	if err != nil {
		return err
	}
	if limit < 1 || limit > 1000 {
		return malformed("limit %d: want 1 to 1000", limit)
	}
	if err := s.recordAnalyst(r, "analyst-state", def.Name); err != nil {
		return err
	}
	out := StateOut{Name: def.Name, Version: def.Version, Partitioned: def.Partitioned}
	ctx := r.Context()
	if out.Checkpoint, err = analystpkg.Checkpoint(ctx, s.cfg.ReadModels, def.Name); err != nil {
		return err
	}
	partition := q.Get("partition")
	switch {
	case !def.Partitioned || partition != "":
		out.Partition = partition
		if out.State, err = analystpkg.State(ctx, s.cfg.ReadModels, s.cfg.Keyring, def.Name, partition); err != nil {
			return err
		}
	default:
		parts, next, err := analystpkg.Partitions(ctx, s.cfg.ReadModels, s.cfg.Keyring, def.Name, q.Get("after"), int(limit))
		if err != nil {
			return err
		}
		out.Partitions, out.Next = make([]analystpkg.PartitionJSON, len(parts)), next
		for i, p := range parts {
			out.Partitions[i] = analystpkg.PartitionJSON{Key: p.Key, State: p.State}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// exportProjection: GET /v1/projections/{name}/export?format=csv|parquet|json
// — every partition's state as one table.
func (s *Server) exportProjection(w http.ResponseWriter, r *http.Request) error {
	m, err := s.analystManager()
	if err != nil {
		return err
	}
	def, err := m.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = analystpkg.FormatCSV
	}
	if err := analystpkg.CheckFormat(format); err != nil {
		return err
	}
	res, err := analystpkg.ReadAll(r.Context(), s.cfg.ReadModels, s.cfg.Keyring, def.Name, def.Partitioned)
	if err != nil {
		return err
	}
	if err := s.recordAnalyst(r, "analyst-export", def.Name); err != nil {
		return err
	}
	w.Header().Set("Content-Type", analystpkg.ContentType(format))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, def.Name, format))
	w.WriteHeader(http.StatusOK)
	if err := analystpkg.Write(w, format, res); err != nil {
		loggerFrom(r.Context(), s.log).Warn("export cut short", "projection", def.Name, "error", err)
	}
	return nil
}

// runQuery: POST /v1/queries — a script run once over the log, nothing
// written. The answer is the result (json, csv or parquet); with Accept:
// text/event-stream, progress events and then a "result" event (JSON).
// The query stops when the client goes away.
func (s *Server) runQuery(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	var req QueryRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Source) == "" {
		return malformed("source is required")
	}
	if req.Format == "" {
		req.Format = analystpkg.FormatJSON
	}
	if err := analystpkg.CheckFormat(req.Format); err != nil {
		return err
	}
	if err := s.recordAnalyst(r, "analyst-query", "query"); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	var sse *sseWriter
	var progress func(script.Progress)
	if wantsEvents(r) {
		// Validate before the stream starts, so that a refusal is a 422.
		if _, err := analystpkg.ScriptCompiler(s.cfg.ScriptLimits)(analystpkg.Prefix+"query", req.Source); err != nil {
			return err
		}
		sse = s.startSSE(w, r)
		last := time.Time{}
		progress = func(p script.Progress) {
			if time.Since(last) >= 500*time.Millisecond {
				last = time.Now()
				_ = sse.event("progress", p)
			}
		}
	}
	res, to, err := analystpkg.Query(ctx, s.cfg.Store, s.cfg.Keyring, req.Source, req.From, req.To, s.cfg.ScriptLimits, progress)
	if sse != nil {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p, _ := problemFor(err)
			if se := analystpkg.Failure(err); se != nil {
				return sse.event("failed", analystpkg.FailureOf(err))
			}
			return sse.event("error", p)
		}
		return sse.event("result", queryOut(res, to))
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", analystpkg.ContentType(req.Format))
	w.Header().Set("X-Cxledger-Position", fmt.Sprint(to))
	if req.Format == analystpkg.FormatJSON {
		return writeJSON(w, http.StatusOK, queryOut(res, to))
	}
	w.WriteHeader(http.StatusOK)
	if err := analystpkg.Write(w, req.Format, res); err != nil {
		loggerFrom(r.Context(), s.log).Warn("query result cut short", "error", err)
	}
	return nil
}

func queryOut(res script.Result, to uint64) analystpkg.ResultJSON {
	out := analystpkg.ResultJSON{Partitioned: res.Partitioned, Position: to, State: res.State}
	if res.Partitioned {
		out.State = nil
		out.Partitions = make([]analystpkg.PartitionJSON, len(res.Partitions))
		for i, p := range res.Partitions {
			out.Partitions[i] = analystpkg.PartitionJSON{Key: p.Key, State: p.State}
		}
	}
	return out
}

// analystStatus adds the analyst projections' definitions (version,
// digest of the source, who and when, failure) to their rows of GET
// /v1/projections.
func (s *Server) analystStatus(ctx context.Context, rows []ProjectionStatus) error {
	if s.cfg.Analyst == nil {
		return nil
	}
	defs, err := s.cfg.Analyst.List(ctx)
	if err != nil {
		return err
	}
	byName := map[string]analystpkg.Definition{}
	for _, d := range defs {
		d.Source = "" // GET /v1/projections/{name} has it
		byName[d.Name] = d
	}
	for i := range rows {
		if d, ok := byName[rows[i].Name]; ok {
			rows[i].Analyst = &d
			if f := analystpkg.FailureOf; rows[i].Err != nil && d.Failure == nil {
				rows[i].Analyst.Failure = f(rows[i].Err)
			}
		}
	}
	return nil
}
