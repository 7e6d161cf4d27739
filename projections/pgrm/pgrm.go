// Package pgrm is the PostgreSQL read-model Backend, on pgx/v5. Read models
// live in the events' database and schema (cxledger by default), so that
// analysts find the log and the read models together and query them with
// SQL.
//
// # Schema
//
//	rm_<ns>         one table per namespace: key text COLLATE "C" primary
//	                key, value json. COLLATE "C" makes key order byte order,
//	                as on every backend; json, not jsonb, keeps each value
//	                byte for byte (state digests compare equal across
//	                backends) while ->> still works.
//	rm__namespaces  namespace → checkpoint; a row exists exactly while the
//	                namespace's table does.
//	rm__active      read-model name → namespace serving its reads.
//	rm__served      namespace → the read model it was last activated for,
//	                kept after a Drop (see "Switch and drop").
//	<name>          a view per read model, SELECT key, value FROM rm_<ns> of
//	                its active namespace: select value->>'name' from
//	                cxledger.customer360.
//
// The bookkeeping tables come from versioned migrations embedded in the
// binary (tern; version table cxledger_rm_schema_version, apart from the
// event store's tern table in the same schema). Names are validated
// identifiers, so SQL is built with them unquoted.
//
// # Writes
//
// Update runs one READ COMMITTED transaction holding the namespace's row in
// rm__namespaces FOR UPDATE, so that Updates of one namespace and its Drop
// take turns. Puts and Deletes are buffered in the Writer (Get consults the
// buffer; Scan flushes it first) and sent when fn returns, with the
// checkpoint, as one pipelined batch: a DELETE ... = ANY($1) and a
// multi-row INSERT ... SELECT FROM unnest($1, $2) ON CONFLICT DO UPDATE, in
// key order. A replay batch of a thousand Puts thus costs a few round trips,
// not a thousand. In a namespace this Backend created empty, the keys its
// table cannot hold yet go by COPY instead, about half the server's time
// for the same rows (fresh.go says how it knows).
//
// # Switch and drop
//
// Activate, in one transaction, repoints rm__active and replaces the view,
// so readers and analysts move over at once. View runs in a REPEATABLE READ
// READ ONLY transaction whose first statement is LOCK TABLE rm_<ns> IN
// ACCESS SHARE MODE, before the snapshot is taken. Once that lock is held,
// DROP TABLE waits for the reader to finish: Drop waits for readers already
// reading. A reader that resolved the pointer just before a rebuild switched
// over and dropped the old namespace finds its table gone at the LOCK; View
// then looks up, once, the read model the namespace served and reads its
// active namespace instead, so it sees the new generation rather than an
// error or an empty read model.
package pgrm

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cxledger/cxledger/eventstore/pgstore/pgschema"
	"github.com/cxledger/cxledger/projections"
)

// DefaultSchema is the schema used when Options.Schema is empty: the event
// store's (pgstore.DefaultSchema), so that the log and its read models sit
// together.
const DefaultSchema = "cxledger"

// versionTable is tern's version table for these migrations, named apart
// from the event store's schema_version in the same schema.
const versionTable = "cxledger_rm_schema_version"

// ErrClosed is wrapped by the error of every call made after Close.
var ErrClosed = errors.New("read-model backend closed")

// Options configure a Backend. The zero value is valid.
type Options struct {
	// Schema holds the read-model tables, created if missing; DefaultSchema
	// when empty. It must be a lowercase identifier ([a-z_][a-z0-9_]*, at
	// most 63 bytes, not starting with pg_), so that it never needs
	// quoting.
	Schema string
	// MaxConns caps the connection pool; when 0, the URL's pool_max_conns
	// or pgxpool's default, max(4, CPUs).
	MaxConns int32
}

var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o *Options) setDefaults() {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
}

// Validate reports the first invalid option (after defaults are applied).
func (o Options) Validate() error {
	switch {
	case !schemaPattern.MatchString(o.Schema) || strings.HasPrefix(o.Schema, "pg_"):
		return fmt.Errorf("schema %q: want a lowercase identifier [a-z_][a-z0-9_]* of at most 63 bytes, not starting with pg_", o.Schema)
	case o.MaxConns < 0:
		return fmt.Errorf("negative MaxConns %d", o.MaxConns)
	}
	return nil
}

