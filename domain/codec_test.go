package domain

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	for typ, e := range validEvents() {
		t.Run(typ, func(t *testing.T) {
			gotType, version, data, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if gotType != typ {
				t.Errorf("type %s, want %s", gotType, typ)
			}
			if want, _ := SchemaVersion(typ); version != want || version < 1 {
				t.Errorf("schema version %d, want %d", version, want)
			}
			decoded, err := Decode(gotType, version, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(decoded, e) {
				t.Errorf("Decode = %#v\nwant %#v", decoded, e)
			}
			parsed, err := Parse(gotType, data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(parsed, e) {
				t.Errorf("Parse = %#v\nwant %#v", parsed, e)
			}
		})
	}
}

func TestEncodeJSONIsCamelCase(t *testing.T) {
	_, _, data, err := Encode(validEvents()[TypePurchaseCompleted])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"orderId":`, `"amount":12990`, `"currency":"EUR"`, `"unitAmount":8990`, `"sku":`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("%s missing from %s", key, data)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	if _, _, _, err := Encode(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode(nil) = %v, want ErrInvalid", err)
	}
	if _, _, _, err := Encode((*NoteAdded)(nil)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode(nil pointer) = %v, want ErrInvalid", err)
	}
	if _, _, _, err := Encode(NoteAdded{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode(invalid) = %v, want ErrInvalid", err)
	}
	if _, _, _, err := Encode(foreignEvent{}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("Encode(foreign) = %v, want ErrUnknownType", err)
	}
	// A pointer encodes like the value.
	typ, _, data, err := Encode(&NoteAdded{Body: "Rappeler lundi"})
	if err != nil || typ != TypeNoteAdded || string(data) != `{"body":"Rappeler lundi"}` {
		t.Errorf("Encode(&NoteAdded) = %s %s %v", typ, data, err)
	}
}

type foreignEvent struct{}

func (foreignEvent) EventType() string { return "SomethingElse" }
func (foreignEvent) Validate() error   { return nil }

func TestParse(t *testing.T) {
	tests := []struct {
		name, typ, data string
		field           string // field the error names; "-" means no field
		unknownType     bool
	}{
		{name: "unknown type", typ: "CustomerUpdated", data: `{}`, unknownType: true},
		{name: "empty type", typ: "", data: `{}`, unknownType: true},
		{name: "unknown field", typ: TypeNoteAdded, data: `{"body":"x","bdy":"y"}`, field: "bdy"},
		{name: "trailing object", typ: TypeNoteAdded, data: `{"body":"x"}{"body":"y"}`, field: "-"},
		{name: "trailing garbage", typ: TypeNoteAdded, data: `{"body":"x"} ]`, field: "-"},
		{name: "not an object", typ: TypeNoteAdded, data: `["x"]`, field: "-"},
		{name: "null", typ: TypeNoteAdded, data: `null`, field: "-"},
		{name: "empty", typ: TypeNoteAdded, data: ``, field: "-"},
		{name: "truncated", typ: TypeNoteAdded, data: `{"body":"x"`, field: "-"},
		{name: "wrong type", typ: TypeSurveyAnswered, data: `{"survey":"nps","nps":"9"}`, field: "nps"},
		{name: "float amount", typ: TypeRefundIssued, data: `{"refundId":"457583b2-585c-4972-abb0-3fb81e8c1e8a","orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":12.5,"currency":"EUR"}`, field: "amount"},
		{name: "nested wrong type", typ: TypePurchaseCompleted, data: `{"orderId":"44de0bb8-b9b6-42cb-b699-a1d767a2699c","amount":100,"currency":"EUR","lines":[{"sku":"A","quantity":"one","unitAmount":100}]}`, field: "lines.quantity"},
		{name: "bad uuid", typ: TypeTicketClosed, data: `{"ticketId":"73614f1c"}`, field: "ticketId"},
		{name: "uuid as number", typ: TypeTicketClosed, data: `{"ticketId":12}`, field: "ticketId"},
		{name: "fails validation", typ: TypeSurveyAnswered, data: `{"survey":"nps"}`, field: "nps"},
		{name: "invalid enum", typ: TypeCallLogged, data: `{"direction":"up","durationSeconds":1,"agent":"a","outcome":"busy"}`, field: "direction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.typ, []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse accepted %#v", e)
			}
			if tt.unknownType {
				var ute *UnknownTypeError
				if !errors.Is(err, ErrUnknownType) || !errors.As(err, &ute) || ute.Type != tt.typ {
					t.Fatalf("want ErrUnknownType naming %q, got %v", tt.typ, err)
				}
				if !strings.Contains(err.Error(), `"`+tt.typ+`"`) {
					t.Errorf("message %q does not name the type", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			if tt.field != "-" && ve.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", ve.Field, tt.field, err)
			}
		})
	}
}

func TestParseAcceptsWhitespace(t *testing.T) {
	e, err := Parse(TypeNoteAdded, []byte(" \n{\"body\":\"Client très satisfait\"}\n "))
	if err != nil || e != (NoteAdded{Body: "Client très satisfait"}) {
		t.Fatalf("Parse = %#v, %v", e, err)
	}
}

func TestDecodeIsLenientAboutHistory(t *testing.T) {
	// A field added by a newer release is ignored.
	e, err := Decode(TypeNoteAdded, 1, []byte(`{"body":"x","pinned":true}`))
	if err != nil || e != (NoteAdded{Body: "x"}) {
		t.Errorf("Decode with unknown field = %#v, %v", e, err)
	}
	// A rule tightened since the event was stored does not hide history.
	e, err = Decode(TypeNoteAdded, 1, []byte(`{"body":""}`))
	if err != nil || e != (NoteAdded{}) {
		t.Errorf("Decode of now-invalid history = %#v, %v", e, err)
	}
	// Version 0 (not recorded) reads as 1.
	if _, err := Decode(TypeNoteAdded, 0, []byte(`{"body":"x"}`)); err != nil {
		t.Errorf("Decode v0: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode("CustomerUpdated", 1, []byte(`{}`)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := Decode(TypeNoteAdded, 2, []byte(`{"body":"x"}`)); !errors.Is(err, ErrUnsupportedSchemaVersion) {
		t.Errorf("future version: %v", err)
	}
	if _, err := Decode(TypeNoteAdded, -1, []byte(`{"body":"x"}`)); !errors.Is(err, ErrUnsupportedSchemaVersion) {
		t.Errorf("negative version: %v", err)
	}
	if _, err := Decode(TypeNoteAdded, 1, []byte(`{"body":`)); err == nil {
		t.Error("malformed JSON decoded")
	}
	if _, err := SchemaVersion("Nope"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("SchemaVersion(unknown) = %v", err)
	}
}
