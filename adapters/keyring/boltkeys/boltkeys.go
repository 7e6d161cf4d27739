// Package boltkeys is the embedded key store of adapters/keyring: the
// wrapped customer data keys in a bbolt file of their own, next to the
// embedded event store but apart from it (keys.db in the data directory),
// so that the events, their backups and exports never carry the keys.
//
// # Layout
//
//	keys/<customer uuid, 16 bytes>  1 || wrapped key        a live key
//	                                2 || unix nanoseconds   a tombstone
//	meta/kcv                        the master key's check value
//
// # Destroying a key
//
// bbolt never updates a page in place: a tombstone is written to a new
// page and the page holding the wrapped key only goes to the free list,
// bytes intact, until it happens to be reused. Destroy therefore rewrites
// the whole file after writing the tombstone (a compaction into a new file
// renamed over the old one), so that the file holds no copy of a destroyed
// key. That costs a copy of the key store per erasure — about 100 bytes
// per customer — which erasure requests, rare by nature, can afford. What
// the file system or the disk keep of the old file's blocks is beyond a
// file's reach: keep the data directory on an encrypted volume.
package boltkeys

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cxledger/cxledger/adapters/keyring"
)

// FileName is the key store's file name in the data directory.
const FileName = "keys.db"

// ErrInUse: another process holds the key file open.
var ErrInUse = errors.New("key file is in use by another process")

var (
	bucketKeys = []byte("keys")
	bucketMeta = []byte("meta")
	keyKCV     = []byte("kcv")
)

const (
	tagLive      = 1
	tagTombstone = 2
)

// Options tune a Backend. The zero value is valid.
type Options struct {
	// NoSync skips fsync (tests only: a crash may lose or damage keys).
	NoSync bool
	// LockTimeout is how long Open waits for another process to release
	// the file; 0 tries once.
	LockTimeout time.Duration
}

// Backend is a keyring.Backend in one bbolt file. It is safe for
// concurrent use; one process at a time holds the file.
type Backend struct {
	path string
	opts Options

	// mu guards db: operations share it, Destroy's compaction replaces it.
	mu     sync.RWMutex
	db     *bolt.DB
	closed bool
}

var _ keyring.Backend = (*Backend)(nil)

// Open opens or creates the key file at path (mode 0600).
func Open(path string, opts Options) (*Backend, error) {
	if opts.LockTimeout < 0 {
		return nil, fmt.Errorf("boltkeys: negative LockTimeout %s", opts.LockTimeout)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltkeys: create parent directory: %w", err)
	}
	b := &Backend{path: path, opts: opts}
	db, err := b.open(path)
	if err != nil {
		return nil, err
	}
	b.db = db
	return b, nil
}

func (b *Backend) open(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// bbolt treats a zero Timeout as "wait forever"; one nanosecond
		// makes it try the lock once.
		Timeout:      max(b.opts.LockTimeout, time.Nanosecond),
		NoSync:       b.opts.NoSync,
		FreelistType: bolt.FreelistMapType,
		NoStatistics: true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltkeys: %s: %w (is another cxledger running on this data directory?)", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("boltkeys: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketKeys, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltkeys: initialize %s: %w", path, err)
	}
	return db, nil
}

// Path returns the file's path.
func (b *Backend) Path() string { return b.path }

// with runs fn with the open database, shared with other operations.
func (b *Backend) with(fn func(db *bolt.DB) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return fmt.Errorf("boltkeys: %w", keyring.ErrClosed)
	}
	return fn(b.db)
}

func encode(e keyring.Entry) []byte {
	if e.Destroyed() {
		v := make([]byte, 9)
		v[0] = tagTombstone
		binary.BigEndian.PutUint64(v[1:], uint64(e.DestroyedAt.UnixNano()))
		return v
	}
	return append([]byte{tagLive}, e.Wrapped...)
}

func decode(customer uuid.UUID, v []byte) (keyring.Entry, error) {
	switch {
	case len(v) > 1 && v[0] == tagLive:
		return keyring.Entry{Wrapped: bytes.Clone(v[1:])}, nil
	case len(v) == 9 && v[0] == tagTombstone:
		return keyring.Entry{DestroyedAt: time.Unix(0, int64(binary.BigEndian.Uint64(v[1:]))).UTC()}, nil
	}
	return keyring.Entry{}, fmt.Errorf("boltkeys: entry of %s: %w", customer, keyring.ErrCorrupt)
}

