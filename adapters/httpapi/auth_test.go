package httpapi

import (
	"errors"
	"strings"
	"testing"
)

// TestDuplicateTokensRefused: a token listed twice — under two roles or
// one, in one file, in the environment, or in both — is refused with the
// listing named (line or entry) and the earlier one too, never the token.
func TestDuplicateTokensRefused(t *testing.T) {
	const tok = "tok-0123456789abcdef-shared"
	const other = "tok-0123456789abcdef-other"
	for _, tc := range []struct {
		name, file, env string
		wantIn          []string
	}{
		{name: "lines, two roles", file: "service " + tok + " crm\n# admins\nadmin " + tok + "\n",
			wantIn: []string{"tokens: line 3", "tokens line 1", "role service"}},
		{name: "lines, one role", file: "analyst " + other + "\nservice " + tok + "\nservice " + tok + " again\n",
			wantIn: []string{"tokens: line 3", "tokens line 2", "role service"}},
		{name: "json, two roles", file: `{"tokens":[{"role":"admin","token":"` + tok + `"},{"role":"auditor","token":"` + tok + `"}]}`,
			wantIn: []string{"tokens: entry 1", "tokens entry 0", "role admin"}},
		{name: "bare json array, one role", file: `[{"role":"admin","token":"` + tok + `"},{"role":"admin","token":"` + tok + `","name":"x"}]`,
			wantIn: []string{"tokens: entry 1", "tokens entry 0", "role admin"}},
		{name: "env, two roles", env: "service:" + tok + ", admin:" + tok,
			wantIn: []string{"CXLEDGER_TOKENS: entry 2", "CXLEDGER_TOKENS entry 1", "role service"}},
		{name: "file and env", file: "service " + tok + "\n", env: "analyst:" + other + ",admin:" + tok,
			wantIn: []string{"CXLEDGER_TOKENS: entry 2", "tokens line 1", "role service"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var toks Tokens
			err := ParseTokens([]byte(tc.file), &toks)
			if err == nil && tc.env != "" {
				err = ParseTokensEnv(tc.env, &toks)
			}
			if !errors.Is(err, ErrDuplicateToken) {
				t.Fatalf("err = %v, want ErrDuplicateToken", err)
			}
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tok) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}

	// Distinct tokens, one per role, still load.
	var toks Tokens
	if err := ParseTokens([]byte("service "+tok+"\nadmin "+other+"\n"), &toks); err != nil {
		t.Fatalf("distinct tokens: %v", err)
	}
	if p, ok := toks.Lookup(other); !ok || p.Role != RoleAdmin {
		t.Fatalf("admin token: %+v %v", p, ok)
	}
}
