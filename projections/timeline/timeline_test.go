package timeline_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/timeline"
)

var (
	zoe     = uuid.MustParse("15cf8f44-2ec6-441c-9f2e-229a8d221eaf")
	ana     = uuid.MustParse("b700c11a-ec2a-4426-aec1-5da2f454f7d6")
	order1  = uuid.MustParse("44de0bb8-b9b6-42cb-b699-a1d767a2699c")
	order2  = uuid.MustParse("0a6f3c1e-2b4d-4e5f-8a9b-1c2d3e4f5a6b")
	refund  = uuid.MustParse("457583b2-585c-4972-abb0-3fb81e8c1e8a")
	ticket1 = uuid.MustParse("73614f1c-77e4-43b3-9a90-542472fc6bc1")
)

var ns = projections.NamespaceFor(timeline.Name, timeline.Version, 1)

func at(h int) time.Time { return projectiontest.Day0.Add(time.Duration(h) * time.Hour) }

// scenario: Zoë's history, with an imported e-mail that occurred before
// she registered but was recorded late, and two events at the same
// instant; then Ana, whose events interleave; then Zoë's erasure.
func scenario(t testing.TB) (l *projectiontest.Log, beforeErasure int) {
	l = projectiontest.NewLog(t)
	l.Add(zoe, at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë Ångström-Nguyễn"}, projectiontest.Via("web"))
	l.Add(zoe, at(1), domain.IdentifierLinked{Kind: domain.IdentifierEmail, Value: "Zoe.Nguyen@Example.FR"}, projectiontest.Via("web"))
	l.Add(zoe, at(2), domain.PurchaseCompleted{OrderID: order1, Amount: 1250, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "SOCK-3P", Quantity: 1, UnitAmount: 1250}}},
		projectiontest.Via("web"), projectiontest.By("service:checkout"), projectiontest.Because("checkout-7", "cmd-42"))
	l.Add(ana, at(2), domain.CustomerRegistered{CustomerID: ana, Name: "Ana Sousa"}, projectiontest.Via("web"))
	l.Add(zoe, at(3), domain.TicketOpened{TicketID: ticket1, Subject: "Login fails", Priority: domain.PriorityHigh, Channel: domain.TicketEmail}, projectiontest.Via("zendesk"))
	l.Add(zoe, at(-10), domain.EmailReceived{MessageID: "<a@b.fr>", Subject: "Question", From: "zoe.nguyen@example.fr", To: "support@shop.example"}, projectiontest.By("import:2025-03-crm"))
	l.Add(zoe, at(4), domain.RefundIssued{RefundID: refund, OrderID: order1, Amount: 500, Currency: "EUR", Reason: "Damaged"}, projectiontest.By("service:billing"))
	l.Add(zoe, at(5), domain.TicketResolved{TicketID: ticket1, Resolution: "Password reset"}, projectiontest.Via("zendesk"))
	l.Add(zoe, at(5), domain.SurveyAnswered{Survey: "nps", NPS: new(9), Comment: "Très bon"}, projectiontest.Via("web"))
	l.Add(ana, at(5), domain.NoteAdded{Body: "Ana's note"})
	l.Add(zoe, at(6), domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta", Outcome: domain.CallConnected, Summary: "Asked about delivery.\nCall back tomorrow"})
	l.Add(zoe, at(7), domain.PurchaseCompleted{OrderID: order2, Amount: 300000, Currency: "JPY", Lines: []domain.OrderLine{{SKU: "TEA", Quantity: 1, UnitAmount: 300000}}}, projectiontest.Via("store"))
	l.Add(zoe, at(8), domain.NoteAdded{Body: "VIP since 2019"})
	beforeErasure = len(l.Envelopes())
	l.Add(zoe, at(9), domain.CustomerForgotten{Request: "DSR-2025-0042"})
	return l, beforeErasure
}

// line is what a test asserts of an entry: position, then summary.
type line struct {
	pos     uint64
	summary string
}

