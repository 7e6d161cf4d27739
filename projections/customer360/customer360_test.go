package customer360_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/customer360"
)

var (
	zoe     = uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	order1  = uuid.MustParse("44de0bb8-b9b6-42cb-b699-a1d767a2699c")
	order2  = uuid.MustParse("0a6f3c1e-2b4d-4e5f-8a9b-1c2d3e4f5a6b")
	order3  = uuid.MustParse("9e8d7c6b-5a49-4382-b716-05f4e3d2c1b0")
	refund  = uuid.MustParse("457583b2-585c-4972-abb0-3fb81e8c1e8a")
	ticket1 = uuid.MustParse("73614f1c-77e4-43b3-9a90-542472fc6bc1")
	ticket2 = uuid.MustParse("2f1e0d9c-8b7a-4695-a4b3-c2d1e0f9a8b7")
	opp1    = uuid.MustParse("35a49188-cc59-45b8-9def-6ecd78b7cf3a")
	opp2    = uuid.MustParse("c3b2a190-8f7e-4d6c-9b5a-493827160f5e")
)

var ns = projections.NamespaceFor(customer360.Name, customer360.Version, 1)

func at(h int) time.Time { return projectiontest.Day0.Add(time.Duration(h) * time.Hour) }

// scenario is the customer: she registers, links an e-mail in
// mixed case and a phone written with spaces, grants then withdraws SMS
// marketing, buys three times in two currencies with one partial refund,
// opens two tickets and has one resolved, answers a survey with 9 — plus
// imported facts that arrive late with old occurred-at times, an
// opportunity won and one lost, and finally her erasure.
func scenario(t testing.TB) (l *projectiontest.Log, beforeErasure int) {
	l = projectiontest.NewLog(t)
	l.Add(zoe, at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë Ångström-Nguyễn", Locale: "fr-FR", Country: "FR"}, projectiontest.Via("web"))
	l.Add(zoe, at(1), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "Zoe.Nguyen@Example.FR"}, projectiontest.Via("web"))
	l.Add(zoe, at(2), domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "+33 6 12 34 56 78"}, projectiontest.Via("web"))
	l.Add(zoe, at(3), domain.ConsentGranted{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Source: "checkout-form", Wording: "sms-2025-01"}, projectiontest.Via("web")) // pos 4
	l.Add(zoe, at(4), domain.PurchaseCompleted{OrderID: order1, Amount: 1250, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SOCK-3P", Quantity: 1, UnitAmount: 1250}}}, projectiontest.Via("web"))
	l.Add(zoe, at(5), domain.PurchaseCompleted{OrderID: order2, Amount: 3000, Currency: "USD", Lines: []domain.OrderLine{{SKU: "CAP-1", Quantity: 2, UnitAmount: 1500}}}, projectiontest.Via("store"))
	l.Add(zoe, at(6), domain.ConsentWithdrawn{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Reason: "Trop de messages 📱"}, projectiontest.Via("sms")) // pos 7
	l.Add(zoe, at(7), domain.PurchaseCompleted{OrderID: order3, Amount: 4500, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SNK-42", Quantity: 1, UnitAmount: 4500}}}, projectiontest.Via("web"))
	l.Add(zoe, at(8), domain.RefundIssued{RefundID: refund, OrderID: order3, Amount: 1500, Currency: "EUR", Reason: "Socks returned"}, projectiontest.By("service:billing"))
	l.Add(zoe, at(9), domain.TicketOpened{TicketID: ticket1, Subject: "Login fails", Priority: domain.PriorityHigh, Channel: domain.TicketEmail}, projectiontest.Via("zendesk"))
	l.Add(zoe, at(10), domain.TicketOpened{TicketID: ticket2, Subject: "Colis non reçu", Priority: domain.PriorityNormal, Channel: domain.TicketPhone}, projectiontest.Via("zendesk"))
	l.Add(zoe, at(11), domain.TicketUpdated{TicketID: ticket2, Status: new(domain.StatusInProgress), Assignee: new("user:jean-pierre"), FirstResponse: true}, projectiontest.Via("zendesk"))
	l.Add(zoe, at(12), domain.TicketResolved{TicketID: ticket1, Resolution: "Password reset"}, projectiontest.Via("zendesk"))
	l.Add(zoe, at(13), domain.SurveyAnswered{Survey: "nps-post-purchase", NPS: new(9), Comment: "Très bon service"}, projectiontest.Via("web")) // pos 14
	l.Add(zoe, at(14), domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta", Outcome: domain.CallConnected}, projectiontest.Via("zendesk"))
	l.Add(zoe, at(15), domain.OpportunityOpened{OpportunityID: opp1, Name: "40 e-bikes", Amount: 9_600_000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2025-06-30"})
	l.Add(zoe, at(16), domain.OpportunityOpened{OpportunityID: opp2, Name: "Helmets", Amount: 50_000, Currency: "EUR", Stage: domain.StageProspecting, ExpectedClose: "2025-05-01"})
	l.Add(zoe, at(17), domain.OpportunityStageChanged{OpportunityID: opp1, Stage: domain.StageProposal})
	l.Add(zoe, at(18), domain.OpportunityLost{OpportunityID: opp2, Reason: domain.LossPrice})
	l.Add(zoe, at(19), domain.ProfileUpdated{Company: new("Société Générale d'Électricité")})
	// Imports: old facts recorded late. They must not move the latest NPS,
	// the consent state or the last touch, but the e-mail is the first touch.
	l.Add(zoe, at(-48), domain.EmailReceived{MessageID: "<a@b.fr>", Subject: "Question", From: "zoe.nguyen@example.fr", To: "support@shop.example"}, projectiontest.Via("import"), projectiontest.By("import:2025-03-crm"))
	l.Add(zoe, at(-24), domain.SurveyAnswered{Survey: "nps-2024", NPS: new(3)}, projectiontest.Via("import"), projectiontest.By("import:2025-03-crm"))
	l.Add(zoe, at(-72), domain.ConsentGranted{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Source: "paper-form"}, projectiontest.Via("import"), projectiontest.By("import:2025-03-crm"))
	l.Add(zoe, at(-72), domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeNewsletters, Source: "paper-form"}, projectiontest.Via("import"), projectiontest.By("import:2025-03-crm")) // pos 24
	beforeErasure = len(l.Envelopes())
	l.Add(zoe, at(30), domain.CustomerForgotten{Request: "DSR-2025-0042", Reason: "GDPR art. 17"})
	return l, beforeErasure
}

// want is the view after the scenario, written by hand from it.
func want() customer360.View {
	return customer360.View{
		CustomerID:   zoe,
		Registered:   true,
		RegisteredAt: at(0),
		Profile:      customer360.Profile{Name: "Zoë Ångström-Nguyễn", Locale: "fr-FR", Country: "FR", Company: "Société Générale d'Électricité"},
		Identifiers: []customer360.Identifier{
			{Kind: domain.IdentifierEmail, Value: "zoe.nguyen@example.fr", LinkedAt: at(1)},
			{Kind: domain.IdentifierPhone, Value: "+33612345678", LinkedAt: at(2)},
		},
		Consents: []customer360.Consent{
			{Channel: domain.ConsentEmail, Purpose: domain.PurposeNewsletters, Status: customer360.ConsentGranted,
				GrantedAt: at(-72), Source: "paper-form", GrantedPosition: 24},
			{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Status: customer360.ConsentWithdrawn,
				GrantedAt: at(3), Source: "checkout-form", Wording: "sms-2025-01", GrantedPosition: 4,
				WithdrawnAt: at(6), Reason: "Trop de messages 📱", WithdrawnPosition: 7},
		},
		FirstTouch: &customer360.Touch{At: at(-48), Type: domain.TypeEmailReceived, Channel: "email"},
		LastTouch:  &customer360.Touch{At: at(14), Type: domain.TypeCallLogged, Channel: "phone"},
		// Purchases and surveys take the metadata's channel; tickets,
		// calls and e-mails their own medium.
		Touches: map[string]int64{"web": 3, "store": 1, "email": 2, "phone": 2, "import": 1},
		OpenTickets: []customer360.Ticket{
			{ID: ticket2, Subject: "Colis non reçu", Priority: domain.PriorityNormal, Status: domain.StatusInProgress, Channel: domain.TicketPhone, OpenedAt: at(10), Assignee: "user:jean-pierre"},
		},
		OpenOpportunities: []customer360.Opportunity{
			{ID: opp1, Name: "40 e-bikes", Stage: domain.StageProposal, Outcome: domain.OutcomeOpen, Amount: 9_600_000, Currency: "EUR", ExpectedClose: "2025-06-30", OpenedAt: at(15)},
		},
		Orders: []customer360.Order{
			{ID: order1, Amount: 1250, Currency: "EUR", PurchasedAt: at(4)},
			{ID: order2, Amount: 3000, Currency: "USD", PurchasedAt: at(5)},
			{ID: order3, Amount: 4500, Currency: "EUR", Refunded: 1500, PurchasedAt: at(7)},
		},
		TicketCount:      2,
		OpportunityCount: 2,
		Spend:            map[string]int64{"EUR": 5750, "USD": 3000},
		Refunds:          map[string]int64{"EUR": 1500},
		LifetimeValue:    map[string]int64{"EUR": 4250, "USD": 3000},
		LatestNPS:        &customer360.NPS{Score: 9, Survey: "nps-post-purchase", Comment: "Très bon service", At: at(13), Position: 14},
		Events:           24,
		StreamVersion:    23,
		Position:         24,
	}
}

// wantErased is want after CustomerForgotten: personal data blanked,
// counts, statuses and money kept, the erasure shown.
func wantErased() customer360.View {
	v := want()
	v.Profile = customer360.Profile{}
	v.Identifiers = nil
	v.Consents[1].Reason = ""
	v.OpenTickets[0].Subject = ""
	v.OpenOpportunities[0].Name = ""
	v.LatestNPS.Comment = ""
	v.Erasure = &customer360.Erasure{At: at(30), Request: "DSR-2025-0042"}
	v.Events, v.StreamVersion, v.Position = 25, 24, 25
	return v
}

func get(t *testing.T, b projections.Backend, id uuid.UUID) (customer360.View, error) {
	t.Helper()
	return projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) (customer360.View, error) {
		return customer360.Get(ctx, r, id)
	})
}

// same compares views by their JSON, which covers every field and shows a
// readable difference.
func same(t *testing.T, label string, got, want customer360.View) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", label, g, w)
	}
}

func TestScenario(t *testing.T) {
	l, beforeErasure := scenario(t)
	digests := map[string]string{}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for _, batch := range []int{0, 1, 5} {
			t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
				defer func() {
					digests[t.Name()] = projectiontest.DigestOf(t, b, customer360.Name, ns)
					_ = b.Drop(context.Background(), ns)
				}()
				p := customer360.New()
				projectiontest.FoldBatches(t, b, ns, p, l.Envelopes()[:beforeErasure], batch)
				got, err := get(t, b, zoe)
				if err != nil {
					t.Fatal(err)
				}
				same(t, "view", got, want())
				if got.Segment != "" || got.ChurnRisk != nil {
					t.Errorf("Get filled Segment %q / ChurnRisk %v; the query layer owns them", got.Segment, got.ChurnRisk)
				}

				projectiontest.FoldBatches(t, b, ns, p, l.Envelopes()[beforeErasure:], batch)
				got, err = get(t, b, zoe)
				if err != nil {
					t.Fatal(err)
				}
				same(t, "view after erasure", got, wantErased())
				contents := projectiontest.Dump(t, b, ns)
				for _, pii := range []string{"Zoë", "Nguy", "zoe.nguyen", "+33", "Électricité", "Login fails", "Colis", "e-bikes", "Très bon", "Trop de"} {
					if strings.Contains(contents, pii) {
						t.Errorf("after erasure the read model still holds %q", pii)
					}
				}
			})
		}
	})
	projectiontest.AllEqual(t, digests)
}

