// Package boltrm is the embedded read-model Backend: one bbolt file beside
// the event store's (by convention <data>/readmodels.db next to
// <data>/ledger.db). A sibling file rather than the event file itself keeps
// the two writers apart: bbolt has a single write transaction per file, and
// a replay rewriting read models would otherwise stall appends.
//
// # Layout
//
//	<ns>    one top-level bucket per namespace: key → JSON value, in the
//	        byte order bbolt keeps.
//	_meta   format      → one byte, the layout version, checked on Open
//	        checkpoints → sub-bucket: namespace → 8-byte big-endian position
//	        active      → sub-bucket: read-model name → namespace serving it
//	        served      → sub-bucket: namespace → the read-model name it was
//	                      last activated for (kept after a Drop; see View)
//	        retired     → sub-bucket: namespace → empty, for a namespace an
//	                      Activate switched away from (no Commit may
//	                      write it again)
//
// Namespaces start with a letter, so no namespace bucket can be named _meta.
//
// # Atomic switch and the drop race
//
// Activate rewrites one pointer in a write transaction. A reader that
// resolves the pointer and reads the data in one read transaction therefore
// sees the old namespace or the new one, whole. A reader that resolved the
// pointer with Active and only then calls View may find its namespace gone,
// dropped by a rebuild that switched over in between: View then follows the
// served record to the read model's active namespace, in the same read
// transaction, and reads the new generation instead of an empty one.
//
// A data file belongs to one process at a time: Open fails at once (ErrInUse)
// when another process holds it.
package boltrm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/projections"
)

// FileName is the conventional name of the read-model file in the data
// directory, beside the event store's ledger.db.
const FileName = "readmodels.db"

// ErrInUse is wrapped by Open's error when another process holds the file.
var ErrInUse = errors.New("read-model file is in use by another process")

// ErrClosed is wrapped by the error of every call made after Close.
var ErrClosed = errors.New("read-model backend closed")

// ErrCorrupt is wrapped by Open's error when the file is not a read-model
// file of a layout this build knows.
var ErrCorrupt = errors.New("read-model file corrupt or of an unknown layout")

// Options configures a Backend. The zero Options is the production setting.
type Options struct {
	// NoSync skips fsync on commit. A crash can then lose or corrupt recent
	// commits: for tests and benchmarks only.
	NoSync bool
	// LockTimeout is how long Open waits for another process to release the
	// file. Zero fails at once: a second instance on the same data directory
	// is a deployment mistake to report, not to wait out.
	LockTimeout time.Duration
	// InitialMmapSize is the size of bbolt's first memory map; 0 means
	// DefaultInitialMmapSize. Growing the map waits for every open read
	// transaction, so a map that already covers the file keeps queries and
	// replay commits from stalling each other. It reserves address space,
	// not memory.
	InitialMmapSize int
}

// DefaultInitialMmapSize is the memory map reserved when
// Options.InitialMmapSize is 0.
const DefaultInitialMmapSize = 1 << 30

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.LockTimeout < 0:
		return fmt.Errorf("negative LockTimeout %s", o.LockTimeout)
	case o.InitialMmapSize < 0:
		return fmt.Errorf("negative InitialMmapSize %d", o.InitialMmapSize)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.InitialMmapSize == 0 {
		o.InitialMmapSize = DefaultInitialMmapSize
	}
}

var (
	bucketMeta        = []byte("_meta")
	bucketCheckpoints = []byte("checkpoints")
	bucketActive      = []byte("active")
	bucketServed      = []byte("served")
	bucketRetired     = []byte("retired")
	keyFormat         = []byte("format")
)

// layoutVersion is stored under _meta/format; Open refuses other versions
// rather than misreading them.
const layoutVersion = 1

