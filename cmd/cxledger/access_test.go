package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/domain"
)

// TestCLIReadsAreInTheAccessLog: every command that shows personal data —
// read (one stream, or the whole log), tail, export (the log, or one
// customer), view, timeline — leaves entries in the access log under its
// --reader: one per customer it showed, whatever the number of their
// events.
func TestCLIReadsAreInTheAccessLog(t *testing.T) {
	dir, c, _ := seedSmallOut(t)
	code, out, errOut := cli(t, "", "read", "--all", "--limit", "0", "--json", "--data", dir, "--reader", "r-log")
	if code != 0 {
		t.Fatalf("read --all: exit %d: %s", code, errOut)
	}
	var everyone []string
	for _, r := range decodeRecords(t, out) {
		if id, err := domain.ParseStreamID(r.Stream); err == nil && !slices.Contains(everyone, id.String()) {
			everyone = append(everyone, id.String())
		}
	}
	slices.Sort(everyone)
	if len(everyone) < 2 {
		t.Fatalf("the seed made %d customers", len(everyone))
	}
	for _, args := range [][]string{
		{"read", c, "--reader", "r-stream"},
		{"export", "--reader", "r-export"},
		{"export", "--customer", c, "--reader", "r-export-one"},
		{"view", c, "--as-of", "2030-01-01", "--reader", "r-view"},
		{"timeline", c, "--reader", "r-timeline"},
	} {
		if code, _, errOut := cli(t, "", append(args, "--data", dir)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	// tail follows the log until stopped: stopped once it has printed the
	// seed's events.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &stopAfter{lines: strings.Count(out, "\n"), stop: cancel}
	run(ctx, []string{"tail", "--after", "0", "--reader", "r-tail", "--data", dir}, strings.NewReader(""), w, io.Discard)
	if w.seen() < w.lines {
		t.Fatalf("tail printed %d lines, want %d", w.seen(), w.lines)
	}

	code, out, errOut = cli(t, "", "read", "--all", "--types", domain.TypeAccessRecorded, "--limit", "0", "--json", "--data", dir)
	if code != 0 {
		t.Fatalf("read the access log: exit %d: %s", code, errOut)
	}
	got := map[string][]string{} // reader → customers
	resources := map[string]string{}
	for _, r := range decodeRecords(t, out) {
		var e access.Entry
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Via != "cli" || e.Role != "operator" {
			t.Errorf("entry %+v", e)
		}
		got[e.Reader] = append(got[e.Reader], e.Customer.String())
		resources[e.Reader] = e.Resource
	}
	for reader, want := range map[string][]string{
		"r-log": everyone, "r-export": everyone, "r-tail": everyone,
		"r-stream": {c}, "r-export-one": {c}, "r-view": {c}, "r-timeline": {c},
	} {
		g := slices.Clone(got[reader])
		slices.Sort(g)
		if !slices.Equal(g, want) {
			t.Errorf("%s read %v, want each of %v once", reader, g, want)
		}
	}
	for reader, want := range map[string]string{
		"r-log": "log", "r-export": "export", "r-tail": "tail", "r-stream": "events",
		"r-export-one": "export", "r-view": "view-as-of", "r-timeline": "audit-timeline",
	} {
		if resources[reader] != want {
			t.Errorf("%s: resource %q, want %q", reader, resources[reader], want)
		}
	}
}

// stopAfter is an output that calls stop once it has received lines
// lines.
type stopAfter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines int
	stop  func()
}

func (w *stopAfter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Count(w.buf.Bytes(), []byte("\n")) >= w.lines {
		w.stop()
	}
	return len(p), nil
}

func (w *stopAfter) seen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Count(w.buf.Bytes(), []byte("\n"))
}
