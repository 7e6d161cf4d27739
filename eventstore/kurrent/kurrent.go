// Package kurrent is the KurrentDB (EventStoreDB) implementation of
// eventstore.Store, on the official gRPC client EventStore-Client-Go/v4.
//
// # Mapping
//
// A ledger stream is a KurrentDB stream of the same name (after
// Options.StreamPrefix). Versions are KurrentDB revisions: both are 0-based,
// so Exact(v) is esdb.Revision(v), NoStream, StreamExists and Any map to the
// client's options of the same names. Event ids are KurrentDB event ids; the
// server's idempotent writes by event id make a retried append succeed
// without writing again. Our metadata travels in the event's user metadata as
// JSON, with the server's names $correlationId and $causationId, so that
// KurrentDB's projections and UI see it. RecordedAt is the server's created
// time truncated to microseconds. The global position is the event's prepare
// position plus one (see mapping.go for why the prepare and not the commit
// position).
//
// # What KurrentDB does not promise
//
//   - Idempotency is a server-side cache of recent event ids, not a durable
//     index: a retry long after the original append, or after a server
//     restart, may write the events again, and an id reused for other
//     content is not reported as ErrDuplicateEvent.
//   - RecordedAt is the server's clock; the server does not clamp a clock
//     that steps back, so RecordedAt is monotonic only while its clock is.
//   - ReadAll's After must be 0 or a position this store returned: the
//     server cannot start a read in the middle of a log record.
//   - Stream names and event types starting with "$" are KurrentDB's system
//     namespace; Append rejects them with ErrInvalidEvent.
//
// # Global order
//
// ReadAll reads $all forward and keeps the ledger's events: those of streams
// with the store's prefix and, without a prefix, every event that is not a
// system event. The client (v4.2.0) sends no server-side filter with a read
// of $all, so this filter runs here; subscriptions do use one: a live
// SubscribeToAll with the server's filter (the prefix, or
// ExcludeSystemEventsFilter) wakes eventstore.Follow, which re-reads with
// ReadAll, so each event is delivered exactly once and in order.
package kurrent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/cxledger/cxledger/eventstore"
)

// DefaultMaxAppendSize is KurrentDB's default MaxAppendSize: the server
// refuses an append whose events (data and metadata) sum to more.
const DefaultMaxAppendSize = 1 << 20

// DefaultPoll is how often an idle subscription re-reads $all without a
// wake-up: the safety net for a live subscription that dropped and is
// reconnecting, not the way subscribers learn of new events.
const DefaultPoll = 2 * time.Second

// Options configure a Store. The zero value is valid.
type Options struct {
	// StreamPrefix, when set, places the ledger's streams in KurrentDB under
	// this prefix (stream "customer-…" is "<prefix>customer-…" on the
	// server) and makes the store see only those streams, so several
	// ledgers (or parallel tests) share one server. It must not start with
	// "$". Empty: the ledger is every non-system stream of the server.
	StreamPrefix string
	// MaxEventSize limits one event (eventstore.EventData.Size);
	// eventstore.DefaultMaxEventSize when 0.
	MaxEventSize int
	// MaxAppendSize limits one append's data and encoded metadata, checked
	// before sending, so that an append the server would refuse fails with
	// ErrEventTooLarge; DefaultMaxAppendSize when 0. Set it to the server's
	// MaxAppendSize if that was changed.
	MaxAppendSize int
	// Poll is the subscriptions' safety-net re-read interval; DefaultPoll
	// when 0.
	Poll time.Duration
	// Username and Password, when set, override the credentials of the
	// connection string.
	Username, Password string
}

func (o *Options) setDefaults() {
	if o.MaxEventSize == 0 {
		o.MaxEventSize = eventstore.DefaultMaxEventSize
	}
	if o.MaxAppendSize == 0 {
		o.MaxAppendSize = DefaultMaxAppendSize
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case strings.HasPrefix(o.StreamPrefix, "$"):
		return fmt.Errorf("stream prefix %q: names starting with $ are KurrentDB's system streams", o.StreamPrefix)
	case o.MaxEventSize < 0 || o.MaxAppendSize < 0:
		return fmt.Errorf("negative size limit (event %d, append %d)", o.MaxEventSize, o.MaxAppendSize)
	case o.Poll < 0:
		return fmt.Errorf("negative Poll %s", o.Poll)
	}
	return nil
}

