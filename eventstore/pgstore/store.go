// Package pgstore is the PostgreSQL implementation of eventstore.Store, on
// pgx/v5.
//
// # Schema
//
// Open creates the store's schema if needed and brings it up to date with the
// versioned migrations embedded in the binary (tern; its version table is
// <schema>.schema_version). Migrations run under tern's session advisory lock,
// so processes starting at once are safe; a binary older than the database's
// schema refuses to open it rather than write to a layout it does not know.
//
// # Ordering: why a reader never passes a late commit
//
// The classic flaw of sequence-numbered logs: transaction A takes position 7
// from a sequence, transaction B takes 8 and commits first; a reader sees 8,
// records "I am at 8", and never sees 7 when A commits a moment later.
//
// Appends do take their positions from a sequence (events_position_seq,
// migration 003) and commit concurrently; the reader keeps a high-water
// mark instead. Every append transaction first takes an exclusive advisory
// lock on its own transaction id, (lockClass, xid mod 2^32), held until it
// ends, and only then draws positions. A reader (ReadAll and Head, in the
// functions read_all and head) first reads the sequence's last value h, then,
// in a later statement, lists the xid locks held at that moment from
// pg_locks and waits on each with a shared lock. Any transaction that drew a
// position <= h held its lock before drawing and keeps it until it has
// committed or rolled back (PostgreSQL releases transaction locks after the
// transaction is visible to every new snapshot), so when the waits return,
// every position <= h is settled, and the page "position > after and
// position <= h", read in a new snapshot, has no hole a later commit could
// fill. Positions above h wait for the next read. (A snapshot's list of
// transactions in progress would not do: it omits those whose xid is above
// every completed one's, which is what a young appender's is.)
//
// The cost moved from writers to readers: a reader waits for the appends in
// flight when it starts (one statement each, so milliseconds), and pays one
// pg_locks scan per read; appends to different streams, from any number of
// processes, no longer wait for each other. The proof is in ordering_test.go
// (an append that drew position 1 and commits late holds back Head, ReadAll
// and subscribers, but not another store's append of position 2) and
// torture_test.go.
//
// Each batch's positions are one consecutive run (so each append's are too),
// drawn under a session advisory lock held only for the draw. Positions can have gaps (an append
// that fails in the database after drawing), which the contract allows.
// Stream versions are guarded by one transaction advisory lock per stream
// (keys in sorted order, so batches never deadlock): the head is read after
// it, and the unique index on (stream, version) remains the last guard.
//
// # Group commit
//
// Each batch is one round trip: the append_batch function takes arrays of
// every append of the batch, decides each in arrival order (stored ids, then
// the expected version; a conflict or a retry draws no position and never
// aborts the others) and writes the accepted ones; its statement's implicit
// transaction commits. A collector goroutine forms the batches: it takes
// one request and every other request waiting at that moment (no
// artificial delay; bounded in appends, events and bytes) and hands the
// batch to one of four writer goroutines. One small batch (under 32
// events) at a time is in the database per Store; the appends that arrive
// meanwhile form the next one, so a few single-event writers share one
// call and one commit. Larger batches go to any free writer, and
// PostgreSQL groups the WAL flushes of concurrent batches, of this process
// and others. Should a batch fail in
// the database (a value PostgreSQL rejects that Go validation let through,
// a dropped connection), each request is re-run alone, so only the culprit
// fails; a re-run of a request whose commit did happen is recognised by
// eventstore.ResolveRetry as an idempotent retry, which resolves the
// ambiguity of a connection lost during COMMIT. The NOTIFY that wakes other
// processes' subscriptions is sent after the commit, in its own
// transaction: inside the append it would take PostgreSQL's database-wide
// notification lock through COMMIT and serialise every appender.
//
// # Subscriptions
//
// Subscribe is eventstore.Follow. It is woken by local commits directly and by
// other processes' commits through LISTEN/NOTIFY on a dedicated connection,
// which reconnects when dropped; Options.Poll is only the safety net for
// notifications lost during such an outage.
//
// # Merkle tree
//
// The Store also keeps the Merkle tree over the log that eventstore/notary
// maintains (TreeSize, ReadHashes, AppendLeaves, LeafPositions, LeafIndex:
// notary.HashStore) in the tables merkle_hashes and merkle_leaves, made by
// migration 002 (merkle.go). Writing it takes an advisory lock of its own,
// which appends never take, so appends do not wait for the notary.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgschema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSchema holds the store's tables when Options.Schema is empty. A
// schema of its own keeps the log apart from other tables and lets one
// database host several stores.
const DefaultSchema = "cxledger"

