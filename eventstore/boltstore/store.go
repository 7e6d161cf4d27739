// Package boltstore is cxledger's embedded, default event store: one bbolt
// data file, fsync on every commit, and concurrent appends coalesced into
// group commits so that many writers share one fsync.
//
// A data file belongs to one process at a time: Open takes an exclusive file
// lock and fails at once (ErrInUse) when another process holds it.
//
// The same file keeps the Merkle tree over the log that eventstore/notary
// maintains (merkle.go); its writes join the group commit.
package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cxledger/cxledger/eventstore"
)

// ErrInUse is wrapped by Open's error when another process holds the data
// file.
var ErrInUse = errors.New("data file is in use by another process")

// Options configures a Store. The zero Options is the production setting.
type Options struct {
	// MaxEventSize is the limit on one event's data, type and metadata
	// strings (eventstore.EventData.Size); 0 means
	// eventstore.DefaultMaxEventSize.
	MaxEventSize int

	// Now is the clock that stamps RecordedAt; nil means the system clock.
	// Its readings are converted to UTC and truncated to microseconds, so a
	// test clock need not bother.
	Now func() time.Time

	// NoSync skips fsync on commit. A crash can then lose or corrupt recent
	// commits: for tests and benchmarks only.
	NoSync bool

	// LockTimeout is how long Open waits for another process to release the
	// data file. Zero fails at once, which is what a server wants: a second
	// instance on the same file is a deployment mistake to report, not to
	// wait out.
	LockTimeout time.Duration

	// MaxBatch caps the number of appends coalesced into one commit; 0 means
	// DefaultMaxBatch. A batch is also cut at 32 MiB of encoded events, so
	// one commit's memory stays bounded (a single larger append commits
	// alone).
	MaxBatch int

	// InitialMmapSize is the size of bbolt's first memory map; 0 means
	// DefaultInitialMmapSize. Growing the map makes the writer wait for every
	// open read transaction, so a map that already covers the file keeps
	// reads and commits from stalling each other. It reserves address
	// space, not memory.
	InitialMmapSize int
}

// Defaults for the zero fields of Options.
const (
	DefaultMaxBatch        = 1024
	DefaultInitialMmapSize = 1 << 30
)

// maxBatchBytes bounds the encoded size of one group commit. A single append
// larger than this still commits, alone.
const maxBatchBytes = 32 << 20

// maxEventSizeLimit keeps an encoded event below bbolt's value size limit
// with room for the record header.
const maxEventSizeLimit = 1 << 30

func (o *Options) setDefaults() {
	if o.MaxEventSize == 0 {
		o.MaxEventSize = eventstore.DefaultMaxEventSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.InitialMmapSize == 0 {
		o.InitialMmapSize = DefaultInitialMmapSize
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch {
	case o.MaxEventSize < 0 || o.MaxEventSize > maxEventSizeLimit:
		return fmt.Errorf("boltstore: MaxEventSize %d outside 0..%d", o.MaxEventSize, maxEventSizeLimit)
	case o.LockTimeout < 0:
		return fmt.Errorf("boltstore: negative LockTimeout %s", o.LockTimeout)
	case o.MaxBatch < 0:
		return fmt.Errorf("boltstore: negative MaxBatch %d", o.MaxBatch)
	case o.InitialMmapSize < 0:
		return fmt.Errorf("boltstore: negative InitialMmapSize %d", o.InitialMmapSize)
	}
	return nil
}

// Store is an eventstore.Store in one bbolt file. All methods are safe for
// concurrent use.
//
// Appends are validated on the caller's goroutine, then queued to a single
// writer goroutine that owns every write transaction; reads run in bbolt
// read transactions, concurrently with the writer and each other.
type Store struct {
	db       *bolt.DB
	path     string
	maxEvent int
	now      func() time.Time
	maxBatch int

	// closeMu orders Close against enqueueing: an Append holds it shared
	// from its closed check until its request is in the queue, so Close,
	// holding it exclusively, can close the queue knowing nobody sends.
	closeMu sync.RWMutex
	closed  atomic.Bool
	queue   chan *appendReq

	// closing is closed by Close to end subscriptions.
	closing chan struct{}
	// writerDone is closed when the writer goroutine has exited.
	writerDone chan struct{}
	closeOnce  sync.Once

	// lastRecorded is the RecordedAt of the last committed event; owned by
	// the writer. RecordedAt never goes back along the log, even when the
	// clock does.
	lastRecorded time.Time

	// head is the last committed position. Only the writer stores it, after
	// a commit and before waking anyone.
	head   atomic.Uint64
	signal eventstore.Signal

	// scanned counts the bytes ReadAll read since it last released the
	// mapped pages (releaseEvery).
	scanned atomic.Int64

	// commits counts write transactions, so tests can see group commit at
	// work.
	commits atomic.Uint64

	// testHookCommit, when set, runs at the end of each write transaction;
	// its error fails the transaction, standing in for a failed disk.
	testHookCommit func() error

	// arena is the writer's buffer for the values of one batch (bbolt keeps
	// references to values until commit); reused across batches.
	arena []byte
}

var _ eventstore.Store = (*Store)(nil)

// Open opens the data file at path, creating it and its parent directory if
// missing, and starts the store's writer. It fails at once with an error
// wrapping ErrInUse when another process has the file open.
func Open(path string, opts Options) (_ *Store, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("boltstore: open %s: %w", path, err)
		}
	}()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create parent directory: %w", err)
	}
	// bbolt treats a zero Timeout as "wait forever"; one nanosecond makes it
	// try the lock once.
	timeout := max(opts.LockTimeout, time.Nanosecond)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         timeout,
		NoSync:          opts.NoSync,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
		// Statistics cost an atomic per transaction on every read, and
		// nothing here looks at them.
		NoStatistics: true,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		if holder := readHolder(path); holder != "" {
			return nil, fmt.Errorf("%w: held by %s (is another cxledger running?)", ErrInUse, holder)
		}
		return nil, fmt.Errorf("%w (is another cxledger running?)", ErrInUse)
	}
	if err != nil {
		return nil, err
	}
	writeHolder(path)
	s := &Store{
		db:         db,
		path:       path,
		maxEvent:   opts.MaxEventSize,
		now:        opts.Now,
		maxBatch:   opts.MaxBatch,
		queue:      make(chan *appendReq, opts.MaxBatch),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	head, last, err := initialize(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.head.Store(head)
	s.lastRecorded = last
	go s.runWriter()
	return s, nil
}

// The holder file, <path>.holder, names the process holding the data file
// (pid, host, start, command), so that a second process refused the file
// can say which one to look for. The lock itself is bbolt's flock; the
// holder file is only information: a crashed holder leaves it behind, and
// the next process to open the file overwrites it.

func holderPath(path string) string { return path + ".holder" }

// writeHolder records this process as the data file's holder, best effort.
func writeHolder(path string) {
	host, _ := os.Hostname()
	cmd := filepath.Base(os.Args[0])
	if len(os.Args) > 1 {
		cmd += " " + os.Args[1]
	}
	info := fmt.Sprintf("pid %d on %s since %s (%s)", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339), cmd)
	_ = os.WriteFile(holderPath(path), []byte(info), 0o600)
}

