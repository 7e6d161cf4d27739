// Package timeline is the per-customer history for agents and auditors:
// every event with who (actor), what (type and a short human summary),
// when (occurred and recorded) and why (correlation and causation), plus
// its event id, stream version and global position — paged, and
// filterable by type, channel and occurred-at range.
//
// # Order
//
// Entries are ordered by occurred-at, then stream version. Occurred-at is
// what an agent reads a history by; imports append old facts late, so
// recorded (log) order can differ. The stream version breaks ties and
// makes the order total, since a stream never repeats a version.
//
// # Paging
//
// Page reads one prefix scan from the cursor's key, so a page costs what
// it returns, not the length of the history. The cursor is opaque to
// callers (it encodes the sort key of the last entry examined). Type and
// channel filters are applied while scanning; to bound the cost of a
// filter that matches little, one call examines at most ScanBudget
// entries and may then return fewer than Limit entries with a NextCursor
// to continue from. An empty NextCursor means the end.
//
// # The log is the record
//
// The read model holds, per event, only what orders and filters a page
// (its key, its type and channel); a page reads its events from the log
// (Events, FromLog) and makes each entry from the event itself. A replay
// writes a few dozen bytes per event instead of a copy of it, a summary
// changed in a later release shows on every page without a rebuild, and
// the timeline cannot say anything the log does not.
//
// # Erasure
//
// Summaries may quote personal data (a ticket subject, a note). Once the
// customer is forgotten (CustomerForgotten), every entry, before and after
// the erasure, shows its redacted summary and is marked Erased. Actors,
// types, times, ids and amounts remain: the audit trail survives the
// erasure.
//
// # Sealed values
//
// With a keyring, personal values arrive sealed (tokens, see
// domain.PersonalFields) and summaries quote them as they are ("Note:
// enc:v1:…"), never clipped (a clipped token would not open): the edges
// reveal them (adapters/query) and clip what they reveal with Clip.
//
// # Key layout
//
//	e/<customer>/<occurred>/<version>  one entry: its type and channel (ref)
//	m/<customer>                       per-customer meta: exists, erased
//
// <customer> is the canonical uuid; <occurred> is 29 decimal digits
// (seconds since 0001-01-01 UTC, 20 digits, then nanoseconds, 9 digits),
// <version> 20 decimal digits, so that byte order is time order.
package timeline

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Name is the read model's name.
const Name = "timeline"

// Version is the read model's schema version; bump it when a key or a
// stored value (summaries included) changes, so that the engine rebuilds
// the timeline.
// 2: summaries neutralized by domain.ForDisplay; 3: entries are read
// from the log, the read model keeps refs.
const Version = 3

// Paging limits.
const (
	// DefaultLimit is the page size when Query.Limit is 0 or less.
	DefaultLimit = 100
	// MaxLimit caps Query.Limit.
	MaxLimit = 1000
	// ScanBudget bounds the entries one Page call examines (ten times
	// the limit when that is more) before it returns what it found with a
	// cursor to continue: a filter that matches little cannot turn one
	// request into a scan of a whole long history.
	ScanBudget = 5000
)

