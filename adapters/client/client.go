// Package client is a small typed Go client of the cxledger HTTP API
// (adapters/httpapi) for services: register, append, read a stream, look
// up, the unified view, the timeline, the global feed and the live feed.
//
// Errors map back to the sentinels the server mapped from, so callers
// branch the same way as against the store: errors.Is(err,
// eventstore.ErrWrongExpectedVersion) on a conflict (errors.As with a
// *eventstore.VersionConflictError gives the actual version),
// domain.ErrInvalid with the field (*domain.ValidationError),
// domain.ErrRejected (*domain.RejectionError), eventstore.ErrDuplicateEvent,
// and ErrNotFound.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections/timeline"
	"github.com/google/uuid"
)

// Sentinel errors for statuses the store and domain have no sentinel for.
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrBadRequest   = errors.New("bad request")
	ErrTooLarge     = errors.New("request too large")
	ErrUnavailable  = errors.New("service unavailable")
)

// Error is a problem answered by the server. It unwraps to the sentinel
// (or typed error) matching the problem's type.
type Error struct {
	Problem httpapi.Problem
	cause   error
}

// Error returns the problem's status, title and detail.
func (e *Error) Error() string { return e.Problem.Error() }

// Unwrap exposes the mapped error to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.cause }

// Client calls one cxledger server. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	// HTTP is the transport; it has no overall timeout because the live
	// feed lasts (pass deadlines in contexts).
	HTTP *http.Client
	// Now fills OccurredAt of touchpoints that have none; default time.Now.
	Now func() time.Time
}

// New returns a client of the server at baseURL ("http://127.0.0.1:8080")
// authenticating with token ("" when the server runs without auth).
func New(baseURL, token string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, HTTP: &http.Client{}, Now: time.Now}
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// Touchpoint is one event to append.
type Touchpoint struct {
	// ID is the idempotency key; uuid.Nil gets a new one (uuid v7) before
	// sending. Set it to retry safely.
	ID       uuid.UUID
	Event    domain.Event
	Metadata httpapi.Metadata
}

// Register registers a customer with its identifiers. Set
// req.CustomerID and req.EventID to make it retryable.
func (c *Client) Register(ctx context.Context, req httpapi.RegisterRequest) (httpapi.AppendResponse, error) {
	if req.Metadata.OccurredAt.IsZero() {
		req.Metadata.OccurredAt = c.Now()
	}
	var res httpapi.AppendResponse
	err := c.do(ctx, http.MethodPost, "/v1/customers", nil, req, &res)
	return res, err
}

// Append appends touchpoints to a customer's stream, atomically, under
// expected. Touchpoints without ID or OccurredAt get them here, once, so
// the request sent is fully determined.
func (c *Client) Append(ctx context.Context, customer uuid.UUID, expected eventstore.ExpectedVersion, tps ...Touchpoint) (httpapi.AppendResponse, error) {
	req := httpapi.AppendRequest{ExpectedVersion: httpapi.ExpectedVersion(expected)}
	for i, tp := range tps {
		if tp.Event == nil {
			return httpapi.AppendResponse{}, fmt.Errorf("touchpoint %d: %w", i, &domain.ValidationError{Field: "type", Rule: "required"})
		}
		data, err := json.Marshal(tp.Event)
		if err != nil {
			return httpapi.AppendResponse{}, fmt.Errorf("touchpoint %d: encode %s: %w", i, tp.Event.EventType(), err)
		}
		if tp.ID == uuid.Nil {
			tp.ID = uuid.Must(uuid.NewV7())
		}
		if tp.Metadata.OccurredAt.IsZero() {
			tp.Metadata.OccurredAt = c.Now()
		}
		req.Events = append(req.Events, httpapi.EventInput{ID: tp.ID, Type: tp.Event.EventType(), Data: data, Metadata: tp.Metadata})
	}
	return c.AppendRequest(ctx, customer, req)
}

// AppendRequest sends an append request as is.
func (c *Client) AppendRequest(ctx context.Context, customer uuid.UUID, req httpapi.AppendRequest) (httpapi.AppendResponse, error) {
	var res httpapi.AppendResponse
	err := c.do(ctx, http.MethodPost, "/v1/customers/"+customer.String()+"/events", nil, req, &res)
	return res, err
}

// ReadStream returns up to limit events of a customer's stream from
// version from (limit 0: the server's default of 100).
func (c *Client) ReadStream(ctx context.Context, customer uuid.UUID, from uint64, limit int) (httpapi.EventsPage, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var page httpapi.EventsPage
	err := c.do(ctx, http.MethodGet, "/v1/customers/"+customer.String()+"/events", q, nil, &page)
	return page, err
}

// Customer returns the unified view of a customer. minPosition > 0 waits
// until the read models have applied that position (an append's
// Position), so that a service reads its own writes.
func (c *Client) Customer(ctx context.Context, customer uuid.UUID, minPosition uint64) (query.CustomerView, error) {
	var v query.CustomerView
	err := c.do(ctx, http.MethodGet, "/v1/customers/"+customer.String(), minPos(nil, minPosition), nil, &v)
	return v, err
}

// Lookup returns the unified view of the customer owning an identifier.
func (c *Client) Lookup(ctx context.Context, kind domain.IdentifierKind, value string, minPosition uint64) (query.CustomerView, error) {
	q := minPos(url.Values{"identifier": {string(kind) + ":" + value}}, minPosition)
	var v query.CustomerView
	err := c.do(ctx, http.MethodGet, "/v1/customers", q, nil, &v)
	return v, err
}