// Events that follow an erasure (only possible in imported history) add
// no personal data, but still count and move money.
func TestAfterErasure(t *testing.T) {
	l, _ := scenario(t)
	l.Add(zoe, at(40), domain.ProfileUpdated{Name: new("Zoë again")})
	l.Add(zoe, at(41), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "zoe@new.example"})
	l.Add(zoe, at(42), domain.TicketOpened{TicketID: uuid.MustParse("6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"), Subject: "Private matter", Priority: domain.PriorityLow, Channel: domain.TicketWeb})
	l.Add(zoe, at(43), domain.PurchaseCompleted{OrderID: uuid.MustParse("5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"), Amount: 700, Currency: "JPY", Lines: []domain.OrderLine{{SKU: "TEA", Quantity: 1, UnitAmount: 700}}}, projectiontest.Via("web"))
	b := projections.NewMemory()
	projectiontest.FoldBatches(t, b, ns, customer360.New(), l.Envelopes(), 0)
	v, err := get(t, b, zoe)
	if err != nil {
		t.Fatal(err)
	}
	if v.Profile != (customer360.Profile{}) || v.Identifiers != nil {
		t.Errorf("personal data after erasure: %+v %+v", v.Profile, v.Identifiers)
	}
	if len(v.OpenTickets) != 2 || v.OpenTickets[1].Subject != "" || v.TicketCount != 3 {
		t.Errorf("open tickets after erasure = %+v (count %d), want the new one without subject", v.OpenTickets, v.TicketCount)
	}
	if v.Spend["JPY"] != 700 || v.LifetimeValue["JPY"] != 700 || v.Events != 29 || v.LastTouch.At != at(43) {
		t.Errorf("money or counts after erasure: spend %v, ltv %v, events %d, last touch %v", v.Spend, v.LifetimeValue, v.Events, v.LastTouch)
	}
}

