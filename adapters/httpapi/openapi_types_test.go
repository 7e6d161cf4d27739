package httpapi_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/adapters/analyst"
	auditlog "github.com/cxledger/cxledger/adapters/audit"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/adapters/query"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections/analytics"
	"github.com/cxledger/cxledger/projections/attribution"
	"github.com/cxledger/cxledger/projections/recommend"
	"github.com/cxledger/cxledger/projections/timeline"
)

// servedTypes are the Go types the handlers encode as answers; the
// structs they reach are compared with openapi.yaml's schemas. A handler
// that answers with a new type adds it here.
var servedTypes = []any{
	httpapi.AppendResponse{}, httpapi.EventsPage{}, httpapi.ForgetResponse{}, httpapi.Problem{},
	httpapi.ProjectionStatus{}, httpapi.TreeHead{}, httpapi.InclusionProof{}, httpapi.ConsistencyProof{},
	query.CustomerView{}, query.SearchPage{}, query.BoardPage{}, query.AsOfView{}, query.PipelineReport{}, query.AsOfPipeline{}, query.RFMReport{},
	timeline.Result{}, analytics.Score{}, analytics.Fit{}, analytics.NPSReport{}, analytics.ChannelMixReport{},
	analytics.PrioritySLA{}, recommend.Recommendations{}, attribution.Report{}, access.Page{}, auditlog.Timeline{},
	httpapi.Whoami{}, httpapi.ProjectionDetail{}, httpapi.StateOut{}, analyst.Definition{}, analyst.ResultJSON{},
	httpapi.MergeResponse{}, query.DuplicatesPage{},
	eventstore.Metadata{}, // in every Record, whose MarshalJSON the schema Record follows by hand
}

// TestOpenAPISchemasMatchGoTypes compares every struct the API encodes
// with its schema in openapi.yaml (found by the "Go type …" that ends its
// description): the same members, the members always encoded (no
// omitempty) required, and each member's JSON type. The real answers of
// TestOpenAPIResponses cannot show a member the seeded data leaves empty
// and so omits; this can.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := loadSpec(t)
	byGoType := map[string]*openapi3.Schema{}
	names := map[string]string{} // Go type → schema name
	for name, s := range doc.Components.Schemas {
		lines := strings.Split(s.Value.Description, "\n")
		if d, ok := strings.CutPrefix(lines[len(lines)-1], "Go type "); ok {
			if d, ok = strings.CutSuffix(d, "."); ok {
				byGoType[d] = s.Value
				names[d] = name
			}
		}
	}
	checked := map[string]bool{}
	var check func(rt reflect.Type)
	check = func(rt reflect.Type) {
		goType := goTypeName(rt)
		if checked[goType] {
			return
		}
		checked[goType] = true
		s := byGoType[goType]
		if s == nil {
			drafter := &schemaDrafter{names: maps.Clone(names)}
			t.Errorf("no schema in openapi.yaml describes Go type %s (its description ends with the line \"Go type %s.\"); a draft to paste under components/schemas:\n%s",
				goType, goType, drafter.draft(rt))
			return
		}
		members := jsonMembers(rt)
		var names, required []string
		for _, m := range members {
			names = append(names, m.name)
			if !m.omitEmpty {
				required = append(required, m.name)
			}
			ps := s.Properties[m.name]
			if ps == nil {
				t.Errorf("%s: member %s is not in its schema", goType, m.name)
				continue
			}
			if want := jsonType(m.typ); want != "" && !ps.Value.Type.Is(want) && !(want == openapi3.TypeObject && len(ps.Value.AllOf) > 0) {
				t.Errorf("%s.%s: schema type %v, the Go type %s encodes as %s", goType, m.name, ps.Value.Type, m.typ, want)
			}
			nilable := slices.Contains([]reflect.Kind{reflect.Pointer, reflect.Slice, reflect.Map}, m.typ.Kind())
			if nilable && !m.omitEmpty && !ps.Value.Nullable && m.typ != reflect.TypeOf(json.RawMessage{}) && m.typ.Elem().Kind() != reflect.Uint8 {
				t.Errorf("%s.%s: a nil %s encodes as null, which the schema does not allow (nullable)", goType, m.name, m.typ)
			}
			for _, inner := range structsIn(m.typ) {
				check(inner)
			}
		}
		for p := range s.Properties {
			if !slices.Contains(names, p) {
				t.Errorf("%s: schema property %s is no member of the Go type", goType, p)
			}
		}
		slices.Sort(required)
		have := slices.Sorted(slices.Values(s.Required))
		if !slices.Equal(required, have) {
			t.Errorf("%s: required %v, the members always encoded are %v", goType, have, required)
		}
		if s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
			t.Errorf("%s: additionalProperties must be false, so that an undocumented member fails validation", goType)
		}
	}
	for _, v := range servedTypes {
		check(reflect.TypeOf(v))
	}
	for goType := range byGoType {
		if !checked[goType] && !strings.HasPrefix(goType, "eventstore.Record,") {
			t.Errorf("schema of Go type %s: no served type reaches it (stale, or add its type to servedTypes)", goType)
		}
	}
}

type jsonMember struct {
	name      string
	typ       reflect.Type
	omitEmpty bool
	// goName is the Go field's name and owner the struct declaring it.
	goName string
	owner  reflect.Type
}

// jsonMembers lists the members encoding/json writes for struct type rt:
// embedded structs' members promoted unless a shallower one has the name.
func jsonMembers(rt reflect.Type) []jsonMember {
	var out []jsonMember
	var embedded []jsonMember
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			embedded = append(embedded, jsonMembers(ft)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonMember{name, f.Type, strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero"), f.Name, rt})
	}
	for _, e := range embedded {
		if !slices.ContainsFunc(out, func(m jsonMember) bool { return m.name == e.name }) {
			out = append(out, e)
		}
	}
	return out
}

var (
	timeType   = reflect.TypeOf(time.Time{})
	uuidType   = reflect.TypeOf(uuid.UUID{})
	hashType   = reflect.TypeOf(tlog.Hash{})
	recordType = reflect.TypeOf(eventstore.Record{})
	rawType    = reflect.TypeOf(json.RawMessage{})
)

// jsonType is the JSON type rt encodes as ("" when any).
func jsonType(rt reflect.Type) string {
	switch rt {
	case timeType, uuidType, hashType:
		return openapi3.TypeString
	case recordType:
		return "" // a $ref to Record, checked on its own
	case rawType:
		return "" // any JSON (an analyst script's state)
	}
	switch rt.Kind() {
	case reflect.Pointer:
		return jsonType(rt.Elem())
	case reflect.String:
		return openapi3.TypeString
	case reflect.Bool:
		return openapi3.TypeBoolean
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return openapi3.TypeInteger
	case reflect.Float32, reflect.Float64:
		return openapi3.TypeNumber
	case reflect.Slice, reflect.Array:
		if rt.Elem().Kind() == reflect.Uint8 {
			return openapi3.TypeString // base64
		}
		return openapi3.TypeArray
	case reflect.Map, reflect.Struct:
		return openapi3.TypeObject
	}
	return ""
}

// structsIn returns the named struct types rt holds (itself, or as the
// element of a pointer, slice or map) whose schema is their own.
func structsIn(rt reflect.Type) []reflect.Type {
	for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map || rt.Kind() == reflect.Array {
		rt = rt.Elem()
	}
	if rt.Kind() != reflect.Struct || rt.Name() == "" || rt == timeType || rt == uuidType || rt == hashType || rt == recordType {
		return nil
	}
	return []reflect.Type{rt}
}
