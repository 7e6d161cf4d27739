package attribution_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

var (
	ana    = uuid.MustParse("3f1c9a52-7d44-4b8e-9a61-0c2d5e8f7a13")
	bruno  = uuid.MustParse("b6e2d0f4-1a3c-4e57-8b9d-2f4a6c8e0d21")
	chloe  = uuid.MustParse("5a7c9e1b-3d5f-4a82-b4c6-d8e0f2a4b6c8")
	dmitri = uuid.MustParse("e4d2c0b8-a6f4-4e21-9c3a-5b7d9f1e3a5c")
	eve    = uuid.MustParse("71b3d5f7-9a1c-4e3e-8f50-72941b6d8f0a")
	frank  = uuid.MustParse("0c8e2a4f-6b1d-4f39-a5c7-e9b1d3f5a7c9")
)

const (
	spring   = "spring-sale"
	vip      = "vip-sms"
	retarget = "retarget"
)

// order returns a one-line order with a stable id.
func order(name string, amount int64, currency string) domain.PurchaseCompleted {
	return domain.PurchaseCompleted{
		OrderID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://shop.example/orders/"+name)),
		Amount:  amount, Currency: currency,
		Lines: []domain.OrderLine{{SKU: "CAF-ÉTH-250", Description: "Café d'Éthiopie 250 g", Category: "coffee", Quantity: 1, UnitAmount: amount}},
	}
}

func refundOf(name, refundID string, amount int64, currency string) domain.RefundIssued {
	return domain.RefundIssued{
		RefundID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://shop.example/refunds/"+refundID)),
		OrderID:  order(name, 0, currency).OrderID,
		Amount:   amount, Currency: currency, Reason: "Colis abîmé",
	}
}

func touched(campaign string, ch domain.CampaignChannel, action domain.CampaignAction) domain.CampaignTouched {
	return domain.CampaignTouched{Campaign: campaign, Channel: ch, Action: action}
}

func mailed(messageID, campaign string) domain.EmailSent {
	return domain.EmailSent{MessageID: messageID, Subject: "Printemps : -20 % sur les cafés", From: "news@shop.example", To: "bruno@example.fr", Campaign: campaign}
}

