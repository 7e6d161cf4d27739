package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/cxledger/cxledger/adapters/migrate"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
)

func init() {
	registerOwnStore(command{
		name:  "migrate",
		short: "copy the whole ledger to another store (resumable), then verify the copy",
		flags: migrateFlags,
	})
}

// migrateSummary is migrate's one line of JSON output.
type migrateSummary struct {
	Copied              int64  `json:"copied"`
	Skipped             int64  `json:"alreadyInTarget"`
	Verified            int64  `json:"verified"`
	Digest              string `json:"digest"`
	RecordedAtPreserved bool   `json:"recordedAtPreserved"`
}

func migrateFlags(fs *flag.FlagSet) func(ctx context.Context, e *env) error {
	from := fs.String("from", "", "source store: a data directory (embedded), postgres://…, esdb://… or kurrentdb://…")
	to := fs.String("to", "", "target store, as --from")
	fromSchema := fs.String("from-pg-schema", pgstore.DefaultSchema, "PostgreSQL schema of the source")
	toSchema := fs.String("to-pg-schema", pgstore.DefaultSchema, "PostgreSQL schema of the target")
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

		opts := migrate.Options{BatchSize: *batch, Progress: func(p migrate.Progress) {
			e.log.Info("migrate", "phase", p.Phase, "events", p.Done, "alreadyInTarget", p.Skipped,
				"position", p.Position, "sourceHead", p.Head, "eventsPerSecond", int64(p.Rate), "elapsed", p.Elapsed.Round(1e6))
		}}
		res, err := migrate.Copy(ctx, source, target, opts)
		if err != nil {
			return err
		}
		sum := migrateSummary{Copied: res.Copied, Skipped: res.Skipped, RecordedAtPreserved: res.Imported}
		if !res.Imported {
			e.log.Warn("the target stamps RecordedAt with its own clock: the copy keeps ids, order, data and metadata, and verification leaves RecordedAt out")
		}
		if *verify {
			opts.IgnoreRecordedAt = !res.Imported
			v, err := migrate.Verify(ctx, source, target, opts)
			if err != nil {
				return err
			}
			sum.Verified, sum.Digest = v.Count, hex.EncodeToString(v.Digest[:])
		}
		return json.NewEncoder(e.stdout).Encode(sum)
	}
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
