// Package analyst runs analysts' JavaScript projections (projections/script)
// next to the built-in read models: it keeps their definitions, validates
// them, and keeps every process's projection engine in step with them.
//
// Definitions are shared by every process on one database: they live in the
// read-model backend itself, in the namespace DefinitionsNamespace (a table
// of the events' PostgreSQL schema, or a bucket beside the embedded store),
// written in transactions that also advance the namespace's checkpoint, one
// per change: the definitions are ordered, and that counter gives each
// version of every analyst projection its version number, never reused even
// after a delete, so that a new build never meets an old one's namespace.
//
// Each process's Manager polls the definitions (Sync) and registers,
// replaces or removes the analyst projections in its engine. The engine does
// the rest exactly as for the built-in read models: one owner per projection
// among every process (its lease "projection/<name>"), every commit fenced
// by it, a new version built from position 0 beside the old one and
// switched over once it has caught up.
package analyst

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Prefix starts the name of every analyst projection's read model, so that
// analysts' names never collide with the built-in read models'.
const Prefix = "js_"

// DefinitionsNamespace is the backend namespace holding the definitions.
// It is not of the form "<name>_v<n>_g<n>", so no read model claims it.
const DefinitionsNamespace = "analyst_definitions"

// MaxSourceBytes bounds a script's source.
const MaxSourceBytes = 256 << 10

// Sentinel errors the HTTP and CLI layers branch on.
var (
	// ErrExists: an analyst projection of that name exists already.
	ErrExists = errors.New("analyst projection already exists")
	// ErrNotFound: no analyst projection of that name.
	ErrNotFound = errors.New("no such analyst projection")
	// ErrInvalid: the name or the script is refused (see *InvalidError).
	ErrInvalid = errors.New("invalid analyst projection")
)

// InvalidError is a refused definition: a bad name, or a script that does
// not compile (Line and Column, 1-based, say where; 0 when unknown).
type InvalidError struct {
	Line, Column int
	Message      string
}

func (e *InvalidError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s (line %d, column %d)", e.Message, e.Line, e.Column)
	}
	return e.Message
}

