package keyring

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
)

// Sizes of the sealed form.
const (
	nonceSize = 12 // AES-GCM standard nonce
	tagSize   = 16 // AES-GCM tag
)

// piiAAD binds a token to its customer: a token moved into another
// customer's data does not open as theirs.
func piiAAD(customer uuid.UUID) []byte { return []byte("cxledger/pii/v1/" + customer.String()) }

// seal encrypts plaintext deterministically (SIV-style): the nonce is the
// first 12 bytes of HMAC-SHA256 over the customer and the plaintext, under
// a nonce key derived from the data key apart from the encryption key. The
// same value for the same customer thus always gives the same token — what
// makes a retried append byte-identical — and a nonce repeats only with
// its plaintext, so GCM's nonce-reuse failure cannot happen; what leaks is
// equality: two equal values of one customer have equal tokens.
func (dk *dataKey) seal(customer uuid.UUID, plaintext string) Token {
	mac := hmac.New(sha256.New, dk.nonceKey)
	mac.Write(customer[:])
	mac.Write([]byte(plaintext))
	nonce := mac.Sum(nil)[:nonceSize]
	sealed := dk.aead.Seal(nonce, nonce, []byte(plaintext), piiAAD(customer))
	return Token{Customer: customer, Sealed: sealed}
}

// open decrypts a token's sealed bytes; ok is false when they do not
// authenticate (a forged or damaged token, or another key's).
func (dk *dataKey) open(customer uuid.UUID, sealed []byte) (string, bool) {
	if len(sealed) < minSealed {
		return "", false
	}
	plain, err := dk.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], piiAAD(customer))
	if err != nil {
		return "", false
	}
	return string(plain), true
}

// Seal returns data — the JSON object of an event of type typ, as
// domain.Encode made it — with the value of every personal field
// (domain.PersonalFields) replaced by a token sealed with customer's data
// key, made on first use. Empty strings stay empty. Every other byte is
// kept, and sealing is deterministic, so sealing the same event twice gives
// the same bytes (a retried append stays an idempotent retry); data
// without personal values is returned as it is.
//
// Sealing for a forgotten customer fails with an error wrapping
// ErrForgotten and domain.ErrRejected — except for CustomerForgotten
// itself, whose personal values (the free-text reason) are then replaced
// by Erased: nothing new can be sealed for the customer, and the erasure
// record must still be writable. A nil Keyring returns data unchanged.
func (k *Keyring) Seal(ctx context.Context, customer uuid.UUID, typ string, data []byte) ([]byte, error) {
	if k == nil {
		return data, nil
	}
	paths := domain.PersonalFields(typ)
	if len(paths) == 0 {
		return data, nil
	}
	var dk *dataKey
	destroyed := false
	sealOne := func(s string) (string, error) {
		if dk == nil && !destroyed {
			key, st, err := k.key(ctx, customer, true)
			if err != nil {
				return "", err
			}
			if st == stateDestroyed {
				if typ != domain.TypeCustomerForgotten {
					return "", forgottenError(customer, typ)
				}
				destroyed = true
			}
			dk = key
		}
		if destroyed {
			return Erased, nil
		}
		return dk.seal(customer, s).String(), nil
	}
	out, err := rewriteObject(data, paths, sealOne)
	if err != nil {
		return nil, fmt.Errorf("keyring: seal %s: %w", typ, err)
	}
	return out, nil
}

// SealString seals one value for customer, as Seal seals a field; ""
// stays "". Tests and tools use it to build sealed data by hand.
func (k *Keyring) SealString(ctx context.Context, customer uuid.UUID, s string) (string, error) {
	if k == nil || s == "" {
		return s, nil
	}
	dk, st, err := k.key(ctx, customer, true)
	if err != nil {
		return "", err
	}
	if st == stateDestroyed {
		return "", forgottenError(customer, "")
	}
	return dk.seal(customer, s).String(), nil
}

var errNotObject = errors.New("event data is not a JSON object")

// rewriteObject applies fn to the non-empty string values at paths in the
// top-level JSON object data ("f": field f; "f[]": each element of array
// f), keeping every other byte, key order included. It returns data itself
// when nothing changed.
func rewriteObject(data []byte, paths []string, fn func(string) (string, error)) ([]byte, error) {
	scalars, arrays := map[string]bool{}, map[string]bool{}
	for _, p := range paths {
		if name, ok := strings.CutSuffix(p, "[]"); ok && !strings.ContainsAny(name, ".[]") {
			arrays[name] = true
		} else if !strings.ContainsAny(p, ".[]") {
			scalars[p] = true
		} else {
			return nil, fmt.Errorf("personal field path %q is not supported (want f or f[])", p)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotObject
	}
	var out bytes.Buffer
	out.Grow(len(data) + 128)
	out.WriteByte('{')
	changed := false
	for n := 0; dec.More(); n++ {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("event data: %w", err)
		}
		key, ok := t.(string)
		if !ok {
			return nil, errNotObject
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("event data: field %q: %w", key, err)
		}
		switch {
		case scalars[key] && len(raw) > 0 && raw[0] == '"':
			v, ch, err := rewriteString(raw, fn)
			if err != nil {
				return nil, err
			}
			raw, changed = v, changed || ch
		case arrays[key] && len(raw) > 0 && raw[0] == '[':
			var elems []json.RawMessage
			if err := json.Unmarshal(raw, &elems); err != nil {
				return nil, fmt.Errorf("event data: field %q: %w", key, err)
			}
			arrChanged := false
			for i, el := range elems {
				if len(el) > 0 && el[0] == '"' {
					v, ch, err := rewriteString(el, fn)
					if err != nil {
						return nil, err
					}
					elems[i], arrChanged = v, arrChanged || ch
				}
			}
			if arrChanged {
				joined := []byte{'['}
				for i, el := range elems {
					if i > 0 {
						joined = append(joined, ',')
					}
					joined = append(joined, el...)
				}
				raw = append(joined, ']')
				changed = true
			}
		}
		if n > 0 {
			out.WriteByte(',')
		}
		kb, err := json.Marshal(key)
		if err != nil {
			return nil, fmt.Errorf("event data: %w", err)
		}
		out.Write(kb)
		out.WriteByte(':')
		out.Write(raw)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("event data: trailing data after the JSON object")
	}
	if !changed {
		return data, nil
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// rewriteString applies fn to a JSON string literal that is not empty.
func rewriteString(raw json.RawMessage, fn func(string) (string, error)) (json.RawMessage, bool, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, false, fmt.Errorf("event data: %w", err)
	}
	if s == "" {
		return raw, false, nil
	}
	v, err := fn(s)
	if err != nil {
		return nil, false, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("event data: %w", err)
	}
	return b, true, nil
}
