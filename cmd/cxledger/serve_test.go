package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/client"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/google/uuid"
)

const (
	serviceToken = "service-0123456789abcdef"
	analystToken = "analyst-0123456789abcdef"
)

// startMain runs the real server on a loopback port over the store cfg
// selects, with a service and an analyst token.
func startMain(t *testing.T, cfg storeConfig, store eventstore.Store) *Main {
	t.Helper()
	toks, err := loadTokens("", "service:"+serviceToken+",analyst:"+analystToken)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Addr: "127.0.0.1:0", Tokens: toks, Log: slog.New(slog.DiscardHandler), store: store, ShutdownTimeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func backends(t *testing.T) map[string]storeConfig {
	return map[string]storeConfig{
		"embedded": {Data: t.TempDir()},
		"postgres": {Store: pgtest.URL(t), Schema: pgtest.Schema(t)},
	}
}

func md() httpapi.Metadata {
	return httpapi.Metadata{OccurredAt: time.Now().UTC().Add(-time.Minute), Actor: "service:e2e", Channel: "phone"}
}

func TestServeEndToEnd(t *testing.T) {
	for name, cfg := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			m := startMain(t, cfg, nil)
			svc := client.New(m.URL(), serviceToken)
			analyst := client.New(m.URL(), analystToken)

			// Live feed first, from the beginning: catch-up, then live.
			got := make(chan eventstore.Record, 100)
			subCtx, stopSub := context.WithCancel(ctx)
			defer stopSub()
			go func() { _ = analyst.Subscribe(subCtx, 0, func(r eventstore.Record) error { got <- r; return nil }) }()

			id := uuid.New()
			reg, err := svc.Register(ctx, httpapi.RegisterRequest{
				CustomerID: id, EventID: uuid.New(), Name: "Zoë Ñúñez", Country: "ES", Metadata: md(),
				Identifiers: []httpapi.Identifier{{Kind: domain.IdentifierEmail, Value: "Zoe@Example.ES"}, {Kind: domain.IdentifierExternal, Value: "shopify:81723"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			tps := []client.Touchpoint{
				{ID: uuid.New(), Event: domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta", Outcome: domain.CallConnected}, Metadata: md()},
				{ID: uuid.New(), Event: domain.NoteAdded{Body: "Prefers e-mail — 日本語 ✓"}, Metadata: md()},
			}
			res, err := svc.Append(ctx, id, eventstore.Exact(reg.Version), tps...)
			if err != nil {
				t.Fatal(err)
			}
			// The same request again is an idempotent retry.
			again, err := svc.Append(ctx, id, eventstore.Exact(reg.Version), tps...)
			if err != nil || again != res {
				t.Fatalf("retry: %+v %v, want %+v", again, err, res)
			}
			v, err := svc.Lookup(ctx, domain.IdentifierExternal, "shopify:81723", res.Position)
			if err != nil || v.CustomerID != id || v.Events != 5 {
				t.Fatalf("lookup: %s events %d: %v", v.CustomerID, v.Events, err)
			}
			page, err := svc.ReadStream(ctx, id, 0, 0)
			if err != nil || len(page.Events) != 5 || page.Events[4].Type != domain.TypeNoteAdded {
				t.Fatalf("stream: %d events: %v", len(page.Events), err)
			}

			// Conflict over raw HTTP: 409, actual version, nothing written.
			head := res.Position
			body := `{"expectedVersion":1,"events":[{"type":"NoteAdded","data":{"body":"late"},"metadata":{"occurredAt":"2026-01-01T00:00:00Z","actor":"user:x"}}]}`
			st, prob := rawPost(t, m.URL()+"/v1/customers/"+id.String()+"/events", serviceToken, body)
			if st != 409 || prob.ActualVersion == nil || *prob.ActualVersion != 4 || prob.Slug() != "version-conflict" {
				t.Fatalf("conflict: %d %+v", st, prob)
			}
			// The analyst may not append.
			if st, prob := rawPost(t, m.URL()+"/v1/customers/"+id.String()+"/events", analystToken, body); st != 403 || prob.Slug() != "forbidden" {
				t.Fatalf("analyst append: %d %+v", st, prob)
			}
			feed, err := analyst.ReadAll(ctx, 0, 0)
			if err != nil || len(feed.Events) != 5 || feed.Events[4].Position != head {
				t.Fatalf("feed after refused requests: %d events: %v", len(feed.Events), err)
			}
			if _, err := svc.ReadAll(ctx, 0, 0); !errors.Is(err, client.ErrForbidden) {
				t.Fatalf("service reading the global feed: %v", err)
			}

			for i := 1; i <= 5; i++ {
				select {
				case r := <-got:
					if r.Position != uint64(i) {
						t.Fatalf("live feed: position %d, want %d", r.Position, i)
					}
				case <-ctx.Done():
					t.Fatalf("live feed: event %d not delivered", i)
				}
			}

			// Operations.
			waitReady(t, m.URL())
			metrics := get(t, m.URL()+"/metrics")
			for _, want := range []string{`cxledger_appends_total{outcome="ok"} 3`, `cxledger_appends_total{outcome="version-conflict"} 1`, `cxledger_projection_lag{projection="timeline"}`, `cxledger_live_subscribers 1`} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if spec := get(t, m.URL()+"/openapi.yaml"); !strings.HasPrefix(spec, "openapi: 3") {
				t.Errorf("openapi.yaml: %.40s", spec)
			}
		})
	}
}

// TestServeSSERaw drives the live feed as a browser would: Last-Event-ID
// resumes after a position.
func TestServeSSERaw(t *testing.T) {
	m := startMain(t, storeConfig{Data: t.TempDir()}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	svc := client.New(m.URL(), serviceToken)
	for i := 0; i < 3; i++ {
		if _, err := svc.Register(ctx, httpapi.RegisterRequest{Name: fmt.Sprintf("Customer %d", i), Metadata: md()}); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", m.URL()+"/v1/events/live", nil)
	req.Header.Set("Authorization", "Bearer "+analystToken)
	req.Header.Set("Last-Event-ID", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	for sc.Scan() && len(ids) < 2 {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	if strings.Join(ids, ",") != "2,3" {
		t.Fatalf("ids %v, want 2,3", ids)
	}
}

// slowStore holds every append for a while, so that one is in flight when
// the server shuts down.
type slowStore struct {
	eventstore.Store
	entered chan struct{}
	once    sync.Once
}

func (s *slowStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.once.Do(func() { close(s.entered) })
	time.Sleep(500 * time.Millisecond)
	return s.Store.Append(ctx, stream, expected, events...)
}

func TestServeGracefulShutdownFinishesAppend(t *testing.T) {
	dir := t.TempDir()
	bolt, err := boltstore.Open(filepath.Join(dir, dataFileName), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	slow := &slowStore{Store: bolt, entered: make(chan struct{})}
	m := startMain(t, storeConfig{Data: dir}, slow)
	svc := client.New(m.URL(), serviceToken)
	id := uuid.New()
	done := make(chan error, 1)
	go func() {
		_, err := svc.Register(context.Background(), httpapi.RegisterRequest{CustomerID: id, Name: "In flight", Metadata: md()})
		done <- err
	}()
	<-slow.entered
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight append failed: %v", err)
	}
	recs, err := bolt.ReadStream(context.Background(), domain.StreamID(id), eventstore.ReadStreamOptions{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("after shutdown: %d events, %v", len(recs), err)
	}
	if _, err := http.Get(m.URL() + "/healthz"); err == nil && m.URL() != "" {
		t.Fatal("server still answers after Close")
	}
}

func TestServeAuthDecision(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	// No tokens on loopback: runs, everyone is admin.
	m := &Main{Config: storeConfig{Data: t.TempDir()}, Addr: "127.0.0.1:0", Log: log}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(m.URL() + "/v1/projections")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("auth disabled: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// No tokens on every interface: refused unless explicit.
	m = &Main{Config: storeConfig{Data: t.TempDir()}, Addr: "0.0.0.0:0", Log: log}
	if err := m.Run(context.Background()); err == nil || !errors.Is(err, errUsage) {
		_ = m.Close()
		t.Fatalf("open network without tokens: %v", err)
	}
	// Tokens and --insecure-no-auth together contradict.
	toks, _ := loadTokens("", "admin:"+serviceToken)
	m = &Main{Config: storeConfig{Data: t.TempDir()}, Addr: "127.0.0.1:0", Log: log, Tokens: toks, InsecureNoAuth: true}
	if err := m.Run(context.Background()); err == nil {
		_ = m.Close()
		t.Fatal("tokens with --insecure-no-auth accepted")
	}
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	lines := filepath.Join(dir, "tokens.txt")
	js := filepath.Join(dir, "tokens.json")
	_ = os.WriteFile(lines, []byte("# ops\nservice "+serviceToken+"\n\nauditor auditor-0123456789abcdef\n"), 0o600)
	_ = os.WriteFile(js, []byte(`{"tokens":[{"role":"admin","token":"admin-0123456789abcdef"}]}`), 0o600)
	for _, file := range []string{lines, js} {
		toks, err := loadTokens(file, "analyst:"+analystToken)
		if err != nil {
			t.Fatal(err)
		}
		if role, ok := toks.Role(analystToken); !ok || role != httpapi.RoleAnalyst {
			t.Fatalf("%s: env token: %v", file, role)
		}
	}
	toks, _ := loadTokens(lines, "")
	if role, _ := toks.Role("auditor-0123456789abcdef"); role != httpapi.RoleAuditor {
		t.Fatalf("lines: %q", role)
	}
	_, err := loadTokens("", "service:short1")
	if err == nil || strings.Contains(err.Error(), "short1") {
		t.Fatalf("short token: %v (must be refused without echoing it)", err)
	}
	if _, err := loadTokens("", "root:"+serviceToken); err == nil {
		t.Fatal("unknown role accepted")
	}
}

func rawPost(t *testing.T, url, token, body string) (int, httpapi.Problem) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p httpapi.Problem
	b, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("problem %s: %v", b, err)
		}
	}
	return resp.StatusCode, p
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, resp.Body)
	return b.String()
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
