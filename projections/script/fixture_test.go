package script

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
)

// rec is what the Go side of a test knows of one seeded event, to compute
// the state a script should reach.
type rec struct {
	stream, typ string
	customer    uuid.UUID
	pos         uint64
	amount      int64
	currency    string
	note        string
}

// seeded is a memstore holding a generated history and what was seeded.
type seeded struct {
	store     *memstore.Store
	recs      []rec
	customers []uuid.UUID
}

var (
	noteBodies = []string{"Prefers contact in French, after 17:00.", "VIP since 2019 ⭐", "Asked about the loyalty programme.", "Callback promised for Monday.", "VIP: send the catalogue <early> & \"signed\""}
	currencies = []string{"EUR", "EUR", "EUR", "USD", "JPY"}
	custNames  = []string{"Zoë Ångström-Nguyễn", "Marta Kowalska", "Jean-Pierre Dubois", "石井 裕子"}
)

// seed appends a history: customers registrations, then touches events of
// the other seeded types (purchases, notes, tickets) over random customers.
func seed(t testing.TB, customers, touches int, s uint64) *seeded {
	t.Helper()
	rng := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	newID := func() uuid.UUID {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		return uuid.UUID(b)
	}
	st := memstore.New(memstore.Config{})
	t.Cleanup(func() { st.Close() })
	sd := &seeded{store: st}
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	add := func(c uuid.UUID, ev domain.Event, r rec) {
		typ, schema, data, err := domain.Encode(ev)
		if err != nil {
			t.Fatalf("encode %T: %v", ev, err)
		}
		at = at.Add(time.Duration(1+rng.IntN(3600)) * time.Second)
		res, err := st.Append(context.Background(), domain.StreamID(c), eventstore.Any, []eventstore.EventData{{
			ID: newID(), Type: typ, Data: data,
			Metadata: eventstore.Metadata{OccurredAt: at, Actor: "user:marta.kowalska", Channel: "web", SchemaVersion: schema},
		}}...)
		if err != nil {
			t.Fatalf("append %s: %v", typ, err)
		}
		r.stream, r.typ, r.customer, r.pos = domain.StreamID(c), typ, c, res.Position
		sd.recs = append(sd.recs, r)
	}
	for i := range customers {
		c := newID()
		sd.customers = append(sd.customers, c)
		add(c, domain.CustomerRegistered{CustomerID: c, Name: custNames[i%len(custNames)], Country: "FR"}, rec{})
	}
	for range touches {
		c := sd.customers[rng.IntN(len(sd.customers))]
		switch rng.IntN(4) {
		case 0, 1:
			amt := int64(100 + rng.IntN(50_000))
			cur := currencies[rng.IntN(len(currencies))]
			add(c, domain.PurchaseCompleted{OrderID: newID(), Amount: amt, Currency: cur,
				Lines: []domain.OrderLine{{SKU: "SNK-42-WHT", Quantity: 1, UnitAmount: amt}}}, rec{amount: amt, currency: cur})
		case 2:
			n := noteBodies[rng.IntN(len(noteBodies))]
			add(c, domain.NoteAdded{Body: n}, rec{note: n})
		default:
			add(c, domain.TicketOpened{TicketID: newID(), Subject: "Colis non reçu", Priority: domain.PriorityHigh, Channel: domain.TicketEmail}, rec{})
		}
	}
	return sd
}

// compile compiles src or fails the test.
func compile(t testing.TB, name, src string, lim Limits) *Program {
	t.Helper()
	p, err := Compile(name, src, lim)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return p
}

// replayTo rebuilds the projections from the store into b and returns the
// joined error of the replay.
func replayTo(src projections.Source, b projections.Backend, ps ...projections.Projection) error {
	cfg := projections.Config{ProgressInterval: time.Hour}
	return projections.Replay(context.Background(), src, b, ps, cfg, nil)
}

// readAll returns the read model's state (unpartitioned) or partitions,
// decoded for comparison.
func readAll(t testing.TB, b projections.Backend, p *Program) any {
	t.Helper()
	var out any
	err := projections.View(context.Background(), b, p.Name(), func(r projections.Reader) error {
		if !p.Partitioned() {
			raw, ok, err := ReadState(context.Background(), r, "")
			if err != nil || !ok {
				return errors.Join(err, errors.New("no state"))
			}
			return json.Unmarshal(raw, &out)
		}
		m := map[string]any{}
		after := ""
		for {
			page, next, err := ListPartitions(context.Background(), r, after, 7)
			if err != nil {
				return err
			}
			for _, pt := range page {
				var v any
				if err := json.Unmarshal(pt.State, &v); err != nil {
					return err
				}
				m[pt.Key] = v
			}
			if next == "" {
				break
			}
			after = next
		}
		out = m
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", p.Name(), err)
	}
	return out
}

// normal round-trips v through JSON, so that Go expectations compare with
// decoded read models (numbers as float64).
func normal(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameJSON(t testing.TB, what string, got, want any) {
	t.Helper()
	if w := normal(t, want); !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %.600s\nwant %.600s", what, gb, wb)
	}
}

var _ sync.Once
