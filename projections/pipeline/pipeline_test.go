package pipeline_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/pipeline"
	"github.com/cxledger/cxledger/projections/projectiontest"
	"github.com/google/uuid"
)

var (
	acme   = uuid.MustParse("d534094c-47b3-4e3d-bd10-ea53be0fd4e3")
	globex = uuid.MustParse("42cf91f1-637d-4ce8-982a-e960dc8f20a3")

	oppA = uuid.MustParse("f939778c-7753-457d-845e-b1250db871bc")
	oppB = uuid.MustParse("5a1b04a4-d7d1-4c70-8487-7aca1603538f")
	oppC = uuid.MustParse("f231ff05-099c-44b6-812d-048ced63e766")
	oppD = uuid.MustParse("ffc4e0c8-8f44-49aa-8c37-b09e14b9ee9e")
	oppE = uuid.MustParse("2f8fae9b-b0ff-4974-9d99-dc9c9247723c")
	oppF = uuid.MustParse("3da9bc22-b81d-4d3f-98b0-ab7e60275d6a")
	oppG = uuid.MustParse("01df3b27-7af8-4898-acf6-aa86bc634e07")
)

const day = 24 * time.Hour

func opened(id uuid.UUID, name string, amount int64, currency string, stage domain.OpportunityStage, expected string) domain.OpportunityOpened {
	return domain.OpportunityOpened{OpportunityID: id, Name: name, Amount: amount, Currency: currency, Stage: stage, ExpectedClose: expected}
}

func moved(id uuid.UUID, stage domain.OpportunityStage) domain.OpportunityStageChanged {
	return domain.OpportunityStageChanged{OpportunityID: id, Stage: stage}
}

// scenario: seven opportunities of two customers, every date at 09:00 UTC
// so that each duration is a whole number of days. Day 0 is 2025-01-06.
//
//	A acme   EUR 1 000 000  prospecting d0 → qualification d2 → proposal d5 → won d10
//	B acme   EUR   200 000  qualification d1 → negotiation d4 → lost d21
//	C acme   EUR   300 000  proposal d3 → won d33
//	D acme   EUR    50 000  prospecting d20, open, expected 2025-02-28
//	E globex EUR   400 000  qualification d0 → proposal d25, open, expected 2025-03-15
//	F globex USD   120 000  negotiation d30, open, expected 2025-01-31
//	G globex USD    80 000  prospecting d5 → lost d25
//
// plus a stage change after A's win and a loss after C's win, both ignored.
func scenario() []domain.Envelope {
	var s projectiontest.Log
	return []domain.Envelope{
		s.AddRFC3339(acme, "2025-01-06T09:00:00Z", opened(oppA, "Fleet of 40 e-bikes", 1_000_000, "EUR", domain.StageProspecting, "2025-02-01")),
		s.AddRFC3339(globex, "2025-01-06T09:00:00Z", opened(oppE, "Entrepôt Lyon — racks", 400_000, "EUR", domain.StageQualification, "2025-03-15")),
		s.AddRFC3339(acme, "2025-01-07T09:00:00Z", opened(oppB, "Service contract", 200_000, "EUR", domain.StageQualification, "2025-02-01")),
		s.AddRFC3339(acme, "2025-01-08T09:00:00Z", moved(oppA, domain.StageQualification)),
		s.AddRFC3339(acme, "2025-01-09T09:00:00Z", opened(oppC, "Ersatzteile 2025", 300_000, "EUR", domain.StageProposal, "2025-02-01")),
		s.AddRFC3339(acme, "2025-01-10T09:00:00Z", moved(oppB, domain.StageNegotiation)),
		s.AddRFC3339(acme, "2025-01-11T09:00:00Z", moved(oppA, domain.StageProposal)),
		s.AddRFC3339(globex, "2025-01-11T09:00:00Z", opened(oppG, "Pilot", 80_000, "USD", domain.StageProspecting, "2025-02-01")),
		s.AddRFC3339(acme, "2025-01-16T09:00:00Z", domain.OpportunityWon{OpportunityID: oppA}),
		s.AddRFC3339(acme, "2025-01-17T09:00:00Z", moved(oppA, domain.StageNegotiation)),
		s.AddRFC3339(acme, "2025-01-26T09:00:00Z", opened(oppD, "Add-on seats", 50_000, "EUR", domain.StageProspecting, "2025-02-28")),
		s.AddRFC3339(acme, "2025-01-27T09:00:00Z", domain.OpportunityLost{OpportunityID: oppB, Reason: domain.LossPrice}),
		s.AddRFC3339(globex, "2025-01-31T09:00:00Z", moved(oppE, domain.StageProposal)),
		s.AddRFC3339(globex, "2025-01-31T09:00:00Z", domain.OpportunityLost{OpportunityID: oppG, Reason: domain.LossNoBudget}),
		s.AddRFC3339(globex, "2025-02-05T09:00:00Z", opened(oppF, "Renewal 2025", 120_000, "USD", domain.StageNegotiation, "2025-01-31")),
		s.AddRFC3339(acme, "2025-02-08T09:00:00Z", domain.OpportunityWon{OpportunityID: oppC}),
		s.AddRFC3339(acme, "2025-02-09T09:00:00Z", domain.OpportunityLost{OpportunityID: oppC, Reason: domain.LossTiming}),
	}
}