// readHolder returns the recorded holder, or "" when none is recorded.
func readHolder(path string) string {
	b, err := os.ReadFile(holderPath(path))
	if err != nil || len(b) > 512 {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// initialize creates the buckets of a new file, checks the layout version of
// an existing one, and returns its last position and that event's
// RecordedAt.
func initialize(db *bolt.DB) (head uint64, last time.Time, err error) {
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch f := meta.Get(keyFormat); {
		case f == nil:
			if tx.Bucket(bucketEvents) != nil {
				return fmt.Errorf("%w: events without a layout version", ErrCorrupt)
			}
			if err := meta.Put(keyFormat, []byte{layoutVersion}); err != nil {
				return err
			}
		case !bytes.Equal(f, []byte{layoutVersion}):
			return fmt.Errorf("%w: layout version %v, this build reads %d", ErrCorrupt, f, layoutVersion)
		}
		for _, name := range [][]byte{bucketEvents, bucketStreams, bucketIDs} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		k, v := tx.Bucket(bucketEvents).Cursor().Last()
		if k == nil {
			return nil
		}
		if head, err = u64(k); err != nil {
			return err
		}
		rv, err := decodeRecord(v)
		if err != nil {
			return fmt.Errorf("last event, position %d: %w", head, err)
		}
		last = rv.record(head).RecordedAt
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("initialize: %w", err)
	}
	return head, last, nil
}

// Path returns the data file's path.
func (s *Store) Path() string { return s.path }

// Close stops accepting appends (they fail with ErrClosed), lets appends
// already queued commit, ends subscriptions with ErrClosed and closes the
// data file, waiting for reads in progress. Calling it again does nothing
// and returns nil.
func (s *Store) Close() (err error) {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closed.Store(true)
		close(s.queue)
		s.closeMu.Unlock()
		close(s.closing)
		<-s.writerDone
		_ = os.Remove(holderPath(s.path))
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("boltstore: close %s: %w", s.path, cerr)
		}
	})
	return err
}

// Head returns the position of the last committed event.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("boltstore: head: %w", err)
	}
	if s.closed.Load() {
		return 0, fmt.Errorf("boltstore: head: %w", eventstore.ErrClosed)
	}
	return s.head.Load(), nil
}

// Subscribe delivers the log after opts.After to handle, catch-up then live,
// as eventstore.Store.Subscribe promises. Live delivery is woken by the
// writer after each commit; no polling.
func (s *Store) Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error {
	return eventstore.Follow(ctx, eventstore.FollowConfig{
		Read:   s.ReadAll,
		Head:   s.Head,
		Wake:   &s.signal,
		Closed: s.closing,
	}, opts, handle)
}

