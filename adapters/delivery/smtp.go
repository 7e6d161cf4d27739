package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/cxledger/cxledger/domain"
)

// SMTP TLS modes (SMTPConfig.TLS).
const (
	// TLSStartTLS requires STARTTLS: a server that does not offer it is a
	// temporary failure (never a fallback to plaintext). The default.
	TLSStartTLS = "starttls"
	// TLSOpportunistic upgrades with STARTTLS when the server offers it
	// and sends in plaintext otherwise — but never authenticates over
	// plaintext.
	TLSOpportunistic = "opportunistic"
	// TLSImplicit connects with TLS from the start (port 465).
	TLSImplicit = "tls"
	// TLSNone never uses TLS, and refuses to authenticate: for a local
	// relay on a trusted host only.
	TLSNone = "none"
)

// SMTPConfig configures an SMTP sender.
type SMTPConfig struct {
	// Host and Port of the submission server. Host is required; Port
	// defaults to 587 (465 with TLSImplicit).
	Host string
	Port int
	// Username and Password authenticate with AUTH PLAIN, only over TLS;
	// empty Username: no authentication.
	Username string
	Password string
	// From is the envelope sender and From header. Required.
	From string
	// TLS is one of TLSStartTLS (default), TLSOpportunistic, TLSImplicit,
	// TLSNone.
	TLS string
	// TLSConfig verifies the server (default: the system roots and Host).
	TLSConfig *tls.Config
	// Timeout bounds one attempt, connection to the server's acceptance
	// (default 30s).
	Timeout time.Duration
	// LocalName is sent in EHLO (default "localhost").
	LocalName string
	// Render returns a message's subject and plain-text body (default:
	// DefaultRender). The log holds only the template's name; rendering
	// it is the deployment's.
	Render func(Message) (subject, body string)
	// Now dates the messages (default time.Now).
	Now func() time.Time
}

// DefaultRender renders a message with its template's name as the subject
// and a body naming the template and the campaign: a placeholder for a
// deployment's templates.
func DefaultRender(m Message) (subject, body string) {
	body = "Template: " + m.Template + "\r\n"
	if m.Campaign != "" {
		body += "Campaign: " + m.Campaign + "\r\n"
	}
	return m.Template, body
}

// SMTP delivers e-mail messages through an SMTP submission server, one
// connection per message. It is safe for concurrent use.
type SMTP struct {
	cfg  SMTPConfig
	from *mail.Address
}

