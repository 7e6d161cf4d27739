package attribution

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Model is an attribution model.
type Model string

// The attribution models, each reported per campaign.
const (
	// ModelLastTouch credits a purchase to the campaign of the customer's
	// last qualifying touch within the window before it.
	ModelLastTouch Model = "last_touch"
	// ModelFirstTouch credits a purchase to the campaign of the customer's
	// first qualifying touch within the window before it.
	ModelFirstTouch Model = "first_touch"
)

// Options parameterise Campaigns.
type Options struct {
	// Campaigns restricts the report to the campaigns named (exactly as
	// recorded); empty means every campaign.
	Campaigns []string
}

// Report is the campaign attribution report computed by Campaigns.
type Report struct {
	// WindowSeconds and Qualifying are the settings the read model was
	// built with (see Config); zero and empty while it has folded nothing.
	WindowSeconds int64                   `json:"windowSeconds"`
	Qualifying    []domain.CampaignAction `json:"qualifying"`
	// Models lists the attribution models reported per campaign:
	// last_touch (Campaign.LastTouch) and first_touch (Campaign.FirstTouch).
	Models []Model `json:"models"`
	// Purchases counts every purchase (each order id once), attributed or
	// not, and Revenue is their money per currency, by currency code: the
	// base the attributed figures are a share of.
	Purchases int64     `json:"purchases"`
	Revenue   []Revenue `json:"revenue"`
	// Campaigns holds one entry per campaign, by name (byte order).
	Campaigns []Campaign `json:"campaigns"`
}

// Campaign is one campaign's touches and attribution.
type Campaign struct {
	Campaign string  `json:"campaign"`
	Touches  Touches `json:"touches"`
	// Reached counts the distinct customers with at least one qualifying
	// touch of the campaign: the denominator of the conversion rates.
	Reached    int64       `json:"reached"`
	LastTouch  Attribution `json:"lastTouch"`
	FirstTouch Attribution `json:"firstTouch"`
}

// Touches counts a campaign's touches by action (see the package
// documentation for the events behind each count).
type Touches struct {
	// Sent counts CampaignTouched sent, and EmailSent and SMSSent naming
	// the campaign.
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Bounced   int64 `json:"bounced"`
	// Opened counts CampaignTouched viewed, plus the campaign's e-mails
	// (by Message-ID) opened at least once.
	Opened int64 `json:"opened"`
	// Clicked counts CampaignTouched clicked, plus the campaign's e-mails
	// clicked at least once.
	Clicked int64 `json:"clicked"`
	// Converted counts CampaignTouched converted: conversions the
	// campaign's tool reported, not attributed purchases.
	Converted    int64 `json:"converted"`
	Unsubscribed int64 `json:"unsubscribed"`
	// Leads counts LeadCaptured naming the campaign.
	Leads int64 `json:"leads"`
}

// Attribution is what one model credits to one campaign.
type Attribution struct {
	// Purchases counts the purchases attributed to the campaign.
	Purchases int64 `json:"purchases"`
	// Customers counts the distinct customers with at least one of them.
	Customers int64 `json:"customers"`
	// ConversionRate is Customers ÷ the campaign's Reached (0 when no
	// customer was reached).
	ConversionRate float64 `json:"conversionRate"`
	// Revenue is the attributed purchases' money per currency, by code.
	Revenue []Revenue `json:"revenue"`
}

// Revenue is money in one currency, in integer minor units.
type Revenue struct {
	Currency string `json:"currency"`
	// Gross is the purchases' amounts; Refunded what was refunded of
	// them (at most each order's amount); Net = Gross − Refunded.
	Gross    int64 `json:"gross"`
	Refunded int64 `json:"refunded"`
	Net      int64 `json:"net"`
}

// Campaigns returns the attribution report of the read model r.
func Campaigns(ctx context.Context, r projections.Reader, opts Options) (Report, error) {
	rep := Report{
		Qualifying: []domain.CampaignAction{},
		Models:     []Model{ModelLastTouch, ModelFirstTouch},
		Revenue:    []Revenue{},
		Campaigns:  []Campaign{},
	}
	meta, ok, err := projections.Read[metaRecord](ctx, r, metaKey)
	if err != nil {
		return Report{}, fmt.Errorf("attribution: %w", err)
	}
	if ok {
		rep.WindowSeconds = meta.WindowSeconds
		rep.Qualifying = append(rep.Qualifying, meta.Qualifying...)
	}
	tot, _, err := projections.Read[totalsRecord](ctx, r, totalsKey)
	if err != nil {
		return Report{}, fmt.Errorf("attribution: %w", err)
	}
	rep.Purchases, rep.Revenue = tot.Purchases, revenue(tot.Revenue)

	add := func(c campaignRecord) {
		rep.Campaigns = append(rep.Campaigns, Campaign{
			Campaign: c.Campaign,
			Touches: Touches{
				Sent: c.Sent, Delivered: c.Delivered, Bounced: c.Bounced,
				Opened: c.Viewed + c.EmailOpened, Clicked: c.Clicked + c.EmailClicked,
				Converted: c.Converted, Unsubscribed: c.Unsubscribed, Leads: c.Leads,
			},
			Reached:    c.Reached,
			LastTouch:  attribution(c.Last, c.Reached),
			FirstTouch: attribution(c.First, c.Reached),
		})
	}
	if len(opts.Campaigns) > 0 {
		var names []string
		for _, n := range opts.Campaigns {
			if n = campaignName(n); n != "" {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			c, ok, err := projections.Read[campaignRecord](ctx, r, campaignKey(name))
			if err != nil {
				return Report{}, fmt.Errorf("attribution: campaign %q: %w", name, err)
			}
			if ok {
				add(c)
			}
		}
		return rep, nil
	}
	err = r.Scan(ctx, campaignPrefix, "", func(key string, value []byte) (bool, error) {
		var c campaignRecord
		if err := json.Unmarshal(value, &c); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		add(c)
		return true, nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("attribution: scan campaigns: %w", err)
	}
	return rep, nil
}

func attribution(m modelRecord, reached int64) Attribution {
	a := Attribution{Purchases: m.Purchases, Customers: m.Customers, Revenue: revenue(m.Revenue)}
	if reached > 0 {
		a.ConversionRate = float64(m.Customers) / float64(reached)
	}
	return a
}

// revenue lists m by currency code.
func revenue(m map[string]money) []Revenue {
	out := make([]Revenue, 0, len(m))
	for cur, v := range m {
		out = append(out, Revenue{Currency: cur, Gross: v.Gross, Refunded: v.Refunded, Net: v.Gross - v.Refunded})
	}
	slices.SortFunc(out, func(a, b Revenue) int { return strings.Compare(a.Currency, b.Currency) })
	return out
}
