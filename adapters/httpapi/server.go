// Package httpapi is cxledger's HTTP edge: JSON over HTTP under /v1,
// problem+json errors from one table (errors.go), bearer tokens with roles
// (auth.go), Prometheus metrics, request ids and a live feed as
// Server-Sent Events. It writes only through adapters/ledger and reads only
// through adapters/query and the store, so that every edge decides alike.
package httpapi

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"golang.org/x/mod/sumdb/note"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cxledger/cxledger/adapters/access"
	analystpkg "github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/script"
	"github.com/google/uuid"
)

// OpenAPI is the API's OpenAPI 3 document, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Store is what the API needs of the event store.
type Store interface {
	ledger.Store
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
	Head(ctx context.Context) (uint64, error)
	Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error
}

// Projections is what the API needs of the running projection engine
// (*projections.Engine).
type Projections interface {
	Status() []projections.Status
	Rebuild(ctx context.Context, name string, progress func(projections.Progress)) error
	// WaitFor waits until the named read models have applied position
	// pos, whichever process owns them.
	WaitFor(ctx context.Context, pos uint64, names ...string) error
}

// Config is the server's configuration. Store, ReadModels and Projections
// are required; zero values elsewhere get the documented defaults.
type Config struct {
	Store       Store
	ReadModels  projections.Backend
	Projections Projections
	// Keyring seals personal data on append, reveals it in the events and
	// views the API returns, and destroys a customer's key on forget; nil
	// runs without one (plaintext).
	Keyring *keyring.Keyring
	// Analyst defines and runs the analysts' JavaScript projections
	// (adapters/analyst); nil answers their routes with 503.
	Analyst *analystpkg.Manager
	// ScriptLimits bound one-time queries' scripts (POST /v1/queries).
	ScriptLimits script.Limits
	// Notary serves the Merkle tree, proofs and the auditor's timeline;
	// nil (a store without one) makes those routes answer 503.
	Notary Notary
	// CheckpointSigner signs the checkpoints GET /v1/audit/checkpoint
	// serves; nil serves none (auditors sign with cxledger checkpoint).
	CheckpointSigner note.Signer

	// Console serves the web console at / and its assets under /console/
	// (adapters/console); nil serves none. It is mounted beside the API,
	// not behind it: the console's pages hold no data, which they fetch
	// from /v1 with the viewer's token.
	Console http.Handler

	// Tokens authenticates requests; AuthDisabled lets every request in as
	// admin (the caller decides when that is acceptable, see cmd/cxledger).
	Tokens       *Tokens
	AuthDisabled bool

	// MaxBodyBytes caps a request body (413 beyond); default 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds every request but the live feed; default 30s.
	RequestTimeout time.Duration
	// ReadyLag is how far (in positions) a read model may trail the log
	// for /readyz; default 1000.
	ReadyLag uint64
	// ConsistencyWait bounds how long a read with minPosition waits for the
	// read models to reach it; default 5s.
	ConsistencyWait time.Duration
	// SSEWriteTimeout is the write deadline of each live-feed write: a
	// client that does not read for that long is dropped; default 10s.
	SSEWriteTimeout time.Duration
	// SSEHeartbeat is how often an idle live feed sends a comment, so that
	// proxies keep it open and a gone client is noticed; default 15s.
	SSEHeartbeat time.Duration
	// MaxSubscribers caps concurrent live feeds (503 beyond); default 256.
	MaxSubscribers int
	// SSEBatch caps the records one live-feed read holds; default 100.
	SSEBatch int

	Logger *slog.Logger
	// Now is the clock metadata is validated against; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.ReadyLag == 0 {
		c.ReadyLag = 1000
	}
	if c.ConsistencyWait <= 0 {
		c.ConsistencyWait = 5 * time.Second
	}
	if c.SSEWriteTimeout <= 0 {
		c.SSEWriteTimeout = 10 * time.Second
	}
	if c.SSEHeartbeat <= 0 {
		c.SSEHeartbeat = 15 * time.Second
	}
	if c.MaxSubscribers <= 0 {
		c.MaxSubscribers = 256
	}
	if c.SSEBatch <= 0 {
		c.SSEBatch = 100
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Tokens == nil {
		c.Tokens = &Tokens{}
	}
}

