package domain

import (
	"bytes"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// FuzzParse feeds outside input to the strict decoder: it must never panic,
// every failure must be ErrInvalid or ErrUnknownType, and anything it
// accepts must encode and parse back to an equal event.
func FuzzParse(f *testing.F) {
	types := Types()
	sort.Strings(types)
	for _, typ := range types {
		_, _, data, err := Encode(validEvents()[typ])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(typ, data)
	}
	f.Add(TypeNoteAdded, []byte(`{"body":"x"} {}`))
	f.Add(TypeSurveyAnswered, []byte(`{"survey":"nps","nps":null}`))
	f.Add(TypeTicketUpdated, []byte(`{"ticketId":"73614f1c-77e4-43b3-9a90-542472fc6bc1","STATUS":"open"}`))
	f.Add(TypePurchaseCompleted, []byte(`{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":1e2,"currency":"EUR","lines":[{}]}`))
	f.Add("CustomerUpdated", []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, err := Parse(typ, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("Parse error %v is neither ErrInvalid nor ErrUnknownType", err)
			}
			return
		}
		if e.EventType() != typ {
			t.Fatalf("Parse(%q) returned a %s", typ, e.EventType())
		}
		typ2, version, data2, err := Encode(e)
		if err != nil {
			t.Fatalf("Encode of a parsed event: %v", err)
		}
		if typ2 != typ {
			t.Fatalf("Encode type %s, want %s", typ2, typ)
		}
		e2, err := Parse(typ2, data2)
		if err != nil {
			t.Fatalf("re-Parse of %s: %v", data2, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the event:\n%#v\n%#v", e, e2)
		}
		e3, err := Decode(typ2, version, data2)
		if err != nil || !reflect.DeepEqual(e, e3) {
			t.Fatalf("Decode of encoded event = %#v, %v", e3, err)
		}
		if _, _, data3, _ := Encode(e2); !bytes.Equal(data2, data3) {
			t.Fatalf("encoding not stable:\n%s\n%s", data2, data3)
		}
	})
}

// FuzzDecode: stored history may hold anything; Decode must not panic, even
// through upcasters.
func FuzzDecode(f *testing.F) {
	f.Add(TypePurchaseCompleted, 1, []byte(`{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":"129.90","currency":"EUR","lines":[{"sku":"A","quantity":1,"unitPrice":"129.90"}]}`))
	f.Add(TypeCallLogged, 1, []byte(`{"direction":"outbound","duration":"72:05","agent":"a","outcome":"connected"}`))
	f.Add(TypeNoteAdded, 0, []byte(`{"body":"x"}`))
	f.Fuzz(func(t *testing.T, typ string, version int, data []byte) {
		e, err := Decode(typ, version, data)
		if err == nil && e == nil {
			t.Fatal("nil event without error")
		}
		if e != nil {
			var c Customer
			c.Apply(e) // Apply is total
		}
	})
}

// FuzzNormalizeEmail: no panic; output is lower-case, trimmed, and a fixed
// point (normalising it again changes nothing).
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"Zoe.Nguyen@Example.fr", " a@b.co ", "JOSÉ@EXAMPLE.ES", "user@münchen.de", "a@@b", "İ@example.com", "\xff@x.y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeEmail(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if got != strings.ToLower(got) || got != strings.TrimSpace(got) || strings.Count(got, "@") != 1 {
			t.Fatalf("NormalizeEmail(%q) = %q, not normal", s, got)
		}
		again, err := NormalizeEmail(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeEmail(%q) = %q, %v; not a fixed point", got, again, err)
		}
	})
}

// FuzzNormalizePhone: no panic; output is "+" and 8 to 15 ASCII digits, and
// a fixed point.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+33 6 12 34 56 78", "0033612345678", "+1 (415) 555-0132", "06 12 34 56 78", "+", "00", "+0012345678", "+٣٣٦١٢٣٤٥٦٧٨"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizePhone(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if len(got) < 9 || len(got) > 16 || got[0] != '+' || got[1] == '0' || !allDigits(got[1:]) {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164", s, got)
		}
		again, err := NormalizePhone(got)
		if err != nil || again != got {
			t.Fatalf("NormalizePhone(%q) = %q, %v; not a fixed point", got, again, err)
		}
	})
}

// FuzzNormalizeExternalID: no panic; a fixed point.
func FuzzNormalizeExternalID(f *testing.F) {
	for _, s := range []string{"shopify:81723", " Shopify : 81723 ", "a:b:c", ":", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeExternalID(s)
		if err != nil {
			return
		}
		again, err := NormalizeExternalID(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeExternalID(%q) = %q, %v; not a fixed point", got, again, err)
		}
	})
}
