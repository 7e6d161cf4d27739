package main

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
)

func init() {
	register(command{name: "forget", args: "ID", short: "erase a customer (GDPR art. 17): record CustomerForgotten, then destroy their data key", flags: forgetCommand})
}

// forgetCommand erases one customer by crypto-shredding: CustomerForgotten
// is appended through the ledger (nothing may follow it), then the
// customer's data key is destroyed, so that every personal value sealed
// in their events reads as erased everywhere — API, exports, read models
// after any rebuild — while the stored events keep their bytes. Running it
// again finishes an erasure that a crash interrupted between the two steps,
// and is harmless otherwise.
func forgetCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	request := fs.String("request", "", "reference of the erasure request (ticket or case number); required, stays readable")
	reason := fs.String("reason", "", "why, as free text; sealed with the customer's key, so erased with the rest")
	actor := fs.String("actor", defaultActor(), "who records the erasure: user:<name>, service:<name>, system:<name>")
	return func(ctx context.Context, e *env) error {
		args := e.args
		if len(args) != 1 {
			return usageErr("name one customer id")
		}
		id, err := uuid.Parse(args[0])
		if err != nil || id == uuid.Nil {
			return usageErr("customer id %q is not a uuid", args[0])
		}
		if strings.TrimSpace(*request) == "" {
			return usageErr("--request is required: the reference of the erasure request")
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		l := ledger.New(e.store)
		l.Keys = kr
		tp := ledger.Touchpoint{
			Event:    domain.CustomerForgotten{Request: *request, Reason: *reason},
			Metadata: domain.Metadata{OccurredAt: time.Now().UTC(), Actor: *actor, Channel: "cli"},
		}
		res, err := l.Forget(ctx, id, tp)
		if err != nil {
			return err
		}
		out := map[string]any{"customerId": id, "stream": domain.StreamID(id), "appended": res.Appended, "keyDestroyed": true}
		if res.Appended {
			out["version"], out["position"] = res.Version, res.Position
		}
		if len(res.Merged) > 0 {
			out["merged"] = res.Merged // one person: forgotten with id
		}
		e.log.Info("customer forgotten: their personal data now reads as erased; read models follow when projected", "customer", id, "appended", res.Appended)
		return json.NewEncoder(e.stdout).Encode(out)
	}
}
