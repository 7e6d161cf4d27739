package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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

	log := &serverLog{}
	args := []string{"--store", url, "--pg-schema", schema, "--master-key-file", keyFile, "--lease-ttl", "1s"}
	srvs := make([]*server, 3)
	for i := range srvs {
		srvs[i] = newServer(bin, args, log)
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
				p, err := s.launch()
				if err == nil {
					err = s.awaitReady(killCtx, p)
				}
				if err != nil && killCtx.Err() == nil {
					t.Errorf("restart: %v", err)
					return
				}
				break
			}
		}
	})

	// The writer: purchases through any process, each read back through
	// another with minPosition.
	rng := rand.New(rand.NewPCG(15, 15))
	customers := make([]uuid.UUID, 8)
	acked := map[uuid.UUID]int{}
	var stale int
	var appended int
	pick := func(not string) *client.Client {
		for {
			s := srvs[rng.IntN(len(srvs))]
			if c := s.client(); c != nil && s.URL() != not {
				return c
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	md := httpapi.Metadata{Actor: "service:checkout", Channel: "web"}
	for i := range customers {
		customers[i] = uuid.New()
		req := httpapi.RegisterRequest{CustomerID: customers[i], EventID: uuid.New(), Name: fmt.Sprintf("Client %d — Ñandú", i), Metadata: md}
		for {
			if _, err := pick("").Register(ctx, req); err == nil || ctx.Err() != nil {
				break
			}
		}
	}
	for killed.Load() < 10 && ctx.Err() == nil {
		c := customers[rng.IntN(len(customers))]
		tp := client.Touchpoint{ID: uuid.New(), Metadata: md, Event: domain.PurchaseCompleted{OrderID: uuid.New(), Amount: 100000, Currency: "EUR",
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
				t.Fatal(ctx.Err())
			}
		}
		acked[c]++
		appended++
		for {
			view, err := pick(via).Customer(ctx, c, res.Position)
			if err != nil {
				if ctx.Err() != nil {
					t.Fatal(ctx.Err())
				}
				continue // that process died or is starting: another one
			}
			if len(view.Orders) != acked[c] {
				stale++
				t.Errorf("customer %s read through another process at minPosition %d: %d orders, %d acknowledged", c, res.Position, len(view.Orders), acked[c])
			}
			break
		}
	}
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
	// Every read model reaches the head, whoever owns it, before the
	// processes stop.
	for caughtUp := false; !caughtUp; time.Sleep(20 * time.Millisecond) {
		if ctx.Err() != nil {
			t.Fatalf("read models never reached the head %d", head)
		}
		sts, err := srvs[0].projectionStatus(ctx)
		caughtUp = err == nil
		for _, st := range sts {
			caughtUp = caughtUp && st.Checkpoint >= head
		}
	}
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
	f, err := verifyReadModels(ctx, store, rm, head, keys)
	if err != nil {
		t.Fatal(err)
	}
	f.report(t)
	t.Logf("%d purchases through 3 processes, %d owner kills, %d stale reads, %d checkpoint regressions", appended, killed.Load(), stale, regressions.Load())
}
