package ledger_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/storetest/backends"
	"github.com/google/uuid"
)

// consentNow is late enough that every date of the consent tests passes
// metadata validation (at most 24h in the future).
var consentNow = time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// dated is a touchpoint that occurred at at.
func dated(e domain.Event, at time.Time) ledger.Touchpoint {
	return ledger.Touchpoint{ID: uuid.New(), Event: e, Metadata: domain.Metadata{OccurredAt: at, Actor: "import:2026-crm", Channel: "web"}}
}

var (
	emailGrant    = domain.ConsentGranted{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Source: "newsletter-form", Wording: "newsletter-2019"}
	emailWithdraw = domain.ConsentWithdrawn{Channel: domain.ConsentEmail, Purpose: domain.PurposeMarketing, Reason: "Trop de messages"}
	emailSend     = domain.CampaignTouched{Campaign: "summer-2026", Channel: domain.CampaignEmail, Action: domain.ActionSent}
)

// TestConsentDecidedByOccurredAt reproduces the review's two cases
// through Append, on every backend and cache configuration: consent is
// decided by when things happened, not by the order they were recorded.
func TestConsentDecidedByOccurredAt(t *testing.T) {
	backends.Each(t, func(t *testing.T, store eventstore.Store) {
		eachCache(t, func(t *testing.T, cfg ledger.CacheConfig) {
			ctx := context.Background()
			s := ledger.NewWithCache(store, cfg)
			s.Now = func() time.Time { return consentNow }
			newCustomer := func() uuid.UUID {
				c := uuid.New()
				mustAppend(t, s, c, eventstore.NoStream, dated(domain.CustomerRegistered{CustomerID: c, Name: "Zoë Ñúñez"}, date(2018, 1, 1)))
				return c
			}
			// refused appends tps and wants a consent rejection that says
			// why, with nothing written.
			refused := func(t *testing.T, c uuid.UUID, why string, tps ...ledger.Touchpoint) {
				t.Helper()
				before := streamLen(t, store, c)
				_, err := s.Append(ctx, domain.RoleSystem, c, eventstore.Any, tps...)
				var re *domain.RejectionError
				if !errors.Is(err, domain.ErrRejected) || !errors.As(err, &re) || re.Entity != "consent" {
					t.Fatalf("got %v, want a consent rejection", err)
				}
				if want := "missing consent email/marketing (" + why + ")"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
				if got := streamLen(t, store, c); got != before {
					t.Errorf("a refused append wrote: %d events, want %d", got, before)
				}
			}

			t.Run("backdated grant after a later withdrawal", func(t *testing.T) {
				c := newCustomer()
				mustAppend(t, s, c, eventstore.Any, dated(emailGrant, date(2024, 1, 1)))
				mustAppend(t, s, c, eventstore.Any, dated(emailWithdraw, date(2026, 2, 1)))
				mustAppend(t, s, c, eventstore.Any, dated(emailGrant, date(2019, 5, 1))) // an import, recorded late
				refused(t, c, "withdrawn", dated(emailSend, date(2026, 3, 1)))
				// The same, with the backdated grant written by another
				// writer (folded from the store, not from this append).
				c = newCustomer()
				mustAppend(t, s, c, eventstore.Any, dated(emailWithdraw, date(2026, 2, 1)))
				appendDated(t, store, c, emailGrant, date(2019, 5, 1))
				refused(t, c, "withdrawn", dated(emailSend, date(2026, 3, 1)))
				// A send that occurred while the old grant stood is history
				// the ledger accepts.
				mustAppend(t, s, c, eventstore.Any, dated(emailSend, date(2020, 1, 1)))
			})

			t.Run("send before the grant", func(t *testing.T) {
				c := newCustomer()
				mustAppend(t, s, c, eventstore.Any, dated(emailGrant, date(2026, 6, 1)))
				refused(t, c, "never granted", dated(emailSend, date(2026, 1, 1)))
				mustAppend(t, s, c, eventstore.Any, dated(emailSend, date(2026, 6, 2)))
				// In one append too: the grant covers only later sends.
				c = newCustomer()
				refused(t, c, "never granted", dated(emailGrant, date(2026, 6, 1)), dated(emailSend, date(2026, 1, 1)))
				mustAppend(t, s, c, eventstore.Any, dated(emailGrant, date(2026, 6, 1)), dated(emailSend, date(2026, 6, 1)))
			})

			t.Run("withdrawal dated before the grant, recorded after", func(t *testing.T) {
				c := newCustomer()
				mustAppend(t, s, c, eventstore.Any, dated(emailGrant, date(2026, 2, 1)))
				mustAppend(t, s, c, eventstore.Any, dated(emailWithdraw, date(2025, 12, 1)))
				mustAppend(t, s, c, eventstore.Any, dated(emailSend, date(2026, 3, 1)))
				refused(t, c, "withdrawn", dated(emailSend, date(2026, 1, 1)))
			})

			// The stores keep microseconds: a withdrawal and a grant within
			// one microsecond are a tie, which log order decides, whether
			// the aggregate was folded from the store or kept by the cache.
			t.Run("tie at the stored precision", func(t *testing.T) {
				c := newCustomer()
				at := date(2026, 4, 1)
				mustAppend(t, s, c, eventstore.Any, dated(emailWithdraw, at.Add(700*time.Nanosecond)))
				mustAppend(t, s, c, eventstore.Any, dated(emailGrant, at.Add(300*time.Nanosecond)))
				mustAppend(t, s, c, eventstore.Any, dated(emailSend, at))
			})
		})
	})
}

// appendDated appends e, which occurred at at, straight to the store.
func appendDated(t testing.TB, store ledger.Store, customer uuid.UUID, e domain.Event, at time.Time) {
	t.Helper()
	typ, v, data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	md := eventstore.Metadata{OccurredAt: at, Actor: "import:legacy", SchemaVersion: v}
	if _, err := store.Append(context.Background(), domain.StreamID(customer), eventstore.Any, eventstore.EventData{ID: uuid.New(), Type: typ, Data: data, Metadata: md}); err != nil {
		t.Fatalf("append %s straight to the store: %v", e.EventType(), err)
	}
}
