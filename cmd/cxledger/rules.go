package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/rules"
)

func init() {
	register(command{
		name:  "rules",
		short: "declarative rules: 'rules list --file F' shows them, 'rules test --file F [--rule N] [--now T] CUSTOMER' dry-runs them on a customer's history",
		flags: rulesCommand,
		subs: []command{
			{name: "list", short: "show the rules of --file", flags: rulesListCommand},
			{name: "test", args: "CUSTOMER", short: "dry-run the rules of --file on a customer's history, printing what they would emit and when", flags: rulesTestCommand},
		},
	})
}

// rulesCommand is run only without a known subcommand: rules list and
// rules test are its children.
func rulesCommand(*pflag.FlagSet) func(context.Context, *env) error {
	return func(_ context.Context, e *env) error {
		if len(e.args) == 0 {
			return usageErr("rules needs list or test")
		}
		return usageErr("rules %q: want list or test", e.args[0])
	}
}

func rulesListCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	file := fs.String("file", "", "the rules file (JSON, see projections/rules)")
	return func(_ context.Context, e *env) error { return rulesList(e, *file, e.args) }
}

func rulesTestCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	file := fs.String("file", "", "the rules file (JSON, see projections/rules)")
	name := fs.String("rule", "", "only this rule")
	now := fs.String("now", "", "the dry run's now: timers due by then fire (RFC 3339 or YYYY-MM-DD; default the current time)")
	return func(ctx context.Context, e *env) error {
		return rulesTest(ctx, e, e.cfg, *file, *name, *now, e.args)
	}
}

// loadRules reads and parses a rules file; a bad file is a usage error.
func loadRules(file string) ([]rules.Rule, error) {
	if file == "" {
		return nil, usageErr("--file is required")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	rs, err := rules.Parse(data)
	if err != nil {
		return nil, usageErr("%s: %v", file, err)
	}
	return rs, nil
}

func rulesList(e *env, file string, args []string) error {
	if len(args) > 0 {
		return usageErr("rules list takes no arguments")
	}
	rs, err := loadRules(file)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tON\tWHEN\tAFTER\tCANCEL ON\tEMIT")
	for _, r := range rs {
		when := make([]string, len(r.When))
		for i, c := range r.When {
			when[i] = c.String()
		}
		cancel := strings.Join(r.CancelOn, ",")
		if r.Key != "" {
			cancel += " (by " + r.Key + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.On, orDash(strings.Join(when, " and ")), after(r.After), orDash(cancel), r.Emit.Type)
	}
	return w.Flush()
}

func after(d time.Duration) string {
	if d == 0 {
		return "now"
	}
	return d.String()
}

// rulesTest dry-runs rules on one customer's stream as stored: it opens no
// keyring and so reveals nothing (a rule's reactor sees the log sealed,
// exactly so).
func rulesTest(ctx context.Context, e *env, cfg storeConfig, file, name, nowFlag string, args []string) error {
	rs, err := loadRules(file)
	if err != nil {
		return err
	}
	if name != "" {
		var one []rules.Rule
		for _, r := range rs {
			if r.Name == name {
				one = append(one, r)
			}
		}
		if one == nil {
			return usageErr("--rule %q: no such rule in %s", name, file)
		}
		rs = one
	}
	if len(args) != 1 {
		return usageErr("rules test needs one customer id")
	}
	customer, err := uuid.Parse(args[0])
	if err != nil || customer == uuid.Nil {
		return usageErr("%q is not a customer id", args[0])
	}
	now := time.Now().UTC()
	if nowFlag != "" {
		if now, err = cliTime("--now", nowFlag); err != nil {
			return err
		}
	}
	store, err := openStoreFor(ctx, cfg, e.log, false)
	if err != nil {
		return err
	}
	defer store.Close()
	var history []domain.Envelope
	for from := uint64(0); ; {
		recs, err := store.ReadStream(ctx, domain.StreamID(customer), eventstore.ReadStreamOptions{From: from, Limit: 1000})
		if err != nil {
			return err
		}
		for _, r := range recs {
			env, err := projections.Envelope(r)
			if err != nil {
				return err
			}
			history = append(history, env)
		}
		if len(recs) < 1000 {
			break
		}
		from = recs[len(recs)-1].Version + 1
	}
	if len(history) == 0 {
		return fmt.Errorf("customer %s has no events", customer)
	}
	ems, err := rules.DryRun(rs, history, now)
	if err != nil {
		return err
	}
	if len(ems) == 0 {
		fmt.Fprintf(e.stdout, "no emissions for customer %s by %s\n", customer, now.Format(time.RFC3339))
		return nil
	}
	for _, em := range ems {
		state := "emitted"
		if !em.Fired {
			state = "scheduled"
		}
		fmt.Fprintf(e.stdout, "%s: trigger v%d %s at %s; %s at %s: ", em.Rule, em.Trigger.Version, em.Trigger.Type,
			em.Trigger.Metadata.OccurredAt.UTC().Format(time.RFC3339), state, em.Due.UTC().Format(time.RFC3339))
		if em.Event == nil {
			fmt.Fprintf(e.stdout, "skipped: %s\n", em.Skipped)
			continue
		}
		typ, _, data, err := domain.Encode(em.Event)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s %s\n", typ, data)
	}
	return nil
}