// checkViewName keeps a read model's view from taking the name of a table
// of ours or of the event store in the same schema.
func checkViewName(name string) error {
	if err := projections.CheckName("read-model name", name); err != nil {
		return err
	}
	if why := projections.Reserved(name); why != "" {
		return errors.New(why)
	}
	return nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Backend is a projections.Backend on PostgreSQL. It is safe for concurrent
// use; several Backends, in several processes, may share one schema, as
// long as each namespace has one writer (the engine's rule).
type Backend struct {
	pool   *pgxpool.Pool
	schema string
	closed atomic.Bool
	fresh  freshKeys // see fresh.go
	// copied counts the rows sent by COPY, refused the COPYs rolled back
	// (for tests).
	copied, refused atomic.Int64
}

var _ projections.Backend = (*Backend)(nil)

// Open connects to the database named by connString (a URL or key=value
// string, as pgx accepts) and creates or migrates the read-model tables in
// Options.Schema. Close releases the pool.
func Open(ctx context.Context, connString string, opts Options) (_ *Backend, err error) {
	opts.setDefaults()
	defer func() {
		if err != nil {
			err = fmt.Errorf("pgrm: open schema %s: %w", opts.Schema, err)
		}
	}()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns > 0 {
		pcfg.MaxConns = opts.MaxConns
	}
	if err := migrateSchema(ctx, pcfg.ConnConfig, opts.Schema); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	return &Backend{pool: pool, schema: opts.Schema}, nil
}

// migrateSchema creates the schema, which the event store may share, and
// runs the read models' migrations under their own version table.
func migrateSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	return pgschema.Migrate(ctx, cfg, schema, sub, versionTable)
}

// isCode reports whether err is a PostgreSQL error with one of the SQLSTATEs.
func isCode(err error, codes ...string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && slices.Contains(codes, pgErr.Code)
}

// undefinedTable is the SQLSTATE of a missing table.
const undefinedTable = "42P01"

// Schema returns the schema holding the read models.
func (b *Backend) Schema() string { return b.schema }

// table is the schema-qualified table of namespace ns (a checked name).
func (b *Backend) table(ns string) string { return b.schema + ".rm_" + ns }

func (b *Backend) meta(table string) string { return b.schema + ".rm__" + table }

func (b *Backend) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed.Load() {
		return ErrClosed
	}
	return nil
}

// inTx runs fn in a transaction and commits it unless fn fails or ctx is
// done by then. Rollback runs without ctx's cancellation, so that the
// connection goes back to the pool clean instead of being discarded.
func (b *Backend) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	if err := b.check(ctx); err != nil {
		return err
	}
	tx, err := b.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	// A caller that gave up must not find its work committed after all.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// lockNamespace locks namespace ns's row for the rest of tx, creating the
// namespace (row and table) if it does not exist, and returns its
// checkpoint, and whether this transaction created it. A concurrent creator
// makes the insert wait for its commit and then do nothing, and the select
// after it finds and locks the row.
func (b *Backend) lockNamespace(ctx context.Context, tx pgx.Tx, ns string) (cp int64, created bool, err error) {
	sel := `select checkpoint from ` + b.meta("namespaces") + ` where ns = $1 for update`
	for range 2 {
		err := tx.QueryRow(ctx, sel, ns).Scan(&cp)
		if err == nil {
			return cp, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, false, fmt.Errorf("lock namespace: %w", err)
		}
		tag, err := tx.Exec(ctx, `insert into `+b.meta("namespaces")+` (ns) values ($1) on conflict (ns) do nothing`, ns)
		if err != nil {
			return 0, false, fmt.Errorf("register namespace: %w", err)
		}
		if tag.RowsAffected() == 1 {
			if _, err := tx.Exec(ctx, `create table `+b.table(ns)+` (key text collate "C" primary key, value json not null)`); err != nil {
				return 0, false, fmt.Errorf("create table: %w", err)
			}
			return 0, true, nil
		}
	}
	return 0, false, errors.New("lock namespace: row vanished twice")
}