// ParseURL turns a connection string into the client's configuration. It
// accepts the client's esdb:// and esdb+discover:// and KurrentDB's names
// for them, kurrentdb:// and kurrentdb+discover:// (client v4.2.0 predates
// the rename). TLS and credentials come from the string as the client
// documents them: esdb://user:pass@host:2113?tls=true&tlsCAFile=ca.crt,
// tls=false for an insecure server.
func ParseURL(connString string) (*esdb.Configuration, error) {
	s := strings.TrimSpace(connString)
	for _, alias := range []struct{ from, to string }{
		{"kurrentdb+discover://", "esdb+discover://"},
		{"kurrentdb://", "esdb://"},
		{"kurrent+discover://", "esdb+discover://"},
		{"kurrent://", "esdb://"},
	} {
		if rest, ok := strings.CutPrefix(s, alias.from); ok {
			s = alias.to + rest
			break
		}
	}
	cfg, err := esdb.ParseConnectionString(s)
	if err != nil {
		// The client's errors quote the string or parts of it, password
		// included, and errors end up in logs.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("kurrent: connection string: %s", redactPasswords(s, err.Error()))
	}
	// The client logs to stdout by default; errors reach the caller anyway.
	cfg.Logger = esdb.NoopLogging()
	return cfg, nil
}

// redactPasswords replaces in msg whatever conn holds between a ':' and
// the '@' after it (the password of user info, however malformed the
// string around it), so that an error about conn cannot quote it.
func redactPasswords(conn, msg string) string {
	for rest := conn; ; {
		at := strings.IndexByte(rest, '@')
		if at < 0 {
			return msg
		}
		if colon := strings.LastIndexByte(rest[:at], ':'); colon >= 0 && colon+1 < at {
			msg = strings.ReplaceAll(msg, rest[colon+1:at], "xxxxx")
		}
		rest = rest[at+1:]
	}
}

// Store is an eventstore.Store on a KurrentDB server. It is safe for
// concurrent use; any number of Stores, in any number of processes, may
// share one server (and one prefix).
type Store struct {
	opts   Options
	client *esdb.Client

	closed    chan struct{}
	closeOnce sync.Once

	// wake is signalled by local appends and by the live $all subscription.
	wake eventstore.Signal
	// wakerOnce starts the live subscription at the first Subscribe.
	wakerOnce sync.Once
	wakerStop context.CancelFunc
	wakerDone chan struct{}
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the server named by connString (see ParseURL). The client
// connects lazily, so Open checks the connection with one read of $all and
// fails if the server cannot be reached or refuses the credentials.
func Open(ctx context.Context, connString string, opts Options) (*Store, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("kurrent: open: %w", err)
	}
	cfg, err := ParseURL(connString)
	if err != nil {
		return nil, err
	}
	if opts.Username != "" {
		cfg.Username, cfg.Password = opts.Username, opts.Password
	}
	client, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrent: open: %w", err)
	}
	s := &Store{opts: opts, client: client, closed: make(chan struct{}), wakerDone: make(chan struct{})}
	if _, err := s.lastLogPosition(ctx); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kurrent: open: %w", err)
	}
	return s, nil
}

// Close implements eventstore.Store: later calls fail with ErrClosed,
// subscriptions end with ErrClosed, appends in flight fail with ErrClosed
// or complete, and the connection is closed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.wakerOnce.Do(func() { close(s.wakerDone) }) // never started: nothing to wait for
		if s.wakerStop != nil {
			s.wakerStop()
			<-s.wakerDone
		}
		_ = s.client.Close()
	})
	return nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// begin checks what every call checks first: a live context and an open
// store.
func (s *Store) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kurrent: %s: %w", op, err)
	}
	if s.isClosed() {
		return fmt.Errorf("kurrent: %s: %w", op, eventstore.ErrClosed)
	}
	return nil
}

func (s *Store) fail(ctx context.Context, op string, err error) error {
	return mapError(ctx, s.isClosed(), op, err)
}

// serverStream is stream's name on the server.
func (s *Store) serverStream(stream string) string { return s.opts.StreamPrefix + stream }

// ours reports whether an event of $all belongs to this store's ledger.
func (s *Store) ours(ev *esdb.RecordedEvent) bool {
	if isSystem(ev.StreamID, ev.EventType) {
		return false
	}
	return strings.HasPrefix(ev.StreamID, s.opts.StreamPrefix)
}

