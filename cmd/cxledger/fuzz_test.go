package main

import (
	"strings"
	"testing"
)

// FuzzStoreSpec: --from and --to of `cxledger migrate`, and --store, name
// a store by URL or directory. Parsing never panics, selects PostgreSQL or
// KurrentDB only for their schemes, and its errors never quote the
// password of the URL's user info.
func FuzzStoreSpec(f *testing.F) {
	const password = "Pw-4c1d9e7a2b6f"
	for _, s := range []struct{ scheme, rest string }{
		{"postgres://", "db.internal:5432/ledger?sslmode=disable"},
		{"postgresql://", "%zz/x"},
		{"esdb://", "localhost:2113?tls=false"},
		{"kurrentdb://", "[::1"},
		{"kurrentdb+discover://", "h1:2113,h2:x?tls=maybe"},
		{"", "./cxledger-data"},
		{"bolt", ""},
		{"nats://", "x"},
	} {
		f.Add(s.scheme, "admin", s.rest)
		f.Add(s.scheme, "", s.rest)
	}
	f.Fuzz(func(t *testing.T, scheme, user, rest string) {
		spec := scheme + rest
		if user != "" {
			spec = scheme + user + ":" + password + "@" + rest
		}
		cfg := storeSpec(spec, "cxledger")
		kind, _, err := cfg.parse()
		if err != nil {
			if user != "" && !strings.Contains(scheme+user+rest, password[:6]) && strings.Contains(err.Error(), password) {
				t.Fatalf("error quotes the password: %v", err)
			}
			return
		}
		s := strings.TrimSpace(spec)
		switch {
		case kind == kindPostgres && !strings.HasPrefix(s, "postgres"):
			t.Fatalf("%q selected PostgreSQL", spec)
		case kind == kindKurrent && !isKurrentURL(s):
			t.Fatalf("%q selected KurrentDB", spec)
		}
	})
}