// Default batch bounds of the group commit: large enough that concurrent
// appends share one commit, small enough that one batch's arrays stay a few
// megabytes.
const (
	DefaultMaxBatchEvents = 2000
	DefaultMaxBatchBytes  = 16 << 20
)

// DefaultPoll is how often a subscription re-reads the log without a
// notification: the safety net for NOTIFYs lost while the LISTEN connection
// was down, not the way subscribers learn of new events.
const DefaultPoll = 2 * time.Second

// Options configure a Store. The zero value is valid.
type Options struct {
	// Schema is the PostgreSQL schema holding the store's tables, created if
	// missing; DefaultSchema when empty. It must be a lowercase identifier
	// ([a-z_][a-z0-9_]*, at most 54 bytes so that the NOTIFY channel name
	// "cxledger_<schema>" fits PostgreSQL's 63-byte limit), so that it never
	// needs quoting.
	Schema string
	// MaxEventSize limits one event's data and metadata (see
	// eventstore.EventData.Size); eventstore.DefaultMaxEventSize when 0.
	MaxEventSize int
	// MaxConns caps the connection pool (not counting the LISTEN connection
	// and the one used briefly by migrations at Open); when 0, the URL's
	// pool_max_conns or pgxpool's default, max(4, CPUs).
	MaxConns int32
	// Now is no longer used by appends: RecordedAt is PostgreSQL's clock,
	// read where positions are drawn, so that it never decreases along the
	// log even with several processes appending (migration 003). The field
	// stays for callers that set it.
	Now func() time.Time
	// Poll is the subscriptions' safety-net re-read interval; DefaultPoll
	// when 0.
	Poll time.Duration
	// MaxBatchEvents and MaxBatchBytes bound one group commit; an append
	// larger than either is committed alone. Defaults when 0.
	MaxBatchEvents int
	MaxBatchBytes  int
}

