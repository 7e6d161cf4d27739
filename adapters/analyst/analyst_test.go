package analyst

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
)

// The manager is tested with a Go projection standing in for a compiled
// script, so that these tests say what the manager does whatever the
// JavaScript runtime does.

// goProgram "compiles" a source: "count" counts every event once per
// position (a key per event: any value but 1 is an event applied twice),
// anything with "SYNTAX" in it is refused at line 2, column 7.
type goProgram struct{ name, source string }

func goCompile(name, source string) (Program, error) {
	if strings.Contains(source, "SYNTAX") {
		return nil, &InvalidError{Line: 2, Column: 7, Message: "Unexpected token"}
	}
	return &goProgram{name: name, source: source}, nil
}

func (p *goProgram) Partitioned() bool { return false }
func (p *goProgram) Projection(version int) projections.Projection {
	return &goProjection{name: p.name, version: version, tag: p.source}
}

type goProjection struct {
	name    string
	version int
	tag     string
}

func (p *goProjection) Name() string    { return p.name }
func (p *goProjection) Version() int    { return p.version }
func (p *goProjection) Types() []string { return nil }
func (p *goProjection) Apply(tx *projections.Tx, e domain.Envelope) error {
	if strings.Contains(p.tag, "poison") && e.Position == 3 {
		return errors.New("poisoned")
	}
	n, err := projections.Load[int](tx, fmt.Sprintf("event/%020d", e.Position))
	if err != nil {
		return err
	}
	*n++
	tag, err := projections.Load[string](tx, "tag")
	if err != nil {
		return err
	}
	*tag = p.tag
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type world struct {
	t     *testing.T
	store *memstore.Store
	b     projections.Backend
}

func newWorld(t *testing.T) *world {
	s := memstore.New(memstore.Config{})
	t.Cleanup(func() { s.Close() })
	return &world{t: t, store: s, b: projections.NewMemory()}
}

// touch appends n notes to one customer.
func (w *world) touch(n int) uint64 {
	w.t.Helper()
	var last uint64
	for range n {
		typ, schema, data, err := domain.Encode(domain.NoteAdded{Body: "Rappel promis lundi ☎"})
		if err != nil {
			w.t.Fatal(err)
		}
		res, err := w.store.Append(context.Background(), domain.StreamID(uuid.New()), eventstore.Any, eventstore.EventData{
			ID: uuid.New(), Type: typ, Data: data,
			Metadata: eventstore.Metadata{OccurredAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Actor: "user:marta", SchemaVersion: schema},
		})
		if err != nil {
			w.t.Fatal(err)
		}
		last = res.Position
	}
	return last
}

// process is one serve process: an engine and a manager.
func (w *world) process() (*projections.Engine, *Manager) {
	w.t.Helper()
	e, err := projections.NewEngine(w.store, w.b, projections.Config{PageSize: 16, BatchSize: 64, Logger: quiet(),
		LeaseTTL: 300 * time.Millisecond, HeadInterval: 10 * time.Millisecond})
	if err != nil {
		w.t.Fatal(err)
	}
	m, err := New(Config{Backend: w.b, Engine: e, Compile: goCompile, SyncInterval: 20 * time.Millisecond, LeaseTTL: 300 * time.Millisecond, Logger: quiet()})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = e.Run(ctx); done <- struct{}{} }()
	go func() { m.Run(ctx); done <- struct{}{} }()
	w.t.Cleanup(func() { cancel(); <-done; <-done })
	return e, m
}

// counted checks the analyst projection counted every position up to its
// checkpoint exactly once, and returns the checkpoint.
func (w *world) counted(name string) uint64 {
	w.t.Helper()
	ctx := context.Background()
	cp, err := Checkpoint(ctx, w.b, name)
	if err != nil {
		w.t.Fatal(err)
	}
	var seen uint64
	err = projections.View(ctx, w.b, name, func(r projections.Reader) error {
		seen = 0
		return r.Scan(ctx, "event/", "", func(key string, value []byte) (bool, error) {
			seen++
			if string(value) != "1" || key != fmt.Sprintf("event/%020d", seen) {
				return false, fmt.Errorf("%s = %s at %d", key, value, seen)
			}
			return true, nil
		})
	})
	if err != nil {
		w.t.Fatal(err)
	}
	if seen != cp {
		w.t.Fatalf("%d events counted, checkpoint %d", seen, cp)
	}
	return cp
}

