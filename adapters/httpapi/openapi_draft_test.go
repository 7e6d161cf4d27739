package httpapi_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// module prefixes the import paths of this module's packages.
const module = "github.com/cxledger/cxledger/"

// goTypeName is how a schema's description names its Go type
// ("adapters/query.CustomerView").
func goTypeName(rt reflect.Type) string {
	return strings.TrimPrefix(rt.PkgPath(), module) + "." + rt.Name()
}

// schemaDrafter writes openapi.yaml component schemas for Go types, in the
// document's style: what TestOpenAPISchemasMatchGoTypes suggests for a
// served type the document lacks, to paste under components/schemas and
// edit (a name that clashes, a better description).
type schemaDrafter struct {
	// names maps a Go type (goTypeName) to its schema's name: those of
	// the document, and those drafted.
	names map[string]string
	queue []reflect.Type
	docs  map[string]map[string]string
}

// draft returns the schemas of rt and of the structs it reaches that
// have no schema yet.
func (d *schemaDrafter) draft(rt reflect.Type) string {
	var b strings.Builder
	d.ref(rt)
	for len(d.queue) > 0 {
		t := d.queue[0]
		d.queue = d.queue[1:]
		b.WriteString("    " + d.names[goTypeName(t)] + ":\n")
		b.WriteString("      description: |-\n")
		if doc := d.doc(t, ""); doc != "" {
			for _, l := range strings.Split(doc, "\n") {
				b.WriteString(strings.TrimRight("        "+l, " ") + "\n")
			}
			b.WriteString("\n")
		}
		b.WriteString("        Go type " + goTypeName(t) + ".\n")
		for _, l := range d.object(t) {
			b.WriteString("      " + l + "\n")
		}
	}
	return b.String()
}

// ref names rt's schema, queueing it for drafting when it has none.
func (d *schemaDrafter) ref(rt reflect.Type) string {
	name, ok := d.names[goTypeName(rt)]
	if !ok {
		name = rt.Name()
		d.names[goTypeName(rt)] = name
		d.queue = append(d.queue, rt)
	}
	return "$ref: '#/components/schemas/" + name + "'"
}

// object is the body of struct rt's schema.
func (d *schemaDrafter) object(rt reflect.Type) []string {
	out := []string{"type: object", "additionalProperties: false"}
	members := jsonMembers(rt)
	var required []string
	for _, m := range members {
		if !m.omitEmpty {
			required = append(required, "  - "+m.name)
		}
	}
	if len(required) > 0 {
		out = append(append(out, "required:"), required...)
	}
	if len(members) > 0 {
		out = append(out, "properties:")
	}
	for _, m := range members {
		out = append(out, "  "+m.name+":")
		t, nullable := m.typ, false
		if k := t.Kind(); !m.omitEmpty && (k == reflect.Pointer || k == reflect.Map || k == reflect.Slice) {
			nullable = true // nil encodes as null
		}
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		s := d.schema(t, nullable)
		var lines []string
		if doc := d.doc(m.owner, m.goName); doc != "" {
			lines = append(lines, "description: |-")
			for _, l := range strings.Split(doc, "\n") {
				lines = append(lines, strings.TrimRight("  "+l, " "))
			}
			if strings.HasPrefix(s[0], "$ref") {
				s = []string{"allOf:", "  - " + s[0]} // a $ref's siblings are ignored
			}
		}
		for _, l := range append(lines, s...) {
			out = append(out, "    "+l)
		}
	}
	return out
}

// schema is the schema of a value of type rt.
func (d *schemaDrafter) schema(rt reflect.Type, nullable bool) []string {
	withNull := func(s ...string) []string {
		if nullable {
			s = append(s, "nullable: true")
		}
		return s
	}
	switch rt {
	case timeType:
		return withNull("type: string", "format: date-time")
	case uuidType:
		return []string{"type: string", "format: uuid"}
	case hashType:
		return []string{"type: string", "format: byte"}
	case recordType:
		return []string{"$ref: '#/components/schemas/Record'"}
	case reflect.TypeOf(json.RawMessage{}):
		return []string{"description: any JSON"}
	}
	switch rt.Kind() {
	case reflect.Pointer:
		return d.schema(rt.Elem(), true)
	case reflect.String:
		return []string{"type: string"}
	case reflect.Bool:
		return []string{"type: boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32:
		return withNull("type: integer")
	case reflect.Int64:
		return withNull("type: integer", "format: int64")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return withNull("type: integer", "minimum: 0")
	case reflect.Uint64:
		return withNull("type: integer", "minimum: 0", "format: int64")
	case reflect.Float32, reflect.Float64:
		return withNull("type: number", "format: double")
	case reflect.Slice, reflect.Array:
		if rt.Elem().Kind() == reflect.Uint8 {
			return withNull("type: string", "format: byte")
		}
		s := []string{"type: array"}
		if rt.Kind() == reflect.Slice && nullable {
			s = append(s, "nullable: true")
		}
		s = append(s, "items:")
		for _, l := range d.schema(rt.Elem(), false) {
			s = append(s, "  "+l)
		}
		return s
	case reflect.Map:
		s := append(withNull("type: object"), "additionalProperties:")
		for _, l := range d.schema(rt.Elem(), false) {
			s = append(s, "  "+l)
		}
		return s
	case reflect.Struct:
		if rt.Name() == "" {
			return d.object(rt)
		}
		if nullable {
			return []string{"type: object", "nullable: true", "allOf:", "  - " + d.ref(rt)}
		}
		return []string{d.ref(rt)}
	}
	return []string{"description: TODO " + rt.String()}
}

// doc is the doc comment of rt's field goName ("": of rt itself), read
// from the package's source.
func (d *schemaDrafter) doc(rt reflect.Type, goName string) string {
	if !strings.HasPrefix(rt.PkgPath(), module) || rt.Name() == "" {
		return ""
	}
	key := goTypeName(rt)
	if d.docs == nil {
		d.docs = map[string]map[string]string{}
	}
	if m, ok := d.docs[key]; ok {
		return m[goName]
	}
	m := map[string]string{}
	d.docs[key] = m
	dir := filepath.Join("..", "..", filepath.FromSlash(strings.TrimPrefix(rt.PkgPath(), module)))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			continue
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok || ts.Name.Name != rt.Name() {
					continue
				}
				m[""] = strings.TrimSpace(ts.Doc.Text() + gd.Doc.Text())
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fl := range st.Fields.List {
					text := fl.Doc.Text()
					if text == "" {
						text = fl.Comment.Text()
					}
					for _, n := range fl.Names {
						m[n.Name] = strings.TrimSpace(text)
					}
				}
			}
		}
	}
	return m[goName]
}
