package boltstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cxledger/cxledger/eventstore"
)

// Group commit.
//
// One goroutine, the writer, owns every write transaction. Append validates
// its arguments on the caller's goroutine, queues a request and waits. The
// writer takes the first request, drains whatever else is queued at that
// moment (no timer: under light load a lone append commits at once, under
// load the queue fills while the previous commit fsyncs), and runs one bbolt
// transaction for the batch: one fsync for all of it.
//
// Inside the transaction each request is decided on its own, in queue order:
// idempotent-retry check, expected-version check, and only then its writes.
// A conflict therefore rejects only its own request, and a later request
// sees an earlier one's events (two appends to one stream with the same
// expected version in one batch: the first wins, the second conflicts, as
// if they had committed separately). Only a failure of bbolt itself (a full
// disk, a failed fsync) fails the transaction, and then every request of the
// batch gets that error and nothing of the batch is stored.

// errNothingWritten rolls back a batch transaction in which every request
// was rejected or an idempotent retry.
var errNothingWritten = errors.New("nothing written")

// Request states. A request moves from queued to taken (by the writer) or to
// abandoned (by its Append, whose ctx ended first), never both.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

type appendReq struct {
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	size     int // upper bound of the encoded size, for batch limits
	// imported, when set, makes the request an Import (see import.go)
	// instead of an append.
	imported []eventstore.Record
	// leaves, when set, makes the request an AppendLeaves (see merkle.go):
	// Merkle tree hashes ride the group commit instead of taking a write
	// transaction, and an fsync, of their own.
	leaves *leafWrite

	state atomic.Int32
	res   eventstore.AppendResult
	err   error
	done  chan struct{} // closed by the writer once res and err are set
}

// Append adds events to stream atomically if the stream is at expected, as
// eventstore.Store.Append promises; on success the events are on disk
// (fsync) before it returns.
//
// ctx bounds the wait for the writer to take the request: if it ends first,
// Append returns an error wrapping ctx.Err() and nothing is written. Once the
// writer has taken the request it commits or fails it as a whole, and Append
// waits for that outcome even if ctx ends meanwhile, so that a reported
// cancellation always means "not written".
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("boltstore: append to %q: %w", stream, err)
	}
	if err := eventstore.ValidateAppend(stream, expected, events, s.maxEvent); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("boltstore: %w", err)
	}
	size := 0
	for i := range events {
		size += encodedSize(stream, &events[i])
	}
	req := &appendReq{stream: stream, expected: expected, events: events, size: size, done: make(chan struct{})}

	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return eventstore.AppendResult{}, fmt.Errorf("boltstore: append to %q: %w", stream, eventstore.ErrClosed)
	}
	select {
	case s.queue <- req:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return eventstore.AppendResult{}, fmt.Errorf("boltstore: append to %q: %w", stream, ctx.Err())
	}

	select {
	case <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return eventstore.AppendResult{}, fmt.Errorf("boltstore: append to %q: %w", stream, ctx.Err())
		}
		<-req.done
	}
	return req.res, req.err
}

// runWriter is the writer goroutine. It exits when Close has closed the
// queue and every request queued before that is answered.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	batch := make([]*appendReq, 0, s.maxBatch)
	prev := 0
	var carry *appendReq // taken from the queue but over the previous batch's byte limit
	for {
		first := carry
		carry = nil
		if first == nil {
			r, ok := <-s.queue
			if !ok {
				return
			}
			first = r
		}
		batch = append(batch[:0], first)
		bytes := first.size
		// If the last batch had company, its appenders were just woken and
		// are about to queue again: let them run before draining, so the
		// batch holds all of them rather than whoever was quickest. One
		// yield, not a timer: a lone appender never waits.
		if prev > 1 {
			runtime.Gosched()
		}
	drain:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break drain
				}
				if bytes+r.size > maxBatchBytes {
					carry = r
					break drain
				}
				batch = append(batch, r)
				bytes += r.size
			default:
				break drain
			}
		}
		prev = len(batch)
		s.commit(batch, bytes)
		clear(batch) // drop references to answered requests
	}
}

// commit writes one batch in one transaction and answers its requests.
func (s *Store) commit(batch []*appendReq, size int) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	head := s.head.Load()
	next := head
	if cap(s.arena) < size {
		s.arena = make([]byte, 0, size)
	}
	w := batchWriter{arena: s.arena[:0], now: s.now, last: s.lastRecorded}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := openBuckets(tx)
		if err != nil {
			return err
		}
		w.b, w.tx = b, tx
		for _, r := range live {
			r.res, r.err, err = w.apply(r, &next)
			if err != nil {
				return fmt.Errorf("append to %q: %w", r.stream, err)
			}
		}
		if s.testHookCommit != nil {
			if err := s.testHookCommit(); err != nil {
				return err
			}
		}
		if next == head && !w.wroteLeaves {
			// Only rejections and idempotent retries: roll back, so that
			// they cost no fsync and leave the file byte for byte as it
			// was (a commit would write a new meta page).
			return errNothingWritten
		}
		return nil
	})
	if errors.Is(err, errNothingWritten) {
		err = nil
	}
	s.commits.Add(1)
	// Keep the buffer for the next batch unless one huge batch grew it.
	if cap(w.arena) <= maxBatchBytes {
		s.arena = w.arena[:0]
	} else {
		s.arena = nil
	}
	if err != nil {
		err = fmt.Errorf("boltstore: group commit of %d appends: %w", len(live), err)
		for _, r := range live {
			r.res, r.err = eventstore.AppendResult{}, err
		}
	} else {
		s.lastRecorded = w.last
		s.head.Store(next)
	}
	for _, r := range live {
		close(r.done)
	}
	if err == nil && next > head {
		s.signal.Notify()
	}
}

