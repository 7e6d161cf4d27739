// Package strictjson checks JSON from outside the ledger for what
// encoding/json lets through silently but a ledger must not: an object with
// the same key twice (encoding/json keeps the last value, while a proxy or
// WAF in front may read the first and see another request than the one
// executed), keys equal under case folding (encoding/json matches struct
// fields case-insensitively, so "expectedversion" and "expectedVersion" set
// the same field), escapes of lone UTF-16 surrogates ("\ud800", which
// encoding/json turns into U+FFFD), and bytes that are not UTF-8.
//
// Check runs before the decoder on every request body, imported line and
// broker payload. It is a hand-written single pass over the bytes that
// allocates only for objects with many keys, so that it costs little next
// to the decoding it guards (see BenchmarkCheck).
package strictjson

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinels for what Check rejects; a *Error wraps one of them.
var (
	// ErrDuplicateKey: an object has the same key twice, or two keys that
	// differ only in case.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrLoneSurrogate: a \u escape of a UTF-16 surrogate that is not
	// part of a high-low pair.
	ErrLoneSurrogate = errors.New("unpaired surrogate escape")
	// ErrInvalidUTF8: bytes that are not UTF-8 (RFC 8259 requires it).
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrSyntax: the input is not one JSON value. Check reports it so that
	// it never passes malformed input, but callers normally let their
	// decoder describe syntax errors.
	ErrSyntax = errors.New("not valid JSON")
)

// Error is one violation: Err (a sentinel above), where it is (Path, a JSON
// path such as "events[0].metadata.actor"; "" is the top level) and the
// byte Offset in the input.
type Error struct {
	Err    error
	Path   string
	Offset int
	// Key is the repeated key as sent, for ErrDuplicateKey; Previous the
	// earlier key it collides with, when it is spelt differently.
	Key, Previous string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Err == ErrDuplicateKey && e.Previous != "" && e.Previous != e.Key:
		fmt.Fprintf(&b, "duplicate key %s: %s and %s differ only in case", quote(e.Path), quote(e.Previous), quote(e.Key))
	case e.Err == ErrDuplicateKey:
		fmt.Fprintf(&b, "duplicate key %s", quote(e.Path))
	case e.Path != "":
		fmt.Fprintf(&b, "%s at %s", e.Err, quote(e.Path))
	default:
		b.WriteString(e.Err.Error())
	}
	fmt.Fprintf(&b, " (byte %d)", e.Offset)
	return b.String()
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// quote quotes s with every non-printable rune escaped, so that an
// error message never carries control or bidi characters from the input.
func quote(s string) string { return strconv.QuoteToGraphic(s) }

// Check reports the first violation in b, which must be exactly one JSON
// value (surrounding white space allowed): a *Error wrapping
// ErrDuplicateKey, ErrLoneSurrogate, ErrInvalidUTF8 or ErrSyntax. Keys are
// compared after unescaping, so "a" and "\u0061" are duplicates.
func Check(b []byte) error {
	s := scanner{in: b}
	s.skipSpace()
	if err := s.value(); err != nil {
		return err
	}
	s.skipSpace()
	if s.i != len(b) {
		return s.fail(ErrSyntax)
	}
	return nil
}

// maxLinear is how many keys an object may have before its duplicate check
// switches from comparing against each earlier key to a map.
const maxLinear = 16

// frame is one open object or array.
type frame struct {
	array bool
	index int // array: the element being scanned
	// Object: the current member's key (raw bytes, without quotes, for
	// the error path), and the keys seen so far as folded forms in
	// scanner.folded[start:], or in seen once there are many.
	keyStart, keyEnd int
	start            int
	seen             map[string]int // folded key -> offset of its raw form
}

type scanner struct {
	in    []byte
	i     int
	stack []frame
	// folded holds the folded keys of the open objects, one after another;
	// spans marks where each key begins and ends (and where its raw form
	// is in the input, for the message).
	folded []byte
	spans  []span
}

type span struct{ start, end, rawStart, rawEnd int }