var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,53}$`)

func (o *Options) setDefaults() {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.MaxEventSize == 0 {
		o.MaxEventSize = eventstore.DefaultMaxEventSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.MaxBatchEvents == 0 {
		o.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
}

// Validate reports the first invalid option (after defaults are applied).
func (o Options) Validate() error {
	switch {
	case !schemaPattern.MatchString(o.Schema) || len(o.Schema) >= 3 && o.Schema[:3] == "pg_":
		return fmt.Errorf("schema %q: want a lowercase identifier [a-z_][a-z0-9_]* of at most 54 bytes, not starting with pg_", o.Schema)
	case o.MaxEventSize < 0:
		return fmt.Errorf("negative MaxEventSize %d", o.MaxEventSize)
	case o.MaxConns < 0:
		return fmt.Errorf("negative MaxConns %d", o.MaxConns)
	case o.Poll < 0:
		return fmt.Errorf("negative Poll %s", o.Poll)
	case o.MaxBatchEvents < 0 || o.MaxBatchBytes < 0:
		return fmt.Errorf("negative batch bound (%d events, %d bytes)", o.MaxBatchEvents, o.MaxBatchBytes)
	}
	return nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is an eventstore.Store on PostgreSQL. It is safe for concurrent use;
// any number of Stores, in any number of processes, may share one schema.
type Store struct {
	opts Options
	pool *pgxpool.Pool
	// lockClass is the first key of the (class, xid) advisory locks by
	// which readers wait for in-flight appends, and the seed of the
	// streams' lock keys (see Ordering in the package documentation).
	lockClass int32
	channel   string // NOTIFY channel of this schema
	sql       statements

	// notify wakes the notifier goroutine (buffered 1: requests made
	// while a NOTIFY is being sent coalesce into one more).
	notify     chan struct{}
	notifierWG sync.WaitGroup

	reqs      chan *appendReq // unbuffered: a send means the collector took it
	jobs      chan job        // batches from the collector to the writers
	smallDone chan struct{}   // a small batch committed (see smallBatch)
	closed    chan struct{}
	once      sync.Once
	wake      eventstore.Signal

	writersWG    sync.WaitGroup
	listenCancel context.CancelFunc
	listenDone   chan struct{}

	// afterInsert, when set (by tests only), runs after a batch's rows are
	// inserted and before its COMMIT: the window in which the ordering
	// problem would show.
	afterInsert atomic.Pointer[func()]
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the database named by connString (a URL or key=value
// string, as pgx accepts), creates or migrates the store's schema, and starts
// the group-commit writer and the LISTEN connection. Close releases them.
func Open(ctx context.Context, connString string, opts Options) (_ *Store, err error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	pcfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	if opts.MaxConns > 0 {
		pcfg.MaxConns = opts.MaxConns
	}
	cfg := pcfg.ConnConfig
	if err := migrateSchema(ctx, cfg, opts.Schema); err != nil {
		return nil, fmt.Errorf("pgstore: open schema %s: %w", opts.Schema, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	s := &Store{
		opts:       opts,
		pool:       pool,
		lockClass:  lockClass(opts.Schema),
		channel:    "cxledger_" + opts.Schema,
		sql:        newStatements(opts.Schema),
		notify:     make(chan struct{}, 1),
		reqs:       make(chan *appendReq),
		jobs:       make(chan job),
		smallDone:  make(chan struct{}, writers),
		closed:     make(chan struct{}),
		listenDone: make(chan struct{}),
	}
	listenCtx, cancel := context.WithCancel(context.Background())
	s.listenCancel = cancel
	go s.listen(listenCtx, cfg.Copy())
	s.writersWG.Add(writers + 1)
	go func() {
		defer s.writersWG.Done()
		s.collector()
	}()
	for range writers {
		go s.writer()
	}
	s.notifierWG.Add(1)
	go s.notifier()
	return s, nil
}

// lockClass derives the store's advisory lock class from the schema name,
// so that every process using one schema agrees on it and stores in
// different schemas do not meet (a hash collision between two schemas would
// only make a reader of one wait for an append of the other, never break
// either).
func lockClass(schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte("cxledger/eventstore/" + schema))
	return int32(h.Sum32())
}

// notifyOthers asks the notifier to tell other processes' subscriptions
// that the log grew.
func (s *Store) notifyOthers() {
	select {
	case s.notify <- struct{}{}:
	default: // one is pending already: it will cover this commit too
	}
}

// notifier sends the NOTIFYs of this Store's commits, after them and in a
// transaction of their own: a NOTIFY inside the append transaction would
// take PostgreSQL's database-wide notification lock from pre-commit to the
// end of COMMIT, WAL flush included, and so serialise every appender's
// commit. Commits made while one NOTIFY is in flight share the next.
func (s *Store) notifier() {
	defer s.notifierWG.Done()
	for {
		select {
		case <-s.closed:
			return
		case <-s.notify:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// Best effort: a lost NOTIFY is covered by Options.Poll.
		_ = s.withConn(ctx, func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "select pg_notify($1, '')", s.channel)
			return err
		})
		cancel()
		// At most one NOTIFY per notifyInterval: every one wakes the LISTEN
		// connection of every process on the schema, so under load they
		// would cost each process CPU in proportion to the number of
		// processes; the commits meanwhile share the next one.
		select {
		case <-s.closed:
			return
		case <-time.After(notifyInterval):
		}
	}
}

// notifyInterval spaces a Store's NOTIFYs (see notifier): a few
// milliseconds of delay for other processes' subscribers.
const notifyInterval = 5 * time.Millisecond

// migrateSchema creates the schema and runs the event store's migrations.
func migrateSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	return pgschema.Migrate(ctx, cfg, schema, sub, "schema_version")
}

// statements are the store's SQL, schema-qualified once at Open.
type statements struct {
	appendBatch, head, readAll, streamHead  string
	heads, byIDs, insert, lastRecorded      string
	readForward, readBackward, streamExists string
}

// columns is the column list every read returns, in scanRecord's order.
const columns = `position, event_id, stream, version, type, recorded_at, occurred_at,
	actor, channel, correlation_id, causation_id, schema_version, data`

func newStatements(schema string) statements {
	events := schema + ".events"
	return statements{
		appendBatch: `select status, head, last_position from ` + schema + `.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		head:        `select ` + schema + `.head($1)`,
		// The read, in one round trip, of what is below the horizon.
		readAll:      `select ` + columns + ` from ` + schema + `.read_all($1, $2, $3, $4)`,
		streamHead:   `select max(version) from ` + events + ` where stream = $1`,
		lastRecorded: `select recorded_at from ` + events + ` order by position desc limit 1`,
		// One index probe per stream on (stream, version).
		heads: `select u.stream, (select max(e.version) from ` + events + ` e where e.stream = u.stream)
			from unnest($1::text[]) as u(stream)`,
		byIDs: `select ` + columns + ` from ` + events + ` where event_id = any($1::uuid[])`,
		// One statement for the whole batch, so that it can be pipelined with
		// the notify and the commit (COPY cannot be pipelined: it needs its
		// own round trips).
		insert: `insert into ` + events + ` (` + columns + `)
			select p, i, s, v, t, r, o, a, c, co, ca, sv, d::json
			from unnest($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[],
				$7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[], $13::text[])
				as u(p, i, s, v, t, r, o, a, c, co, ca, sv, d)`,
		readForward:  `select ` + columns + ` from ` + events + ` where stream = $1 and version >= $2 order by version limit $3`,
		readBackward: `select ` + columns + ` from ` + events + ` where stream = $1 and version <= $2 order by version desc limit $3`,
		streamExists: `select exists (select 1 from ` + events + ` where stream = $1)`,
	}
}

