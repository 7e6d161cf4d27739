package bench

import (
	"context"
	"fmt"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/script"
)

// JSRebuild compares a JavaScript projection's rebuild with the same
// projection written in Go: counting each customer's events, one state per
// stream.
type JSRebuild struct {
	Events            int     `json:"events"`
	JSEventsPerSecond float64 `json:"jsEventsPerSecond"`
	GoEventsPerSecond float64 `json:"goEventsPerSecond"`
	// Ratio is the JavaScript rate over the Go rate.
	Ratio float64 `json:"ratio"`
}

// jsCounting is the JavaScript side of JSRebuild.
const jsCounting = `fromAll().partitionBy(e => e.streamId).when({
	$init: () => ({ count: 0 }),
	$any: (s, e) => { s.count++; }
});`

// jsVsGo rebuilds the counting projection in JavaScript, then in Go.
func jsVsGo(ctx context.Context, store eventstore.Store, rm projections.Backend) (JSRebuild, error) {
	prog, err := script.Compile("bench_js_count", jsCounting, script.Limits{})
	if err != nil {
		return JSRebuild{}, fmt.Errorf("compile: %w", err)
	}
	js, err := timedReplay(ctx, store, rm, []projections.Projection{prog.Projection(1)}, nil)
	if err != nil {
		return JSRebuild{}, fmt.Errorf("JavaScript rebuild: %w", err)
	}
	gor, err := timedReplay(ctx, store, rm, []projections.Projection{goCounting{}}, nil)
	if err != nil {
		return JSRebuild{}, fmt.Errorf("rebuild in Go: %w", err)
	}
	r := JSRebuild{Events: js.Events, JSEventsPerSecond: js.EventsPerSecond, GoEventsPerSecond: gor.EventsPerSecond}
	if gor.EventsPerSecond > 0 {
		r.Ratio = js.EventsPerSecond / gor.EventsPerSecond
	}
	return r, nil
}

// goCounting is jsCounting in Go.
type goCounting struct{}

type streamCount struct {
	Count int `json:"count"`
}

func (goCounting) Name() string    { return "bench_go_count" }
func (goCounting) Version() int    { return 1 }
func (goCounting) Types() []string { return nil }
func (goCounting) Apply(tx *projections.Tx, e domain.Envelope) error {
	c, err := projections.Load[streamCount](tx, "p/"+e.Stream)
	if err != nil {
		return err
	}
	c.Count++
	return nil
}
