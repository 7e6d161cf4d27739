package engage_test

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/engage"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/cxledger/cxledger/projections/reactor/reactortest"
)

// ledgerAppender decides each emission against the customer's history as
// the ledger's write path does.
type ledgerAppender = reactortest.Appender

// clock is a settable test clock.
type clock = reactortest.Clock

var (
	base     = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	customer = uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	ticket   = uuid.MustParse("73614f1c-77e4-43b3-9a90-542472fc6bc1")
	order    = uuid.MustParse("44de0bb8-b9b6-42cb-b699-a1d767a2699c")
	deal     = uuid.MustParse("35a49188-cc59-45b8-9def-6ecd78b7cf3a")
)

const day = 24 * time.Hour

// storeClocks folds the customer's stream, as adapters/ledger does.
type storeClocks struct{ s eventstore.Store }

func (c storeClocks) TicketClock(ctx context.Context, customer, ticket uuid.UUID) (domain.TicketClock, bool, error) {
	agg, _, err := reactortest.Fold(ctx, c.s, customer)
	if err != nil {
		return domain.TicketClock{}, false, err
	}
	k, ok := agg.TicketClock(ticket)
	return k, ok, nil
}

// fact is one event of a case's history, offset from base.
type fact struct {
	at time.Duration
	ev domain.Event
}

func add(t *testing.T, s eventstore.Store, at time.Time, e domain.Event) uuid.UUID {
	t.Helper()
	return reactortest.Add(t, s, customer, at, e)
}

