package keyring

import (
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
)

// Sentinel errors.
var (
	// ErrForgotten: the customer was forgotten and their data key
	// destroyed, so nothing can be sealed for them any more. Errors
	// wrapping it also wrap a *domain.RejectionError (domain.ErrRejected):
	// to an edge it is an append the customer's history refuses.
	ErrForgotten = errors.New("customer forgotten: data key destroyed")
	// ErrWrongMasterKey: the key store was set up with another master key
	// (its key check value differs). Nothing could be opened with this one.
	ErrWrongMasterKey = errors.New("wrong master key: the key store was created with another one")
	// ErrCorrupt: a stored key cannot be unwrapped with the master key
	// whose check value matched: the store was tampered with or damaged.
	ErrCorrupt = errors.New("key store entry cannot be unwrapped")
	// ErrClosed is wrapped by the errors of a backend used after Close.
	ErrClosed = errors.New("key store closed")
)

// Entry is what a Backend stores per customer: the wrapped data key, or,
// once the customer is forgotten, a tombstone.
type Entry struct {
	// Wrapped is the customer's data key sealed with the master key's
	// wrapping key (nonce || AES-256-GCM ciphertext || tag); nil in a
	// tombstone.
	Wrapped []byte
	// DestroyedAt is when the key was destroyed; zero while it lives.
	DestroyedAt time.Time
}

// Destroyed reports whether e is a tombstone.
func (e Entry) Destroyed() bool { return !e.DestroyedAt.IsZero() }

// Backend stores wrapped data keys, apart from the events. Implementations
// are safe for concurrent use, including by several processes sharing one
// store where the technology allows it (PostgreSQL).
type Backend interface {
	// Load returns customer's entry; ok is false when there is none.
	Load(ctx context.Context, customer uuid.UUID) (e Entry, ok bool, err error)
	// Create stores e for customer unless an entry exists, atomically, and
	// returns the entry stored afterwards: e, or the one that was there (a
	// racer's key, or a tombstone). It never overwrites.
	Create(ctx context.Context, customer uuid.UUID, e Entry) (Entry, error)
	// Destroy replaces customer's entry by a tombstone dated at (or stores
	// one when there is no entry), so that the key is gone and never
	// created again. Destroying a tombstone keeps its first date. Backends
	// make a best effort to leave no copy of the wrapped key behind in
	// their files (see each backend).
	Destroy(ctx context.Context, customer uuid.UUID, at time.Time) error
	// CheckValue stores kcv when no key check value is stored yet, and
	// returns the one stored.
	CheckValue(ctx context.Context, kcv []byte) ([]byte, error)
	// LoadCheckValue returns the stored key check value without storing
	// one; ok is false when none is stored (no Keyring ever opened the
	// backend, so it holds no key). Copying keys between two backends
	// (`cxledger migrate`) compares theirs.
	LoadCheckValue(ctx context.Context) (kcv []byte, ok bool, err error)
	// Close releases the backend.
	Close() error
}

