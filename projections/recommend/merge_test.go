package recommend_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/recommend"
)

var (
	survivor = uuid.MustParse("5a0c1a53-0d0e-4d55-9f55-0c3cf6f0a001")
	absorbed = uuid.MustParse("5a0c1a53-0d0e-4d55-9f55-0c3cf6f0a002")
	third    = uuid.MustParse("5a0c1a53-0d0e-4d55-9f55-0c3cf6f0a003")
	mergeID  = uuid.MustParse("5a0c1a53-0d0e-4d55-9f55-0c3cf6f0a0ff")
	merge2ID = uuid.MustParse("5a0c1a53-0d0e-4d55-9f55-0c3cf6f0a0fe")
)

// parts returns n products P<from>…, all in category "parts".
func parts(from, n int) []product {
	var ps []product
	for i := range n {
		ps = append(ps, product{sku: fmt.Sprintf("P%03d", from+i), description: "Part", category: "parts"})
	}
	return ps
}

// mergeHistory writes, after the baskets, purchases of a survivor and of
// customers it absorbs, with merges between them, addressing each event
// to who(party) — the party itself, or the one customer of the control
// log. The absorbed buys 30 parts before the survivor buys 30 others, so
// that the group's first MaxPaired items mix both records; the absorbed
// buys on while merged; a third customer is merged in and its purchase
// happens before the survivor's.
func mergeHistory(l *projectiontest.Log, who func(uuid.UUID) uuid.UUID, merges bool) {
	seq := 200
	buy := func(c uuid.UUID, ps ...product) {
		seq++
		l.AddRFC3339(who(c), "2025-04-01T10:00:00Z", order(seq, ps...))
	}
	merge := func(id, a uuid.UUID) {
		if merges {
			m := domain.CustomerMerged{MergeID: id, Survivor: survivor, Absorbed: a}
			l.AddRFC3339(a, "2025-04-02T10:00:00Z", m)
			l.AddRFC3339(survivor, "2025-04-02T10:00:00Z", m)
		}
	}
	buy(absorbed, append(parts(0, 30), beans)...)
	buy(third, tea, mug)
	buy(survivor, append(parts(20, 30), beans, grinder)...)
	merge(mergeID, absorbed)
	buy(absorbed, kettle, beans)
	merge(merge2ID, third)
	buy(survivor, papers)
	buy(third, v60)
}

// shared returns the lines of a dump that every customer shares: item
// buyers, co-buyers and the customer totals.
func shared(dump string) string {
	var sb strings.Builder
	for line := range strings.Lines(dump) {
		if strings.HasPrefix(line, "item/") || strings.HasPrefix(line, "pair/") || strings.HasPrefix(line, "stats ") {
			sb.WriteString(line)
		}
	}
	return sb.String()
}

// While a merge is in effect, the co-purchase counts count the merged
// group as one customer: they equal those of a log in which one customer
// had all the group's purchases from the start (pair cap included), with
// any batching.
func TestMergedGroupCountsAsOneCustomer(t *testing.T) {
	merged := projectiontest.NewLog(t)
	addBaskets(merged)
	mergeHistory(merged, func(c uuid.UUID) uuid.UUID { return c }, true)
	one := projectiontest.NewLog(t)
	addBaskets(one)
	mergeHistory(one, func(uuid.UUID) uuid.UUID { return survivor }, false)
	apart := projectiontest.NewLog(t)
	addBaskets(apart)
	mergeHistory(apart, func(c uuid.UUID) uuid.UUID { return c }, false)
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		p := recommend.New(recommend.Config{})
		projectiontest.FoldBatches(t, b, "rec_one", p, one.Envelopes(), 0)
		want := shared(projectiontest.Dump(t, b, "rec_one"))
		for _, size := range []int{0, 1, 4} {
			ns := fmt.Sprintf("rec_merged_%d", size)
			projectiontest.FoldBatches(t, b, ns, p, merged.Envelopes(), size)
			if got := shared(projectiontest.Dump(t, b, ns)); got != want {
				t.Errorf("batches of %d: shared counts of the merged log differ from one customer's:\n got %s\nwant %s", size, got, want)
			}
		}
		projectiontest.FoldBatches(t, b, "rec_apart", p, apart.Envelopes(), 0)
		if shared(projectiontest.Dump(t, b, "rec_apart")) == want {
			t.Fatal("the scenario does not tell a merged group from separate customers")
		}
		if !strings.Contains(want, `stats = {"productBuyers":8,"categoryBuyers":7}`) {
			t.Errorf("one customer for the group: want 8 product buyers (7 baskets + 1):\n%s", want)
		}
	})
}

