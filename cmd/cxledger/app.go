package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/keyring/boltkeys"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/cxledger/cxledger/eventstore/kurrent"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/boltrm"
	"github.com/cxledger/cxledger/projections/pgrm"
)

const rootLong = `cxledger — the event-sourced customer-interaction ledger

Every command takes --data DIR (embedded store, default ./cxledger-data,
env CXLEDGER_DATA) or --store postgres://… (env CXLEDGER_STORE) with
--pg-schema NAME (default cxledger, env CXLEDGER_PG_SCHEMA). Flags may come
before or after a command's arguments. A command that fails creates
nothing: the store, its directory and the master key are made only by the
commands that write (append, seed, import, serve, migrate), once every flag
and argument is checked; the others refuse a ledger that does not exist.`

// command is one subcommand: its flags are registered on fs, then the
// function returned runs with the command's environment.
type command struct {
	name string
	// args is the synopsis of the positional arguments ("ID", "[NAME...]").
	args  string
	short string
	flags func(fs *pflag.FlagSet) func(ctx context.Context, env *env) error
	// subs are child commands (checkpoint keygen, rules list|test).
	subs []command
	// creates: the command may create the store (its directory, data
	// file and master key); the others refuse a store that does not
	// exist, so that a read on a mistyped --data creates nothing.
	creates bool
}

// env is what a command runs with. The store is opened by open, once the
// command has checked its flags and arguments.
type env struct {
	cfg     storeConfig
	store   eventstore.Store
	creates bool
	args    []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	log     *slog.Logger
}

// open opens the store --data/--store selects, once; run closes it.
func (e *env) open(ctx context.Context) error {
	if e.store != nil {
		return nil
	}
	// A master key configured wrong stops the command before anything
	// is opened (or created).
	if _, _, err := e.cfg.configuredMasterKey(); err != nil {
		return err
	}
	s, err := openStoreFor(ctx, e.cfg, e.log, e.creates)
	if err != nil {
		return err
	}
	e.store = s
	return nil
}

// commands are the subcommands, registered by the file defining each one,
// kept in name order.
var commands []command

func register(c command) {
	i, _ := slices.BinarySearchFunc(commands, c.name, func(a command, name string) int { return strings.Compare(a.name, name) })
	commands = slices.Insert(commands, i, c)
}

// errUsage marks errors in how a command was called (exit code 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// commandError is an error a command's own run returned, as opposed to one
// from parsing the command line (always a usage error).
type commandError struct{ err error }

func (c commandError) Error() string { return c.err.Error() }
func (c commandError) Unwrap() error { return c.err }

// newRoot builds the command tree for one run: flag defaults read the
// environment now, and every command writes to the given streams.
func newRoot(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) *cobra.Command {
	root := &cobra.Command{
		Use:           "cxledger",
		Short:         "the event-sourced customer-interaction ledger",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	var cfg storeConfig
	cfg.register(root.PersistentFlags())
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	for _, c := range commands {
		root.AddCommand(c.cobra(ctx, &cfg, stdin, stdout, stderr, log))
	}
	return root
}

// cobra turns c (and its children) into a cobra.Command.
func (c command) cobra(ctx context.Context, cfg *storeConfig, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) *cobra.Command {
	use := c.name
	if c.args != "" {
		use += " " + c.args
	}
	cc := &cobra.Command{Use: use, Short: c.short}
	if c.flags != nil {
		fn := c.flags(cc.Flags())
		cc.RunE = func(_ *cobra.Command, args []string) error {
			e := &env{cfg: *cfg, creates: c.creates, args: args, stdin: stdin, stdout: stdout, stderr: stderr, log: log}
			fresh := c.creates && !embeddedExists(e.cfg)
			err := fn(ctx, e)
			if e.store != nil {
				e.store.Close()
			}
			if err != nil {
				if fresh {
					removeEmptyStore(ctx, e.cfg, log)
				}
				return commandError{err}
			}
			return nil
		}
	}
	for _, s := range c.subs {
		cc.AddCommand(s.cobra(ctx, cfg, stdin, stdout, stderr, log))
	}
	return cc
}

// run executes one command line and returns the process exit code: 0 on
// success, 1 when the command failed, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root := newRoot(ctx, stdin, stdout, stderr, log)
	if len(args) == 0 {
		fmt.Fprint(stderr, root.UsageString())
		return 2
	}
	root.SetArgs(longFlags(root, args))
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	name := cmd.CommandPath()
	var ce commandError
	if !errors.As(err, &ce) || errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if !errors.As(err, &ce) {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", name)
		}
		return 2
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return 0 // interrupted: a normal way to stop tail
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// longFlags rewrites the single-dash long flags the standard flag package
// accepted (-data DIR, -limit=5) to their double-dash form, so that
// command lines written for the earlier CLI keep working: pflag would read
// them as a cluster of one-letter flags. A flag's value is left alone,
// whatever it looks like (--reason -data).
func longFlags(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	out := slices.Clone(args)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := cmd.Flag(name)
		if f == nil || len(name) < 2 {
			continue // unknown, or one-letter: pflag's to judge
		}
		if !strings.HasPrefix(a, "--") {
			out[i] = "-" + a
		}
		if !hasValue && f.NoOptDefVal == "" {
			i++ // the next argument is this flag's value, whatever it looks like
		}
	}
	return out
}

