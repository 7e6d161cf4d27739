package storetest

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/eventstore"
)

// Event types of the fixtures: past tense, as the domain names them.
const (
	typeCustomerRegistered  = "CustomerRegistered"
	typeEmailVerified       = "EmailAddressVerified"
	typeConsentGranted      = "ConsentGranted"
	typePurchaseCompleted   = "PurchaseCompleted"
	typeTicketOpened        = "SupportTicketOpened"
	typeCallTranscribed     = "CallTranscribed"
	typeConsentWithdrawn    = "ConsentWithdrawn"
	typeNoteAdded           = "NoteAdded"
	largeTranscriptMinBytes = 100 << 10
)

// tokyo is a non-UTC zone for OccurredAt: backends must return it in UTC.
// A fixed zone, so the suite needs no tzdata.
var tokyo = time.FixedZone("JST", 9*60*60)

// newStream returns a fresh stream name, as the domain builds them.
func newStream() string { return "customer-" + uuid.NewString() }

// customer generates a realistic history of CRM events for one customer:
// unicode names and addresses, nanosecond occurred-at times in Tokyo time,
// correlation and causation ids chaining the events, and JSON written by
// several hands (compact, indented, escaped unicode, unsorted keys).
type customer struct {
	id          uuid.UUID
	correlation uuid.UUID
	agent       uuid.UUID
	n           int
	last        uuid.UUID
	at          time.Time
}

func newCustomer() *customer {
	return &customer{
		id:          uuid.New(),
		correlation: uuid.New(),
		agent:       uuid.New(),
		at:          time.Date(2025, time.March, 14, 9, 26, 53, 589_793_238, tokyo),
	}
}

// next returns the customer's next small event; the kinds cycle.
func (c *customer) next() eventstore.EventData {
	kind := c.n % 7
	var typ, channel string
	var data []byte
	switch kind {
	case 0:
		typ, channel = typeCustomerRegistered, "web"
		data = mustJSON(map[string]any{
			"customerId": c.id, "name": "Zoë Ñúñez", "email": "zoe.nunez@example.com",
			"address": map[string]any{"city": "東京", "street": "渋谷区神南1-2-3", "country": "JP"},
			"tags":    []string{"vip", "früh-bucher", "🚀"},
		})
	case 1:
		typ, channel = typeEmailVerified, "email"
		data = mustJSON(map[string]any{"customerId": c.id, "email": "zoe.nunez@example.com", "verifiedVia": "link"})
	case 2:
		typ, channel = typeConsentGranted, "web"
		data = mustJSON(map[string]any{"customerId": c.id, "purpose": "marketing-email", "policyVersion": "2025-01", "lawfulBasis": "consent"})
	case 3:
		typ, channel = typePurchaseCompleted, "store:東京-渋谷"
		data = mustJSON(map[string]any{
			"customerId": c.id, "orderId": uuid.New(), "currency": "JPY", "totalMinor": 1298000,
			"lines": []map[string]any{
				{"sku": "MATCHA-500", "title": "抹茶 500g", "qty": 2, "unitMinor": 349000},
				{"sku": "KYUSU-01", "title": "Kyūsu teapot — Tokoname", "qty": 1, "unitMinor": 600000},
			},
		})
	case 4:
		// Written by hand, the way another service's serializer might:
		// unsorted keys, odd whitespace, escaped unicode. Returned byte for
		// byte, so a backend that reformats JSON (jsonb) fails here.
		typ, channel = typeTicketOpened, "phone"
		data = fmt.Appendf(nil, "{\n  \"subject\" : \"Lieferung besch\\u00e4digt \u2014 Teekanne\",\n\t\"customerId\": %q,  \"priority\":\"high\",\n  \"requester\": \"Zo\\u00eb \\u00d1\\u00fa\\u00f1ez\" }", c.id)
	case 5:
		typ, channel = typeNoteAdded, "crm"
		data = mustJSON(map[string]any{"customerId": c.id, "note": "Prefers calls after 18:00 JST; speaks 日本語 and Español.", "pinned": false})
	default:
		typ, channel = typeConsentWithdrawn, "email"
		data = mustJSON(map[string]any{"customerId": c.id, "purpose": "marketing-email", "reason": "too many messages"})
	}
	return c.event(typ, channel, data)
}

// large returns a transcribed call of just over 100 KiB, or of about 3/4 of
// the store's limit if that is smaller.
func (s *suite) large(c *customer) eventstore.EventData {
	size := min(largeTranscriptMinBytes, s.maxEventSize()*3/4)
	var b strings.Builder
	for i := 0; b.Len() < size-200; i++ {
		fmt.Fprintf(&b, "[%02d:%02d] Agent: Guten Tag, Frau Ñúñez — wie kann ich helfen? Customer: 東京の店舗で買った急須が割れていました。Zoë #%d\n", i/60, i%60, i)
	}
	data := mustJSON(map[string]any{
		"customerId": c.id, "callId": uuid.New(), "durationSeconds": 1873, "language": "ja-JP",
		"transcript": b.String(),
	})
	return c.event(typeCallTranscribed, "phone", data)
}

// batch returns the customer's next n small events.
func (c *customer) batch(n int) []eventstore.EventData {
	events := make([]eventstore.EventData, n)
	for i := range events {
		events[i] = c.next()
	}
	return events
}

func (c *customer) event(typ, channel string, data []byte) eventstore.EventData {
	id := uuid.New()
	causation := ""
	if c.last != uuid.Nil {
		causation = c.last.String()
	}
	e := eventstore.EventData{
		ID:   id,
		Type: typ,
		Data: data,
		Metadata: eventstore.Metadata{
			OccurredAt:    c.at,
			Actor:         "user:" + c.agent.String(),
			Channel:       channel,
			CorrelationID: c.correlation.String(),
			CausationID:   causation,
			SchemaVersion: 1 + c.n%2,
		},
	}
	c.n++
	c.last = id
	c.at = c.at.Add(time.Hour + 123*time.Nanosecond)
	return e
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // fixtures are static; this cannot happen
	}
	return b
}

// sized returns an event of c whose Size is exactly size bytes: a note
// padded with unicode and ASCII.
func (c *customer) sized(size int) eventstore.EventData {
	e := c.event(typeNoteAdded, "crm", nil)
	prefix := `{"note":"`
	suffix := `"}`
	pad := size - e.Size() - len(prefix) - len(suffix)
	if pad < 0 {
		panic(fmt.Sprintf("storetest: cannot build an event of %d bytes", size))
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(prefix)
	for b.Len()+len("東")+len(suffix) <= len(prefix)+pad {
		b.WriteString("東")
	}
	for b.Len() < len(prefix)+pad {
		b.WriteByte('z')
	}
	b.WriteString(suffix)
	e.Data = []byte(b.String())
	return e
}
