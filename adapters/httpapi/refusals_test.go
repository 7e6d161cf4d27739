package httpapi_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerRefusalsAreProblems sends requests net/http refuses before
// any handler runs, over a raw connection (a Go client would not send
// them). Each answer is a problem document like every other error, with
// the text neutralized.
func TestServerRefusalsAreProblems(t *testing.T) {
	h := start(t, nil)
	addr := strings.TrimPrefix(h.url, "http://")
	cases := []struct {
		name   string
		raw    string
		status int
		slug   string
		names  string
	}{
		{"NUL in a header value", "GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Trace: a\x00b\r\n\r\n", 400, "malformed", "header"},
		{"space in the path", "GET /v1/customers/a b/events HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed", "request line"},
		{"no Host", "GET /v1/events HTTP/1.1\r\n\r\n", 400, "malformed", "Host"},
		{"control character in the path", "GET /v1/\x01events HTTP/1.1\r\nHost: x\r\n\r\n", 400, "malformed", ""},
		{"oversized headers", "GET /v1/events HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n", 431, "headers-too-large", "exceed 1048576 bytes"},
		{"unknown transfer coding", "POST /v1/customers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n", 501, "not-implemented", "Unsupported transfer encoding"},
		{"unknown expectation", "GET /v1/events HTTP/1.1\r\nHost: x\r\nExpect: coffee\r\n\r\n", 417, "protocol-error", "Expect"},
		// Routed, but the raw path carries a bidi override: the
		// problem's instance shows it as a mark.
		{"bidi override in the raw path", "GET /v1/customers/\u202e" + anaID.String() + " HTTP/1.1\r\nHost: x\r\n\r\n", 401, "unauthenticated", "Bearer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rawExchange(t, addr, tc.raw)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			p := r.problem(t)
			if p.Slug() != tc.slug {
				t.Errorf("problem type %q, want %s", p.Type, tc.slug)
			}
			if !strings.Contains(p.Detail, tc.names) {
				t.Errorf("detail %q does not name %q", p.Detail, tc.names)
			}
			if r.header.Get("X-Request-Id") != p.RequestID {
				t.Errorf("X-Request-Id %q, problem %q", r.header.Get("X-Request-Id"), p.RequestID)
			}
			if i := bytes.IndexFunc(r.body, isHiddenRune); i >= 0 {
				t.Errorf("problem echoes a hidden character raw: %s", r.body)
			}
		})
	}
	// The server still serves after all that.
	if r := h.call(t, "", "GET", "/healthz", ""); r.status != http.StatusOK {
		t.Fatalf("healthz: %d", r.status)
	}
}

// rawExchange writes raw on a new connection and reads one response. The
// request is written while the response is read, as the server may answer
// (and close) before it has read a large request.
func rawExchange(t *testing.T, addr, raw string) response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(conn, raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{resp.StatusCode, resp.Header, body}
}