// wantLines is Zoë's timeline, written by hand: occurred-at order, the
// tie at hour 5 broken by stream version (resolution before survey).
var wantLines = []line{
	{6, "Email received: Question"},
	{1, "Customer registered: Zoë Ångström-Nguyễn"},
	{2, "Email linked: zoe.nguyen@example.fr"},
	{3, "Purchase of 12.50 EUR (order 44de0bb8…)"},
	{5, "Ticket opened: Login fails (high, email)"},
	{7, "Refund of 5.00 EUR on order 44de0bb8…: Damaged"},
	{8, "Ticket 73614f1c… resolved: Password reset"},
	{9, "Survey nps answered: NPS 9 — Très bon"},
	{11, "Inbound call, connected, 12m34s (user:marta): Asked about delivery. …"},
	{12, "Purchase of 300000 JPY (order 0a6f3c1e…)"},
	{13, "Note: VIP since 2019"},
}

var wantErased = []line{
	{6, "Email received"},
	{1, "Customer registered"},
	{2, "Email linked"},
	{3, "Purchase of 12.50 EUR (order 44de0bb8…)"},
	{5, "Ticket opened (high, email)"},
	{7, "Refund of 5.00 EUR on order 44de0bb8…"},
	{8, "Ticket 73614f1c… resolved"},
	{9, "Survey nps answered: NPS 9"},
	{11, "Inbound call, connected, 12m34s (user:marta)"},
	{12, "Purchase of 300000 JPY (order 0a6f3c1e…)"},
	{13, "Note"},
	{14, "Customer forgotten (request DSR-2025-0042)"},
}

func lines(entries []timeline.Entry) []line {
	out := make([]line, len(entries))
	for i, e := range entries {
		out[i] = line{e.Position, e.Summary}
	}
	return out
}

func page(t *testing.T, b projections.Backend, ev timeline.Events, id uuid.UUID, q timeline.Query) (timeline.Result, error) {
	t.Helper()
	return projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) (timeline.Result, error) {
		return timeline.Page(ctx, r, ev, id, q)
	})
}

