package engage_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore/memstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/engage"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/cxledger/cxledger/projections/reactor"
	"github.com/cxledger/cxledger/projections/reactor/reactortest"
)

// weeklyRisk is a churn risk per whole day after base; a day not listed
// has no score.
type weeklyRisk map[int]float64

func (w weeklyRisk) ChurnRisk(_ context.Context, c uuid.UUID, at time.Time) (float64, bool, error) {
	if c != customer {
		return 0, false, nil
	}
	r, ok := w[int(at.Sub(base)/day)]
	return r, ok, nil
}

func TestAtRiskRetention(t *testing.T) {
	t.Parallel()
	const name = "at_risk_retention"
	consent := domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "checkout-form"}
	purchase := domain.PurchaseCompleted{OrderID: order, Amount: 7900, Currency: "EUR", Lines: []domain.OrderLine{{SKU: "MOULIN-1", Quantity: 1, UnitAmount: 7900}}}
	// Checks every 7 days after the purchase at base: below, crossing (an
	// offer), above (silent), below (armed again), crossing (an offer),
	// above, no score (silent, still above).
	risks := weeklyRisk{7: 0.3, 14: 0.75, 21: 0.8, 28: 0.5, 35: 0.7, 42: 0.95}
	offer := func(days int) (uuid.UUID, domain.Event) {
		timer := reactor.Timer{Key: "at_risk/" + customer.String(), Due: base.Add(time.Duration(days) * day)}.ID(name)
		return timer, domain.MessageQueued{MessageID: uuid.NewSHA1(timer, []byte("win-back")), Channel: domain.ConsentEmail, Template: "win-back", Purpose: domain.PurposeMarketing, Campaign: "win-back"}
	}
	tests := []struct {
		name    string
		history []domain.Event
		at      time.Duration
		want    []int // the days of the checks that emit an offer
	}{
		{"quiet before the crossing", []domain.Event{consent, purchase}, 14*day - time.Second, nil},
		{"one offer per crossing", []domain.Event{consent, purchase}, 49 * day, []int{14, 35}},
		{"refused without consent", []domain.Event{purchase}, 49 * day, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
				r := must(engage.NewAtRiskRetention(engage.AtRiskConfig{}, risks))
				s := memstore.New(memstore.Config{})
				add(t, s, base, domain.CustomerRegistered{CustomerID: customer, Name: "Zoë Ångström-Nguyễn"})
				for _, e := range tt.history {
					add(t, s, base, e)
				}
				clk := reactortest.NewClock(base.Add(tt.at))
				check := func(when string) {
					t.Helper()
					got := emitted(t, s, name)
					if len(got) != len(tt.want) {
						t.Fatalf("%s: emitted %d events, want %d: %+v", when, len(got), len(tt.want), got)
					}
					for i, d := range tt.want {
						timer, want := offer(d)
						if !reflect.DeepEqual(got[i].Event, want) {
							t.Errorf("%s: emitted %#v\nwant %#v", when, got[i].Event, want)
						}
						if md := got[i].Metadata; !md.OccurredAt.Equal(base.Add(time.Duration(d)*day)) || md.CausationID != timer.String() {
							t.Errorf("%s: metadata %+v, want day %d caused by %s", when, md, d, timer)
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

func TestNewRulesConfigValidate(t *testing.T) {
	t.Parallel()
	for name, err := range map[string]error{
		"birthday negative days":   second(engage.NewBirthdayGreeting(engage.BirthdayConfig{DaysBefore: -1}, nil)),
		"birthday 101 percent":     second(engage.NewBirthdayGreeting(engage.BirthdayConfig{PercentOff: 101}, nil)),
		"birthday negative valid":  second(engage.NewBirthdayGreeting(engage.BirthdayConfig{ValidFor: -day}, nil)),
		"birthday push":            second(engage.NewBirthdayGreeting(engage.BirthdayConfig{Message: engage.Message{Channel: domain.ConsentPush}}, nil)),
		"at-risk threshold over 1": second(engage.NewAtRiskRetention(engage.AtRiskConfig{Threshold: 1.5}, weeklyRisk{})),
		"at-risk negative":         second(engage.NewAtRiskRetention(engage.AtRiskConfig{Threshold: -0.1}, weeklyRisk{})),
		"at-risk minute checks":    second(engage.NewAtRiskRetention(engage.AtRiskConfig{CheckEvery: time.Minute}, weeklyRisk{})),
		"at-risk no scores":        second(engage.NewAtRiskRetention(engage.AtRiskConfig{}, nil)),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, r := range []reactor.Reactor{
		must(engage.NewBirthdayGreeting(engage.BirthdayConfig{DaysBefore: 7, PercentOff: 100}, nil)),
		must(engage.NewAtRiskRetention(engage.AtRiskConfig{Threshold: 1}, weeklyRisk{})),
	} {
		if err := reactor.Validate(r); err != nil {
			t.Errorf("%s: %v", r.Name(), err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
