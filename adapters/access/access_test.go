package access_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
)

func TestRecordAndSearch(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		log := access.New(s)
		zoe, ola := uuid.New(), uuid.New()
		reads := []access.Entry{
			{Customer: zoe, Reader: "alice", Role: "auditor", Resource: "timeline", Query: "from=2026-01-01", Via: "http", RequestID: "r1"},
			{Customer: ola, Reader: "alice", Role: "auditor", Resource: "view", Via: "http"},
			{Customer: zoe, Reader: "bob", Role: "analyst", Resource: "view-as-of", Query: "asOf=2026-03-01T00:00:00Z", Via: "http"},
			{Customer: zoe, Reader: "root", Role: "operator", Resource: "audit-timeline", Via: "cli"},
		}
		before := time.Now().Add(-time.Second)
		for _, e := range reads {
			if err := log.Record(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		// A customer's stream is untouched: the entries live beside it.
		if _, err := s.ReadStream(ctx, "customer-"+zoe.String(), eventstore.ReadStreamOptions{}); err == nil {
			t.Error("the access log wrote to the customer's stream")
		}

		tests := []struct {
			name string
			q    access.Query
			want []string // reader/resource
		}{
			{"one customer", access.Query{Customer: zoe}, []string{"alice/timeline", "bob/view-as-of", "root/audit-timeline"}},
			{"one reader everywhere", access.Query{Reader: "alice"}, []string{"alice/timeline", "alice/view"}},
			{"reader and customer", access.Query{Customer: zoe, Reader: "bob"}, []string{"bob/view-as-of"}},
			{"everything", access.Query{}, []string{"alice/timeline", "alice/view", "bob/view-as-of", "root/audit-timeline"}},
			{"nobody yet", access.Query{Customer: uuid.New()}, nil},
			{"time window before", access.Query{To: before}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				page, err := log.Search(ctx, tt.q)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range page.Entries {
					got = append(got, e.Reader+"/"+e.Resource)
					if e.At.IsZero() || e.Position == 0 || e.EventID == uuid.Nil {
						t.Errorf("entry %+v lacks its record", e)
					}
				}
				if strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}

		// Paging: two at a time over everything.
		var got []string
		q := access.Query{Limit: 2}
		for range 5 {
			page, err := log.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				got = append(got, e.Reader)
			}
			if page.Next == 0 {
				break
			}
			q.After = page.Next
		}
		if strings.Join(got, " ") != "alice alice bob root" {
			t.Errorf("paged = %v", got)
		}

		first, err := log.Search(ctx, access.Query{Customer: zoe, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if e := first.Entries[0]; e.Query != "from=2026-01-01" || e.RequestID != "r1" || e.Via != "http" || e.Role != "auditor" {
			t.Errorf("entry read back = %+v", e)
		}
	})
}

func TestRecordRefusesIncompleteEntries(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		log := access.New(s)
		for _, e := range []access.Entry{
			{Reader: "a", Role: "auditor", Resource: "view", Via: "http"},
			{Customer: uuid.New(), Role: "auditor", Resource: "view", Via: "http"},
			{Customer: uuid.New(), Reader: "a", Role: "auditor", Via: "http"},
		} {
			if err := log.Record(t.Context(), e); err == nil {
				t.Errorf("Record(%+v) succeeded", e)
			}
		}
		if head, _ := s.Head(t.Context()); head != 0 {
			t.Errorf("refused entries wrote %d events", head)
		}
		long := access.Entry{Customer: uuid.New(), Reader: "a", Role: "auditor", Resource: "view", Via: "http", Query: strings.Repeat("é", 5000)}
		if err := log.Record(t.Context(), long); err != nil {
			t.Fatalf("a long query must be clipped, not refused: %v", err)
		}
	})
}

// A bulk read records each customer once, the first time one of their
// events is shown, and skips streams that are nobody's personal data.
func TestReadsRecordEachCustomerOnce(t *testing.T) {
	backends.Each(t, func(t *testing.T, s eventstore.Store) {
		ctx := t.Context()
		log := access.New(s)
		zoe, ola := uuid.New(), uuid.New()
		rec := func(stream string) eventstore.Record { return eventstore.Record{Stream: stream} }
		reads := log.NewReads(access.Entry{Reader: "root", Role: "operator", Resource: "export", Query: "format=ndjson", Via: "cli"})
		pages := [][]eventstore.Record{
			{rec("customer-" + zoe.String()), rec("customer-" + zoe.String()), rec("access-" + ola.String())},
			{rec("customer-" + ola.String()), rec("customer-" + zoe.String()), rec("orders-7")},
			{rec("customer-" + ola.String())},
		}
		for _, p := range pages {
			if err := reads.Records(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		page, err := log.Search(ctx, access.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 2 || page.Entries[0].Customer != zoe || page.Entries[1].Customer != ola {
			t.Fatalf("entries %+v, want zoe then ola, once each", page.Entries)
		}
		for _, e := range page.Entries {
			if e.Resource != "export" || e.Query != "format=ndjson" || e.Via != "cli" || e.Reader != "root" {
				t.Errorf("entry %+v", e)
			}
		}
	})
}