// Backend is a projections.Backend in one bbolt file. It is safe for
// concurrent use: updates take turns on bbolt's single write transaction,
// reads run concurrently with them and each other.
type Backend struct {
	// LocalLeases are exact here: the file belongs to one process.
	projections.LocalLeases

	db     *bolt.DB
	path   string
	closed atomic.Bool
	// arena holds the values Put in the current write transaction: bbolt
	// keeps references to them until commit. Only the write transaction
	// uses it, and bbolt allows one at a time.
	arena []byte
	// txBytes counts the bytes of the values Put in the current write
	// transaction.
	txBytes int64
	// written counts the bytes of values committed since the mapped pages
	// were last released (releaseEvery).
	written atomic.Int64
}

var _ projections.Backend = (*Backend)(nil)

// Open opens the read-model file at path, creating it and its parent
// directory if missing. It fails at once with an error wrapping ErrInUse
// when another process has the file open.
func Open(path string, opts Options) (_ *Backend, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("boltrm: open %s: %w", path, err)
		}
	}()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create parent directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// bbolt treats a zero Timeout as "wait forever"; one nanosecond
		// makes it try the lock once.
		Timeout:      max(opts.LockTimeout, time.Nanosecond),
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
		// Every commit used to write the whole list of free pages, and a
		// read-model file keeps many (a rebuild's long read transactions
		// pin pages, dropped generations free theirs): with every read
		// model live on a 1M-event log the customer view lagged appends
		// by 49 ms at p50 and 79–88 ms at p99 (242 and 319 ms at 4.4M
		// events); without, 4.4 and 14.9 ms at 1M. The price is paid at
		// Open, which walks the file to find the free pages: 2.2 s for a
		// 1.8 GB file in the page cache, 25 s cold on this project's disk.
		// etcd makes the same choice for its bbolt backend.
		NoFreelistSync:  true,
		InitialMmapSize: opts.InitialMmapSize,
		NoStatistics:    true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (is another cxledger running on this data directory?)", ErrInUse)
	}
	if err != nil {
		return nil, err
	}
	if err := initialize(db); err != nil {
		_ = db.Close()
		return nil, err
	}
	b := &Backend{db: db, path: path}
	// Without a stored freelist (NoFreelistSync), Open walked every page
	// of the file to find the free ones: all of it is mapped now.
	b.release()
	return b, nil
}

// initialize creates the meta buckets of a new file and checks the layout
// version of an existing one.
func initialize(db *bolt.DB) error {
	err := db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			n := 0
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
			if n > 0 {
				return fmt.Errorf("%w: %d buckets but no %s bucket", ErrCorrupt, n, bucketMeta)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, []byte{layoutVersion}); err != nil {
				return err
			}
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, []byte{layoutVersion}) {
			return fmt.Errorf("%w: layout version %v, this build reads %d", ErrCorrupt, f, layoutVersion)
		}
		for _, name := range [][]byte{bucketCheckpoints, bucketActive, bucketServed, bucketRetired} {
			if _, err := meta.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s/%s: %w", bucketMeta, name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	return nil
}

// Path returns the file's path.
func (b *Backend) Path() string { return b.path }

// meta holds the sub-buckets of _meta in one transaction.
type meta struct{ checkpoints, active, served, retired *bolt.Bucket }

func openMeta(tx *bolt.Tx) (meta, error) {
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return meta{}, fmt.Errorf("%w: no %s bucket", ErrCorrupt, bucketMeta)
	}
	mt := meta{m.Bucket(bucketCheckpoints), m.Bucket(bucketActive), m.Bucket(bucketServed), m.Bucket(bucketRetired)}
	if mt.checkpoints == nil || mt.active == nil || mt.served == nil || mt.retired == nil {
		return meta{}, fmt.Errorf("%w: incomplete %s bucket", ErrCorrupt, bucketMeta)
	}
	return mt, nil
}

// begin starts a transaction, reporting a closed backend as ErrClosed
// rather than as bbolt's own error.
func (b *Backend) begin(ctx context.Context, writable bool) (*bolt.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.closed.Load() {
		return nil, ErrClosed
	}
	tx, err := b.db.Begin(writable)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, ErrClosed
	}
	return tx, err
}

