package script

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections/projectiontest"
)

// TestKurrentDBExamples runs ports of KurrentDB's documentation projections
// (event names adapted to cxledger's types) over a generated history and
// checks each read model against the same computation done in Go.
func TestKurrentDBExamples(t *testing.T) {
	sd := seed(t, 40, 1500, 7)
	first := domain.StreamID(sd.customers[0])
	tests := []struct {
		name, src string
		want      func() any
	}{{
		// KurrentDB: "count events by type" (fromAll + $any).
		name: "count_by_type",
		src: `fromAll().when({
			$init: function () { return {}; },
			$any: function (s, e) { s[e.eventType] = (s[e.eventType] || 0) + 1; }
		});`,
		want: func() any {
			m := map[string]int{}
			for _, r := range sd.recs {
				m[r.typ]++
			}
			return m
		},
	}, {
		// KurrentDB: per-stream totals with fromCategory + foreachStream
		// (category "customer", as every cxledger stream is customer-<uuid>).
		name: "per_customer_totals",
		src: `fromCategory('customer').foreachStream().when({
			$init: () => ({ orders: 0, total: 0 }),
			PurchaseCompleted: (s, e) => { s.orders++; s.total += e.body.amount; }
		}).outputState();`,
		want: func() any {
			type tot struct {
				Orders int   `json:"orders"`
				Total  int64 `json:"total"`
			}
			m := map[string]*tot{}
			for _, r := range sd.recs {
				if r.typ == domain.TypePurchaseCompleted {
					if m[r.stream] == nil {
						m[r.stream] = &tot{}
					}
					m[r.stream].Orders++
					m[r.stream].Total += r.amount
				}
			}
			return m
		},
	}, {
		// KurrentDB: partitionBy with a key from the body; method
		// shorthand; a handler that returns a new state.
		name: "revenue_by_currency",
		src: `fromAll()
			.partitionBy(function (e) { return e.eventType === 'PurchaseCompleted' ? e.body.currency : null; })
			.when({
				$init() { return { orders: 0, revenue: 0 }; },
				PurchaseCompleted(s, e) { return { orders: s.orders + 1, revenue: s.revenue + e.body.amount }; },
				NoteAdded(s, e) { s.notes = 1; }
			});`,
		want: func() any {
			type cur struct {
				Orders  int   `json:"orders"`
				Revenue int64 `json:"revenue"`
			}
			m := map[string]*cur{}
			for _, r := range sd.recs {
				if r.typ == domain.TypePurchaseCompleted {
					if m[r.currency] == nil {
						m[r.currency] = &cur{}
					}
					m[r.currency].Orders++
					m[r.currency].Revenue += r.amount
				}
			}
			return m
		},
	}, {
		// KurrentDB: filtering inside a handler of a subset of types, then
		// filterBy on the result.
		name: "vip_notes",
		src: `fromAll().when({
			$init: () => ({ vip: 0, other: 0 }),
			NoteAdded: (s, e) => { if (e.body.body.indexOf('VIP') >= 0) s.vip++; else s.other++; }
		}).filterBy(s => s.vip > 0);`,
		want: func() any {
			vip, other := 0, 0
			for _, r := range sd.recs {
				if r.typ == domain.TypeNoteAdded {
					if strings.Contains(r.note, "VIP") {
						vip++
					} else {
						other++
					}
				}
			}
			return map[string]int{"vip": vip, "other": other}
		},
	}, {
		// KurrentDB: transformBy + outputState, the result is the transform
		// of the state.
		name: "average_basket",
		src: `fromCategory('customer').when({
			$init: () => ({ n: 0, sum: 0 }),
			PurchaseCompleted: (s, e) => { s.n++; s.sum += e.body.amount; }
		}).transformBy(s => ({ orders: s.n, average: Math.floor(s.sum / s.n) })).outputState();`,
		want: func() any {
			n, sum := int64(0), int64(0)
			for _, r := range sd.recs {
				if r.typ == domain.TypePurchaseCompleted {
					n++
					sum += r.amount
				}
			}
			return map[string]int64{"orders": n, "average": sum / n}
		},
	}, {
		// transformBy returning nothing gives a null result; filterBy that
		// fails gives null too.
		name: "transform_nothing",
		src:  `fromAll().when({ $any: (s, e) => { s.n = (s.n || 0) + 1; } }).transformBy(s => {});`,
		want: func() any { return nil },
	}, {
		// One stream, and the stream's own counters.
		name: "one_stream",
		src: `fromStream('` + first + `').when({
			$init: () => ({ events: 0, last: -1 }),
			$any: (s, e) => { s.events++; s.last = e.sequenceNumber; }
		});`,
		want: func() any {
			n := 0
			for _, r := range sd.recs {
				if r.stream == first {
					n++
				}
			}
			return map[string]int{"events": n, "last": n - 1}
		},
	}, {
		// fromStreams over two customers, partitioned per stream; a stream
		// outside the list is never seen.
		name: "two_streams",
		src: `fromStreams(['` + first + `', '` + domain.StreamID(sd.customers[1]) + `']).foreachStream().when({
			$any: (s, e) => { s.n = (s.n || 0) + 1; }
		});`,
		want: func() any {
			m := map[string]map[string]int{}
			for _, r := range sd.recs {
				if r.customer == sd.customers[0] || r.customer == sd.customers[1] {
					if m[r.stream] == nil {
						m[r.stream] = map[string]int{"n": 0}
					}
					m[r.stream]["n"]++
				}
			}
			return m
		},
	}, {
		// KurrentDB's foreachStream reference example: handlers given to
		// foreachStream, a new state built with spread and ??.
		name: "types_per_stream",
		src: `fromCategory("customer").foreachStream({
			$any: function (state, event) {
				return { ...state, [event.eventType]: (state[event.eventType] ?? 0) + 1 };
			}
		});`,
		want: func() any {
			m := map[string]map[string]int{}
			for _, r := range sd.recs {
				if m[r.stream] == nil {
					m[r.stream] = map[string]int{}
				}
				m[r.stream][r.typ]++
			}
			return m
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := compile(t, tt.name, tt.src, Limits{})
			b := projectiontest.Memory(t)
			if err := replayTo(sd.store, b, p.Projection(1)); err != nil {
				t.Fatal(err)
			}
			sameJSON(t, "read model", readAll(t, b, p), tt.want())
		})
	}
}

// TestDocExamples: every script in docs/js-projections.md compiles and
// replays a generated history without failing.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/js-projections.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```js\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d scripts in the doc, want at least 3", len(blocks))
	}
	sd := seed(t, 8, 200, 17)
	for i, b := range blocks {
		p := compile(t, fmt.Sprintf("doc_%d", i), b[1], Limits{})
		if err := replayTo(sd.store, projectiontest.Memory(t), p.Projection(1)); err != nil {
			t.Errorf("doc script %d: %v", i, err)
		}
	}
}
