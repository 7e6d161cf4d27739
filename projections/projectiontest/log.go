package projectiontest

// Shared fixtures for read-model tests: a Log of envelopes built through the
// real codec, folding in batches, dumping a namespace, a seeded generator of
// valid histories, digests, and a subtest per backend.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

// Day0 is the scenarios' first day; events are recorded long after they
// occurred (RecordedBase), as an import would.
var (
	Day0         = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	RecordedBase = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	eventIDSpace = uuid.MustParse("0f5b9c52-6f0e-4d7c-9f7a-3c1d2e4b5a69")
)

// Log is an append-only log of envelopes across customer streams, built
// through the real codec (domain.Encode, then projections.Envelope) so that
// projections see exactly what the engine hands them. The zero Log is
// ready to use; without a testing.TB (NewLog) it panics on an event the
// codec refuses, which is a bug in the test's fixture.
type Log struct {
	t        testing.TB
	envs     []domain.Envelope
	versions map[uuid.UUID]uint64
}

// NewLog returns an empty log that reports encoding failures to t.
func NewLog(t testing.TB) *Log {
	return &Log{t: t, versions: map[uuid.UUID]uint64{}}
}

// Envelopes returns every envelope added so far, in log order.
func (l *Log) Envelopes() []domain.Envelope { return l.envs }

// MetaOption changes the metadata of an event added to a Log.
type MetaOption func(*domain.Metadata)

// Via sets the event's channel.
func Via(channel string) MetaOption { return func(m *domain.Metadata) { m.Channel = channel } }

// By sets the event's actor (default "user:marta.kowalska").
func By(actor string) MetaOption { return func(m *domain.Metadata) { m.Actor = actor } }

// Because sets the event's correlation and causation ids.
func Because(correlation, causation string) MetaOption {
	return func(m *domain.Metadata) { m.CorrelationID, m.CausationID = correlation, causation }
}

// Add appends ev to the customer's stream as if it occurred at at, and
// returns the envelope as the engine would decode it.
func (l *Log) Add(cid uuid.UUID, at time.Time, ev domain.Event, opts ...MetaOption) domain.Envelope {
	typ, schema, data, err := domain.Encode(ev)
	if err != nil {
		l.fatalf("encode %T: %v", ev, err)
	}
	md := domain.Metadata{OccurredAt: at, Actor: "user:marta.kowalska", SchemaVersion: schema}
	for _, o := range opts {
		o(&md)
	}
	pos := uint64(len(l.envs) + 1)
	if l.versions == nil {
		l.versions = map[uuid.UUID]uint64{}
	}
	version := l.versions[cid]
	l.versions[cid] = version + 1
	env, err := projections.Envelope(eventstore.Record{
		ID:         uuid.NewSHA1(eventIDSpace, fmt.Appendf(nil, "%d", pos)),
		Stream:     domain.StreamID(cid),
		Type:       typ,
		Version:    version,
		Position:   pos,
		RecordedAt: RecordedBase.Add(time.Duration(pos) * time.Millisecond),
		Data:       data,
		Metadata:   eventstore.Metadata(md),
	})
	if err != nil {
		l.fatalf("decode %s: %v", typ, err)
	}
	l.envs = append(l.envs, env)
	return env
}

func (l *Log) fatalf(format string, args ...any) {
	if l.t == nil {
		panic(fmt.Sprintf("projectiontest: "+format, args...))
	}
	l.t.Helper()
	l.t.Fatalf(format, args...)
}

// AddRFC3339 is Add with the time written as RFC 3339, for scenarios
// written out by hand.
func (l *Log) AddRFC3339(cid uuid.UUID, at string, ev domain.Event, opts ...MetaOption) domain.Envelope {
	when, err := time.Parse(time.RFC3339, at)
	if err != nil {
		l.fatalf("scenario time %q: %v", at, err)
	}
	return l.Add(cid, when, ev, opts...)
}