// Timeline returns one page of a customer's timeline.
func (c *Client) Timeline(ctx context.Context, customer uuid.UUID, tq timeline.Query, minPosition uint64) (timeline.Result, error) {
	q := url.Values{}
	if len(tq.Types) > 0 {
		q.Set("types", strings.Join(tq.Types, ","))
	}
	if len(tq.Channels) > 0 {
		q.Set("channels", strings.Join(tq.Channels, ","))
	}
	if !tq.From.IsZero() {
		q.Set("from", tq.From.Format(time.RFC3339Nano))
	}
	if !tq.To.IsZero() {
		q.Set("to", tq.To.Format(time.RFC3339Nano))
	}
	if tq.Limit > 0 {
		q.Set("limit", strconv.Itoa(tq.Limit))
	}
	if tq.Cursor != "" {
		q.Set("cursor", tq.Cursor)
	}
	var res timeline.Result
	err := c.do(ctx, http.MethodGet, "/v1/customers/"+customer.String()+"/timeline", minPos(q, minPosition), nil, &res)
	return res, err
}

// ReadAll returns a page of the global log after position after.
func (c *Client) ReadAll(ctx context.Context, after uint64, limit int, types ...string) (httpapi.EventsPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(types) > 0 {
		q.Set("types", strings.Join(types, ","))
	}
	var page httpapi.EventsPage
	err := c.do(ctx, http.MethodGet, "/v1/events", q, nil, &page)
	return page, err
}

func minPos(q url.Values, p uint64) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if p > 0 {
		q.Set("minPosition", strconv.FormatUint(p, 10))
	}
	return q
}

// Subscribe follows the live feed from after: stored events first, then
// new ones, calling handle for each in position order until ctx ends
// (returning ctx.Err()) or handle fails (returning its error). A dropped
// connection is resumed from the last position handled (Last-Event-ID),
// so handle sees every event exactly once. A problem answered by the
// server (401, 403, 503 busy…) ends it with that error.
func (c *Client) Subscribe(ctx context.Context, after uint64, handle func(eventstore.Record) error, types ...string) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.subscribeOnce(ctx, &after, handle, types)
		var apiErr *Error
		var herr *handlerError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &herr):
			return herr.err
		case errors.As(err, &apiErr):
			return apiErr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// handlerError marks an error returned by the subscriber's handler, which
// ends the subscription instead of causing a reconnect.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }

func (c *Client) subscribeOnce(ctx context.Context, after *uint64, handle func(eventstore.Record) error, types []string) error {
	q := url.Values{}
	if len(types) > 0 {
		q.Set("types", strings.Join(types, ","))
	}
	req, err := c.request(ctx, http.MethodGet, "/v1/events/live", q, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(*after, 10))
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("live feed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeProblem(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) == 0 {
				continue
			}
			var rec eventstore.Record
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("live feed: decode event: %w", err)
			}
			data = data[:0]
			if err := handle(rec); err != nil {
				return &handlerError{err}
			}
			*after = rec.Position
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		case bytes.HasPrefix(line, []byte("event: error")):
			// Followed by its data line: not an event to deliver.
			data = data[:0]
			sc.Scan()
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("live feed: %w", err)
	}
	return io.ErrUnexpectedEOF
}

func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request and decodes a 2xx answer into out, or the problem
// into an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	req, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeProblem(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// decodeProblem reads a problem answer and maps it to the error callers
// branch on.
func decodeProblem(resp *http.Response) error {
	var p httpapi.Problem
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(body, &p); err != nil || p.Status == 0 {
		p = httpapi.Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(body))}
	}
	return &Error{Problem: p, cause: cause(p)}
}

// cause is the inverse of the server's error table.
func cause(p httpapi.Problem) error {
	switch p.Slug() {
	case "version-conflict":
		actual := int64(-1)
		if p.ActualVersion != nil {
			actual = *p.ActualVersion
		}
		expected, err := httpapi.ParseExpected(p.ExpectedVersion)
		if err != nil {
			expected = eventstore.Any
		}
		return &eventstore.VersionConflictError{Stream: p.Stream, Expected: expected, Actual: actual}
	case "duplicate-event":
		return eventstore.ErrDuplicateEvent
	case "rejected":
		return &domain.RejectionError{Type: p.EventType, Entity: p.Entity, ID: p.EntityID, Rule: p.Rule}
	case "unknown-event-type":
		return &domain.UnknownTypeError{Type: p.EventType}
	case "invalid":
		if len(p.Errors) == 0 {
			return &domain.ValidationError{Field: p.Field, Rule: p.Rule}
		}
		ves := make(domain.ValidationErrors, len(p.Errors))
		for i, fp := range p.Errors {
			ves[i] = &domain.ValidationError{Field: fp.Field, Rule: fp.Rule}
		}
		return ves
	case "not-found":
		return ErrNotFound
	case "unauthenticated":
		return ErrUnauthorized
	case "forbidden":
		if p.EventType != "" { // an event type the role may not append
			allowed := make([]domain.Role, len(p.AllowedRoles))
			for i, r := range p.AllowedRoles {
				allowed[i] = domain.Role(r)
			}
			return fmt.Errorf("%w: %w", ErrForbidden, &domain.ForbiddenError{Type: p.EventType, Role: domain.Role(p.Role), Allowed: allowed})
		}
		return ErrForbidden
	case "too-large":
		return ErrTooLarge
	case "malformed", "unsupported-media-type":
		return ErrBadRequest
	}
	switch {
	case p.Status == http.StatusNotFound:
		return ErrNotFound
	case p.Status == http.StatusServiceUnavailable:
		return ErrUnavailable
	case p.Status >= 400 && p.Status < 500:
		return ErrBadRequest
	}
	return ErrUnavailable
}
