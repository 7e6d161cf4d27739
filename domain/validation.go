package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Size limits on event fields, in characters (runes). They keep one event
// far below the store's 1 MiB limit and reject pasted garbage early.
const (
	maxShort    = 100   // codes, ids, channels, SKUs
	maxName     = 200   // names, agents, campaigns, sources
	maxSubject  = 300   // subjects, titles
	maxURL      = 2048  // clicked links
	maxText     = 10000 // notes, comments, descriptions, summaries
	maxLines    = 500   // order lines
	maxAttendee = 50    // meeting attendees
)

// Sane bounds for timestamps carried by events and metadata: anything
// outside is a unit or parsing bug (a zero time, seconds read as millis).
var (
	minTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validator collects every problem of one value instead of stopping at the
// first, so that a client sees all of them in one 422.
type validator struct {
	errs ValidationErrors
}

func (v *validator) add(field, rule string) {
	v.errs = append(v.errs, &ValidationError{Field: field, Rule: rule})
}

func (v *validator) addf(field, format string, args ...any) {
	v.add(field, fmt.Sprintf(format, args...))
}

// err returns nil, not a nil ValidationErrors, when there is no problem.
func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

func (v *validator) id(field string, id uuid.UUID) {
	if id == uuid.Nil {
		v.add(field, "required (a non-nil uuid)")
	}
}

// line checks a single-line string: valid UTF-8, no control characters, at
// most max characters, and not blank when required.
func (v *validator) line(field, s string, required bool, max int) {
	v.str(field, s, required, max, false)
}

// text is line for multi-line free text: newlines and tabs are allowed.
func (v *validator) text(field, s string, required bool, max int) {
	v.str(field, s, required, max, true)
}

func (v *validator) str(field, s string, required bool, max int, multiline bool) {
	switch {
	case !utf8.ValidString(s):
		v.add(field, "must be valid UTF-8")
	case strings.TrimSpace(s) == "":
		if required {
			v.add(field, "required")
		} else if s != "" {
			v.add(field, "must not be blank")
		}
	case utf8.RuneCountInString(s) > max:
		v.addf(field, "at most %d characters", max)
	default:
		for _, r := range s {
			if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
				v.add(field, "must not contain control characters")
				return
			}
		}
	}
}

// enum checks that val is one of allowed; the rule lists them so that the
// client learns the vocabulary from the error.
func enum[T ~string](v *validator, field string, val T, required bool, allowed []T) {
	if val == "" {
		if required {
			v.add(field, "required, one of "+joinEnum(allowed))
		}
		return
	}
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(field, "must be one of "+joinEnum(allowed))
}

func joinEnum[T ~string](allowed []T) string {
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = string(a)
	}
	return strings.Join(s, "|")
}

func isOneOf[T ~string](val T, allowed []T) bool {
	for _, a := range allowed {
		if val == a {
			return true
		}
	}
	return false
}

func (v *validator) timestamp(field string, t time.Time, required bool) {
	switch {
	case t.IsZero():
		if required {
			v.add(field, "required")
		}
	case t.Before(minTime) || !t.Before(maxTime):
		v.add(field, "must be between 1900 and 2200")
	}
}

func (v *validator) intRange(field string, n, min, max int64) {
	if n < min || n > max {
		v.add(field, "must be between "+strconv.FormatInt(min, 10)+" and "+strconv.FormatInt(max, 10))
	}
}

// date checks a civil date written YYYY-MM-DD, as used for days that have
// no time zone (an expected close date).
func (v *validator) date(field, s string, required bool) {
	if s == "" {
		if required {
			v.add(field, "required (YYYY-MM-DD)")
		}
		return
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		v.add(field, "must be a date YYYY-MM-DD")
		return
	}
	v.timestamp(field, t, true)
}

// addErr records err under field, keeping its rule when it is a
// *ValidationError from a helper such as NormalizePhone.
func (v *validator) addErr(field string, err error) {
	var ve *ValidationError
	if errors.As(err, &ve) {
		v.add(field, ve.Rule)
		return
	}
	v.add(field, err.Error())
}

func index(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