func (s *scanner) skipSpace() {
	for s.i < len(s.in) {
		switch s.in[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value; containers are scanned with an explicit stack,
// not recursion, so that deep nesting cannot exhaust the goroutine stack.
func (s *scanner) value() error {
	for {
		if s.i >= len(s.in) {
			return s.fail(ErrSyntax)
		}
		switch c := s.in[s.i]; {
		case c == '{':
			s.i++
			s.stack = append(s.stack, frame{start: len(s.spans)})
			s.skipSpace()
			if s.i < len(s.in) && s.in[s.i] == '}' {
				s.i++
				s.pop()
				break
			}
			if err := s.member(); err != nil {
				return err
			}
			continue // the member's value
		case c == '[':
			s.i++
			s.stack = append(s.stack, frame{array: true})
			s.skipSpace()
			if s.i < len(s.in) && s.in[s.i] == ']' {
				s.i++
				s.pop()
				break
			}
			continue // the first element
		case c == '"':
			if _, err := s.str(); err != nil {
				return err
			}
		case c == '-' || c >= '0' && c <= '9':
			if !s.number() {
				return s.fail(ErrSyntax)
			}
		case c == 't':
			if !s.literal("true") {
				return s.fail(ErrSyntax)
			}
		case c == 'f':
			if !s.literal("false") {
				return s.fail(ErrSyntax)
			}
		case c == 'n':
			if !s.literal("null") {
				return s.fail(ErrSyntax)
			}
		default:
			return s.fail(ErrSyntax)
		}
		// A value ended: continue the enclosing containers.
		more, err := s.next()
		if err != nil || !more {
			return err
		}
	}
}

// next moves past the separators after a value: it returns true when
// another value follows (an element or a member's value), false when the
// outermost value is complete.
func (s *scanner) next() (bool, error) {
	for len(s.stack) > 0 {
		s.skipSpace()
		if s.i >= len(s.in) {
			return false, s.fail(ErrSyntax)
		}
		f := &s.stack[len(s.stack)-1]
		c := s.in[s.i]
		switch {
		case c == ',':
			s.i++
			s.skipSpace()
			if f.array {
				f.index++
				return true, nil
			}
			return true, s.member()
		case f.array && c == ']', !f.array && c == '}':
			s.i++
			s.pop()
		default:
			return false, s.fail(ErrSyntax)
		}
	}
	return false, nil
}

func (s *scanner) pop() {
	f := s.stack[len(s.stack)-1]
	if !f.array && f.start < len(s.spans) {
		s.folded = s.folded[:s.spans[f.start].start]
		s.spans = s.spans[:f.start]
	}
	s.stack = s.stack[:len(s.stack)-1]
}

// member scans a key and its colon, checks the key against the object's
// earlier keys, and leaves s at the member's value.
func (s *scanner) member() error {
	if s.i >= len(s.in) || s.in[s.i] != '"' {
		return s.fail(ErrSyntax)
	}
	rawStart := s.i + 1
	f := &s.stack[len(s.stack)-1]
	escaped, err := s.str()
	if err != nil {
		return err
	}
	rawEnd := s.i - 1
	f.keyStart, f.keyEnd = rawStart, rawEnd
	// The folded key goes at the end of s.folded; it stays there when it
	// is new.
	start := len(s.folded)
	s.folded = appendFolded(s.folded, s.in[rawStart:rawEnd], escaped)
	key := s.folded[start:]
	if f.seen == nil && len(s.spans)-f.start >= maxLinear {
		f.seen = make(map[string]int, 2*maxLinear)
		for _, sp := range s.spans[f.start:] {
			f.seen[string(s.folded[sp.start:sp.end])] = sp.rawStart
		}
	}
	prev := -1
	if f.seen != nil {
		if at, dup := f.seen[string(key)]; dup {
			prev = at
		} else {
			f.seen[string(key)] = rawStart
		}
	} else {
		for _, sp := range s.spans[f.start:] {
			if string(s.folded[sp.start:sp.end]) == string(key) {
				prev = sp.rawStart
				break
			}
		}
	}
	if prev >= 0 {
		e := &Error{Err: ErrDuplicateKey, Path: s.path(), Offset: rawStart - 1, Key: unquote(s.in[rawStart:rawEnd], escaped)}
		end := prev
		for end < len(s.in) && s.in[end] != '"' {
			if s.in[end] == '\\' {
				end++
			}
			end++
		}
		e.Previous = unquote(s.in[prev:min(end, len(s.in))], true)
		return e
	}
	s.spans = append(s.spans, span{start: start, end: len(s.folded), rawStart: rawStart, rawEnd: rawEnd})
	s.skipSpace()
	if s.i >= len(s.in) || s.in[s.i] != ':' {
		return s.fail(ErrSyntax)
	}
	s.i++
	s.skipSpace()
	return nil
}

// str scans a string starting at its opening quote and reports whether it
// holds escapes. It checks the UTF-8 and the surrogate escapes.
func (s *scanner) str() (escaped bool, err error) {
	s.i++ // the quote
	for s.i < len(s.in) {
		c := s.in[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return escaped, err
			}
		case c < 0x20:
			return escaped, s.fail(ErrSyntax)
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.in[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return escaped, s.fail(ErrInvalidUTF8)
			}
			s.i += n
		}
	}
	return escaped, s.fail(ErrSyntax)
}

// escape scans one escape sequence; a high surrogate must be followed at
// once by an escaped low one.
func (s *scanner) escape() error {
	if s.i+1 >= len(s.in) {
		return s.fail(ErrSyntax)
	}
	switch s.in[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return nil
	case 'u':
	default:
		return s.fail(ErrSyntax)
	}
	r, ok := hex4(s.in, s.i+2)
	if !ok {
		return s.fail(ErrSyntax)
	}
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return s.fail(ErrLoneSurrogate)
	case r >= 0xD800 && r <= 0xDBFF:
		lo, ok := rune(0), false
		if s.i+7 < len(s.in) && s.in[s.i+6] == '\\' && s.in[s.i+7] == 'u' {
			lo, ok = hex4(s.in, s.i+8)
		}
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			return s.fail(ErrLoneSurrogate)
		}
		s.i += 12
		return nil
	}
	s.i += 6
	return nil
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number scans a number as RFC 8259 spells it.
func (s *scanner) number() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.in) && s.in[s.i] >= '0' && s.in[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.in[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.in) && s.in[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return false
	}
	if s.i < len(s.in) && s.in[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.in) && (s.in[s.i] == 'e' || s.in[s.i] == 'E') {
		s.i++
		if s.i < len(s.in) && (s.in[s.i] == '+' || s.in[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) literal(word string) bool {
	if len(s.in)-s.i < len(word) || string(s.in[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

func (s *scanner) fail(err error) error {
	return &Error{Err: err, Path: s.path(), Offset: s.i}
}

// path spells the position of the value being scanned as a JSON path:
// members by key, elements by index ("events[0].metadata.actor").
func (s *scanner) path() string {
	var b strings.Builder
	for _, f := range s.stack {
		if f.array {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
			continue
		}
		if f.keyEnd == 0 {
			continue // no member yet
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(unquote(s.in[f.keyStart:f.keyEnd], true))
	}
	return b.String()
}

// unquote returns the text of a string's raw contents (no quotes). It is
// only used for messages and for folding escaped keys, so malformed
// escapes (already refused by the scan) need no care.
func unquote(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw)
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(raw, i+1)
			if !ok {
				b.WriteByte('u')
				continue
			}
			i += 4
			if r >= 0xD800 && r <= 0xDBFF && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if lo, ok := hex4(raw, i+3); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					r = (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000
					i += 6
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(raw[i])
		}
	}
	return b.String()
}

// appendFolded appends the case-folded form of a key: the form
// encoding/json matches struct field names by, so that two keys with the
// same folded form would set the same field.
func appendFolded(out, raw []byte, escaped bool) []byte {
	if escaped {
		raw = []byte(unquote(raw, true))
	}
	for i := 0; i < len(raw); {
		if c := raw[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(raw[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune returns the smallest rune of r's case-folding orbit (as
// encoding/json does).
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
