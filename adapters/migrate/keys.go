package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// KeyStore is the key store beside a ledger: an adapters/keyring Backend
// (boltkeys, pgkeys).
type KeyStore interface {
	Load(ctx context.Context, customer uuid.UUID) (keyring.Entry, bool, error)
	Create(ctx context.Context, customer uuid.UUID, e keyring.Entry) (keyring.Entry, error)
	Destroy(ctx context.Context, customer uuid.UUID, at time.Time) error
	CheckValue(ctx context.Context, kcv []byte) ([]byte, error)
	LoadCheckValue(ctx context.Context) ([]byte, bool, error)
}

// Keys are the key stores beside the source and the target (Options.Keys).
type Keys struct {
	Source, Target KeyStore
}

// Errors of copying and verifying keys.
var (
	// ErrKeyCheckMismatch: the target's key store was set up with another
	// master key than the source's. The wrapped keys are copied as they
	// are, so both sides must share the master key; nothing is copied.
	ErrKeyCheckMismatch = errors.New("the target's key store belongs to another master key than the source's")
	// ErrKeyMismatch: a customer's key entry in the target contradicts the
	// source's in a way a copy must not repair (see Keys). Errors wrapping
	// it are *KeyMismatchError.
	ErrKeyMismatch = errors.New("key entries differ")
)

// KeyMismatchError names the customer whose key entries differ.
type KeyMismatchError struct {
	Customer uuid.UUID
	Reason   string
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("%v: customer %s: %s", ErrKeyMismatch, e.Customer, e.Reason)
}

// Unwrap returns ErrKeyMismatch.
func (e *KeyMismatchError) Unwrap() error { return ErrKeyMismatch }

// KeyResult counts what a Copy did with the keys of the customers whose
// events it walked (copied, or found in the target already).
type KeyResult struct {
	// NoSourceKeys is true when the source's key store holds no key check
	// value: no keyring ever opened it, so it holds no key (a ledger from
	// before crypto-shredding, whose events hold plaintext) and none was
	// copied.
	NoSourceKeys bool
	// Copied live keys and Tombstones (forgotten customers) were written
	// to the target now; Skipped were there already.
	Copied     int64
	Tombstones int64
	Skipped    int64
	// Missing customers have no entry in the source: their events were
	// stored before a keyring existed.
	Missing int64
}

// maxDone bounds the set of customers whose keys a run has handled; past
// it the set starts over, which costs reads, not correctness.
const maxDone = 1 << 20

// keyCopier carries the key entries of the customers of the events one
// Copy walks (or compares them, for Verify).
type keyCopier struct {
	keys   Keys
	verify bool
	done   map[uuid.UUID]struct{}
	res    KeyResult
}

// newKeyCopier checks the key check values: the target's must be the
// source's (an empty target takes the source's). It returns nil when
// there is nothing to do: no Keys, or a source without keys.
func newKeyCopier(ctx context.Context, keys *Keys, verify bool) (*keyCopier, KeyResult, error) {
	if keys == nil {
		return nil, KeyResult{}, nil
	}
	src, ok, err := keys.Source.LoadCheckValue(ctx)
	if err != nil {
		return nil, KeyResult{}, fmt.Errorf("migrate: source key store: %w", err)
	}
	var dst []byte
	var tok bool
	switch {
	case verify || !ok:
		dst, tok, err = keys.Target.LoadCheckValue(ctx)
	default:
		// An empty target takes the source's check value, and so the
		// source's master key.
		dst, err = keys.Target.CheckValue(ctx, src)
		tok = true
	}
	if err != nil {
		return nil, KeyResult{}, fmt.Errorf("migrate: target key store: %w", err)
	}
	switch {
	case !ok && !tok:
		return nil, KeyResult{NoSourceKeys: true}, nil
	case !ok && verify:
		return nil, KeyResult{}, errors.New("migrate: verify: the source's key store is empty, the target's is not")
	case !ok:
		// Nothing to copy; the target's keys are its own business.
		return nil, KeyResult{NoSourceKeys: true}, nil
	case !tok:
		return nil, KeyResult{}, errors.New("migrate: verify: the target's key store is empty: no key was copied")
	case !bytes.Equal(src, dst):
		return nil, KeyResult{}, fmt.Errorf("migrate: %w: the keys copied would not unwrap there (configure the source's master key on the target, or migrate into an empty one)", ErrKeyCheckMismatch)
	}
	return &keyCopier{keys: *keys, verify: verify, done: make(map[uuid.UUID]struct{})}, KeyResult{}, nil
}