// scenario: three campaigns, six customers, window 7 days.
//
//	customer  touches (qualifying unless marked)                    purchases              last touch  first touch
//	ana       spring sent 03-01 09:00, delivered 09:05;             O1 03-04 12:00 €120    vip         spring
//	          vip sent 03-03 10:00                                  O2 03-20 10:00 €50     —           —
//	          (refund of €20 on O1, 03-22)
//	bruno     EmailSent m-b1 spring 03-02 08:00, opened twice,      O3 03-09 08:00 $300    spring      spring      exactly 7 days
//	          clicked once
//	chloe     retarget viewed 03-05 12:00                           O4 03-12 12:00:01 €70  —           —           1 s too late
//	dmitri    SMSSent vip 03-10 10:00, retarget clicked 03-11 10:00, O5 03-12 09:00 ¥4500  retarget    vip
//	          spring bounced 03-11 11:00 (not qualifying),          O6 03-13 09:00 €80     retarget    vip
//	          an open of a mail without campaign
//	eve       spring unsubscribed 03-01 (not qualifying), lead vip 03-14
//	frank     (purchase recorded first, touches backdated after it)
//	          spring viewed 03-06 10:00, retarget viewed 03-06 10:00, O7 03-08 10:00 €100    vip         retarget    tie: by name
//	          vip clicked 03-08 10:00 (the purchase's instant)
func scenario(t testing.TB) []domain.Envelope {
	l := projectiontest.NewLog(t)
	l.AddRFC3339(ana, "2025-03-01T09:00:00Z", touched(spring, domain.CampaignEmail, domain.ActionSent))
	l.AddRFC3339(ana, "2025-03-01T09:05:00Z", touched(spring, domain.CampaignEmail, domain.ActionDelivered))
	l.AddRFC3339(ana, "2025-03-03T10:00:00Z", touched(vip, domain.CampaignSMS, domain.ActionSent))
	l.AddRFC3339(ana, "2025-03-04T12:00:00Z", order("O1", 12_000, "EUR"), projectiontest.Via("web"))
	l.AddRFC3339(ana, "2025-03-20T10:00:00Z", order("O2", 5_000, "EUR"), projectiontest.Via("web"))
	l.AddRFC3339(ana, "2025-03-22T10:00:00Z", refundOf("O1", "R1", 2_000, "EUR"))

	l.AddRFC3339(bruno, "2025-03-02T08:00:00Z", mailed("<spring-1@mail.shop.example>", spring))
	l.AddRFC3339(bruno, "2025-03-02T09:00:00Z", domain.EmailOpened{MessageID: "<spring-1@mail.shop.example>"})
	l.AddRFC3339(bruno, "2025-03-02T09:01:00Z", domain.EmailClicked{MessageID: "<spring-1@mail.shop.example>", URL: "https://shop.example/cafes?utm_campaign=spring-sale"})
	l.AddRFC3339(bruno, "2025-03-02T19:00:00Z", domain.EmailOpened{MessageID: "<spring-1@mail.shop.example>"})
	l.AddRFC3339(bruno, "2025-03-09T08:00:00Z", order("O3", 30_000, "USD"))

	l.AddRFC3339(chloe, "2025-03-05T12:00:00Z", touched(retarget, domain.CampaignDisplay, domain.ActionViewed))
	l.AddRFC3339(chloe, "2025-03-12T12:00:01Z", order("O4", 7_000, "EUR"))

	l.AddRFC3339(dmitri, "2025-03-10T10:00:00Z", domain.SMSSent{To: "+33 6 12 34 56 78", Body: "VIP : -30 % ce week-end 🎉", Campaign: vip})
	l.AddRFC3339(dmitri, "2025-03-11T10:00:00Z", touched(retarget, domain.CampaignDisplay, domain.ActionClicked))
	l.AddRFC3339(dmitri, "2025-03-11T11:00:00Z", touched(spring, domain.CampaignEmail, domain.ActionBounced))
	l.AddRFC3339(dmitri, "2025-03-12T09:00:00Z", order("O5", 4_500, "JPY"))
	l.AddRFC3339(dmitri, "2025-03-13T09:00:00Z", order("O6", 8_000, "EUR"))
	l.AddRFC3339(dmitri, "2025-03-13T10:00:00Z", domain.EmailOpened{MessageID: "<newsletter-7@mail.shop.example>"})

	l.AddRFC3339(eve, "2025-03-01T10:00:00Z", touched(spring, domain.CampaignEmail, domain.ActionUnsubscribed))
	l.AddRFC3339(eve, "2025-03-14T15:00:00Z", domain.LeadCaptured{Source: domain.LeadWebForm, Campaign: vip, Interest: "Abonnement"})

	l.AddRFC3339(frank, "2025-03-08T10:00:00Z", order("O7", 10_000, "EUR"))
	l.AddRFC3339(frank, "2025-03-06T10:00:00Z", touched(spring, domain.CampaignEmail, domain.ActionViewed), projectiontest.By("import:2025-03-crm"))
	l.AddRFC3339(frank, "2025-03-06T10:00:00Z", touched(retarget, domain.CampaignDisplay, domain.ActionViewed), projectiontest.By("import:2025-03-crm"))
	l.AddRFC3339(frank, "2025-03-08T10:00:00Z", touched(vip, domain.CampaignSMS, domain.ActionClicked), projectiontest.By("import:2025-03-crm"))
	return l.Envelopes()
}

func rev(currency string, gross, refunded int64) attribution.Revenue {
	return attribution.Revenue{Currency: currency, Gross: gross, Refunded: refunded, Net: gross - refunded}
}

