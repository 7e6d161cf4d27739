package domain

import (
	"reflect"
	"strings"
	"testing"
)

// Every event type decides about personal data: it lists its personal
// fields, or is declared without any. Each listed path names a string (or
// list of strings) field of the type's current schema.
func TestPersonalFieldsCoverEveryType(t *testing.T) {
	for _, typ := range Types() {
		fields, listed := personalFields[typ]
		switch {
		case listed && withoutPersonalData[typ]:
			t.Errorf("%s is declared both with and without personal data", typ)
		case !listed && !withoutPersonalData[typ]:
			t.Errorf("%s: declare its personal fields in personalFields, or add it to withoutPersonalData", typ)
		}
		version, _ := SchemaVersion(typ)
		e, err := Decode(typ, version, []byte(`{}`))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		rt := reflect.TypeOf(e)
		for _, path := range fields {
			name, array := strings.CutSuffix(path, "[]")
			f, ok := fieldByJSONName(rt, name)
			if !ok {
				t.Errorf("%s: personal field %q is not a field of %s", typ, path, rt.Name())
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if array {
				if ft.Kind() != reflect.Slice || ft.Elem().Kind() != reflect.String {
					t.Errorf("%s: %q is %s, not a list of strings", typ, path, f.Type)
				}
			} else if ft.Kind() != reflect.String {
				t.Errorf("%s: %q is %s, not a string", typ, path, f.Type)
			}
		}
	}
	if got := PersonalFields(TypeMeetingHeld); len(got) == 0 || &got[0] == &personalFields[TypeMeetingHeld][0] {
		t.Error("PersonalFields must return a copy")
	}
	if PersonalFields("NoSuchType") != nil || PersonalFields(TypePurchaseCompleted) != nil {
		t.Error("PersonalFields of a type without personal data must be nil")
	}
}

func fieldByJSONName(rt reflect.Type, name string) (reflect.StructField, bool) {
	for i := range rt.NumField() {
		f := rt.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func TestIsSealed(t *testing.T) {
	for s, want := range map[string]bool{
		"enc:v1:15cf8f44-2ec6-441c-9f2e-229a8d221eaf:AAAA": true,
		"enc:v1:":        true,
		" enc:v1:x":      false,
		"ENC:V1:x":       false,
		"zoe@example.fr": false,
	} {
		if IsSealed(s) != want {
			t.Errorf("IsSealed(%q) = %v", s, !want)
		}
	}
}

// The birthday is personal data wherever it is written.
func TestBirthdayIsPersonal(t *testing.T) {
	for _, typ := range []string{TypeCustomerRegistered, TypeProfileUpdated} {
		found := false
		for _, f := range PersonalFields(typ) {
			found = found || f == "birthday"
		}
		if !found {
			t.Errorf("%s: birthday is not a personal field", typ)
		}
	}
	if PersonalFields(TypeDiscountIssued) != nil || !withoutPersonalData[TypeDiscountIssued] {
		t.Error("DiscountIssued must be declared without personal data")
	}
}
