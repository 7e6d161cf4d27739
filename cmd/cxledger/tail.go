package main

import (
	"context"
	"net/url"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/eventstore"
)

func init() {
	register(command{name: "tail", short: "follow the global log live (catch-up first with --after)", flags: tailCommand})
}

func tailCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	after := fs.Int64("after", -1, "replay from after this global position, then follow live (default: only new events)")
	types := fs.String("types", "", "comma-separated event types to keep")
	asJSON := fs.Bool("json", false, "print one JSON record per line (NDJSON) instead of text")
	reader := fs.String("reader", "", "who reads, for the access log (default: the operating-system user)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("tail takes no arguments")
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		start := uint64(0)
		if *after >= 0 {
			start = uint64(*after)
		} else {
			head, err := e.store.Head(ctx)
			if err != nil {
				return err
			}
			start = head
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		// Every customer shown is in the access log, once per run.
		logged := url.Values{"after": {strconv.FormatUint(start, 10)}}
		if *types != "" {
			logged.Set("types", *types)
		}
		reads := cliReads(e, "tail", *reader, logged.Encode())
		e.log.Info("following the log", "after", start)
		return e.store.Subscribe(ctx, eventstore.SubscribeOptions{After: start, Filter: typeFilter(*types)},
			func(ctx context.Context, batch []eventstore.Record) error {
				// Its own access entries land in the log it follows: left out.
				batch, err := kr.RevealRecords(ctx, reads.Others(batch))
				if err != nil {
					return err
				}
				if err := recordShown(ctx, reads, batch); err != nil {
					return err
				}
				return printRecords(e.stdout, batch, *asJSON)
			})
	}
}