// scanRecord reads one row in the order of columns. It scans into pgx's own
// types where they avoid a detour through text (uuid) or carry NULL
// (occurred_at), and always returns times in UTC.
func scanRecord(row pgx.CollectableRow) (eventstore.Record, error) {
	var (
		r        eventstore.Record
		pos, ver int64
		id       pgtype.UUID
		occurred pgtype.Timestamptz
		sv       int64
	)
	err := row.Scan(&pos, &id, &r.Stream, &ver, &r.Type, &r.RecordedAt, &occurred,
		&r.Metadata.Actor, &r.Metadata.Channel, &r.Metadata.CorrelationID, &r.Metadata.CausationID, &sv, &r.Data)
	if err != nil {
		return r, err
	}
	r.Position, r.Version, r.ID = uint64(pos), uint64(ver), id.Bytes
	r.RecordedAt = r.RecordedAt.UTC()
	if occurred.Valid {
		r.Metadata.OccurredAt = occurred.Time.UTC()
	}
	r.Metadata.SchemaVersion = int(sv)
	return r, nil
}

// clampInt64 maps the contract's uint64 positions and versions onto bigint;
// anything past MaxInt64 is past every stored value anyway.
func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

func limitOf(n int) int {
	if n <= 0 {
		return eventstore.DefaultReadLimit
	}
	return n
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error) {
	op := fmt.Sprintf("read stream %q", stream)
	if s.isClosed() {
		return nil, fmt.Errorf("pgstore: %s: %w", op, eventstore.ErrClosed)
	}
	q := s.sql.readForward
	if opts.Backwards {
		q = s.sql.readBackward
	}
	var recs []eventstore.Record
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(ctx, q, stream, clampInt64(opts.From), limitOf(opts.Limit))
		var err error
		if recs, err = pgx.CollectRows(rows, scanRecord); err != nil || len(recs) > 0 {
			return err
		}
		// Empty: either From is past the end or there is no such stream.
		// The second query is only paid on the empty answer.
		var exists bool
		if err := conn.QueryRow(ctx, s.sql.streamExists, stream).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return eventstore.ErrNotFound
		}
		// The stream exists, but it may have been created by an append that
		// committed between the two statements (each sees its own snapshot
		// at READ COMMITTED): read again, now that it is known to exist.
		rows, _ = conn.Query(ctx, q, stream, clampInt64(opts.From), limitOf(opts.Limit))
		recs, err = pgx.CollectRows(rows, scanRecord)
		return err
	})
	if errors.Is(err, eventstore.ErrNotFound) {
		return nil, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return recs, nil
}

