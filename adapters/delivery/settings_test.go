package delivery_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/adapters/delivery"
	"github.com/cxledger/cxledger/domain"
)

// TestSecretNeverPrinted: no fmt verb nor slog shows a secret.
func TestSecretNeverPrinted(t *testing.T) {
	s := delivery.Settings{WebhookSecret: "whsec-topsecret", SMTPPassword: "pw-topsecret"}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("settings", "secret", s.WebhookSecret, "password", s.SMTPPassword)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s.WebhookSecret, s.SMTPPassword, s.WebhookSecret), b.String()} {
		if strings.Contains(out, "topsecret") || strings.Contains(out, "746f70") {
			t.Fatalf("secret printed: %s", out)
		}
	}
}

// TestReadSecretFile: trimmed; refused when others may read it or empty.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := delivery.ReadSecretFile(write("ok", "  whsec-1\n", 0o600)); err != nil || string(s) != "whsec-1" {
		t.Fatalf("%q, %v", string(s), err)
	}
	for _, p := range []string{write("open", "whsec-1", 0o644), write("empty", "\n", 0o600), filepath.Join(dir, "missing")} {
		if _, err := delivery.ReadSecretFile(p); err == nil {
			t.Errorf("%s accepted", p)
		}
	}
}

// TestSettingsSenders: e-mail by SMTP when a host is set, else by the
// webhook; SMS by the webhook; incomplete settings refused without
// quoting secrets.
func TestSettingsSenders(t *testing.T) {
	wh := delivery.Settings{WebhookURL: "https://hooks.example.com/cx", WebhookSecret: "whsec-topsecret"}
	email, sms, err := wh.Senders()
	if err != nil || email.Via() != domain.ViaWebhook || sms.Via() != domain.ViaWebhook {
		t.Fatalf("webhook only: %v, %v, %v", email, sms, err)
	}
	both := wh
	both.SMTPHost, both.SMTPFrom, both.SMTPUser, both.SMTPPassword = "smtp.example.com", "noreply@example.com", "u", "pw-topsecret"
	email, sms, err = both.Senders()
	if err != nil || email.Via() != domain.ViaSMTP || sms.Via() != domain.ViaWebhook {
		t.Fatalf("both: %v, %v, %v", email, sms, err)
	}
	smtpOnly := delivery.Settings{SMTPHost: "smtp.example.com", SMTPFrom: "noreply@example.com"}
	if email, sms, err = smtpOnly.Senders(); err != nil || email == nil || sms != nil {
		t.Fatalf("smtp only: %v, %v, %v", email, sms, err)
	}
	for _, bad := range []delivery.Settings{
		{WebhookURL: "https://hooks.example.com/cx"},
		{WebhookURL: "hooks.example.com", WebhookSecret: "whsec-topsecret"},
		{SMTPHost: "smtp.example.com", SMTPFrom: "noreply@example.com", SMTPUser: "u"},
		{SMTPHost: "smtp.example.com", SMTPFrom: "noreply@example.com", SMTPTLS: "none", SMTPUser: "u", SMTPPassword: "pw-topsecret"},
	} {
		_, _, err := bad.Senders()
		if err == nil {
			t.Errorf("%+v accepted", bad)
		} else if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("error quotes a secret: %v", err)
		}
	}
}