func TestGetUnknownCustomer(t *testing.T) {
	b := projections.NewMemory()
	l, _ := scenario(t)
	projectiontest.FoldBatches(t, b, ns, customer360.New(), l.Envelopes(), 0)
	_, err := get(t, b, uuid.MustParse("b700c11a-ec2a-4426-aec1-5da2f454f7d6"))
	if !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("Get(unknown) error = %v, want ErrNotFound", err)
	}
}

func TestTouchChannel(t *testing.T) {
	env := func(ev domain.Event, channel string) domain.Envelope {
		return domain.Envelope{Event: ev, Metadata: domain.Metadata{Channel: channel}}
	}
	for _, c := range []struct {
		env  domain.Envelope
		want string
	}{
		{env(domain.CallLogged{}, "zendesk"), "phone"},
		{env(domain.EmailOpened{}, ""), "email"},
		{env(domain.SMSSent{}, "twilio"), "sms"},
		{env(domain.CampaignTouched{Channel: domain.CampaignSocial}, "hubspot"), "social"},
		{env(domain.TicketOpened{Channel: domain.TicketChat}, "zendesk"), "chat"},
		{env(domain.ChatConversationHeld{}, "whatsapp"), "whatsapp"},
		{env(domain.ChatConversationHeld{}, ""), "chat"},
		{env(domain.MeetingHeld{}, ""), "meeting"},
		{env(domain.PurchaseCompleted{}, "store"), "store"},
		{env(domain.PurchaseCompleted{}, " "), "unknown"},
		{env(nil, ""), "unknown"},
	} {
		if got := customer360.TouchChannel(c.env); got != c.want {
			t.Errorf("TouchChannel(%T via %q) = %q, want %q", c.env.Event, c.env.Metadata.Channel, got, c.want)
		}
	}
}

