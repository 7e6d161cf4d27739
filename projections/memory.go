package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Memory is an in-memory Backend: a fast double for read-model tests, held
// to the same backend tests as the durable ones.
//
// Readers never wait for writers: an Update works on a copy of its
// namespace and installs it when fn returns, so a View (of any namespace)
// reads the last committed state even while a long batch runs, as with
// the durable backends. Updates of one namespace are serialised.
type Memory struct {
	LocalLeases

	mu      sync.RWMutex
	spaces  map[string]*memSpace
	active  map[string]string
	writers map[string]*sync.Mutex // one per namespace, never removed
	closed  bool
}

type memSpace struct {
	data       map[string][]byte
	checkpoint uint64
	retired    bool
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	return &Memory{spaces: map[string]*memSpace{}, active: map[string]string{}, writers: map[string]*sync.Mutex{}}
}

var errMemoryClosed = fmt.Errorf("read-model backend closed")

// Update implements Backend: fn's writes are staged and applied only when
// fn returns nil. A namespace dropped while fn ran is not brought back: the
// update fails.
func (m *Memory) Update(ctx context.Context, ns string, fn func(Writer) error) error {
	return m.update(ctx, ns, nil, fn)
}

// Commit implements Backend.
func (m *Memory) Commit(ctx context.Context, ns string, c Claim, fn func(Writer) error) error {
	return m.update(ctx, ns, &c, fn)
}

// update is Update, or Commit when c is set. Updates of one namespace take
// turns; a Commit does not wait for them: it works on a snapshot and
// installs its result only if the namespace is still that snapshot (no
// other write committed meanwhile), so that a writer stalled inside fn —
// a paused owner — never blocks the owner that took over.
func (m *Memory) update(ctx context.Context, ns string, c *Claim, fn func(Writer) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckName("namespace", ns); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errMemoryClosed
	}
	wmu := m.writers[ns]
	if wmu == nil {
		wmu = &sync.Mutex{}
		m.writers[ns] = wmu
	}
	m.mu.Unlock()
	if c == nil {
		wmu.Lock()
		defer wmu.Unlock()
	}

	m.mu.RLock()
	base := m.spaces[ns]
	m.mu.RUnlock()
	if c != nil {
		if err := m.checkClaim(ns, *c, base); err != nil {
			return err
		}
	}
	w := &memWriter{memReader: memReader{data: map[string][]byte{}}}
	if base != nil {
		w.data, w.checkpoint = maps.Clone(base.data), base.checkpoint
	}
	if err := fn(w); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return errMemoryClosed
	case c != nil:
		// Checked again at install, under the lock every write takes.
		if m.spaces[ns] != base {
			return fmt.Errorf("namespace %s changed during the commit: %w", ns, ErrFenced)
		}
		if err := m.checkClaim(ns, *c, base); err != nil {
			return err
		}
	case base != nil && m.spaces[ns] != base:
		return fmt.Errorf("read-model namespace %s dropped during the update", ns)
	}
	if base != nil {
		if err := CheckForward(ns, base.checkpoint, w.checkpoint); err != nil {
			return err
		}
	}
	m.spaces[ns] = &memSpace{data: w.data, checkpoint: w.checkpoint}
	return nil
}

// checkClaim checks c against base, the namespace as found (nil: none).
func (m *Memory) checkClaim(ns string, c Claim, base *memSpace) error {
	var cp uint64
	retired := false
	if base != nil {
		cp, retired = base.checkpoint, base.retired
	}
	return CheckClaim(ns, c, base != nil, retired, cp, m.Holds(c.Lease))
}

// View implements Backend.
func (m *Memory) View(ctx context.Context, ns string, fn func(Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return errMemoryClosed
	}
	var data map[string][]byte
	if s := m.spaces[ns]; s != nil {
		data = s.data // never mutated: Update replaces the map
	}
	m.mu.RUnlock()
	return fn(memReader{data: data})
}

// Checkpoint implements Backend.
func (m *Memory) Checkpoint(_ context.Context, ns string) (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if s := m.spaces[ns]; s != nil {
		return s.checkpoint, nil
	}
	return 0, nil
}

// Active implements Backend.
func (m *Memory) Active(_ context.Context, name string) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.active[name], nil
}

// Activate implements Backend.
func (m *Memory) Activate(_ context.Context, name, ns string) error {
	if err := CheckName("read-model name", name); err != nil {
		return err
	}
	if err := CheckName("namespace", ns); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.spaces[ns]; !ok {
		m.spaces[ns] = &memSpace{data: map[string][]byte{}}
	}
	if old := m.active[name]; old != "" && old != ns {
		if s := m.spaces[old]; s != nil {
			// Replace, never mutate: a concurrent Update compares pointers.
			m.spaces[old] = &memSpace{data: s.data, checkpoint: s.checkpoint, retired: true}
		}
	}
	m.active[name] = ns
	return nil
}

// Switch implements Backend.
func (m *Memory) Switch(_ context.Context, name, from, to string) error {
	if err := CheckName("read-model name", name); err != nil {
		return err
	}
	if err := CheckName("namespace", to); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var fromCP uint64
	if s := m.spaces[from]; s != nil {
		fromCP = s.checkpoint
	}
	dst := m.spaces[to]
	var toCP uint64
	if dst != nil {
		toCP = dst.checkpoint
	}
	if err := CheckSwitch(name, from, to, m.active[name], dst != nil && !dst.retired, fromCP, toCP); err != nil {
		return err
	}
	if s := m.spaces[from]; s != nil && from != to {
		m.spaces[from] = &memSpace{data: s.data, checkpoint: s.checkpoint, retired: true}
	}
	m.active[name] = to
	return nil
}

// Drop implements Backend.
func (m *Memory) Drop(_ context.Context, ns string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.spaces, ns)
	return nil
}

// Namespaces implements Backend.
func (m *Memory) Namespaces(context.Context) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.spaces)), nil
}

// Close implements Backend.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

type memReader struct{ data map[string][]byte }

func (r memReader) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok := r.data[key]
	return v, ok, ctx.Err()
}

func (r memReader) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	keys := make([]string, 0)
	for k := range r.data {
		if strings.HasPrefix(k, prefix) && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		more, err := fn(k, r.data[k])
		if err != nil || !more {
			return err
		}
	}
	return nil
}

type memWriter struct {
	memReader
	checkpoint uint64
}

// Put validates like the durable backends, so that a read model tested on
// memory is valid in production.
func (w *memWriter) Put(_ context.Context, key string, value []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if !utf8.Valid(value) || !json.Valid(value) {
		return fmt.Errorf("value at %q is not a UTF-8 JSON document", key)
	}
	w.data[key] = slices.Clone(value)
	return nil
}

func (w *memWriter) Delete(_ context.Context, key string) error {
	delete(w.data, key)
	return nil
}

func (w *memWriter) SetCheckpoint(_ context.Context, position uint64) error {
	w.checkpoint = position
	return nil
}

// Forget implements Forgetter.
func (m *Memory) Forget(_ context.Context, name string) error {
	m.mu.Lock()
	delete(m.active, name)
	m.mu.Unlock()
	m.ForgetLeases(name)
	return nil
}