// Validate reports a configuration the server cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("httpapi: Config.Store is required")
	case c.ReadModels == nil:
		return errors.New("httpapi: Config.ReadModels is required")
	case c.Projections == nil:
		return errors.New("httpapi: Config.Projections is required")
	case !c.AuthDisabled && (c.Tokens == nil || c.Tokens.Len() == 0):
		return errors.New("httpapi: no tokens configured and auth not explicitly disabled")
	}
	return nil
}

// Server serves the API. Create it with New, start it with Listen and
// Serve (or use Handler in tests), stop it with Shutdown.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ledger  *ledger.Service
	query   *query.Service
	history *query.History
	access  *access.Log
	metrics *metrics
	mux     *http.ServeMux
	// patterns is every pattern registered on mux, in order (Patterns).
	patterns []string
	sseSem   chan struct{}

	srv *http.Server
	ln  net.Listener

	// closing ends live feeds and background rebuilds at shutdown: they
	// would otherwise keep Shutdown waiting forever.
	closing context.Context
	stop    context.CancelFunc
	bg      sync.WaitGroup
}

// New returns a server over cfg.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		ledger:  ledger.New(cfg.Store),
		query:   query.New(cfg.ReadModels),
		history: query.NewHistory(cfg.Store),
		access:  access.New(cfg.Store),
		metrics: newMetrics(cfg.Projections.Status),
		mux:     http.NewServeMux(),
		sseSem:  make(chan struct{}, cfg.MaxSubscribers),
	}
	s.ledger.Now = cfg.Now
	s.query.Now = cfg.Now
	s.query.Log = cfg.Store
	if cfg.Keyring != nil {
		s.ledger.Keys, s.query.Keys, s.history.Keys = cfg.Keyring, cfg.Keyring, cfg.Keyring
	}
	s.access.Now = cfg.Now
	s.closing, s.stop = context.WithCancel(context.Background())
	s.routes()
	return s, nil
}

// route is one entry of the routing table: its pattern and the roles
// allowed besides admin.
type route struct {
	pattern string
	roles   []Role
	handle  func(w http.ResponseWriter, r *http.Request) error
}

// Routes returns the routing table: pattern → roles allowed (admin is
// always allowed). Public routes have no roles. Tests enforce it and the
// README documents it from here.
func (s *Server) Routes() map[string][]Role {
	out := map[string][]Role{}
	for _, rt := range s.table() {
		out[rt.pattern] = rt.roles
	}
	return out
}

var (
	svc     = []Role{RoleService}
	reader  = []Role{RoleService, RoleAuditor}
	audit   = []Role{RoleAuditor}
	analyst = []Role{RoleAnalyst}
	feed    = []Role{RoleAnalyst, RoleAuditor}
	anyRole = []Role{RoleService, RoleAnalyst, RoleAuditor}
)

func (s *Server) table() []route {
	return []route{
		{"GET /v1/whoami", anyRole, s.whoami},
		{"POST /v1/customers", svc, s.register},
		{"GET /v1/customers", reader, s.lookup},
		{"GET /v1/customers/search", reader, s.searchCustomers},
		{"GET /v1/customers/{id}", reader, s.customer},
		{"POST /v1/customers/{id}/events", svc, s.appendEvents},
		{"POST /v1/customers/{id}/forget", adminOnly, s.forget},
		{"POST /v1/customers/{id}/merge", svc, s.merge},
		{"POST /v1/customers/{id}/unmerge", svc, s.unmerge},
		{"GET /v1/identity/duplicates", mergers, s.duplicates},
		{"GET /v1/customers/{id}/events", reader, s.readStream},
		{"GET /v1/customers/{id}/timeline", audit, s.timeline},
		{"GET /v1/customers/{id}/as-of", reader, s.customerAsOf},
		{"GET /v1/pipeline/as-of", analyst, s.pipelineAsOf},
		{"GET /v1/customers/{id}/recommendations", reader, s.recommendations},
		{"GET /v1/analytics/campaigns", analyst, s.campaigns},
		{"GET /v1/audit/access", audit, s.accessLog},
		{"GET /v1/audit/tree", audit, s.tree},
		{"GET /v1/audit/checkpoint", audit, s.checkpoint},
		{"GET /v1/audit/proof/inclusion", audit, s.inclusion},
		{"GET /v1/audit/proof/consistency", audit, s.consistency},
		{"GET /v1/customers/{id}/audit", audit, s.auditTimeline},
		{"GET /v1/pipeline", analyst, s.pipeline},
		{"GET /v1/pipeline/board", analyst, s.board},
		{"GET /v1/analytics/rfm", analyst, s.rfm},
		{"GET /v1/analytics/model", analyst, s.model},
		{"POST /v1/analytics/model/fit", analyst, s.fitModel},
		{"GET /v1/analytics/channels", analyst, s.channels},
		{"GET /v1/analytics/tickets", analyst, s.tickets},
		{"GET /v1/analytics/nps", analyst, s.nps},
		{"GET /v1/analytics/customers/{id}", analyst, s.score},
		{"GET /v1/events", feed, s.readAll},
		{"GET /v1/events/live", feed, s.live},
		{"GET /v1/projections", feed, s.projectionStatus},
		{"POST /v1/projections/{name}/rebuild", analyst, s.rebuild},
		{"POST /v1/projections", analyst, s.createProjection},
		{"GET /v1/projections/{name}", analyst, s.getProjection},
		{"PUT /v1/projections/{name}", analyst, s.updateProjection},
		{"DELETE /v1/projections/{name}", analyst, s.deleteProjection},
		{"GET /v1/projections/{name}/state", analyst, s.projectionState},
		{"GET /v1/projections/{name}/export", analyst, s.exportProjection},
		{"POST /v1/queries", analyst, s.runQuery},
	}
}