// all pages through a query and returns every entry, checking that each
// page but the last is full.
func all(t *testing.T, b projections.Backend, ev timeline.Events, id uuid.UUID, q timeline.Query) []timeline.Entry {
	t.Helper()
	var out []timeline.Entry
	for pages := 0; ; pages++ {
		p, err := page(t, b, ev, id, q)
		if err != nil {
			t.Fatalf("page %d of %+v: %v", pages, q, err)
		}
		out = append(out, p.Entries...)
		if p.NextCursor == "" {
			return out
		}
		if len(p.Entries) != q.Limit {
			t.Errorf("page %d of %+v has %d entries and a next cursor", pages, q, len(p.Entries))
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		q.Cursor = p.NextCursor
	}
}

func TestScenario(t *testing.T) {
	l, beforeErasure := scenario(t)
	ev := timeline.History(l.Envelopes())
	digests := map[string]string{}
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for _, batch := range []int{0, 1, 4} {
			t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
				defer func() {
					digests[t.Name()] = projectiontest.DigestOf(t, b, timeline.Name, ns)
					_ = b.Drop(context.Background(), ns)
				}()
				p := timeline.New()
				projectiontest.FoldBatches(t, b, ns, p, l.Envelopes()[:beforeErasure], batch)

				full, err := page(t, b, ev, zoe, timeline.Query{})
				if err != nil {
					t.Fatal(err)
				}
				if got := lines(full.Entries); !slices.Equal(got, wantLines) || full.NextCursor != "" {
					t.Errorf("timeline =\n%v (next %q)\nwant\n%v", got, full.NextCursor, wantLines)
				}
				purchase := timeline.Entry{
					EventID: l.Envelopes()[2].ID, Type: domain.TypePurchaseCompleted, Summary: "Purchase of 12.50 EUR (order 44de0bb8…)",
					Actor: "service:checkout", Channel: "web", Source: "web",
					OccurredAt: at(2), RecordedAt: projectiontest.RecordedBase.Add(3 * time.Millisecond),
					CorrelationID: "checkout-7", CausationID: "cmd-42", StreamVersion: 2, Position: 3,
				}
				if got := full.Entries[3]; got != purchase {
					t.Errorf("purchase entry =\n%+v\nwant\n%+v", got, purchase)
				}

				for _, c := range []struct {
					name string
					q    timeline.Query
					want []uint64
				}{
					{"types", timeline.Query{Types: []string{domain.TypeTicketOpened, domain.TypeTicketResolved}}, []uint64{5, 8}},
					{"medium email", timeline.Query{Channels: []string{"email"}}, []uint64{6, 5}},
					{"source zendesk", timeline.Query{Channels: []string{"zendesk"}}, []uint64{5, 8}},
					{"no channel is unknown", timeline.Query{Channels: []string{"unknown"}}, []uint64{7, 13}},
					{"range, To exclusive", timeline.Query{From: at(3), To: at(5)}, []uint64{5, 7}},
					{"From inclusive, in another zone", timeline.Query{From: at(5).In(time.FixedZone("CET", 3600))}, []uint64{8, 9, 11, 12, 13}},
					{"From and type", timeline.Query{From: at(5), Types: []string{domain.TypeSurveyAnswered}}, []uint64{9}},
					{"type and channel", timeline.Query{Types: []string{domain.TypePurchaseCompleted}, Channels: []string{"web"}}, []uint64{3}},
					{"empty range", timeline.Query{From: at(5), To: at(5)}, nil},
					{"inverted range", timeline.Query{From: at(6), To: at(1)}, nil},
					{"nothing matches", timeline.Query{Types: []string{domain.TypeMeetingHeld}}, nil},
				} {
					var got []uint64
					for _, e := range all(t, b, ev, zoe, c.q) {
						got = append(got, e.Position)
					}
					if !slices.Equal(got, c.want) {
						t.Errorf("%s: positions %v, want %v", c.name, got, c.want)
					}
				}

				// Every page size gives the same timeline, each page full
				// but the last, the last without a cursor.
				for limit := 1; limit <= len(wantLines)+1; limit++ {
					if got := lines(all(t, b, ev, zoe, timeline.Query{Limit: limit})); !slices.Equal(got, wantLines) {
						t.Errorf("limit %d: paged timeline = %v", limit, got)
					}
					var got []uint64
					for _, e := range all(t, b, ev, zoe, timeline.Query{Limit: limit, Channels: []string{"web"}}) {
						got = append(got, e.Position)
					}
					if want := []uint64{1, 2, 3, 9}; !slices.Equal(got, want) {
						t.Errorf("limit %d, channel web: positions %v, want %v", limit, got, want)
					}
				}

				// Ana's timeline is her own.
				if got, err := page(t, b, ev, ana, timeline.Query{}); err != nil || !slices.Equal(lines(got.Entries), []line{{4, "Customer registered: Ana Sousa"}, {10, "Note: Ana's note"}}) {
					t.Errorf("Ana's timeline = %v, %v", lines(got.Entries), err)
				}

				projectiontest.FoldBatches(t, b, ns, p, l.Envelopes()[beforeErasure:], batch)
				erased, err := page(t, b, ev, zoe, timeline.Query{})
				if err != nil {
					t.Fatal(err)
				}
				if got := lines(erased.Entries); !slices.Equal(got, wantErased) {
					t.Errorf("timeline after erasure =\n%v\nwant\n%v", got, wantErased)
				}
				for _, e := range erased.Entries {
					if !e.Erased {
						t.Errorf("entry %d not marked erased", e.Position)
					}
				}
				// The read model holds no summaries at all: they are
				// made from the log when a page is read.
				contents := projectiontest.Dump(t, b, ns)
				for _, pii := range []string{"Zoë", "zoe.nguyen", "Login fails", "Question", "Damaged", "Très bon", "delivery", "VIP", "Ana Sousa"} {
					if strings.Contains(contents, pii) {
						t.Errorf("the timeline's read model holds %q", pii)
					}
				}
				if got, err := page(t, b, ev, ana, timeline.Query{}); err != nil || !slices.Equal(lines(got.Entries), []line{{4, "Customer registered: Ana Sousa"}, {10, "Note: Ana's note"}}) || got.Entries[0].Erased {
					t.Errorf("Zoë's erasure changed Ana's timeline: %v, %v", lines(got.Entries), err)
				}
			})
		}
	})
	projectiontest.AllEqual(t, digests)
}

func TestPageErrors(t *testing.T) {
	l, _ := scenario(t)
	ev := timeline.History(l.Envelopes())
	b := projections.NewMemory()
	projectiontest.FoldBatches(t, b, ns, timeline.New(), l.Envelopes(), 0)
	if _, err := page(t, b, ev, uuid.MustParse("9e8d7c6b-5a49-4382-b716-05f4e3d2c1b0"), timeline.Query{}); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("unknown customer: error %v, want ErrNotFound", err)
	}
	for _, cursor := range []string{"!!!", base64.RawURLEncoding.EncodeToString([]byte("e/../m/")), base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("9", 50)))} {
		if _, err := page(t, b, ev, zoe, timeline.Query{Cursor: cursor}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("cursor %q: error %v, want domain.ErrInvalid", cursor, err)
		}
	}
}