var now = time.Date(2025, 2, 15, 9, 0, 0, 0, time.UTC) // day 40

func TestSummary(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, pipeline.New(pipeline.Config{}), scenario())
		got, err := pipeline.Summary(context.Background(), r, pipeline.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		// Closed: A won (10 d), B lost (20 d), C won (30 d), G lost (20 d).
		// Win rate 2/4; cycle 80 d / 4 = 20 d. EUR deal size
		// (1 000 000 + 300 000) / 2 = 650 000; EUR velocity
		// 2 open × 0.5 × 650 000 ÷ 20 d = 32 500 per day.
		want := pipeline.Report{
			Stages: []pipeline.StageSummary{
				{Stage: domain.StageProspecting, Probability: 0.10, Open: 1,
					Amounts: []pipeline.Money{{"EUR", 50_000}}, Weighted: []pipeline.Money{{"EUR", 5_000}},
					AverageAgeSeconds: secs(20 * day), Visits: 2, AverageTimeSeconds: secs(11 * day)}, // A 2 d, G 20 d
				{Stage: domain.StageQualification, Probability: 0.25, Open: 0,
					Amounts: []pipeline.Money{}, Weighted: []pipeline.Money{},
					Visits: 3, AverageTimeSeconds: secs(10*day + 8*time.Hour)}, // A 3 d, B 3 d, E 25 d
				{Stage: domain.StageProposal, Probability: 0.50, Open: 1,
					Amounts: []pipeline.Money{{"EUR", 400_000}}, Weighted: []pipeline.Money{{"EUR", 200_000}},
					AverageAgeSeconds: secs(15 * day), Visits: 2, AverageTimeSeconds: secs(17*day + 12*time.Hour)}, // A 5 d, C 30 d
				{Stage: domain.StageNegotiation, Probability: 0.75, Open: 1,
					Amounts: []pipeline.Money{{"USD", 120_000}}, Weighted: []pipeline.Money{{"USD", 90_000}},
					AverageAgeSeconds: secs(10 * day), Visits: 1, AverageTimeSeconds: secs(17 * day)}, // B 17 d
			},
			Currencies: []pipeline.CurrencySummary{
				{Currency: "EUR", Open: 2, OpenAmount: 450_000, WeightedForecast: 205_000,
					Won: 2, WonAmount: 1_300_000, AverageDealSize: 650_000, Velocity: 32_500},
				{Currency: "USD", Open: 1, OpenAmount: 120_000, WeightedForecast: 90_000},
			},
			Open: 3, Won: 2, Lost: 2, WinRate: 0.5, AverageCycleSeconds: secs(20 * day),
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Summary:\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestSummaryClosedWindow(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, pipeline.New(pipeline.Config{}), scenario())
		opts := pipeline.Options{Now: now, ClosedFrom: time.Date(2025, 1, 21, 9, 0, 0, 0, time.UTC), ClosedTo: now}
		got, err := pipeline.Summary(context.Background(), r, opts)
		if err != nil {
			t.Fatal(err)
		}
		// Closed in the window: B lost (20 d), C won (30 d), G lost (20 d).
		if got.Won != 1 || got.Lost != 2 || got.WinRate != 1.0/3 || got.AverageCycleSeconds != secs(23*day+8*time.Hour) {
			t.Errorf("won %d lost %d rate %v cycle %v, want 1, 2, 1/3, 23d8h", got.Won, got.Lost, got.WinRate, got.AverageCycleSeconds)
		}
		// 2 open × 1/3 × 300 000 ÷ (70/3 d) = 600 000/70 per day.
		eur := got.Currencies[0]
		if eur.Won != 1 || eur.WonAmount != 300_000 || eur.AverageDealSize != 300_000 || !near(eur.Velocity, 600_000.0/70) {
			t.Errorf("EUR %+v, want 1 won of 300 000, velocity %v", eur, 600_000.0/70)
		}
	})
}