// batchWriter applies the requests of one batch inside its transaction.
type batchWriter struct {
	tx     *bolt.Tx
	b      buckets
	now    func() time.Time
	last   time.Time // RecordedAt of the last event written so far
	arena  []byte    // values handed to bbolt, which keeps them until commit
	key    []byte    // scratch for keys, which bbolt copies
	prefix []byte    // the current request's stream key prefix
	// wroteLeaves is set when the batch stored Merkle leaves, which must
	// commit even if no event was appended.
	wroteLeaves bool
}

// apply decides one request and, if accepted, writes it, advancing *next
// past the positions it uses. A rejection (conflict, duplicate) is returned
// as reqErr and writes nothing; fatal is a storage failure that must abort
// the whole transaction.
func (w *batchWriter) apply(r *appendReq, next *uint64) (res eventstore.AppendResult, reqErr, fatal error) {
	if r.imported != nil {
		return w.applyImport(r, next)
	}
	if r.leaves != nil {
		return w.applyLeaves(r.leaves)
	}
	w.prefix = appendStreamPrefix(w.prefix[:0], r.stream)
	current, err := streamVersion(w.b.streams.Cursor(), w.prefix)
	if err != nil {
		return res, nil, err
	}

	// Ids already stored make this a retry or a duplicate. The common case,
	// no id stored, costs one lookup per event and no allocation.
	var stored []*eventstore.Record
	for i := range r.events {
		pv := w.b.ids.Get(r.events[i].ID[:])
		if pv == nil {
			continue
		}
		if stored == nil {
			stored = make([]*eventstore.Record, len(r.events))
		}
		pos, err := u64(pv)
		if err != nil {
			return res, nil, fmt.Errorf("event id %s: %w", r.events[i].ID, err)
		}
		rec, err := readEvent(w.b, pos)
		if err != nil {
			return res, nil, fmt.Errorf("event id %s: %w", r.events[i].ID, err)
		}
		stored[i] = &rec
	}
	if stored != nil {
		res, retry, err := eventstore.ResolveRetry(r.stream, r.expected, current, r.events, stored)
		if err != nil {
			return res, fmt.Errorf("boltstore: %w", err), nil
		}
		if retry {
			return res, nil, nil
		}
	}
	if err := eventstore.CheckExpected(r.stream, r.expected, current); err != nil {
		return res, fmt.Errorf("boltstore: %w", err), nil
	}

	now := w.now().UTC().Truncate(time.Microsecond)
	if now.Before(w.last) {
		now = w.last // the clock stepped back: keep RecordedAt monotonic along the log
	}
	w.last = now
	version := uint64(current + 1)
	for i := range r.events {
		e := &r.events[i]
		*next++
		rec := eventstore.Record{
			ID:         e.ID,
			Stream:     r.stream,
			Type:       e.Type,
			Version:    version,
			RecordedAt: now,
			Data:       e.Data,
			Metadata:   e.Metadata.Normalize(),
		}
		start := len(w.arena)
		w.arena = appendU64(w.arena, *next)
		posVal := w.cut(start)
		w.arena = encodeRecord(w.arena, &rec)
		val := w.cut(start + 8)
		if err := w.b.events.Put(posVal, val); err != nil { // the position bytes double as key
			return res, nil, fmt.Errorf("put event %d: %w", *next, err)
		}
		w.key = appendU64(append(w.key[:0], w.prefix...), version)
		if err := w.b.streams.Put(w.key, posVal); err != nil {
			return res, nil, fmt.Errorf("put stream index: %w", err)
		}
		if err := w.b.ids.Put(e.ID[:], posVal); err != nil {
			return res, nil, fmt.Errorf("put event id: %w", err)
		}
		version++
	}
	return eventstore.AppendResult{Version: version - 1, Position: *next}, nil, nil
}

// cut returns the arena's bytes from start, just appended, capped so that a
// later append to the arena can never write into them. If an append
// reallocated the arena, earlier values keep the old array, unchanged.
func (w *batchWriter) cut(start int) []byte {
	return w.arena[start:len(w.arena):len(w.arena)]
}