// Entry is one event of a customer's timeline.
type Entry struct {
	EventID uuid.UUID `json:"eventId"`
	Type    string    `json:"type"`
	// Summary is a short human description ("Purchase of 12.50 EUR (order
	// 44de0bb8…)"), redacted after erasure.
	Summary string `json:"summary"`
	// Actor is who recorded the event ("user:…", "service:billing").
	Actor string `json:"actor"`
	// Channel is the touch medium (see domain.Medium: the
	// payload's medium where it has one, else the metadata's channel);
	// Source is the metadata's channel verbatim, often a source system.
	Channel       string    `json:"channel"`
	Source        string    `json:"source,omitempty"`
	OccurredAt    time.Time `json:"occurredAt"`
	RecordedAt    time.Time `json:"recordedAt"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
	StreamVersion uint64    `json:"streamVersion"`
	Position      uint64    `json:"position"`
	// Erased is set on entries whose summary was redacted because the
	// customer was forgotten.
	Erased bool `json:"erased,omitempty"`
}

// ref is the stored entry: what a page filters on before it reads the
// event from the log (the key orders it and names its stream version).
type ref struct {
	Type    string `json:"t"`
	Channel string `json:"c,omitempty"`
	Source  string `json:"s,omitempty"`
}

// Events reads the events a page shows.
type Events interface {
	// Events returns the events of stream at versions (ascending, no
	// repeats), in that order; a version the stream does not hold is an
	// error.
	Events(ctx context.Context, stream string, versions []uint64) ([]domain.Envelope, error)
}

// meta is the value at m/<customer>: its presence says the customer has a
// timeline, Forgotten that new entries are written redacted.
type meta struct {
	Forgotten bool `json:"forgotten,omitempty"`
}

// Query selects and pages a timeline. Zero fields do not filter.
type Query struct {
	// Types keeps entries of these event types.
	Types []string
	// Channels keeps entries whose Channel or Source is one of these.
	Channels []string
	// From (inclusive) and To (exclusive) bound occurred-at.
	From, To time.Time
	// Limit is the page size: DefaultLimit when 0 or less, at most MaxLimit.
	Limit int
	// Cursor is a previous Page's NextCursor, "" for the first page.
	Cursor string
}

// Result is one page of a timeline. (The name Page is taken by the query
// function, which callers use far more often.)
type Result struct {
	Entries []Entry `json:"entries"`
	// NextCursor continues after this page; "" when nothing follows.
	NextCursor string `json:"nextCursor,omitempty"`
}

// unixToInternal is the number of seconds from 0001-01-01 to 1970-01-01,
// so that every time.Time from year 1 on encodes as a non-negative number.
const unixToInternal int64 = (1969*365 + 1969/4 - 1969/100 + 1969/400) * 86400

func entryPrefix(id uuid.UUID) string { return "e/" + id.String() + "/" }
func metaKey(id uuid.UUID) string     { return "m/" + id.String() }

// sortTime encodes t so that byte order is time order.
func sortTime(t time.Time) string {
	return string(appendSortTime(make([]byte, 0, 29), t))
}

// appendSortTime appends sortTime(t): written by hand, not with
// fmt.Sprintf, because it runs once per event of a replay.
func appendSortTime(b []byte, t time.Time) []byte {
	sec := t.Unix() + unixToInternal
	if sec < 0 {
		sec = 0
	}
	b = appendPadded(b, uint64(sec), 20)
	return appendPadded(b, uint64(t.Nanosecond()), 9)
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n uint64, width int) []byte {
	var d [20]byte
	i := len(d)
	for n > 0 || i == len(d) {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
	}
	for range width - (len(d) - i) {
		b = append(b, '0')
	}
	return append(b, d[i:]...)
}

// sortKey is the part of an entry's key after its customer prefix.
func sortKey(occurred time.Time, version uint64) string {
	b := appendSortTime(make([]byte, 0, sortKeyLen), occurred)
	b = append(b, '/')
	return string(appendPadded(b, version, 20))
}

const sortKeyLen = 20 + 9 + 1 + 20

// projection implements projections.Projection.
type projection struct{}

// New returns the timeline projection.
func New() projections.Projection { return projection{} }

// Name implements projections.Projection.
func (projection) Name() string { return Name }

// Version implements projections.Projection.
func (projection) Version() int { return Version }

// Types implements projections.Projection: every event is on the timeline.
func (projection) Types() []string { return nil }

// Apply implements projections.Projection.
func (projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	if domain.IsIdentityResolution(e.Type) {
		// Merges are resolved when a timeline is read (projections/merges),
		// so that an unmerge leaves this read model exactly as before; the
		// auditor's timeline (adapters/audit) reads them from the log.
		return nil
	}
	cid, err := domain.ParseStreamID(e.Stream)
	if err != nil {
		return fmt.Errorf("timeline: event %s: %w", e.ID, err)
	}
	m, err := projections.Load[meta](tx, metaKey(cid))
	if err != nil {
		return err
	}
	if _, ok := e.Event.(domain.CustomerForgotten); ok {
		m.Forgotten = true
	}
	r := ref{Type: e.Type, Channel: domain.Medium(e.Event, e.Metadata.Channel), Source: e.Metadata.Channel}
	return projections.Put(tx, entryPrefix(cid)+sortKey(e.Metadata.OccurredAt, e.Version), r)
}

// entryOf makes the entry of event e, redacted when its customer is
// forgotten.
func entryOf(e domain.Envelope, forgotten bool) Entry {
	full, redacted := Summarize(e)
	en := Entry{
		EventID: e.ID, Type: e.Type, Summary: full, Actor: e.Metadata.Actor,
		Channel: domain.Medium(e.Event, e.Metadata.Channel), Source: e.Metadata.Channel,
		OccurredAt: e.Metadata.OccurredAt, RecordedAt: e.RecordedAt,
		CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
		StreamVersion: e.Version, Position: e.Position,
	}
	if forgotten {
		en.Summary, en.Erased = redacted, true
	}
	return en
}

// badCursor is a *domain.ValidationError, so that the HTTP layer reports a
// bad cursor like any malformed input (errors.Is(err, domain.ErrInvalid)).
func badCursor() error {
	return &domain.ValidationError{Field: "cursor", Rule: "malformed; pass a nextCursor returned by a previous page"}
}

func encodeCursor(sortKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sortKey))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != sortKeyLen || b[29] != '/' {
		return "", badCursor()
	}
	for i, ch := range b {
		if i != 29 && (ch < '0' || ch > '9') {
			return "", badCursor()
		}
	}
	return string(b), nil
}

// Page returns one page of a customer's timeline, oldest first (by
// occurred-at, then stream version), its entries made from the events
// read through events. A customer without any event fails with
// projections.ErrNotFound; a malformed cursor with an error wrapping
// domain.ErrInvalid.
func Page(ctx context.Context, r projections.Reader, events Events, customerID uuid.UUID, q Query) (Result, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	budget := max(ScanBudget, 10*limit)

	prefix := entryPrefix(customerID)
	after := ""
	if !q.From.IsZero() {
		after = prefix + sortTime(q.From) // every entry at From sorts after this
	}
	if q.Cursor != "" {
		sk, err := decodeCursor(q.Cursor)
		if err != nil {
			return Result{}, fmt.Errorf("timeline: %w", err)
		}
		after = max(after, prefix+sk)
	}
	stop := ""
	if !q.To.IsZero() {
		stop = prefix + sortTime(q.To) // every entry at or after To sorts from here
	}

	m, ok, err := projections.Read[meta](ctx, r, metaKey(customerID))
	if err != nil {
		return Result{}, fmt.Errorf("timeline: page of %s: %w", customerID, err)
	} else if !ok {
		return Result{}, fmt.Errorf("timeline: customer %s: %w", customerID, projections.ErrNotFound)
	}

	var page Result
	var versions []uint64
	last, scanned := "", 0
	err = r.Scan(ctx, prefix, after, func(key string, value []byte) (bool, error) {
		if stop != "" && key >= stop {
			return false, nil
		}
		if scanned == budget {
			page.NextCursor = encodeCursor(strings.TrimPrefix(last, prefix))
			return false, nil
		}
		scanned++
		var rf ref
		if err := json.Unmarshal(value, &rf); err != nil {
			return false, fmt.Errorf("decode %q: %w", key, err)
		}
		if !q.matches(rf) {
			last = key
			return true, nil
		}
		if len(versions) == limit {
			// One more match exists: the page continues after its last entry.
			page.NextCursor = encodeCursor(strings.TrimPrefix(last, prefix))
			return false, nil
		}
		if len(key) != len(prefix)+sortKeyLen {
			return false, fmt.Errorf("key %q: not an entry", key)
		}
		v, err := strconv.ParseUint(key[len(key)-20:], 10, 64)
		if err != nil {
			return false, fmt.Errorf("key %q: not an entry: %w", key, err)
		}
		versions = append(versions, v)
		last = key
		return true, nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("timeline: page of %s: %w", customerID, err)
	}
	page.Entries, err = entries(ctx, events, domain.StreamID(customerID), versions, m.Forgotten)
	if err != nil {
		return Result{}, fmt.Errorf("timeline: page of %s: %w", customerID, err)
	}
	return page, nil
}

// entries reads the events at versions of stream (in page order: by
// occurred-at, not by version) and makes their entries.
func entries(ctx context.Context, events Events, stream string, versions []uint64, forgotten bool) ([]Entry, error) {
	out := make([]Entry, 0, len(versions))
	if len(versions) == 0 {
		return out, nil
	}
	sorted := slices.Clone(versions)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	evs, err := events.Events(ctx, stream, sorted)
	if err != nil {
		return nil, err
	}
	if len(evs) != len(sorted) {
		return nil, fmt.Errorf("%d events read for %d versions of %s", len(evs), len(sorted), stream)
	}
	for _, v := range versions {
		i, _ := slices.BinarySearch(sorted, v)
		if evs[i].Version != v {
			return nil, fmt.Errorf("%s: version %d read as %d", stream, v, evs[i].Version)
		}
		out = append(out, entryOf(evs[i], forgotten))
	}
	return out, nil
}

func (q Query) matches(r ref) bool {
	if len(q.Types) > 0 && !slices.Contains(q.Types, r.Type) {
		return false
	}
	if len(q.Channels) > 0 && !slices.Contains(q.Channels, r.Channel) && (r.Source == "" || !slices.Contains(q.Channels, r.Source)) {
		return false
	}
	return true
}

// Summarize returns the short human summary of an event, and the same
// summary without personal data (equal to the first when the event holds
// none). Free text is cut to one line of at most 80 characters, and the
// whole summary is text for people: bidi controls and zero-width
// characters in names and free text are shown as marks (domain.ForDisplay),
// so that a name cannot reorder or disguise the summary around it. The
// event itself keeps them.
func Summarize(e domain.Envelope) (full, redacted string) {
	full, redacted = summarize(e)
	return domain.ForDisplay(full), domain.ForDisplay(redacted)
}

func summarize(e domain.Envelope) (full, redacted string) {
	same := func(s string) (string, string) { return s, s }
	with := func(base, detail string) (string, string) {
		if detail = Clip(detail); detail == "" {
			return base, base
		}
		return base + ": " + detail, base
	}
	switch ev := e.Event.(type) {
	case domain.CustomerRegistered:
		return with("Customer registered", ev.Name)
	case domain.ProfileUpdated:
		var fields []string
		for _, f := range []struct {
			name string
			set  bool
		}{{"name", ev.Name != nil}, {"locale", ev.Locale != nil}, {"country", ev.Country != nil}, {"company", ev.Company != nil}, {"address", ev.Address != nil}, {"birthday", ev.Birthday != nil}} {
			if f.set {
				fields = append(fields, f.name)
			}
		}
		return same("Profile updated: " + strings.Join(fields, ", "))
	case domain.IdentifierLinked:
		label := map[domain.IdentifierKind]string{domain.IdentifierEmail: "Email", domain.IdentifierPhone: "Phone", domain.IdentifierExternal: "External id"}[ev.Kind]
		if label == "" {
			label = "Identifier"
		}
		value := ev.Value
		if n, err := domain.NormalizeIdentifier(ev.Kind, ev.Value); err == nil {
			value = n
		}
		return with(label+" linked", value)
	case domain.ConsentGranted:
		s := fmt.Sprintf("Consent granted: %s by %s", ev.Purpose, ev.Channel)
		if ev.Source != "" {
			s += " (" + Clip(ev.Source) + ")"
		}
		return same(s)
	case domain.ConsentWithdrawn:
		return with(fmt.Sprintf("Consent withdrawn: %s by %s", ev.Purpose, ev.Channel), ev.Reason)
	case domain.CustomerMerged:
		return with(fmt.Sprintf("Customer %s merged into %s", ev.Absorbed, ev.Survivor), ev.Reason)
	case domain.CustomerUnmerged:
		return with(fmt.Sprintf("Customer %s unmerged from %s", ev.Absorbed, ev.Survivor), ev.Reason)
	case domain.CustomerForgotten:
		if ev.Request != "" {
			return same("Customer forgotten (request " + Clip(ev.Request) + ")")
		}
		return same("Customer forgotten")

	case domain.CallLogged:
		base := fmt.Sprintf("%s call, %s, %s (%s)", capitalize(string(ev.Direction)), strings.ReplaceAll(string(ev.Outcome), "_", " "),
			time.Duration(ev.DurationSeconds)*time.Second, ev.Agent)
		return with(base, ev.Summary)
	case domain.EmailSent:
		return with("Email sent", ev.Subject)
	case domain.EmailReceived:
		return with("Email received", ev.Subject)
	case domain.EmailOpened:
		return same("Email opened")
	case domain.EmailClicked:
		return with("Email link clicked", ev.URL)
	case domain.ChatConversationHeld:
		who := "bot"
		if ev.Agent != "" {
			who = ev.Agent
		}
		base := fmt.Sprintf("Chat with %s, %d messages, %s", who, ev.Messages, time.Duration(ev.DurationSeconds)*time.Second)
		return with(base, ev.Summary)
	case domain.MeetingHeld:
		return with(fmt.Sprintf("Meeting (%s)", time.Duration(ev.DurationSeconds)*time.Second), ev.Title)
	case domain.SMSSent:
		return with("SMS sent", ev.Body)
	case domain.NoteAdded:
		return with("Note", ev.Body)

	case domain.PurchaseCompleted:
		return same(fmt.Sprintf("Purchase of %s (order %s)", money(ev.Amount, ev.Currency), short(ev.OrderID)))
	case domain.RefundIssued:
		return with(fmt.Sprintf("Refund of %s on order %s", money(ev.Amount, ev.Currency), short(ev.OrderID)), ev.Reason)

	case domain.TicketOpened:
		full, redacted := with("Ticket opened", ev.Subject)
		tail := fmt.Sprintf(" (%s, %s)", ev.Priority, ev.Channel)
		return full + tail, redacted + tail
	case domain.TicketUpdated:
		var parts []string
		if ev.Status != nil {
			parts = append(parts, "status "+string(*ev.Status))
		}
		if ev.Priority != nil {
			parts = append(parts, "priority "+string(*ev.Priority))
		}
		if ev.Assignee != nil {
			if *ev.Assignee == "" {
				parts = append(parts, "unassigned")
			} else {
				parts = append(parts, "assigned to "+Clip(*ev.Assignee))
			}
		}
		if ev.FirstResponse {
			parts = append(parts, "first response")
		}
		base := "Ticket " + short(ev.TicketID) + " updated"
		if len(parts) > 0 {
			base += " (" + strings.Join(parts, ", ") + ")"
		}
		return with(base, ev.Comment)
	case domain.TicketResolved:
		return with("Ticket "+short(ev.TicketID)+" resolved", ev.Resolution)
	case domain.TicketReopened:
		return with("Ticket "+short(ev.TicketID)+" reopened", ev.Reason)
	case domain.TicketClosed:
		return with("Ticket "+short(ev.TicketID)+" closed", ev.Reason)

	case domain.LeadCaptured:
		s := "Lead captured from " + string(ev.Source)
		if ev.Campaign != "" {
			s += " (campaign " + Clip(ev.Campaign) + ")"
		}
		return with(s, ev.Interest)
	case domain.OpportunityOpened:
		tail := fmt.Sprintf(" (%s, %s, closes %s)", money(ev.Amount, ev.Currency), ev.Stage, ev.ExpectedClose)
		full, redacted := with("Opportunity opened", ev.Name)
		return full + tail, redacted + tail
	case domain.OpportunityStageChanged:
		return same("Opportunity " + short(ev.OpportunityID) + " moved to " + string(ev.Stage))
	case domain.OpportunityWon:
		return with("Opportunity "+short(ev.OpportunityID)+" won", ev.Comment)
	case domain.OpportunityLost:
		full, redacted := with("Opportunity "+short(ev.OpportunityID)+" lost ("+strings.ReplaceAll(string(ev.Reason), "_", " ")+")", ev.Detail)
		return full, redacted

	case domain.PointsEarned:
		details := []string{string(ev.Reason)}
		if ev.OrderID != nil {
			details = append(details, "order "+short(*ev.OrderID))
		}
		if ev.Rule != "" {
			details = append(details, "rule "+Clip(ev.Rule))
		}
		if !ev.ExpiresAt.IsZero() {
			details = append(details, "expires "+ev.ExpiresAt.UTC().Format(time.DateOnly))
		}
		return same("Earned " + points(ev.Points) + " (" + strings.Join(details, ", ") + ")")
	case domain.PointsRedeemed:
		return same("Redeemed " + points(ev.Points) + " for " + Clip(ev.Reward))
	case domain.PointsExpired:
		return same(points(ev.Points) + " expired (earning " + short(ev.EarningID) + ")")
	case domain.PointsClawedBack:
		return same(points(ev.Points) + " clawed back for refund " + short(ev.RefundID) + " of order " + short(ev.OrderID))

	case domain.CampaignTouched:
		return same(fmt.Sprintf("Campaign %s: %s (%s)", Clip(ev.Campaign), ev.Action, ev.Channel))
	case domain.SurveyAnswered:
		base := "Survey " + Clip(ev.Survey) + " answered"
		if ev.NPS != nil {
			base += ": NPS " + strconv.Itoa(*ev.NPS)
		}
		if c := Clip(ev.Comment); c != "" {
			return base + " — " + c, base
		}
		return same(base)

	case domain.TicketEscalated:
		s := "Ticket " + short(ev.TicketID) + " escalated"
		if ev.Priority != "" {
			s += " (" + string(ev.Priority) + ")"
		}
		if b := Clip(ev.Breach); b != "" {
			s += ": " + b
		}
		return same(s)
	case domain.MessageQueued:
		s := "Message queued"
		if ev.Template != "" {
			s += ": " + Clip(ev.Template)
		}
		if ev.Channel != "" {
			s += " by " + string(ev.Channel)
		}
		if ev.Purpose != "" {
			s += " (" + string(ev.Purpose) + ")"
		}
		if ev.Campaign != "" {
			s += ", campaign " + Clip(ev.Campaign)
		}
		return same(s)
	case domain.MessageDelivered:
		s := "Message " + short(ev.MessageID) + " delivered"
		if ev.Channel != "" {
			s += " by " + string(ev.Channel)
		}
		if ev.Via != "" {
			s += " via " + string(ev.Via)
		}
		return same(s + " (" + attempts(ev.Attempts) + ")")
	case domain.MessageFailed:
		s := "Message " + short(ev.MessageID) + " not delivered"
		if ev.Reason != "" {
			s += ": " + string(ev.Reason)
		}
		if ev.Attempts > 0 {
			s += " after " + attempts(ev.Attempts)
		}
		if d := Clip(ev.Detail); d != "" {
			s += " (" + d + ")"
		}
		return same(s)
	case domain.DiscountIssued:
		s := "Discount issued"
		if ev.PercentOff != 0 {
			s += ": " + strconv.Itoa(ev.PercentOff) + "% off"
		}
		if ev.Code != "" {
			s += ", code " + Clip(ev.Code)
		}
		if !ev.ValidUntil.IsZero() {
			s += ", valid until " + ev.ValidUntil.UTC().Format(time.DateOnly)
		}
		if ev.Reason != "" {
			s += " (" + Clip(ev.Reason) + ")"
		}
		return same(s)
	}
	return same(e.Type)
}

// money formats minor units in the currency's digits ("12.50 EUR"),
// falling back to the raw minor units for a currency the domain no longer
// accepts.
func money(minor int64, currency string) string {
	if s, err := domain.FormatAmount(minor, currency); err == nil {
		return s + " " + currency
	}
	return strconv.FormatInt(minor, 10) + " minor units of " + currency
}

// attempts counts delivery attempts: "1 attempt", "3 attempts".
func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return strconv.Itoa(n) + " attempts"
}

// points counts loyalty points: "1 point", "125 points".
func points(n int64) string {
	if n == 1 {
		return "1 point"
	}
	return strconv.FormatInt(n, 10) + " points"
}

// short abbreviates a uuid to its first 8 hex digits, enough for an agent
// to tell entities apart on one screen.
func short(id uuid.UUID) string { return id.String()[:8] + "…" }

// Clip reduces free text to its first line, at most 80 characters, as
// summaries quote it, neutralized for display (domain.ForDisplay). A sealed
// value is kept whole (see the package comment): the edge that reveals it
// clips the plaintext with Clip.
func Clip(s string) string {
	s = strings.TrimSpace(s)
	if domain.IsSealed(s) {
		return s
	}
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " …"
	}
	if utf8.RuneCountInString(s) > 80 {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:79])) + "…"
	}
	return domain.ForDisplay(s)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