// Update implements projections.Backend: fn runs in one READ COMMITTED
// transaction; its buffered writes and checkpoint are sent when it returns
// nil, and commit together.
func (b *Backend) Update(ctx context.Context, ns string, fn func(projections.Writer) error) (err error) {
	defer wrap(&err, "update %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	var w *writer
	err = b.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// A read model is derived data and its checkpoint commits with it:
		// a commit lost in a crash is lost whole, checkpoint included, and
		// simply applied again. So Update need not wait for the WAL flush,
		// which would otherwise bound a replay to one batch per fsync.
		// (Unlike bbolt's NoSync, this can lose, never corrupt.)
		if _, err := tx.Exec(ctx, "set local synchronous_commit = off"); err != nil {
			return fmt.Errorf("synchronous_commit: %w", err)
		}
		cp, created, err := b.lockNamespace(ctx, tx, ns)
		if err != nil {
			return err
		}
		w = b.newWriter(tx, ns)
		w.from = cp
		if created {
			w.keys = b.fresh.newSet(ns)
		} else {
			w.keys = b.fresh.claim(ns, cp)
		}
		w.locked = true
		defer func() { w.tx = nil }() // the Writer is valid only during fn
		if err := fn(w); err != nil {
			return err
		}
		return w.flush(ctx)
	})
	w.done(err)
	return err
}

// newWriter returns a writer of namespace ns within tx.
func (b *Backend) newWriter(tx pgx.Tx, ns string) *writer {
	return &writer{reader: reader{tx: tx, table: b.table(ns)}, b: b, ns: ns, pending: map[string]change{}}
}

// Commit implements projections.Backend in one READ COMMITTED transaction.
// fn runs first, its writes buffered; only then are the namespace's row
// locked (so writers of one namespace take turns) and the claim checked
// against it and, FOR SHARE, against the lease's row: a takeover, an
// UPDATE of that row, then waits for this commit to end, so the lease
// cannot change hands between the check and the commit. Locking last keeps
// a writer stalled in fn — a paused process — from blocking the owner that
// took over; what fn read is still current if the checkpoint is
// unchanged, since every engine commit moves it. Expiry is judged by the
// database's clock. A session left idle in the transaction (a process
// stopped mid-commit) is ended by the server after commitIdleTimeout,
// releasing its locks. The commit notifies NotifyChannel with "<schema>
// <namespace> <checkpoint>", delivered to listeners when it commits.
func (b *Backend) Commit(ctx context.Context, ns string, c projections.Claim, fn func(projections.Writer) error) (err error) {
	defer wrap(&err, "commit %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	var w *writer
	err = b.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// See Update: a lost read-model commit is applied again, whole.
		if _, err := tx.Exec(ctx, "set local synchronous_commit = off; set local idle_in_transaction_session_timeout = "+strconv.Itoa(int(commitIdleTimeout.Milliseconds()))); err != nil {
			return fmt.Errorf("session settings: %w", err)
		}
		w = b.newWriter(tx, ns)
		defer func() { w.tx = nil }()
		var cp int64
		var retired bool
		err := tx.QueryRow(ctx, `select checkpoint, retired from `+b.meta("namespaces")+` where ns = $1`, ns).Scan(&cp, &retired)
		if errors.Is(err, pgx.ErrNoRows) {
			return projections.CheckClaim(ns, c, false, false, 0, false)
		} else if err != nil {
			return fmt.Errorf("read namespace: %w", err)
		}
		// Claimed now, so that keys fn's Scans send are remembered too;
		// trusted only if the checkpoint is unchanged once the row is
		// locked, below.
		w.keys, w.from = b.fresh.claim(ns, cp), cp
		if err := fn(w); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `select checkpoint, retired from `+b.meta("namespaces")+` where ns = $1 for update`, ns).Scan(&cp, &retired)
		exists := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("lock namespace: %w", err)
		}
		held := true
		if !c.Lease.IsZero() {
			err := tx.QueryRow(ctx, `select expires_at > clock_timestamp() from `+b.meta("leases")+`
				where name = $1 and owner = $2 and epoch = $3 for share`, c.Lease.Name, c.Lease.Owner, c.Lease.Epoch).Scan(&held)
			if errors.Is(err, pgx.ErrNoRows) {
				held = false
			} else if err != nil {
				return fmt.Errorf("check lease %s: %w", c.Lease.Name, err)
			}
		}
		if err := projections.CheckClaim(ns, c, exists, retired, uint64(cp), held); err != nil {
			return err
		}
		if cp != w.from {
			w.keys = nil // written since the claim
		}
		w.locked = true
		if w.setCheckpoint {
			if err := projections.CheckForward(ns, uint64(cp), uint64(w.checkpoint)); err != nil {
				return err
			}
			w.notify = true
		}
		return w.flush(ctx)
	})
	w.done(err)
	return err
}

