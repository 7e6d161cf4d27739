package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/client"
	"github.com/cxledger/cxledger/adapters/httpapi"
)

// Bounds of the waits on the child process. They are generous: they only
// turn a hang into a failure that says what was awaited.
const (
	readyTimeout = 60 * time.Second // start-up: open the store, migrate, listen
	exitTimeout  = 60 * time.Second // SIGKILL reaped, or graceful shutdown
)

// buildServer builds cmd/cxledger into dir, from the module root, and
// returns the binary's path.
func buildServer(t *testing.T, dir string, race bool) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: not inside the cxledger module (%q)", gomod)
	}
	bin := filepath.Join(dir, "cxledger")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/cxledger")...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cxledger: %v\n%s", err, out)
	}
	return bin
}

// childEnv is the test's environment without CXLEDGER_* variables, so that
// a developer's settings (tokens, a broker, another store) cannot change
// what the child serves; the flags say everything.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CXLEDGER_") {
			env = append(env, kv)
		}
	}
	return env
}

// server runs `cxledger serve` as a child process, one incarnation after
// the other, on the same data. Appenders read the current base URL with
// URL; only one goroutine at a time (the killer, then the test) starts and
// stops incarnations.
type server struct {
	bin  string
	args []string
	env  []string
	log  *serverLog
	// transport carries every request to the server, the appenders'
	// included, so that stop can close its idle connections first: a
	// connection dialled but never used (the client had found an idle one
	// meanwhile) would hold a graceful shutdown for 5 s (net/http treats a
	// new connection as idle only after that long).
	transport *http.Transport
	http      *http.Client // for health and status checks

	url atomic.Pointer[string] // base URL of the incarnation serving, "" while down

	mu   sync.Mutex
	cur  *process
	runs int
}

// process is one incarnation of the server.
type process struct {
	n      int
	cmd    *exec.Cmd
	ready  chan string // the base URL, once the server logs that it serves
	exited chan struct{}
	err    error // cmd.Wait's result, set before exited is closed
}

func newServer(bin string, args []string, log *serverLog) *server {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	s := &server{bin: bin, args: args, env: childEnv(), log: log, transport: tr, http: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
	s.url.Store(new(""))
	return s
}

// client returns an API client of the incarnation serving, or nil while
// the server is down or starting.
func (s *server) client() *client.Client {
	url := s.URL()
	if url == "" {
		return nil
	}
	c := client.New(url, "")
	c.HTTP = &http.Client{Transport: s.transport}
	return c
}

// URL returns the base URL of the incarnation serving, or "" while the
// server is down or starting.
func (s *server) URL() string { return *s.url.Load() }

// launch starts a new incarnation on a free loopback port and returns at
// once; ready then reports its URL.
func (s *server) launch() (*process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return nil, fmt.Errorf("launch: incarnation %d is still running", s.cur.n)
	}
	s.runs++
	p := &process{n: s.runs, ready: make(chan string, 1), exited: make(chan struct{})}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--broker", "none", "--shutdown-timeout", "20s"}, s.args...)
	p.cmd = exec.Command(s.bin, args...)
	p.cmd.Env = s.env
	w := &lineWriter{n: p.n, log: s.log, ready: p.ready}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start incarnation %d: %w", p.n, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		w.flush()
		close(p.exited)
	}()
	s.cur = p
	return p, nil
}

