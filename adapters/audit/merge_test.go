package audit_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/audit"
	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/adapters/keyring/keyringtest"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
)

// Both customers' auditor timelines show the merge and the unmerge with
// who and why (the sealed reason revealed); forgetting the merged survivor
// erases both customers' personal data, the reasons included.
func TestMergeInAuditTimelinesAndErasure(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		kr := keyringtest.Memory(t)
		l := ledger.New(s)
		l.Keys = kr
		md := domain.Metadata{OccurredAt: day("2026-01-10"), Actor: "user:ana"}
		a, b := uuid.New(), uuid.New()
		for _, id := range []uuid.UUID{a, b} {
			if _, err := l.Append(ctx, domain.RoleSystem, id, eventstore.NoStream,
				ledger.Touchpoint{Event: domain.CustomerRegistered{CustomerID: id, Name: "Zoé Nguyen"}, Metadata: md}); err != nil {
				t.Fatal(err)
			}
		}
		req := ledger.MergeRequest{Survivor: a, Absorbed: b, SurvivorVersion: eventstore.Any, AbsorbedVersion: eventstore.Any, Reason: "same gmail, confirmed by phone", Metadata: md}
		res, err := l.Merge(ctx, domain.RoleService, req)
		if err != nil {
			t.Fatal(err)
		}
		req.MergeID, req.Reason = res.MergeID, "two sisters"
		if _, err := l.Unmerge(ctx, domain.RoleAdmin, req); err != nil {
			t.Fatal(err)
		}
		req.MergeID, req.Reason = uuid.Nil, "same person after all"
		if _, err := l.Merge(ctx, domain.RoleAdmin, req); err != nil {
			t.Fatal(err)
		}
		cp, _ := checkpoint(t, s)
		for _, id := range []uuid.UUID{a, b} {
			tl, err := audit.Build(ctx, s, s.(notary.HashStore), id, cp, audit.Options{Reveal: kr})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range tl.Entries[1:] {
				got = append(got, e.Actor+" "+e.Summary)
			}
			want := []string{
				"user:ana Customer " + b.String() + " merged into " + a.String() + ": same gmail, confirmed by phone",
				"user:ana Customer " + b.String() + " unmerged from " + a.String() + ": two sisters",
				"user:ana Customer " + b.String() + " merged into " + a.String() + ": same person after all",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("audit timeline of %s:\n%s\nwant\n%s", id, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}

		if _, err := l.Forget(ctx, a, ledger.Touchpoint{Event: domain.CustomerForgotten{Request: "DSR-9"}, Metadata: md}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []uuid.UUID{a, b} {
			tl, err := audit.Build(ctx, s, s.(notary.HashStore), id, cp, audit.Options{Reveal: kr})
			if err != nil {
				t.Fatal(err)
			}
			if tl.Entries[0].Summary != "Customer registered: "+keyring.Erased || !strings.HasSuffix(tl.Entries[1].Summary, ": "+keyring.Erased) {
				t.Errorf("after forgetting the merged customer, %s shows %q, %q", id, tl.Entries[0].Summary, tl.Entries[1].Summary)
			}
		}
	})
}