// commitIdleTimeout ends a Commit's session left idle in its transaction
// (its process stopped), so its locks do not block the next owner.
const commitIdleTimeout = 10 * time.Second

// NotifyChannel is the channel fenced commits notify (see Commit), so that
// other processes learn of a read model's progress without polling.
const NotifyChannel = "cxledger_readmodels"

// View implements projections.Backend on a REPEATABLE READ snapshot. A
// namespace that does not exist reads as empty, except one dropped after it
// served a read model: that one reads as the read model's active namespace
// (see the package documentation).
func (b *Backend) View(ctx context.Context, ns string, fn func(projections.Reader) error) (err error) {
	defer wrap(&err, "view %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	// The table may be gone: never created, or dropped after the caller
	// resolved it. Follow the read model it served to its active
	// namespace — again if that one too was switched away from and dropped
	// meanwhile (a reader slower than two rebuilds), a few times at most.
	for attempt := 0; ; attempt++ {
		err = b.view(ctx, ns, fn)
		if _, fromFn := err.(callbackError); fromFn || !isCode(err, undefinedTable) || attempt == 4 {
			return err
		}
		var cur *string
		err = b.pool.QueryRow(ctx, `select a.ns from `+b.meta("served")+` s
			join `+b.meta("active")+` a on a.name = s.name
			join `+b.meta("namespaces")+` n on n.ns = a.ns
			where s.ns = $1`, ns).Scan(&cur)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fn(&reader{}) // no such namespace: empty
		case err != nil:
			return fmt.Errorf("resolve dropped namespace: %w", err)
		}
		ns = *cur
	}
}

// view runs fn on namespace ns's table, locked against Drop before the
// snapshot is taken (LOCK TABLE is not a query, so the REPEATABLE READ
// snapshot starts with the first statement after it).
func (b *Backend) view(ctx context.Context, ns string, fn func(projections.Reader) error) error {
	return b.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `lock table `+b.table(ns)+` in access share mode`); err != nil {
			return err // undefinedTable is handled by View
		}
		r := &reader{tx: tx, table: b.table(ns)}
		defer func() { r.tx = nil }()
		// fn's own errors must not look like a missing table to View.
		if err := fn(r); err != nil {
			return callbackError{err}
		}
		return nil
	})
}

// callbackError carries fn's error through view unmistaken for a missing
// table of ours; wrap unwraps it.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// Checkpoint implements projections.Backend.
func (b *Backend) Checkpoint(ctx context.Context, ns string) (pos uint64, err error) {
	defer wrap(&err, "checkpoint %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return 0, err
	}
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var cp int64
	err = b.pool.QueryRow(ctx, `select checkpoint from `+b.meta("namespaces")+` where ns = $1`, ns).Scan(&cp)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return uint64(cp), err
}

// Active implements projections.Backend.
func (b *Backend) Active(ctx context.Context, name string) (ns string, err error) {
	defer wrap(&err, "active %s", name)
	if err := projections.CheckName("read-model name", name); err != nil {
		return "", err
	}
	if err := b.check(ctx); err != nil {
		return "", err
	}
	err = b.pool.QueryRow(ctx, `select ns from `+b.meta("active")+` where name = $1`, name).Scan(&ns)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return ns, err
}

// Activate implements projections.Backend: in one transaction it creates ns
// if needed, repoints the read model and replaces its view
// <schema>.<name>, so that readers and analysts switch at once. The name
// must not be that of a table in the schema (rm_*, cxledger_*, events,
// schema_version).
func (b *Backend) Activate(ctx context.Context, name, ns string) (err error) {
	defer wrap(&err, "activate %s as %s", ns, name)
	if err := checkViewName(name); err != nil {
		return err
	}
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	created, keys := false, b.fresh.newSet(ns)
	err = b.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var err error
		if _, created, err = b.lockNamespace(ctx, tx, ns); err != nil {
			return err
		}
		batch := &pgx.Batch{}
		// Retire the namespace served until now in the same step, so that
		// its writer, fenced, cannot commit to it after the switch.
		batch.Queue(`update `+b.meta("namespaces")+` set retired = true
			where ns = (select ns from `+b.meta("active")+` where name = $1) and ns <> $2`, name, ns)
		batch.Queue(`insert into `+b.meta("active")+` (name, ns) values ($1, $2)
			on conflict (name) do update set ns = excluded.ns`, name, ns)
		batch.Queue(`insert into `+b.meta("served")+` (ns, name) values ($1, $2)
			on conflict (ns) do update set name = excluded.name`, ns, name)
		batch.Queue(`create or replace view ` + b.schema + `.` + name + ` as select key, value from ` + b.table(ns))
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			if isCode(err, "42809") { // wrong_object_type: a table has the name
				return fmt.Errorf("a relation %s.%s that is not a view is in the way: %w", b.schema, name, err)
			}
			return err
		}
		return nil
	})
	if err == nil && created {
		b.fresh.release(ns, keys, 0)
	}
	return err
}