// awaitReady waits until p logs the address it serves and answers
// /healthz, then publishes its URL to the appenders.
func (s *server) awaitReady(ctx context.Context, p *process) error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	var url string
	select {
	case url = <-p.ready:
	case <-p.exited:
		return fmt.Errorf("incarnation %d exited before serving: %v", p.n, p.err)
	case <-deadline.C:
		return fmt.Errorf("incarnation %d did not log its address within %s (looking for a line with %s and url=…)", p.n, readyTimeout, serveMsg)
	case <-ctx.Done():
		return ctx.Err()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.healthy(ctx, url) {
			s.url.Store(&url)
			return nil
		}
		select {
		case <-tick.C:
		case <-p.exited:
			return fmt.Errorf("incarnation %d exited before /healthz answered: %v", p.n, p.err)
		case <-deadline.C:
			return fmt.Errorf("incarnation %d: %s/healthz did not answer within %s", p.n, url, readyTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *server) healthy(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill SIGKILLs the current incarnation and waits until it is reaped (its
// files and locks released). It reports whether the incarnation had died
// on its own before the signal, which is a failure of the server.
func (s *server) kill() error {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return errors.New("kill: no incarnation running")
	}
	s.url.Store(new(""))
	select {
	case <-p.exited:
		return fmt.Errorf("incarnation %d had exited on its own before it was killed: %v", p.n, p.err)
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill incarnation %d: %w", p.n, err)
	}
	if err := waitExit(p); err != nil {
		return err
	}
	s.log.printf(p.n, "--- SIGKILL ---")
	s.clear(p)
	return nil
}

// stop shuts the current incarnation down gracefully (SIGTERM, as
// Ctrl-C or an orchestrator would) and requires a clean exit.
func (s *server) stop() error {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return errors.New("stop: no incarnation running")
	}
	s.url.Store(new(""))
	s.transport.CloseIdleConnections()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop incarnation %d: %w", p.n, err)
	}
	if err := waitExit(p); err != nil {
		return err
	}
	s.clear(p)
	if p.err != nil {
		return fmt.Errorf("incarnation %d did not shut down cleanly: %v", p.n, p.err)
	}
	return nil
}

// abort kills whatever runs, for the test's cleanup.
func (s *server) abort() {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = waitExit(p)
	s.clear(p)
}

func (s *server) clear(p *process) {
	s.mu.Lock()
	if s.cur == p {
		s.cur = nil
	}
	s.mu.Unlock()
}

func waitExit(p *process) error {
	t := time.NewTimer(exitTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
		return fmt.Errorf("incarnation %d (pid %d) did not exit within %s", p.n, p.cmd.Process.Pid, exitTimeout)
	}
}

// projectionStatus fetches GET /v1/projections.
func (s *server) projectionStatus(ctx context.Context) ([]httpapi.ProjectionStatus, error) {
	url := s.URL()
	if url == "" {
		return nil, errors.New("server is down")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/projections", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/projections: %s", resp.Status)
	}
	var body struct {
		Projections []httpapi.ProjectionStatus `json:"projections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /v1/projections: %w", err)
	}
	return body.Projections, nil
}

// awaitCaughtUp polls the projection status until every read model is
// live with its checkpoint at head or beyond; a failed read model ends the
// wait at once with its error.
func (s *server) awaitCaughtUp(ctx context.Context, head uint64, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		sts, err := s.projectionStatus(ctx)
		if err != nil {
			last = err.Error()
		} else {
			var behind []string
			for _, st := range sts {
				if st.State == "failed" {
					return fmt.Errorf("read model %s failed: %s", st.Name, st.Error)
				}
				if st.Checkpoint < head || st.State != "live" {
					behind = append(behind, fmt.Sprintf("%s %s at %d", st.Name, st.State, st.Checkpoint))
				}
			}
			if len(sts) > 0 && len(behind) == 0 {
				return nil
			}
			last = strings.Join(behind, ", ")
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("read models not caught up with position %d within %s: %s", head, timeout, last)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lineWriter receives one incarnation's output: it copies every line into
// the shared log and reports the URL the server logs once it listens.
type lineWriter struct {
	n     int
	log   *serverLog
	ready chan string
	buf   []byte
	found bool
}

// serveMsg is the line serve logs once it listens, with its url.
const serveMsg = `msg="serving the cxledger API"`

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

func (w *lineWriter) line(l string) {
	w.log.printf(w.n, "%s", l)
	if w.found || !strings.Contains(l, serveMsg) {
		return
	}
	for f := range strings.FieldsSeq(l) {
		if u, ok := strings.CutPrefix(f, "url="); ok {
			w.found = true
			w.ready <- u
			return
		}
	}
}

// serverLog collects the output of every incarnation, each line prefixed
// with its incarnation, for the failure report.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) printf(n int, format string, args ...any) {
	line := fmt.Sprintf("[%d] ", n) + fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

// tail returns the last n lines.
func (l *serverLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := max(0, len(l.lines)-n)
	return strings.Join(l.lines[from:], "\n")
}

// grep returns up to n lines containing any of words (case-insensitive).
func (l *serverLog) grep(n int, words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		low := strings.ToLower(line)
		for _, w := range words {
			if strings.Contains(low, w) {
				out = append(out, line)
				break
			}
		}
		if len(out) == n {
			break
		}
	}
	return out
}