// validate adds KurrentDB's rules to eventstore.ValidateAppend: no system
// names, and the append within the server's MaxAppendSize.
func (s *Store) validate(stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) ([]esdb.EventData, error) {
	if err := eventstore.ValidateAppend(stream, expected, events, s.opts.MaxEventSize); err != nil {
		return nil, err
	}
	if strings.HasPrefix(s.serverStream(stream), "$") {
		return nil, fmt.Errorf("%w: stream %q: names starting with $ are KurrentDB's system streams", eventstore.ErrInvalidEvent, stream)
	}
	out := make([]esdb.EventData, len(events))
	total := 0
	for i, e := range events {
		if strings.HasPrefix(e.Type, "$") {
			return nil, fmt.Errorf("%w: event %d (%s): types starting with $ are KurrentDB's system events", eventstore.ErrInvalidEvent, i, e.ID)
		}
		ed, err := toEventData(e)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", eventstore.ErrInvalidEvent, err)
		}
		total += len(ed.Data) + len(ed.Metadata) + len(ed.EventType)
		out[i] = ed
	}
	if total > s.opts.MaxAppendSize {
		return nil, fmt.Errorf("%w: append to %q of %d events is %d bytes with metadata, over the server's MaxAppendSize %d",
			eventstore.ErrEventTooLarge, stream, len(events), total, s.opts.MaxAppendSize)
	}
	return out, nil
}

// Append implements eventstore.Store. The server decides the expected
// version and recognises a retry by event id. The result's position is read
// back from the stream (one more round trip): the server's write result
// reports the append's transaction, not its last event, and nothing at all
// for an idempotent retry.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	op := fmt.Sprintf("append to %q", stream)
	if err := s.begin(ctx, op); err != nil {
		return eventstore.AppendResult{}, err
	}
	proposed, err := s.validate(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("kurrent: %w", err)
	}
	rev, err := expectedRevision(expected)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("kurrent: %w", err)
	}
	wr, err := s.client.AppendToStream(ctx, s.serverStream(stream), esdb.AppendToStreamOptions{ExpectedRevision: rev}, proposed...)
	if err != nil {
		return eventstore.AppendResult{}, s.appendError(ctx, op, stream, expected, err)
	}
	s.wake.Notify()
	last, err := s.readAt(ctx, stream, wr.NextExpectedVersion)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("kurrent: %s: appended, but reading back version %d: %w", op, wr.NextExpectedVersion, err)
	}
	return eventstore.AppendResult{Version: wr.NextExpectedVersion, Position: last.Position}, nil
}

// appendError maps an append's failure: a conflict becomes a
// *VersionConflictError with the actual version the server reported (or, if
// the client's text held none, the stream's version read now).
func (s *Store) appendError(ctx context.Context, op, stream string, expected eventstore.ExpectedVersion, err error) error {
	code, _ := errorCode(err)
	switch code {
	case esdb.ErrorCodeWrongExpectedVersion:
		actual, ok := actualFromConflict(err)
		if !ok {
			v, verr := s.streamVersion(ctx, stream)
			if verr != nil {
				return fmt.Errorf("kurrent: %s: %w (and reading the stream's version: %w)", op, eventstore.ErrWrongExpectedVersion, verr)
			}
			actual = v
		}
		return fmt.Errorf("kurrent: %w", &eventstore.VersionConflictError{Stream: stream, Expected: expected, Actual: actual})
	case esdb.ErrorCodeStreamDeleted:
		return fmt.Errorf("kurrent: %s: the stream was deleted in KurrentDB and takes no more events: %w", op, err)
	}
	return s.fail(ctx, op, err)
}

// readAt returns the event of stream at version v.
func (s *Store) readAt(ctx context.Context, stream string, v uint64) (eventstore.Record, error) {
	recs, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: v, Limit: 1})
	if err != nil {
		return eventstore.Record{}, err
	}
	if len(recs) != 1 || recs[0].Version != v {
		return eventstore.Record{}, fmt.Errorf("stream %q has no event at version %d", stream, v)
	}
	return recs[0], nil
}

// streamVersion returns stream's last version, -1 when it has no events.
func (s *Store) streamVersion(ctx context.Context, stream string) (int64, error) {
	recs, err := s.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: eventstore.FromEnd, Backwards: true, Limit: 1})
	switch {
	case errors.Is(err, eventstore.ErrNotFound):
		return -1, nil
	case err != nil:
		return 0, err
	case len(recs) == 0:
		return -1, nil
	}
	return int64(recs[0].Version), nil
}
