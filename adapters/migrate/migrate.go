// Package migrate copies a whole ledger from one event store to another
// (embedded, PostgreSQL, KurrentDB) and proves the copy exact.
//
// Copy keeps every event's id, stream, version, type, data and metadata, in
// the source's global order. RecordedAt is kept when the target implements
// eventstore.Importer (boltstore and pgstore do); a target that only has
// Append (KurrentDB, whose server stamps its own clock) records the copy's
// time instead, and Verify is then told to leave RecordedAt out.
//
// Copy is resumable: it first walks the target's log beside the source's
// and checks, event by event, that the target is an exact prefix of the
// source, then copies what is missing. Each write is atomic, so an
// interrupted copy leaves such a prefix and the next run goes on from there.
// Positions are the target's own: only the order is carried over.
//
// With Options.Keys, Copy also carries the key entries of the customers
// whose events it walks from the source's key store to the target's
// (adapters/keyring): without them every sealed personal value would be
// unreadable in the target. Wrapped keys are copied as they are, so both
// sides share the master key: Copy first checks that the target's key
// check value is the source's (an empty target takes it) and refuses with
// ErrKeyCheckMismatch otherwise. A customer's key is copied before their
// events are written, tombstones are copied as tombstones (a forgotten
// customer stays forgotten, and one forgotten in the source after an
// earlier run is forgotten in the target by the next), and entries the
// target holds already are checked, not rewritten — so the keys are
// resumable like the events, and a target entry that contradicts the
// source's is a *KeyMismatchError rather than overwritten.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/eventstore"
)

// Source is the store a ledger is copied from.
type Source interface {
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
	Head(ctx context.Context) (uint64, error)
}

// Target is the store a ledger is copied to. If it also implements
// eventstore.Importer, records are imported with their RecordedAt.
type Target interface {
	Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
}

// logReader is what reading a log in order needs.
type logReader interface {
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
}

// Default settings of Options.
const (
	DefaultBatchSize     = 500
	DefaultProgressEvery = 2 * time.Second
)