// update runs fn in a write transaction and commits it unless fn fails or
// ctx is done by then.
func (b *Backend) update(ctx context.Context, fn func(tx *bolt.Tx, m meta) error) error {
	tx, err := b.begin(ctx, true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	b.arena, b.txBytes = b.arena[:0], 0
	m, err := openMeta(tx)
	if err != nil {
		return err
	}
	if err := fn(tx, m); err != nil {
		return err
	}
	// A caller that gave up must not find its work committed after all.
	if err := ctx.Err(); err != nil {
		return err
	}
	written := b.txBytes
	if err := tx.Commit(); err != nil {
		return err
	}
	if b.written.Add(written) >= releaseEvery {
		b.written.Store(0)
		b.release()
	}
	return nil
}

// releaseEvery is how many bytes of values the write transactions store
// between two releases of the file's mapped pages (boltstore.ReleasePages).
// A rebuild writes, and bbolt reads back through its map, pages all over a
// read-model file that grows with the read models (700 MB at a million
// events); released, they leave this process's resident set, and those the
// next batches touch come back from the page cache as minor faults. A
// replay's batches touch pages everywhere in the file, so what stays
// resident is what a few batches touch: measured at a million events, the
// file's resident pages at the end of a replay were 674 MB releasing every
// 64 MiB, 480 MB every 8 MiB at the same speed, 50 MB after every commit
// at 12 % more time.
var releaseEvery int64 = 8 << 20

// releaseTick is how often releaseEveryTick releases the file's pages.
var releaseTick = 20 * time.Millisecond

// releaseEveryTick releases the file's mapped pages every releaseTick
// until the returned stop is called, from a read transaction of its own
// (which holds bbolt's mmap lock; bbolt lets it run beside the write
// transaction). The mapping is read-only and bbolt writes with pwrite, so
// a page released under a transaction reading it is faulted back
// unchanged.
func (b *Backend) releaseEveryTick() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(releaseTick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.release()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// release drops the file's mapped pages from the resident set.
func (b *Backend) release() {
	_ = b.db.View(func(tx *bolt.Tx) error { boltstore.ReleasePages(b.db, tx); return nil })
}

// view runs fn in a read transaction.
func (b *Backend) view(ctx context.Context, fn func(tx *bolt.Tx, m meta) error) error {
	tx, err := b.begin(ctx, false)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	m, err := openMeta(tx)
	if err != nil {
		return err
	}
	return fn(tx, m)
}

// Update implements projections.Backend: fn runs inside one bbolt write
// transaction, which commits, checkpoint included, only if fn returns nil
// and ctx is not done. Updates of all namespaces take turns.
func (b *Backend) Update(ctx context.Context, ns string, fn func(projections.Writer) error) (err error) {
	defer wrap(&err, "update %s", ns)
	return b.write(ctx, ns, nil, fn)
}

// Commit implements projections.Backend: Update's transaction, after the
// claim is checked in it (see projections.Backend.Commit).
func (b *Backend) Commit(ctx context.Context, ns string, c projections.Claim, fn func(projections.Writer) error) (err error) {
	defer wrap(&err, "commit %s", ns)
	return b.write(ctx, ns, &c, fn)
}

// write is Update, or Commit when c is set.
func (b *Backend) write(ctx context.Context, ns string, c *projections.Claim, fn func(projections.Writer) error) error {
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	return b.update(ctx, func(tx *bolt.Tx, m meta) error {
		from, err := checkpointIn(m, ns)
		if err != nil {
			return err
		}
		bk := tx.Bucket([]byte(ns))
		if c != nil {
			retired := m.retired.Get([]byte(ns)) != nil
			if err := projections.CheckClaim(ns, *c, bk != nil, retired, from, b.Holds(c.Lease)); err != nil {
				return err
			}
		} else if bk == nil {
			if bk, err = tx.CreateBucket([]byte(ns)); err != nil {
				return fmt.Errorf("create bucket: %w", err)
			}
		}
		w := &writer{reader: reader{b: bk}, be: b, m: m, ns: ns, pending: map[string][]byte{}}
		defer func() { w.b = nil }() // the Writer is valid only during fn
		if err := fn(w); err != nil {
			return err
		}
		if err := w.apply(); err != nil {
			return err
		}
		to, err := checkpointIn(m, ns)
		if err != nil {
			return err
		}
		return projections.CheckForward(ns, from, to)
	})
}

// checkpointIn reads ns's checkpoint in a transaction's meta buckets.
func checkpointIn(m meta, ns string) (uint64, error) {
	v := m.checkpoints.Get([]byte(ns))
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: checkpoint of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// View implements projections.Backend on one read transaction. A namespace
// that does not exist reads as empty, except one dropped after it served a
// read model: that one reads as the read model's active namespace, so that
// a reader that resolved the pointer just before a rebuild switched over
// and dropped the old generation reads the new one (see the package
// documentation).
func (b *Backend) View(ctx context.Context, ns string, fn func(projections.Reader) error) (err error) {
	defer wrap(&err, "view %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	return b.view(ctx, func(tx *bolt.Tx, m meta) error {
		bk := tx.Bucket([]byte(ns))
		if bk == nil {
			if name := m.served.Get([]byte(ns)); name != nil {
				if cur := m.active.Get(name); cur != nil {
					bk = tx.Bucket(cur)
				}
			}
		}
		r := &reader{b: bk}
		defer func() { r.b = nil }()
		return fn(r)
	})
}

// Checkpoint implements projections.Backend.
func (b *Backend) Checkpoint(ctx context.Context, ns string) (pos uint64, err error) {
	defer wrap(&err, "checkpoint %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return 0, err
	}
	err = b.view(ctx, func(_ *bolt.Tx, m meta) error {
		pos, err = checkpointIn(m, ns)
		return err
	})
	return pos, err
}

// Active implements projections.Backend.
func (b *Backend) Active(ctx context.Context, name string) (ns string, err error) {
	defer wrap(&err, "active %s", name)
	if err := projections.CheckName("read-model name", name); err != nil {
		return "", err
	}
	err = b.view(ctx, func(_ *bolt.Tx, m meta) error {
		ns = string(m.active.Get([]byte(name)))
		return nil
	})
	return ns, err
}

// Activate implements projections.Backend: the pointer changes in one write
// transaction, creating ns if needed, so every read transaction sees the
// old namespace or the new one.
func (b *Backend) Activate(ctx context.Context, name, ns string) (err error) {
	defer wrap(&err, "activate %s as %s", ns, name)
	if err := projections.CheckName("read-model name", name); err != nil {
		return err
	}
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	return b.update(ctx, func(tx *bolt.Tx, m meta) error {
		if _, err := tx.CreateBucketIfNotExists([]byte(ns)); err != nil {
			return fmt.Errorf("create bucket: %w", err)
		}
		if old := m.active.Get([]byte(name)); old != nil && string(old) != ns {
			if err := m.retired.Put(bytes.Clone(old), []byte{1}); err != nil {
				return err
			}
		}
		if err := m.active.Put([]byte(name), []byte(ns)); err != nil {
			return err
		}
		return m.served.Put([]byte(ns), []byte(name))
	})
}

// Switch implements projections.Backend in one write transaction.
func (b *Backend) Switch(ctx context.Context, name, from, to string) (err error) {
	defer wrap(&err, "switch %s from %q to %s", name, from, to)
	if err := projections.CheckName("read-model name", name); err != nil {
		return err
	}
	if err := projections.CheckName("namespace", to); err != nil {
		return err
	}
	return b.update(ctx, func(tx *bolt.Tx, m meta) error {
		// A switch ends a rebuild: what its last batches left mapped (the
		// pages of up to releaseEvery of values, and those they read
		// around the file) is released with the switch's commit.
		b.txBytes += releaseEvery
		active := string(m.active.Get([]byte(name)))
		fromCP, err := checkpointIn(m, from)
		if err != nil {
			return err
		}
		toCP, err := checkpointIn(m, to)
		if err != nil {
			return err
		}
		toExists := tx.Bucket([]byte(to)) != nil && m.retired.Get([]byte(to)) == nil
		if err := projections.CheckSwitch(name, from, to, active, toExists, fromCP, toCP); err != nil {
			return err
		}
		if from != "" && from != to {
			if err := m.retired.Put([]byte(from), []byte{1}); err != nil {
				return err
			}
		}
		if err := m.active.Put([]byte(name), []byte(to)); err != nil {
			return err
		}
		return m.served.Put([]byte(to), []byte(name))
	})
}

// Drop implements projections.Backend. The namespace's served record stays,
// so that View of the dropped namespace follows its read model (see View).
// Read transactions already open keep reading the dropped data: bbolt frees
// its pages only when they end.
func (b *Backend) Drop(ctx context.Context, ns string) (err error) {
	defer wrap(&err, "drop %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	// Deleting a bucket reads the header of every page of it to free
	// them, and each fault maps the pages around it as well (the kernel's
	// fault-around, 64 KiB): the pages of a generation are scattered over
	// the file, so a drop mapped nearly the whole file before its commit
	// released it (5.9 GB resident for a customer360 rebuild in a 9.8M-event
	// file, whose old generation was a fraction of that). Releasing on a
	// timer meanwhile bounds what stays mapped to what a tick's worth of
	// the walk touches.
	return b.update(ctx, func(tx *bolt.Tx, m meta) error {
		// The commit releases the pages the walk touched since the last
		// tick, as if they had been written.
		b.txBytes += releaseEvery
		stop := b.releaseEveryTick()
		err := tx.DeleteBucket([]byte(ns))
		stop()
		if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if err := m.retired.Delete([]byte(ns)); err != nil {
			return err
		}
		return m.checkpoints.Delete([]byte(ns))
	})
}

// Namespaces implements projections.Backend.
func (b *Backend) Namespaces(ctx context.Context) (list []string, err error) {
	defer wrap(&err, "namespaces")
	err = b.view(ctx, func(tx *bolt.Tx, _ meta) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if !bytes.Equal(name, bucketMeta) {
				list = append(list, string(name))
			}
			return nil
		})
	})
	return list, err // bbolt walks top-level buckets in byte order
}

