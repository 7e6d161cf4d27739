package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Go's HTTP server answers some requests itself, before any handler runs:
// header fields over MaxHeaderBytes (431), a request line or header it
// cannot parse — a space in the path, NUL in a header value, no Host (400),
// a transfer coding it does not know (501), an Expect other than
// 100-continue (417). It writes those answers straight to the connection
// as text/plain, and offers no hook to shape them. So the listener wraps each connection, and a write that is one of
// those answers — recognised by the exact bytes net/http writes, which no
// handler of ours produces — is replaced by the same status as a problem
// document, like every other error of the API.

// serverErrorHeaders are the header lines net/http writes after the status
// line of the answers it makes without a handler (net/http/server.go,
// conn.serve).
const serverErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// expectationFailed starts the 417 net/http writes for an unknown Expect.
const expectationFailed = "HTTP/1.1 417 Expectation Failed\r\n"

// shapingListener wraps every accepted connection in a shapingConn.
type shapingListener struct {
	net.Listener
	s *Server
}

func (l shapingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &shapingConn{Conn: c, s: l.s}, nil
}

// shapingConn replaces net/http's own text/plain refusals by problem
// documents as they are written.
type shapingConn struct {
	net.Conn
	s *Server
}

// Write passes b through unless it is one of net/http's own refusals. A
// refusal is a single write (a Fprintf to the connection, or the flush of
// a bodiless 417), so it is recognised whole; the check costs a prefix
// comparison on any other write.
func (c *shapingConn) Write(b []byte) (int, error) {
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) && !bytes.HasPrefix(b, []byte("HTTP/1.1 5")) {
		return c.Conn.Write(b)
	}
	shaped, ok := c.s.shapeRefusal(b, c.RemoteAddr())
	if !ok {
		return c.Conn.Write(b)
	}
	if _, err := c.Conn.Write(shaped); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite lets net/http half-close the connection after a 431, so that
// the client reads the answer before the connection is reset (the server
// looks for this method on the connection).
func (c *shapingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// shapeRefusal returns the problem-document response for raw, when raw is
// a refusal written by net/http itself.
func (s *Server) shapeRefusal(raw []byte, remote net.Addr) ([]byte, bool) {
	var code int
	var detail string
	switch {
	case bytes.HasPrefix(raw, []byte(expectationFailed)):
		code, detail = http.StatusExpectationFailed, "only Expect: 100-continue is supported"
	default:
		line, _, ok := bytes.Cut(raw, []byte("\r\n"))
		if !ok || !bytes.HasPrefix(raw[len(line):], []byte(serverErrorHeaders)) {
			return nil, false
		}
		status := string(line[len("HTTP/1.1 "):])
		n, _, _ := strings.Cut(status, " ")
		if code, _ = strconv.Atoi(n); code < 400 || code > 599 {
			return nil, false
		}
		body := string(raw[len(line)+len(serverErrorHeaders):])
		// The body repeats the status line ("400 Bad Request: why", the
		// reason following the status text), or is the reason itself.
		if _, why, ok := strings.Cut(body, http.StatusText(code)); ok {
			body = why
		}
		detail = strings.TrimSpace(strings.TrimPrefix(body, ":"))
	}
	slug := "protocol-error"
	switch code {
	case http.StatusBadRequest:
		slug = "malformed"
		if detail == "" {
			detail = "the request line or a header field cannot be parsed (a space or control character in the path, an invalid header)"
		}
	case http.StatusRequestHeaderFieldsTooLarge:
		slug = "headers-too-large"
		detail = "the request's header fields exceed " + strconv.Itoa(s.maxHeaderBytes()) + " bytes"
	case http.StatusNotImplemented:
		slug = "not-implemented"
	}
	id := newRequestID()
	p := &Problem{Type: ProblemTypeBase + slug, Title: http.StatusText(code), Status: code, Detail: detail, RequestID: id}
	p.neutralize()
	doc, err := json.Marshal(p)
	if err != nil {
		return nil, false
	}
	doc = append(doc, '\n')
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
	out.WriteString("Cache-Control: no-store\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(doc)) + "\r\n")
	out.WriteString("Content-Type: application/problem+json\r\nDate: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	out.WriteString(RequestIDHeader + ": " + id + "\r\n\r\n")
	out.Write(doc)
	s.metrics.observeRequest("unparsed", "", code, 0)
	s.log.LogAttrs(context.Background(), slog.LevelDebug, "request refused by the HTTP server", slog.String("request_id", id),
		slog.Int("status", code), slog.String("detail", p.Detail), slog.String("remote", remote.String()))
	return out.Bytes(), true
}

// maxHeaderBytes is the header limit the server enforces.
func (s *Server) maxHeaderBytes() int {
	if s.srv != nil && s.srv.MaxHeaderBytes > 0 {
		return s.srv.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}
