package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/script"
	"github.com/google/uuid"
	"github.com/spf13/pflag"
)

// withReadModels runs fn with the read-model backend open.
func withReadModels(ctx context.Context, e *env, fn func(projections.Backend) error) error {
	b, err := openReadModels(ctx, e.cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	return fn(b)
}

func init() {
	register(command{name: "project", short: "keep every read model current (catch up, then live) until interrupted", flags: projectCommand})
}

func projectCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	every := fs.Duration("status-every", 10*time.Second, "how often to log each read model's lag (0: never)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("project takes no arguments")
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		deps, err := catalogDeps(kr)
		if err != nil {
			return err
		}
		all := catalog.All(deps)
		return withReadModels(ctx, e, func(b projections.Backend) error {
			eng, err := projections.NewEngine(e.store, b, projections.Config{Logger: e.log})
			if err != nil {
				return err
			}
			for _, p := range all {
				if err := eng.Register(p); err != nil {
					return err
				}
			}
			if *every > 0 {
				go logStatus(ctx, eng, e, *every)
			}
			m, err := analyst.New(analyst.Config{Backend: b, Engine: eng, Compile: analyst.ScriptCompiler(script.Limits{}), Logger: e.log})
			if err != nil {
				return err
			}
			go m.Run(ctx) // analysts' projections too
			e.log.Info("projecting the log into the read models", "read_models", len(all))
			defer startAnalyticsFitter(ctx, b, projections.LeaseConfig{Owner: eng.Owner()}, e.log)()
			return eng.Run(ctx)
		})
	}
}

func logStatus(ctx context.Context, eng *projections.Engine, e *env, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, st := range eng.Status() {
				e.log.Info("read model", "name", st.Name, "state", st.State, "checkpoint", st.Checkpoint, "lag", st.Lag, "error", st.Error)
			}
		}
	}
}

func init() {
	register(command{name: "replay", args: "[NAME...]", short: "rebuild read models from position 0 beside the live ones, then switch", flags: replayCommand})
}

func replayCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	batch := fs.Int("batch", 0, "events per read-model transaction (default 8192)")
	return func(ctx context.Context, e *env) error {
		if _, unknown := catalog.Select(catalog.Deps{}, e.args...); len(unknown) > 0 {
			return usageErr("unknown read model %s (have %s)", strings.Join(unknown, ", "), names(catalog.All(catalog.Deps{})))
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		deps, err := catalogDeps(kr)
		if err != nil {
			return err
		}
		ps, _ := catalog.Select(deps, e.args...)
		return withReadModels(ctx, e, func(b projections.Backend) error {
			start := time.Now()
			progress := func(p projections.Progress) {
				pct := 100.0
				if p.Head > 0 {
					pct = 100 * float64(p.Position) / float64(p.Head)
				}
				state := fmt.Sprintf("ETA %s", p.ETA.Round(time.Second))
				if p.Done {
					state = "done, now serving reads"
				}
				fmt.Fprintf(e.stdout, "%-22s %5.1f%%  position %d/%d  %.0f events/s  %s\n",
					p.Projection, pct, p.Position, p.Head, p.EventsPerSecond, state)
			}
			err := projections.Replay(ctx, e.store, b, ps, projections.Config{BatchSize: *batch, Logger: e.log}, progress)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "rebuilt %d read model(s) in %s\n", len(ps), time.Since(start).Round(time.Millisecond))
			return refitAnalytics(ctx, b, ps, e.stdout)
		})
	}
}

func init() {
	register(command{name: "status", args: "[NAME...]", short: "each read model's namespace, checkpoint, lag and state digest", flags: statusCommand})
}

func statusCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	digest := fs.Bool("digest", true, "compute each read model's state digest (SHA-256 over its contents)")
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, e *env) error {
		// Names and types only: the status reads the types of the events
		// after the checkpoints, never their data, and opens no key.
		var builtin, mine []string
		for _, a := range e.args {
			if strings.HasPrefix(a, analyst.Prefix) {
				mine = append(mine, a)
			} else {
				builtin = append(builtin, a)
			}
		}
		ps, unknown := catalog.Select(catalog.Deps{}, builtin...)
		if len(builtin) == 0 && len(mine) > 0 {
			ps = nil
		}
		if len(unknown) > 0 {
			return usageErr("unknown read model %s", strings.Join(unknown, ", "))
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		head, err := e.store.Head(ctx)
		if err != nil {
			return err
		}
		type row struct {
			Name       string `json:"name"`
			Namespace  string `json:"namespace"`
			Checkpoint uint64 `json:"checkpoint"`
			Head       uint64 `json:"head"`
			Lag        uint64 `json:"lag"`
			Digest     string `json:"digest,omitempty"`
			// Owner and Epoch: the process holding the read model's lease
			// ("" when none runs it); Rebuild: who builds a new generation.
			Owner   string `json:"owner,omitempty"`
			Epoch   int64  `json:"epoch,omitempty"`
			Rebuild string `json:"rebuild,omitempty"`
			// Analyst is an analyst projection's definition (no source):
			// version, digest of the script, who and when, its failure.
			Analyst *analyst.Definition `json:"analyst,omitempty"`
		}
		var rows, analystRows []row
		err = withReadModels(ctx, e, func(b projections.Backend) error {
			leases, err := b.ListLeases(ctx)
			if err != nil {
				return err
			}
			held := map[string]projections.LeaseInfo{}
			for _, li := range leases {
				if li.Held {
					held[li.Name] = li
				}
			}
			for _, p := range ps {
				r := row{Name: p.Name(), Head: head}
				if li, ok := held[projections.LeaseName(p.Name())]; ok {
					r.Owner, r.Epoch = li.Owner, li.Epoch
				}
				if li, ok := held[projections.RebuildLeaseName(p.Name())]; ok {
					r.Rebuild = li.Owner
				}
				ns, err := b.Active(ctx, p.Name())
				if err != nil {
					return err
				}
				r.Namespace = ns
				if ns != "" {
					if r.Checkpoint, err = b.Checkpoint(ctx, ns); err != nil {
						return err
					}
					if *digest {
						if r.Digest, err = projections.Digest(ctx, b, p.Name()); err != nil {
							return err
						}
					}
				}
				if head > r.Checkpoint {
					r.Lag = head - r.Checkpoint
				}
				rows = append(rows, r)
			}
			// The analysts' projections, beside (their lag counts every
			// record after the checkpoint).
			if len(builtin) > 0 && len(mine) == 0 {
				return nil
			}
			defs, err := analyst.Definitions(ctx, b)
			if err != nil {
				return err
			}
			for _, d := range defs {
				if len(mine) > 0 && !slices.Contains(mine, d.Name) {
					continue
				}
				d.Source = ""
				r := row{Name: d.Name, Head: head, Analyst: &d}
				if li, ok := held[projections.LeaseName(d.Name)]; ok {
					r.Owner, r.Epoch = li.Owner, li.Epoch
				}
				if r.Namespace, err = b.Active(ctx, d.Name); err != nil {
					return err
				}
				if r.Namespace != "" {
					if r.Checkpoint, err = b.Checkpoint(ctx, r.Namespace); err != nil {
						return err
					}
					if *digest {
						if r.Digest, err = projections.Digest(ctx, b, d.Name); err != nil {
							return err
						}
					}
				}
				r.Lag = head - min(head, r.Checkpoint)
				analystRows = append(analystRows, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The lag of a built read model is the events after its
		// checkpoint that it folds: records no read model reads (the
		// access log that an offline view or timeline appends) are passed
		// over by the engine when it next runs, and are no lag.
		var built []int
		var after []uint64
		var handles []func(string) bool
		for i, r := range rows {
			if r.Namespace != "" && r.Lag > 0 {
				built = append(built, i)
				after = append(after, r.Checkpoint)
				handles = append(handles, projections.Handles(ps[i]))
			}
		}
		if len(built) > 0 {
			lags, err := pendingEvents(ctx, e.store, head, after, handles)
			if err != nil {
				return err
			}
			for j, i := range built {
				rows[i].Lag = lags[j]
			}
		}
		rows = append(rows, analystRows...)
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "READ MODEL\tNAMESPACE\tCHECKPOINT\tHEAD\tLAG\tOWNER\tDIGEST")
		for _, r := range rows {
			ns := r.Namespace
			if ns == "" {
				ns = "(not built: run cxledger replay)"
			}
			owner := "-"
			if r.Owner != "" {
				owner = fmt.Sprintf("%s (epoch %d)", r.Owner, r.Epoch)
			}
			if r.Rebuild != "" {
				owner += "; rebuilding: " + r.Rebuild
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Name, ns, r.Checkpoint, r.Head, r.Lag, owner, r.Digest)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, r := range rows {
			if a := r.Analyst; a != nil {
				fmt.Fprintf(e.stdout, "%s: analyst projection version %d, script sha256 %s, updated %s by %s\n", r.Name, a.Version, a.Digest, a.UpdatedAt.Format(time.RFC3339), a.UpdatedBy)
				if f := a.Failure; f != nil {
					fmt.Fprintf(e.stdout, "%s: FAILED at position %d (event %s, %s): %s\n", r.Name, f.Position, f.EventID, f.EventType, f.Message)
					if f.Stack != "" {
						fmt.Fprintf(e.stdout, "%s\n", indent(f.Stack, "    "))
					}
				}
			}
		}
		return nil
	}
}

func init() {
	register(command{name: "view", args: "ID | --identifier KIND:VALUE", short: "a customer's unified view (by id, or --identifier email:ana@example.com); --as-of DATE: as of a past moment", flags: viewCommand})
}

func viewCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	ident := fs.String("identifier", "", "find the customer by identifier: email:…, phone:…, or external:system:id")
	asOf := fs.String("as-of", "", "the view as of this moment (RFC 3339 or YYYY-MM-DD), folded from the log")
	basis := fs.String("basis", "recorded", "with --as-of: recorded (what the ledger knew then) or occurred (what had happened by then)")
	score := fs.Bool("score", false, "with --as-of: also rank the customer against every customer as of then (folds the whole log)")
	reader := fs.String("reader", "", "who reads, for the access log (default: the operating-system user)")
	return func(ctx context.Context, e *env) error {
		if (*ident == "") == (len(e.args) == 0) || len(e.args) > 1 {
			return usageErr("name one customer id, or --identifier kind:value")
		}
		at, err := cliTime("--as-of", *asOf)
		if err != nil {
			return err
		}
		clock, err := query.ParseBasis(*basis)
		if err != nil {
			return usageErr("--basis %q: want recorded or occurred", *basis)
		}
		if _, _, ok := strings.Cut(*ident, ":"); *ident != "" && !ok {
			return usageErr("--identifier wants kind:value, e.g. email:ana@example.com")
		}
		if len(e.args) == 1 {
			if _, err := uuid.Parse(e.args[0]); err != nil {
				return usageErr("customer id: %v", err)
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
		return withReadModels(ctx, e, func(b projections.Backend) error {
			q := query.New(b)
			q.Keys = kr
			q.Log = e.store
			var id uuid.UUID
			var err error
			if *ident != "" {
				kind, value, ok := strings.Cut(*ident, ":")
				if !ok {
					return usageErr("--identifier wants kind:value, e.g. email:ana@example.com")
				}
				if id, err = q.Lookup(ctx, domain.IdentifierKind(kind), value); err != nil {
					return err
				}
			} else if id, err = uuid.Parse(e.args[0]); err != nil {
				return usageErr("customer id: %v", err)
			}
			var v any
			resource, logged := "view", url.Values{}
			if *ident != "" {
				kind, _, _ := strings.Cut(*ident, ":")
				logged.Set("identifier", kind+":…") // the value is personal data
			}
			if at.IsZero() {
				v, err = q.Customer(ctx, id)
				if me, ok := errors.AsType[*query.MergedError](err); ok {
					e.log.Info("customer merged: showing the survivor", "customer", id, "survivor", me.Survivor)
					v, err = q.Customer(ctx, me.Survivor)
				}
			} else {
				h := query.NewHistory(e.store)
				h.Keys = kr
				v, err = h.Customer(ctx, id, query.AsOf{At: at, Basis: clock}, *score)
				resource = "view-as-of"
				logged.Set("at", at.UTC().Format(time.RFC3339Nano))
				logged.Set("basis", string(clock))
			}
			if errors.Is(err, projections.ErrNotActive) {
				return fmt.Errorf("%w: run 'cxledger replay' or 'cxledger project' first", err)
			}
			if err != nil {
				return err
			}
			if err := recordCLIRead(ctx, e, id, resource, *reader, logged.Encode()); err != nil {
				return err
			}
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		})
	}
}

// statusScanLimit bounds the events status reads to count lags: beyond
// it, every position counts (the lag is then an upper bound).
const statusScanLimit = 100_000

// pendingEvents counts, for each read model (its checkpoint after[i] and
// its handles[i]), the events up to head after its checkpoint that it
// folds. It reads the log once from the smallest checkpoint, at most
// statusScanLimit events; positions beyond them all count.
func pendingEvents(ctx context.Context, store eventstore.Store, head uint64, after []uint64, handles []func(string) bool) ([]uint64, error) {
	lags := make([]uint64, len(after))
	pos := slices.Min(after)
	for read := 0; pos < head && read < statusScanLimit; {
		recs, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: pos, Limit: min(eventstore.DefaultReadLimit, statusScanLimit-read)})
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			pos = head
			break
		}
		for _, r := range recs {
			if r.Position > head {
				break
			}
			for i, cp := range after {
				if r.Position > cp && handles[i](r.Type) {
					lags[i]++
				}
			}
		}
		read += len(recs)
		pos = recs[len(recs)-1].Position
	}
	for i, cp := range after {
		if head > max(pos, cp) {
			lags[i] += head - max(pos, cp) // not read: counted whatever it is
		}
	}
	return lags, nil
}

// catalogDeps are the read models' dependencies on the keyring: the
// identity index opens and blinds identifiers with it.
func catalogDeps(kr *keyring.Keyring) (catalog.Deps, error) {
	d := catalog.Deps{Identifiers: kr}
	if v := os.Getenv(envAttributionWindow); v != "" {
		w, err := time.ParseDuration(v)
		if err != nil {
			return catalog.Deps{}, usageErr("%s=%q: want a duration such as 168h", envAttributionWindow, v)
		}
		d.Attribution.Window = w
		if err := d.Attribution.Validate(); err != nil {
			return catalog.Deps{}, usageErr("%s: %v", envAttributionWindow, err)
		}
	}
	return d, nil
}

// envAttributionWindow sets the campaign attribution window of every
// command that builds the read models (they must agree: the attribution
// read model refuses to continue under another window, and asks for a
// rebuild).
const envAttributionWindow = "CXLEDGER_ATTRIBUTION_WINDOW"

func names(ps []projections.Projection) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name())
	}
	return strings.Join(s, ", ")
}

// indent prefixes every line of s.
func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