// ReadAll implements eventstore.Store, in one round trip (the read_all
// function of migration 003): it reads only positions at or below the
// horizon, after waiting for the appends in flight that may still commit a
// position below it (see Ordering in the package documentation). It
// therefore returns every append that returned before it was called.
func (s *Store) ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error) {
	op := fmt.Sprintf("read all after %d", opts.After)
	if s.isClosed() {
		return nil, fmt.Errorf("pgstore: %s: %w", op, eventstore.ErrClosed)
	}
	types, ok := opts.Filter.StorableTypes()
	if !ok {
		return nil, nil // only types no event can have: PostgreSQL would refuse NUL
	}
	var recs []eventstore.Record
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		if len(types) == 0 {
			types = nil // NULL: every type
		}
		rows, _ := conn.Query(ctx, s.sql.readAll, s.lockClass, clampInt64(opts.After), limitOf(opts.Limit), types)
		var err error
		recs, err = pgx.CollectRows(rows, scanRecord)
		return err
	})
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return recs, nil
}

// Head implements eventstore.Store: the last committed position at or
// below the horizon, which like ReadAll waits for the appends in flight.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	if s.isClosed() {
		return 0, fmt.Errorf("pgstore: head: %w", eventstore.ErrClosed)
	}
	var head int64
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, s.sql.head, s.lockClass).Scan(&head)
	})
	if err != nil {
		return 0, s.fail(ctx, "head", err)
	}
	return uint64(head), nil
}

// Subscribe implements eventstore.Store with eventstore.Follow, woken by
// local commits and by NOTIFYs from other processes.
func (s *Store) Subscribe(ctx context.Context, opts eventstore.SubscribeOptions, handle eventstore.Handler) error {
	if s.isClosed() {
		return fmt.Errorf("pgstore: subscribe: %w", eventstore.ErrClosed)
	}
	return eventstore.Follow(ctx, eventstore.FollowConfig{
		Read:   s.ReadAll,
		Wake:   &s.wake,
		Closed: s.closed,
		Poll:   s.opts.Poll,
	}, opts, handle)
}

// Close implements eventstore.Store: appends already taken by the writer
// finish, later ones fail with ErrClosed, subscriptions end with ErrClosed,
// and the connections are closed once in-flight reads return.
func (s *Store) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.writersWG.Wait()
		s.notifierWG.Wait()
		s.listenCancel()
		<-s.listenDone
		s.pool.Close()
	})
	return nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// fail translates a read's driver error once, at the boundary: a cancelled
// or expired context is reported as such (pgx does not always wrap it), a
// closed store as ErrClosed, anything else wrapped with the operation.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("pgstore: %s: %w", op, ctxErr)
	}
	if s.isClosed() {
		return fmt.Errorf("pgstore: %s: %w (%v)", op, eventstore.ErrClosed, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// withConn runs fn on a pooled connection.
func (s *Store) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// Release destroys a connection left busy or inside a transaction, so
	// the next user always starts from a clean session.
	defer conn.Release()
	return fn(conn.Conn())
}