// Options tune a Keyring. The zero value is valid.
type Options struct {
	// CacheSize bounds how many customers' unwrapped keys (or tombstones)
	// are kept in memory; default 100,000 (about 30 MB).
	CacheSize int
	// CacheTTL is how long a cached live key is used before the backend is
	// asked again whether it was destroyed meanwhile — by another process
	// sharing the store (a `cxledger forget` run against the PostgreSQL
	// store a server uses). A Forget through this Keyring takes effect at
	// once; one through another process within CacheTTL. Default 5 s;
	// negative caches nothing (every use asks the backend).
	CacheTTL time.Duration
	// Now is the clock tombstones are dated by; default time.Now.
	Now func() time.Time
	// Logger receives the warning for a sealed value that does not open
	// (see Undecryptable); default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Keyring seals and reveals personal data with per-customer data keys kept
// wrapped in a Backend. It is safe for concurrent use.
//
// A nil *Keyring is the plaintext mode (no keyring configured): Seal
// returns its input, Reveal returns its input, Open returns the stored
// value, Blind returns the canonical value, and Forget does nothing. This
// keeps every caller's code one path.
type Keyring struct {
	backend Backend
	wrap    cipher.AEAD
	blind   []byte // HMAC key of the identity index
	idKey   []byte // HMAC key of derived customer ids
	opts    Options

	mu    sync.Mutex
	cache map[uuid.UUID]*list.Element // customer -> *cached
	lru   list.List
}

// cached is one customer's key state in memory.
type cached struct {
	customer uuid.UUID
	key      *dataKey // nil for a tombstone
	checked  time.Time
}

// dataKey is an unwrapped customer key, ready to seal and open.
type dataKey struct {
	aead     cipher.AEAD
	nonceKey []byte
}

// Open returns a Keyring over backend with master as its master key. It
// stores the master key's check value on first use and fails with
// ErrWrongMasterKey when the backend holds another one. The Keyring owns
// backend: Close closes it.
func Open(ctx context.Context, master MasterKey, backend Backend, opts Options) (*Keyring, error) {
	if backend == nil {
		return nil, errors.New("keyring: no backend")
	}
	opts.setDefaults()
	kcv, err := master.checkValue()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	stored, err := backend.CheckValue(ctx, kcv)
	if err != nil {
		return nil, fmt.Errorf("keyring: key check value: %w", err)
	}
	if !sameCheck(stored, kcv) {
		return nil, fmt.Errorf("keyring: %w", ErrWrongMasterKey)
	}
	k := &Keyring{backend: backend, opts: opts, cache: make(map[uuid.UUID]*list.Element)}
	wrapKey, err := derive(master[:], labelWrap)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if k.wrap, err = newGCM(wrapKey); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if k.blind, err = derive(master[:], labelBlind); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if k.idKey, err = derive(master[:], labelID); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

// Close closes the backend.
func (k *Keyring) Close() error {
	if k == nil {
		return nil
	}
	return k.backend.Close()
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// state is what the key store says about one customer.
type state int

const (
	stateMissing   state = iota // no key was ever made
	stateLive                   // a key exists
	stateDestroyed              // forgotten: the key is gone for good
)

// key returns customer's data key and its state; with create, a missing
// key is made (a tombstone is never replaced).
func (k *Keyring) key(ctx context.Context, customer uuid.UUID, create bool) (*dataKey, state, error) {
	if dk, st, ok := k.fromCache(customer); ok {
		return dk, st, nil
	}
	e, found, err := k.backend.Load(ctx, customer)
	if err != nil {
		return nil, 0, fmt.Errorf("keyring: load key of %s: %w", customer, err)
	}
	if !found && create {
		if e, err = k.create(ctx, customer); err != nil {
			return nil, 0, err
		}
		found = true
	}
	switch {
	case !found:
		return nil, stateMissing, nil
	case e.Destroyed():
		k.remember(customer, nil)
		return nil, stateDestroyed, nil
	}
	dk, err := k.unwrap(customer, e.Wrapped)
	if err != nil {
		return nil, 0, err
	}
	k.remember(customer, dk)
	return dk, stateLive, nil
}

// create makes, wraps and stores a new data key for customer, or returns
// whatever a racer — in this process or another — stored first: the
// backend's Create never overwrites, so every racer ends with one key.
func (k *Keyring) create(ctx context.Context, customer uuid.UUID) (Entry, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Entry{}, fmt.Errorf("keyring: generate key: %w", err)
	}
	nonce := make([]byte, k.wrap.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Entry{}, fmt.Errorf("keyring: generate nonce: %w", err)
	}
	wrapped := k.wrap.Seal(nonce, nonce, raw, wrapAAD(customer))
	clear(raw)
	e, err := k.backend.Create(ctx, customer, Entry{Wrapped: wrapped})
	if err != nil {
		return Entry{}, fmt.Errorf("keyring: store key of %s: %w", customer, err)
	}
	return e, nil
}

// wrapAAD binds a wrapped key to its customer: a key copied onto another
// customer's row does not unwrap.
func wrapAAD(customer uuid.UUID) []byte { return []byte("cxledger/data-key/v1/" + customer.String()) }

func (k *Keyring) unwrap(customer uuid.UUID, wrapped []byte) (*dataKey, error) {
	n := k.wrap.NonceSize()
	if len(wrapped) < n {
		return nil, fmt.Errorf("keyring: key of %s: %w", customer, ErrCorrupt)
	}
	raw, err := k.wrap.Open(nil, wrapped[:n], wrapped[n:], wrapAAD(customer))
	if err != nil {
		return nil, fmt.Errorf("keyring: key of %s: %w", customer, ErrCorrupt)
	}
	defer clear(raw)
	sealKey, err := derive(raw, labelSeal)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	nonceKey, err := derive(raw, labelNonce)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	aead, err := newGCM(sealKey)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return &dataKey{aead: aead, nonceKey: nonceKey}, nil
}

// fromCache returns the cached state of customer when it is still fresh:
// a tombstone always is (a destroyed key never comes back), a live key for
// CacheTTL.
func (k *Keyring) fromCache(customer uuid.UUID) (*dataKey, state, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.cache[customer]
	if !ok {
		return nil, 0, false
	}
	c := el.Value.(*cached)
	if c.key == nil {
		k.lru.MoveToFront(el)
		return nil, stateDestroyed, true
	}
	if k.opts.CacheTTL < 0 || k.opts.Now().Sub(c.checked) >= k.opts.CacheTTL {
		return nil, 0, false
	}
	k.lru.MoveToFront(el)
	return c.key, stateLive, true
}

// remember caches customer's key (nil: a tombstone).
func (k *Keyring) remember(customer uuid.UUID, dk *dataKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if el, ok := k.cache[customer]; ok {
		c := el.Value.(*cached)
		if c.key == nil {
			return // a tombstone stays a tombstone
		}
		c.key, c.checked = dk, k.opts.Now()
		k.lru.MoveToFront(el)
		return
	}
	k.cache[customer] = k.lru.PushFront(&cached{customer: customer, key: dk, checked: k.opts.Now()})
	for k.lru.Len() > k.opts.CacheSize {
		old := k.lru.Remove(k.lru.Back()).(*cached)
		delete(k.cache, old.customer)
	}
}

// Forget destroys customer's data key: every token sealed with it becomes
// unreadable for good, and no key is ever made for the customer again
// (sealing for them fails with ErrForgotten). It is idempotent, and works
// for a customer who never had a key (the tombstone then prevents one).
// This process stops using the key at once; other processes sharing the
// backend within Options.CacheTTL.
func (k *Keyring) Forget(ctx context.Context, customer uuid.UUID) error {
	if k == nil {
		return nil
	}
	if err := k.backend.Destroy(ctx, customer, k.opts.Now().UTC()); err != nil {
		return fmt.Errorf("keyring: destroy key of %s: %w", customer, err)
	}
	k.remember(customer, nil)
	return nil
}

// Forgotten reports whether customer's key was destroyed.
func (k *Keyring) Forgotten(ctx context.Context, customer uuid.UUID) (bool, error) {
	if k == nil {
		return false, nil
	}
	_, st, err := k.key(ctx, customer, false)
	return st == stateDestroyed, err
}

// forgottenError is the error of sealing for a forgotten customer: both
// ErrForgotten and a domain rejection.
func forgottenError(customer uuid.UUID, typ string) error {
	return fmt.Errorf("%w: %w", ErrForgotten, &domain.RejectionError{
		Type: typ, Entity: "customer", ID: customer.String(),
		Rule: "forgotten: its data key was destroyed, nothing more can be recorded",
	})
}