// scenarioReport is the report of scenario, computed by hand (see its
// table).
func scenarioReport() attribution.Report {
	return attribution.Report{
		WindowSeconds: 7 * 24 * 3600,
		Qualifying:    []domain.CampaignAction{"clicked", "delivered", "lead", "sent", "viewed"},
		Models:        []attribution.Model{attribution.ModelLastTouch, attribution.ModelFirstTouch},
		Purchases:     7,
		Revenue:       []attribution.Revenue{rev("EUR", 42_000, 2_000), rev("JPY", 4_500, 0), rev("USD", 30_000, 0)},
		Campaigns: []attribution.Campaign{
			{
				Campaign: retarget,
				Touches:  attribution.Touches{Opened: 2, Clicked: 1},
				Reached:  3, // chloe, dmitri, frank
				LastTouch: attribution.Attribution{Purchases: 2, Customers: 1, ConversionRate: 1.0 / 3,
					Revenue: []attribution.Revenue{rev("EUR", 8_000, 0), rev("JPY", 4_500, 0)}}, // O5, O6
				FirstTouch: attribution.Attribution{Purchases: 1, Customers: 1, ConversionRate: 1.0 / 3,
					Revenue: []attribution.Revenue{rev("EUR", 10_000, 0)}}, // O7
			},
			{
				Campaign: spring,
				// sent: ana's touch and bruno's mail; opened: frank's view and
				// bruno's mail (once); clicked: bruno's mail.
				Touches: attribution.Touches{Sent: 2, Delivered: 1, Bounced: 1, Opened: 2, Clicked: 1, Unsubscribed: 1},
				Reached: 3, // ana, bruno, frank; not dmitri (bounced) nor eve (unsubscribed)
				LastTouch: attribution.Attribution{Purchases: 1, Customers: 1, ConversionRate: 1.0 / 3,
					Revenue: []attribution.Revenue{rev("USD", 30_000, 0)}}, // O3
				FirstTouch: attribution.Attribution{Purchases: 2, Customers: 2, ConversionRate: 2.0 / 3,
					Revenue: []attribution.Revenue{rev("EUR", 12_000, 2_000), rev("USD", 30_000, 0)}}, // O1, O3
			},
			{
				Campaign: vip,
				Touches:  attribution.Touches{Sent: 2, Clicked: 1, Leads: 1},
				Reached:  4, // ana, dmitri, eve, frank
				LastTouch: attribution.Attribution{Purchases: 2, Customers: 2, ConversionRate: 0.5,
					Revenue: []attribution.Revenue{rev("EUR", 22_000, 2_000)}}, // O1, O7
				FirstTouch: attribution.Attribution{Purchases: 2, Customers: 1, ConversionRate: 0.25,
					Revenue: []attribution.Revenue{rev("EUR", 8_000, 0), rev("JPY", 4_500, 0)}}, // O5, O6
			},
		},
	}
}

func report(t testing.TB, b projections.Backend, p projections.Projection, events []domain.Envelope, opts attribution.Options) attribution.Report {
	t.Helper()
	r := projectiontest.Fold(t, b, p, events)
	rep, err := attribution.Campaigns(context.Background(), r, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func diff(t testing.TB, got, want attribution.Report) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("report:\n%s\nwant\n%s", g, w)
	}
}

func TestCampaigns(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		p := attribution.New(attribution.Config{})
		diff(t, report(t, b, p, scenario(t), attribution.Options{}), scenarioReport())

		// Filtering keeps the totals and the named campaigns only.
		got := report(t, b, p, scenario(t), attribution.Options{Campaigns: []string{vip, "no-such-campaign"}})
		want := scenarioReport()
		want.Campaigns = want.Campaigns[2:]
		diff(t, got, want)
	})
}

