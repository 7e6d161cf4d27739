package pgstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// appendReq is one Append call waiting for the writer.
type appendReq struct {
	ctx      context.Context
	stream   string
	expected eventstore.ExpectedVersion
	events   []eventstore.EventData
	size     int
	done     chan appendOutcome // buffered: the writer never blocks on a caller that left
}

type appendOutcome struct {
	res eventstore.AppendResult
	err error
}

// PostgreSQL's timestamptz range is 4713 BC to 294276 AD; times outside it
// are rejected here rather than by the database, where they would fail the
// whole group-commit batch before being isolated.
var (
	minTime = time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(294276, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validateForPostgres rejects what eventstore.ValidateAppend accepts but
// PostgreSQL cannot store: NUL characters in text columns (valid UTF-8, but
// not allowed in PostgreSQL text) and times outside timestamptz's range.
func validateForPostgres(stream string, events []eventstore.EventData) error {
	if strings.IndexByte(stream, 0) >= 0 {
		return fmt.Errorf("%w: stream name contains a NUL character, which PostgreSQL text cannot hold", eventstore.ErrInvalidEvent)
	}
	for i, e := range events {
		m := e.Metadata
		for _, s := range []string{e.Type, m.Actor, m.Channel, m.CorrelationID, m.CausationID} {
			if strings.IndexByte(s, 0) >= 0 {
				return fmt.Errorf("%w: event %d (%s): type or metadata contains a NUL character, which PostgreSQL text cannot hold", eventstore.ErrInvalidEvent, i, e.ID)
			}
		}
		if t := m.OccurredAt; !t.IsZero() && (t.Before(minTime) || !t.Before(maxTime)) {
			return fmt.Errorf("%w: event %d (%s): OccurredAt %s outside PostgreSQL's range", eventstore.ErrInvalidEvent, i, e.ID, t)
		}
	}
	return nil
}

// Append implements eventstore.Store. The call is handed to the store's
// writer goroutine, which commits it together with every other append
// waiting at that moment (see the package documentation).
//
// If ctx ends while the append is in the writer's hands, Append returns at
// once with an error wrapping ctx.Err(), but the append may still commit:
// retrying it with the same event ids is safe and reports the outcome.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, expected, events, s.opts.MaxEventSize); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("pgstore: append to %q: %w", stream, err)
	}
	if err := validateForPostgres(stream, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("pgstore: append to %q: %w", stream, err)
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("pgstore: append to %q: %w", stream, err)
	}
	if s.isClosed() {
		return eventstore.AppendResult{}, fmt.Errorf("pgstore: append to %q: %w", stream, eventstore.ErrClosed)
	}
	req := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, done: make(chan appendOutcome, 1)}
	for _, e := range events {
		req.size += e.Size()
	}
	select {
	case s.reqs <- req:
	case <-s.closed:
		return eventstore.AppendResult{}, fmt.Errorf("pgstore: append to %q: %w", stream, eventstore.ErrClosed)
	case <-ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("pgstore: append to %q: %w", stream, ctx.Err())
	}
	select {
	case out := <-req.done:
		return out.res, out.err
	case <-ctx.Done():
		return eventstore.AppendResult{}, fmt.Errorf("pgstore: append to %q: outcome unknown, retry with the same event ids to learn it: %w", stream, ctx.Err())
	}
}

// writers is the number of goroutines committing batches, so the number
// of batches of one Store in the database at once. Appends no longer
// serialise on a lock (see the package documentation): batches of one
// Store, and of other processes, commit concurrently and PostgreSQL groups
// their WAL flushes.
const writers = 4

// smallBatch is the number of events below which a batch is small: one
// small batch at a time is in the database per Store, and the appends that
// arrive meanwhile wait to form the next one (opportunistic group commit:
// no timer, only what queued while a commit was in flight). A batch of at
// least smallBatch events goes as soon as a writer is free. Single-event
// appends from a few writers thus share one call and one commit instead of
// spreading over the writers in batches of one, each paying append_batch's
// fixed cost; large appends still use every writer.
const smallBatch = 32

// maxBatchAppends bounds the appends of one batch: each distinct stream
// takes one advisory lock, and PostgreSQL's lock table is shared and finite
// (max_locks_per_transaction × max_connections).
const maxBatchAppends = 256

// job is one batch handed from the collector to a writer.
type job struct {
	batch []*appendReq
	small bool
}