// Switch implements projections.Backend in one transaction: it locks the
// read model's pointer and both namespaces' rows (in name order, so two
// switches cannot deadlock; a Commit to from waits meanwhile), compares,
// then retires from, repoints the read model and replaces its view.
func (b *Backend) Switch(ctx context.Context, name, from, to string) (err error) {
	defer wrap(&err, "switch %s from %q to %s", name, from, to)
	if err := checkViewName(name); err != nil {
		return err
	}
	if err := projections.CheckName("namespace", to); err != nil {
		return err
	}
	return b.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var active string
		err := tx.QueryRow(ctx, `select ns from `+b.meta("active")+` where name = $1 for update`, name).Scan(&active)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("lock pointer: %w", err)
		}
		rows, err := tx.Query(ctx, `select ns, checkpoint, retired from `+b.meta("namespaces")+`
			where ns = any($1::text[]) order by ns for update`, []string{from, to})
		if err != nil {
			return fmt.Errorf("lock namespaces: %w", err)
		}
		var fromCP, toCP int64
		toExists := false
		for rows.Next() {
			var ns string
			var cp int64
			var retired bool
			if err := rows.Scan(&ns, &cp, &retired); err != nil {
				rows.Close()
				return err
			}
			switch ns {
			case from:
				fromCP = cp
			case to:
				toCP, toExists = cp, !retired
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := projections.CheckSwitch(name, from, to, active, toExists, uint64(fromCP), uint64(toCP)); err != nil {
			return err
		}
		batch := &pgx.Batch{}
		batch.Queue(`update `+b.meta("namespaces")+` set retired = true where ns = $1 and ns <> $2`, from, to)
		batch.Queue(`insert into `+b.meta("active")+` (name, ns) values ($1, $2)
			on conflict (name) do update set ns = excluded.ns`, name, to)
		batch.Queue(`insert into `+b.meta("served")+` (ns, name) values ($1, $2)
			on conflict (ns) do update set name = excluded.name`, to, name)
		batch.Queue(`create or replace view ` + b.schema + `.` + name + ` as select key, value from ` + b.table(to))
		return tx.SendBatch(ctx, batch).Close()
	})
}

// Drop implements projections.Backend. It waits for Updates of ns (their
// row lock) and for Views reading it (their table lock), then removes the
// namespace's row and table in one transaction; its rm__served record
// stays, so that a View of ns that started too late follows the read model
// it served. Dropping the active namespace of a read model drops its view
// too (CASCADE) and leaves the read model empty until the next Activate.
func (b *Backend) Drop(ctx context.Context, ns string) (err error) {
	defer wrap(&err, "drop %s", ns)
	if err := projections.CheckName("namespace", ns); err != nil {
		return err
	}
	// Forgotten now, and any set a transaction of ns holds meanwhile is
	// not given back when it ends (fresh.go).
	b.fresh.forget(ns)
	return b.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `delete from `+b.meta("namespaces")+` where ns = $1`, ns); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `drop table if exists `+b.table(ns)+` cascade`)
		return err
	})
}