// handle registers h for pattern on the mux. Every route goes through
// it, so that Patterns lists everything the server serves (the OpenAPI
// test checks the document against that list).
func (s *Server) handle(pattern string, h http.Handler) {
	s.patterns = append(s.patterns, pattern)
	s.mux.Handle(pattern, h)
}

// Patterns returns every pattern the server's mux serves ("GET
// /healthz", "POST /v1/customers", …), public routes and the "/"
// catch-all included.
func (s *Server) Patterns() []string { return slices.Clone(s.patterns) }

func (s *Server) routes() {
	for _, rt := range s.table() {
		s.handle(rt.pattern, s.instrument(rt.pattern, s.authorize(rt)))
	}
	public := func(pattern string, h http.HandlerFunc) {
		s.handle(pattern, s.instrument(pattern, h))
	}
	public("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	public("GET /readyz", s.ready)
	public("GET /metrics", s.metrics.ServeHTTP)
	public("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	})
	if s.cfg.Console != nil {
		public("GET /{$}", s.cfg.Console.ServeHTTP)
		public("GET /console/", s.cfg.Console.ServeHTTP)
	}
	// Everything else: a problem document rather than net/http's text
	// 404 and 405, so that clients parse one error format.
	s.handle("/", s.instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("%w: no route %s %s", ErrNotFound, r.Method, r.URL.Path))
	})))
}

// longRunning are the routes RequestTimeout does not bound: the live feed,
// and the analyst routes that stream a build's progress or a query (they
// end when the client goes away).
var longRunning = map[string]bool{
	"GET /v1/events/live":               true,
	"POST /v1/projections":              true,
	"PUT /v1/projections/{name}":        true,
	"POST /v1/queries":                  true,
	"GET /v1/projections/{name}/export": true,
}

// authorize authenticates the request, checks its role against the route,
// applies the body limit and timeout, and runs the handler, writing its
// error as a problem.
func (s *Server) authorize(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		role := who.Role
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, who))
		if st, ok := w.(*statusWriter); ok {
			st.role = role
		}
		if role != RoleAdmin && !slices.Contains(rt.roles, role) {
			s.writeError(w, r, fmt.Errorf("%w: role %s may not %s", ErrForbidden, role, rt.pattern))
			return
		}
		if err := checkQuery(r.URL.RawQuery); err != nil {
			s.writeError(w, r, err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if !longRunning[rt.pattern] {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout + 5*time.Second))
		}
		if logged, ok := s.loggedRead(r, rt.pattern); ok {
			s.serveLogged(w, r, rt, logged)
			return
		}
		if err := rt.handle(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type requestIDKey struct{}
type loggerKey struct{}

// requestID returns the request's id ("" outside a request).
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestIDHeader carries the request id both ways.
const RequestIDHeader = "X-Request-Id"

// validRequestID accepts a caller's id only when it is short printable
// ASCII, so that it cannot forge log lines.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	if id, err := uuid.NewV7(); err == nil {
		return id.String()
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status and size of a response for logs and
// metrics. It passes Flush and deadlines through (Unwrap), which the live
// feed needs.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	role   Role
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher for handlers that test for it.
func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// instrument gives the request an id and a logger carrying it, then logs
// and measures it under route (the pattern, never the raw path, so that
// metrics have bounded cardinality).
func (s *Server) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		log := s.log.With("request_id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = context.WithValue(ctx, loggerKey{}, log)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.observeRequest(route, r.Method, sw.status, d)
		level := slog.LevelInfo
		if route == "GET /healthz" || route == "GET /readyz" || route == "GET /metrics" {
			level = slog.LevelDebug
		}
		// The Authorization header is never logged; the role is enough.
		log.Log(ctx, level, "http request", "method", r.Method, "route", route, "path", r.URL.Path,
			"status", sw.status, "bytes", sw.bytes, "duration_ms", float64(d.Microseconds())/1000, "role", string(sw.role))
	})
}

