package analytics_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/merges"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// The fit counts a merged pair as one customer: a fit over a log in which
// one customer's events are split between two records that are merged
// equals the fit over the log in which one customer had them all; without
// the merge it does not (one buyer more).
func TestFitCountsMergedGroupOnce(t *testing.T) {
	ctx := context.Background()
	events, _ := baseHistory(7, 150)
	// The customer with the most events; every other one of theirs goes
	// to a second record, absorbed by the first.
	n := map[string]int{}
	for _, e := range events {
		n[e.Stream]++
	}
	var busiest string
	for s, k := range n {
		if k > n[busiest] || (k == n[busiest] && s < busiest) {
			busiest = s
		}
	}
	survivor, err := domain.ParseStreamID(busiest)
	if err != nil {
		t.Fatal(err)
	}
	absorbed := uuid.MustParse("0f0e0d0c-0b0a-4908-8706-050403020100")
	split := make([]domain.Envelope, len(events))
	copy(split, events)
	k := 0
	for i, e := range split {
		if e.Stream == busiest {
			if k%2 == 1 {
				split[i].Stream = domain.StreamID(absorbed)
			}
			k++
		}
	}
	if k < 4 {
		t.Fatalf("the busiest customer has %d events", k)
	}
	var ml projectiontest.Log
	m := domain.CustomerMerged{MergeID: uuid.New(), Survivor: survivor, Absorbed: absorbed}
	mergeEvents := []domain.Envelope{ml.Add(absorbed, rfmNow, m), ml.Add(survivor, rfmNow, m)}
	opts := analytics.FitOptions{Now: rfmNow, CalibrationEnd: rfmNow.AddDate(0, -6, 0)}
	fit := func(t *testing.T, b projections.Backend, evs []domain.Envelope, merged bool) analytics.Fit {
		t.Helper()
		foldCustomers(t, b, evs)
		if merged {
			ns := projections.NamespaceFor(merges.Name, merges.Version, 1)
			if err := projections.ApplyBatch(ctx, b, ns, merges.New(), mergeEvents); err != nil {
				t.Fatal(err)
			}
			if err := b.Activate(ctx, merges.Name, ns); err != nil {
				t.Fatal(err)
			}
		}
		f, err := analytics.FitAndSave(ctx, b, opts)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		want := fit(t, projections.NewMemory(), events, false)
		got := fit(t, b, split, true)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("fit over the merged pair:\n%+v\nwant that of one customer:\n%+v", got, want)
		}
		apart := fit(t, projections.NewMemory(), split, false)
		if apart.Buyers != want.Buyers+1 {
			t.Errorf("without the merge: %d buyers, want %d (the pair as two)", apart.Buyers, want.Buyers+1)
		}
	})
}