// NewSMTP returns an SMTP sender, or an error when cfg is incomplete.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	var errs []error
	if cfg.Host == "" {
		errs = append(errs, errors.New("missing host"))
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	switch cfg.TLS {
	case TLSStartTLS, TLSOpportunistic, TLSImplicit:
	case TLSNone:
		if cfg.Username != "" {
			errs = append(errs, errors.New("TLS none cannot authenticate: a password must not cross the network in clear"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown TLS mode %q (want %s, %s, %s or %s)", cfg.TLS, TLSStartTLS, TLSOpportunistic, TLSImplicit, TLSNone))
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("from: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("delivery: smtp: %w", err)
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.TLS == TLSImplicit {
			cfg.Port = 465
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.LocalName == "" {
		cfg.LocalName = "localhost"
	}
	if cfg.Render == nil {
		cfg.Render = DefaultRender
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	cfg.TLSConfig = tc
	return &SMTP{cfg: cfg, from: from}, nil
}

// Via implements Sender.
func (s *SMTP) Via() domain.DeliveryVia { return domain.ViaSMTP }

// errNoStartTLS: TLSStartTLS and the server offers no STARTTLS.
var errNoStartTLS = errors.New("server offers no STARTTLS")

// Send implements Sender. An SMTP 5xx is permanent; a 4xx, a connection
// failure, a timeout or a server without the required STARTTLS are
// temporary.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if m.Channel != domain.ConsentEmail {
		return &SendError{Detail: "not an e-mail message", Permanent: true}
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		// The parser's text quotes the address: keep it out.
		return &SendError{Detail: "invalid recipient address", Permanent: true}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		return s.classify("connect", err)
	}
	defer func() { _ = c.Close() }()
	// The client's timeouts are per command; the attempt's deadline bounds
	// them all.
	if dl, ok := ctx.Deadline(); ok {
		c.CommandTimeout, c.SubmissionTimeout = time.Until(dl), time.Until(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if s.cfg.Username != "" {
		if _, secure := c.TLSConnectionState(); !secure {
			return &SendError{Detail: "no TLS: refusing to authenticate in clear"}
		}
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			return s.classify("auth", err)
		}
	}
	if err := c.Mail(s.from.Address, nil); err != nil {
		return s.classify("mail from", err)
	}
	if err := c.Rcpt(to.Address, nil); err != nil {
		return s.classify("rcpt", err)
	}
	w, err := c.Data()
	if err != nil {
		return s.classify("data", err)
	}
	if _, err := w.Write(s.compose(m, to)); err != nil {
		_ = w.Close()
		return s.classify("data", err)
	}
	if err := w.Close(); err != nil {
		return s.classify("data", err)
	}
	// The server accepted the message: a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// dial connects and, per the TLS mode, secures the connection.
func (s *SMTP) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	switch s.cfg.TLS {
	case TLSImplicit:
		c := smtp.NewClient(tls.Client(conn, s.cfg.TLSConfig))
		return c, s.hello(c)
	case TLSNone:
		c := smtp.NewClient(conn)
		return c, s.hello(c)
	}
	if s.cfg.TLS == TLSStartTLS {
		c, err := smtp.NewClientStartTLS(conn, s.cfg.TLSConfig)
		if err != nil {
			if strings.Contains(err.Error(), "support STARTTLS") {
				return nil, errNoStartTLS
			}
			return nil, err
		}
		return c, s.hello(c)
	}
	// Opportunistic: ask, then upgrade on a fresh connection if offered
	// (go-smtp upgrades only a client that has not yet said EHLO).
	c := smtp.NewClient(conn)
	if err := s.hello(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return c, nil
	}
	_ = c.Close()
	if conn, err = d.DialContext(ctx, "tcp", addr); err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if c, err = smtp.NewClientStartTLS(conn, s.cfg.TLSConfig); err != nil {
		return nil, err
	}
	return c, s.hello(c)
}

// hello says EHLO with the configured name (after STARTTLS: again, over
// TLS, as RFC 3207 requires).
func (s *SMTP) hello(c *smtp.Client) error { return c.Hello(s.cfg.LocalName) }

// compose writes the message: headers (the Message-ID carries the message
// id, for receivers to deduplicate a resend) and a plain-text body.
func (s *SMTP) compose(m Message, to *mail.Address) []byte {
	subject, body := s.cfg.Render(m)
	var b strings.Builder
	hdr := func(k, v string) {
		// No header injection: the values are single lines.
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		b.WriteString(k + ": " + v + "\r\n")
	}
	hdr("From", s.from.String())
	hdr("To", to.String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", s.cfg.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+m.ID.String()+"@cxledger>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

// classify turns an SMTP failure into a SendError: 5xx permanent, the rest
// temporary. The server's text may quote the address, so only the codes
// are kept.
func (s *SMTP) classify(step string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		d := "SMTP " + strconv.Itoa(se.Code)
		if ec := se.EnhancedCode; ec != smtp.NoEnhancedCode && ec != (smtp.EnhancedCode{}) {
			d += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
		}
		return &SendError{Detail: d, Permanent: se.Code >= 500, Err: fmt.Errorf("%s: %w", step, &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode})}
	}
	detail := step + " failed"
	var ne net.Error
	switch {
	case errors.Is(err, errNoStartTLS):
		detail = "no STARTTLS"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		detail = "timeout"
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		detail = "TLS certificate not trusted"
	}
	return &SendError{Detail: detail, Err: fmt.Errorf("%s: %w", step, err)}
}