// A reused order id (legacy) replaces the order instead of counting twice;
// a refund of an unknown order still counts as a refund; events without a
// payload only count, and a type the domain does not know is not applied.
// None of it may fail or panic.
func TestLegacyHistory(t *testing.T) {
	stream := domain.StreamID(zoe)
	md := domain.Metadata{OccurredAt: projectiontest.Day0, Actor: "import:2019"}
	envs := []domain.Envelope{
		{Stream: stream, Type: domain.TypePurchaseCompleted, Version: 0, Position: 1, Metadata: md, Event: domain.PurchaseCompleted{OrderID: order1, Amount: 1000, Currency: "EUR"}},
		{Stream: stream, Type: domain.TypePurchaseCompleted, Version: 1, Position: 2, Metadata: md, Event: domain.PurchaseCompleted{OrderID: order1, Amount: 900, Currency: "GBP"}},
		{Stream: stream, Type: domain.TypeRefundIssued, Version: 2, Position: 3, Metadata: md, Event: domain.RefundIssued{RefundID: refund, OrderID: order2, Amount: 50, Currency: "EUR"}},
		{Stream: stream, Type: domain.TypeTicketResolved, Version: 3, Position: 4, Metadata: md, Event: domain.TicketResolved{TicketID: ticket1}},
		{Stream: stream, Type: "SomethingNew", Version: 4, Position: 5, Metadata: md},
		{Stream: stream, Type: domain.TypePurchaseCompleted, Version: 5, Position: 6, Metadata: md, Event: domain.PurchaseCompleted{OrderID: order3, Amount: 1 << 62, Currency: "EUR"}},
	}
	for range 2 { // amounts no longer valid, enough to overflow an int64 sum
		v := envs[len(envs)-1]
		v.Version, v.Position = v.Version+1, v.Position+1
		o := v.Event.(domain.PurchaseCompleted)
		o.OrderID = uuid.NewSHA1(order3, fmt.Appendf(nil, "%d", v.Position))
		v.Event = o
		envs = append(envs, v)
	}
	b := projections.NewMemory()
	projectiontest.FoldBatches(t, b, ns, customer360.New(), envs, 0)
	v, err := get(t, b, zoe)
	if err != nil {
		t.Fatal(err)
	}
	if v.Spend["GBP"] != 900 || v.Refunds["EUR"] != 50 || v.Spend["EUR"] != 1<<63-1 {
		t.Errorf("spend %v refunds %v: want GBP 900 (order replaced), EUR saturated, EUR refund 50", v.Spend, v.Refunds)
	}
	// The record of a type the domain does not know is not applied (see
	// projections.Projection.Types): it does not count.
	if v.Registered || v.TicketCount != 1 || len(v.OpenTickets) != 0 || v.Events != int64(len(envs)-1) {
		t.Errorf("registered %v, tickets %d (open %d), events %d", v.Registered, v.TicketCount, len(v.OpenTickets), v.Events)
	}
}

// Folding a history in one batch or in many small ones yields the same
// bytes: the engine's batch size must never show in a read model.
func TestBatchingDoesNotChangeContents(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for seed := range uint64(12) {
			projectiontest.BatchSizesAgree(t, b, customer360.New(), projectiontest.RandomHistory(t, seed, 400))
		}
	})
}