// Unwrap makes an InvalidError match ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Definition is one analyst projection as stored.
type Definition struct {
	// Name is the read model's name, starting with Prefix.
	Name string `json:"name"`
	// Version grows with every create and update of any definition.
	Version int `json:"version"`
	// Source is the JavaScript; Digest its SHA-256, hex.
	Source string `json:"source"`
	Digest string `json:"digest"`
	// Partitioned is whether the script keeps one state per partition.
	Partitioned bool `json:"partitioned"`
	// CreatedBy/At and UpdatedBy/At say who defined it and when.
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedBy string    `json:"updatedBy"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Failure is why this version stopped, as recorded by the process
	// running it (nil while it runs): every process and the CLI see it.
	Failure *Failed `json:"failure,omitempty"`
}

// Failed is a stopped analyst projection: the event it stopped at and the
// script's error and JavaScript stack.
type Failed struct {
	Position  uint64 `json:"position"`
	EventID   string `json:"eventId,omitempty"`
	EventType string `json:"eventType,omitempty"`
	Message   string `json:"message"`
	Stack     string `json:"stack,omitempty"`
}

// Program is a compiled script, as the manager needs it
// (*script.Program).
type Program interface {
	Partitioned() bool
	Projection(version int) projections.Projection
}

// Compiler compiles a script; a refusal is an *InvalidError.
type Compiler func(name, source string) (Program, error)

// Engine is what the manager needs of the projection engine
// (*projections.Engine).
type Engine interface {
	Register(p projections.Projection) error
	Replace(p projections.Projection) error
	Remove(name string) error
	Status() []projections.Status
	Owner() string
}

// Config configures a Manager. Backend, Engine and Compile are required.
type Config struct {
	Backend projections.Backend
	Engine  Engine
	Compile Compiler
	// SyncInterval is how often Run re-reads the definitions; 0 means 1s.
	SyncInterval time.Duration
	// LeaseTTL is the engine's lease TTL, for Delete's wait; 0 means 6s.
	LeaseTTL time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Manager keeps the analyst projections of one process.
type Manager struct {
	cfg Config

	mu      sync.Mutex // serialises Sync
	running map[string]int
	broken  map[string]string
}

// New returns a manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Backend == nil || cfg.Engine == nil || cfg.Compile == nil {
		return nil, errors.New("analyst: Backend, Engine and Compile are required")
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 6 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, running: map[string]int{}, broken: map[string]string{}}, nil
}

// Canonical returns the read-model name of the analyst projection an
// analyst calls name: name itself if it starts with Prefix, otherwise
// Prefix + name. It checks the result.
func Canonical(name string) (string, error) {
	if !strings.HasPrefix(name, Prefix) {
		name = Prefix + name
	}
	p := named(name)
	if err := projections.ValidateProjection(p); err != nil || name == Prefix {
		return "", &InvalidError{Message: fmt.Sprintf("name %q: want lower-case letters, digits and underscores, at most %d with the %q prefix", name, 30, Prefix)}
	}
	return name, nil
}

// named is a projection stub used to validate a name.
type named string

func (n named) Name() string                                 { return string(n) }
func (n named) Version() int                                 { return 1 }
func (n named) Types() []string                              { return nil }
func (n named) Apply(*projections.Tx, domain.Envelope) error { return nil }

// Subject is the access-log subject of an analyst projection: its reads
// are not one customer's, so they are logged under an id derived from the
// projection's name (resource "analyst-…", the name in the entry's query).
func Subject(name string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:cxledger:analyst-projection:"+name))
}

// Digest returns the SHA-256 of source, hex.
func Digest(source string) string {
	sum := sha256.Sum256([]byte(source))
	return hex.EncodeToString(sum[:])
}

// Validate compiles source as name would be: a refusal is an
// *InvalidError.
func (m *Manager) Validate(name, source string) (Program, error) {
	if len(source) > MaxSourceBytes {
		return nil, &InvalidError{Message: fmt.Sprintf("script of %d bytes, more than %d", len(source), MaxSourceBytes)}
	}
	if strings.TrimSpace(source) == "" {
		return nil, &InvalidError{Message: "empty script"}
	}
	prog, err := m.cfg.Compile(name, source)
	if err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, &InvalidError{Message: err.Error()}
	}
	return prog, nil
}

const defKey = "def/"

// Create stores a new analyst projection; every process's manager starts
// it at its next Sync (this one at once).
func (m *Manager) Create(ctx context.Context, name, source, by string) (Definition, error) {
	return m.put(ctx, name, source, by, false)
}

// Update stores a new version of an analyst projection: it is built beside
// the current one and switched over once caught up.
func (m *Manager) Update(ctx context.Context, name, source, by string) (Definition, error) {
	return m.put(ctx, name, source, by, true)
}

func (m *Manager) put(ctx context.Context, name, source, by string, update bool) (Definition, error) {
	name, err := Canonical(name)
	if err != nil {
		return Definition{}, err
	}
	prog, err := m.Validate(name, source)
	if err != nil {
		return Definition{}, err
	}
	now := m.cfg.Now().UTC()
	var def Definition
	err = m.cfg.Backend.Update(ctx, DefinitionsNamespace, func(w projections.Writer) error {
		old, found, err := getDef(ctx, w, name)
		if err != nil {
			return err
		}
		switch {
		case update && !found:
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		case !update && found:
			return fmt.Errorf("%w: %s", ErrExists, name)
		}
		seq, err := nextSeq(ctx, w)
		if err != nil {
			return err
		}
		def = Definition{Name: name, Version: seq, Source: source, Digest: Digest(source), Partitioned: prog.Partitioned(),
			CreatedBy: by, CreatedAt: now, UpdatedBy: by, UpdatedAt: now}
		if found {
			def.CreatedBy, def.CreatedAt = old.CreatedBy, old.CreatedAt
		}
		data, err := json.Marshal(def)
		if err != nil {
			return err
		}
		if err := w.Put(ctx, defKey+name, data); err != nil {
			return err
		}
		return w.SetCheckpoint(ctx, uint64(seq))
	})
	if err != nil {
		return Definition{}, fmt.Errorf("analyst: store %s: %w", name, err)
	}
	m.cfg.Logger.Info("analyst projection defined", "projection", name, "version", def.Version, "digest", def.Digest, "by", by, "update", update)
	if err := m.Sync(ctx); err != nil {
		m.cfg.Logger.Warn("analyst: sync after define", "error", err)
	}
	return def, nil
}

// nextSeq advances the definitions' counter in w's transaction.
func nextSeq(ctx context.Context, w projections.Writer) (int, error) {
	seq := 0
	if data, ok, err := w.Get(ctx, "seq"); err != nil {
		return 0, err
	} else if ok {
		if err := json.Unmarshal(data, &seq); err != nil {
			return 0, fmt.Errorf("definitions counter: %w", err)
		}
	}
	seq++
	data, _ := json.Marshal(seq)
	return seq, w.Put(ctx, "seq", data)
}

func getDef(ctx context.Context, r projections.Reader, name string) (Definition, bool, error) {
	data, ok, err := r.Get(ctx, defKey+name)
	if err != nil || !ok {
		return Definition{}, false, err
	}
	var d Definition
	if err := json.Unmarshal(data, &d); err != nil {
		return Definition{}, false, fmt.Errorf("definition %s: %w", name, err)
	}
	return d, true, nil
}

// Delete removes an analyst projection and everything it left: its
// definition, its read model's namespaces, pointer and leases. It waits
// (up to about two lease TTLs) for the process running it to let go.
func (m *Manager) Delete(ctx context.Context, name, by string) error {
	name, err := Canonical(name)
	if err != nil {
		return err
	}
	err = m.cfg.Backend.Update(ctx, DefinitionsNamespace, func(w projections.Writer) error {
		if _, found, err := getDef(ctx, w, name); err != nil {
			return err
		} else if !found {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		if err := w.Delete(ctx, defKey+name); err != nil {
			return err
		}
		seq, err := nextSeq(ctx, w)
		if err != nil {
			return err
		}
		return w.SetCheckpoint(ctx, uint64(seq))
	})
	if err != nil {
		return fmt.Errorf("analyst: delete %s: %w", name, err)
	}
	if err := m.Sync(ctx); err != nil {
		m.cfg.Logger.Warn("analyst: sync after delete", "error", err)
	}
	wait := 2*m.cfg.LeaseTTL + 2*m.cfg.SyncInterval
	if err := projections.DropReadModel(ctx, m.cfg.Backend, name, m.cfg.Engine.Owner()+"/delete", m.cfg.LeaseTTL, wait); err != nil {
		return fmt.Errorf("analyst: delete %s: %w", name, err)
	}
	m.cfg.Logger.Info("analyst projection deleted", "projection", name, "by", by)
	return nil
}

// List returns every definition, in name order.
func (m *Manager) List(ctx context.Context) ([]Definition, error) {
	return Definitions(ctx, m.cfg.Backend)
}

// Definitions returns every definition stored in b, in name order: what
// `cxledger status` lists without a running engine.
func Definitions(ctx context.Context, b projections.Backend) ([]Definition, error) {
	var out []Definition
	err := b.View(ctx, DefinitionsNamespace, func(r projections.Reader) error {
		out = out[:0]
		return r.Scan(ctx, defKey, "", func(_ string, value []byte) (bool, error) {
			var d Definition
			if err := json.Unmarshal(value, &d); err != nil {
				return false, err
			}
			out = append(out, d)
			return true, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("analyst: list definitions: %w", err)
	}
	return out, nil
}

// Get returns the definition of name.
func (m *Manager) Get(ctx context.Context, name string) (Definition, error) {
	name, err := Canonical(name)
	if err != nil {
		return Definition{}, err
	}
	var d Definition
	var found bool
	err = m.cfg.Backend.View(ctx, DefinitionsNamespace, func(r projections.Reader) error {
		var err error
		d, found, err = getDef(ctx, r, name)
		return err
	})
	if err != nil {
		return Definition{}, fmt.Errorf("analyst: %w", err)
	}
	if !found {
		return Definition{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return d, nil
}

// Sync brings the engine in step with the stored definitions: it registers
// the new ones, replaces those whose version changed and removes the
// deleted ones.
func (m *Manager) Sync(ctx context.Context) error {
	defs, err := m.List(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	var errs []error
	for _, d := range defs {
		want[d.Name] = true
		have, known := m.running[d.Name]
		if known && have == d.Version {
			continue
		}
		if m.broken[d.Name] == d.Digest {
			continue // compiled and failed already: not again every second
		}
		prog, err := m.cfg.Compile(d.Name, d.Source)
		if err != nil {
			m.broken[d.Name] = d.Digest
			errs = append(errs, fmt.Errorf("compile %s: %w", d.Name, err))
			continue
		}
		delete(m.broken, d.Name)
		p := prog.Projection(d.Version)
		if known {
			err = m.cfg.Engine.Replace(p)
		} else {
			err = m.cfg.Engine.Register(p)
			if errors.Is(err, projections.ErrDuplicateProjection) {
				err = m.cfg.Engine.Replace(p)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", d.Name, err))
			continue
		}
		m.running[d.Name] = d.Version
		m.cfg.Logger.Info("analyst projection running", "projection", d.Name, "version", d.Version, "replaced", known)
	}
	for _, name := range slices.Sorted(maps.Keys(m.running)) {
		if want[name] {
			continue
		}
		if err := m.cfg.Engine.Remove(name); err != nil && !errors.Is(err, projections.ErrUnknownProjection) {
			errs = append(errs, fmt.Errorf("remove %s: %w", name, err))
			continue
		}
		delete(m.running, name)
		m.cfg.Logger.Info("analyst projection removed", "projection", name)
		// Deleted: between the deleter's cleanup and this removal, this
		// engine may have taken the freed lease and started the read model
		// again. Drop whatever it left, unless the name was defined anew
		// meanwhile or another process holds the lease (the deleter, who
		// drops it).
		if _, err := m.Get(ctx, name); errors.Is(err, ErrNotFound) {
			err := projections.DropReadModel(ctx, m.cfg.Backend, name, m.cfg.Engine.Owner()+"/delete", m.cfg.LeaseTTL, 0)
			if err != nil && !errors.Is(err, projections.ErrLeaseHeld) {
				errs = append(errs, fmt.Errorf("drop %s: %w", name, err))
			}
		}
	}
	for name := range m.broken {
		if !want[name] {
			delete(m.broken, name)
		}
	}
	if err := m.recordFailures(ctx, defs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// recordFailures stores, in its definition, why an analyst projection this
// process runs stopped, so that every process and the CLI show it.
func (m *Manager) recordFailures(ctx context.Context, defs []Definition) error {
	byName := map[string]Definition{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	for _, st := range m.cfg.Engine.Status() {
		d, ok := byName[st.Name]
		if !ok || !st.Owned || st.State != projections.StateFailed || st.Err == nil || d.Failure != nil || st.Version != d.Version {
			continue
		}
		f := FailureOf(st.Err)
		err := m.cfg.Backend.Update(ctx, DefinitionsNamespace, func(w projections.Writer) error {
			cur, found, err := getDef(ctx, w, d.Name)
			if err != nil || !found || cur.Version != d.Version {
				return err // changed meanwhile: nothing to record
			}
			cur.Failure = f
			data, err := json.Marshal(cur)
			if err != nil {
				return err
			}
			return w.Put(ctx, defKey+d.Name, data)
		})
		if err != nil {
			return fmt.Errorf("record failure of %s: %w", d.Name, err)
		}
		m.cfg.Logger.Warn("analyst projection stopped", "projection", d.Name, "version", d.Version, "position", f.Position, "error", f.Message)
	}
	return nil
}

func (f *Failed) Error() string {
	s := fmt.Sprintf("analyst projection stopped at position %d (event %s, %s): %s", f.Position, f.EventID, f.EventType, f.Message)
	if f.Stack != "" {
		s += "\n" + f.Stack
	}
	return s
}

// FailureOf describes err, a stopped projection's error: the script's
// failure when there is one, else the poison event and the error's text.
func FailureOf(err error) *Failed {
	if se := Failure(err); se != nil {
		return &Failed{Position: se.Position, EventID: se.EventID, EventType: se.EventType, Message: se.Message, Stack: se.Stack}
	}
	f := &Failed{Message: err.Error()}
	var pe *projections.ProjectionError
	if errors.As(err, &pe) {
		f.Position, f.EventID, f.EventType, f.Message = pe.Position, pe.EventID, pe.EventType, pe.Err.Error()
	}
	return f
}

// Run syncs every SyncInterval until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.SyncInterval)
	defer t.Stop()
	for {
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Logger.Warn("analyst: sync definitions", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Progress reports a build of an analyst projection from position 0.
type Progress struct {
	Projection      string  `json:"projection"`
	Version         int     `json:"version"`
	Position        uint64  `json:"position"`
	Head            uint64  `json:"head"`
	EventsPerSecond float64 `json:"eventsPerSecond"`
	ETASeconds      float64 `json:"etaSeconds"`
	Done            bool    `json:"done"`
}

// Wait waits until version of the analyst projection name serves reads and
// has applied position target, calling progress (may be nil) now and then
// with how far its build is. It fails at once when the projection fails
// (an *Failed naming the event, with the script's error and stack), in
// this process or, once recorded, in the one running it; or is deleted. It reads the backend, so it follows a build
// run by any process.
func (m *Manager) Wait(ctx context.Context, name string, version int, target uint64, every time.Duration, progress func(Progress)) error {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	b := m.cfg.Backend
	start, startPos := time.Now(), uint64(0)
	first := true
	for {
		p := Progress{Projection: name, Version: version, Head: target}
		var st *projections.Status
		for _, s := range m.cfg.Engine.Status() {
			if s.Name == name {
				st = &s
				break
			}
		}
		if st != nil && st.State == projections.StateFailed && st.Err != nil && st.Version == version {
			return FailureOf(st.Err)
		}
		active, err := b.Active(ctx, name)
		if err != nil {
			return err
		}
		spaces, err := b.Namespaces(ctx)
		if err != nil {
			return err
		}
		for _, ns := range spaces {
			if v, ok := projections.IsNamespaceOf(name, ns); ok && v == version {
				cp, err := b.Checkpoint(ctx, ns)
				if err == nil && cp >= p.Position {
					p.Position = cp
				}
			}
		}
		if st != nil {
			p.Head = max(p.Head, st.Head)
		}
		p.Head = max(p.Head, p.Position)
		if first {
			startPos, first = p.Position, false
		}
		if el := time.Since(start).Seconds(); el > 0 && p.Position > startPos {
			p.EventsPerSecond = float64(p.Position-startPos) / el
			p.ETASeconds = float64(p.Head-p.Position) / p.EventsPerSecond
		}
		v, _ := projections.IsNamespaceOf(name, active)
		p.Done = v == version && p.Position >= target
		if v > version {
			return fmt.Errorf("analyst: %s was updated again (version %d) while waiting for version %d", name, v, version)
		}
		if progress != nil {
			progress(p)
		}
		if p.Done {
			return nil
		}
		if d, err := m.Get(ctx, name); errors.Is(err, ErrNotFound) {
			return err
		} else if err == nil && d.Version == version && d.Failure != nil {
			return d.Failure // recorded by the process running it
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
