package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/client"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/script"
)

// Analyst projections (JavaScript) and one-time queries. With --server (or
// CXLEDGER_SERVER) a command talks to a running server's API with --token
// (or CXLEDGER_TOKEN); otherwise it acts on the store directly — the only
// way for the embedded store while no server runs, as bbolt lets one
// process at a time open it.

func init() {
	register(command{
		name:  "projections",
		short: "analysts' JavaScript projections: create, update, delete, list, state, export",
		flags: projectionsCommand,
		subs: []command{
			{name: "create", args: "NAME", short: "define a projection from --file, replay it from position 0 (progress on stderr), then keep it live", flags: projCreateCommand, creates: true},
			{name: "update", args: "NAME", short: "a new version from --file, built beside the current one and switched over once caught up", flags: projUpdateCommand},
			{name: "delete", args: "NAME", short: "delete a projection and everything it left", flags: projDeleteCommand},
			{name: "list", short: "the analyst projections, their versions, digests and failures", flags: projListCommand},
			{name: "state", args: "NAME", short: "print a projection's state (--partition K: one partition's; partitioned: every partition)", flags: projStateCommand},
			{name: "export", args: "NAME", short: "write a partitioned projection's states as CSV or Parquet (--format), for a spreadsheet or DuckDB", flags: projExportCommand},
		},
	})
	register(command{name: "query", short: "run a projection script (--file) once over the log and print its result; changes nothing", flags: queryCommand})
}

func projectionsCommand(*pflag.FlagSet) func(context.Context, *env) error {
	return func(_ context.Context, e *env) error {
		if len(e.args) == 0 {
			return usageErr("projections needs create, update, delete, list, state or export")
		}
		return usageErr("projections %q: want create, update, delete, list, state or export", e.args[0])
	}
}

// remote holds the --server and --token flags.
type remote struct{ server, token *string }

func remoteFlags(fs *pflag.FlagSet) remote {
	return remote{
		server: fs.String("server", os.Getenv("CXLEDGER_SERVER"), "URL of a running cxledger server to act through (env CXLEDGER_SERVER); without it the command opens the store itself"),
		token:  fs.String("token", os.Getenv("CXLEDGER_TOKEN"), "API token (analyst or admin) for --server (env CXLEDGER_TOKEN)"),
	}
}

func (r remote) client() *client.Client {
	if *r.server == "" {
		return nil
	}
	return client.New(strings.TrimRight(*r.server, "/"), *r.token)
}

// local is the store opened by the command itself: the read models, the
// keyring and an engine running only the analyst projections.
type local struct {
	b   projections.Backend
	kr  *keyring.Keyring
	eng *projections.Engine
	m   *analyst.Manager
}

func openLocal(ctx context.Context, e *env) (*local, func(), error) {
	if err := e.open(ctx); err != nil {
		return nil, nil, err
	}
	kr, err := openKeyring(ctx, e.cfg, e.log)
	if err != nil {
		return nil, nil, err
	}
	b, err := openReadModels(ctx, e.cfg)
	if err != nil {
		kr.Close()
		return nil, nil, err
	}
	eng, err := projections.NewEngine(e.store, b, projections.Config{Logger: e.log})
	if err != nil {
		b.Close()
		kr.Close()
		return nil, nil, err
	}
	m, err := analyst.New(analyst.Config{Backend: b, Engine: eng, Compile: analyst.ScriptCompiler(script.Limits{}), Logger: e.log})
	if err != nil {
		b.Close()
		kr.Close()
		return nil, nil, err
	}
	return &local{b: b, kr: kr, eng: eng, m: m}, func() { b.Close(); kr.Close() }, nil
}

// build runs the local engine until version of name serves reads at the
// head, drawing progress on stderr.
func (l *local) build(ctx context.Context, e *env, def analyst.Definition) error {
	head, err := e.store.Head(ctx)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = l.eng.Run(runCtx) }()
	defer func() { stop(); <-done }()
	bar := newBar(e.stderr)
	err = l.m.Wait(ctx, def.Name, def.Version, head, 200*time.Millisecond, bar.analyst)
	bar.end()
	return err
}