// Options tune Copy and Verify. The zero value is valid.
type Options struct {
	// BatchSize is the number of events read and written at once;
	// DefaultBatchSize when 0.
	BatchSize int
	// Progress, when set, is called every ProgressEvery while copying or
	// verifying, and once at the end.
	Progress func(Progress)
	// ProgressEvery is the interval of Progress calls; DefaultProgressEvery
	// when 0.
	ProgressEvery time.Duration
	// IgnoreRecordedAt leaves RecordedAt out of Verify's digests, for a
	// target that cannot keep it (see the package documentation).
	IgnoreRecordedAt bool
	// Keys, when set, are the key stores beside the source and the
	// target: Copy carries the customers' key entries over with their
	// events, Verify compares them (see the package documentation). nil
	// copies events only.
	Keys *Keys
	// Now is the clock of progress rates; time.Now when nil.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Progress is a report of a running copy or verification.
type Progress struct {
	// Phase is "resume" (checking what the target already holds), "copy" or
	// "verify".
	Phase string
	// Done is the number of events handled so far; Skipped, of a copy,
	// how many of them the target already held.
	Done, Skipped int64
	// Position is the source position reached; Head the source's head when
	// the copy started.
	Position, Head uint64
	// Rate is events per second since the start.
	Rate float64
	// Elapsed is the time since the start.
	Elapsed time.Duration
}

// Result is what a completed Copy did.
type Result struct {
	// Copied events were written now; Skipped were already in the target.
	Copied, Skipped int64
	// Imported is true when the target kept RecordedAt (eventstore.Importer).
	Imported bool
	// Keys is what was done with the customers' keys (Options.Keys).
	Keys KeyResult
}

// MismatchError names the first event at which two logs differ. Errors
// of Copy (a target that is not a prefix of the source) and Verify are of
// this type.
type MismatchError struct {
	// Index is the 0-based index of the event in log order.
	Index int64
	// Source and Target are the events at Index; nil where a log ended.
	Source, Target *eventstore.Record
	// Reason says what differs.
	Reason string
}

func (e *MismatchError) Error() string {
	describe := func(r *eventstore.Record) string {
		if r == nil {
			return "end of log"
		}
		return fmt.Sprintf("%s %s@%d (position %d)", r.ID, r.Stream, r.Version, r.Position)
	}
	return fmt.Sprintf("logs differ at event #%d: source %s, target %s: %s", e.Index, describe(e.Source), describe(e.Target), e.Reason)
}

// cursor reads a log in pages.
type cursor struct {
	log   logReader
	limit int
	after uint64
	page  []eventstore.Record
	end   bool
}

// next returns the log's next record, or nil at its end.
func (c *cursor) next(ctx context.Context) (*eventstore.Record, error) {
	if len(c.page) == 0 && !c.end {
		page, err := c.log.ReadAll(ctx, eventstore.ReadAllOptions{After: c.after, Limit: c.limit})
		if err != nil {
			return nil, fmt.Errorf("read log after %d: %w", c.after, err)
		}
		c.page, c.end = page, len(page) == 0
		if len(page) > 0 {
			c.after = page[len(page)-1].Position
		}
	}
	if len(c.page) == 0 {
		return nil, nil
	}
	r := &c.page[0]
	c.page = c.page[1:]
	return r, nil
}

// reporter calls Options.Progress at most every ProgressEvery.
type reporter struct {
	opts  Options
	start time.Time
	last  time.Time
	p     Progress
}

func newReporter(opts Options, phase string, head uint64) *reporter {
	now := opts.Now()
	return &reporter{opts: opts, start: now, last: now, p: Progress{Phase: phase, Head: head}}
}

func (r *reporter) tick(force bool) {
	if r.opts.Progress == nil {
		return
	}
	now := r.opts.Now()
	if !force && now.Sub(r.last) < r.opts.ProgressEvery {
		return
	}
	r.last = now
	r.p.Elapsed = now.Sub(r.start)
	if s := r.p.Elapsed.Seconds(); s > 0 {
		r.p.Rate = float64(r.p.Done) / s
	}
	r.opts.Progress(r.p)
}

// Copy copies every event of src that dst does not hold yet, after checking
// that dst holds an exact prefix of src (a *MismatchError otherwise). It
// does not verify the result: run Verify for that.
func Copy(ctx context.Context, src Source, dst Target, opts Options) (res Result, err error) {
	opts.setDefaults()
	head, err := src.Head(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: source head: %w", err)
	}
	importer, imported := dst.(eventstore.Importer)
	res = Result{Imported: imported}
	keys, kres, err := newKeyCopier(ctx, opts.Keys, false)
	if err != nil {
		return res, err
	}
	defer func() {
		if keys != nil {
			kres = keys.res
		}
		res.Keys = kres
	}()
	rep := newReporter(opts, "resume", head)
	// Resume: the target's log must be the source's first events, exactly
	// (RecordedAt left out when the target cannot keep it).
	srcCur := &cursor{log: src, limit: opts.BatchSize}
	dstCur := &cursor{log: dst, limit: opts.BatchSize}
	for i := int64(0); ; i++ {
		t, err := dstCur.next(ctx)
		if err != nil {
			return res, fmt.Errorf("migrate: target: %w", err)
		}
		if t == nil {
			break
		}
		s, err := srcCur.next(ctx)
		if err != nil {
			return res, fmt.Errorf("migrate: source: %w", err)
		}
		if err := compare(i, s, t, !imported); err != nil {
			return res, fmt.Errorf("migrate: the target is not a copy of the source's beginning: %w", err)
		}
		// An earlier run may have stopped between a key and its events,
		// or a customer may have been forgotten in the source since.
		if err := keys.handle(ctx, s); err != nil {
			return res, err
		}
		res.Skipped++
		rep.p.Done, rep.p.Skipped, rep.p.Position = res.Skipped, res.Skipped, s.Position
		rep.tick(false)
	}
	rep.p.Phase = "copy"
	batch := make([]eventstore.Record, 0, opts.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var err error
		if imported {
			err = importer.Import(ctx, batch)
		} else {
			err = appendRuns(ctx, dst, batch)
		}
		if err != nil {
			return fmt.Errorf("migrate: write events #%d..#%d (source positions %d..%d): %w",
				res.Skipped+res.Copied, res.Skipped+res.Copied+int64(len(batch))-1, batch[0].Position, batch[len(batch)-1].Position, err)
		}
		res.Copied += int64(len(batch))
		rep.p.Done, rep.p.Position = res.Skipped+res.Copied, batch[len(batch)-1].Position
		rep.tick(false)
		batch = batch[:0]
		return nil
	}
	for {
		s, err := srcCur.next(ctx)
		if err != nil {
			return res, fmt.Errorf("migrate: source: %w", err)
		}
		if s == nil {
			break
		}
		// The key before the events: the target never holds a customer's
		// events without the key that opens them.
		if err := keys.handle(ctx, s); err != nil {
			return res, err
		}
		batch = append(batch, *s)
		if len(batch) == opts.BatchSize {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	rep.tick(true)
	return res, nil
}

// appendRuns writes records with Append, one append per run of consecutive
// events of one stream, each at its exact version: an append is atomic, so
// an interruption leaves the target a prefix of the source.
func appendRuns(ctx context.Context, dst Target, recs []eventstore.Record) error {
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && recs[end].Stream == recs[start].Stream {
			end++
		}
		first := recs[start]
		expected := eventstore.ImportExpected(first.Version)
		events := make([]eventstore.EventData, 0, end-start)
		for _, r := range recs[start:end] {
			events = append(events, eventstore.EventData{ID: r.ID, Type: r.Type, Data: r.Data, Metadata: r.Metadata})
		}
		if _, err := dst.Append(ctx, first.Stream, expected, events...); err != nil {
			return fmt.Errorf("append %d events to %q at version %d: %w", len(events), first.Stream, first.Version, err)
		}
		start = end
	}
	return nil
}

// VerifyResult is what Verify found: both logs hold Count events with the
// same digests; Digest chains them all (equal digests, equal ledgers).
type VerifyResult struct {
	Count  int64
	Digest [sha256.Size]byte
	// Keys is the number of customers whose key entries were compared
	// and agree (Options.Keys): the same wrapped key, both tombstones, or
	// neither side holding one.
	Keys int64
}

// Verify reads both logs in order and compares them event by event: the
// same number of events and the same per-event digest (Digest). The first
// difference is returned as a *MismatchError. With Options.Keys it also
// compares the key check values (ErrKeyCheckMismatch) and every
// customer's key entries (a *KeyMismatchError).
func Verify(ctx context.Context, src, dst logReader, opts Options) (VerifyResult, error) {
	opts.setDefaults()
	var res VerifyResult
	keys, _, err := newKeyCopier(ctx, opts.Keys, true)
	if err != nil {
		return res, err
	}
	chain := sha256.New()
	rep := newReporter(opts, "verify", 0)
	srcCur := &cursor{log: src, limit: opts.BatchSize}
	dstCur := &cursor{log: dst, limit: opts.BatchSize}
	for i := int64(0); ; i++ {
		s, err := srcCur.next(ctx)
		if err != nil {
			return res, fmt.Errorf("migrate: verify: source: %w", err)
		}
		t, err := dstCur.next(ctx)
		if err != nil {
			return res, fmt.Errorf("migrate: verify: target: %w", err)
		}
		if s == nil && t == nil {
			break
		}
		if err := compare(i, s, t, opts.IgnoreRecordedAt); err != nil {
			return res, fmt.Errorf("migrate: verify: %w", err)
		}
		if err := keys.handle(ctx, s); err != nil {
			return res, err
		}
		d := Digest(*s, opts.IgnoreRecordedAt)
		chain.Write(d[:])
		res.Count++
		rep.p.Done, rep.p.Position = res.Count, s.Position
		rep.tick(false)
	}
	copy(res.Digest[:], chain.Sum(nil))
	if keys != nil {
		res.Keys = keys.res.Skipped + keys.res.Missing
	}
	rep.tick(true)
	return res, nil
}

// compare checks that two logs agree at index i.
func compare(i int64, s, t *eventstore.Record, ignoreRecordedAt bool) error {
	switch {
	case s == nil && t == nil:
		return nil
	case s == nil:
		return &MismatchError{Index: i, Target: t, Reason: "the target has more events than the source"}
	case t == nil:
		return &MismatchError{Index: i, Source: s, Reason: "the target has fewer events than the source"}
	}
	if Digest(*s, ignoreRecordedAt) == Digest(*t, ignoreRecordedAt) {
		return nil
	}
	reason := "digests differ"
	switch {
	case s.ID != t.ID:
		reason = "different event ids"
	case s.Stream != t.Stream || s.Version != t.Version:
		reason = "different stream or version"
	case s.Type != t.Type:
		reason = "different type"
	case string(s.Data) != string(t.Data):
		reason = "different data"
	case !s.RecordedAt.Equal(t.RecordedAt) && !ignoreRecordedAt:
		reason = fmt.Sprintf("different RecordedAt (%v, %v)", s.RecordedAt, t.RecordedAt)
	default:
		reason = "different metadata"
	}
	return &MismatchError{Index: i, Source: s, Target: t, Reason: reason}
}

// Digest is the SHA-256 of one event as the ledger defines it, whatever the
// backend: id, stream, version, type, data, metadata and (unless
// ignoreRecordedAt) RecordedAt, each length-prefixed so that no two events
// share an encoding. The global position is left out: each store numbers
// its own log.
func Digest(r eventstore.Record, ignoreRecordedAt bool) [sha256.Size]byte {
	h := sha256.New()
	var buf [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(b)))
		h.Write(buf[:])
		h.Write(b)
	}
	num := func(v int64) { field(binary.BigEndian.AppendUint64(nil, uint64(v))) }
	m := r.Metadata.Normalize()
	field(r.ID[:])
	field([]byte(r.Stream))
	num(int64(r.Version))
	field([]byte(r.Type))
	field(r.Data)
	if m.OccurredAt.IsZero() {
		field(nil)
	} else {
		num(m.OccurredAt.UnixMicro())
	}
	field([]byte(m.Actor))
	field([]byte(m.Channel))
	field([]byte(m.CorrelationID))
	field([]byte(m.CausationID))
	num(int64(m.SchemaVersion))
	if ignoreRecordedAt {
		field(nil)
	} else {
		num(r.RecordedAt.UnixMicro())
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d
}
