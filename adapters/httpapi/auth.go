package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Role is what a token may do.
type Role string

// Roles. Admin may use every route; the others are listed per route.
const (
	// RoleService: systems that record touchpoints and read back their
	// writes: register, append, a customer's stream, the unified view,
	// identifier lookup.
	RoleService Role = "service"
	// RoleAnalyst: read models (pipeline, analytics), the global feed
	// (also live), projection status and rebuilds. No per-customer
	// personal data.
	RoleAnalyst Role = "analyst"
	// RoleAuditor: read-only verification: customer streams, timelines,
	// views and lookups, the global feed, projection status and digests.
	RoleAuditor Role = "auditor"
	// RoleAdmin: everything.
	RoleAdmin Role = "admin"
)

// Roles lists every role.
var Roles = []Role{RoleService, RoleAnalyst, RoleAuditor, RoleAdmin}

// MinTokenLength is the shortest token accepted: a token is a password
// that scripts send on every request, so it must not be guessable.
const MinTokenLength = 16

// Tokens maps API tokens to roles. Only SHA-256 hashes of the tokens are
// kept, so a heap dump or a stray %v never shows one. The zero Tokens
// holds none.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash [sha256.Size]byte
	role Role
	name string
	// origin says where the token was listed ("tokens line 3"), so that
	// a second listing can name the first.
	origin string
}

// ErrDuplicateToken is returned when a token is listed twice, under one
// role or under two: a token under service and admin would otherwise act
// as whichever entry the lookup met last, and a copy-paste slip in a
// tokens file would hand out admin silently.
var ErrDuplicateToken = errors.New("token listed twice")

// Principal is who a request acts as: the token's role and name.
type Principal struct {
	Role Role
	// Name identifies the token's holder in the access log. A token
	// registered without one is named after its role and the first bytes
	// of its hash ("auditor-3f2a9c1e"): stable, and no use to a thief.
	Name string
}

// Add registers token for role, named after its role and hash.
func (t *Tokens) Add(role Role, token string) error { return t.AddNamed(role, token, "") }

// AddNamed registers token for role under name (see Principal.Name); ""
// means the default name.
func (t *Tokens) AddNamed(role Role, token, name string) error {
	return t.add(role, token, name, "")
}

// add registers token for role under name, listed at origin (for the
// error naming a second listing; "" when unknown).
func (t *Tokens) add(role Role, token, name, origin string) error {
	if len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("token name must be at most 64 printable characters without spaces")
	}
	if !slices.Contains(Roles, role) {
		if len(role) >= MinTokenLength {
			// Long enough to hold a token (a line in the wrong format):
			// never echo it.
			return fmt.Errorf("unknown role of %d bytes (want one of service, analyst, auditor, admin)", len(role))
		}
		return fmt.Errorf("unknown role %q (want one of service, analyst, auditor, admin)", role)
	}
	if len(token) < MinTokenLength {
		// Never echo the token itself.
		return fmt.Errorf("the token for role %s has %d bytes, want at least %d (e.g. openssl rand -hex 32)", role, len(token), MinTokenLength)
	}
	h := sha256.Sum256([]byte(token))
	for _, e := range t.entries {
		if e.hash == h {
			where := ""
			if e.origin != "" {
				where = " at " + e.origin
			}
			// The earlier entry is named by where it was listed and its
			// role, never by the token.
			return fmt.Errorf("%w: the same token is already listed%s for role %s; give each role its own token", ErrDuplicateToken, where, e.role)
		}
	}
	if name == "" {
		name = string(role) + "-" + hex.EncodeToString(h[:4])
	}
	t.entries = append(t.entries, tokenEntry{hash: h, role: role, name: name, origin: origin})
	return nil
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// Role returns the role of token. Hashing first gives every comparison the
// same length, and the loop visits every entry whatever matches, so the
// time taken says nothing about the tokens.
func (t *Tokens) Role(token string) (Role, bool) {
	p, ok := t.Lookup(token)
	return p.Role, ok
}

// Lookup returns the principal of token, in constant time like Role.
func (t *Tokens) Lookup(token string) (Principal, bool) {
	h := sha256.Sum256([]byte(token))
	var found Principal
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			found = Principal{Role: e.role, Name: e.name}
		}
	}
	return found, found.Role != ""
}

// ParseTokens reads a token file: either JSON — {"tokens":[{"role":…,
// "token":…, "name":…}]} or the bare array — or lines "role token [name]"
// (blank lines and lines starting with # are skipped). The optional name
// identifies the holder in the access log. A token listed twice, under
// any roles, is refused (ErrDuplicateToken), naming both listings. Errors
// name the line, never the token.
func ParseTokens(data []byte, into *Tokens) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		type entry struct {
			Role  Role   `json:"role"`
			Token string `json:"token"`
			Name  string `json:"name"`
		}
		var list []entry
		if trimmed[0] == '{' {
			var doc struct {
				Tokens []entry `json:"tokens"`
			}
			if err := json.Unmarshal(trimmed, &doc); err != nil {
				return fmt.Errorf("tokens: not valid JSON: %w", err)
			}
			list = doc.Tokens
		} else if err := json.Unmarshal(trimmed, &list); err != nil {
			return fmt.Errorf("tokens: not valid JSON: %w", err)
		}
		for i, e := range list {
			if err := into.add(e.Role, e.Token, e.Name, fmt.Sprintf("tokens entry %d", i)); err != nil {
				return fmt.Errorf("tokens: entry %d: %w", i, err)
			}
		}
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 && len(fields) != 3 {
			return fmt.Errorf("tokens: line %d: want \"role token [name]\"", n)
		}
		name := ""
		if len(fields) == 3 {
			name = fields[2]
		}
		if err := into.add(Role(fields[0]), fields[1], name, fmt.Sprintf("tokens line %d", n)); err != nil {
			return fmt.Errorf("tokens: line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return nil
}

// ParseTokensEnv reads the CXLEDGER_TOKENS form: "role:token,role:token".
// Parsed into the Tokens a file filled, a token both there and here is
// refused (ErrDuplicateToken), naming the file's line.
func ParseTokensEnv(s string, into *Tokens) error {
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		role, token, ok := strings.Cut(part, ":")
		if !ok {
			return fmt.Errorf("CXLEDGER_TOKENS: entry %d: want role:token", i+1)
		}
		if err := into.add(Role(strings.TrimSpace(role)), strings.TrimSpace(token), "", fmt.Sprintf("CXLEDGER_TOKENS entry %d", i+1)); err != nil {
			return fmt.Errorf("CXLEDGER_TOKENS: entry %d: %w", i+1, err)
		}
	}
	return nil
}

// authenticate returns the principal of the request's bearer token. With
// auth disabled every request is admin "anonymous".
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	if s.cfg.AuthDisabled {
		return Principal{Role: RoleAdmin, Name: "anonymous"}, nil
	}
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, fmt.Errorf("%w: send Authorization: Bearer <token>", ErrUnauthenticated)
	}
	p, ok := s.cfg.Tokens.Lookup(strings.TrimSpace(token))
	if !ok {
		return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return p, nil
}

type principalKey struct{}

// principal returns the request's principal (zero outside an authorized
// route).
func principal(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}