// emitted returns what reactor name stored in the customer's stream.
func emitted(t *testing.T, s eventstore.Store, name string) []domain.Envelope {
	t.Helper()
	recs, err := s.ReadStream(context.Background(), domain.StreamID(customer), eventstore.ReadStreamOptions{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var out []domain.Envelope
	for _, r := range recs {
		if r.Metadata.Actor != reactor.Actor(name) {
			continue
		}
		e, err := projections.Envelope(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// run runs r over s and b until the log is read to its head and no due
// timer is left at the clock's time, then a few timer rounds more.
func run(t *testing.T, s eventstore.Store, b projections.Backend, r reactor.Reactor, clk *clock) {
	t.Helper()
	e := reactor.New(s, b, ledgerAppender{Store: s}, reactor.Config{
		Now: clk.Now, TimerInterval: 5 * time.Millisecond, RetryDelay: 5 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err := e.Register(r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := e.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Error != "" {
			t.Fatalf("reactor failed: %s", st[0].Error)
		}
		if st[0].Checkpoint >= head && (st[0].Pending == 0 || st[0].NextDue.After(clk.Now())) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %+v", st[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // ten more timer rounds: nothing more fires
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRules(t *testing.T) {
	t.Parallel()
	registered := domain.CustomerRegistered{CustomerID: customer, Name: "Zoë Ångström-Nguyễn", Country: "FR"}
	opened := func(p domain.TicketPriority) domain.TicketOpened {
		return domain.TicketOpened{TicketID: ticket, Subject: "Colis non reçu", Priority: p, Channel: domain.TicketEmail}
	}
	purchase := func(amount int64) domain.PurchaseCompleted {
		return domain.PurchaseCompleted{OrderID: order, Amount: amount, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "MOULIN-1", Quantity: 1, UnitAmount: amount}}}
	}
	marketingConsent := domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout-form"}
	followUp := must(engage.NewPurchaseFollowUp(engage.FollowUpConfig{MinAmount: map[string]int64{"EUR": 5000}}))
	marketing := engage.Message{Purpose: domain.PurposeMarketing, Template: "cross-sell", Campaign: "après-achat"}
	marketingFollowUp := must(engage.NewPurchaseFollowUp(engage.FollowUpConfig{After: 3 * day, Message: marketing}))
	thanks := must(engage.NewThankYouWon(engage.ThankYouConfig{}))

	timer := func(name, key string, due time.Duration) uuid.UUID {
		return reactor.Timer{Key: key, Due: base.Add(due)}.ID(name)
	}
	escalated := func(p domain.TicketPriority, breach string, secs int64) domain.Event {
		return domain.TicketEscalated{TicketID: ticket, Priority: p, Breach: breach, SLASeconds: secs}
	}
	queued := func(trigger uuid.UUID, m engage.Message) domain.Event {
		return domain.MessageQueued{MessageID: uuid.NewSHA1(trigger, []byte(m.Template)), Channel: m.Channel, Template: m.Template, Purpose: m.Purpose, Campaign: m.Campaign}
	}
	followUpMsg := engage.Message{Channel: domain.ConsentEmail, Template: "purchase-follow-up", Purpose: domain.PurposeService}
	marketingMsg := engage.Message{Channel: domain.ConsentEmail, Template: "cross-sell", Purpose: domain.PurposeMarketing, Campaign: "après-achat"}
	thanksMsg := engage.Message{Channel: domain.ConsentEmail, Template: "thank-you-won", Purpose: domain.PurposeService}
	slaKey, followKey := "sla/"+ticket.String(), "follow_up/"+order.String()

	tests := []struct {
		name    string
		reactor reactor.Reactor
		sla     bool // the SLA escalation over the case's store
		history []fact
		// quiet is a clock offset at which nothing is emitted yet (0: not
		// checked); at the clock offset at which want holds.
		quiet, at time.Duration
		// want is what is emitted, at wantAt, caused by the event of
		// history[cause] (cause >= 0) or by causeTimer.
		want       func(ids []uuid.UUID) domain.Event
		wantAt     time.Duration
		cause      int
		causeTimer uuid.UUID
	}{
		{
			name: "high ticket escalated at exactly 4h", sla: true,
			history: []fact{{0, registered}, {time.Minute, opened(domain.PriorityHigh)}},
			quiet:   time.Minute + 4*time.Hour - time.Second, at: time.Minute + 4*time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityHigh, "no first response within 4h", 4*3600)
			},
			wantAt: time.Minute + 4*time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, time.Minute+4*time.Hour),
		},
		{
			name: "urgent ticket escalated at exactly 1h", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityUrgent)}},
			quiet:   time.Hour - time.Microsecond, at: time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityUrgent, "no first response within 1h", 3600)
			},
			wantAt: time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, time.Hour),
		},
		{
			name: "first response cancels the escalation", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityHigh)},
				{3 * time.Hour, domain.TicketUpdated{TicketID: ticket, Comment: "Nous regardons.", FirstResponse: true}}},
			at: 30 * day,
		},
		{
			name: "a comment without first response does not cancel", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityLow)},
				{time.Hour, domain.TicketUpdated{TicketID: ticket, Comment: "Note interne"}}},
			quiet: 72*time.Hour - time.Second, at: 72 * time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityLow, "no first response within 72h", 72*3600)
			},
			wantAt: 72 * time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, 72*time.Hour),
		},
		{
			name: "resolution cancels the escalation", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityNormal)},
				{2 * time.Hour, domain.TicketResolved{TicketID: ticket, Resolution: "Colis retrouvé"}}},
			at: 30 * day,
		},
		{
			name: "closing cancels the escalation", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityUrgent)},
				{time.Minute, domain.TicketClosed{TicketID: ticket, Reason: "Doublon"}}},
			at: 30 * day,
		},
		// The clock rule (domain.TicketClock), by hand: the deadline is the
		// cycle's start plus the SLA of the priority in force until the
		// response; a reopening starts a new cycle at the reopen time.
		{
			name: "priority raised: the deadline is recomputed from the opening", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityNormal)},
				{time.Hour, domain.TicketUpdated{TicketID: ticket, Priority: new(domain.PriorityHigh)}}},
			quiet: 4*time.Hour - time.Second, at: 4 * time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityHigh, "no first response within 4h", 4*3600)
			},
			wantAt: 4 * time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, 4*time.Hour),
		},
		{
			name: "priority raised past its new deadline: escalated at once, dated at the deadline", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityNormal)},
				{2 * time.Hour, domain.TicketUpdated{TicketID: ticket, Priority: new(domain.PriorityUrgent)}}},
			at: 2 * time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityUrgent, "no first response within 1h", 3600)
			},
			wantAt: time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, time.Hour),
		},
		{
			name: "priority lowered: the deadline moves later", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityHigh)},
				{time.Hour, domain.TicketUpdated{TicketID: ticket, Priority: new(domain.PriorityLow)}}},
			quiet: 72*time.Hour - time.Second, at: 72 * time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityLow, "no first response within 72h", 72*3600)
			},
			wantAt: 72 * time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, 72*time.Hour),
		},
		{
			name: "a priority change after the response escalates nothing", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityNormal)},
				{time.Hour, domain.TicketUpdated{TicketID: ticket, Comment: "On regarde.", FirstResponse: true}},
				{2 * time.Hour, domain.TicketUpdated{TicketID: ticket, Priority: new(domain.PriorityUrgent)}}},
			at: 30 * day,
		},
		{
			name: "a reopened ticket gets a new deadline from the reopen time", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityHigh)},
				{time.Hour, domain.TicketUpdated{TicketID: ticket, Comment: "On regarde.", FirstResponse: true}},
				{2 * time.Hour, domain.TicketResolved{TicketID: ticket, Resolution: "Colis retrouvé"}},
				{10 * time.Hour, domain.TicketReopened{TicketID: ticket, Reason: "Colis abîmé"}}},
			quiet: 14*time.Hour - time.Second, at: 14 * time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityHigh, "no response within 4h of the reopening", 4*3600)
			},
			wantAt: 14 * time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, 14*time.Hour),
		},
		{
			name: "a reopening is timed at the current priority", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityLow)},
				{time.Hour, domain.TicketUpdated{TicketID: ticket, Comment: "On regarde.", FirstResponse: true}},
				{2 * time.Hour, domain.TicketUpdated{TicketID: ticket, Priority: new(domain.PriorityUrgent)}},
				{3 * time.Hour, domain.TicketResolved{TicketID: ticket, Resolution: "Remboursé"}},
				{5 * time.Hour, domain.TicketReopened{TicketID: ticket, Reason: "Pas reçu"}}},
			quiet: 6*time.Hour - time.Second, at: 6 * time.Hour,
			want: func([]uuid.UUID) domain.Event {
				return escalated(domain.PriorityUrgent, "no response within 1h of the reopening", 3600)
			},
			wantAt: 6 * time.Hour, cause: -1, causeTimer: timer("sla_escalation", slaKey, 6*time.Hour),
		},
		{
			name: "a response after the reopening cancels its escalation", sla: true,
			history: []fact{{0, registered}, {0, opened(domain.PriorityHigh)},
				{time.Hour, domain.TicketResolved{TicketID: ticket, Resolution: "Colis retrouvé"}},
				{2 * time.Hour, domain.TicketReopened{TicketID: ticket, Reason: "Colis abîmé"}},
				{3 * time.Hour, domain.TicketUpdated{TicketID: ticket, Comment: "Nouvel envoi.", FirstResponse: true}}},
			at: 30 * day,
		},
		{
			name: "follow-up queued 7 days after the purchase", reactor: followUp,
			history: []fact{{0, registered}, {time.Hour, purchase(7900)}},
			quiet:   time.Hour + 7*day - time.Second, at: time.Hour + 7*day,
			want: func([]uuid.UUID) domain.Event {
				return queued(timer("purchase_follow_up", followKey, time.Hour+7*day), followUpMsg)
			},
			wantAt: time.Hour + 7*day, cause: -1, causeTimer: timer("purchase_follow_up", followKey, time.Hour+7*day),
		},
		{
			name: "no follow-up below the minimum amount", reactor: followUp,
			history: []fact{{0, registered}, {0, purchase(4999)}},
			at:      30 * day,
		},
		{
			name: "a refund cancels the follow-up", reactor: followUp,
			history: []fact{{0, registered}, {0, purchase(7900)},
				{2 * day, domain.RefundIssued{RefundID: uuid.New(), OrderID: order, Amount: 7900, Currency: "EUR", Reason: "Retour"}}},
			at: 30 * day,
		},
		{
			name: "marketing follow-up refused without consent", reactor: marketingFollowUp,
			history: []fact{{0, registered}, {0, purchase(7900)}},
			at:      30 * day,
		},
		{
			name: "marketing follow-up refused after withdrawal", reactor: marketingFollowUp,
			history: []fact{{0, registered}, {0, marketingConsent}, {0, purchase(7900)},
				{day, domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing}}},
			at: 30 * day,
		},
		{
			name: "marketing follow-up stored with consent", reactor: marketingFollowUp,
			history: []fact{{0, registered}, {0, marketingConsent}, {0, purchase(7900)}},
			quiet:   3*day - time.Second, at: 3 * day,
			want: func([]uuid.UUID) domain.Event {
				return queued(timer("purchase_follow_up", followKey, 3*day), marketingMsg)
			},
			wantAt: 3 * day, cause: -1, causeTimer: timer("purchase_follow_up", followKey, 3*day),
		},
		{
			name: "thank-you on a won opportunity, at once", reactor: thanks,
			history: []fact{{0, registered},
				{0, domain.OpportunityOpened{OpportunityID: deal, Name: "40 vélos", Amount: 9_600_000, Currency: "EUR", Stage: domain.StageProposal, ExpectedClose: "2025-06-30"}},
				{time.Hour, domain.OpportunityWon{OpportunityID: deal, Comment: "Signé"}}},
			at:     time.Hour,
			want:   func(ids []uuid.UUID) domain.Event { return queued(ids[2], thanksMsg) },
			wantAt: time.Hour, cause: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
				s := memstore.New(memstore.Config{})
				ids := make([]uuid.UUID, len(tt.history))
				for i, f := range tt.history {
					ids[i] = add(t, s, base.Add(f.at), f.ev)
				}
				r := tt.reactor
				if tt.sla {
					r = must(engage.NewSLAEscalation(engage.SLAConfig{Clocks: storeClocks{s}}))
				}
				name := r.Name()
				clk := reactortest.NewClock(base)
				if tt.quiet > 0 {
					clk.Set(base.Add(tt.quiet))
					run(t, s, b, r, clk)
					if got := emitted(t, s, name); len(got) != 0 {
						t.Fatalf("emitted before due: %+v", got)
					}
				}
				clk.Set(base.Add(tt.at))
				check := func(when string) {
					t.Helper()
					got := emitted(t, s, name)
					if tt.want == nil {
						if len(got) != 0 {
							t.Fatalf("%s: emitted %+v, want nothing", when, got)
						}
						return
					}
					if len(got) != 1 {
						t.Fatalf("%s: emitted %d events, want 1: %+v", when, len(got), got)
					}
					if want := tt.want(ids); !reflect.DeepEqual(got[0].Event, want) {
						t.Errorf("%s: emitted %#v\nwant %#v", when, got[0].Event, want)
					}
					cause := tt.causeTimer
					if tt.cause >= 0 {
						cause = ids[tt.cause]
					}
					if md := got[0].Metadata; !md.OccurredAt.Equal(base.Add(tt.wantAt)) || md.CausationID != cause.String() {
						t.Errorf("%s: metadata %+v, want occurred at %s, caused by %s", when, md, base.Add(tt.wantAt), cause)
					}
				}
				run(t, s, b, r, clk)
				check("run")
				// Replay from position 0: the same ids, nothing twice.
				if err := b.Drop(context.Background(), reactor.Namespace(name)); err != nil {
					t.Fatal(err)
				}
				run(t, s, b, r, clk)
				check("replay")
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name string
		err  func() error
	}{
		{"sla unknown priority", func() error {
			_, err := engage.NewSLAEscalation(engage.SLAConfig{SLA: map[domain.TicketPriority]time.Duration{"critical": time.Hour}, Clocks: storeClocks{}})
			return err
		}},
		{"sla without clocks", func() error {
			_, err := engage.NewSLAEscalation(engage.SLAConfig{})
			return err
		}},
		{"sla zero", func() error {
			_, err := engage.NewSLAEscalation(engage.SLAConfig{SLA: map[domain.TicketPriority]time.Duration{domain.PriorityHigh: 0}, Clocks: storeClocks{}})
			return err
		}},
		{"sla fraction of a second", func() error {
			_, err := engage.NewSLAEscalation(engage.SLAConfig{SLA: map[domain.TicketPriority]time.Duration{domain.PriorityHigh: 1500 * time.Millisecond}, Clocks: storeClocks{}})
			return err
		}},
		{"follow-up negative delay", func() error {
			_, err := engage.NewPurchaseFollowUp(engage.FollowUpConfig{After: -time.Hour})
			return err
		}},
		{"follow-up negative minimum", func() error {
			_, err := engage.NewPurchaseFollowUp(engage.FollowUpConfig{MinAmount: map[string]int64{"EUR": -1}})
			return err
		}},
		{"follow-up push channel", func() error {
			_, err := engage.NewPurchaseFollowUp(engage.FollowUpConfig{Message: engage.Message{Channel: domain.ConsentPush}})
			return err
		}},
		{"thank-you analytics purpose", func() error {
			_, err := engage.NewThankYouWon(engage.ThankYouConfig{Message: engage.Message{Purpose: domain.PurposeAnalytics}})
			return err
		}},
	}
	for _, tt := range bad {
		if tt.err() == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	for _, r := range []reactor.Reactor{
		must(engage.NewSLAEscalation(engage.SLAConfig{SLA: map[domain.TicketPriority]time.Duration{domain.PriorityLow: 5 * day}, Clocks: storeClocks{memstore.New(memstore.Config{})}})),
		must(engage.NewPurchaseFollowUp(engage.FollowUpConfig{})),
		must(engage.NewThankYouWon(engage.ThankYouConfig{Message: engage.Message{Channel: domain.ConsentSMS}})),
	} {
		if err := reactor.Validate(r); err != nil {
			t.Errorf("%s: %v", r.Name(), err)
		}
	}
}
