package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/boltkeys"
	"github.com/cxledger/cxledger/adapters/keyring/pgkeys"
	"github.com/cxledger/cxledger/adapters/migrate"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
)

func init() {
	register(command{
		name:  "migrate",
		short: "copy the whole ledger and its customers' keys to another store (resumable), then verify the copy",
		flags: migrateFlags,
	})
}

// migrateSummary is migrate's one line of JSON output.
type migrateSummary struct {
	Copied              int64       `json:"copied"`
	Skipped             int64       `json:"alreadyInTarget"`
	Verified            int64       `json:"verified"`
	Digest              string      `json:"digest"`
	RecordedAtPreserved bool        `json:"recordedAtPreserved"`
	Keys                keysSummary `json:"keys"`
}

// keysSummary is what migrate did with the customers' data keys.
type keysSummary struct {
	// NoSourceKeys: the source has no key store (a ledger from before
	// crypto-shredding): no key was copied.
	NoSourceKeys bool  `json:"noSourceKeys,omitempty"`
	Copied       int64 `json:"copied"`
	Tombstones   int64 `json:"tombstones"`
	Skipped      int64 `json:"alreadyInTarget"`
	WithoutKey   int64 `json:"customersWithoutKey"`
	Verified     int64 `json:"verified"`
}

func migrateFlags(fs *pflag.FlagSet) func(ctx context.Context, e *env) error {
	from := fs.String("from", "", "source store: a data directory (embedded), postgres://…, esdb://… or kurrentdb://…")
	to := fs.String("to", "", "target store, as --from")
	fromSchema := fs.String("from-pg-schema", pgstore.DefaultSchema, "PostgreSQL schema of the source")
	toSchema := fs.String("to-pg-schema", pgstore.DefaultSchema, "PostgreSQL schema of the target")
	fromData := fs.String("from-data", envOr("CXLEDGER_DATA", defaultDataDir), "KurrentDB source: data directory holding its key store ("+boltkeys.FileName+")")
	toData := fs.String("to-data", envOr("CXLEDGER_DATA", defaultDataDir), "KurrentDB target: data directory holding its key store ("+boltkeys.FileName+")")
	batch := fs.Int("batch", migrate.DefaultBatchSize, "events read and written at once")
	verify := fs.Bool("verify", true, "verify the copy event by event afterwards")
	return func(ctx context.Context, e *env) error {
		if *from == "" || *to == "" {
			return usageErr("--from and --to are required")
		}
		src, dst := storeSpec(*from, *fromSchema), storeSpec(*to, *toSchema)
		if src == dst {
			return usageErr("--from and --to name the same store")
		}
		if src.Data == "" {
			src.Data = *fromData
		}
		if dst.Data == "" {
			dst.Data = *toData
		}
		source, err := openStore(ctx, src, e.log)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		defer source.Close()
		target, err := openStore(ctx, dst, e.log)
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		defer target.Close()
		// The keys travel with the events: without them every sealed
		// personal value would be unreadable in the target.
		sourceKeys, err := openKeyStore(ctx, src, false)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		var keys *migrate.Keys
		if sourceKeys != nil {
			defer sourceKeys.Close()
			targetKeys, err := openKeyStore(ctx, dst, true)
			if err != nil {
				return fmt.Errorf("target: %w", err)
			}
			defer targetKeys.Close()
			keys = &migrate.Keys{Source: sourceKeys, Target: targetKeys}
		}

		opts := migrate.Options{BatchSize: *batch, Keys: keys, Progress: func(p migrate.Progress) {
			e.log.Info("migrate", "phase", p.Phase, "events", p.Done, "alreadyInTarget", p.Skipped,
				"position", p.Position, "sourceHead", p.Head, "eventsPerSecond", int64(p.Rate), "elapsed", p.Elapsed.Round(1e6))
		}}
		res, err := migrate.Copy(ctx, source, target, opts)
		if err != nil {
			return err
		}
		sum := migrateSummary{Copied: res.Copied, Skipped: res.Skipped, RecordedAtPreserved: res.Imported, Keys: keysSummary{
			NoSourceKeys: keys == nil || res.Keys.NoSourceKeys, Copied: res.Keys.Copied, Tombstones: res.Keys.Tombstones,
			Skipped: res.Keys.Skipped, WithoutKey: res.Keys.Missing,
		}}
		if sum.Keys.NoSourceKeys {
			e.log.Warn("the source has no key store: events copied without keys (a ledger from before crypto-shredding holds plaintext; if its key store lives elsewhere, its sealed values stay unreadable in the target)")
		}
		if !res.Imported {
			e.log.Warn("the target stamps RecordedAt with its own clock: the copy keeps ids, order, data and metadata, and verification leaves RecordedAt out")
		}
		if *verify {
			opts.IgnoreRecordedAt = !res.Imported
			v, err := migrate.Verify(ctx, source, target, opts)
			if err != nil {
				return err
			}
			sum.Verified, sum.Digest, sum.Keys.Verified = v.Count, hex.EncodeToString(v.Digest[:]), v.Keys
		}
		return json.NewEncoder(e.stdout).Encode(sum)
	}
}

// openKeyStore opens the key store beside a store, as openKeyring does:
// DATA/keys.db for the embedded store and KurrentDB, the cxledger_keys
// table of the PostgreSQL schema. Without create, a missing keys.db is
// not created: it returns nil (a source from before crypto-shredding).
// No master key is needed: wrapped keys are copied as they are, and the
// key check values tell whether both sides share one.
func openKeyStore(ctx context.Context, c storeConfig, create bool) (keyring.Backend, error) {
	kind, _, err := c.parse()
	if err != nil {
		return nil, err
	}
	if kind == kindPostgres {
		b, err := pgkeys.Open(ctx, c.Store, pgkeys.Options{Schema: c.Schema})
		if err != nil {
			return nil, fmt.Errorf("open key store: %w", err)
		}
		return b, nil
	}
	path := filepath.Join(c.Data, boltkeys.FileName)
	if !create {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	b, err := boltkeys.Open(path, boltkeys.Options{})
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	return b, nil
}

// storeSpec turns a --from/--to value into a store configuration: a URL
// selects its server, anything else is an embedded store's data directory.
func storeSpec(spec, schema string) storeConfig {
	spec = strings.TrimSpace(spec)
	if strings.Contains(spec, "://") {
		return storeConfig{Store: spec, Schema: schema}
	}
	return storeConfig{Data: spec, Schema: schema}
}

var _ eventstore.Importer = (*pgstore.Store)(nil) // migrate keeps RecordedAt on PostgreSQL
