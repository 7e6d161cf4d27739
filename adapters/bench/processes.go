package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
)

// childEnv carries a child process's assignment (JSON childSpec): a bench
// process that finds it set is a child of a multi-process case, not a run.
const childEnv = "CXLEDGER_BENCH_CHILD"

// DefaultClients is the number of concurrent single-event appenders of the
// multi-process cases, spread over the processes.
const DefaultClients = 16

// ProcessCase is appends from several processes sharing one PostgreSQL
// schema: Clients single-event appenders (each on its own stream) spread
// over Processes processes, each with its own Store; Ledger is the
// aggregate (p50/p99 over every append of every process).
type ProcessCase struct {
	Processes int        `json:"processes"`
	Clients   int        `json:"clients"`
	Ledger    Throughput `json:"ledger"`
}

// childSpec is one child's share of a multi-process case.
type childSpec struct {
	URL      string        `json:"url"`
	Schema   string        `json:"schema"`
	Writers  int           `json:"writers"`
	Duration time.Duration `json:"duration"`
	Start    time.Time     `json:"start"`  // all children begin appending at once
	Result   string        `json:"result"` // file the child writes its childResult to
}

type childResult struct {
	Events  int     `json:"events"`
	Seconds float64 `json:"seconds"`
	// LatencyUs is every append's latency in microseconds, merged by the
	// parent for the aggregate percentiles.
	LatencyUs []int64 `json:"latencyUs"`
	Err       string  `json:"err,omitempty"`
}

// runChild measures a child's share and writes its result file. It reports
// whether this process is a child.
func runChild(ctx context.Context) (bool, error) {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		return false, nil
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return true, fmt.Errorf("bench child: %s: %w", childEnv, err)
	}
	// Ids and stream names come from counters: start this process's far
	// from its siblings'.
	idCounter.Store(uint64(os.Getpid()) << 32)
	streamCounter.Store(uint64(os.Getpid()) << 32)
	res := childAppends(ctx, spec)
	data, err := json.Marshal(res)
	if err != nil {
		return true, err
	}
	return true, os.WriteFile(spec.Result, data, 0o600)
}

func childAppends(ctx context.Context, spec childSpec) childResult {
	s, err := pgstore.Open(ctx, spec.URL, pgstore.Options{Schema: spec.Schema, MaxConns: poolSize(spec.Writers)})
	if err != nil {
		return childResult{Err: err.Error()}
	}
	defer s.Close()
	tpl, err := templates(1)
	if err != nil {
		return childResult{Err: err.Error()}
	}
	streams := make([]string, spec.Writers)
	expected := make([]eventstore.ExpectedVersion, spec.Writers)
	for w := range streams {
		streams[w], expected[w] = newStream(), eventstore.NoStream
	}
	time.Sleep(time.Until(spec.Start))
	var lat [][]time.Duration
	t, err := timedWithLatencies(ctx, spec.Writers, spec.Duration, &lat, func(ctx context.Context, w int) (int, error) {
		e := tpl[w%len(tpl)]
		e.ID = nextID()
		res, err := s.Append(ctx, streams[w], expected[w], e)
		if err != nil {
			return 0, err
		}
		expected[w] = eventstore.Exact(res.Version)
		return 1, nil
	})
	if err != nil {
		return childResult{Err: err.Error()}
	}
	out := childResult{Events: t.Events, Seconds: t.Seconds}
	for _, d := range slices.Concat(lat...) {
		out.LatencyUs = append(out.LatencyUs, d.Microseconds())
	}
	return out
}

// processCase runs clients appenders spread over processes child processes
// (this executable, run again as "bench" with childEnv set) on one fresh
// schema, all starting at once, and aggregates their figures.
func (p *postgres) processCase(ctx context.Context, processes, clients int, d time.Duration) (ProcessCase, error) {
	c := ProcessCase{Processes: processes, Clients: clients}
	exe, err := os.Executable()
	if err != nil {
		return c, fmt.Errorf("find own executable: %w", err)
	}
	schema := p.schema(false)
	defer p.drop(context.WithoutCancel(ctx), schema)
	// Create the schema before the children race to migrate it.
	s, err := pgstore.Open(ctx, p.url, pgstore.Options{Schema: schema, MaxConns: 1})
	if err != nil {
		return c, fmt.Errorf("create schema: %w", err)
	}
	_ = s.Close()
	dir, err := os.MkdirTemp("", "cxledger-bench-proc-")
	if err != nil {
		return c, err
	}
	defer os.RemoveAll(dir)
	start := time.Now().Add(3 * time.Second) // time for every child to start and connect
	cmds := make([]*exec.Cmd, processes)
	var stderr []*bytes.Buffer
	for i := range processes {
		writers := clients / processes
		if i < clients%processes {
			writers++
		}
		spec, err := json.Marshal(childSpec{URL: p.url, Schema: schema, Writers: writers, Duration: d, Start: start,
			Result: filepath.Join(dir, fmt.Sprintf("child-%d.json", i))})
		if err != nil {
			return c, err
		}
		cmd := exec.CommandContext(ctx, exe, "bench")
		cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
		buf := &bytes.Buffer{}
		cmd.Stderr = buf
		stderr = append(stderr, buf)
		if err := cmd.Start(); err != nil {
			return c, fmt.Errorf("start child %d: %w", i, err)
		}
		cmds[i] = cmd
	}
	var (
		errs    []error
		events  int
		seconds float64
		lat     []time.Duration
	)
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("child %d: %w: %s", i, err, stderr[i].Bytes()))
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("child-%d.json", i)))
		if err != nil {
			errs = append(errs, fmt.Errorf("child %d: %w", i, err))
			continue
		}
		var r childResult
		if err := json.Unmarshal(data, &r); err != nil {
			errs = append(errs, fmt.Errorf("child %d: %w", i, err))
			continue
		}
		if r.Err != "" {
			errs = append(errs, fmt.Errorf("child %d: %s", i, r.Err))
			continue
		}
		events += r.Events
		seconds = max(seconds, r.Seconds)
		for _, us := range r.LatencyUs {
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	c.Ledger = Throughput{Operations: len(lat), Events: events, Seconds: seconds}
	if seconds > 0 {
		c.Ledger.EventsPerSecond = float64(events) / seconds
	}
	c.Ledger.P50Ms, c.Ledger.P99Ms, _ = percentiles(lat)
	return c, nil
}
