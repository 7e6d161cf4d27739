package analytics

import (
	"fmt"
	"slices"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Default read-model names.
const (
	CustomersName = "analytics_customers"
	ChannelsName  = "analytics_channels"
	TicketsName   = "analytics_tickets"
)

// Config configures one of the package's projections. Nothing in it
// changes what is stored: every model parameter is a query-time Option.
type Config struct {
	// Name is the read model's name (default CustomersName, ChannelsName or
	// TicketsName), so that a second instance can run beside the first.
	Name string
}

func (c Config) name(def string) string {
	if c.Name == "" {
		return def
	}
	return c.Name
}

// customerPrefix starts every key of the customers read model.
const customerPrefix = "customer/"

// customerVersion is the schema version of customerRecord.
const customerVersion = 1

// NewCustomers returns the customers projection: per customer, purchase
// and refund facts and the latest survey answers, the input of RFM,
// CustomerScore, NPS and the churn models.
func NewCustomers(cfg Config) projections.Projection {
	return customers{name: cfg.name(CustomersName)}
}

type customers struct{ name string }

// Name implements projections.Projection.
func (p customers) Name() string { return p.name }

// Version implements projections.Projection.
func (customers) Version() int { return customerVersion }

// Types implements projections.Projection.
func (customers) Types() []string {
	return []string{
		domain.TypePurchaseCompleted,
		domain.TypeRefundIssued,
		domain.TypeSurveyAnswered,
		domain.TypeCustomerForgotten,
	}
}

// customerRecord is what the customers read model stores per customer.
type customerRecord struct {
	Customer string `json:"customer"`
	// Orders counts PurchaseCompleted events, free orders included.
	Orders        int64     `json:"orders"`
	FirstPurchase time.Time `json:"firstPurchase,omitzero"`
	LastPurchase  time.Time `json:"lastPurchase,omitzero"`
	// Days holds the distinct UTC days (since 1970-01-01) with a purchase,
	// ascending: the transactions of the BG/NBD model and of the rhythm.
	Days []int64 `json:"days,omitempty"`
	// Money holds gross purchases and refunds per currency.
	Money map[string]money `json:"money,omitempty"`
	// Surveys holds the latest answer per survey.
	Surveys map[string]answer `json:"surveys,omitempty"`
}

type money struct {
	Orders   int64 `json:"orders"`
	Gross    int64 `json:"gross"`
	Refunds  int64 `json:"refunds"`
	Refunded int64 `json:"refunded"`
}

type answer struct {
	Score int       `json:"score"`
	At    time.Time `json:"at"`
}

// Apply implements projections.Projection.
func (p customers) Apply(tx *projections.Tx, e domain.Envelope) error {
	id, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	key := customerPrefix + id.String()
	if e.Type == domain.TypeCustomerForgotten {
		// The per-customer profile goes with the customer; anonymous
		// aggregates (channel mix, ticket SLA) stay.
		tx.Delete(key)
		return nil
	}
	rec, err := projections.Load[customerRecord](tx, key)
	if err != nil {
		return err
	}
	rec.Customer = id.String()
	at := e.Metadata.OccurredAt.UTC()
	switch ev := e.Event.(type) {
	case domain.PurchaseCompleted:
		rec.Orders++
		if rec.FirstPurchase.IsZero() || at.Before(rec.FirstPurchase) {
			rec.FirstPurchase = at
		}
		if at.After(rec.LastPurchase) {
			rec.LastPurchase = at
		}
		if d := dayNumber(at); !slices.Contains(rec.Days, d) {
			i, _ := slices.BinarySearch(rec.Days, d)
			rec.Days = slices.Insert(rec.Days, i, d)
		}
		m := rec.money(ev.Currency)
		m.Orders++
		m.Gross = addSat(m.Gross, ev.Amount)
		rec.Money[ev.Currency] = m
	case domain.RefundIssued:
		m := rec.money(ev.Currency)
		m.Refunds++
		m.Refunded = addSat(m.Refunded, ev.Amount)
		rec.Money[ev.Currency] = m
	case domain.SurveyAnswered:
		if ev.NPS == nil {
			return nil
		}
		if rec.Surveys == nil {
			rec.Surveys = map[string]answer{}
		}
		// The latest answer wins; at equal times, the later event.
		if old, ok := rec.Surveys[ev.Survey]; !ok || !at.Before(old.At) {
			rec.Surveys[ev.Survey] = answer{Score: *ev.NPS, At: at}
		}
	}
	return nil
}

func (r *customerRecord) money(currency string) money {
	if r.Money == nil {
		r.Money = map[string]money{}
	}
	return r.Money[currency]
}

// dayNumber is the UTC day of t, counted from 1970-01-01.
func dayNumber(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 86399) / 86400
	}
	return s / 86400
}

// addSat adds non-negative amounts, saturating far below overflow.
func addSat(a, b int64) int64 {
	const limit = 1 << 62
	if b < 0 {
		b = 0
	}
	if a > limit-b {
		return limit
	}
	return a + b
}
