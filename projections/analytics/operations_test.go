package analytics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

var opened0 = time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC)

func ticketID(n int) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "https://support.example/tickets/%d", n))
}

// ticketScenario opens tickets with chosen response and resolution times:
//
//	urgent  first response 10, 20, 30, 40 min (a second flagged response is
//	        ignored); resolved after 2 h and 4 h; one resolved then
//	        reopened, one never resolved.
//	high    ten tickets, first response after 1…10 h, resolved after
//	        1…10 days; the tenth was opened as normal and escalated.
//	normal  first response 5 min, 1 h, 3 h; one resolved after 1 day and
//	        closed, one closed without resolution, one resolved after 2
//	        days, reopened after 3 and resolved again after 5 days.
//	low     none.
//
// By the clock rule (domain.TicketClock, default SLA: urgent 1h, high 4h,
// normal 24h): the urgent ticket reopened after 5 h awaits a response
// since, overdue from 6 h; high tickets 5 to 10 answered after 5 to 10 h
// breached 4 h (the tenth too: raised to high a minute after opening, its
// deadline is 4 h from the opening, not 24); the normal ticket reopened
// after 3 days was resolved after 5 without a response, past its 4-day
// deadline. Its resolution time is 2 + 2 = 4 days open: the day it spent
// resolved does not count.
func ticketScenario() []domain.Envelope {
	var s projectiontest.Log
	var out []domain.Envelope
	n := 0
	open := func(c uuid.UUID, p domain.TicketPriority) uuid.UUID {
		n++
		id := ticketID(n)
		out = append(out, s.Add(c, opened0, domain.TicketOpened{TicketID: id, Subject: "Colis non reçu", Priority: p, Channel: domain.TicketEmail}))
		return id
	}
	respond := func(c, id uuid.UUID, after time.Duration) {
		out = append(out, s.Add(c, opened0.Add(after), domain.TicketUpdated{TicketID: id, Comment: "On s'en occupe.", FirstResponse: true}))
	}
	resolve := func(c, id uuid.UUID, after time.Duration) {
		out = append(out, s.Add(c, opened0.Add(after), domain.TicketResolved{TicketID: id, Resolution: "Erledigt."}))
	}
	reopen := func(c, id uuid.UUID, after time.Duration) {
		out = append(out, s.Add(c, opened0.Add(after), domain.TicketReopened{TicketID: id, Reason: "Still broken"}))
	}
	closeT := func(c, id uuid.UUID, after time.Duration) {
		out = append(out, s.Add(c, opened0.Add(after), domain.TicketClosed{TicketID: id}))
	}
	for i, c := range []uuid.UUID{c1, c2, c3, c4} {
		id := open(c, domain.PriorityUrgent)
		respond(c, id, time.Duration(10*(i+1))*time.Minute)
		switch i {
		case 0:
			resolve(c, id, 2*time.Hour)
			respond(c, id, 3*time.Hour) // not the first response
		case 1:
			resolve(c, id, 4*time.Hour)
		case 2:
			resolve(c, id, time.Hour)
			reopen(c, id, 5*time.Hour)
		}
	}
	for i := 1; i <= 10; i++ {
		p := domain.PriorityHigh
		if i == 10 {
			p = domain.PriorityNormal
		}
		id := open(c5, p)
		if i == 10 {
			out = append(out, s.Add(c5, opened0.Add(time.Minute), domain.TicketUpdated{TicketID: id, Priority: ptr(domain.PriorityHigh)}))
		}
		respond(c5, id, time.Duration(i)*time.Hour)
		resolve(c5, id, time.Duration(i)*24*time.Hour)
	}
	a := open(c6, domain.PriorityNormal)
	respond(c6, a, 5*time.Minute)
	resolve(c6, a, 24*time.Hour)
	closeT(c6, a, 48*time.Hour)
	b := open(c6, domain.PriorityNormal)
	respond(c6, b, time.Hour)
	closeT(c6, b, 2*time.Hour)
	c := open(c7, domain.PriorityNormal)
	respond(c7, c, 3*time.Hour)
	resolve(c7, c, 2*24*time.Hour)
	reopen(c7, c, 3*24*time.Hour)
	resolve(c7, c, 5*24*time.Hour)
	return out
}

func TestTicketSLA(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, analytics.NewTickets(analytics.Config{}), ticketScenario())
		const day = 24 * time.Hour
		got, err := analytics.TicketSLA(context.Background(), r, analytics.TicketSLAOptions{Now: opened0.Add(30 * day)})
		if err != nil {
			t.Fatal(err)
		}
		// Nearest rank ⌈p·n/100⌉: n = 4 → median rank 2, p90 rank 4;
		// n = 2 → 1 and 2; n = 10 → 5 and 9; n = 3 → 2 and 3.
		want := []analytics.PrioritySLA{
			{Priority: domain.PriorityUrgent, Tickets: 4, Unresolved: 2,
				FirstResponse: dur(4, 20*time.Minute, 40*time.Minute),
				Resolution:    dur(2, 2*time.Hour, 4*time.Hour),
				Breaches:      1, Overdue: 1},
			{Priority: domain.PriorityHigh, Tickets: 10,
				FirstResponse: dur(10, 5*time.Hour, 9*time.Hour),
				Resolution:    dur(10, 5*day, 9*day),
				Breaches:      6},
			{Priority: domain.PriorityNormal, Tickets: 3, Unresolved: 1,
				FirstResponse: dur(3, time.Hour, 3*time.Hour),
				Resolution:    dur(2, day, 4*day),
				Breaches:      1},
			{Priority: domain.PriorityLow},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("TicketSLA\n got %+v\nwant %+v", got, want)
		}
		// Five and a half hours after the openings the reopened urgent
		// ticket is not overdue yet; without a time, no running cycle is
		// judged.
		for _, now := range []time.Time{opened0.Add(5*time.Hour + 30*time.Minute), {}} {
			got, err := analytics.TicketSLA(context.Background(), r, analytics.TicketSLAOptions{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Breaches != 0 || got[0].Overdue != 0 || got[1].Breaches != 6 {
				t.Errorf("at %s: urgent %+v, high %+v", now, got[0], got[1])
			}
		}
	})
}

