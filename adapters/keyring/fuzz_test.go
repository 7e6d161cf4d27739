package keyring_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/domain"
)

// FuzzReveal feeds outside text — event data from an import, a summary, an
// API answer — to the token scanner and the reveal: it never panics, text
// without the prefix comes back unchanged, valid JSON stays valid JSON, a
// parsed token prints back as itself, and tokens of the customer always
// open to what was sealed.
func FuzzReveal(f *testing.F) {
	ctx := context.Background()
	k, err := keyring.Open(ctx, masterKey(3), keyring.NewMemory(), keyring.Options{})
	if err != nil {
		f.Fatal(err)
	}
	tok, err := k.SealString(ctx, zoe, "Zoë \"<quoted>\"\n\\ end")
	if err != nil {
		f.Fatal(err)
	}
	other, _ := k.SealString(ctx, ana, "Ana")
	for _, s := range []string{
		`{"body":"` + tok + `"}`,
		`{"attendees":["` + tok + `","` + other + `"]}`,
		"Note: " + tok + " (x)",
		tok + tok,
		tok + "AAAA",
		"enc:v1:",
		"enc:v1:" + zoe.String() + ":",
		"enc:v1:" + zoe.String() + ":" + strings.Repeat("_", 50),
		`{"a":"enc:v1:enc:v1:` + zoe.String() + `"}`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := k.Reveal(ctx, zoe, s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s, domain.SealedPrefix) && out != s {
			t.Fatalf("text without a token changed: %q -> %q", s, out)
		}
		doc, err := k.RevealJSON(ctx, zoe, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if json.Valid([]byte(s)) && !json.Valid(doc) {
			t.Fatalf("valid JSON became invalid: %q -> %q", s, doc)
		}
		if tk, err := keyring.ParseToken(s); err == nil && tk.String() != s {
			t.Fatalf("ParseToken(%q) prints back as %q", s, tk.String())
		}
		// A real token placed anywhere in the text opens.
		mixed := s + " " + tok
		got, err := k.Reveal(ctx, zoe, mixed)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(got, " Zoë \"<quoted>\"\n\\ end") {
			t.Fatalf("a token after %q did not open: %q", s, got)
		}
	})
}
