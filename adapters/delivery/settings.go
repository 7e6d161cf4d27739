package delivery

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Secret is a credential from configuration (the webhook secret, the SMTP
// password). Every fmt verb and slog print it as "[redacted]"; string(s)
// is the explicit way to use it.
type Secret string

// String implements fmt.Stringer without the secret.
func (s Secret) String() string { return "[redacted]" }

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return "delivery.Secret{…}" }

// Format hides the secret from every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// ReadSecretFile reads a secret from a file (surrounding white space
// trimmed). A file readable by others than its owner is refused, and so is
// an empty one.
func ReadSecretFile(path string) (Secret, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("secret file %s is accessible by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return Secret(s), nil
}

// Settings is the delivery configuration of a server (flags and
// environment, see `cxledger serve --help`). The zero value configures no
// channel: no delivery.
type Settings struct {
	WebhookURL     string
	WebhookSecret  Secret
	WebhookTimeout time.Duration

	SMTPHost     string
	SMTPPort     int
	SMTPUser     string
	SMTPPassword Secret
	SMTPFrom     string
	SMTPTLS      string
	SMTPTimeout  time.Duration

	MaxAttempts int
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	MaxAge      time.Duration
}

// Enabled reports whether a channel is configured.
func (s Settings) Enabled() bool { return s.WebhookURL != "" || s.SMTPHost != "" }

// Senders builds the channel adapters: e-mail goes by SMTP when an SMTP
// host is configured and by the webhook otherwise; SMS by the webhook. A
// channel without an adapter is nil. Errors never quote a secret.
func (s Settings) Senders() (email, sms Sender, err error) {
	var errs []error
	if s.WebhookURL != "" {
		if s.WebhookSecret == "" {
			errs = append(errs, errors.New("a webhook URL needs a secret (CXLEDGER_WEBHOOK_SECRET or --webhook-secret-file) to sign with"))
		} else if wh, err := NewWebhook(WebhookConfig{URL: s.WebhookURL, Secret: []byte(string(s.WebhookSecret)), Timeout: s.WebhookTimeout}); err != nil {
			errs = append(errs, err)
		} else {
			email, sms = wh, wh
		}
	}
	if s.SMTPHost != "" {
		if s.SMTPUser != "" && s.SMTPPassword == "" {
			errs = append(errs, errors.New("an SMTP user needs a password (CXLEDGER_SMTP_PASSWORD or --smtp-password-file)"))
		} else if m, err := NewSMTP(SMTPConfig{Host: s.SMTPHost, Port: s.SMTPPort, Username: s.SMTPUser, Password: string(s.SMTPPassword),
			From: s.SMTPFrom, TLS: s.SMTPTLS, Timeout: s.SMTPTimeout}); err != nil {
			errs = append(errs, err)
		} else {
			email = m
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return email, sms, nil
}