// view runs fn in a read transaction, reporting a closed store as ErrClosed
// rather than as bbolt's own error.
func (s *Store) view(fn func(tx *bolt.Tx, b buckets) error) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		return fn(tx, b)
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return eventstore.ErrClosed
	}
	return err
}

// ReadStream returns up to opts.Limit events of stream from version
// opts.From, forwards or backwards. A stream without events fails with
// ErrNotFound.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) (recs []eventstore.Record, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: read stream %q: %w", stream, err)
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	if len(stream) > maxContractStreamLen {
		return nil, fmt.Errorf("boltstore: read stream: %w: %d-byte stream name", eventstore.ErrNotFound, len(stream))
	}
	err = s.view(func(_ *bolt.Tx, b buckets) error {
		prefix := appendStreamPrefix(make([]byte, 0, 2+len(stream)+8), stream)
		c := b.streams.Cursor()
		head, err := streamVersion(c, prefix)
		if err != nil {
			return err
		}
		if head < 0 {
			return eventstore.ErrNotFound
		}
		last := uint64(head)
		from := opts.From
		if opts.Backwards {
			from = min(from, last)
		} else if from > last {
			return nil
		}
		k, v := c.Seek(appendU64(prefix, from))
		for ; k != nil && len(recs) < limit; k, v = step(c, opts.Backwards) {
			if len(k) != len(prefix)+8 || !bytes.HasPrefix(k, prefix) {
				break
			}
			pos, err := u64(v)
			if err != nil {
				return err
			}
			r, err := readEvent(b, pos)
			if err != nil {
				return err
			}
			recs = append(recs, r)
			if opts.Backwards && r.Version == 0 {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: read stream %q from %d: %w", stream, opts.From, err)
	}
	return recs, nil
}

func step(c *bolt.Cursor, backwards bool) ([]byte, []byte) {
	if backwards {
		return c.Prev()
	}
	return c.Next()
}

// readEvent reads and decodes the event at pos.
func readEvent(b buckets, pos uint64) (eventstore.Record, error) {
	var key [8]byte
	v := b.events.Get(appendU64(key[:0], pos))
	if v == nil {
		return eventstore.Record{}, fmt.Errorf("%w: indexed event at position %d is missing", ErrCorrupt, pos)
	}
	rv, err := decodeRecord(v)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("position %d: %w", pos, err)
	}
	return rv.record(pos), nil
}

// releaseEvery is how many bytes of records ReadAll reads between two
// releases of the file's mapped pages (ReleasePages). A replay or a
// verification walks the whole log through bbolt's memory map once; without
// the release every page it passed would stay in the process's resident
// set, which would then grow with the log (576 MB at a million events)
// instead of with what the reader keeps. Read again, a released page costs
// a minor fault from the page cache.
var releaseEvery int64 = 64 << 20

// scanChunk bounds how many events one read transaction of ReadAll scans. A
// filtered read may walk the whole log; doing it in short transactions keeps
// bbolt free to reuse pages and to grow its memory map meanwhile. Committed
// events never change, so splitting the walk cannot change its result.
const scanChunk = 8192

// ReadAll returns up to opts.Limit events matching opts.Filter after position
// opts.After, in position order. Every position it returns is committed, and
// positions commit in order (one writer), so nothing smaller can follow.
func (s *Store) ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	var recs []eventstore.Record
	if len(opts.Filter.Types) == 0 {
		// Unfiltered, the page size is known up front (bounded by what the
		// log holds, so a huge Limit does not allocate a huge slice).
		if head := s.head.Load(); head > opts.After {
			recs = make([]eventstore.Record, 0, min(uint64(limit), head-opts.After))
		}
	}
	after := opts.After
	for end := false; !end && len(recs) < limit; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("boltstore: read all after %d: %w", opts.After, err)
		}
		err := s.view(func(tx *bolt.Tx, b buckets) error {
			var key [8]byte
			var read int64
			defer func() {
				if s.scanned.Add(read) >= releaseEvery {
					s.scanned.Store(0)
					ReleasePages(s.db, tx)
				}
			}()
			c := b.events.Cursor()
			k, v := c.Seek(appendU64(key[:0], after+1))
			for scanned := 0; ; k, v = c.Next() {
				if k == nil {
					end = true
					return nil
				}
				pos, err := u64(k)
				if err != nil {
					return err
				}
				after, read = pos, read+int64(len(v))
				rv, err := decodeRecord(v)
				if err != nil {
					return fmt.Errorf("position %d: %w", pos, err)
				}
				if rv.matches(&opts.Filter) {
					recs = append(recs, rv.record(pos))
					if len(recs) == limit {
						return nil
					}
				}
				if scanned++; scanned == scanChunk {
					return nil
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("boltstore: read all after %d: %w", opts.After, err)
		}
	}
	return recs, nil
}
