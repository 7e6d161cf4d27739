package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cxledger/cxledger/adapters/strictjson"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error  // nil: accepted
		path string // the Error's Path
		msg  string // must occur in the message
	}{
		{name: "append body", in: `{"expectedVersion":"any","events":[{"type":"NoteAdded","data":{"body":"Zoë ✉ 🙂"},"metadata":{"actor":"user:ana"}}]}`},
		{name: "scalars", in: ` [1, -0.5e+3, true, false, null, "", {}, []] `},
		{name: "same key in sibling objects", in: `[{"a":1},{"a":2}]`},
		{name: "same key at two levels", in: `{"a":{"a":1}}`},
		{name: "key after a nested object", in: `{"a":{"b":1,"c":2},"b":3}`},
		{name: "surrogate pair", in: `"\ud83d\ude42"`},
		{name: "escapes", in: `"\"\\\/\b\f\n\r\t\u00e9"`},

		{name: "duplicate key", in: `{"expectedVersion":0,"expectedVersion":"any","events":[]}`, err: strictjson.ErrDuplicateKey, path: "expectedVersion", msg: `duplicate key "expectedVersion"`},
		{name: "keys differing in case", in: `{"expectedVersion":0,"expectedversion":"any"}`, err: strictjson.ErrDuplicateKey, path: "expectedversion", msg: `"expectedVersion" and "expectedversion" differ only in case`},
		{name: "escaped duplicate", in: `{"type":"A","typ\u0065":"B"}`, err: strictjson.ErrDuplicateKey, path: "type"},
		{name: "Kelvin sign folds to k", in: `{"k":1,"\u212a":2}`, err: strictjson.ErrDuplicateKey, path: "\u212a"},
		{name: "nested duplicate", in: `{"events":[{"type":"A"},{"type":"B","metadata":{"actor":"a","Actor":"b"}}]}`, err: strictjson.ErrDuplicateKey, path: "events[1].metadata.Actor"},
		{name: "duplicate among many keys", in: manyKeys(40, "k7"), err: strictjson.ErrDuplicateKey, path: "k7"},
		{name: "many distinct keys", in: manyKeys(40, "")},
		{name: "lone high surrogate", in: `{"name":"\ud800"}`, err: strictjson.ErrLoneSurrogate, path: "name"},
		{name: "lone low surrogate", in: `{"name":"x\udc00"}`, err: strictjson.ErrLoneSurrogate, path: "name"},
		{name: "high surrogate then a letter", in: `["\ud800\u0041"]`, err: strictjson.ErrLoneSurrogate, path: "[0]"},
		{name: "surrogate in a key", in: `{"\udbff":1}`, err: strictjson.ErrLoneSurrogate},
		{name: "high surrogate at the end", in: `"\ud800"`, err: strictjson.ErrLoneSurrogate},
		{name: "invalid UTF-8", in: "{\"name\":\"\xff\"}", err: strictjson.ErrInvalidUTF8, path: "name"},
		{name: "encoded surrogate bytes", in: "\"\xed\xa0\x80\"", err: strictjson.ErrInvalidUTF8},
		{name: "truncated", in: `{"a":`, err: strictjson.ErrSyntax},
		{name: "trailing data", in: `{} {}`, err: strictjson.ErrSyntax},
		{name: "bare word", in: `nul`, err: strictjson.ErrSyntax},
		{name: "leading zero", in: `01`, err: strictjson.ErrSyntax},
		{name: "raw control character", in: "\"a\x01\"", err: strictjson.ErrSyntax},
		{name: "empty", in: ``, err: strictjson.ErrSyntax},
		{name: "trailing comma", in: `[1,]`, err: strictjson.ErrSyntax},
		{name: "missing colon", in: `{"a" 1}`, err: strictjson.ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := strictjson.Check([]byte(tc.in))
			if tc.err == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			var se *strictjson.Error
			if !errors.As(err, &se) {
				t.Fatalf("%T is no *strictjson.Error", err)
			}
			if tc.path != "" && se.Path != tc.path {
				t.Errorf("path %q, want %q", se.Path, tc.path)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q lacks %q", err, tc.msg)
			}
		})
	}
}