// The report of an empty read model is empty, not null.
func TestCampaignsEmpty(t *testing.T) {
	rep := report(t, projectiontest.Memory(t), attribution.New(attribution.Config{}), nil, attribution.Options{})
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"windowSeconds":0,"qualifying":[],"models":["last_touch","first_touch"],"purchases":0,"revenue":[],"campaigns":[]}`
	if string(raw) != want {
		t.Errorf("got %s\nwant %s", raw, want)
	}
}

// permutations returns events in reverse order and in seeded shuffles,
// keeping each customer's CustomerForgotten after the rest (nothing may
// follow it in a stream).
func permutations(events []domain.Envelope, seeds int) [][]domain.Envelope {
	var rest, forgotten []domain.Envelope
	for _, e := range events {
		if e.Type == domain.TypeCustomerForgotten {
			forgotten = append(forgotten, e)
		} else {
			rest = append(rest, e)
		}
	}
	backwards := slices.Clone(rest)
	slices.Reverse(backwards)
	out := [][]domain.Envelope{append(backwards, forgotten...)}
	for seed := range uint64(seeds) {
		s := slices.Clone(rest)
		rng := rand.New(rand.NewPCG(seed, 7))
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		out = append(out, append(s, forgotten...))
	}
	return out
}

// The same events in any arrival order give the same read model, byte
// for byte, and so the same report.
func TestArrivalOrderIsInvisible(t *testing.T) {
	p := attribution.New(attribution.Config{})
	events := scenario(t)
	b := projectiontest.Memory(t)
	ns := func(i int) string { return fmt.Sprintf("attribution_order_%d", i) }
	projectiontest.FoldBatches(t, b, ns(0), p, events, 0)
	want := projectiontest.Dump(t, b, ns(0))
	for i, perm := range permutations(events, 20) {
		projectiontest.FoldBatches(t, b, ns(i+1), p, perm, 3)
		if got := projectiontest.Dump(t, b, ns(i+1)); got != want {
			t.Fatalf("permutation %d: read model differs:\n%s\nwant\n%s", i, got, want)
		}
	}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		diff(t, report(t, b, p, permutations(events, 0)[0], attribution.Options{}), scenarioReport())
	})
}

// Window edges, tie-breaks and the qualifying actions, one customer at a
// time: a touch at 2025-03-10 12:00 and a purchase at an offset from it.
func TestWindow(t *testing.T) {
	touchAt := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	type touchSpec struct {
		offset   time.Duration // from touchAt
		campaign string
		action   domain.CampaignAction
	}
	for _, tc := range []struct {
		name        string
		cfg         attribution.Config
		touches     []touchSpec
		purchase    time.Duration // from touchAt
		last, first string        // "" for unattributed
	}{
		{"same instant", attribution.Config{}, []touchSpec{{0, spring, domain.ActionSent}}, 0, spring, spring},
		{"exactly one window after", attribution.Config{}, []touchSpec{{0, spring, domain.ActionSent}}, 7 * 24 * time.Hour, spring, spring},
		{"a nanosecond past the window", attribution.Config{}, []touchSpec{{0, spring, domain.ActionSent}}, 7*24*time.Hour + time.Nanosecond, "", ""},
		{"before the touch", attribution.Config{}, []touchSpec{{0, spring, domain.ActionSent}}, -time.Second, "", ""},
		{"window crossing months", attribution.Config{}, []touchSpec{{-12 * 24 * time.Hour, vip, domain.ActionClicked}}, -5 * 24 * time.Hour, vip, vip},
		{"48 h window: edge", attribution.Config{Window: 48 * time.Hour}, []touchSpec{{0, spring, domain.ActionSent}}, 48 * time.Hour, spring, spring},
		{"48 h window: past it", attribution.Config{Window: 48 * time.Hour}, []touchSpec{{0, spring, domain.ActionSent}}, 48*time.Hour + time.Second, "", ""},
		{"30 day window", attribution.Config{Window: 30 * 24 * time.Hour}, []touchSpec{{0, spring, domain.ActionSent}}, 29 * 24 * time.Hour, spring, spring},
		{"last and first differ", attribution.Config{},
			[]touchSpec{{0, spring, domain.ActionSent}, {time.Hour, retarget, domain.ActionViewed}, {2 * time.Hour, vip, domain.ActionClicked}},
			3 * time.Hour, vip, spring},
		{"the first touch left the window", attribution.Config{},
			[]touchSpec{{0, spring, domain.ActionSent}, {3 * 24 * time.Hour, vip, domain.ActionClicked}, {4 * 24 * time.Hour, retarget, domain.ActionViewed}},
			7*24*time.Hour + time.Minute, retarget, vip},
		{"tie at one instant: first name wins", attribution.Config{},
			[]touchSpec{{0, vip, domain.ActionClicked}, {0, retarget, domain.ActionViewed}, {0, spring, domain.ActionSent}},
			time.Hour, retarget, retarget},
		{"bounced and unsubscribed never qualify", attribution.Config{},
			[]touchSpec{{0, spring, domain.ActionBounced}, {time.Minute, vip, domain.ActionUnsubscribed}},
			time.Hour, "", ""},
		{"converted qualifies only when configured", attribution.Config{},
			[]touchSpec{{0, spring, domain.ActionSent}, {time.Minute, vip, domain.ActionConverted}},
			time.Hour, spring, spring},
		{"converted configured", attribution.Config{Qualifying: []domain.CampaignAction{domain.ActionConverted, domain.ActionSent}},
			[]touchSpec{{0, spring, domain.ActionSent}, {time.Minute, vip, domain.ActionConverted}},
			time.Hour, vip, spring},
		{"clicks only", attribution.Config{Qualifying: []domain.CampaignAction{domain.ActionClicked}},
			[]touchSpec{{0, spring, domain.ActionClicked}, {time.Minute, vip, domain.ActionSent}, {2 * time.Minute, retarget, domain.ActionViewed}},
			time.Hour, spring, spring},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := projectiontest.NewLog(t)
			for _, s := range tc.touches {
				l.Add(ana, touchAt.Add(s.offset), touched(s.campaign, domain.CampaignEmail, s.action))
			}
			l.Add(ana, touchAt.Add(tc.purchase), order("W1", 9_900, "EUR"))
			events := l.Envelopes()
			p := attribution.New(tc.cfg)
			// Forward, and with the purchase first (a backdated import of
			// the touches).
			for _, evs := range [][]domain.Envelope{events, append(events[len(events)-1:len(events):len(events)], events[:len(events)-1]...)} {
				rep := report(t, projectiontest.Memory(t), p, evs, attribution.Options{})
				credited := func(f func(attribution.Campaign) attribution.Attribution) string {
					var who []string
					for _, c := range rep.Campaigns {
						if a := f(c); a.Purchases > 0 {
							who = append(who, c.Campaign)
							if want := []attribution.Revenue{rev("EUR", 9_900, 0)}; a.Purchases != 1 || a.Customers != 1 || !reflect.DeepEqual(a.Revenue, want) {
								t.Errorf("%s: %+v", c.Campaign, a)
							}
						}
					}
					return strings.Join(who, ",")
				}
				last := credited(func(c attribution.Campaign) attribution.Attribution { return c.LastTouch })
				first := credited(func(c attribution.Campaign) attribution.Attribution { return c.FirstTouch })
				if last != tc.last || first != tc.first {
					t.Errorf("last touch %q, first touch %q; want %q, %q", last, first, tc.last, tc.first)
				}
				if want := int64(tc.cfg.Window / time.Second); want != 0 && rep.WindowSeconds != want {
					t.Errorf("window %ds, want %ds", rep.WindowSeconds, want)
				}
				if rep.Purchases != 1 {
					t.Errorf("%d purchases, want 1", rep.Purchases)
				}
			}
		})
	}
}

// Refunds reduce the revenue of the campaign the order is credited to,
// whenever they arrive; purchases and conversions stay.
func TestRefunds(t *testing.T) {
	l := projectiontest.NewLog(t)
	// Recorded before the purchases they refund (an import).
	l.AddRFC3339(bruno, "2025-04-20T10:00:00Z", refundOf("P1", "r-1", 1_500, "EUR"))
	l.AddRFC3339(bruno, "2025-04-21T10:00:00Z", refundOf("P1", "r-2", 500, "EUR"))
	l.AddRFC3339(bruno, "2025-04-01T09:00:00Z", touched(spring, domain.CampaignEmail, domain.ActionClicked))
	l.AddRFC3339(bruno, "2025-04-02T09:00:00Z", order("P1", 6_000, "EUR"))
	l.AddRFC3339(bruno, "2025-04-03T09:00:00Z", order("P2", 2_000, "EUR"))
	l.AddRFC3339(bruno, "2025-04-22T10:00:00Z", refundOf("P2", "r-3", 2_000, "EUR")) // all of P2
	l.AddRFC3339(bruno, "2025-04-23T10:00:00Z", refundOf("P2", "r-4", 700, "EUR"))   // beyond P2's amount
	l.AddRFC3339(bruno, "2025-04-24T10:00:00Z", refundOf("P1", "r-5", 300, "USD"))   // not the order's currency
	l.AddRFC3339(bruno, "2025-04-25T10:00:00Z", refundOf("P9", "r-6", 100, "EUR"))   // an order never seen
	l.AddRFC3339(bruno, "2025-04-25T10:00:00Z", refundOf("P1", "r-7", 100, "EUR"))
	l.AddRFC3339(bruno, "2025-04-26T10:00:00Z", refundOf("P1", "r-7", 100, "EUR")) // the same refund again
	wantCredit := attribution.Attribution{Purchases: 2, Customers: 1, ConversionRate: 1,
		Revenue: []attribution.Revenue{rev("EUR", 8_000, 4_100)}} // P1: 1 500 + 500 + 100; P2: 2 000
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for i, evs := range append([][]domain.Envelope{l.Envelopes()}, permutations(l.Envelopes(), 3)...) {
			rep := report(t, b, attribution.New(attribution.Config{}), evs, attribution.Options{})
			if len(rep.Campaigns) != 1 || !reflect.DeepEqual(rep.Campaigns[0].LastTouch, wantCredit) || !reflect.DeepEqual(rep.Campaigns[0].FirstTouch, wantCredit) {
				t.Errorf("order %d: %+v, want %+v under both models", i, rep.Campaigns, wantCredit)
			}
			if want := []attribution.Revenue{rev("EUR", 8_000, 4_100)}; rep.Purchases != 2 || !reflect.DeepEqual(rep.Revenue, want) {
				t.Errorf("order %d: totals %d %+v", i, rep.Purchases, rep.Revenue)
			}
		}
	})
}

// A repeated order id (refused by the aggregate, possible in old imports)
// counts once: the occurrence that sorts first.
func TestRepeatedOrder(t *testing.T) {
	l := projectiontest.NewLog(t)
	l.AddRFC3339(chloe, "2025-05-01T09:00:00Z", touched(vip, domain.CampaignSMS, domain.ActionSent))
	l.AddRFC3339(chloe, "2025-05-20T09:00:00Z", order("D1", 3_000, "EUR")) // outside the window
	l.AddRFC3339(chloe, "2025-05-02T09:00:00Z", order("D1", 3_000, "EUR")) // inside: sorts first, counts
	l.AddRFC3339(chloe, "2025-05-02T09:00:00Z", order("D1", 3_000, "EUR")) // identical: one fact
	for i, evs := range append([][]domain.Envelope{l.Envelopes()}, permutations(l.Envelopes(), 3)...) {
		rep := report(t, projectiontest.Memory(t), attribution.New(attribution.Config{}), evs, attribution.Options{})
		if rep.Purchases != 1 || rep.Campaigns[0].LastTouch.Purchases != 1 {
			t.Errorf("order %d: %d purchases, %d credited; want 1, 1", i, rep.Purchases, rep.Campaigns[0].LastTouch.Purchases)
		}
	}
}

// A forgotten customer's facts leave the read model; the figures keep
// what they counted.
func TestForget(t *testing.T) {
	l := projectiontest.NewLog(t)
	for _, e := range scenario(t) {
		id, _ := domain.ParseStreamID(e.Stream)
		l.Add(id, e.Metadata.OccurredAt, e.Event)
	}
	l.AddRFC3339(dmitri, "2025-03-30T10:00:00Z", domain.CustomerForgotten{Request: "DSR-2025-0117", Reason: "RGPD art. 17"})
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		p := attribution.New(attribution.Config{})
		r := projectiontest.Fold(t, b, p, l.Envelopes())
		rep, err := attribution.Campaigns(context.Background(), r, attribution.Options{})
		if err != nil {
			t.Fatal(err)
		}
		diff(t, rep, scenarioReport())
		var left []string
		err = r.Scan(context.Background(), "customer/"+dmitri.String(), "", func(k string, v []byte) (bool, error) {
			left = append(left, k+" = "+string(v))
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"customer/" + dmitri.String() + ` = {"forgotten":true}`}; !slices.Equal(left, want) {
			t.Errorf("left of dmitri: %q, want %q", left, want)
		}
	})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  attribution.Config
		want string // "" valid, else part of the error
	}{
		{attribution.Config{}, ""},
		{attribution.Config{Window: time.Hour, Qualifying: []domain.CampaignAction{"clicked", "lead", "clicked"}}, ""},
		{attribution.Config{Window: attribution.MaxWindow}, ""},
		{attribution.Config{Window: -time.Hour}, "must not be negative"},
		{attribution.Config{Window: 1500 * time.Millisecond}, "whole seconds"},
		{attribution.Config{Window: attribution.MaxWindow + time.Second}, "at most"},
		{attribution.Config{Qualifying: []domain.CampaignAction{"bounced"}}, `qualifying action "bounced"`},
		{attribution.Config{Qualifying: []domain.CampaignAction{"unsubscribed", "opened"}}, `"opened"`},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
		if tc.want == "" {
			continue
		}
		// An invalid Config fails every Apply, naming the problem.
		err = projections.ApplyBatch(context.Background(), projectiontest.Memory(t), "attribution_bad", attribution.New(tc.cfg), scenario(t))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: apply gave %v", tc.cfg, err)
		}
	}
}

// A read model is continued only with the settings it was built with.
func TestConfigChangeNeedsRebuild(t *testing.T) {
	ctx := context.Background()
	b := projectiontest.Memory(t)
	events := scenario(t)
	if err := projections.ApplyBatch(ctx, b, "attribution_v1_g1", attribution.New(attribution.Config{}), events[:10]); err != nil {
		t.Fatal(err)
	}
	// The same settings spelled differently continue it.
	same := attribution.New(attribution.Config{Window: 168 * time.Hour, Qualifying: []domain.CampaignAction{"viewed", "lead", "sent", "delivered", "clicked"}})
	if err := projections.ApplyBatch(ctx, b, "attribution_v1_g1", same, events[10:20]); err != nil {
		t.Fatal(err)
	}
	err := projections.ApplyBatch(ctx, b, "attribution_v1_g1", attribution.New(attribution.Config{Window: 72 * time.Hour}), events[20:])
	if err == nil || !strings.Contains(err.Error(), "built with window 604800s") || !strings.Contains(err.Error(), "rebuild") {
		t.Fatalf("continuing with another window: %v", err)
	}
	if err := projections.ApplyBatch(ctx, b, "attribution_v1_g1", same, events[20:]); err != nil {
		t.Fatal(err)
	}
	rep, err := projectiontest.Query(t, b, "attribution_v1_g1", func(ctx context.Context, r projections.Reader) (attribution.Report, error) {
		return attribution.Campaigns(ctx, r, attribution.Options{})
	})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, rep, scenarioReport())
}