// FoldBatches applies envs to p in namespace ns, batchSize events per batch
// (all in one batch when batchSize is 0).
func FoldBatches(t testing.TB, b projections.Backend, ns string, p projections.Projection, envs []domain.Envelope, batchSize int) {
	t.Helper()
	if batchSize <= 0 {
		batchSize = max(len(envs), 1)
	}
	for start := 0; start < len(envs); start += batchSize {
		end := min(start+batchSize, len(envs))
		if err := projections.ApplyBatch(context.Background(), b, ns, p, envs[start:end]); err != nil {
			t.Fatalf("apply events %d..%d: %v", start, end-1, err)
		}
	}
}

// Query runs fn on a snapshot of namespace ns.
func Query[T any](t testing.TB, b projections.Backend, ns string, fn func(ctx context.Context, r projections.Reader) (T, error)) (T, error) {
	t.Helper()
	var out T
	var qerr error
	err := b.View(context.Background(), ns, func(r projections.Reader) error {
		out, qerr = fn(context.Background(), r)
		return nil
	})
	if err != nil {
		t.Fatalf("view %s: %v", ns, err)
	}
	return out, qerr
}

// Dump returns every key and value of namespace ns, in key order.
func Dump(t testing.TB, b projections.Backend, ns string) string {
	t.Helper()
	var sb strings.Builder
	err := b.View(context.Background(), ns, func(r projections.Reader) error {
		return r.Scan(context.Background(), "", "", func(k string, v []byte) (bool, error) {
			fmt.Fprintf(&sb, "%s = %s\n", k, v)
			return true, nil
		})
	})
	if err != nil {
		t.Fatalf("dump %s: %v", ns, err)
	}
	return sb.String()
}