// Close waits for transactions in progress and closes the file; later calls
// fail with ErrClosed. Calling it again returns nil.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("boltrm: close %s: %w", b.path, err)
	}
	return nil
}

// wrap adds the operation to a failing call's error, once per method.
func wrap(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf("boltrm: %s: %w", fmt.Sprintf(format, args...), *err)
	}
}

// reader reads one namespace bucket; a nil bucket reads as empty.
type reader struct{ b *bolt.Bucket }

// Get returns a copy of the value: bbolt's slice points into the memory
// map and is valid only during the transaction, which a caller keeping
// the value could not know.
func (r *reader) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if r.b == nil {
		return nil, false, nil
	}
	v := r.b.Get([]byte(key))
	if v == nil {
		return nil, false, nil
	}
	return bytes.Clone(v), true, nil
}

// scanCheckEvery is how many keys Scan visits between context checks.
const scanCheckEvery = 256

func (r *reader) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.b == nil {
		return nil
	}
	c := r.b.Cursor()
	var k, v []byte
	if after >= prefix {
		k, v = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
	} else {
		k, v = c.Seek([]byte(prefix))
	}
	p := []byte(prefix)
	for n := 1; k != nil && bytes.HasPrefix(k, p); n++ {
		if n%scanCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		more, err := fn(string(k), v)
		if err != nil || !more {
			return err
		}
		k, v = c.Next()
	}
	return nil
}

