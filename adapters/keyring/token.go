package keyring

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
)

// Token is one sealed value: the customer whose data key sealed it and the
// sealed bytes (nonce, then AES-GCM ciphertext and tag). Its text form is
//
//	enc:v1:<customer uuid, canonical>:<base64url without padding>
//
// (domain.SealedPrefix), ASCII letters, digits, '-', '_' and ':' only, so
// that it sits verbatim inside JSON strings and inside longer text (a
// timeline summary "Note: enc:v1:…").
type Token struct {
	Customer uuid.UUID
	// Sealed is nonce || ciphertext || tag.
	Sealed []byte
}

// uuidLen is the length of a canonical uuid.
const uuidLen = 36

// minSealed is the shortest sealed value: a nonce and a tag around an
// empty plaintext.
const minSealed = nonceSize + tagSize

// maxTokenChars bounds how much text one token may span: the longest value
// a field may hold (10,000 runes of four bytes) sealed, with room to spare.
// A longer run is not a token, which keeps a scan of hostile input linear.
const maxTokenChars = 64 << 10

// ErrMalformedToken is returned by ParseToken for text that is not exactly
// one token.
var ErrMalformedToken = errors.New("malformed token")

// String returns the token's text form.
func (t Token) String() string {
	return domain.SealedPrefix + t.Customer.String() + ":" + base64.RawURLEncoding.EncodeToString(t.Sealed)
}

// ParseToken reads s as exactly one token. Errors wrap ErrMalformedToken.
func ParseToken(s string) (Token, error) {
	t, n, ok := parseAt(s, 0)
	if !ok || n != len(s) {
		return Token{}, fmt.Errorf("%w: want %s<customer uuid>:<base64url>", ErrMalformedToken, domain.SealedPrefix)
	}
	return t, nil
}

// parseAt parses the token starting at s[i] (which must be the prefix) and
// returns it with the index just after it.
func parseAt(s string, i int) (Token, int, bool) {
	if !strings.HasPrefix(s[i:], domain.SealedPrefix) {
		return Token{}, 0, false
	}
	j := i + len(domain.SealedPrefix)
	if len(s) < j+uuidLen+1 || s[j+uuidLen] != ':' {
		return Token{}, 0, false
	}
	raw := s[j : j+uuidLen]
	id, err := uuid.Parse(raw)
	if err != nil || id == uuid.Nil || id.String() != raw {
		return Token{}, 0, false
	}
	k := j + uuidLen + 1
	end := k
	for end < len(s) && end-k <= maxTokenChars && isBase64URL(s[end]) {
		end++
	}
	if end-k > maxTokenChars {
		return Token{}, 0, false
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(s[k:end])
	if err != nil || len(sealed) < minSealed {
		return Token{}, 0, false
	}
	return Token{Customer: id, Sealed: sealed}, end, true
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// ReplaceTokens returns s with every token in it replaced by what fn
// returns for it; fn also receives the token's text, to return unchanged
// when it cannot or must not open the token. Text that only resembles a
// token (a prefix without a well-formed rest) is left alone. It runs in
// time linear in len(s) (fn aside) and never fails.
func ReplaceTokens(s string, fn func(t Token, text string) string) string {
	if !strings.Contains(s, domain.SealedPrefix) {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], domain.SealedPrefix)
		if k < 0 {
			break
		}
		i += k
		t, end, ok := parseAt(s, i)
		if !ok {
			i += len(domain.SealedPrefix)
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(fn(t, s[i:end]))
		last, i = end, end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