// RandomHistory generates a valid history of n events over a few
// customers: every event passes the customer aggregate's Check. Occurred
// times wander back and forth (imports) and repeat (ties); identifiers are
// drawn from a small pool so that customers share some; some customers
// are forgotten.
func RandomHistory(t testing.TB, seed uint64, n int) []domain.Envelope {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	l := NewLog(t)
	id := func() uuid.UUID {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		u, _ := uuid.FromBytes(b[:])
		u[6] = (u[6] & 0x0f) | 0x40
		u[8] = (u[8] & 0x3f) | 0x80
		return u
	}
	type cust struct {
		id            uuid.UUID
		agg           *domain.Customer
		tickets, opps []uuid.UUID
		orders        []domain.PurchaseCompleted
	}
	var custs []*cust
	for range 2 + rng.IntN(4) {
		c := &cust{id: id()}
		c.agg = domain.NewCustomer(c.id)
		custs = append(custs, c)
	}
	emails := []string{"Zoe.Nguyen@Example.fr", "zoe.nguyen@example.fr ", "family@example.org", "Ana@Exemplo.pt"}
	phones := []string{"+33 6 12 34 56 78", "0033612345678", "+351 912 345 678"}
	externals := []string{"Shopify:81723", "zendesk:A-1", "shopify:81723"}
	channels := []string{"", "web", "zendesk", "store"}
	currencies := []string{"EUR", "USD", "JPY"}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	pickID := func(s []uuid.UUID) uuid.UUID {
		if len(s) == 0 {
			return id()
		}
		return s[rng.IntN(len(s))]
	}
	clock := Day0
	for len(l.envs) < n {
		i := rng.IntN(len(custs))
		if custs[i].agg.Forgotten() { // a new customer takes the slot
			custs[i] = &cust{id: id()}
			custs[i].agg = domain.NewCustomer(custs[i].id)
		}
		c := custs[i]
		// Mostly forward, sometimes back (an import), sometimes equal.
		switch r := rng.IntN(10); {
		case r < 6:
			clock = clock.Add(time.Duration(rng.IntN(90_000)) * time.Second)
		case r < 8:
			clock = clock.Add(-time.Duration(rng.IntN(400_000)) * time.Second)
		}
		var ev domain.Event
		switch rng.IntN(20) {
		case 0:
			ev = domain.CustomerRegistered{CustomerID: c.id, Name: "Zoë " + pick([]string{"Ångström", "Nguyễn", "O'Brien"}), Locale: "fr-FR", Country: "FR"}
		case 1:
			ev = domain.ProfileUpdated{Name: new("Zoë N."), Company: new(pick([]string{"", "ACME SA"}))}
		case 2, 3:
			switch rng.IntN(3) {
			case 0:
				ev = domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: pick(emails)}
			case 1:
				ev = domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: pick(phones)}
			default:
				ev = domain.IdentifierLinked{Kind: domain.IdentifierExternal, Value: pick(externals)}
			}
		case 4:
			ev = domain.ConsentGranted{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Source: "checkout-form"}
		case 5:
			ev = domain.ConsentWithdrawn{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Reason: "Trop de messages"}
		case 6:
			ev = domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: int64(rng.IntN(3600)), Agent: "user:marta", Outcome: domain.CallConnected, Summary: "Asked about delivery"}
		case 7:
			ev = domain.EmailSent{MessageID: "<m1@x.example>", Subject: "Votre commande", From: "support@shop.example", To: "zoe@example.fr"}
		case 8:
			amount := int64(rng.IntN(100_000))
			o := domain.PurchaseCompleted{OrderID: id(), Amount: amount, Currency: pick(currencies), Lines: []domain.OrderLine{{SKU: "SKU-1", Quantity: 1, UnitAmount: amount}}}
			ev = o
		case 9:
			if len(c.orders) == 0 {
				continue
			}
			o := c.orders[rng.IntN(len(c.orders))]
			st, _ := c.agg.Order(o.OrderID)
			if st.Amount-st.Refunded <= 0 {
				continue
			}
			ev = domain.RefundIssued{RefundID: id(), OrderID: o.OrderID, Amount: 1 + rng.Int64N(st.Amount-st.Refunded), Currency: o.Currency}
		case 10:
			ev = domain.TicketOpened{TicketID: id(), Subject: "Login fails", Priority: domain.PriorityHigh, Channel: domain.TicketEmail}
		case 11:
			ev = domain.TicketUpdated{TicketID: pickID(c.tickets), Status: new(domain.StatusInProgress), Assignee: new("user:jean")}
		case 12:
			ev = domain.TicketResolved{TicketID: pickID(c.tickets), Resolution: "Password reset"}
		case 13:
			ev = domain.TicketReopened{TicketID: pickID(c.tickets), Reason: "Still failing"}
		case 14:
			ev = domain.TicketClosed{TicketID: pickID(c.tickets)}
		case 15:
			ev = domain.OpportunityOpened{OpportunityID: id(), Name: "40 e-bikes", Amount: 9_600_000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2025-06-30"}
		case 16:
			stages := []domain.OpportunityStage{domain.StageProposal, domain.StageNegotiation, domain.StageQualification}
			ev = domain.OpportunityStageChanged{OpportunityID: pickID(c.opps), Stage: stages[rng.IntN(len(stages))]}
		case 17:
			if rng.IntN(2) == 0 {
				ev = domain.OpportunityWon{OpportunityID: pickID(c.opps)}
			} else {
				ev = domain.OpportunityLost{OpportunityID: pickID(c.opps), Reason: domain.LossPrice}
			}
		case 18:
			ev = domain.SurveyAnswered{Survey: "nps", NPS: new(rng.IntN(11)), Comment: "ok"}
		case 19:
			if rng.IntN(8) != 0 {
				ev = domain.CampaignTouched{Campaign: "spring-2025", Channel: domain.CampaignEmail, Action: domain.ActionClicked}
			} else {
				ev = domain.CustomerForgotten{Request: "DSR-1"}
			}
		}
		if c.agg.Check(ev) != nil {
			continue
		}
		c.agg.Apply(ev)
		switch e := ev.(type) {
		case domain.TicketOpened:
			c.tickets = append(c.tickets, e.TicketID)
		case domain.OpportunityOpened:
			c.opps = append(c.opps, e.OpportunityID)
		case domain.PurchaseCompleted:
			c.orders = append(c.orders, e)
		}
		l.Add(c.id, clock, ev, Via(pick(channels)))
	}
	return l.envs
}