// collector forms the batches. It blocks for one request, takes every other
// request already waiting, and hands the batch to a free writer, except that
// a small batch waits while another small one is in flight, growing with
// what arrives meanwhile (see smallBatch). When the store closes, it hands
// over what it holds and closes s.jobs, which ends the writers.
func (s *Store) collector() {
	defer close(s.jobs)
	smallInFlight := false
	lastSmall := 0 // appends in the last small batch dispatched
	for {
		var first *appendReq
		select {
		case <-s.closed:
			return
		case first = <-s.reqs:
		case <-s.smallDone:
			smallInFlight = false
			continue
		}
		batch := []*appendReq{first}
		n, size := len(first.events), first.size
		full := func() bool {
			return n >= s.opts.MaxBatchEvents || size >= s.opts.MaxBatchBytes || len(batch) >= maxBatchAppends
		}
		// The appenders of the last small batch were just answered and are
		// about to append again: let them run before dispatching, so that
		// the next batch holds all of them rather than whoever was
		// quickest, the rest waiting a whole commit for the one after. A
		// few yields, not a timer: a lone appender never waits.
		for spin := 0; spin < 3 && !smallInFlight && len(batch) < lastSmall && !full(); spin++ {
			runtime.Gosched()
		drain:
			for !full() {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					n += len(r.events)
					size += r.size
				default:
					break drain
				}
			}
		}
		closed := false
		for {
			small := n < smallBatch
			jobs, reqs := s.jobs, s.reqs
			if small && smallInFlight && !closed {
				jobs = nil // wait for the small batch in flight
			}
			if full() {
				reqs = nil
			}
			select {
			case jobs <- job{batch: batch, small: small}:
				if small {
					smallInFlight, lastSmall = true, len(batch)
				}
			case r := <-reqs:
				batch = append(batch, r)
				n += len(r.events)
				size += r.size
				continue
			case <-s.smallDone:
				smallInFlight = false
				continue
			case <-s.closedOrNil(closed):
				closed = true // hand over what is held, whatever its size
				continue
			}
			break
		}
	}
}

// closedOrNil is s.closed until the collector has seen it, then nil (a
// select case that never fires).
func (s *Store) closedOrNil(seen bool) <-chan struct{} {
	if seen {
		return nil
	}
	return s.closed
}

// writer commits the batches the collector hands it.
func (s *Store) writer() {
	defer s.writersWG.Done()
	// The batch context is the store's, not any caller's: a batch serves many
	// callers, and one caller giving up must not abort the others' commit.
	ctx := context.Background()
	for j := range s.jobs {
		s.commit(ctx, j.batch)
		if j.small {
			s.smallDone <- struct{}{} // buffered: never blocks
		}
	}
}

// commit runs one batch and delivers every request's outcome. When the
// batch fails in the database, each request is re-run alone: only the one
// the database rejects fails, and one whose commit did happen before a lost
// connection is found already stored and reported as done.
func (s *Store) commit(ctx context.Context, batch []*appendReq) {
	live := batch[:0:0]
	for _, r := range batch {
		// A caller that has already given up is not committed behind its
		// back: it was told "outcome unknown", and "not written" is the
		// better of the two outcomes to have.
		if err := r.ctx.Err(); err != nil {
			r.done <- appendOutcome{err: fmt.Errorf("pgstore: append to %q: %w", r.stream, err)}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	outs, err := s.runBatch(ctx, live)
	if err == nil {
		for i, r := range live {
			r.done <- outs[i]
		}
		return
	}
	for _, r := range live {
		r.done <- s.commitAlone(ctx, r, err)
	}
}

// commitAlone re-runs one request after its batch failed with batchErr,
// retrying once more what may succeed on a second try: a lost connection
// (whose commit may or may not have happened) or a unique violation from a
// concurrent append of the same event ids.
func (s *Store) commitAlone(ctx context.Context, r *appendReq, batchErr error) appendOutcome {
	err := batchErr
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 && !retryable(err) {
			break
		}
		var outs []appendOutcome
		outs, err = s.runBatch(ctx, []*appendReq{r})
		if err == nil {
			return outs[0]
		}
	}
	return appendOutcome{err: appendError(r.stream, err)}
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "40001", "40P01": // unique_violation, serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	return true // not an answer from the server: connection trouble
}

// appendError maps a database error of a single append to the contract's
// errors, once.
func appendError(stream string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id_key":
			return fmt.Errorf("pgstore: append to %q: %w (%v)", stream, eventstore.ErrDuplicateEvent, err)
		case pgErr.Code == "23505" && pgErr.ConstraintName == "events_stream_version_key":
			// Only a writer bypassing the store's stream locks can cause
			// this, and it kept racing over three attempts; its version is
			// unknown.
			return fmt.Errorf("pgstore: append to %q: %w: version taken concurrently by a writer outside the store (%v)", stream, eventstore.ErrWrongExpectedVersion, err)
		case strings.HasPrefix(pgErr.Code, "22"): // data_exception
			return fmt.Errorf("pgstore: append to %q: %w: rejected by PostgreSQL: %v", stream, eventstore.ErrInvalidEvent, err)
		}
	}
	return fmt.Errorf("pgstore: append to %q: %w", stream, err)
}