func TestSummaryProbabilities(t *testing.T) {
	r := projectiontest.Fold(t, projections.NewMemory(), pipeline.New(pipeline.Config{}), scenario())
	ctx := context.Background()
	got, err := pipeline.Summary(ctx, r, pipeline.Options{Now: now, Probabilities: map[domain.OpportunityStage]float64{
		domain.StageProposal: 1, domain.StageProspecting: 0.333,
	}})
	if err != nil {
		t.Fatal(err)
	}
	// EUR: 50 000 × 0.333 + 400 000 × 1 = 416 650; USD negotiation has no
	// probability, so 0.
	if eur, usd := got.Currencies[0], got.Currencies[1]; eur.WeightedForecast != 416_650 || usd.WeightedForecast != 0 {
		t.Errorf("weighted EUR %d USD %d, want 416650 and 0", eur.WeightedForecast, usd.WeightedForecast)
	}
	for _, bad := range []float64{-0.1, 1.5} {
		_, err := pipeline.Summary(ctx, r, pipeline.Options{Probabilities: map[domain.OpportunityStage]float64{domain.StageProposal: bad}})
		if err == nil {
			t.Errorf("probability %v accepted", bad)
		}
	}
}

func TestForecast(t *testing.T) {
	projectiontest.EachBackend(t, func(t *testing.T, b projections.Backend) {
		r := projectiontest.Fold(t, b, pipeline.New(pipeline.Config{}), scenario())
		got, err := pipeline.Forecast(context.Background(), r, pipeline.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		want := []pipeline.ForecastMonth{
			{Month: "2025-01", Open: 1, Overdue: 1, Amounts: []pipeline.Money{{"USD", 120_000}}, Weighted: []pipeline.Money{{"USD", 90_000}}},
			{Month: "2025-02", Open: 1, Amounts: []pipeline.Money{{"EUR", 50_000}}, Weighted: []pipeline.Money{{"EUR", 5_000}}},
			{Month: "2025-03", Open: 1, Amounts: []pipeline.Money{{"EUR", 400_000}}, Weighted: []pipeline.Money{{"EUR", 200_000}}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Forecast:\n got %+v\nwant %+v", got, want)
		}
	})
}

func TestEmpty(t *testing.T) {
	r := projectiontest.Fold(t, projections.NewMemory(), pipeline.New(pipeline.Config{}), nil)
	got, err := pipeline.Summary(context.Background(), r, pipeline.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got.Open != 0 || got.WinRate != 0 || len(got.Currencies) != 0 || len(got.Stages) != 4 {
		t.Errorf("empty pipeline: %+v", got)
	}
}

func TestProjection(t *testing.T) {
	p := pipeline.New(pipeline.Config{})
	if err := projections.ValidateProjection(p); err != nil {
		t.Fatal(err)
	}
	if p.Name() != "pipeline" || pipeline.New(pipeline.Config{Name: "pipeline_b"}).Name() != "pipeline_b" {
		t.Errorf("names %q", p.Name())
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// secs is d in seconds, as the report states durations.
func secs(d time.Duration) float64 { return d.Seconds() }
