package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// dayPrefix starts every key of the channels read model: day/YYYY-MM-DD.
const dayPrefix = "day/"

const channelsVersion = 1

// Touch channels of interactions that carry no channel of their own.
const (
	ChannelPhone   = "phone"
	ChannelEmail   = "email"
	ChannelChat    = "chat"
	ChannelMeeting = "meeting"
	ChannelSMS     = "sms"
)

// touchChannel returns the channel of a customer touch, and false for
// events that are not touches. See the package documentation.
func touchChannel(e domain.Event) (string, bool) {
	switch ev := e.(type) {
	case domain.CallLogged:
		return ChannelPhone, true
	case domain.EmailSent, domain.EmailReceived, domain.EmailOpened, domain.EmailClicked:
		return ChannelEmail, true
	case domain.ChatConversationHeld:
		return ChannelChat, true
	case domain.MeetingHeld:
		return ChannelMeeting, true
	case domain.SMSSent:
		return ChannelSMS, true
	case domain.CampaignTouched:
		return string(ev.Channel), ev.Channel != ""
	case domain.TicketOpened:
		return string(ev.Channel), ev.Channel != ""
	}
	return "", false
}

// NewChannels returns the channels projection: touches per channel per
// UTC day of OccurredAt, for ChannelMix.
func NewChannels(cfg Config) projections.Projection {
	return channels{name: cfg.name(ChannelsName)}
}

type channels struct{ name string }

// Name implements projections.Projection.
func (p channels) Name() string { return p.name }

// Version implements projections.Projection.
func (channels) Version() int { return channelsVersion }

// Types implements projections.Projection.
func (channels) Types() []string {
	return []string{
		domain.TypeCallLogged, domain.TypeEmailSent, domain.TypeEmailReceived,
		domain.TypeEmailOpened, domain.TypeEmailClicked, domain.TypeChatConversationHeld,
		domain.TypeMeetingHeld, domain.TypeSMSSent, domain.TypeCampaignTouched,
		domain.TypeTicketOpened,
	}
}

// dayRecord is one day of touches: channel → count.
type dayRecord struct {
	Touches map[string]int64 `json:"touches"`
}

// Apply implements projections.Projection.
func (channels) Apply(tx *projections.Tx, e domain.Envelope) error {
	ch, ok := touchChannel(e.Event)
	if !ok {
		return nil
	}
	rec, err := projections.Load[dayRecord](tx, dayPrefix+e.Metadata.OccurredAt.UTC().Format(time.DateOnly))
	if err != nil {
		return err
	}
	if rec.Touches == nil {
		rec.Touches = map[string]int64{}
	}
	rec.Touches[ch]++
	return nil
}

// ChannelCount is the number of touches of one channel.
type ChannelCount struct {
	Channel string `json:"channel"`
	Touches int64  `json:"touches"`
	// Share is Touches ÷ the period's (or day's) total touches.
	Share float64 `json:"share"`
}

// DayMix is the channel mix of one UTC day.
type DayMix struct {
	// Day is the UTC date, YYYY-MM-DD.
	Day      string         `json:"day"`
	Touches  int64          `json:"touches"`
	Channels []ChannelCount `json:"channels"`
}

// ChannelMixReport is the channel mix of a period.
type ChannelMixReport struct {
	// Days holds every day with touches, in date order.
	Days []DayMix `json:"days"`
	// Touches and Channels total the period.
	Touches  int64          `json:"touches"`
	Channels []ChannelCount `json:"channels"`
}

// ChannelMix returns the touches per channel of each UTC day from the day
// of from to the day of to, both included, with the period's totals.
// Channels are listed by name.
func ChannelMix(ctx context.Context, r projections.Reader, from, to time.Time) (ChannelMixReport, error) {
	first, last := from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)
	rep := ChannelMixReport{Days: []DayMix{}}
	total := map[string]int64{}
	after := dayPrefix + from.UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	err := r.Scan(ctx, dayPrefix, after, func(key string, value []byte) (bool, error) {
		day := strings.TrimPrefix(key, dayPrefix)
		if day < first {
			return true, nil
		}
		if day > last {
			return false, nil
		}
		var rec dayRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return false, fmt.Errorf("analytics: decode %q: %w", key, err)
		}
		d := DayMix{Day: day}
		for _, ch := range sortedKeys(rec.Touches) {
			d.Touches += rec.Touches[ch]
			total[ch] += rec.Touches[ch]
		}
		d.Channels = counts(rec.Touches, d.Touches)
		rep.Touches += d.Touches
		rep.Days = append(rep.Days, d)
		return true, nil
	})
	if err != nil {
		return ChannelMixReport{}, err
	}
	rep.Channels = counts(total, rep.Touches)
	return rep, nil
}

func counts(m map[string]int64, total int64) []ChannelCount {
	out := []ChannelCount{}
	for _, ch := range sortedKeys(m) {
		c := ChannelCount{Channel: ch, Touches: m[ch]}
		if total > 0 {
			c.Share = float64(m[ch]) / float64(total)
		}
		out = append(out, c)
	}
	return out
}