// writer writes one namespace bucket inside Backend.Update. Puts and
// Deletes are buffered and applied in key order when fn returns (or before
// a Scan): a replay batch's burst of writes to random keys then walks the
// B+tree once from left to right instead of jumping around it, about a
// fifth faster.
type writer struct {
	reader
	be      *Backend
	m       meta
	ns      string
	pending map[string][]byte // key → value, nil for a delete
}

// arenaChunk is the size of a fresh arena block; larger values get a block
// of their own.
const arenaChunk = 1 << 20

// keep copies value into the arena, so that the caller may reuse its
// buffer while bbolt still refers to the value until commit. Blocks are
// never moved: a full one is left to the values pointing into it.
func (w *writer) keep(value []byte) []byte {
	a := w.be.arena
	if cap(a)-len(a) < len(value) {
		a = make([]byte, 0, max(arenaChunk, len(value)))
	}
	n := len(a)
	a = append(a, value...)
	w.be.arena = a
	w.be.txBytes += int64(len(value))
	return a[n:len(a):len(a)]
}

func (w *writer) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.b == nil {
		return errors.New("writer used after its Update returned")
	}
	return nil
}

// Get sees the writes buffered in this transaction.
func (w *writer) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := w.usable(ctx); err != nil {
		return nil, false, err
	}
	if v, ok := w.pending[key]; ok {
		if v == nil {
			return nil, false, nil
		}
		return bytes.Clone(v), true, nil
	}
	return w.reader.Get(ctx, key)
}

