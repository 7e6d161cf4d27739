package timeline

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// AppendJSON implements projections.JSONAppender: the record's JSON, byte
// for byte what encoding/json gives (TestAppendJSONMatchesEncodingJSON),
// written without reflection because a replay encodes one record per event
// and the reflective encoding was the largest part of the read models'
// encoding in the replay profile (docs/replay-profile.md). Times that
// encoding/json would refuse or could write differently (years outside
// 0–9999, offsets that are not whole minutes) go through encoding/json.
func (r *record) AppendJSON(b []byte) ([]byte, error) {
	if !plainTime(r.OccurredAt) || !plainTime(r.RecordedAt) {
		raw, err := json.Marshal(r)
		return append(b, raw...), err
	}
	b = append(b, `{"eventId":`...)
	b = appendUUID(b, r.EventID)
	b = append(b, `,"type":`...)
	b = appendString(b, r.Type)
	b = append(b, `,"summary":`...)
	b = appendString(b, r.Summary)
	b = append(b, `,"actor":`...)
	b = appendString(b, r.Actor)
	b = append(b, `,"channel":`...)
	b = appendString(b, r.Channel)
	if r.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, r.Source)
	}
	b = append(b, `,"occurredAt":"`...)
	b = r.OccurredAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","recordedAt":"`...)
	b = r.RecordedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if r.CorrelationID != "" {
		b = append(b, `,"correlationId":`...)
		b = appendString(b, r.CorrelationID)
	}
	if r.CausationID != "" {
		b = append(b, `,"causationId":`...)
		b = appendString(b, r.CausationID)
	}
	b = append(b, `,"streamVersion":`...)
	b = strconv.AppendUint(b, r.StreamVersion, 10)
	b = append(b, `,"position":`...)
	b = strconv.AppendUint(b, r.Position, 10)
	if r.Erased {
		b = append(b, `,"erased":true`...)
	}
	if r.Redacted != "" {
		b = append(b, `,"redacted":`...)
		b = appendString(b, r.Redacted)
	}
	return append(b, '}'), nil
}

// plainTime reports whether t is written by time.Time.MarshalJSON as
// RFC 3339 with nanoseconds and nothing else.
func plainTime(t time.Time) bool {
	_, off := t.Zone()
	return t.Year() >= 0 && t.Year() <= 9999 && off%60 == 0 && off > -24*3600 && off < 24*3600
}

const hexDigits = "0123456789abcdef"

// appendUUID appends id as a JSON string in its canonical form.
func appendUUID(b []byte, id uuid.UUID) []byte {
	b = append(b, '"')
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(b, '"')
}

// appendString appends s as a JSON string escaped as encoding/json escapes
// it: HTML-safe (<, >, & as \u00XX), invalid UTF-8 as U+FFFD, U+2028 and
// U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