// Namespaces implements projections.Backend.
func (b *Backend) Namespaces(ctx context.Context) (list []string, err error) {
	defer wrap(&err, "namespaces")
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	rows, err := b.pool.Query(ctx, `select ns from `+b.meta("namespaces")+` order by ns`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Close closes the pool, waiting for connections in use to be returned;
// later calls fail with ErrClosed.
func (b *Backend) Close() error {
	if !b.closed.Swap(true) {
		b.pool.Close()
	}
	return nil
}

// wrap adds the operation to a failing call's error, once per method, and
// unwraps a callback's error from view's carrier.
func wrap(err *error, format string, args ...any) {
	if *err == nil {
		return
	}
	if cb, ok := (*err).(callbackError); ok {
		*err = cb.err
	}
	*err = fmt.Errorf("pgrm: %s: %w", fmt.Sprintf(format, args...), *err)
}

// reader reads one namespace table within a transaction; a zero reader
// reads as empty.
type reader struct {
	tx    pgx.Tx
	table string
}

func (r *reader) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if r.tx == nil {
		return nil, false, nil
	}
	var v []byte
	// value::text: the json column's bytes exactly as stored.
	err := r.tx.QueryRow(ctx, `select value::text from `+r.table+` where key = $1`, key).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	return v, true, nil
}

// Scan pages: of a large range only what fn consumes is sent, and a page is
// read whole before fn sees it, so that fn may query the same transaction.
const (
	firstPage = 64
	maxPage   = 2048
)

func (r *reader) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.tx == nil {
		return nil
	}
	// Lower bound: after (exclusive) or prefix (inclusive), whichever is
	// greater; upper bound: the first string past every key with the
	// prefix, so the index scan stops at the end of the range.
	lower, op := prefix, ">="
	if after >= prefix {
		lower, op = after, ">"
	}
	upper, bounded := prefixEnd(prefix)
	type pair struct {
		k string
		v []byte
	}
	page := make([]pair, 0, firstPage)
	for size := firstPage; ; size = min(2*size, maxPage) {
		query := `select key, value::text from ` + r.table + ` where key ` + op + ` $1`
		args := []any{lower, size}
		if bounded {
			query += ` and key < $3`
			args = append(args, upper)
		}
		query += ` order by key limit $2`
		rows, err := r.tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("scan %q: %w", prefix, err)
		}
		page = page[:0]
		for rows.Next() {
			var p pair
			if err := rows.Scan(&p.k, &p.v); err != nil {
				rows.Close()
				return fmt.Errorf("scan %q: %w", prefix, err)
			}
			page = append(page, p)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("scan %q: %w", prefix, err)
		}
		for _, p := range page {
			if !strings.HasPrefix(p.k, prefix) {
				return nil
			}
			more, err := fn(p.k, p.v)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < size {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		lower, op = page[len(page)-1].k, ">"
	}
}

// prefixEnd returns the least valid UTF-8 string greater than every string
// starting with prefix: prefix with its last rune incremented, after
// dropping trailing U+10FFFF runes. In UTF-8, byte order is code point
// order, so keys with the prefix are exactly those ≥ prefix and < the
// result. It reports false when there is no bound (the prefix is empty or
// all U+10FFFF).
func prefixEnd(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		if r == utf8.MaxRune {
			continue
		}
		r++
		if r == 0xD800 { // skip the surrogates, which UTF-8 cannot encode
			r = 0xE000
		}
		return prefix + string(r), true
	}
	return "", false
}

// change is a buffered write: a value, or a delete.
type change struct {
	value string
	del   bool
}

// writer buffers a namespace's writes within Backend.Update.
type writer struct {
	reader
	b             *Backend
	ns            string
	pending       map[string]change
	checkpoint    int64
	setCheckpoint bool
	notify        bool // Commit: notify NotifyChannel of the checkpoint

	// keys is the namespace's key set (fresh.go) claimed by this
	// transaction, nil without one; from is the checkpoint it was
	// claimed at. Keys are sent by COPY only once locked: the namespace's
	// row is held and its checkpoint found unchanged.
	keys   *keySet
	from   int64
	locked bool
}

// done ends the writer's transaction, which err ended, and gives its key
// set back: at the checkpoint a commit left, or, after a failure, at the
// one it was claimed at. A rolled-back transaction left the table as it
// was, and the keys it added to the set only send those keys by upsert; a
// commit whose outcome is unknown (the connection lost at COMMIT) may have
// moved the checkpoint, and the next claim then finds the set untrusted.
func (w *writer) done(err error) {
	if w == nil || w.keys == nil {
		return
	}
	at := w.from
	if err == nil && w.setCheckpoint {
		at = w.checkpoint
	}
	w.b.fresh.release(w.ns, w.keys, at)
}

func (w *writer) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.tx == nil {
		return errors.New("writer used after its Update returned")
	}
	return nil
}

