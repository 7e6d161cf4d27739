package delivery_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/domain"
)

// selfSigned makes a certificate for 127.0.0.1, and the pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"smtp.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// mailbox is an in-process SMTP server (go-smtp's) that records the mail
// it accepts.
type mailbox struct {
	srv  *smtp.Server
	port int
	pool *x509.CertPool

	mu    sync.Mutex
	mails []mail
	// rcpt, if set, answers RCPT TO.
	rcpt func(to string) error
}

type mail struct {
	from, to string
	data     string
	tls      bool
	user     string
}

type session struct {
	mb   *mailbox
	conn *smtp.Conn
	m    mail
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "cxledger" || pass != "s3cret-pass" {
			return smtp.ErrAuthFailed
		}
		s.m.user = user
		return nil
	}), nil
}
func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.m.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.mb.rcpt != nil {
		if err := s.mb.rcpt(to); err != nil {
			return err
		}
	}
	s.m.to = to
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.data = string(b)
	_, s.m.tls = s.conn.TLSConnectionState()
	s.mb.mu.Lock()
	s.mb.mails = append(s.mb.mails, s.m)
	s.mb.mu.Unlock()
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// newMailbox starts a server; withTLS offers STARTTLS with a self-signed
// certificate.
func newMailbox(t testing.TB, withTLS bool) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{mb: mb, conn: c}, nil
	}))
	srv.Domain = "smtp.test"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	if withTLS {
		cert, pool := selfSigned(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		mb.pool = pool
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	mb.srv, mb.port = srv, l.Addr().(*net.TCPAddr).Port
	return mb
}

func (mb *mailbox) received() []mail {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]mail(nil), mb.mails...)
}

func (mb *mailbox) config(tune func(*delivery.SMTPConfig)) delivery.SMTPConfig {
	cfg := delivery.SMTPConfig{Host: "127.0.0.1", Port: mb.port, Username: "cxledger", Password: "s3cret-pass",
		From: "Ledger <noreply@example.com>", TLSConfig: &tls.Config{RootCAs: mb.pool}, Timeout: 5 * time.Second}
	if tune != nil {
		tune(&cfg)
	}
	return cfg
}

// TestSMTPStartTLSAndAuth: the mail goes over STARTTLS, authenticated,
// with the message id as its Message-ID.
func TestSMTPStartTLSAndAuth(t *testing.T) {
	mb := newMailbox(t, true)
	s, err := delivery.NewSMTP(mb.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	m.Template = "Merci pour votre achat ✓"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := mb.received()
	if len(got) != 1 {
		t.Fatalf("%d mails", len(got))
	}
	g := got[0]
	if !g.tls || g.user != "cxledger" || g.from != "noreply@example.com" || g.to != "zoe@example.com" {
		t.Errorf("mail %+v, want over TLS, authenticated, from noreply to zoe", g)
	}
	for _, want := range []string{"Message-ID: <" + m.ID.String() + "@cxledger>", "To: <zoe@example.com>", "Subject: =?utf-8?q?", "Template: Merci pour votre achat ✓"} {
		if !strings.Contains(g.data, want) {
			t.Errorf("mail lacks %q:\n%s", want, g.data)
		}
	}
}

// TestSMTPFailures: each failure is classified (permanent or temporary)
// with a detail made of codes only.
func TestSMTPFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		withTLS   bool
		tune      func(*delivery.SMTPConfig)
		rcpt      func(string) error
		detail    string
		permanent bool
	}{
		{name: "wrong password", withTLS: true, tune: func(c *delivery.SMTPConfig) { c.Password = "nope" }, detail: "SMTP 535 5.7.8", permanent: true},
		{name: "unknown recipient", withTLS: true, rcpt: func(to string) error {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user " + to}
		}, detail: "SMTP 550 5.1.1", permanent: true},
		{name: "mailbox busy", withTLS: true, rcpt: func(string) error {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}, detail: "SMTP 451 4.3.0"},
		{name: "STARTTLS required, not offered", detail: "no STARTTLS"},
		{name: "certificate not trusted", withTLS: true, tune: func(c *delivery.SMTPConfig) { c.TLSConfig = nil }, detail: "TLS certificate not trusted"},
		{name: "opportunistic without TLS will not authenticate", tune: func(c *delivery.SMTPConfig) { c.TLS = delivery.TLSOpportunistic }, detail: "no TLS: refusing to authenticate in clear"},
		{name: "server down", tune: func(c *delivery.SMTPConfig) { c.Port = closedPort(t) }, detail: "connect failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb := newMailbox(t, tc.withTLS)
			mb.rcpt = tc.rcpt
			s, err := delivery.NewSMTP(mb.config(tc.tune))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), message())
			var se *delivery.SendError
			if !errors.As(err, &se) || se.Detail != tc.detail || errors.Is(err, delivery.ErrPermanent) != tc.permanent {
				t.Fatalf("Send = %v, want detail %q (permanent %v)", err, tc.detail, tc.permanent)
			}
			if strings.Contains(err.Error(), "zoe") {
				t.Errorf("error quotes the address: %v", err)
			}
			if n := len(mb.received()); n != 0 {
				t.Errorf("%d mails accepted", n)
			}
		})
	}
}

// TestSMTPOpportunisticPlain: without credentials, opportunistic mode sends
// in plaintext to a server without STARTTLS (a local relay).
func TestSMTPOpportunisticPlain(t *testing.T) {
	mb := newMailbox(t, false)
	s, err := delivery.NewSMTP(mb.config(func(c *delivery.SMTPConfig) { c.TLS, c.Username, c.Password = delivery.TLSOpportunistic, "", "" }))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	if got := mb.received(); len(got) != 1 || got[0].tls {
		t.Fatalf("%+v", got)
	}
}

// TestNewSMTPRefusesBadConfig: no host, a bad From, an unknown TLS mode,
// credentials with TLS none.
func TestNewSMTPRefusesBadConfig(t *testing.T) {
	for _, cfg := range []delivery.SMTPConfig{
		{From: "a@example.com"},
		{Host: "h", From: "not an address"},
		{Host: "h", From: "a@example.com", TLS: "ssl3"},
		{Host: "h", From: "a@example.com", TLS: delivery.TLSNone, Username: "u", Password: "p"},
	} {
		if _, err := delivery.NewSMTP(cfg); err == nil {
			t.Errorf("NewSMTP(%+v) accepted", cfg)
		} else if strings.Contains(err.Error(), "p\"") {
			t.Errorf("error echoes the password: %v", err)
		}
	}
}

// TestWorkerSendsEmailBySMTP: the worker sends an e-mail message through
// SMTP (STARTTLS) and records it delivered via smtp.
func TestWorkerSendsEmailBySMTP(t *testing.T) {
	w := newWorld(t)
	r := newReceiver(t)
	mb := newMailbox(t, true)
	s, err := delivery.NewSMTP(mb.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	zoe := w.customer("zoe.faure@example.com")
	m := w.queue(zoe, domain.ConsentEmail, domain.PurposeMarketing)
	w.worker(r, func(c *delivery.Config) { c.Email = s })
	out := w.waitOutcomes(m)
	if d, ok := out[m][0].(domain.MessageDelivered); !ok || d.Via != domain.ViaSMTP {
		t.Fatalf("%+v", out[m])
	}
	if got := mb.received(); len(got) != 1 || got[0].to != "zoe.faure@example.com" || !got[0].tls {
		t.Fatalf("%+v", got)
	}
}

func closedPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return p
}