// Statuses of append_batch's answer rows (migration 003).
const (
	statusWritten  = 0
	statusConflict = 1
	statusStored   = 2
)

// runBatch commits the requests in one transaction, one round trip: the
// append_batch function (migration 003) decides every request against its
// stream, in arrival order, and writes the accepted ones; the statement's
// implicit transaction commits it. It returns each request's outcome (a
// decided conflict or duplicate is an outcome, not an error). An error means
// nothing of the batch is known to be committed.
func (s *Store) runBatch(ctx context.Context, reqs []*appendReq) (_ []appendOutcome, err error) {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer pooled.Release()
	conn := pooled.Conn()
	defer func() {
		if err != nil && !conn.IsClosed() {
			// append_batch holds a session lock while drawing positions;
			// should a failure ever leave it held, it must not go back to
			// the pool with the connection.
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, uerr := conn.Exec(uctx, "select pg_advisory_unlock_all()"); uerr != nil {
				_ = conn.Close(uctx)
			}
		}
	}()

	var a batchArgs
	for _, r := range reqs {
		a.stream = append(a.stream, r.stream)
		a.expected = append(a.expected, int64(r.expected))
		a.count = append(a.count, int32(len(r.events)))
		for i := range r.events {
			a.add(r.stream, &r.events[i])
		}
	}

	hook := s.afterInsert.Load()
	if hook != nil {
		// Tests only: hold the transaction open between the writes and
		// COMMIT, the window a reader must not see past.
		if _, err := conn.Exec(ctx, "begin"); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, _ = conn.Exec(rctx, "rollback")
			}
		}()
	}
	rows, _ := conn.Query(ctx, s.sql.appendBatch, a.args(s.lockClass)...)
	outs := make([]appendOutcome, len(reqs))
	var (
		i       int
		status  int16
		head    pgtype.Int8
		lastPos pgtype.Int8
		written bool
		stored  []int
	)
	if _, err := pgx.ForEachRow(rows, []any{&status, &head, &lastPos}, func() error {
		if i >= len(reqs) {
			return fmt.Errorf("append_batch answered more than %d rows", len(reqs))
		}
		r := reqs[i]
		switch status {
		case statusWritten:
			outs[i].res = eventstore.AppendResult{Version: uint64(head.Int64), Position: uint64(lastPos.Int64)}
			written = true
		case statusConflict:
			outs[i].err = eventstore.CheckExpected(r.stream, r.expected, head.Int64)
			if outs[i].err == nil {
				return fmt.Errorf("append_batch reported a conflict on %q at version %d, which satisfies %d", r.stream, head.Int64, r.expected)
			}
		case statusStored:
			stored = append(stored, i)
		default:
			return fmt.Errorf("append_batch answered status %d", status)
		}
		i++
		return nil
	}); err != nil {
		return nil, err
	}
	if i != len(reqs) {
		return nil, fmt.Errorf("append_batch answered %d rows for %d appends", i, len(reqs))
	}
	if hook != nil {
		(*hook)()
		if _, err := conn.Exec(ctx, "commit"); err != nil {
			return nil, err
		}
		// A transaction that cannot commit (already aborted) answers
		// COMMIT with ROLLBACK and no error; check the state the server
		// reported.
		if st := conn.PgConn().TxStatus(); st != 'I' {
			return nil, fmt.Errorf("transaction state %q after commit", st)
		}
	}
	if written {
		s.wake.Notify()
		s.notifyOthers()
	}
	// Appends whose ids were stored already: an idempotent retry or a
	// duplicate, told apart against what is stored (rare: a second round
	// trip only for them).
	for _, i := range stored {
		if outs[i], err = s.resolveStored(ctx, conn, reqs[i]); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// resolveStored answers an append some of whose event ids are stored: the
// original result of an idempotent retry, or the contract's error.
func (s *Store) resolveStored(ctx context.Context, conn *pgx.Conn, r *appendReq) (appendOutcome, error) {
	ids := make([]pgtype.UUID, len(r.events))
	for i, e := range r.events {
		ids[i] = pgtype.UUID{Bytes: e.ID, Valid: true}
	}
	var head pgtype.Int8
	if err := conn.QueryRow(ctx, s.sql.streamHead, r.stream).Scan(&head); err != nil {
		return appendOutcome{}, err
	}
	rows, _ := conn.Query(ctx, s.sql.byIDs, ids)
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return appendOutcome{}, err
	}
	byID := make(map[uuid.UUID]*eventstore.Record, len(recs))
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	prior := make([]*eventstore.Record, len(r.events))
	for i, e := range r.events {
		prior[i] = byID[e.ID]
	}
	current := int64(-1)
	if head.Valid {
		current = head.Int64
	}
	res, retry, err := eventstore.ResolveRetry(r.stream, r.expected, current, r.events, prior)
	switch {
	case err != nil:
		return appendOutcome{err: err}, nil
	case retry:
		return appendOutcome{res: res}, nil
	}
	// The ids were there when the batch ran and are gone now: nothing the
	// store does removes events, so this is a writer outside it.
	return appendOutcome{err: fmt.Errorf("pgstore: append to %q: stored event ids vanished during the append", r.stream)}, nil
}

