package engage_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"reflect"
	"regexp"
	"strings"
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

// fakeKeys reveals the tokens it knows; anything else comes back as is.
type fakeKeys map[string]string

func (k fakeKeys) Reveal(_ context.Context, _ uuid.UUID, s string) (string, error) {
	if p, ok := k[s]; ok {
		return p, nil
	}
	return s, nil
}

// addSealed stores e with the birthday plain replaced by token, as the
// write path would store it sealed.
func addSealed(t *testing.T, s eventstore.Store, at time.Time, e domain.Event, plain, token string) {
	t.Helper()
	typ, v, data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(`"`+plain+`"`), []byte(`"`+token+`"`), 1)
	md := eventstore.Metadata{OccurredAt: at, Actor: "user:agent-7", Channel: "web", SchemaVersion: v}
	if _, err := s.Append(context.Background(), domain.StreamID(customer), eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md}); err != nil {
		t.Fatal(err)
	}
}

func TestBirthdayGreeting(t *testing.T) {
	t.Parallel()
	const name = "birthday_greeting"
	consent := domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout-form"}
	registered := func(birthday string) domain.CustomerRegistered {
		return domain.CustomerRegistered{CustomerID: customer, Name: "Zoë Ångström-Nguyễn", Country: "FR", Birthday: birthday}
	}
	// greeting is what a timer due at due emits: a 10% code valid 30 days
	// and the marketing message, in that order.
	greeting := func(due time.Time) []domain.Event {
		timer := reactor.Timer{Key: "birthday/" + customer.String(), Due: due}.ID(name)
		id := uuid.NewSHA1(timer, []byte("discount"))
		return []domain.Event{
			domain.DiscountIssued{DiscountID: id, Code: "BDAY-" + strings.ToUpper(hex.EncodeToString(id[:4])), PercentOff: 10, ValidUntil: due.Add(30 * day), Reason: "birthday"},
			domain.MessageQueued{MessageID: uuid.NewSHA1(timer, []byte("birthday")), Channel: domain.ConsentEmail, Template: "birthday", Purpose: domain.PurposeMarketing, Campaign: "birthday"},
		}
	}
	date := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	keys := fakeKeys{"enc:v1:birthday": "1988-07-14", "enc:v1:erased": "[erased]"}

	tests := []struct {
		name  string
		cfg   engage.BirthdayConfig
		store func(t *testing.T, s eventstore.Store)
		// quiet is a clock at which nothing is emitted yet (zero: not
		// checked); at is the clock at which want holds: the due times of
		// the greetings emitted.
		quiet, at time.Time
		want      []time.Time
	}{
		{
			name: "greeted at the next occurrence, midnight UTC",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1988-07-14"))
				add(t, s, base, consent)
			},
			quiet: date(2025, 7, 13).Add(24*time.Hour - time.Microsecond), at: date(2025, 7, 14),
			want: []time.Time{date(2025, 7, 14)},
		},
		{
			name: "greeted every year, a year-less birthday too",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("--01-05"))
				add(t, s, base, consent)
			},
			at:   date(2027, 1, 5),
			want: []time.Time{date(2026, 1, 5), date(2027, 1, 5)},
		},
		{
			name: "a birthday earlier that day is next year's",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("--06-02")) // base is 2025-06-02 09:00
				add(t, s, base, consent)
			},
			quiet: date(2026, 6, 1), at: date(2026, 6, 2),
			want: []time.Time{date(2026, 6, 2)},
		},
		{
			name: "days before",
			cfg:  engage.BirthdayConfig{DaysBefore: 3},
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1988-07-14"))
				add(t, s, base, consent)
			},
			quiet: date(2025, 7, 10), at: date(2025, 7, 11),
			want: []time.Time{date(2025, 7, 11)},
		},
		{
			name: "29 February is greeted on the 28th in common years",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1992-02-29"))
				add(t, s, base, consent)
			},
			at:   date(2028, 3, 1),
			want: []time.Time{date(2026, 2, 28), date(2027, 2, 28), date(2028, 2, 29)},
		},
		{
			name: "refused without consent: no discount either",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1988-07-14"))
			},
			at: date(2025, 8, 1),
		},
		{
			name: "refused after a withdrawal",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1988-07-14"))
				add(t, s, base, consent)
				add(t, s, base.Add(day), domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing})
			},
			at: date(2025, 8, 1),
		},
		{
			name: "a birthday added by a profile update",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered(""))
				add(t, s, base, consent)
				add(t, s, base.Add(day), domain.ProfileUpdated{Birthday: new("1988-07-14")})
			},
			at:   date(2025, 7, 14),
			want: []time.Time{date(2025, 7, 14)},
		},
		{
			name: "a cleared birthday cancels",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1988-07-14"))
				add(t, s, base, consent)
				add(t, s, base.Add(day), domain.ProfileUpdated{Birthday: new("")})
			},
			at: date(2026, 8, 1),
		},
		{
			name: "an update without the birthday keeps it",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1988-07-14"))
				add(t, s, base, consent)
				add(t, s, base.Add(day), domain.ProfileUpdated{Company: new("Vélos & Cie")})
			},
			at:   date(2025, 7, 14),
			want: []time.Time{date(2025, 7, 14)},
		},
		{
			name: "a sealed birthday is revealed",
			store: func(t *testing.T, s eventstore.Store) {
				addSealed(t, s, base, registered("1988-07-14"), "1988-07-14", "enc:v1:birthday")
				add(t, s, base, consent)
			},
			at:   date(2025, 7, 14),
			want: []time.Time{date(2025, 7, 14)},
		},
		{
			name: "an erased birthday cancels",
			store: func(t *testing.T, s eventstore.Store) {
				add(t, s, base, registered("1988-07-14"))
				add(t, s, base, consent)
				addSealed(t, s, base.Add(day), domain.ProfileUpdated{Birthday: new("1990-01-01")}, "1990-01-01", "enc:v1:erased")
			},
			at: date(2026, 8, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
				r := must(engage.NewBirthdayGreeting(tt.cfg, keys))
				s := memstore.New(memstore.Config{})
				tt.store(t, s)
				clk := reactortest.NewClock(base)
				if !tt.quiet.IsZero() {
					clk.Set(tt.quiet)
					run(t, s, b, r, clk)
					if got := emitted(t, s, name); len(got) != 0 {
						t.Fatalf("emitted before due: %+v", got)
					}
				}
				clk.Set(tt.at)
				check := func(when string) {
					t.Helper()
					got := emitted(t, s, name)
					if len(got) != 2*len(tt.want) {
						t.Fatalf("%s: emitted %d events, want %d: %+v", when, len(got), 2*len(tt.want), got)
					}
					for i, due := range tt.want {
						timer := reactor.Timer{Key: "birthday/" + customer.String(), Due: due}.ID(name)
						for j, want := range greeting(due) {
							e := got[2*i+j]
							if !reflect.DeepEqual(e.Event, want) {
								t.Errorf("%s: emitted %#v\nwant %#v", when, e.Event, want)
							}
							if md := e.Metadata; !md.OccurredAt.Equal(due) || md.CausationID != timer.String() {
								t.Errorf("%s: metadata %+v, want occurred at %s, caused by %s", when, md, due, timer)
							}
						}
						if code := got[2*i].Event.(domain.DiscountIssued).Code; !regexp.MustCompile(`^BDAY-[0-9A-F]{8}$`).MatchString(code) {
							t.Errorf("code %q", code)
						}
					}
				}
				run(t, s, b, r, clk)
				check("run")
				if err := b.Drop(context.Background(), reactor.Namespace(name)); err != nil {
					t.Fatal(err)
				}
				run(t, s, b, r, clk)
				check("replay")
			})
		})
	}
}