// Get sees the writes buffered in this transaction.
func (w *writer) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := w.usable(ctx); err != nil {
		return nil, false, err
	}
	if c, ok := w.pending[key]; ok {
		if c.del {
			return nil, false, nil
		}
		return []byte(c.value), true, nil
	}
	return w.reader.Get(ctx, key)
}

// Scan sends the buffered writes first, so that the database's order and
// paging apply to them too.
func (w *writer) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if err := w.flushWrites(ctx); err != nil {
		return err
	}
	return w.reader.Scan(ctx, prefix, after, fn)
}

// Put buffers a copy of value, which must be a JSON document. PostgreSQL
// checks that when the batch is sent (the column is json); checking here
// too would cost a fifth of the replay's client time, so a rejected batch
// is searched for the culprit only then (see send).
func (w *writer) Put(ctx context.Context, key string, value []byte) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if err := projections.CheckKey(key); err != nil {
		return err
	}
	w.pending[key] = change{value: string(value)}
	return nil
}

func (w *writer) Delete(ctx context.Context, key string) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if key == "" {
		return nil // no such key can exist
	}
	w.pending[key] = change{del: true}
	return nil
}

func (w *writer) SetCheckpoint(ctx context.Context, position uint64) error {
	if err := w.usable(ctx); err != nil {
		return err
	}
	if position > math.MaxInt64 {
		return fmt.Errorf("checkpoint %d beyond bigint", position)
	}
	w.checkpoint, w.setCheckpoint = int64(position), true
	return nil
}

// Bounds of one upsert statement: large enough that a replay batch is one
// statement, small enough that its arrays stay a few megabytes.
const (
	maxRowsPerStatement  = 5000
	maxBytesPerStatement = 8 << 20
)

// flush sends the buffered writes and the checkpoint: one batch, and a
// COPY of the keys the table cannot hold yet when there are enough of them.
func (w *writer) flush(ctx context.Context) error {
	var fresh []string
	if w.keys != nil && w.locked {
		fresh = w.newKeys()
	}
	copied := fresh
	if len(copied) < copyMinRows {
		copied = nil // not worth a COPY's round trips
	}
	batch := w.queueWrites(copied)
	if w.setCheckpoint {
		batch.Queue(`update `+w.b.meta("namespaces")+` set checkpoint = $2 where ns = $1`, w.ns, w.checkpoint)
		if w.notify {
			batch.Queue(`select pg_notify($1, $2)`, NotifyChannel, w.b.schema+" "+w.ns+" "+strconv.FormatInt(w.checkpoint, 10))
		}
	}
	if len(copied) > 0 {
		batch.Queue(`savepoint pgrm_copy`)
	}
	if err := w.send(ctx, batch); err != nil {
		return err
	}
	if len(copied) > 0 {
		if err := w.copyFresh(ctx, copied); err != nil {
			return err
		}
	}
	if w.keys != nil {
		for _, k := range fresh {
			w.keys.add(k)
		}
	}
	clear(w.pending)
	return nil
}

// flushWrites sends the buffered writes, without the checkpoint (a Scan
// within the transaction).
func (w *writer) flushWrites(ctx context.Context) error {
	if len(w.pending) == 0 {
		return nil
	}
	if err := w.send(ctx, w.queueWrites(nil)); err != nil {
		return err
	}
	if w.keys != nil {
		for k, c := range w.pending {
			if !c.del {
				w.keys.addNew(k)
			}
		}
	}
	clear(w.pending)
	return nil
}

