package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/google/uuid"
	"github.com/spf13/pflag"
)

func init() {
	register(command{name: "read", args: "ID | --all", short: "print a customer's stream, or the global log with --all", flags: readCommand})
}

func readCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	all := fs.Bool("all", false, "read the global log instead of one customer's stream")
	after := fs.Uint64("after", 0, "with --all: start after this global position")
	from := fs.Uint64("from", 0, "first stream version to read (default 0, or the last event with --backwards)")
	backwards := fs.Bool("backwards", false, "read the stream from the newest event back")
	limit := fs.Int("limit", 100, "maximum number of events (0: every event); when more follow, standard error says so")
	types := fs.String("types", "", "with --all: comma-separated event types to keep")
	asJSON := fs.Bool("json", false, "print one JSON record per line (NDJSON) instead of text")
	reader := fs.String("reader", "", "who reads, for the access log (default: the operating-system user)")
	return func(ctx context.Context, e *env) error {
		if *limit < 0 {
			return usageErr("--limit must be positive, or 0 for every event")
		}
		var page func(n int) ([]eventstore.Record, error)
		var next func(last eventstore.Record) bool
		var more string
		if *all {
			if len(e.args) > 0 {
				return usageErr("--all reads the global log: no customer argument")
			}
			opts := eventstore.ReadAllOptions{After: *after, Filter: typeFilter(*types)}
			page = func(n int) ([]eventstore.Record, error) {
				opts.Limit = n
				return e.store.ReadAll(ctx, opts)
			}
			next = func(last eventstore.Record) bool {
				opts.After = last.Position
				more = fmt.Sprintf("--after %d", last.Position)
				return true
			}
		} else {
			if len(e.args) != 1 {
				return usageErr("name one customer id (or use --all)")
			}
			customer, err := uuid.Parse(e.args[0])
			if err != nil {
				return usageErr("customer id: %v", err)
			}
			opts := eventstore.ReadStreamOptions{From: *from, Backwards: *backwards}
			if *backwards && !flagSet(fs, "from") {
				opts.From = eventstore.FromEnd
			}
			stream := domain.StreamID(customer)
			page = func(n int) ([]eventstore.Record, error) {
				opts.Limit = n
				return e.store.ReadStream(ctx, stream, opts)
			}
			next = func(last eventstore.Record) bool {
				if *backwards {
					if last.Version == 0 {
						return false
					}
					opts.From = last.Version - 1
				} else {
					opts.From = last.Version + 1
				}
				more = fmt.Sprintf("--from %d", opts.From)
				return true
			}
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		// Every customer shown is in the access log, once per run.
		resource, logged := "events", url.Values{}
		if *all {
			resource = "log"
			logged.Set("after", strconv.FormatUint(*after, 10))
			if *types != "" {
				logged.Set("types", *types)
			}
		} else {
			logged.Set("from", strconv.FormatUint(*from, 10))
			logged.Set("backwards", strconv.FormatBool(*backwards))
		}
		logged.Set("limit", strconv.Itoa(*limit))
		reads := cliReads(e, resource, *reader, logged.Encode())
		// Pages of at most DefaultReadLimit, printed as they come: --limit 0
		// reads a log of any length in bounded memory.
		printed := 0
		for *limit == 0 || printed < *limit {
			n := eventstore.DefaultReadLimit
			if *limit > 0 {
				n = min(n, *limit-printed)
			}
			recs, err := page(n)
			if err != nil {
				return err
			}
			// The entries this run's reading wrote are left out: the output
			// is the log as the command found it.
			shown := reads.Others(recs)
			if shown, err = kr.RevealRecords(ctx, shown); err != nil {
				return err
			}
			if err := recordShown(ctx, reads, shown); err != nil {
				return err
			}
			if err := printRecords(e.stdout, shown, *asJSON); err != nil {
				return err
			}
			printed += len(recs)
			if len(recs) < n || !next(recs[len(recs)-1]) {
				return nil
			}
		}
		// Stopped at --limit: say so when more events follow, on standard
		// error, so that the output itself stays the records.
		if rest, err := page(1); err == nil && len(rest) > 0 {
			fmt.Fprintf(e.stderr, "cxledger read: stopped at --limit %d; more events follow (continue with %s, or --limit 0 for every event)\n", *limit, more)
		}
		return nil
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
