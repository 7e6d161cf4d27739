package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

func init() {
	register(command{name: "seed", short: "append a deterministic, realistic CRM history (demo, tests, benchmarks)", flags: seedCommand, creates: true})
}

func seedCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	customers := fs.Int("customers", 1000, "number of customers")
	seedValue := fs.Uint64("seed", 1, "random seed: the same seed gives byte-identical events")
	heavy := fs.Int("heavy", 0, "make customer 0 a key account with exactly this many events (0: none)")
	maxEvents := fs.Int("events", 0, "stop after this many events in total (0: no limit)")
	concurrency := fs.Int("concurrency", 8, "concurrent appenders")
	now := fs.String("now", "", "history ends just before this moment, two years after it starts (RFC 3339 or YYYY-MM-DD; default: the start of today, UTC, so that runs on one day give the same events)")
	reference := fs.String("reference", "", "the former name of --now")
	_ = fs.MarkDeprecated("reference", "use --now")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("seed takes no arguments")
		}
		if *now != "" && *reference != "" {
			return usageErr("--now and --reference name the same moment: give one")
		}
		ref, err := seedNow(cmp.Or(*now, *reference), time.Now())
		if err != nil {
			return err
		}
		cfg := seed.Config{Customers: *customers, Seed: *seedValue, HeavyEvents: *heavy, MaxEvents: *maxEvents, Concurrency: *concurrency, Reference: ref}
		if err := cfg.Validate(); err != nil || *concurrency <= 0 {
			return usageErr("%v", cmpErr(err, "--concurrency must be positive"))
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		sum, err := seed.Seed(ctx, sealingAppender{store: e.store, keys: kr}, cfg, func(p seed.Progress) {
			if !p.Done {
				fmt.Fprintf(e.stdout, "seeding: %d customers, %d events, %.0f events/s\n", p.Customers, p.Events, p.EventsPerSecond())
			}
		})
		if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
			return fmt.Errorf("%w; a ledger is seeded again only with the same --seed and --now (this run: --seed %d --now %s)", err, *seedValue, ref.Format(time.RFC3339))
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "seeded %d customers, %d events in %s (%.0f events/s)\n", sum.Customers, sum.Events, sum.Elapsed.Round(time.Millisecond), sum.EventsPerSecond())
		if sum.HeavyEvents > 0 {
			fmt.Fprintf(e.stdout, "key account: %s (%d events)\n", sum.Heavy, sum.HeavyEvents)
		}
		fmt.Fprintf(e.stdout, "sample customer: %s (try: cxledger replay && cxledger view %s)\n", sum.Sample, sum.Sample)
		return nil
	}
}

// seedNow is the end of the seeded history: flag (RFC 3339 or a date),
// or the start of the UTC day of clock. A day's start, not the moment, so
// that seeding twice on one day gives the same events (and a retry writes
// nothing).
func seedNow(flag string, clock time.Time) (time.Time, error) {
	if flag == "" {
		return clock.UTC().Truncate(24 * time.Hour), nil
	}
	t, err := cliTime("--now", flag)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// cmpErr returns err's message, or msg when err is nil.
func cmpErr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

// sealingAppender seals the personal data of the events it appends, as
// the ledger does: the seed writes to the store directly (its histories
// are valid by construction), and demo data must not be the one plaintext
// on disk.
type sealingAppender struct {
	store seed.Appender
	keys  *keyring.Keyring
}

// Append seals each event's data for the stream's customer, then appends.
func (a sealingAppender) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	customer, err := domain.ParseStreamID(stream)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	sealed := make([]eventstore.EventData, len(events))
	for i, ev := range events {
		if ev.Data, err = a.keys.Seal(ctx, customer, ev.Type, ev.Data); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("seal event %s: %w", ev.ID, err)
		}
		sealed[i] = ev
	}
	return a.store.Append(ctx, stream, expected, sealed...)
}