// manyKeys is an object of n keys k0..k(n-1), then dup again when set.
func manyKeys(n int, dup string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	if dup != "" {
		fmt.Fprintf(&b, `%q:0,`, dup)
	}
	return strings.TrimSuffix(b.String(), ",") + "}"
}

// TestMessageNeutralizesInput: a key with bidi or control characters is
// quoted escaped in the message.
func TestMessageNeutralizesInput(t *testing.T) {
	err := strictjson.Check([]byte(`{"a\u202eb":1,"A\u202eB":2}`))
	if err == nil || strings.ContainsRune(err.Error(), '\u202e') || !strings.Contains(err.Error(), `\u202e`) {
		t.Fatalf("message %q", err)
	}
}

// FuzzCheck holds Check to encoding/json: what Check accepts is valid
// JSON, and decodes into generic values whose objects have as many
// members as the input has keys — no key was lost to "last wins" — and
// whose strings hold no U+FFFD the input did not spell.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"expectedVersion":0,"expectedVersion":"any"}`, `{"a":1,"A":2}`, `"\ud800"`, `"\ud83d\ude42"`,
		`{"events":[{"type":"NoteAdded","data":{"body":"x"}}]}`, manyKeys(20, ""), `[[[[{"a":[1,2,{"b":null}]}]]]]`,
		"\"\xff\"", `{"k":1,"\u212a":2}`, `1e5`, `-0.0`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := strictjson.Check(b)
		valid := json.Valid(b)
		if err == nil && !valid {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if errors.Is(err, strictjson.ErrSyntax) && valid {
			t.Fatalf("syntax error on valid JSON %q: %v", b, err)
		}
		if err != nil {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if derr := dec.Decode(&v); derr != nil {
			t.Fatalf("accepted, but encoding/json fails: %v", derr)
		}
		if got, want := countKeys(v), tokenKeys(b); got != want {
			t.Fatalf("%d keys decoded, %d in the input: one was lost to another", got, want)
		}
		if strings.Contains(fmt.Sprint(v), "\uFFFD") && !bytes.Contains(b, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(b), []byte(`\ufffd`)) {
			t.Fatalf("accepted input decodes to U+FFFD: %q", b)
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted invalid UTF-8 %q", b)
		}
	})
}

func countKeys(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, e := range v {
			n += countKeys(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			n += countKeys(e)
		}
		return n
	}
	return 0
}

// tokenKeys counts the object keys of b as encoding/json's tokenizer
// sees them, duplicates included.
func tokenKeys(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	type level struct{ object, wantKey bool }
	var stack []level
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].object && stack[top].wantKey {
			if _, ok := tok.(string); ok {
				n++
				stack[top].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, level{object: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, level{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
		}
		// A value ended: the enclosing object wants a key again.
		if top = len(stack) - 1; top >= 0 && stack[top].object {
			stack[top].wantKey = true
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"expectedVersion":"any","events":[`)
	for i := range 100 {
		if i > 0 {
			body.WriteString(",")
		}
		fmt.Fprintf(&body, `{"id":"0f8c7d2e-3b4a-4c5d-9e6f-7a8b9c0d1e%02x","type":"PurchaseCompleted","data":{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":10000,"currency":"EUR","lines":[{"sku":"SNK-42","quantity":1,"unitAmount":10000}]},"metadata":{"occurredAt":"2026-01-02T10:00:00Z","actor":"user:marta","channel":"web","correlationId":"Zoë ✉"}}`, i)
	}
	body.WriteString("]}")
	in := []byte(body.String())
	b.Run("Check", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if err := strictjson.Check(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Token", func(b *testing.B) {
		// The alternative: walking encoding/json's tokens (keys not even
		// compared), for the record.
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			dec := json.NewDecoder(bytes.NewReader(in))
			for {
				if _, err := dec.Token(); err != nil {
					break
				}
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := json.Unmarshal(in, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