// An unmerge restores the counts exactly: after the unmerges (in either
// half's order, and with a lone half that never took effect) the read
// model equals a replay of the log without the merge events, also when a
// merged customer was erased while merged.
func TestUnmergeRestoresCounts(t *testing.T) {
	unmerge := func(l *projectiontest.Log, id, a uuid.UUID, first uuid.UUID) {
		u := domain.CustomerUnmerged{MergeID: id, Survivor: survivor, Absorbed: a}
		second := survivor
		if first == survivor {
			second = a
		}
		l.AddRFC3339(first, "2025-05-01T10:00:00Z", u)
		l.AddRFC3339(second, "2025-05-01T10:00:00Z", u)
	}
	tests := []struct {
		name string
		tail func(l *projectiontest.Log)
	}{
		{"unmerge both", func(l *projectiontest.Log) {
			unmerge(l, mergeID, absorbed, survivor)
			l.AddRFC3339(absorbed, "2025-05-02T10:00:00Z", order(300, tea))
			unmerge(l, merge2ID, third, third)
		}},
		{"unmerge the survivor's first member, buy, merge again, unmerge", func(l *projectiontest.Log) {
			unmerge(l, mergeID, absorbed, absorbed)
			l.AddRFC3339(survivor, "2025-05-02T10:00:00Z", order(301, mug))
			again := uuid.MustParse("5a0c1a53-0d0e-4d55-9f55-0c3cf6f0a0fd")
			m := domain.CustomerMerged{MergeID: again, Survivor: survivor, Absorbed: absorbed}
			l.AddRFC3339(absorbed, "2025-05-03T10:00:00Z", m)
			l.AddRFC3339(survivor, "2025-05-03T10:00:00Z", m)
			l.AddRFC3339(absorbed, "2025-05-04T10:00:00Z", order(302, kettle, tea))
			unmerge(l, again, absorbed, survivor)
			unmerge(l, merge2ID, third, survivor)
		}},
		{"a member erased while merged", func(l *projectiontest.Log) {
			l.AddRFC3339(absorbed, "2025-05-02T10:00:00Z", domain.CustomerForgotten{Request: "DSR-7"})
			l.AddRFC3339(survivor, "2025-05-02T10:00:00Z", order(303, tea))
			unmerge(l, mergeID, absorbed, survivor)
			unmerge(l, merge2ID, third, survivor)
		}},
		{"a lone half", func(l *projectiontest.Log) {
			lone := domain.CustomerMerged{MergeID: uuid.MustParse("5a0c1a53-0d0e-4d55-9f55-0c3cf6f0a0fc"), Survivor: c2, Absorbed: c1}
			l.AddRFC3339(c1, "2025-05-02T10:00:00Z", lone)
			l.AddRFC3339(c1, "2025-05-02T10:00:00Z", order(304, mug))
			l.AddRFC3339(c1, "2025-05-02T10:00:00Z", domain.CustomerUnmerged{MergeID: lone.MergeID, Survivor: c2, Absorbed: c1})
			unmerge(l, mergeID, absorbed, survivor)
			unmerge(l, merge2ID, third, survivor)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := projectiontest.NewLog(t)
			addBaskets(l)
			mergeHistory(l, func(c uuid.UUID) uuid.UUID { return c }, true)
			tt.tail(l)
			var without []domain.Envelope
			for _, e := range l.Envelopes() {
				if !domain.IsIdentityResolution(e.Type) {
					without = append(without, e)
				}
			}
			projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
				p := recommend.New(recommend.Config{})
				projectiontest.FoldBatches(t, b, "rec_with", p, l.Envelopes(), 3)
				projectiontest.FoldBatches(t, b, "rec_without", p, without, 0)
				got, want := projectiontest.Dump(t, b, "rec_with"), projectiontest.Dump(t, b, "rec_without")
				if got != want {
					t.Errorf("after the unmerges:\n%s\nreplay without the merges:\n%s", got, want)
				}
			})
		})
	}
}
