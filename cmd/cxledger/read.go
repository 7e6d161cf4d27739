package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
)

func init() {
	register(command{"read", "print a customer's stream, or the global log with --all", readCommand})
}

func readCommand(fs *flag.FlagSet) func(context.Context, *env) error {
	all := fs.Bool("all", false, "read the global log instead of one customer's stream")
	after := fs.Uint64("after", 0, "with --all: start after this global position")
	from := fs.Uint64("from", 0, "first stream version to read (default 0, or the last event with --backwards)")
	backwards := fs.Bool("backwards", false, "read the stream from the newest event back")
	limit := fs.Int("limit", 100, "maximum number of events")
	types := fs.String("types", "", "with --all: comma-separated event types to keep")
	asJSON := fs.Bool("json", false, "print one JSON record per line (NDJSON) instead of text")
	return func(ctx context.Context, e *env) error {
		if *limit <= 0 {
			return usageErr("--limit must be positive")
		}
		var recs []eventstore.Record
		var err error
		if *all {
			if len(e.args) > 0 {
				return usageErr("--all reads the global log: no customer argument")
			}
			recs, err = e.store.ReadAll(ctx, eventstore.ReadAllOptions{After: *after, Limit: *limit, Filter: typeFilter(*types)})
		} else {
			if len(e.args) != 1 {
				return usageErr("name one customer id (or use --all)")
			}
			customer, perr := uuid.Parse(e.args[0])
			if perr != nil {
				return usageErr("customer id: %v", perr)
			}
			opts := eventstore.ReadStreamOptions{From: *from, Backwards: *backwards, Limit: *limit}
			if *backwards && !flagSet(fs, "from") {
				opts.From = eventstore.FromEnd
			}
			recs, err = e.store.ReadStream(ctx, domain.StreamID(customer), opts)
		}
		if err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		if recs, err = kr.RevealRecords(ctx, recs); err != nil {
			return err
		}
		return printRecords(e.stdout, recs, *asJSON)
	}
}

func typeFilter(s string) eventstore.Filter {
	var f eventstore.Filter
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			f.Types = append(f.Types, t)
		}
	}
	return f
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// printRecords writes records as NDJSON, or as one readable line each:
// position, stream version, occurred-at, type, actor, channel, payload.
func printRecords(w io.Writer, recs []eventstore.Record, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false) // data stays byte for byte
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range recs {
		m := r.Metadata
		if _, err := fmt.Fprintf(w, "#%d %s v%d %s %s by %s via %s %s\n", r.Position, r.Stream, r.Version,
			m.OccurredAt.Format("2006-01-02T15:04:05Z07:00"), r.Type, orDash(m.Actor), orDash(m.Channel), r.Data); err != nil {
			return err
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readAllLimited reads r up to max bytes, failing beyond.
func readAllLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("standard input is larger than %d bytes", max)
	}
	return b, nil
}