func projDefine(update bool) func(fs *pflag.FlagSet) func(context.Context, *env) error {
	return func(fs *pflag.FlagSet) func(context.Context, *env) error {
		file := fs.String("file", "", "the projection's JavaScript (KurrentDB syntax, see docs/js-projections.md); - reads stdin")
		rem := remoteFlags(fs)
		return func(ctx context.Context, e *env) error {
			if len(e.args) != 1 {
				return usageErr("want one NAME")
			}
			src, err := readScript(e, *file)
			if err != nil {
				return err
			}
			by := "operator:" + osUser()
			var def analyst.Definition
			if c := rem.client(); c != nil {
				bar := newBar(e.stderr)
				def, err = c.DefineProjection(ctx, e.args[0], src, update, bar.analyst)
				bar.end()
				if err != nil {
					return describe(err)
				}
			} else {
				l, closeAll, err := openLocal(ctx, e)
				if err != nil {
					return err
				}
				defer closeAll()
				if update {
					def, err = l.m.Update(ctx, e.args[0], src, by)
				} else {
					def, err = l.m.Create(ctx, e.args[0], src, by)
				}
				if err != nil {
					return describe(err)
				}
				if err := l.build(ctx, e, def); err != nil {
					return describe(err)
				}
			}
			fmt.Fprintf(e.stdout, "%s version %d (digest %s) serves reads\n", def.Name, def.Version, def.Digest[:12])
			return nil
		}
	}
}

var (
	projCreateCommand = projDefine(false)
	projUpdateCommand = projDefine(true)
)

func projDeleteCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	rem := remoteFlags(fs)
	return func(ctx context.Context, e *env) error {
		if len(e.args) != 1 {
			return usageErr("want one NAME")
		}
		if c := rem.client(); c != nil {
			if err := c.DeleteProjection(ctx, e.args[0]); err != nil {
				return describe(err)
			}
		} else {
			l, closeAll, err := openLocal(ctx, e)
			if err != nil {
				return err
			}
			defer closeAll()
			if err := l.m.Delete(ctx, e.args[0], "operator:"+osUser()); err != nil {
				return describe(err)
			}
		}
		name, _ := analyst.Canonical(e.args[0])
		fmt.Fprintf(e.stdout, "deleted %s\n", name)
		return nil
	}
}

func projListCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	rem := remoteFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, e *env) error {
		var defs []analyst.Definition
		if c := rem.client(); c != nil {
			list, err := c.Projections(ctx)
			if err != nil {
				return err
			}
			for _, p := range list {
				if p.Analyst != nil {
					defs = append(defs, *p.Analyst)
				}
			}
		} else {
			if err := e.open(ctx); err != nil {
				return err
			}
			err := withReadModels(ctx, e, func(b projections.Backend) error {
				var err error
				defs, err = analyst.Definitions(ctx, b)
				return err
			})
			if err != nil {
				return err
			}
		}
		if *asJSON {
			for i := range defs {
				defs[i].Source = ""
			}
			return json.NewEncoder(e.stdout).Encode(defs)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROJECTION\tVERSION\tPARTITIONED\tDIGEST\tUPDATED\tFAILURE")
		for _, d := range defs {
			fail := "-"
			if d.Failure != nil {
				fail = fmt.Sprintf("stopped at %d: %s", d.Failure.Position, firstLine(d.Failure.Message))
			}
			fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%s by %s\t%s\n", d.Name, d.Version, d.Partitioned, d.Digest[:12], d.UpdatedAt.Format(time.RFC3339), d.UpdatedBy, fail)
		}
		return tw.Flush()
	}
}

func projStateCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	rem := remoteFlags(fs)
	partition := fs.String("partition", "", "one partition's state")
	return func(ctx context.Context, e *env) error {
		if len(e.args) != 1 {
			return usageErr("want one NAME")
		}
		var out httpapi.StateOut
		if c := rem.client(); c != nil {
			page, err := c.ProjectionState(ctx, e.args[0], *partition, "", 1000)
			if err != nil {
				return describe(err)
			}
			out = page
			for page.Next != "" {
				if page, err = c.ProjectionState(ctx, e.args[0], "", page.Next, 1000); err != nil {
					return describe(err)
				}
				out.Partitions = append(out.Partitions, page.Partitions...)
			}
			out.Next = ""
		} else {
			l, closeAll, err := openLocal(ctx, e)
			if err != nil {
				return err
			}
			defer closeAll()
			def, err := l.m.Get(ctx, e.args[0])
			if err != nil {
				return describe(err)
			}
			out = httpapi.StateOut{Name: def.Name, Version: def.Version, Partitioned: def.Partitioned, Partition: *partition}
			if out.Checkpoint, err = analyst.Checkpoint(ctx, l.b, def.Name); err != nil {
				return err
			}
			if !def.Partitioned || *partition != "" {
				if out.State, err = analyst.State(ctx, l.b, l.kr, def.Name, *partition); err != nil {
					return describe(err)
				}
			} else {
				res, err := analyst.ReadAll(ctx, l.b, l.kr, def.Name, true)
				if err != nil {
					return err
				}
				for _, p := range res.Partitions {
					out.Partitions = append(out.Partitions, analyst.PartitionJSON{Key: p.Key, State: p.State})
				}
			}
			if err := recordAnalystCLI(ctx, e, "analyst-state", def.Name); err != nil {
				return err
			}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
}

func projExportCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	rem := remoteFlags(fs)
	format := fs.String("format", "csv", "csv, parquet or json")
	outFile := fs.String("out", "", "write to this file (default stdout)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) != 1 {
			return usageErr("want one NAME")
		}
		if err := analyst.CheckFormat(*format); err != nil {
			return usageErr("--format: %v", err)
		}
		w, finish, err := output(e, *outFile)
		if err != nil {
			return err
		}
		if c := rem.client(); c != nil {
			err = c.ExportProjection(ctx, e.args[0], *format, w)
		} else {
			err = exportLocal(ctx, e, e.args[0], *format, w)
		}
		if err != nil {
			finish(false)
			return describe(err)
		}
		return finish(true)
	}
}

func exportLocal(ctx context.Context, e *env, name, format string, w io.Writer) error {
	l, closeAll, err := openLocal(ctx, e)
	if err != nil {
		return err
	}
	defer closeAll()
	def, err := l.m.Get(ctx, name)
	if err != nil {
		return err
	}
	res, err := analyst.ReadAll(ctx, l.b, l.kr, def.Name, def.Partitioned)
	if err != nil {
		return err
	}
	if err := recordAnalystCLI(ctx, e, "analyst-export", def.Name); err != nil {
		return err
	}
	return analyst.Write(w, format, res)
}

func queryCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	file := fs.String("file", "", "the script (KurrentDB projection syntax); - reads stdin")
	from := fs.Uint64("from", 0, "first position read (0: the start)")
	to := fs.Uint64("to", 0, "last position read (0: the head when the query starts)")
	format := fs.String("format", "json", "json, csv or parquet")
	outFile := fs.String("out", "", "write to this file (default stdout)")
	rem := remoteFlags(fs)
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("query takes no arguments")
		}
		if err := analyst.CheckFormat(*format); err != nil {
			return usageErr("--format: %v", err)
		}
		src, err := readScript(e, *file)
		if err != nil {
			return err
		}
		bar := newBar(e.stderr)
		var res script.Result
		var through uint64
		if c := rem.client(); c != nil {
			res, through, err = c.Query(ctx, httpapi.QueryRequest{Source: src, From: *from, To: *to}, bar.query)
		} else {
			if err := e.open(ctx); err != nil {
				return err
			}
			kr, kerr := openKeyring(ctx, e.cfg, e.log)
			if kerr != nil {
				return kerr
			}
			defer kr.Close()
			if err := recordAnalystCLI(ctx, e, "analyst-query", "query"); err != nil {
				return err
			}
			res, through, err = analyst.Query(ctx, e.store, kr, src, *from, *to, script.Limits{}, bar.query)
		}
		bar.end()
		if err != nil {
			return describe(err)
		}
		w, finish, err := output(e, *outFile)
		if err != nil {
			return err
		}
		if *format == analyst.FormatJSON {
			out := analyst.ResultJSON{Partitioned: res.Partitioned, Position: through, State: res.State}
			for _, p := range res.Partitions {
				out.Partitions = append(out.Partitions, analyst.PartitionJSON{Key: p.Key, State: p.State})
			}
			if res.Partitioned {
				out.State = nil
			}
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			err = enc.Encode(out)
		} else {
			err = analyst.Write(w, *format, res)
		}
		if err != nil {
			finish(false)
			return err
		}
		fmt.Fprintf(e.stderr, "query ran through position %d\n", through)
		return finish(true)
	}
}

func readScript(e *env, file string) (string, error) {
	if file == "" {
		return "", usageErr("--file is required")
	}
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, analyst.MaxSourceBytes+1))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return "", usageErr("--file: %v", err)
	}
	return string(data), nil
}

// output opens --out (or stdout); finish(ok) closes it, removing a partial
// file when !ok.
func output(e *env, file string) (io.Writer, func(ok bool) error, error) {
	if file == "" {
		return e.stdout, func(bool) error { return nil }, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, nil, err
	}
	return f, func(ok bool) error {
		err := f.Close()
		if !ok {
			_ = os.Remove(file)
		}
		return err
	}, nil
}

// describe adds where a refused script failed, and a failed script's
// stack, to err's message.
func describe(err error) error {
	var ie *analyst.InvalidError
	if errors.As(err, &ie) && ie.Line > 0 {
		return fmt.Errorf("script refused at line %d, column %d: %s", ie.Line, ie.Column, ie.Message)
	}
	return err
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// recordAnalystCLI records a local read of an analyst projection in the
// access log, as the API does.
func recordAnalystCLI(ctx context.Context, e *env, resource, name string) error {
	return recordCLIRead(ctx, e, analyst.Subject(name), resource, "", "name="+name)
}

// bar draws a one-line progress bar on a terminal stream.
type bar struct {
	w     io.Writer
	drawn bool
}

func newBar(w io.Writer) *bar { return &bar{w: w} }

func (b *bar) draw(label string, pos, head uint64, rate float64, eta time.Duration) {
	pct := 100.0
	if head > 0 {
		pct = 100 * float64(pos) / float64(head)
	}
	const width = 30
	n := int(pct / 100 * width)
	n = max(0, min(n, width))
	fmt.Fprintf(b.w, "\r%s [%s%s] %5.1f%%  %d/%d  %.0f events/s  ETA %s   ",
		label, strings.Repeat("#", n), strings.Repeat(".", width-n), pct, pos, head, rate, eta.Round(time.Second))
	b.drawn = true
}

func (b *bar) analyst(p analyst.Progress) {
	b.draw(p.Projection, p.Position, p.Head, p.EventsPerSecond, time.Duration(p.ETASeconds*float64(time.Second)))
}

func (b *bar) query(p script.Progress) {
	var eta time.Duration
	if p.EventsPerSecond > 0 && p.Head > p.Position {
		eta = time.Duration(float64(p.Head-p.Position) / p.EventsPerSecond * float64(time.Second))
	}
	b.draw("query", p.Position, p.Head, p.EventsPerSecond, eta)
}

func (b *bar) end() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