// batchArgs are a batch's appends as append_batch takes them: one array
// per append field and one per event column, whatever the number of rows.
type batchArgs struct {
	stream                                 []string
	expected                               []int64
	count                                  []int32
	evStream                               []string
	id                                     []pgtype.UUID
	typ, actor, channel, correlation, caus []string
	occurred                               []pgtype.Timestamptz
	schemaVersion                          []int64
	data                                   [][]byte
}

func (a *batchArgs) add(stream string, e *eventstore.EventData) {
	m := e.Metadata.Normalize()
	a.evStream = append(a.evStream, stream)
	a.id = append(a.id, pgtype.UUID{Bytes: e.ID, Valid: true})
	a.typ = append(a.typ, e.Type)
	// A zero OccurredAt is stored as NULL, not as year 1, so that analysts
	// see "unknown" and it reads back as the zero time.
	a.occurred = append(a.occurred, pgtype.Timestamptz{Time: m.OccurredAt, Valid: !m.OccurredAt.IsZero()})
	a.actor = append(a.actor, m.Actor)
	a.channel = append(a.channel, m.Channel)
	a.correlation = append(a.correlation, m.CorrelationID)
	a.caus = append(a.caus, m.CausationID)
	a.schemaVersion = append(a.schemaVersion, int64(m.SchemaVersion))
	a.data = append(a.data, e.Data)
}

func (a *batchArgs) args(lockClass int32) []any {
	return []any{lockClass, a.stream, a.expected, a.count, a.evStream, a.id, a.typ, a.occurred,
		a.actor, a.channel, a.correlation, a.caus, a.schemaVersion, a.data}
}

// insertColumns are the batch's rows as one array per column, the shape
// "insert ... select from unnest($1, $2, ...)" takes: one statement of
// thirteen parameters whatever the number of rows.
type insertColumns struct {
	pos, version, schemaVersion                      []int64
	id                                               []pgtype.UUID
	stream, typ, actor, channel, correlation, causal []string
	recorded, occurred                               []pgtype.Timestamptz
	data                                             [][]byte
}

func (c *insertColumns) add(r *eventstore.Record) {
	m := r.Metadata
	c.pos = append(c.pos, int64(r.Position))
	c.id = append(c.id, pgtype.UUID{Bytes: r.ID, Valid: true})
	c.stream = append(c.stream, r.Stream)
	c.version = append(c.version, int64(r.Version))
	c.typ = append(c.typ, r.Type)
	c.recorded = append(c.recorded, pgtype.Timestamptz{Time: r.RecordedAt, Valid: true})
	// A zero OccurredAt is stored as NULL, not as year 1, so that analysts
	// see "unknown" and it reads back as the zero time.
	c.occurred = append(c.occurred, pgtype.Timestamptz{Time: m.OccurredAt, Valid: !m.OccurredAt.IsZero()})
	c.actor = append(c.actor, m.Actor)
	c.channel = append(c.channel, m.Channel)
	c.correlation = append(c.correlation, m.CorrelationID)
	c.causal = append(c.causal, m.CausationID)
	c.schemaVersion = append(c.schemaVersion, int64(m.SchemaVersion))
	c.data = append(c.data, r.Data)
}

func (c *insertColumns) args() []any {
	return []any{c.pos, c.id, c.stream, c.version, c.typ, c.recorded, c.occurred,
		c.actor, c.channel, c.correlation, c.causal, c.schemaVersion, c.data}
}