// Scan applies the buffered writes first, so the cursor sees them.
func (w *writer) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if err := w.apply(); err != nil {
		return err
	}
	return w.reader.Scan(ctx, prefix, after, fn)
}

// Put buffers a copy of value, which must be a JSON document (PostgreSQL
// accepts nothing else, and every backend must accept the same values).
func (w *writer) Put(ctx context.Context, key string, value []byte) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if err := projections.CheckKey(key); err != nil {
		return err
	}
	if !json.Valid(value) || !utf8.Valid(value) {
		return fmt.Errorf("value at %q is not a UTF-8 JSON document", key)
	}
	w.pending[key] = w.keep(value)
	return nil
}

// PutChecked implements projections.CheckedPutter: Put without checking
// the value again.
func (w *writer) PutChecked(ctx context.Context, key string, value []byte) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if err := projections.CheckKey(key); err != nil {
		return err
	}
	w.pending[key] = w.keep(value)
	return nil
}

func (w *writer) Delete(ctx context.Context, key string) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if key == "" {
		return nil // no such key can exist
	}
	w.pending[key] = nil
	return nil
}

func (w *writer) SetCheckpoint(ctx context.Context, position uint64) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	return w.m.checkpoints.Put([]byte(w.ns), binary.BigEndian.AppendUint64(nil, position))
}

// WriteSorted implements projections.SortedWriter: the writes go straight
// to the bucket, in their order, without the copy and sort Put's buffer
// takes. The values must stay unchanged until the transaction ends, as
// the engine's batches do.
func (w *writer) WriteSorted(ctx context.Context, kvs []projections.KV) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if err := w.apply(); err != nil { // earlier writes of this transaction first
		return err
	}
	for _, kv := range kvs {
		var err error
		switch {
		case kv.Value != nil:
			err = w.b.Put([]byte(kv.Key), kv.Value)
			w.be.txBytes += int64(len(kv.Value))
		case kv.Key != "":
			err = w.b.Delete([]byte(kv.Key))
		}
		if err != nil {
			return fmt.Errorf("write %q: %w", kv.Key, err)
		}
	}
	return nil
}

// apply writes the buffered changes to the bucket in key order.
func (w *writer) apply() error {
	if len(w.pending) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(w.pending))
	for _, k := range keys {
		var err error
		if v := w.pending[k]; v == nil {
			err = w.b.Delete([]byte(k))
		} else {
			err = w.b.Put([]byte(k), v)
		}
		if err != nil {
			return fmt.Errorf("write %q: %w", k, err)
		}
	}
	clear(w.pending)
	return nil
}

// Forget implements projections.Forgetter: the read model's pointer, the
// served records naming it and its leases are deleted.
func (b *Backend) Forget(ctx context.Context, name string) (err error) {
	defer wrap(&err, "forget %s", name)
	if err := projections.CheckName("read-model name", name); err != nil {
		return err
	}
	err = b.update(ctx, func(_ *bolt.Tx, m meta) error {
		if err := m.active.Delete([]byte(name)); err != nil {
			return err
		}
		var stale [][]byte
		if err := m.served.ForEach(func(k, v []byte) error {
			if string(v) == name {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale {
			if err := m.served.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		b.ForgetLeases(name)
	}
	return err
}
