package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/adapters/seed"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/customer360"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/google/uuid"
)

// ReadCase is the read path measured over one seeded population: the
// queries the HTTP handlers and the CLI run (adapters/query), on read
// models replayed from the population's log and the analytics model
// fitted once in advance, as the background fitter keeps it.
type ReadCase struct {
	Customers int `json:"customers"`
	Events    int `json:"events"`
	// Buyers counts the customers the model scores; FitSeconds is the
	// background fit's time (set-up, not a target).
	Buyers     int     `json:"buyers"`
	FitSeconds float64 `json:"fitSeconds"`
	// View is query.Service.Customer (GET /v1/customers/{id}, 'cxledger
	// view ID'); Lookup is Lookup then Customer (GET
	// /v1/customers?identifier=…); RFMList is query.Service.RFM (GET
	// /v1/analytics/rfm), every buyer.
	View    Latency `json:"view"`
	Lookup  Latency `json:"lookup"`
	RFMList Latency `json:"rfmList"`
	// RFMListCPUMs is the process's CPU time per full RFM list, in ms:
	// unlike the latencies, it does not grow with the machine's load.
	RFMListCPUMs float64 `json:"rfmListCpuMs,omitempty"`
}

// The read targets.
const (
	targetViewP99Ms    = 10
	targetLookupP99Ms  = 10
	targetRFMListP99Ms = 1000
)

// readPaths measures the read path over each population of
// cfg.ReadCustomers, each seeded into fresh scratch space of the backend.
func readPaths(ctx context.Context, cfg Config, backend string, logf func(string, ...any)) ([]ReadCase, error) {
	var out []ReadCase
	for _, n := range cfg.ReadCustomers {
		var sut system
		switch backend {
		case Embedded:
			s, err := newEmbedded(cfg.Dir)
			if err != nil {
				return out, err
			}
			sut = s
		case Postgres:
			s, err := newPostgres(ctx, cfg.PostgresURL)
			if err != nil {
				return out, err
			}
			sut = s
		default:
			return out, fmt.Errorf("bench: unknown backend %q", backend)
		}
		c, err := readCase(ctx, cfg, sut, n, logf)
		if cerr := sut.close(); err == nil && cerr != nil {
			err = fmt.Errorf("clean up: %w", cerr)
		}
		if err != nil {
			return out, fmt.Errorf("reads over %d customers: %w", n, err)
		}
		logf("reads over %d customers (%d buyers, fit %.1fs): view p50 %.2f p99 %.2f ms; lookup p50 %.2f p99 %.2f ms; RFM list p50 %.0f p99 %.0f ms (CPU %.0f ms per list)",
			n, c.Buyers, c.FitSeconds, c.View.P50Ms, c.View.P99Ms, c.Lookup.P50Ms, c.Lookup.P99Ms, c.RFMList.P50Ms, c.RFMList.P99Ms, c.RFMListCPUMs)
		out = append(out, c)
	}
	return out, nil
}

