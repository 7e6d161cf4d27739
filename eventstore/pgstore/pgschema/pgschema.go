// Package pgschema creates a PostgreSQL schema and runs embedded, versioned
// migrations into it, safely when several processes start at once. The
// event store (pgstore) and the read models (projections/pgrm) share a
// schema, each with its own migrations and version table.
package pgschema

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// Migrate creates schema if it is missing, then applies the migrations in
// fsys (tern's numbered files; {{.schema}} expands to the schema name),
// recording them in schema.versionTable.
//
// It works on a connection of its own, closed afterwards: tern holds a
// session-level advisory lock while it migrates, and a closed connection
// can never hand that lock, still held after an error, back to a pool.
func Migrate(ctx context.Context, cfg *pgx.ConnConfig, schema string, fsys fs.FS, versionTable string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	// CREATE SCHEMA IF NOT EXISTS is not safe against itself: two sessions
	// can both find the schema missing and one fails on the catalog's
	// unique index. A transaction-scoped advisory lock makes concurrent
	// starts (event store and read models, several processes) take turns.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "select pg_advisory_xact_lock($1)", lockKey(schema)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "create schema if not exists "+schema)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}

	m, err := migrate.NewMigrator(ctx, conn, schema+"."+versionTable)
	if err != nil {
		return fmt.Errorf("migration version table: %w", err)
	}
	m.Data["schema"] = schema
	if err := m.LoadMigrations(fsys); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// lockKey is the advisory lock serialising schema creation, distinct from
// every lock the stores take while running.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cxledger/schema/" + schema))
	return int64(h.Sum64())
}
