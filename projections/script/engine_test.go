package script

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// TestLiveEngine: in a running engine a poison script fails alone, with the
// position and stack; the other script stays live and applies new events.
func TestLiveEngine(t *testing.T) {
	sd := seed(t, 5, 100, 31)
	at := sd.recs[50].pos
	poison := compile(t, "live_poison", `fromAll().when({ $any: (s, e) => { if (e.position === `+jsonText(at)+`) null.boom; } });`, Limits{})
	healthy := compile(t, "live_count", `fromAll().when({ $init: () => ({ n: 0 }), $any: (s) => { s.n++; } });`, Limits{})
	b := projectiontest.Memory(t)
	e, err := projections.NewEngine(sd.store, b, projections.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Program{poison, healthy} {
		if err := e.Register(p.Projection(1)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	c := sd.customers[0]
	typ, schema, data, err := domain.Encode(domain.NoteAdded{Body: "Rappeler lundi"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sd.store.Append(ctx, domain.StreamID(c), eventstore.Any, eventstore.EventData{
		ID: uuid.New(), Type: typ, Data: data,
		Metadata: eventstore.Metadata{OccurredAt: time.Date(2025, 9, 1, 10, 0, 0, 0, time.UTC), Actor: "user:marta.kowalska", SchemaVersion: schema},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WaitFor(ctx, res.Position, "live_count"); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "live_count", readAll(t, b, healthy), map[string]int{"n": len(sd.recs) + 1})

	var failed *projections.Status
	for failed == nil {
		for _, s := range e.Status() {
			if s.Name == "live_poison" && s.State == projections.StateFailed {
				failed = &s
			}
		}
		if failed == nil {
			select {
			case <-ctx.Done():
				t.Fatal("the poison projection never failed")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	var se *ScriptError
	if !errors.As(failed.Err, &se) || se.Position != at || se.Stack == "" {
		t.Errorf("poison status %+v", failed)
	}
}