// readCase seeds n customers, replays the read models the reads use, fits
// the model and samples the three reads.
func readCase(ctx context.Context, cfg Config, sut system, n int, logf func(string, ...any)) (ReadCase, error) {
	c := ReadCase{Customers: n}
	store, err := sut.seedStore(ctx, true)
	if err != nil {
		return c, err
	}
	scfg := seed.Config{Customers: n, Seed: cfg.Seed, Concurrency: 16, ChunkEvents: 1000}
	sum, _, err := seedLog(ctx, store, scfg, func(p seed.Progress) {
		if !p.Done {
			logf("reads: seeding %d customers: %d events", n, p.Events)
		}
	})
	if cerr := store.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return c, err
	}
	c.Events = sum.Events
	store, err = sut.seedStore(ctx, false)
	if err != nil {
		return c, err
	}
	defer store.Close()
	rm, err := sut.readModels(ctx)
	if err != nil {
		return c, err
	}
	defer rm.Close()
	ps, unknown := catalog.Select(catalog.Deps{}, customer360.Name, identity.Name, analytics.CustomersName)
	if len(unknown) > 0 {
		return c, fmt.Errorf("unknown read models %v", unknown)
	}
	if err := projections.Replay(ctx, store, rm, ps, projections.Config{Logger: quiet}, nil); err != nil {
		return c, fmt.Errorf("replay: %w", err)
	}
	q := query.New(rm)
	start := time.Now()
	fit, err := analytics.Refit(ctx, rm, nil, time.Now(), 0)
	if err != nil {
		return c, fmt.Errorf("fit: %w", err)
	}
	c.FitSeconds, c.Buyers = time.Since(start).Seconds(), fit.Buyers

	// The sampled customers and one identifier of each, as a client
	// would know them.
	g, err := seed.NewGenerator(scfg)
	if err != nil {
		return c, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 4))
	const samples = 1000
	type probe struct {
		id          uuid.UUID
		kind, value string
	}
	probes := make([]probe, 0, samples)
	for len(probes) < samples {
		h, err := g.Customer(rng.IntN(n))
		if err != nil {
			return c, err
		}
		v, err := q.Customer(ctx, h.Customer)
		if err != nil {
			return c, fmt.Errorf("view of %s: %w", h.Customer, err)
		}
		p := probe{id: h.Customer}
		if len(v.Identifiers) > 0 {
			p.kind, p.value = string(v.Identifiers[0].Kind), v.Identifiers[0].Value
		}
		probes = append(probes, p)
	}
	lat := make([]time.Duration, 0, samples)
	for _, p := range probes {
		t0 := time.Now()
		if _, err := q.Customer(ctx, p.id); err != nil {
			return c, fmt.Errorf("view of %s: %w", p.id, err)
		}
		lat = append(lat, time.Since(t0))
	}
	c.View = latency(lat, "query.Service.Customer: customer 360 and the analytics score by lookup in the stored model")
	lat = lat[:0]
	for _, p := range probes {
		if p.kind == "" {
			continue
		}
		t0 := time.Now()
		id, err := q.Lookup(ctx, domain.IdentifierKind(p.kind), p.value)
		if err != nil {
			return c, fmt.Errorf("lookup %s:%s: %w", p.kind, p.value, err)
		}
		if _, err := q.Customer(ctx, id); err != nil {
			return c, err
		}
		lat = append(lat, time.Since(t0))
	}
	if len(lat) == 0 {
		return c, errors.New("no sampled customer has an identifier")
	}
	c.Lookup = latency(lat, "query.Service.Lookup of the customer's first identifier, then Customer")
	lat = lat[:0]
	cpu0, cpuOK := cpuTime()
	for range cfg.RFMListReads {
		t0 := time.Now()
		rep, err := q.RFM(ctx)
		if err != nil {
			return c, fmt.Errorf("rfm list: %w", err)
		}
		lat = append(lat, time.Since(t0))
		if len(rep.Customers) != fit.Buyers {
			return c, fmt.Errorf("rfm list of %d customers, the fit scored %d", len(rep.Customers), fit.Buyers)
		}
	}
	if cpu1, ok := cpuTime(); ok && cpuOK {
		c.RFMListCPUMs = float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(cfg.RFMListReads)
	}
	c.RFMList = latency(lat, fmt.Sprintf("query.Service.RFM: every one of %d buyers scored by the stored bands", fit.Buyers))
	return c, nil
}

func latency(lat []time.Duration, what string) Latency {
	l := Latency{Samples: len(lat), What: what}
	l.P50Ms, l.P99Ms, l.MaxMs = percentiles(lat)
	return l
}

// readTargets are the read targets for the cases measured.
func readTargets(cases []ReadCase) []Target {
	var ts []Target
	for _, c := range cases {
		pop := fmt.Sprintf(" (%d customers)", c.Customers)
		ts = append(ts,
			Target{Name: "customer view p99" + pop, Want: "< 10 ms", Got: c.View.P99Ms, Unit: "ms", Met: c.View.P99Ms < targetViewP99Ms},
			Target{Name: "identifier lookup p99" + pop, Want: "< 10 ms", Got: c.Lookup.P99Ms, Unit: "ms", Met: c.Lookup.P99Ms < targetLookupP99Ms},
			Target{Name: "full RFM list p99" + pop, Want: "< 1 s", Got: c.RFMList.P99Ms, Unit: "ms", Met: c.RFMList.P99Ms < targetRFMListP99Ms},
		)
	}
	return ts
}
