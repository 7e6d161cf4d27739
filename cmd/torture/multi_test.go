package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/cxledger/cxledger/adapters/broker/brokertest"
	"github.com/cxledger/cxledger/adapters/client"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/pgkeys"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/pgstore"
	"github.com/cxledger/cxledger/eventstore/pgstore/pgtest"
	"github.com/cxledger/cxledger/projections/pgrm"
)

// TestSeveralProcesses runs three `cxledger serve` processes on one
// PostgreSQL schema, as replicas behind a load balancer would, with a
// short lease (1 s). A writer appends purchases through all of them and
// after every acknowledgement reads the customer back through another
// process with minPosition; meanwhile the owner of the customer view is
// SIGKILLed and restarted ten times, and a sampler watches every
// read-model checkpoint. At the end every read model equals a
// single-process rebuild of the log, no read was stale or double-counted,
// and no checkpoint ever moved backwards.
func TestSeveralProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("several processes: skipped with -short")
	}
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	mk, _, err := keyring.LoadOrCreateMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildServer(t, t.TempDir(), *raceFlag)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	started := time.Now()
	log := &serverLog{}
	natsURL := brokertest.NATSURL(t)
	topics := brokertest.Topic(t, "multi")
	args := []string{"--store", url, "--pg-schema", schema, "--master-key-file", keyFile, "--lease-ttl", "1s",
		"--broker", "nats", "--broker-url", natsURL, "--ingest-topic", topics + "_in", "--poison-topic", topics + "_poison", "--events-topic", topics + "_events"}
	// Mixed roles: two all-in-one processes and a stateless API replica
	// that never owns anything.
	srvs := make([]*server, 3)
	for i := range srvs {
		a := args
		if i == 1 {
			a = append(slices.Clone(args), "--run", "api")
		}
		srvs[i] = newServer(bin, a, log)
		s := srvs[i]
		t.Cleanup(s.abort)
		p, err := s.launch()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.awaitReady(ctx, p); err != nil {
			t.Fatalf("%v\n%s", err, log.tail(40))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs, last lines:\n%s", log.tail(120))
		}
	})
	// A consumer of the published log, as a downstream service would be:
	// every event at least once, and once outside failover windows.
	brokertest.WaitStreams(t, natsURL, topics+"_events")
	_, sub := brokertest.NATSClient(t, natsURL)
	published := brokertest.Collect(t, sub, topics+"_events")

	// The sampler: no checkpoint may ever be seen lower than before.
	var regressions atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Go(func() {
		conn, err := pgx.Connect(sampleCtx, url)
		if err != nil {
			t.Errorf("sampler: %v", err)
			return
		}
		defer conn.Close(context.Background())
		seen := map[string]int64{}
		for sampleCtx.Err() == nil {
			rows, err := conn.Query(sampleCtx, `select ns, checkpoint from `+schema+`.rm__namespaces`)
			if err != nil {
				continue
			}
			for rows.Next() {
				var ns string
				var cp int64
				if rows.Scan(&ns, &cp) == nil {
					if cp < seen[ns] {
						regressions.Add(1)
						t.Errorf("checkpoint of %s went back from %d to %d", ns, seen[ns], cp)
					}
					seen[ns] = max(seen[ns], cp)
				}
			}
			rows.Close()
			time.Sleep(10 * time.Millisecond)
		}
	})

	// The killer: SIGKILL whichever process owns customer360, ten times.
	killCtx, stopKilling := context.WithCancel(ctx)
	var killed atomic.Int64
	var failovers []time.Duration // written by the killer only
	var rebuilt atomic.Bool
	var settledAt atomic.Uint64 // the head when the last failover had completed
	var killing sync.WaitGroup
	killing.Go(func() {
		for killed.Load() < 10 && killCtx.Err() == nil {
			time.Sleep(time.Duration(700+rand.IntN(600)) * time.Millisecond)
			for _, s := range srvs {
				sts, err := s.projectionStatus(killCtx)
				if err != nil {
					continue
				}
				owner := false
				for _, st := range sts {
					owner = owner || (st.Name == "customer360" && st.Owned)
				}
				if !owner {
					continue
				}
				if err := s.kill(); err != nil {
					t.Errorf("kill: %v", err)
					return
				}
				killed.Add(1)
				// Failover: until another process owns the read model.
				killedAt := time.Now()
				for owned := false; !owned && ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
					for _, o := range srvs {
						if o == s {
							continue
						}
						sts, _ := o.projectionStatus(ctx)
						for _, st := range sts {
							owned = owned || (st.Name == "customer360" && st.Owned)
						}
					}
				}
				failovers = append(failovers, time.Since(killedAt))
				if h, err := headOf(ctx, url, schema); err == nil {
					settledAt.Store(h)
				}
				if killed.Load() == 5 {
					// A rebuild mid-load, asked of the API replica: it
					// builds beside the owner and switches when caught up.
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srvs[1].URL()+"/v1/projections/customer360/rebuild", nil)
					resp, err := srvs[1].http.Do(req)
					if err != nil {
						t.Errorf("rebuild: %v", err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						t.Errorf("rebuild: %s", resp.Status)
						return
					}
					rebuilt.Store(true)
				}
				// The restart completes even if the load has ended.
				p, err := s.launch()
				if err == nil {
					err = s.awaitReady(ctx, p)
				}
				if err != nil {
					t.Errorf("restart: %v", err)
					return
				}
				break
			}
		}
	})

	// Two writers, each with its own customers: purchases through any
	// process, each read back through another with minPosition.
	md := httpapi.Metadata{Actor: "service:checkout", Channel: "web"}
	var (
		mu       sync.Mutex
		ackedIDs []uuid.UUID // every acknowledged purchase
		stale    atomic.Int64
	)
	writer := func(seed uint64) error {
		rng := rand.New(rand.NewPCG(seed, seed))
		pick := func(not string) *client.Client {
			for {
				s := srvs[rng.IntN(len(srvs))]
				if c := s.client(); c != nil && s.URL() != not {
					return c
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		customers := make([]uuid.UUID, 4)
		acked := map[uuid.UUID]int{}
		for i := range customers {
			customers[i] = uuid.New()
			rmd := md
			rmd.OccurredAt = time.Now().UTC().Truncate(time.Microsecond)
			req := httpapi.RegisterRequest{CustomerID: customers[i], EventID: uuid.New(), Name: fmt.Sprintf("Client %d.%d — Ñandú", seed, i), Metadata: rmd}
			for {
				if _, err := pick("").Register(ctx, req); err == nil {
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		for killed.Load() < 10 && ctx.Err() == nil {
			c := customers[rng.IntN(len(customers))]
			// Fixed id and occurred-at: a retry is the same request, and an
			// idempotent one if an earlier attempt was stored.
			tmd := md
			tmd.OccurredAt = time.Now().UTC().Truncate(time.Microsecond)
			tp := client.Touchpoint{ID: uuid.New(), Metadata: tmd, Event: domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 100000, Currency: "EUR",
				Lines: []domain.OrderLine{{SKU: "SKU-1", Description: "Chaise", Quantity: 1, UnitAmount: 100000}}}}
			var res httpapi.AppendResponse
			var via string
			for {
				cl := pick("")
				r, err := cl.Append(ctx, c, eventstore.Any, tp)
				if err == nil {
					res, via = r, cl.BaseURL()
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			acked[c]++
			mu.Lock()
			ackedIDs = append(ackedIDs, tp.ID)
			mu.Unlock()
			for {
				view, err := pick(via).Customer(ctx, c, res.Position)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					continue // that process died or is starting: another one
				}
				if len(view.Orders) != acked[c] {
					stale.Add(1)
					t.Errorf("customer %s read through another process at minPosition %d: %d orders, %d acknowledged", c, res.Position, len(view.Orders), acked[c])
				}
				break
			}
		}
		return nil
	}
	var writing errgroup.Group
	for w := range uint64(2) {
		writing.Go(func() error { return writer(15 + w) })
	}
	if err := writing.Wait(); err != nil {
		t.Fatal(err)
	}
	appended := len(ackedIDs)
	stopKilling()
	killing.Wait()
	if killed.Load() < 10 {
		t.Fatalf("only %d owner kills happened", killed.Load())
	}
	store, err := pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Every acknowledged purchase is in the log exactly once, and nothing
	// else is.
	purchases := map[uuid.UUID]int{}
	for after := uint64(0); ; {
		page, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 1000, Filter: eventstore.Filter{Types: []string{domain.TypePurchaseCompleted}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			purchases[r.ID]++
		}
		after = page[len(page)-1].Position
	}
	for _, id := range ackedIDs {
		if n := purchases[id]; n != 1 {
			t.Errorf("acknowledged purchase %s is in the log %d times", id, n)
		}
	}
	if len(purchases) != appended {
		t.Errorf("%d purchases in the log, %d acknowledged", len(purchases), appended)
	}
	// Every read model reaches the head, whoever owns it, before the
	// processes stop.
	t.Logf("load done after %s: %d purchases, head %d", time.Since(started).Round(time.Millisecond), appended, head)
	for caughtUp := false; !caughtUp; time.Sleep(20 * time.Millisecond) {
		sts, err := srvs[0].projectionStatus(ctx)
		if ctx.Err() != nil {
			for _, s := range srvs {
				sts, err := s.projectionStatus(context.Background())
				t.Logf("%s: %v", s.URL(), err)
				for _, st := range sts {
					t.Logf("  %s %s ns=%s cp=%d owner=%s owned=%v err=%s", st.Name, st.State, st.Namespace, st.Checkpoint, st.Owner, st.Owned, st.Error)
				}
			}
			t.Fatalf("read models never reached the head %d", head)
		}
		caughtUp = err == nil
		for _, st := range sts {
			caughtUp = caughtUp && st.Checkpoint >= head
		}
	}
	// The broker: every customer event at least once; those appended
	// after the last failover had completed, exactly once. The
	// processes still run: the relay catches up with the head.
	var want []eventstore.Record
	for after := uint64(0); ; {
		page, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: after, Limit: 1000, Filter: eventstore.Filter{Types: domain.Types()}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		want = append(want, page...)
		after = page[len(page)-1].Position
	}
	counts := map[string]int{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		clear(counts)
		for _, m := range published.All() {
			counts[m.UUID]++
		}
		missing := 0
		for _, r := range want {
			if counts[r.ID.String()] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events never reached the broker", missing, len(want))
		}
	}
	dups := 0
	for _, r := range want {
		if n := counts[r.ID.String()]; n > 1 {
			dups++
			if r.Position > settledAt.Load() {
				t.Errorf("event %s at %d, appended after the last failover, published %d times", r.ID, r.Position, n)
			}
		}
	}
	t.Logf("broker: %d events published, %d of them more than once (all before the last failover had completed)", len(want), dups)
	for _, s := range srvs {
		if s.URL() != "" {
			if err := s.stop(); err != nil {
				t.Error(err)
			}
		}
	}
	stopSampling()
	sampled.Wait()

	rm, err := pgrm.Open(ctx, url, pgrm.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	kb, err := pgkeys.Open(ctx, url, pgkeys.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Open(ctx, mk, kb, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rebuilt.Load() {
		t.Fatal("no rebuild was started")
	}
	if ns, err := rm.Active(ctx, "customer360"); err != nil || !strings.HasSuffix(ns, "_g2") {
		t.Errorf("customer360 serves %s after a rebuild mid-load (%v), want its second generation", ns, err)
	}
	f, err := verifyReadModels(ctx, store, rm, head, keys)
	if err != nil {
		t.Fatal(err)
	}
	f.report(t)
	slices.Sort(failovers)
	t.Logf("%d purchases through 3 processes, %d owner kills, %d stale reads, %d checkpoint regressions; failover with --lease-ttl 1s: median %s, max %s",
		appended, killed.Load(), stale.Load(), regressions.Load(), failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond))
}

// headOf reads the log's head on a connection of its own.
func headOf(ctx context.Context, url, schema string) (uint64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var h int64
	err = conn.QueryRow(ctx, `select coalesce(max(position), 0) from `+schema+`.events`).Scan(&h)
	return uint64(h), err
}
