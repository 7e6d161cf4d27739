package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
)

func init() {
	register(command{name: "merge", args: "SURVIVOR ABSORBED", short: "merge two customer records into one (CustomerMerged on both streams); reversible with unmerge", flags: mergeCommand(false)})
	register(command{name: "unmerge", args: "SURVIVOR ABSORBED", short: "undo a merge (--merge-id): both customers read as before it", flags: mergeCommand(true)})
	register(command{name: "duplicates", args: "[ID]", short: "candidate duplicate customers, best first, with reasons and scores (of one customer with ID)", flags: duplicatesCommand})
}

// mergeCommand records a merge (or an unmerge) through the ledger, as the
// admin role: both streams' versions are checked (--versions), the
// absorbed half first.
func mergeCommand(unmerge bool) func(fs *pflag.FlagSet) func(context.Context, *env) error {
	return func(fs *pflag.FlagSet) func(context.Context, *env) error {
		reason := fs.String("reason", "", "why the two are (or are not) one person; required, sealed like any personal data")
		mergeID := fs.String("merge-id", "", "the merge to undo (unmerge: required; merge: optional, for an idempotent retry)")
		versions := fs.String("versions", "", "SURVIVOR_VERSION,ABSORBED_VERSION the decision was made on: a concurrent append to either fails it")
		actor := fs.String("actor", defaultActor(), "who records it: user:<name>, service:<name>, system:<name>")
		return func(ctx context.Context, e *env) error {
			if len(e.args) != 2 {
				return usageErr("name the survivor and the absorbed customer ids")
			}
			var ids [2]uuid.UUID
			for i, a := range e.args {
				id, err := uuid.Parse(a)
				if err != nil || id == uuid.Nil {
					return usageErr("customer id %q is not a uuid", a)
				}
				ids[i] = id
			}
			if strings.TrimSpace(*reason) == "" {
				return usageErr("--reason is required")
			}
			req := ledger.MergeRequest{
				Survivor: ids[0], Absorbed: ids[1], Reason: *reason,
				SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any,
				Metadata: domain.Metadata{OccurredAt: time.Now().UTC(), Actor: *actor, Channel: "cli"},
			}
			if *mergeID != "" {
				id, err := uuid.Parse(*mergeID)
				if err != nil {
					return usageErr("--merge-id: %v", err)
				}
				req.MergeID = id
			} else if unmerge {
				return usageErr("--merge-id is required: the merge to undo")
			}
			if *versions != "" {
				var sv, av uint64
				if _, err := fmt.Sscanf(*versions, "%d,%d", &sv, &av); err != nil {
					return usageErr("--versions wants SURVIVOR_VERSION,ABSORBED_VERSION: %v", err)
				}
				req.SurvivorVersion, req.AbsorbedVersion = eventstore.Exact(sv), eventstore.Exact(av)
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
			var res ledger.MergeResult
			if unmerge {
				res, err = l.Unmerge(ctx, domain.RoleAdmin, req)
			} else {
				res, err = l.Merge(ctx, domain.RoleAdmin, req)
			}
			if err != nil {
				return err
			}
			return json.NewEncoder(e.stdout).Encode(res)
		}
	}
}

// duplicatesCommand prints the candidate pairs, one JSON object a line.
func duplicatesCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	limit := fs.Int("limit", 100, "at most this many pairs (0: all)")
	return func(ctx context.Context, e *env) error {
		var customer uuid.UUID
		switch len(e.args) {
		case 0:
		case 1:
			id, err := uuid.Parse(e.args[0])
			if err != nil || id == uuid.Nil {
				return usageErr("customer id %q is not a uuid", e.args[0])
			}
			customer = id
		default:
			return usageErr("at most one customer id")
		}
		if *limit < 0 {
			return usageErr("--limit must be 0 or more")
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		return withReadModels(ctx, e, func(b projections.Backend) error {
			q := query.New(b)
			enc := json.NewEncoder(e.stdout)
			n := 0
			for cursor := ""; ; {
				page, err := q.Duplicates(ctx, customer, cursor, 500)
				if errors.Is(err, projections.ErrNotActive) {
					return fmt.Errorf("%w: run 'cxledger replay' or 'cxledger project' first", err)
				}
				if err != nil {
					return err
				}
				for _, p := range page.Pairs {
					if *limit > 0 && n == *limit {
						return nil
					}
					if err := enc.Encode(p); err != nil {
						return err
					}
					n++
				}
				if page.Next == "" {
					return nil
				}
				cursor = page.Next
			}
		})
	}
}
