package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/bench"
)

func init() {
	// bench opens only scratch stores of its own.
	register(command{name: "bench", short: "measure appends, replay, timeline reads and live latency against baselines, in scratch space", flags: benchCommand})
}

// defaultBenchPostgres is the server tried when neither --store nor
// CXLEDGER_STORE names one: the local development database.
const defaultBenchPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func benchCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	quick := fs.Bool("quick", false, "a tiny run for CI smoke tests (20,000 events, 0.5s cases)")
	events := fs.Int("events", 0, "events in the seeded log replayed and read (default 1,000,000; 20,000 with --quick)")
	customers := fs.Int("customers", 0, "customers in the seeded log, each with its whole history, up to --events in all (default: as many as --events needs, about 45 events each over two years; fewer customers get longer relationships, not busier ones, so that the log still reaches --events)")
	duration := fs.Duration("duration", 0, "duration of each append case (default 3s; 0.5s with --quick)")
	backends := fs.String("backends", "", "comma-separated: embedded,postgres (default both; postgres only when reachable unless --store names it)")
	jsonFile := fs.String("json", "", "also write the report as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of each backend's replay to this file, the backend inserted before the extension (cpu.prof → cpu.embedded.prof)")
	seedValue := fs.Uint64("seed", 1, "seed of the generated history")
	appendsOnly := fs.Bool("appends-only", false, "measure the append cases only, not the read side")
	processes := fs.Int("processes", 0, "also measure 16 single-event appenders on PostgreSQL from 1 process, then spread over this many processes on one schema")
	readCustomers := fs.String("read-customers", "", "comma-separated populations the read path is measured over (default 793,100000; 300 with --quick)")
	readsOnly := fs.Bool("reads-only", false, "measure only the read path (customer view, identifier lookup, full RFM list)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("bench takes no arguments")
		}
		cfg := bench.Config{}
		if *quick {
			cfg = bench.Quick()
		}
		if *events > 0 {
			cfg.Events = *events
		}
		if *customers < 0 {
			return usageErr("--customers %d: want a positive number", *customers)
		}
		cfg.Customers = *customers
		if *duration > 0 {
			cfg.Duration = *duration
		}
		if *backends != "" {
			cfg.Backends = strings.Split(*backends, ",")
		}
		if *readCustomers != "" {
			for _, f := range strings.Split(*readCustomers, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n <= 0 {
					return usageErr("--read-customers %q: want positive numbers, comma-separated", *readCustomers)
				}
				cfg.ReadCustomers = append(cfg.ReadCustomers, n)
			}
		}
		cfg.ReadsOnly = *readsOnly
		cfg.Seed, cfg.CPUProfile, cfg.Log = *seedValue, *cpuProfile, e.stdout
		cfg.AppendsOnly, cfg.Processes = *appendsOnly, *processes
		// The bench never writes the configured store: it makes its own
		// scratch schemas on the server --store names.
		cfg.PostgresURL, cfg.PostgresRequired = e.cfg.Store, e.cfg.Store != ""
		if cfg.PostgresURL == "" {
			cfg.PostgresURL = envOr("CXLEDGER_TEST_POSTGRES_URL", defaultBenchPostgres)
		}
		rep, err := bench.Run(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
		if err := bench.Print(e.stdout, rep); err != nil {
			return err
		}
		if *jsonFile != "" {
			data, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(*jsonFile, append(data, '\n'), 0o644); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		}
		return nil
	}
}
