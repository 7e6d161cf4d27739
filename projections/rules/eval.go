package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
)

// fields is an event's JSON, decoded.
type fields map[string]any

// IDPlaceholder is the placeholder of an id derived from the trigger
// event and the rule: {{$id}} gives the same uuid on every replay, for the
// emitted event's own ids (a bonus PointsEarned's earningId, a discount's
// id).
const IDPlaceholder = "$id"

// with returns f plus the trigger-derived id of rule r.
func (f fields) with(r Rule, trigger uuid.UUID) fields {
	out := make(fields, len(f)+1)
	maps.Copy(out, f)
	out[IDPlaceholder] = uuid.NewSHA1(trigger, []byte("cxledger/rules/"+r.Name)).String()
	return out
}

// fieldsOf decodes e's JSON.
func fieldsOf(e domain.Event) (fields, error) {
	_, _, data, err := domain.Encode(e)
	if err != nil {
		return nil, err
	}
	v, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// get returns the value at a dotted path, and whether it is there (not
// null).
func (f fields) get(path string) (any, bool) {
	var v any = map[string]any(f)
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, v != nil
}

// Matches reports whether every condition of r holds for the trigger e.
func (r Rule) Matches(e domain.Event) (bool, error) {
	if e == nil || e.EventType() != r.On {
		return false, nil
	}
	f, err := fieldsOf(e)
	if err != nil {
		return false, err
	}
	return r.matches(f), nil
}

func (r Rule) matches(f fields) bool {
	for _, c := range r.When {
		if !c.holds(f) {
			return false
		}
	}
	return true
}

func (c Condition) holds(f fields) bool {
	v, present := f.get(c.Field)
	switch c.Op {
	case "exists":
		return present == c.value.(bool)
	case "==":
		return equal(v, c.value)
	case "!=":
		return !equal(v, c.value)
	case "in":
		return slices.ContainsFunc(c.value.([]any), func(x any) bool { return equal(v, x) })
	}
	n := compare(v, c.value)
	switch c.Op {
	case ">":
		return n == 1
	case ">=":
		return n == 1 || n == 0
	case "<":
		return n == -1
	case "<=":
		return n == -1 || n == 0
	}
	return false
}

// rat reads a JSON number exactly.
func rat(v any) (*big.Rat, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, false
	}
	return new(big.Rat).SetString(string(n))
}

// equal compares two decoded JSON values, numbers by value.
func equal(a, b any) bool {
	if x, ok := rat(a); ok {
		y, ok := rat(b)
		return ok && x.Cmp(y) == 0
	}
	return reflect.DeepEqual(a, b)
}

// compare orders two numbers or two strings: -1, 0, 1, or 2 when they do
// not compare.
func compare(a, b any) int {
	if x, ok := rat(a); ok {
		if y, ok := rat(b); ok {
			return x.Cmp(y)
		}
		return 2
	}
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if !ok1 || !ok2 {
		return 2
	}
	return strings.Compare(x, y)
}

// Render returns the event r emits for the trigger e: the data template
// with e's fields substituted, parsed strictly as the emitted type.
func (r Rule) Render(e domain.Event) (domain.Event, error) {
	f, err := fieldsOf(e)
	if err != nil {
		return nil, err
	}
	return r.render(f)
}

func (r Rule) render(f fields) (domain.Event, error) {
	if r.Emit.tmpl == nil {
		return nil, errors.New("rule " + r.Name + " was not made by Parse")
	}
	v, err := substitute(r.Emit.tmpl, f)
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", r.Name, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	ev, err := domain.Parse(r.Emit.Type, data)
	if err != nil {
		return nil, fmt.Errorf("rule %s: emitted %s: %w", r.Name, r.Emit.Type, err)
	}
	return ev, nil
}

// substitute replaces the placeholders of the template v with f's values.
func substitute(v any, f fields) (any, error) {
	switch v := v.(type) {
	case string:
		if m := placeholder.FindStringSubmatch(v); m != nil && m[0] == v {
			x, ok := f.get(m[1])
			if !ok {
				return nil, fmt.Errorf("placeholder {{%s}}: the trigger has no value", m[1])
			}
			return x, nil
		}
		var bad error
		s := placeholder.ReplaceAllStringFunc(v, func(p string) string {
			path := placeholder.FindStringSubmatch(p)[1]
			x, ok := f.get(path)
			if !ok {
				bad = fmt.Errorf("placeholder {{%s}}: the trigger has no value", path)
				return ""
			}
			return text(x)
		})
		return s, bad
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, err := substitute(x, f)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			y, err := substitute(x, f)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	}
	return v, nil
}

// text is a value as it reads inside a string.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
