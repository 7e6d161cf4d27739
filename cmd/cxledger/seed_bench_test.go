package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/bench"
)

func TestSeedThenView(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := cli(t, "", "seed", "--data", data, "--customers", "40", "--seed", "5", "--heavy", "300")
	if code != 0 {
		t.Fatalf("seed: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "seeded 40 customers") || !strings.Contains(out, "key account: ") {
		t.Fatalf("seed output:\n%s", out)
	}
	sample := regexp.MustCompile(`sample customer: ([0-9a-f-]{36})`).FindStringSubmatch(out)
	if sample == nil {
		t.Fatalf("no sample customer in:\n%s", out)
	}
	if code, _, errOut := cli(t, "", "replay", "--data", data); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	code, out, errOut = cli(t, "", "view", "--data", data, sample[1])
	if code != 0 || !strings.Contains(out, sample[1]) {
		t.Fatalf("view: exit %d: %s %s", code, out, errOut)
	}
	if code, _, _ := cli(t, "", "seed", "--data", data, "--customers", "0"); code != 2 {
		t.Fatalf("seed --customers 0: exit %d, want 2", code)
	}
}

func TestBenchQuickEmbedded(t *testing.T) {
	report := filepath.Join(t.TempDir(), "bench.json")
	// A hang guard, not a speed target: the quick bench runs every
	// measurement once, which under -race on a loaded machine outlasts
	// the other commands' 30 s.
	code, out, errOut := cliWithin(t, 5*time.Minute, "", "bench", "--data", t.TempDir(), "--quick", "--backends", "embedded", "--events", "3000", "--duration", "100ms", "--json", report)
	if code != 0 {
		t.Fatalf("bench: exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"== embedded ==", "ratio", "replay of every read model", "timeline page", "live latency", "target"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(raw, &rep); err != nil || len(rep.Backends) != 1 || len(rep.Backends[0].Appends) != 6 {
		t.Fatalf("JSON report: %v\n%s", err, raw)
	}
}
