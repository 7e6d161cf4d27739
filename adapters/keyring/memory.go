package keyring

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Memory is a Backend in memory, for tests and tools: it forgets
// everything when the process ends.
type Memory struct {
	mu      sync.Mutex
	entries map[uuid.UUID]Entry
	kcv     []byte
	closed  bool
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty in-memory Backend.
func NewMemory() *Memory { return &Memory{entries: make(map[uuid.UUID]Entry)} }

func (m *Memory) check() error {
	if m.closed {
		return fmt.Errorf("memory key store: %w", ErrClosed)
	}
	return nil
}

// Load implements Backend.
func (m *Memory) Load(_ context.Context, customer uuid.UUID) (Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return Entry{}, false, err
	}
	e, ok := m.entries[customer]
	return cloneEntry(e), ok, nil
}

// Create implements Backend.
func (m *Memory) Create(_ context.Context, customer uuid.UUID, e Entry) (Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return Entry{}, err
	}
	if old, ok := m.entries[customer]; ok {
		return cloneEntry(old), nil
	}
	m.entries[customer] = cloneEntry(e)
	return cloneEntry(e), nil
}

// Destroy implements Backend. The wrapped key's bytes are overwritten
// before they are dropped.
func (m *Memory) Destroy(_ context.Context, customer uuid.UUID, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return err
	}
	old, ok := m.entries[customer]
	if ok && old.Destroyed() {
		return nil
	}
	clear(old.Wrapped)
	m.entries[customer] = Entry{DestroyedAt: at.UTC()}
	return nil
}

// CheckValue implements Backend.
func (m *Memory) CheckValue(_ context.Context, kcv []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, err
	}
	if m.kcv == nil {
		m.kcv = bytes.Clone(kcv)
	}
	return bytes.Clone(m.kcv), nil
}

// LoadCheckValue implements Backend.
func (m *Memory) LoadCheckValue(context.Context) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(); err != nil {
		return nil, false, err
	}
	return bytes.Clone(m.kcv), m.kcv != nil, nil
}

// Close implements Backend.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func cloneEntry(e Entry) Entry {
	e.Wrapped = bytes.Clone(e.Wrapped)
	return e
}