func TestCreateUpdateDeleteWhileRunning(t *testing.T) {
	w := newWorld(t)
	w.touch(40)
	_, m := w.process()
	ctx := context.Background()

	def, err := m.Create(ctx, "daily_notes", "count v1", "analyst:zoë")
	if err != nil {
		t.Fatal(err)
	}
	if def.Name != "js_daily_notes" || def.Version < 1 || def.Digest != Digest("count v1") || def.CreatedBy != "analyst:zoë" {
		t.Errorf("definition %+v", def)
	}
	head := w.touch(10)
	var reports []Progress
	if err := m.Wait(ctx, def.Name, def.Version, head, 5*time.Millisecond, func(p Progress) { reports = append(reports, p) }); err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 || !reports[len(reports)-1].Done {
		t.Errorf("progress reports %+v", reports)
	}
	if cp := w.counted(def.Name); cp < head {
		t.Errorf("checkpoint %d, want %d", cp, head)
	}
	if _, err := m.Create(ctx, "js_daily_notes", "count", "analyst:zoë"); !errors.Is(err, ErrExists) {
		t.Errorf("second create = %v, want ErrExists", err)
	}

	// Update: a new version, built beside and switched.
	up, err := m.Update(ctx, "daily_notes", "count v2", "analyst:łukasz")
	if err != nil {
		t.Fatal(err)
	}
	if up.Version <= def.Version || up.CreatedBy != "analyst:zoë" || up.UpdatedBy != "analyst:łukasz" {
		t.Errorf("updated definition %+v after %+v", up, def)
	}
	head = w.touch(10)
	if err := m.Wait(ctx, up.Name, up.Version, head, 5*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	w.counted(up.Name)
	var got string
	if err := projections.View(ctx, w.b, up.Name, func(r projections.Reader) error {
		v, _, err := projections.Read[string](ctx, r, "tag")
		got = v
		return err
	}); err != nil || got != "count v2" {
		t.Errorf("served state of %q (%v), want the new version's", got, err)
	}

	// Delete: nothing left behind.
	if err := m.Delete(ctx, "daily_notes", "admin:ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "daily_notes"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete = %v", err)
	}
	spaces, _ := w.b.Namespaces(ctx)
	for _, ns := range spaces {
		if strings.HasPrefix(ns, "js_daily_notes") {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	leases, _ := w.b.ListLeases(ctx)
	for _, l := range leases {
		if strings.HasSuffix(l.Name, "js_daily_notes") {
			t.Errorf("lease %+v left behind", l)
		}
	}
	if err := m.Delete(ctx, "daily_notes", "admin:ops"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete = %v", err)
	}
	if _, err := m.Update(ctx, "daily_notes", "count", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of a deleted projection = %v", err)
	}
}

func TestCreateRefusesBadScriptsAndNames(t *testing.T) {
	w := newWorld(t)
	_, m := w.process()
	ctx := context.Background()
	_, err := m.Create(ctx, "x", "fromAll()\n  SYNTAX", "a")
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Line != 2 || ie.Column != 7 || !errors.Is(err, ErrInvalid) {
		t.Errorf("bad script: %v", err)
	}
	for _, name := range []string{"Bad-Name", "", strings.Repeat("a", 40), "js_", "customer 360"} {
		if _, err := m.Create(ctx, name, "count", "a"); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, err := m.Create(ctx, "empty", "  \n", "a"); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty script: %v", err)
	}
	defs, err := m.List(ctx)
	if err != nil || len(defs) != 0 {
		t.Errorf("refused definitions stored: %v %v", defs, err)
	}
}

// Two processes on one backend: a projection created through one is run by
// exactly one of them, survives its owner's removal, and is counted exactly
// once; a poison script stops only itself.
func TestTwoProcessesApplyOnce(t *testing.T) {
	w := newWorld(t)
	w.touch(30)
	e1, m1 := w.process()
	e2, m2 := w.process()
	ctx := context.Background()
	def, err := m1.Create(ctx, "shared", "count", "analyst:a")
	if err != nil {
		t.Fatal(err)
	}
	poison, err := m2.Create(ctx, "broken", "count poison", "analyst:b")
	if err != nil {
		t.Fatal(err)
	}
	head := w.touch(30)
	if err := m2.Wait(ctx, def.Name, def.Version, head, 5*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if cp := w.counted(def.Name); cp < head {
		t.Errorf("checkpoint %d < %d", cp, head)
	}
	owners := 0
	for _, e := range []*projections.Engine{e1, e2} {
		for _, st := range e.Status() {
			if st.Name == def.Name && st.Owned {
				owners++
			}
		}
	}
	if owners != 1 {
		t.Errorf("%d owners of %s", owners, def.Name)
	}
	// The poison script failed alone, with its event named.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var failed *projections.Status
		for _, e := range []*projections.Engine{e1, e2} {
			for _, st := range e.Status() {
				if st.Name == poison.Name && st.State == projections.StateFailed {
					failed = &st
				}
			}
		}
		if failed != nil {
			var pe *projections.ProjectionError
			if !errors.As(failed.Err, &pe) || pe.Position != 3 {
				t.Errorf("poison failure %v", failed.Err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("poison script never failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Every process sees the failure, recorded with the definition.
	var f *Failed
	for _, m := range []*Manager{m1, m2} {
		if err := m.Wait(ctx, poison.Name, poison.Version, head, 5*time.Millisecond, nil); !errors.As(err, &f) || f.Position != 3 || f.Message != "poisoned" {
			t.Errorf("wait for a poison projection = %v", err)
		}
	}
	head = w.touch(10)
	if err := m1.Wait(ctx, def.Name, def.Version, head, 5*time.Millisecond, nil); err != nil {
		t.Fatalf("healthy projection after a poison one: %v", err)
	}
	w.counted(def.Name)
}

// A process that has not yet seen a delete may take the freed lease and
// start the read model again after the deleter cleaned up; its next Sync
// drops what it made.
func TestLateProcessCleansUpAfterDelete(t *testing.T) {
	w := newWorld(t)
	w.touch(20)
	ctx := context.Background()
	engine := func() *projections.Engine {
		e, err := projections.NewEngine(w.store, w.b, projections.Config{Logger: quiet(), LeaseTTL: 200 * time.Millisecond, LeaseInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = e.Run(rctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return e
	}
	e1, e2 := engine(), engine()
	m1, _ := New(Config{Backend: w.b, Engine: e1, Compile: goCompile, LeaseTTL: 200 * time.Millisecond, Logger: quiet()})
	m2, _ := New(Config{Backend: w.b, Engine: e2, Compile: goCompile, LeaseTTL: 200 * time.Millisecond, Logger: quiet()})
	def, err := m2.Create(ctx, "late", "count", "a") // e2 registers it first and owns it
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Wait(ctx, def.Name, def.Version, 20, time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if err := m1.Sync(ctx); err != nil { // e1 knows it too, standing by
		t.Fatal(err)
	}
	if err := m2.Delete(ctx, def.Name, "a"); err != nil {
		t.Fatal(err)
	}
	// e1, not synced, takes the freed lease and builds it again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if a, _ := w.b.Active(ctx, def.Name); a != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late engine never restarted the read model")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := m1.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	spaces, _ := w.b.Namespaces(ctx)
	for _, ns := range spaces {
		if strings.HasPrefix(ns, def.Name) {
			t.Errorf("namespace %s left behind", ns)
		}
	}
	if a, _ := w.b.Active(ctx, def.Name); a != "" {
		t.Errorf("pointer to %s left behind", a)
	}
}
