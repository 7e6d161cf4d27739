package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cxledger/cxledger/eventstore"
)

// live: GET /v1/events/live?after=&types= — the global log as Server-Sent
// Events: the stored events after `after` (or the Last-Event-ID header an
// EventSource sends when it reconnects), then new ones as they commit.
// Each event's SSE id is its global position and its data the record's
// JSON.
//
// Memory stays bounded whatever the client does: the store's subscription
// is pull-based, so a slow client only makes its own subscription wait in
// Write (holding at most SSEBatch records), and a write that cannot finish
// within SSEWriteTimeout drops the client. That is not only a client that
// reads nothing: the kernel wakes a writer blocked on a full send buffer
// only after about half of it has drained, so a client too slow to drain
// that much within the timeout is dropped too, and resumes with
// Last-Event-ID. At most MaxSubscribers feeds run at once.
func (s *Server) live(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, err := uintParam(q.Get("after"), "after", 0)
	if err != nil {
		return err
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		if after, err = uintParam(last, "Last-Event-ID", 0); err != nil {
			return err
		}
	}
	filter, err := feedFilter(r, q.Get("types"))
	if err != nil {
		return err
	}
	select {
	case s.sseSem <- struct{}{}:
		defer func() { <-s.sseSem }()
	default:
		return fmt.Errorf("%w: %d live feeds are open", ErrBusy, s.cfg.MaxSubscribers)
	}
	s.metrics.sse(1)
	defer s.metrics.sse(-1)

	rc := http.NewResponseController(w)
	// The server's ReadTimeout would end this long response: the
	// connection's background read hits the deadline and cancels the
	// request context.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Shutdown ends the feed; the client reconnects with Last-Event-ID.
	defer context.AfterFunc(s.closing, cancel)()

	var mu sync.Mutex
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.SSEWriteTimeout)); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// The retry hint tells EventSource how soon to reconnect.
	if err := write([]byte("retry: 1000\n\n")); err != nil {
		return nil
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.SSEHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if write([]byte(": keepalive\n\n")) != nil {
					cancel()
					return
				}
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	var buf bytes.Buffer
	var writeErr error
	err = s.cfg.Store.Subscribe(ctx, eventstore.SubscribeOptions{After: after, Filter: filter, BatchSize: s.cfg.SSEBatch},
		func(ctx context.Context, batch []eventstore.Record) error {
			// As stored, like GET /v1/events: personal data stays sealed.
			buf.Reset()
			for _, rec := range batch {
				// MarshalJSON keeps the data byte for byte (no HTML escaping).
				data, err := rec.MarshalJSON()
				if err != nil {
					return fmt.Errorf("encode event at position %d: %w", rec.Position, err)
				}
				fmt.Fprintf(&buf, "id: %d\ndata: %s\n\n", rec.Position, data)
			}
			if err := write(buf.Bytes()); err != nil {
				writeErr = err
				return err
			}
			return nil
		})
	log := loggerFrom(r.Context(), s.log)
	switch {
	case writeErr != nil:
		log.Info("live feed client dropped", "error", writeErr)
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		// Client gone or shutdown: the normal end.
	case err != nil:
		// Headers are sent: tell the client in-band and log the cause.
		log.Error("live feed failed", "error", err)
		_ = write([]byte("event: error\ndata: {\"title\":\"Internal server error\"}\n\n"))
	}
	return nil
}
