package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
)

// TestChildAppendsItsShare runs the child side of a multi-process case in
// this process: Run, finding its assignment in the environment, appends
// from the assigned writers to the assigned schema and reports every append
// in its result file, and the schema holds exactly what it reported.
func TestChildAppendsItsShare(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, schema := pgtest.URL(t), pgtest.Schema(t)
	result := filepath.Join(t.TempDir(), "child.json")
	spec, err := json.Marshal(childSpec{URL: url, Schema: schema, Writers: 3, Duration: 300 * time.Millisecond, Start: time.Now(), Result: result})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, string(spec))
	rep, err := Run(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Backends) != 0 {
		t.Fatalf("a child measured %d backends of its own", len(rep.Backends))
	}
	data, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	var r childResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Err != "" || r.Events == 0 || len(r.LatencyUs) != r.Events || r.Seconds <= 0 {
		t.Fatalf("child result: %d events, %d latencies, %.2fs, error %q", r.Events, len(r.LatencyUs), r.Seconds, r.Err)
	}
	s, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if head, err := s.Head(ctx); err != nil || head != uint64(r.Events) {
		t.Fatalf("schema head %d (%v), the child reported %d single-event appends", head, err, r.Events)
	}
}
