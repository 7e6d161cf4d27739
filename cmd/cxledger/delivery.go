package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/adapters/ledger"
	"github.com/cxledger/cxledger/projections"
)

// Environment variables that may hold delivery secrets. Like the master
// key, a secret is never a flag: a command line shows in every process
// listing. --webhook-secret-file and --smtp-password-file name files
// instead.
const (
	envWebhookSecret = "CXLEDGER_WEBHOOK_SECRET"
	envSMTPPassword  = "CXLEDGER_SMTP_PASSWORD"
)

// deliveryFlags are serve's outbound delivery flags.
type deliveryFlags struct {
	s                        delivery.Settings
	secretFile, passwordFile string
}

func registerDeliveryFlags(fs *pflag.FlagSet) *deliveryFlags {
	d := &deliveryFlags{}
	fs.StringVar(&d.s.WebhookURL, "webhook-url", os.Getenv("CXLEDGER_WEBHOOK_URL"), "outbound delivery: POST each queued message, signed, to this URL (the SMS channel, and e-mail without --smtp-host) (env CXLEDGER_WEBHOOK_URL)")
	fs.StringVar(&d.secretFile, "webhook-secret-file", os.Getenv("CXLEDGER_WEBHOOK_SECRET_FILE"), "file holding the webhook signing secret, mode 0600 (env CXLEDGER_WEBHOOK_SECRET_FILE; or the secret itself in "+envWebhookSecret+")")
	fs.DurationVar(&d.s.WebhookTimeout, "webhook-timeout", 10*time.Second, "outbound delivery: how long one webhook attempt may take")
	fs.StringVar(&d.s.SMTPHost, "smtp-host", os.Getenv("CXLEDGER_SMTP_HOST"), "outbound delivery: SMTP submission server for e-mail messages (env CXLEDGER_SMTP_HOST)")
	fs.IntVar(&d.s.SMTPPort, "smtp-port", 0, "SMTP port (0: 587, or 465 with --smtp-tls tls)")
	fs.StringVar(&d.s.SMTPUser, "smtp-user", os.Getenv("CXLEDGER_SMTP_USER"), "SMTP user, authenticated over TLS only (env CXLEDGER_SMTP_USER)")
	fs.StringVar(&d.passwordFile, "smtp-password-file", os.Getenv("CXLEDGER_SMTP_PASSWORD_FILE"), "file holding the SMTP password, mode 0600 (env CXLEDGER_SMTP_PASSWORD_FILE; or the password itself in "+envSMTPPassword+")")
	fs.StringVar(&d.s.SMTPFrom, "smtp-from", os.Getenv("CXLEDGER_SMTP_FROM"), "sender address of e-mail messages (env CXLEDGER_SMTP_FROM)")
	fs.StringVar(&d.s.SMTPTLS, "smtp-tls", envOr("CXLEDGER_SMTP_TLS", delivery.TLSStartTLS), "SMTP TLS: starttls (required), opportunistic, tls (implicit), none (env CXLEDGER_SMTP_TLS)")
	fs.IntVar(&d.s.MaxAttempts, "delivery-max-attempts", delivery.DefaultMaxAttempts, "sends per message before it is recorded as failed (the dead letter)")
	fs.DurationVar(&d.s.MinBackoff, "delivery-backoff", delivery.DefaultMinBackoff, "wait before a message's second attempt, doubling for each next one (±20% jitter)")
	fs.DurationVar(&d.s.MaxBackoff, "delivery-max-backoff", delivery.DefaultMaxBackoff, "longest wait between a message's attempts")
	fs.DurationVar(&d.s.MaxAge, "delivery-max-age", delivery.DefaultMaxAge, "a message queued longer ago than this is not sent but recorded as expired (negative: no limit)")
	return d
}

// settings resolves the secrets (file, then environment) into the
// settings. Errors name files and variables, never a secret.
func (d *deliveryFlags) settings() (delivery.Settings, error) {
	s := d.s
	var err error
	switch {
	case d.secretFile != "":
		if s.WebhookSecret, err = delivery.ReadSecretFile(d.secretFile); err != nil {
			return s, fmt.Errorf("--webhook-secret-file: %w", err)
		}
	default:
		s.WebhookSecret = delivery.Secret(os.Getenv(envWebhookSecret))
	}
	switch {
	case d.passwordFile != "":
		if s.SMTPPassword, err = delivery.ReadSecretFile(d.passwordFile); err != nil {
			return s, fmt.Errorf("--smtp-password-file: %w", err)
		}
	default:
		s.SMTPPassword = delivery.Secret(os.Getenv(envSMTPPassword))
	}
	// Checked now, so that a bad configuration stops the start.
	if _, _, err := s.Senders(); err != nil {
		return s, fmt.Errorf("outbound delivery: %w", err)
	}
	return s, nil
}

// deliveryWorker returns the delivery worker, appending outcomes through
// the write path, under the lease relay/delivery.
func (m *Main) deliveryWorker() (*delivery.Worker, error) {
	email, sms, err := m.Delivery.Senders()
	if err != nil {
		return nil, usageErr("outbound delivery: %v", err)
	}
	l := ledger.New(m.store)
	l.Keys = m.keys
	cfg := delivery.Config{Store: m.store, Recorder: l, Email: email, SMS: sms, Backend: m.rm,
		Leases: m.rm, Lease: projections.LeaseConfig{Owner: m.engine.Owner(), TTL: m.LeaseTTL},
		MaxAttempts: m.Delivery.MaxAttempts, MinBackoff: m.Delivery.MinBackoff, MaxBackoff: m.Delivery.MaxBackoff,
		MaxAge: m.Delivery.MaxAge, Logger: m.Log.With("component", "delivery")}
	if m.keys != nil {
		cfg.Keys = m.keys
	}
	return delivery.New(cfg)
}

// startDelivery runs the delivery worker until engCtx ends.
func (m *Main) startDelivery(engCtx context.Context) error {
	w, err := m.deliveryWorker()
	if err != nil {
		return err
	}
	m.deliverDone = make(chan struct{})
	go func() {
		defer close(m.deliverDone)
		if err := w.Run(engCtx); err != nil {
			m.Log.Error("delivery worker stopped", "error", err)
		}
	}()
	m.Log.Info("outbound delivery running", "webhook", m.Delivery.WebhookURL != "", "smtp", m.Delivery.SMTPHost != "", "max_attempts", m.Delivery.MaxAttempts)
	return nil
}