// countingReader counts the keys a query touches.
type countingReader struct {
	projections.Reader
	visited int
}

func (c *countingReader) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	return c.Reader.Scan(ctx, prefix, after, func(k string, v []byte) (bool, error) {
		c.visited++
		return fn(k, v)
	})
}

// A page of a long history costs what it returns: an unfiltered page
// reads Limit+1 keys wherever it starts, and a filter that matches
// nothing gives up after ScanBudget keys with a cursor to continue.
func TestLongHistoryPagesCheaply(t *testing.T) {
	const n = 10_000
	l := projectiontest.NewLog(t)
	l.Add(zoe, at(0), domain.CustomerRegistered{CustomerID: zoe, Name: "Zoë"})
	for i := 1; i < n; i++ {
		l.Add(zoe, at(0).Add(time.Duration(i)*time.Minute), domain.NoteAdded{Body: fmt.Sprintf("note %d", i)})
	}
	b := projections.NewMemory()
	projectiontest.FoldBatches(t, b, ns, timeline.New(), l.Envelopes(), 1000)
	ev := timeline.History(l.Envelopes())

	run := func(q timeline.Query) (timeline.Result, int) {
		var res timeline.Result
		var visited int
		_, err := projectiontest.Query(t, b, ns, func(ctx context.Context, r projections.Reader) (struct{}, error) {
			cr := &countingReader{Reader: r}
			var err error
			res, err = timeline.Page(ctx, cr, ev, zoe, q)
			visited = cr.visited
			return struct{}{}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return res, visited
	}
	q := timeline.Query{Limit: 100}
	for p := 0; p < 60; p++ {
		res, visited := run(q)
		if len(res.Entries) != 100 || visited > 101 {
			t.Fatalf("page %d: %d entries, %d keys read; want 100 entries, at most 101 keys", p, len(res.Entries), visited)
		}
		if want := fmt.Sprintf("Note: note %d", p*100); p > 0 && res.Entries[0].Summary != want {
			t.Fatalf("page %d starts with %q, want %q", p, res.Entries[0].Summary, want)
		}
		q.Cursor = res.NextCursor
	}

	res, visited := run(timeline.Query{Limit: 100, Types: []string{domain.TypeCallLogged}})
	if len(res.Entries) != 0 || res.NextCursor == "" || visited != timeline.ScanBudget+1 {
		t.Fatalf("fruitless filter: %d entries, cursor %q, %d keys read; want none, a cursor, %d", len(res.Entries), res.NextCursor, visited, timeline.ScanBudget+1)
	}
	res, _ = run(timeline.Query{Limit: 100, Types: []string{domain.TypeCallLogged}, Cursor: res.NextCursor})
	if len(res.Entries) != 0 || res.NextCursor != "" {
		t.Fatalf("fruitless filter, second call: %d entries, cursor %q; want none and the end", len(res.Entries), res.NextCursor)
	}
	res, _ = run(timeline.Query{Limit: 5000, Types: []string{domain.TypeCustomerRegistered}})
	if len(res.Entries) != 1 || res.NextCursor != "" {
		t.Fatalf("budget grows with the limit: %d entries, cursor %q", len(res.Entries), res.NextCursor)
	}
}

func TestSummarize(t *testing.T) {
	env := func(ev domain.Event) domain.Envelope {
		typ := ""
		if ev != nil {
			typ = ev.EventType()
		}
		return domain.Envelope{Type: typ, Event: ev}
	}
	long := strings.Repeat("é", 100)
	for _, c := range []struct {
		ev             domain.Event
		full, redacted string
	}{
		{domain.ProfileUpdated{Name: new("x"), Company: new("")}, "Profile updated: name, company", "Profile updated: name, company"},
		{domain.IdentifierLinked{Kind: domain.IdentifierPhone, Value: "0033 6 12 34 56 78"}, "Phone linked: +33612345678", "Phone linked"},
		{domain.ConsentGranted{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing, Source: "checkout-form"}, "Consent granted: marketing by sms (checkout-form)", "Consent granted: marketing by sms (checkout-form)"},
		{domain.ConsentWithdrawn{Channel: domain.ConsentSMS, Purpose: domain.PurposeMarketing}, "Consent withdrawn: marketing by sms", "Consent withdrawn: marketing by sms"},
		{domain.EmailOpened{MessageID: "<m>"}, "Email opened", "Email opened"},
		{domain.ChatConversationHeld{Messages: 17, DurationSeconds: 420}, "Chat with bot, 17 messages, 7m0s", "Chat with bot, 17 messages, 7m0s"},
		{domain.MeetingHeld{Title: "QBR", DurationSeconds: 3600}, "Meeting (1h0m0s): QBR", "Meeting (1h0m0s)"},
		{domain.SMSSent{To: "+33612345678", Body: long}, "SMS sent: " + strings.Repeat("é", 79) + "…", "SMS sent"},
		{domain.TicketUpdated{TicketID: ticket1, Status: new(domain.StatusInProgress), Assignee: new(""), Comment: "On it"}, "Ticket 73614f1c… updated (status in_progress, unassigned): On it", "Ticket 73614f1c… updated (status in_progress, unassigned)"},
		{domain.TicketReopened{TicketID: ticket1, Reason: "Again"}, "Ticket 73614f1c… reopened: Again", "Ticket 73614f1c… reopened"},
		{domain.TicketClosed{TicketID: ticket1}, "Ticket 73614f1c… closed", "Ticket 73614f1c… closed"},
		{domain.LeadCaptured{Source: domain.LeadWebForm, Campaign: "salon-lyon"}, "Lead captured from web_form (campaign salon-lyon)", "Lead captured from web_form (campaign salon-lyon)"},
		{domain.OpportunityOpened{OpportunityID: order2, Name: "e-bikes", Amount: 9_600_000, Currency: "EUR", Stage: domain.StageQualification, ExpectedClose: "2025-06-30"}, "Opportunity opened: e-bikes (96000.00 EUR, qualification, closes 2025-06-30)", "Opportunity opened (96000.00 EUR, qualification, closes 2025-06-30)"},
		{domain.OpportunityStageChanged{OpportunityID: order2, Stage: domain.StageProposal}, "Opportunity 0a6f3c1e… moved to proposal", "Opportunity 0a6f3c1e… moved to proposal"},
		{domain.OpportunityWon{OpportunityID: order2}, "Opportunity 0a6f3c1e… won", "Opportunity 0a6f3c1e… won"},
		{domain.OpportunityLost{OpportunityID: order2, Reason: domain.LossNoBudget, Detail: "Next year"}, "Opportunity 0a6f3c1e… lost (no budget): Next year", "Opportunity 0a6f3c1e… lost (no budget)"},
		{domain.CampaignTouched{Campaign: "spring-2025", Channel: domain.CampaignEmail, Action: domain.ActionClicked}, "Campaign spring-2025: clicked (email)", "Campaign spring-2025: clicked (email)"},
		{domain.PurchaseCompleted{OrderID: order1, Amount: 7, Currency: "XXX"}, "Purchase of 7 minor units of XXX (order 44de0bb8…)", "Purchase of 7 minor units of XXX (order 44de0bb8…)"},
		{domain.CustomerForgotten{}, "Customer forgotten", "Customer forgotten"},
		{domain.PointsEarned{Points: 125, Reason: domain.EarnPurchase, OrderID: new(order1), ExpiresAt: time.Date(2026, 3, 14, 23, 30, 0, 0, time.UTC)}, "Earned 125 points (purchase, order 44de0bb8…, expires 2026-03-14)", "Earned 125 points (purchase, order 44de0bb8…, expires 2026-03-14)"},
		{domain.PointsEarned{Points: 1, Reason: domain.EarnBonus, Rule: "double-points-weekend"}, "Earned 1 point (bonus, rule double-points-weekend)", "Earned 1 point (bonus, rule double-points-weekend)"},
		{domain.PointsRedeemed{Points: 500, Reward: "Café offert ☕"}, "Redeemed 500 points for Café offert ☕", "Redeemed 500 points for Café offert ☕"},
		{domain.PointsExpired{EarningID: order2, Points: 500}, "500 points expired (earning 0a6f3c1e…)", "500 points expired (earning 0a6f3c1e…)"},
		{domain.TicketEscalated{TicketID: order1, Priority: domain.PriorityHigh, Breach: "no first response within 4h", SLASeconds: 14400}, "Ticket 44de0bb8… escalated (high): no first response within 4h", "Ticket 44de0bb8… escalated (high): no first response within 4h"},
		{domain.MessageQueued{MessageID: order2, Channel: domain.ConsentEmail, Template: "thank-you-won", Purpose: domain.PurposeService}, "Message queued: thank-you-won by email (service)", "Message queued: thank-you-won by email (service)"},
		{domain.MessageQueued{MessageID: order2, Channel: domain.ConsentSMS, Template: "winback", Purpose: domain.PurposeMarketing, Campaign: "été-2025"}, "Message queued: winback by sms (marketing), campaign été-2025", "Message queued: winback by sms (marketing), campaign été-2025"},
		{domain.MessageDelivered{MessageID: order2, Channel: domain.ConsentEmail, Via: domain.ViaSMTP, Attempts: 1}, "Message 0a6f3c1e… delivered by email via smtp (1 attempt)", "Message 0a6f3c1e… delivered by email via smtp (1 attempt)"},
		{domain.MessageFailed{MessageID: order2, Channel: domain.ConsentSMS, Reason: domain.FailureAttemptsExhausted, Via: domain.ViaWebhook, Attempts: 5, Detail: "HTTP 503"}, "Message 0a6f3c1e… not delivered: attempts_exhausted after 5 attempts (HTTP 503)", "Message 0a6f3c1e… not delivered: attempts_exhausted after 5 attempts (HTTP 503)"},
		{domain.MessageFailed{MessageID: order2, Channel: domain.ConsentEmail, Reason: domain.FailureConsentWithdrawn}, "Message 0a6f3c1e… not delivered: consent_withdrawn", "Message 0a6f3c1e… not delivered: consent_withdrawn"},
		{domain.DiscountIssued{DiscountID: order2, Code: "BDAY-1A2B3C4D", PercentOff: 10, ValidUntil: time.Date(2025, 8, 13, 0, 0, 0, 0, time.UTC), Reason: "birthday"}, "Discount issued: 10% off, code BDAY-1A2B3C4D, valid until 2025-08-13 (birthday)", "Discount issued: 10% off, code BDAY-1A2B3C4D, valid until 2025-08-13 (birthday)"},
		{domain.ProfileUpdated{Birthday: new("1988-07-14")}, "Profile updated: birthday", "Profile updated: birthday"},
		{domain.ProfileUpdated{Locale: new("fr-FR"), Birthday: new("")}, "Profile updated: locale, birthday", "Profile updated: locale, birthday"},
		// Bidi overrides and zero-width characters in names and free
		// text are shown as marks: stored as data, never rendered raw.
		{domain.CustomerRegistered{Name: "Ana \u202Eanahcnas\u202C Ñúñez"}, "Customer registered: Ana [U+202E]anahcnas[U+202C] Ñúñez", "Customer registered"},
		{domain.NoteAdded{Body: "refund\u2067 approved\u2069 \u200Bok\uFEFF"}, "Note: refund[U+2067] approved[U+2069] [U+200B]ok[U+FEFF]", "Note"},
		{domain.ChatConversationHeld{Agent: "user:m\u200Darta", Messages: 2, DurationSeconds: 60}, "Chat with user:m[U+200D]arta, 2 messages, 1m0s", "Chat with user:m[U+200D]arta, 2 messages, 1m0s"},
		{domain.PointsRedeemed{Points: 5, Reward: "Caf\u200Fé"}, "Redeemed 5 points for Caf[U+200F]é", "Redeemed 5 points for Caf[U+200F]é"},
		{nil, "", ""},
	} {
		full, redacted := timeline.Summarize(env(c.ev))
		if full != c.full || redacted != c.redacted {
			t.Errorf("Summarize(%T) = %q, %q; want %q, %q", c.ev, full, redacted, c.full, c.redacted)
		}
	}
}

// Every domain type has its own summary, not just its type name, even
// with an empty payload.
func TestSummarizeEveryType(t *testing.T) {
	for _, typ := range domain.Types() {
		version, _ := domain.SchemaVersion(typ)
		ev, err := domain.Decode(typ, version, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if full, _ := timeline.Summarize(domain.Envelope{Type: typ, Event: ev}); full == typ || full == "" {
			t.Errorf("%s has no summary: %q", typ, full)
		}
	}
}

// Folding a history in one batch or in many small ones yields the same
// bytes: the engine's batch size must never show in a read model.
func TestBatchingDoesNotChangeContents(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		for seed := range uint64(12) {
			projectiontest.BatchSizesAgree(t, b, timeline.New(), projectiontest.RandomHistory(t, seed, 400))
		}
	})
}