// Handler returns the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Listen opens the listening socket ("127.0.0.1:0" picks a free port).
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	// Refusals net/http writes itself become problem documents too
	// (refusals.go).
	s.ln = shapingListener{Listener: ln, s: s}
	// The http.Server exists from here on, so that a Shutdown racing a
	// Serve that has not started yet sees it (and Serve then returns at
	// once).
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		// ReadTimeout bounds slow uploads; WriteTimeout is per request (set
		// in authorize), because the live feed writes for hours.
		ReadTimeout: s.cfg.RequestTimeout,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.srv.RegisterOnShutdown(s.stop)
	return nil
}

// Addr returns the address listened on, after Listen.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve serves on the socket opened by Listen until Shutdown; it returns
// nil after a Shutdown.
func (s *Server) Serve() error {
	if s.ln == nil || s.srv == nil {
		return errors.New("httpapi: Serve before Listen")
	}
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections, ends live feeds, and waits until
// in-flight requests — appends included — have finished, or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	var err error
	if s.srv != nil {
		err = s.srv.Shutdown(ctx)
	}
	if s.ln != nil {
		// Serve closes it; a Serve that never ran did not.
		_ = s.ln.Close()
	}
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// checkQuery refuses, for every route, a query string that does not parse
// or whose names or values are not UTF-8 or hold control characters (NUL
// included): no parameter has a use for them, and a store may refuse them
// with an error of its own (PostgreSQL cannot hold NUL in text) that would
// surface as a 500. The parameter is named, its value quoted escaped.
func checkQuery(raw string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return malformed("query string: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) { // the same answer every time
		for _, v := range append([]string{name}, q[name]...) {
			if !utf8.ValidString(v) {
				return malformed("query parameter %s: not valid UTF-8", strconv.QuoteToGraphic(name))
			}
			if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
				return malformed("query parameter %s: control character %U is not allowed", strconv.QuoteToGraphic(name), []rune(v[i:])[0])
			}
		}
	}
	return nil
}

// requireJSON refuses a request body the server would have to guess
// about, with ErrUnsupportedMediaType (415): a Content-Type other than
// application/json (or a +json type; a charset, if any, must be UTF-8), a
// missing one — a body of unknown type is not read as JSON by default —
// and any Content-Encoding but identity: the body is decoded as it is
// sent, never decompressed, so a gzip body would be refused as malformed
// JSON or, worse, a proxy and the server would disagree on its meaning.
func requireJSON(r *http.Request) error {
	for _, ce := range r.Header.Values("Content-Encoding") {
		for _, c := range strings.Split(ce, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return fmt.Errorf("%w: Content-Encoding %s: bodies are not decompressed; send the JSON as it is (Content-Encoding: identity)", ErrUnsupportedMediaType, strconv.QuoteToGraphic(c))
			}
		}
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return fmt.Errorf("%w: no Content-Type: send Content-Type: application/json", ErrUnsupportedMediaType)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: Content-Type %s cannot be read (%v): send Content-Type: application/json", ErrUnsupportedMediaType, strconv.QuoteToGraphic(ct), err)
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return fmt.Errorf("%w: Content-Type %s: send Content-Type: application/json", ErrUnsupportedMediaType, strconv.QuoteToGraphic(mt))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Errorf("%w: charset %s: JSON is UTF-8 (send Content-Type: application/json)", ErrUnsupportedMediaType, strconv.QuoteToGraphic(cs))
	}
	return nil
}