// dur is a Durations of count values, median and p90 given as durations.
func dur(count int, median, p90 time.Duration) analytics.Durations {
	return analytics.Durations{Count: count, MedianSeconds: median.Seconds(), P90Seconds: p90.Seconds()}
}

func TestChannelMix(t *testing.T) {
	var s projectiontest.Log
	events := []domain.Envelope{
		s.AddRFC3339(c1, "2025-02-28T23:59:59Z", domain.EmailReceived{MessageID: "<a@x>", From: "zoe@example.fr", To: "support@shop.example"}),
		s.AddRFC3339(c1, "2025-03-01T08:00:00Z", domain.CallLogged{Direction: domain.CallInbound, DurationSeconds: 754, Agent: "user:marta", Outcome: domain.CallConnected}),
		s.AddRFC3339(c1, "2025-03-01T09:00:00Z", domain.EmailSent{MessageID: "<b@x>", From: "support@shop.example", To: "zoe@example.fr"}),
		s.AddRFC3339(c1, "2025-03-01T09:05:00Z", domain.EmailOpened{MessageID: "<b@x>"}),
		s.AddRFC3339(c2, "2025-03-01T10:00:00Z", domain.CampaignTouched{Campaign: "spring-2025", Channel: domain.CampaignEmail, Action: domain.ActionClicked}),
		s.AddRFC3339(c2, "2025-03-01T11:00:00Z", domain.CampaignTouched{Campaign: "spring-2025", Channel: domain.CampaignPush, Action: domain.ActionDelivered}),
		s.AddRFC3339(c2, "2025-03-01T12:00:00Z", domain.NoteAdded{Body: "Prefers French."}),
		// 01:30 in Paris on the 3rd is 23:30 UTC on the 2nd.
		s.AddRFC3339(c3, "2025-03-03T01:30:00+02:00", domain.ChatConversationHeld{ConversationID: "conv_1", Messages: 12, DurationSeconds: 300}),
		s.AddRFC3339(c3, "2025-03-02T14:00:00Z", domain.MeetingHeld{Title: "QBR", DurationSeconds: 3600}),
		s.AddRFC3339(c3, "2025-03-02T15:00:00Z", domain.SMSSent{To: "+33 6 12 34 56 78", Body: "À demain"}),
		s.AddRFC3339(c3, "2025-03-05T15:00:00Z", domain.TicketOpened{TicketID: ticketID(1), Subject: "Retour", Priority: domain.PriorityLow, Channel: domain.TicketWeb}),
	}
	from := time.Date(2025, 3, 1, 15, 0, 0, 0, time.UTC) // the time of day is ignored
	to := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, analytics.NewChannels(analytics.Config{}), events)
		got, err := analytics.ChannelMix(context.Background(), r, from, to)
		if err != nil {
			t.Fatal(err)
		}
		want := analytics.ChannelMixReport{
			Days: []analytics.DayMix{
				{Day: "2025-03-01", Touches: 5, Channels: []analytics.ChannelCount{
					{Channel: "email", Touches: 3, Share: 0.6}, {Channel: "phone", Touches: 1, Share: 0.2}, {Channel: "push", Touches: 1, Share: 0.2}}},
				{Day: "2025-03-02", Touches: 3, Channels: []analytics.ChannelCount{
					{Channel: "chat", Touches: 1, Share: 1.0 / 3}, {Channel: "meeting", Touches: 1, Share: 1.0 / 3}, {Channel: "sms", Touches: 1, Share: 1.0 / 3}}},
			},
			Touches: 8,
			Channels: []analytics.ChannelCount{
				{Channel: "chat", Touches: 1, Share: 0.125}, {Channel: "email", Touches: 3, Share: 0.375}, {Channel: "meeting", Touches: 1, Share: 0.125},
				{Channel: "phone", Touches: 1, Share: 0.125}, {Channel: "push", Touches: 1, Share: 0.125}, {Channel: "sms", Touches: 1, Share: 0.125},
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ChannelMix\n got %+v\nwant %+v", got, want)
		}
		empty, err := analytics.ChannelMix(context.Background(), r, to.AddDate(1, 0, 0), to.AddDate(2, 0, 0))
		if err != nil || empty.Touches != 0 || len(empty.Days) != 0 || len(empty.Channels) != 0 {
			t.Errorf("empty period: %+v, %v", empty, err)
		}
	})
}

// Durations go on the wire as seconds, named as such (issue 14.17: not
// unlabelled nanoseconds).
func TestDurationsJSONInSeconds(t *testing.T) {
	got, err := json.Marshal(dur(3, 90*time.Second, 1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"count":3,"medianSeconds":90,"p90Seconds":1.5}`; string(got) != want {
		t.Errorf("%s, want %s", got, want)
	}
}
