package domain

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// IdentifierKind says what an identifier linked to a customer is; the
// identity index keeps one namespace per kind.
type IdentifierKind string

// Identifier kinds.
const (
	IdentifierEmail    IdentifierKind = "email"
	IdentifierPhone    IdentifierKind = "phone"
	IdentifierExternal IdentifierKind = "external" // "system:id", e.g. "shopify:81723"
)

var identifierKinds = []IdentifierKind{IdentifierEmail, IdentifierPhone, IdentifierExternal}

// NormalizeIdentifier returns the canonical form of value for its kind, the
// key under which the identity index stores it.
func NormalizeIdentifier(kind IdentifierKind, value string) (string, error) {
	switch kind {
	case IdentifierEmail:
		return NormalizeEmail(value)
	case IdentifierPhone:
		return NormalizePhone(value)
	case IdentifierExternal:
		return NormalizeExternalID(value)
	}
	return "", &ValidationError{Field: "kind", Rule: "must be one of " + joinEnum(identifierKinds)}
}

// NormalizeEmail trims and lower-cases an e-mail address and checks its
// basic syntax: one '@', a local part of at most 64 bytes without spaces,
// quotes or brackets, and a domain of dot-separated labels with a dot.
// Lower-casing the local part is technically lossy but every mailbox
// provider we meet treats it case-insensitively, and the index needs one key.
func NormalizeEmail(s string) (string, error) {
	bad := func(rule string) (string, error) {
		return "", &ValidationError{Field: "email", Rule: rule}
	}
	if !utf8.ValidString(s) {
		return bad("must be valid UTF-8")
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return bad("required")
	}
	if len(s) > 254 {
		return bad("at most 254 bytes")
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(domain, "@") {
		return bad("must contain exactly one @")
	}
	if local == "" || len(local) > 64 {
		return bad("local part must be 1 to 64 bytes")
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return bad("local part must not start or end with a dot or contain two in a row")
	}
	for _, r := range local {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`()<>[]\,;:"`, r) || !unicode.IsPrint(r) {
			return bad("local part contains " + printable(r))
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return bad("domain must contain a dot")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return bad("domain labels must be 1 to 63 bytes")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad("domain labels must not start or end with a hyphen")
		}
		for _, r := range l {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return bad("domain contains " + printable(r))
			}
		}
	}
	// Lower-casing is not idempotent for a few runes (e.g. U+0130); return
	// only forms that normalise to themselves, so that the index key is stable.
	if strings.ToLower(s) != s {
		return bad("contains characters without a stable lower case")
	}
	return s, nil
}

// NormalizePhone converts a phone number written for humans into E.164
// ("+33612345678"). Spaces, dashes, dots and parentheses are dropped; the
// number must start with "+" or "00" followed by the country code (without
// a country we cannot tell "06…" in France from "06…" in the Netherlands)
// and have 8 to 15 digits, the first not 0.
func NormalizePhone(s string) (string, error) {
	bad := func(rule string) (string, error) {
		return "", &ValidationError{Field: "phone", Rule: rule}
	}
	if !utf8.ValidString(s) {
		return bad("must be valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return bad("required")
	}
	if len(s) > 64 {
		return bad("at most 64 characters")
	}
	var digits strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' && i == 0:
		case unicode.IsSpace(r) || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return bad("may contain only digits, a leading +, spaces, dashes, dots and parentheses, not " + printable(r))
		}
	}
	d := digits.String()
	switch {
	case strings.HasPrefix(s, "+"):
	case strings.HasPrefix(d, "00") && strings.HasPrefix(s, "00"):
		d = d[2:]
	default:
		return bad("must start with + or 00 and the country code (E.164)")
	}
	if len(d) < 8 || len(d) > 15 {
		return bad("must have 8 to 15 digits including the country code")
	}
	if d[0] == '0' {
		return bad("country code must not start with 0")
	}
	return "+" + d, nil
}

// NormalizeExternalID checks an id in another system written "system:id"
// (e.g. "Shopify:81723" becomes "shopify:81723"). The system name is
// lower-cased, starts with a letter and uses a-z, 0-9, '.', '_' or '-'; the
// id keeps its case (other systems' ids often are case-sensitive) and is a
// single line of at most 256 characters.
func NormalizeExternalID(s string) (string, error) {
	bad := func(rule string) (string, error) {
		return "", &ValidationError{Field: "externalId", Rule: rule}
	}
	if !utf8.ValidString(s) {
		return bad("must be valid UTF-8")
	}
	system, id, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return bad(`must be "system:id"`)
	}
	system = strings.ToLower(strings.TrimSpace(system))
	id = strings.TrimSpace(id)
	if system == "" || len(system) > 64 || system[0] < 'a' || system[0] > 'z' {
		return bad("system must be 1 to 64 characters starting with a letter")
	}
	for i := 0; i < len(system); i++ {
		c := system[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad("system may use only a-z, 0-9, '.', '_' and '-'")
		}
	}
	if id == "" || utf8.RuneCountInString(id) > 256 {
		return bad("id must be 1 to 256 characters")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return bad("id must not contain control characters")
		}
	}
	return system + ":" + id, nil
}

// printable names a rune in an error message without echoing control
// characters back to a terminal or log.
func printable(r rune) string {
	if unicode.IsPrint(r) {
		return strconv.QuoteRune(r)
	}
	return fmt.Sprintf("%U", r)
}