// handle copies (or compares) the key entry of r's customer, once per
// run — again after a CustomerForgotten, whose erasure a source still in
// use may have completed meanwhile. Streams that are not a customer's
// have no key.
func (kc *keyCopier) handle(ctx context.Context, r *eventstore.Record) error {
	if kc == nil {
		return nil
	}
	c, err := domain.ParseStreamID(r.Stream)
	if err != nil {
		return nil
	}
	_, seen := kc.done[c]
	if seen && r.Type != domain.TypeCustomerForgotten {
		return nil
	}
	var o outcome
	if kc.verify {
		o, err = kc.compare(ctx, c)
	} else {
		o, err = kc.copyKey(ctx, c)
	}
	if err != nil {
		return err
	}
	switch {
	case o == copied:
		kc.res.Copied++
	case o == tombstone:
		kc.res.Tombstones++
	case o == missing && !seen:
		kc.res.Missing++
	case o == alike && !seen:
		kc.res.Skipped++
	}
	if len(kc.done) >= maxDone {
		clear(kc.done)
	}
	kc.done[c] = struct{}{}
	return nil
}

// outcome is what handling one customer's key did.
type outcome int

const (
	alike     outcome = iota // the target held the source's entry already
	copied                   // a live key was created in the target
	tombstone                // a tombstone was written to the target
	missing                  // the source holds no entry
)

// copyKey brings customer c's entry in the target in line with the
// source's: a live key is created as it is (wrapped by the shared master
// key), a tombstone replaces whatever the target holds, so that a
// forgotten customer stays forgotten. A target that holds another key,
// or a tombstone where the source has a key, is a *KeyMismatchError: the
// first would leave the copied events unreadable, the second would give
// a forgotten customer a key back.
func (kc *keyCopier) copyKey(ctx context.Context, c uuid.UUID) (outcome, error) {
	se, ok, err := kc.keys.Source.Load(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("migrate: key of customer %s: source: %w", c, err)
	}
	if !ok {
		return missing, nil
	}
	te, tok, err := kc.keys.Target.Load(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("migrate: key of customer %s: target: %w", c, err)
	}
	switch {
	case se.Destroyed() && tok && te.Destroyed():
		return alike, nil
	case se.Destroyed():
		if err := kc.keys.Target.Destroy(ctx, c, se.DestroyedAt); err != nil {
			return 0, fmt.Errorf("migrate: key of customer %s: target: %w", c, err)
		}
		return tombstone, nil
	case !tok:
		stored, err := kc.keys.Target.Create(ctx, c, keyring.Entry{Wrapped: se.Wrapped})
		if err != nil {
			return 0, fmt.Errorf("migrate: key of customer %s: target: %w", c, err)
		}
		if reason := differ(se, stored); reason != "" {
			return 0, fmt.Errorf("migrate: %w", &KeyMismatchError{Customer: c, Reason: reason + " (written meanwhile by another process)"})
		}
		return copied, nil
	}
	if reason := differ(se, te); reason != "" {
		return 0, fmt.Errorf("migrate: %w", &KeyMismatchError{Customer: c, Reason: reason})
	}
	return alike, nil
}

// compare checks that customer c's entries agree: both missing, both
// tombstones, or the same wrapped key.
func (kc *keyCopier) compare(ctx context.Context, c uuid.UUID) (outcome, error) {
	se, ok, err := kc.keys.Source.Load(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("migrate: verify: key of customer %s: source: %w", c, err)
	}
	te, tok, err := kc.keys.Target.Load(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("migrate: verify: key of customer %s: target: %w", c, err)
	}
	switch {
	case !ok && !tok:
		return missing, nil
	case !ok:
		return 0, fmt.Errorf("migrate: verify: %w", &KeyMismatchError{Customer: c, Reason: "the target holds a key entry, the source none"})
	case !tok:
		return 0, fmt.Errorf("migrate: verify: %w", &KeyMismatchError{Customer: c, Reason: "the target holds no key entry"})
	}
	if reason := differ(se, te); reason != "" {
		return 0, fmt.Errorf("migrate: verify: %w", &KeyMismatchError{Customer: c, Reason: reason})
	}
	return alike, nil
}

// differ says how target entry t contradicts source entry s, or "".
func differ(s, t keyring.Entry) string {
	switch {
	case s.Destroyed() && t.Destroyed():
		return ""
	case s.Destroyed():
		return "forgotten in the source, the target still holds a key"
	case t.Destroyed():
		return "forgotten in the target but not in the source: a forgotten customer is never given a key back"
	case !bytes.Equal(s.Wrapped, t.Wrapped):
		return "the target holds another key than the source (made there before the copy): the copied events would not open with it"
	}
	return ""
}