// flagSet reports whether the command line set flag name.
func flagSet(fs *pflag.FlagSet, name string) bool { return fs.Changed(name) }

// ErrNoLedger is returned when a command that only reads is pointed at an
// embedded store that does not exist: creating an empty one (directory,
// data file, master key) would hide the mistyped --data behind an empty
// answer and leave litter behind.
var ErrNoLedger = errors.New("no ledger here")

// openStore opens the backend the configuration selects, creating the
// embedded store when it does not exist.
func openStore(ctx context.Context, cfg storeConfig, log *slog.Logger) (eventstore.Store, error) {
	return openStoreFor(ctx, cfg, log, true)
}

// openStoreFor opens the backend the configuration selects; with create
// false, a missing embedded store is ErrNoLedger and nothing is created.
func openStoreFor(ctx context.Context, cfg storeConfig, log *slog.Logger, create bool) (eventstore.Store, error) {
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
		if !create {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %s does not exist (set --data or CXLEDGER_DATA to the ledger's directory; seed, import, append or serve create one)", ErrNoLedger, path)
			}
		}
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

// embeddedExists reports whether cfg selects the embedded store and its
// data directory exists (or selects another backend: nothing to create).
func embeddedExists(cfg storeConfig) bool {
	kind, _, err := cfg.parse()
	if err != nil || kind != kindEmbedded {
		return true
	}
	_, err = os.Stat(cfg.Data)
	return err == nil
}

// removeEmptyStore undoes the embedded store a failed command created in
// this run (its data directory did not exist before), when no event was
// written to it: the data file, the key store, the read models and the
// master key generated beside them protect nothing yet. Only those files
// and then the directory, if empty, are removed; a store holding events
// stays (an import that rejected some rows still wrote the others).
func removeEmptyStore(ctx context.Context, cfg storeConfig, log *slog.Logger) {
	kind, path, err := cfg.parse()
	if err != nil || kind != kindEmbedded {
		return
	}
	if _, err := os.Stat(path); err == nil {
		s, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			return
		}
		head, err := s.Head(ctx)
		s.Close()
		if err != nil || head != 0 {
			return
		}
	}
	for _, name := range []string{dataFileName, boltkeys.FileName, boltrm.FileName, masterKeyFileName} {
		if err := os.Remove(filepath.Join(cfg.Data, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("could not remove the empty store the failed command created", "file", name, "error", err)
			return
		}
	}
	_ = os.Remove(cfg.Data) // only if empty
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

// newFlagSet is a flag set for running one command's function directly
// (tests that share one open store between commands).
func newFlagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("cxledger", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