// newKeys returns, in order, the buffered Puts' keys the key set has never
// seen.
func (w *writer) newKeys() []string {
	var keys []string
	for k, c := range w.pending {
		if !c.del && !w.keys.mayHold(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// copyFresh sends keys, each absent from the table by the key set, by COPY
// within the savepoint flush queued. A key found present anyway (another
// writer's Update that left the checkpoint alone) rolls the COPY back to
// the savepoint; the keys then go as upserts and the set is forgotten.
func (w *writer) copyFresh(ctx context.Context, keys []string) error {
	i := 0
	_, err := w.tx.CopyFrom(ctx, pgx.Identifier{w.b.schema, "rm_" + w.ns}, []string{"key", "value"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(keys) {
				return nil, nil
			}
			k := keys[i]
			i++
			return []any{k, w.pending[k].value}, nil
		}))
	if err == nil {
		w.b.copied.Add(int64(len(keys)))
		return nil
	}
	if !isCode(err, uniqueViolation) {
		return w.writeError(fmt.Errorf("copy %d new keys: %w", len(keys), err))
	}
	w.keys = nil
	w.b.refused.Add(1)
	// Alone, before the batch: pgx prepares a batch's statements first,
	// which the aborted transaction would refuse.
	if _, err := w.tx.Exec(ctx, `rollback to savepoint pgrm_copy`); err != nil {
		return fmt.Errorf("roll back the copy: %w", err)
	}
	batch := &pgx.Batch{}
	for len(keys) > 0 {
		n := w.queueUpsert(batch, keys)
		keys = keys[n:]
	}
	return w.send(ctx, batch)
}

// uniqueViolation is the SQLSTATE of a key already present.
const uniqueViolation = "23505"

func (w *writer) send(ctx context.Context, batch *pgx.Batch) error {
	if batch.Len() == 0 {
		return nil
	}
	if err := w.tx.SendBatch(ctx, batch).Close(); err != nil {
		return w.writeError(fmt.Errorf("write %d changes: %w", len(w.pending), err))
	}
	return nil
}

// writeError names what the database refused in a batch or COPY.
func (w *writer) writeError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "rm__checkpoint_forward" {
		return fmt.Errorf("%w: %s", projections.ErrCheckpointBackwards, pgErr.Message)
	}
	if isCode(err, "22P02", "22021") { // invalid json, invalid UTF-8
		for k, c := range w.pending {
			if !c.del && !json.Valid([]byte(c.value)) {
				return fmt.Errorf("value at %q is not a JSON document: %w", k, err)
			}
		}
	}
	return err
}

// queueWrites turns the buffer, but for the keys fresh (sorted) that go by
// COPY, into one delete and as few upserts as the bounds allow, keys in
// order so that the index is filled page by page.
func (w *writer) queueWrites(fresh []string) *pgx.Batch {
	batch := &pgx.Batch{}
	if len(w.pending) == 0 {
		return batch
	}
	keys := make([]string, 0, len(w.pending)-len(fresh))
	var dels []string
	for k, c := range w.pending {
		switch {
		case c.del:
			dels = append(dels, k)
		case len(fresh) == 0:
			keys = append(keys, k)
		default:
			if _, found := slices.BinarySearch(fresh, k); !found {
				keys = append(keys, k)
			}
		}
	}
	if len(dels) > 0 {
		batch.Queue(`delete from `+w.table+` where key = any($1::text[])`, dels)
	}
	slices.Sort(keys)
	for len(keys) > 0 {
		n := w.queueUpsert(batch, keys)
		keys = keys[n:]
	}
	return batch
}

// queueUpsert queues one upsert of the first keys (sorted) within the
// bounds, and returns how many it took.
func (w *writer) queueUpsert(batch *pgx.Batch, keys []string) int {
	n, size := 0, 0
	for n < len(keys) && n < maxRowsPerStatement && (n == 0 || size+len(w.pending[keys[n]].value) <= maxBytesPerStatement) {
		size += len(keys[n]) + len(w.pending[keys[n]].value)
		n++
	}
	vals := make([]string, n)
	for i, k := range keys[:n] {
		vals[i] = w.pending[k].value
	}
	batch.Queue(`insert into `+w.table+` (key, value)
		select k, v::json from unnest($1::text[], $2::text[]) as u(k, v)
		on conflict (key) do update set value = excluded.value`, keys[:n], vals)
	return n
}

// Forget implements projections.Forgetter in one transaction: the read
// model's view, pointer, served records and leases are deleted.
func (b *Backend) Forget(ctx context.Context, name string) (err error) {
	defer wrap(&err, "forget %s", name)
	if err := checkViewName(name); err != nil {
		return err
	}
	return b.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		batch.Queue(`drop view if exists ` + b.schema + `.` + name)
		batch.Queue(`delete from `+b.meta("active")+` where name = $1`, name)
		batch.Queue(`delete from `+b.meta("served")+` where name = $1`, name)
		batch.Queue(`delete from `+b.meta("leases")+` where name = any($1::text[])`,
			[]string{projections.LeaseName(name), projections.RebuildLeaseName(name)})
		return tx.SendBatch(ctx, batch).Close()
	})
}