// Load implements keyring.Backend.
func (b *Backend) Load(ctx context.Context, customer uuid.UUID) (e keyring.Entry, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return keyring.Entry{}, false, err
	}
	err = b.with(func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			v := tx.Bucket(bucketKeys).Get(customer[:])
			if v == nil {
				return nil
			}
			ok = true
			e, err = decode(customer, v)
			return err
		})
	})
	return e, ok, err
}

// Create implements keyring.Backend.
func (b *Backend) Create(ctx context.Context, customer uuid.UUID, e keyring.Entry) (stored keyring.Entry, err error) {
	if err := ctx.Err(); err != nil {
		return keyring.Entry{}, err
	}
	err = b.with(func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			keys := tx.Bucket(bucketKeys)
			if v := keys.Get(customer[:]); v != nil {
				stored, err = decode(customer, v)
				return err
			}
			stored = e
			return keys.Put(customer[:], encode(e))
		})
	})
	if err != nil {
		return keyring.Entry{}, fmt.Errorf("boltkeys: create: %w", err)
	}
	return stored, nil
}

// Destroy implements keyring.Backend: it writes the tombstone, then, when
// it replaced a key, compacts the file so that no free page keeps the
// wrapped key (see the package comment). A tombstone for a customer
// without an entry (one copied by `cxledger migrate`) replaces nothing
// and costs no compaction.
func (b *Backend) Destroy(ctx context.Context, customer uuid.UUID, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	replaced := false
	err := b.with(func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			keys := tx.Bucket(bucketKeys)
			if v := keys.Get(customer[:]); v != nil {
				if e, err := decode(customer, v); err == nil && e.Destroyed() {
					return nil
				}
				replaced = true // a key, or an entry too damaged to tell
			}
			return keys.Put(customer[:], encode(keyring.Entry{DestroyedAt: at}))
		})
	})
	if err != nil {
		return fmt.Errorf("boltkeys: destroy: %w", err)
	}
	if !replaced {
		return nil
	}
	return b.compact()
}

// compact rewrites the file into a fresh one holding only the live data
// and renames it over the file.
func (b *Backend) compact() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("boltkeys: %w", keyring.ErrClosed)
	}
	tmp := b.path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Nanosecond, NoSync: b.opts.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("boltkeys: compact: %w", err)
	}
	if err := bolt.Compact(dst, b.db, 0); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("boltkeys: compact: %w", err)
	}
	if err := errors.Join(dst.Sync(), dst.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("boltkeys: compact: %w", err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("boltkeys: compact: %w", err)
	}
	syncDir(filepath.Dir(b.path))
	// The old file is unlinked; release it and take the new one.
	_ = b.db.Close()
	db, err := b.open(b.path)
	if err != nil {
		b.closed = true
		return fmt.Errorf("boltkeys: reopen after compaction: %w", err)
	}
	b.db = db
	return nil
}

// syncDir makes a rename durable; a failure only weakens durability.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// CheckValue implements keyring.Backend.
func (b *Backend) CheckValue(ctx context.Context, kcv []byte) (stored []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = b.with(func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if v := meta.Get(keyKCV); v != nil {
				stored = bytes.Clone(v)
				return nil
			}
			stored = bytes.Clone(kcv)
			return meta.Put(keyKCV, stored)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltkeys: key check value: %w", err)
	}
	return stored, nil
}

// LoadCheckValue implements keyring.Backend.
func (b *Backend) LoadCheckValue(ctx context.Context) (kcv []byte, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	err = b.with(func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			if v := tx.Bucket(bucketMeta).Get(keyKCV); v != nil {
				kcv, ok = bytes.Clone(v), true
			}
			return nil
		})
	})
	if err != nil {
		return nil, false, fmt.Errorf("boltkeys: key check value: %w", err)
	}
	return kcv, ok, nil
}

// Close implements keyring.Backend.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("boltkeys: close: %w", err)
	}
	return nil
}
