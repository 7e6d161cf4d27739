package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

// writers is the number of group-commit goroutines per Store. Batches still
// commit one at a time (the advisory lock), but with two, the next batch is
// collected and its first round trip (begin, lock request) is already
// waiting in PostgreSQL while the current one flushes its commit, so the
// lock passes on without an idle round trip, and requests that arrive
// during a commit form the next batch instead of a string of tiny ones.
const writers = 2

// writer is one group-commit goroutine. It blocks for one request, then
// takes every other request already waiting, up to the batch bounds, without
// waiting for more: under load the queue refills while a batch commits, so
// batches grow with concurrency and a lone append pays no added latency.
func (s *Store) writer() {
	defer s.writersWG.Done()
	// The batch context is the store's, not any caller's: a batch serves many
	// callers, and one caller giving up must not abort the others' commit.
	ctx := context.Background()
	for {
		var first *appendReq
		select {
		case <-s.closed:
			return
		case first = <-s.reqs:
		}
		batch := []*appendReq{first}
		n, size := len(first.events), first.size
	collect:
		for n < s.opts.MaxBatchEvents && size < s.opts.MaxBatchBytes {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
				n += len(r.events)
				size += r.size
			default:
				break collect
			}
		}
		s.commit(ctx, batch)
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
// writer outside the store's lock.
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
			// Only a writer bypassing the store's lock can cause this, and
			// it kept racing over three attempts; its version is unknown.
			return fmt.Errorf("pgstore: append to %q: %w: version taken concurrently by a writer outside the store (%v)", stream, eventstore.ErrWrongExpectedVersion, err)
		case strings.HasPrefix(pgErr.Code, "22"): // data_exception
			return fmt.Errorf("pgstore: append to %q: %w: rejected by PostgreSQL: %v", stream, eventstore.ErrInvalidEvent, err)
		}
	}
	return fmt.Errorf("pgstore: append to %q: %w", stream, err)
}

// runBatch commits the requests in one transaction and returns each one's
// outcome (a decided conflict or duplicate is an outcome, not an error). An
// error means nothing of the batch is known to be committed.
func (s *Store) runBatch(ctx context.Context, reqs []*appendReq) (_ []appendOutcome, err error) {
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer pooled.Release()
	conn := pooled.Conn()
	inTx := false
	defer func() {
		if inTx {
			// Best effort: if the connection is broken, Release destroys it
			// and the server rolls back on its own.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.Exec(rctx, "rollback")
		}
	}()

	var ids []pgtype.UUID
	streams := make([]string, 0, len(reqs))
	seen := make(map[string]bool, len(reqs))
	for _, r := range reqs {
		if !seen[r.stream] {
			seen[r.stream] = true
			streams = append(streams, r.stream)
		}
		for _, e := range r.events {
			ids = append(ids, pgtype.UUID{Bytes: e.ID, Valid: true})
		}
	}

	// Round trip 1: begin, lock, and everything the decisions need. Each
	// statement is its own statement, so the reads' snapshots are taken after
	// the lock is granted (see the package documentation).
	b := &pgx.Batch{}
	b.Queue("begin isolation level read committed")
	b.Queue("select pg_advisory_xact_lock($1)", s.lockKey)
	b.Queue(s.sql.maxPosition)
	b.Queue(s.sql.heads, streams)
	b.Queue(s.sql.byIDs, ids)
	inTx = true
	br := conn.SendBatch(ctx, b)
	var (
		maxPos int64
		heads  = make(map[string]int64, len(streams))
		stored = make(map[uuid.UUID]*eventstore.Record)
	)
	err = func() error {
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&maxPos); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var (
			stream string
			head   pgtype.Int8
		)
		if _, err := pgx.ForEachRow(rows, []any{&stream, &head}, func() error {
			heads[stream] = -1
			if head.Valid {
				heads[stream] = head.Int64
			}
			return nil
		}); err != nil {
			return err
		}
		rows, err = br.Query()
		if err != nil {
			return err
		}
		recs, err := pgx.CollectRows(rows, scanRecord)
		if err != nil {
			return err
		}
		for i := range recs {
			stored[recs[i].ID] = &recs[i]
		}
		return br.Close()
	}()
	if err != nil {
		return nil, err
	}

	// Decide each request in arrival order against the heads as the earlier
	// requests of this batch leave them.
	outs := make([]appendOutcome, len(reqs))
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	var cols insertColumns
	pos := maxPos
	for i, r := range reqs {
		current := heads[r.stream]
		prior := make([]*eventstore.Record, len(r.events))
		for j, e := range r.events {
			prior[j] = stored[e.ID]
		}
		res, retry, err := eventstore.ResolveRetry(r.stream, r.expected, current, r.events, prior)
		switch {
		case err != nil:
			outs[i].err = err
			continue
		case retry:
			outs[i].res = res
			continue
		}
		if err := eventstore.CheckExpected(r.stream, r.expected, current); err != nil {
			outs[i].err = err
			continue
		}
		for j, e := range r.events {
			pos++
			rec := &eventstore.Record{
				ID: e.ID, Stream: r.stream, Type: e.Type,
				Version: uint64(current + 1 + int64(j)), Position: uint64(pos),
				RecordedAt: now, Data: e.Data, Metadata: e.Metadata.Normalize(),
			}
			cols.add(rec)
			stored[e.ID] = rec // a later request of this batch may repeat it
		}
		heads[r.stream] = current + int64(len(r.events))
		outs[i].res = eventstore.AppendResult{Version: uint64(heads[r.stream]), Position: uint64(pos)}
	}
	if len(cols.pos) == 0 {
		return outs, nil // nothing to write; the deferred rollback frees the lock
	}

	// Round trip 2: insert, notify, commit. NOTIFY is transactional: other
	// processes hear it only once the rows are visible.
	hook := s.afterInsert.Load()
	b = &pgx.Batch{}
	b.Queue(s.sql.insert, cols.args()...)
	b.Queue("select pg_notify($1, $2)", s.channel, strconv.FormatInt(pos, 10))
	if hook == nil {
		b.Queue("commit")
	}
	br = conn.SendBatch(ctx, b)
	if err := br.Close(); err != nil {
		return nil, err
	}
	if hook != nil {
		(*hook)()
		if _, err := conn.Exec(ctx, "commit"); err != nil {
			return nil, err
		}
	}
	// A COMMIT that fails is reported by the server as an error, but a
	// transaction that cannot commit (already aborted) answers COMMIT with
	// ROLLBACK and no error; check the state the server reported.
	if st := conn.PgConn().TxStatus(); st != 'I' {
		return nil, fmt.Errorf("transaction state %q after commit", st)
	}
	inTx = false
	s.wake.Notify()
	return outs, nil
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
