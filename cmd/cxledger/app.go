package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/kurrent"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/boltrm"
	"github.com/cxledger/cxledger/projections/pgrm"
)

const usageHead = `cxledger — the event-sourced customer-interaction ledger

Usage:
  cxledger <command> [flags]

Commands:
`

const usageTail = `
Every command takes --data DIR (embedded store, default ./cxledger-data,
env CXLEDGER_DATA) or --store postgres://… (env CXLEDGER_STORE) with
--pg-schema NAME (default cxledger, env CXLEDGER_PG_SCHEMA).
Run 'cxledger <command> -h' for a command's flags.
`

// usage lists the registered commands.
func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.short)
	}
	b.WriteString(usageTail)
	return b.String()
}

// command is one subcommand: its flags are registered on fs, then run is
// called with the opened store.
type command struct {
	name  string
	short string
	flags func(fs *flag.FlagSet) func(ctx context.Context, env *env) error
}

// opensOwnStores names the commands that open the stores they need
// themselves (migrate): run does not open the one --data/--store selects
// for them, which could hold the very data file they are about to open.
var opensOwnStores = map[string]bool{}

// registerOwnStore registers a command that opens its own stores.
func registerOwnStore(c command) {
	opensOwnStores[c.name] = true
	register(c)
}

// env is what a command runs with.
type env struct {
	cfg    storeConfig
	store  eventstore.Store
	args   []string
	stdin  io.Reader
	stdout io.Writer
	log    *slog.Logger
}

// commands are the subcommands, registered by the file defining each one,
// kept in name order for the usage text.
var commands []command

func register(c command) {
	i, _ := slices.BinarySearchFunc(commands, c.name, func(a command, name string) int { return strings.Compare(a.name, name) })
	commands = slices.Insert(commands, i, c)
}

// run executes one command line and returns the process exit code: 0 on
// success, 1 when the command failed, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "cxledger: unknown command %q\n\n%s", args[0], usage())
		return 2
	}
	fs := flag.NewFlagSet("cxledger "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg storeConfig
	cfg.register(fs)
	runCmd := cmd.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var store eventstore.Store
	if !opensOwnStores[cmd.name] {
		s, err := openStore(ctx, cfg, log)
		if err != nil {
			fmt.Fprintf(stderr, "cxledger %s: %v\n", cmd.name, err)
			return 1
		}
		defer s.Close()
		store = s
	}
	e := &env{cfg: cfg, store: store, args: fs.Args(), stdin: stdin, stdout: stdout, log: log}
	if err := runCmd(ctx, e); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "cxledger %s: %v\n", cmd.name, err)
			return 2
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return 0 // interrupted: a normal way to stop tail
		}
		fmt.Fprintf(stderr, "cxledger %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// errUsage marks errors in how a command was called (exit code 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// openStore opens the backend the configuration selects.
func openStore(ctx context.Context, cfg storeConfig, log *slog.Logger) (eventstore.Store, error) {
	kind, path, err := cfg.parse()
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindPostgres:
		s, err := pgstore.Open(ctx, cfg.Store, pgstore.Options{Schema: cfg.Schema})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		log.Debug("store opened", "backend", "postgres")
		return s, nil
	case kindKurrent:
		s, err := kurrent.Open(ctx, cfg.Store, kurrent.Options{})
		if err != nil {
			return nil, fmt.Errorf("open KurrentDB store: %w", err)
		}
		log.Debug("store opened", "backend", "kurrentdb")
		return s, nil
	default:
		if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		s, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			return nil, fmt.Errorf("open embedded store: %w", err)
		}
		log.Debug("store opened", "backend", "embedded", "file", path)
		return s, nil
	}
}

// openReadModels opens the read-model backend beside the event store: a
// sibling file of the embedded store, or tables in the same PostgreSQL
// schema.
func openReadModels(ctx context.Context, cfg storeConfig) (projections.Backend, error) {
	kind, _, err := cfg.parse()
	if err != nil {
		return nil, err
	}
	if kind == kindPostgres {
		b, err := pgrm.Open(ctx, cfg.Store, pgrm.Options{Schema: cfg.Schema})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL read models: %w", err)
		}
		return b, nil
	}
	b, err := boltrm.Open(filepath.Join(cfg.Data, boltrm.FileName), boltrm.Options{})
	if err != nil {
		return nil, fmt.Errorf("open embedded read models: %w", err)
	}
	return b, nil
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("cxledger", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
