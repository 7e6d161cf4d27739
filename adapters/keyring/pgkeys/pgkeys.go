// Package pgkeys is the PostgreSQL key store of adapters/keyring: the
// wrapped customer data keys in the table cxledger_keys of the store's
// schema, created by a versioned migration of its own (version table
// cxledger_keyring_schema_version).
//
// The keys sit in the same database as the events, in their own table:
// separate from the events (exports, the log, the read models never carry
// them) but not from a backup of the whole database, which is why each
// key is wrapped with the master key from configuration, which the
// database never sees.
//
// # Destroying a key
//
// Destroy turns the row into a tombstone (wrapped set to null) in one
// UPDATE. PostgreSQL keeps the old row version until VACUUM removes it,
// and the write-ahead log keeps the insert until its segment is recycled:
// the wrapped key lingers there for a while. Without the master key it is
// useless; with it, it is what a backup taken before the erasure holds
// anyway. Let autovacuum run, and keep the master key out of the
// database's backups.
package pgkeys

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgschema"
)

// DefaultSchema is the schema used when Options.Schema is empty: the event
// store's default.
const DefaultSchema = "cxledger"

const versionTable = "cxledger_keyring_schema_version"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options configure a Backend. The zero value is valid.
type Options struct {
	// Schema holds the keyring's tables (created if missing); DefaultSchema
	// when empty. A lowercase identifier, as the event store's.
	Schema string
	// MaxConns caps the connection pool; 0: 4.
	MaxConns int32
}

var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Backend is a keyring.Backend on PostgreSQL, safe for concurrent use by
// several processes sharing the schema.
type Backend struct {
	pool   *pgxpool.Pool
	schema string
	closed atomic.Bool
}

var _ keyring.Backend = (*Backend)(nil)

// Open connects to the database named by connString and creates or
// migrates the keyring's tables in Options.Schema.
func Open(ctx context.Context, connString string, opts Options) (_ *Backend, err error) {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("pgkeys: open schema %s: %w", opts.Schema, err)
		}
	}()
	if !schemaPattern.MatchString(opts.Schema) || strings.HasPrefix(opts.Schema, "pg_") {
		return nil, fmt.Errorf("schema %q: want a lowercase identifier [a-z_][a-z0-9_]* of at most 63 bytes, not starting with pg_", opts.Schema)
	}
	if opts.MaxConns < 0 {
		return nil, fmt.Errorf("negative MaxConns %d", opts.MaxConns)
	}
	pcfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns = 4
	if opts.MaxConns > 0 {
		pcfg.MaxConns = opts.MaxConns
	}
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	if err := pgschema.Migrate(ctx, pcfg.ConnConfig, opts.Schema, sub, versionTable); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	return &Backend{pool: pool, schema: opts.Schema}, nil
}

// Schema returns the schema holding the keyring's tables.
func (b *Backend) Schema() string { return b.schema }

func (b *Backend) keys() string { return b.schema + ".cxledger_keys" }

func (b *Backend) check() error {
	if b.closed.Load() {
		return fmt.Errorf("pgkeys: %w", keyring.ErrClosed)
	}
	return nil
}

// Load implements keyring.Backend.
func (b *Backend) Load(ctx context.Context, customer uuid.UUID) (keyring.Entry, bool, error) {
	if err := b.check(); err != nil {
		return keyring.Entry{}, false, err
	}
	var e keyring.Entry
	var destroyed *time.Time
	err := b.pool.QueryRow(ctx, "select wrapped, destroyed_at from "+b.keys()+" where customer = $1", customer).Scan(&e.Wrapped, &destroyed)
	if errors.Is(err, pgx.ErrNoRows) {
		return keyring.Entry{}, false, nil
	}
	if err != nil {
		return keyring.Entry{}, false, fmt.Errorf("pgkeys: load: %w", err)
	}
	if destroyed != nil {
		e = keyring.Entry{DestroyedAt: destroyed.UTC()}
	}
	return e, true, nil
}

// Create implements keyring.Backend: an insert that does nothing when a
// row exists, then a read of the row — the winner's, when processes race.
func (b *Backend) Create(ctx context.Context, customer uuid.UUID, e keyring.Entry) (keyring.Entry, error) {
	if err := b.check(); err != nil {
		return keyring.Entry{}, err
	}
	if e.Destroyed() || len(e.Wrapped) == 0 {
		return keyring.Entry{}, errors.New("pgkeys: create: want a live key")
	}
	_, err := b.pool.Exec(ctx, "insert into "+b.keys()+" (customer, wrapped) values ($1, $2) on conflict (customer) do nothing", customer, e.Wrapped)
	if err != nil {
		return keyring.Entry{}, fmt.Errorf("pgkeys: create: %w", err)
	}
	stored, ok, err := b.Load(ctx, customer)
	if err != nil {
		return keyring.Entry{}, err
	}
	if !ok {
		return keyring.Entry{}, errors.New("pgkeys: create: the row vanished")
	}
	return stored, nil
}

// Destroy implements keyring.Backend: the row becomes a tombstone, or a
// tombstone is inserted when there is no row; a tombstone keeps its date.
func (b *Backend) Destroy(ctx context.Context, customer uuid.UUID, at time.Time) error {
	if err := b.check(); err != nil {
		return err
	}
	_, err := b.pool.Exec(ctx, "insert into "+b.keys()+" (customer, wrapped, destroyed_at) values ($1, null, $2) "+
		"on conflict (customer) do update set wrapped = null, destroyed_at = excluded.destroyed_at "+
		"where "+b.keys()+".destroyed_at is null", customer, at.UTC())
	if err != nil {
		return fmt.Errorf("pgkeys: destroy: %w", err)
	}
	return nil
}

// CheckValue implements keyring.Backend.
func (b *Backend) CheckValue(ctx context.Context, kcv []byte) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	meta := b.schema + ".cxledger_keyring_meta"
	if _, err := b.pool.Exec(ctx, "insert into "+meta+" (name, value) values ('kcv', $1) on conflict (name) do nothing", kcv); err != nil {
		return nil, fmt.Errorf("pgkeys: key check value: %w", err)
	}
	var stored []byte
	if err := b.pool.QueryRow(ctx, "select value from "+meta+" where name = 'kcv'").Scan(&stored); err != nil {
		return nil, fmt.Errorf("pgkeys: key check value: %w", err)
	}
	return stored, nil
}

// LoadCheckValue implements keyring.Backend.
func (b *Backend) LoadCheckValue(ctx context.Context) ([]byte, bool, error) {
	if err := b.check(); err != nil {
		return nil, false, err
	}
	var stored []byte
	err := b.pool.QueryRow(ctx, "select value from "+b.schema+".cxledger_keyring_meta where name = 'kcv'").Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("pgkeys: key check value: %w", err)
	}
	return stored, true, nil
}

// Close implements keyring.Backend.
func (b *Backend) Close() error {
	if !b.closed.Swap(true) {
		b.pool.Close()
	}
	return nil
}
