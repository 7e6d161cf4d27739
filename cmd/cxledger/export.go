package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/adapters/exporter"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "export", short: "export the global log (without the access log) or one customer as NDJSON or Parquet", flags: exportCommand})
}

func exportCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	format := fs.String("format", "ndjson", "ndjson (the record JSON that import reads back) or parquet (a flat table for analysts' tools)")
	customer := fs.String("customer", "", "export this customer's stream instead of the global log")
	after := fs.Uint64("after", 0, "global log: start after this position")
	types := fs.String("types", "", "comma-separated event types to keep")
	out := fs.String("out", "-", "output file ('-': standard output); written to a temporary file and renamed when complete")
	page := fs.Int("page", 1000, "events read from the store at a time")
	reader := fs.String("reader", "", "who reads, for the access log (default: the operating-system user)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("export takes no arguments (use --customer)")
		}
		if *page <= 0 {
			return usageErr("--page must be positive")
		}
		opts := exporter.Options{After: *after, Types: typeFilter(*types).Types, PageSize: *page}
		if *customer != "" {
			id, err := uuid.Parse(*customer)
			if err != nil {
				return usageErr("--customer: %v", err)
			}
			if *after != 0 {
				return usageErr("--after applies to the global log, not to --customer")
			}
			opts.Customer = id
		}
		newWriter := func(w io.Writer) (exporter.Writer, error) {
			switch *format {
			case "ndjson", "json":
				return exporter.NewNDJSON(w), nil
			case "parquet":
				return exporter.NewParquet(w), nil
			}
			return nil, usageErr("--format must be ndjson or parquet")
		}
		if _, err := newWriter(io.Discard); err != nil {
			return err
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		// Exports show personal data revealed, and erased for forgotten
		// customers: an export never carries a key's ciphertext out.
		opts.Reveal = kr
		// Every customer exported is in the access log, once per run,
		// before their events are written.
		logged := url.Values{"format": {*format}}
		if *customer != "" {
			logged.Set("customer", *customer)
		} else {
			logged.Set("after", strconv.FormatUint(*after, 10))
		}
		if *types != "" {
			logged.Set("types", *types)
		}
		reads := cliReads(e, "export", *reader, logged.Encode())
		inner := newWriter
		newWriter = func(w io.Writer) (exporter.Writer, error) {
			ew, err := inner(w)
			if err != nil {
				return nil, err
			}
			return loggedWriter{Writer: ew, ctx: ctx, reads: reads}, nil
		}
		if *out == "-" {
			w, _ := newWriter(e.stdout)
			n, err := exporter.Export(ctx, e.store, w, opts)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			e.log.Debug("exported", "events", n)
			return nil
		}
		return exportToFile(ctx, e, *out, newWriter, opts)
	}
}

// exportToFile writes the export next to its destination and renames it
// into place only when complete, so that a failed or interrupted export
// never leaves a truncated file an analyst might load.
func exportToFile(ctx context.Context, e *env, path string, newWriter func(io.Writer) (exporter.Writer, error), opts exporter.Options) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w, err := newWriter(tmp)
	if err != nil {
		return err
	}
	n, err := exporter.Export(ctx, e.store, w, opts)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file private (0600), and it stays so: an
	// export holds customers' personal data in plaintext; the operator
	// shares it deliberately.
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	e.log.Info("exported", "events", n, "file", path)
	return nil
}

// loggedWriter records the customers of each page in the access log
// before the page is written.
type loggedWriter struct {
	exporter.Writer
	ctx   context.Context
	reads *access.Reads
}

// The access log is left out, as from the analysts' feeds: it is the
// auditor's, holds no touchpoint, and import takes customer streams only
// (so an export restores into another ledger), and the entries this run
// writes would otherwise land in its own output.
func (w loggedWriter) Write(recs []eventstore.Record) error {
	recs = slices.DeleteFunc(slices.Clone(recs), func(r eventstore.Record) bool { return r.Type == access.Type })
	if len(recs) == 0 {
		return nil
	}
	if err := recordShown(w.ctx, w.reads, recs); err != nil {
		return err
	}
	return w.Writer.Write(recs)
}
