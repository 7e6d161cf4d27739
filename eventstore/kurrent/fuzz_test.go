package kurrent

import (
	"strings"
	"testing"
)

// fuzzPassword is the password of every fuzzed connection string; no error
// may quote it, as errors end up in logs.
const fuzzPassword = "Pw-9f3b2c71e4d0"

// FuzzParseURL: a connection string comes from a flag or the environment.
// Parsing never panics, returns a configuration exactly when it succeeds,
// and its errors never quote the password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []struct{ scheme, user, rest string }{
		{"kurrentdb://", "admin", "localhost:2113?tls=false"},
		{"esdb://", "admin", "node1.example.com:2113?tls=true&tlsVerifyCert=false"},
		{"kurrentdb+discover://", "", "cluster.example.com:2113"},
		{"esdb://", "admin", "[::1"},
		{"esdb://", "a%zz", "host"},
		{"esdb://", "admin", "h1:2113,h2:x?tls=maybe"},
		{"esdb://", "admin", "host:2113?tlsCAFile=/nonexistent&keepAliveInterval=-5"},
		{"postgres://", "u", "localhost/db"},
		{"", "", "esdb://"},
	} {
		f.Add(s.scheme, s.user, s.rest)
		f.Add(s.scheme+s.user+s.rest, "", "")
	}
	f.Fuzz(func(t *testing.T, scheme, user, rest string) {
		conn := scheme + rest
		if user != "" {
			conn = scheme + user + ":" + fuzzPassword + "@" + rest
		}
		cfg, err := ParseURL(conn)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("ParseURL(%q) = %v, %v", conn, cfg, err)
		}
		if err != nil && user != "" && !strings.Contains(scheme+user+rest, fuzzPassword[:6]) && strings.Contains(err.Error(), fuzzPassword) {
			t.Fatalf("error quotes the password: %v", err)
		}
	})
}
