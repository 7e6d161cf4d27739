package attribution

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cxledger/cxledger/projections"
)

// ConfigOf returns the Config the read model in r was built with, and
// false before its first event.
func ConfigOf(ctx context.Context, r projections.Reader) (Config, bool, error) {
	m, ok, err := projections.Read[metaRecord](ctx, r, metaKey)
	if err != nil || !ok {
		return Config{}, false, err
	}
	return Config{Window: time.Duration(m.WindowSeconds) * time.Second, Qualifying: m.Qualifying}, true, nil
}

// Adjusted returns a Reader over live for Campaigns in which the totals
// and every campaign's figures are live's minus those of each read model
// in minus, plus those of each in plus. Every figure of the report is a
// sum over customers of what each customer's own history contributes
// (distinct counts are 0 or 1 per customer), so folding a group of
// customers apart (minus) and as one customer (plus) replaces the first by
// the second: how a merged customer counts once (adapters/query).
func Adjusted(live projections.Reader, minus, plus []projections.Reader) projections.Reader {
	return adjusted{live: live, minus: minus, plus: plus}
}

type adjusted struct {
	live        projections.Reader
	minus, plus []projections.Reader
}

// Get implements projections.Reader.
func (a adjusted) Get(ctx context.Context, key string) ([]byte, bool, error) {
	switch {
	case key == totalsKey:
		t, ok, err := projections.Read[totalsRecord](ctx, a.live, key)
		if err != nil {
			return nil, false, err
		}
		err = a.each(func(sign int64, r projections.Reader) error {
			o, found, err := projections.Read[totalsRecord](ctx, r, key)
			if found {
				ok = true
				t.Purchases += sign * o.Purchases
				for cur, m := range o.Revenue {
					addMoney(&t.Revenue, cur, m.Gross, m.Refunded, sign)
				}
			}
			return err
		})
		return encode(t, ok, err)
	case strings.HasPrefix(key, campaignPrefix):
		c, ok, err := projections.Read[campaignRecord](ctx, a.live, key)
		if err != nil || !ok {
			return nil, ok, err // a merge never brings a campaign nobody had
		}
		err = a.each(func(sign int64, r projections.Reader) error {
			o, found, err := projections.Read[campaignRecord](ctx, r, key)
			if found {
				c.add(o, sign)
			}
			return err
		})
		return encode(c, true, err)
	}
	return a.live.Get(ctx, key)
}

// Scan implements projections.Reader: the campaign records are adjusted
// one by one.
func (a adjusted) Scan(ctx context.Context, prefix, after string, fn func(string, []byte) (bool, error)) error {
	if !strings.HasPrefix(prefix, campaignPrefix) {
		return a.live.Scan(ctx, prefix, after, fn)
	}
	var keys []string
	if err := a.live.Scan(ctx, prefix, after, func(key string, _ []byte) (bool, error) {
		keys = append(keys, key)
		return true, nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		v, ok, err := a.Get(ctx, k)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if more, err := fn(k, v); err != nil || !more {
			return err
		}
	}
	return nil
}

func (a adjusted) each(fn func(sign int64, r projections.Reader) error) error {
	for _, r := range a.minus {
		if err := fn(-1, r); err != nil {
			return err
		}
	}
	for _, r := range a.plus {
		if err := fn(1, r); err != nil {
			return err
		}
	}
	return nil
}

func (c *campaignRecord) add(o campaignRecord, sign int64) {
	c.Sent += sign * o.Sent
	c.Delivered += sign * o.Delivered
	c.Bounced += sign * o.Bounced
	c.Viewed += sign * o.Viewed
	c.Clicked += sign * o.Clicked
	c.Converted += sign * o.Converted
	c.Unsubscribed += sign * o.Unsubscribed
	c.Leads += sign * o.Leads
	c.EmailOpened += sign * o.EmailOpened
	c.EmailClicked += sign * o.EmailClicked
	c.Reached += sign * o.Reached
	c.Last.add(o.Last, sign)
	c.First.add(o.First, sign)
}

func (m *modelRecord) add(o modelRecord, sign int64) {
	m.Purchases += sign * o.Purchases
	m.Customers += sign * o.Customers
	for cur, v := range o.Revenue {
		addMoney(&m.Revenue, cur, v.Gross, v.Refunded, sign)
	}
}

func encode(v any, ok bool, err error) ([]byte, bool, error) {
	if err != nil || !ok {
		return nil, ok, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("attribution: %w", err)
	}
	return b, true, nil
}