// DigestOf activates namespace ns as read model name and returns its
// projections.Digest.
func DigestOf(t testing.TB, b projections.Backend, name, ns string) string {
	t.Helper()
	ctx := context.Background()
	if err := b.Activate(ctx, name, ns); err != nil {
		t.Fatalf("activate %s: %v", ns, err)
	}
	d, err := projections.Digest(ctx, b, name)
	if err != nil {
		t.Fatalf("digest %s: %v", ns, err)
	}
	return d
}

// AllEqual fails t for every entry of digests that differs from the others.
func AllEqual(t testing.TB, digests map[string]string) {
	t.Helper()
	var first, firstKey string
	for k, d := range digests {
		if first == "" {
			first, firstKey = d, k
		} else if d != first {
			t.Errorf("state digest of %s = %s, but %s has %s", k, d, firstKey, first)
		}
	}
}

// EachBackend runs fn in a subtest per read-model backend (memory, bbolt,
// PostgreSQL), each fresh from projectiontest. Subtests rather than
// projectiontest.Backends, so that an unreachable PostgreSQL skips only its
// own subtest, never the memory and bbolt runs.
func EachBackend(t *testing.T, fn func(t *testing.T, b projections.Backend)) {
	t.Helper()
	for _, kind := range []string{"memory", "bolt", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var b projections.Backend
			switch kind {
			case "memory":
				b = Memory(t)
			case "bolt":
				b = Bolt(t)
			default:
				b = Postgres(t)
			}
			fn(t, b)
		})
	}
}

// BatchingIsInvisible folds history into b twice — in one batch, and in
// batches of 1 to 20 events drawn from seed — and fails t unless both
// namespaces hold the same, non-empty bytes: how events are batched must
// never show in a read model.
func BatchingIsInvisible(t testing.TB, b projections.Backend, p projections.Projection, history []domain.Envelope, seed uint64) {
	t.Helper()
	ctx := context.Background()
	one, many := fmt.Sprintf("%s_one_%d", p.Name(), seed), fmt.Sprintf("%s_many_%d", p.Name(), seed)
	if err := projections.ApplyBatch(ctx, b, one, p, history); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for rest := history; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(20))
		if err := projections.ApplyBatch(ctx, b, many, p, rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	a, z := Dump(t, b, one), Dump(t, b, many)
	if a == "" {
		t.Errorf("%s seed %d: empty read model", p.Name(), seed)
	}
	if a != z {
		t.Errorf("%s seed %d: one batch and many differ:\n%s\n---\n%s", p.Name(), seed, a, z)
	}
}

// BatchSizesAgree folds envs into b in batches of every size in 0 (one
// batch), 1, 2, 7 and 64, and fails t unless each result holds exactly the
// bytes, and the digest, of one batch folded in memory. It returns that
// reference dump, for checks that the history exercised the read model.
func BatchSizesAgree(t testing.TB, b projections.Backend, p projections.Projection, envs []domain.Envelope) string {
	t.Helper()
	ns := projections.NamespaceFor(p.Name(), p.Version(), 1)
	reference := projections.NewMemory()
	FoldBatches(t, reference, ns, p, envs, 0)
	want := Dump(t, reference, ns)
	digests := map[string]string{"memory, one batch": DigestOf(t, reference, p.Name(), ns)}
	for _, size := range []int{0, 1, 2, 7, 64} {
		FoldBatches(t, b, ns, p, envs, size)
		if got := Dump(t, b, ns); got != want {
			t.Errorf("%s, batches of %d: contents differ from one batch in memory:\n%s\nwant\n%s", p.Name(), size, got, want)
		}
		digests[fmt.Sprintf("batches of %d", size)] = DigestOf(t, b, p.Name(), ns)
		if err := b.Drop(context.Background(), ns); err != nil {
			t.Fatal(err)
		}
	}
	AllEqual(t, digests)
	return want
}
