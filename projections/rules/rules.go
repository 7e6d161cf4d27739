// Package rules runs declarative rules: reactors an operator writes as a
// JSON file instead of Go. A rule answers one event type, optionally only
// when conditions on the event's fields hold, by emitting one event, at
// once or after a delay that later events may cancel. The reactor.Reactor
// interface remains for anything richer.
//
// # Format
//
//		{"rules": [{
//		  "name":     "follow_up_purchase",
//		  "on":       "PurchaseCompleted",
//		  "when":     [{"field": "amount", "op": ">=", "value": 5000}],
//		  "after":    "72h",
//		  "cancelOn": ["RefundIssued"],
//		  "emit":     {"type": "NoteAdded", "data": {"body": "Follow up on order {{orderId}}"}}
//		}]}
//
//	  - name: lower-case letters, digits and underscores, starting with a
//	    letter, at most 25 bytes, unique in the file. The rule runs as the
//	    reactor "rule_<name>" (see Reactor): renaming a rule replays it.
//	  - on: the trigger's event type (domain.Types).
//	  - when: conditions on the trigger's JSON fields, all of which must
//	    hold. field is a field name, or a dotted path into nested objects
//	    ("address.country"). op is one of == != > >= < <= exists in. A
//	    missing field reads as null: == null holds, != "x" holds, ordering
//	    operators fail. == and != compare JSON values (numbers exactly, by
//	    value); > >= < <= compare two numbers, or two strings byte-wise
//	    (RFC 3339 times in UTC order that way); exists takes true or false
//	    (present and not null); in takes a non-empty array of values.
//	  - after: a Go duration ("90m", "72h"), from the trigger's occurred-at;
//	    absent or "0" emits at once. At most 5 years.
//	  - cancelOn: event types that cancel the customer's pending timer of
//	    this rule. A new trigger replaces a pending timer (it restarts).
//	  - key: a field of the trigger, and of every cancelOn type, that scopes
//	    the timer ("ticketId"): one pending timer per customer and key value,
//	    cancelled only by an event with the same value.
//	  - emit: the event type and its data. Every string of data may hold
//	    {{field}} placeholders (paths as in when) replaced by the trigger's
//	    values; a string that is exactly one placeholder takes the value
//	    itself, number or object, not its text. {{$id}} is a uuid derived
//	    from the trigger event and the rule, the same on every replay: the
//	    emitted event's own id where it has one (a bonus PointsEarned's
//	    earningId). The rendered data must make
//	    a valid event (domain.Parse), else the emission is skipped and
//	    logged. CustomerRegistered and CustomerForgotten cannot be emitted.
//
// Parse checks what it can before anything runs: unknown fields anywhere
// in a rule, unknown event types, fields of when, key and the
// placeholders that the trigger type does not have, data fields the
// emitted type does not have, operators and their values, durations,
// names. Data without placeholders is parsed as the event it makes.
//
// YAML is not supported: the standard library has no YAML parser and the
// project takes no dependency for it; JSON is what the API and the codec
// already speak, and a YAML file converts to it with any tool.
//
// # Consent
//
// A rule's reactor keeps no state but its timers, so it does not know the
// customer's consent. Its emissions go through the ledger's write path
// (ledger.ReactorAppender), which decides every event against the
// customer's history at the emission's occurred-at: a marketing message
// (domain.MarketingConsent) without the consent in force at that moment is
// refused with domain.ErrRejected, and the reactor engine logs and skips
// it. DryRun makes the same decision on the history it is given.
package rules

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cxledger/cxledger/domain"
)

// Rule is one declarative rule (see the package documentation).
type Rule struct {
	Name     string        `json:"name"`
	On       string        `json:"on"`
	When     []Condition   `json:"when,omitempty"`
	After    time.Duration `json:"-"`
	CancelOn []string      `json:"cancelOn,omitempty"`
	Key      string        `json:"key,omitempty"`
	Emit     Action        `json:"emit"`
}

// Condition is one test of a trigger field.
type Condition struct {
	Field string          `json:"field"`
	Op    string          `json:"op"`
	Value json.RawMessage `json:"value,omitempty"`

	value any // Value decoded
}

// String renders the condition as "field op value".
func (c Condition) String() string {
	if len(c.Value) == 0 {
		return c.Field + " " + c.Op
	}
	var b bytes.Buffer
	if err := json.Compact(&b, c.Value); err != nil {
		b.Write(c.Value)
	}
	return c.Field + " " + c.Op + " " + b.String()
}

// Action is the event a rule emits: its type and data template.
type Action struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`

	tmpl any // Data decoded
}

// MaxAfter is the longest delay a rule may have.
const MaxAfter = 5 * 365 * 24 * time.Hour

// Error is a problem with one rule of a file.
type Error struct {
	Rule  string // the rule's name, or "#<n>" (from 1) when it has none
	Field string // the rule's field at fault, e.g. "when[0].op"
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("rule %s: %s", e.Rule, e.Msg)
	}
	return fmt.Sprintf("rule %s: %s: %s", e.Rule, e.Field, e.Msg)
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,24}$`)

// ops are the condition operators.
var ops = []string{"==", "!=", ">", ">=", "<", "<=", "exists", "in"}

// unemittable are the event types a rule may not emit: a customer's
// registration and erasure are decisions for people, not configuration.
var unemittable = []string{domain.TypeCustomerRegistered, domain.TypeCustomerForgotten}

// Parse reads a rule file strictly: unknown fields, unknown types and
// invalid values are errors (*Error, naming the rule and field).
func Parse(data []byte) ([]Rule, error) {
	var file struct {
		Rules []json.RawMessage `json:"rules"`
	}
	if err := strictDecode(data, &file); err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	if file.Rules == nil {
		return nil, errors.New(`rules file: want {"rules": [...]}`)
	}
	rules := make([]Rule, 0, len(file.Rules))
	seen := make(map[string]bool)
	for i, raw := range file.Rules {
		r, err := parseRule(raw, i)
		if err != nil {
			return nil, err
		}
		if seen[r.Name] {
			return nil, &Error{Rule: quote(r.Name), Field: "name", Msg: "duplicate rule name"}
		}
		seen[r.Name] = true
		rules = append(rules, r)
	}
	return rules, nil
}

func quote(name string) string { return fmt.Sprintf("%q", name) }

// wire is a rule as written, After as text.
type wire struct {
	Name     string      `json:"name"`
	On       string      `json:"on"`
	When     []Condition `json:"when"`
	After    string      `json:"after"`
	CancelOn []string    `json:"cancelOn"`
	Key      string      `json:"key"`
	Emit     *struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"emit"`
}

func parseRule(raw json.RawMessage, i int) (Rule, error) {
	id := fmt.Sprintf("#%d", i+1)
	var named struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &named) == nil && named.Name != "" {
		id = quote(named.Name)
	}
	fail := func(field, format string, args ...any) (Rule, error) {
		return Rule{}, &Error{Rule: id, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	var w wire
	if err := strictDecode(raw, &w); err != nil {
		var uf unknownField
		if errors.As(err, &uf) {
			return fail(string(uf), "unknown field")
		}
		return fail("", "%v", err)
	}
	if !namePattern.MatchString(w.Name) {
		return fail("name", "%q: want lower-case letters, digits and underscores, starting with a letter, at most 25 bytes", w.Name)
	}
	r := Rule{Name: w.Name, On: w.On, When: w.When, CancelOn: w.CancelOn, Key: w.Key}
	on, err := eventType(w.On)
	if err != nil {
		return fail("on", "%v", err)
	}
	for j := range r.When {
		c := &r.When[j]
		field := fmt.Sprintf("when[%d]", j)
		if !hasPath(on, c.Field) {
			return fail(field+".field", "%s has no field %q", w.On, c.Field)
		}
		if err := c.compile(); err != nil {
			return fail(field, "%v", err)
		}
	}
	if w.After != "" {
		if r.After, err = time.ParseDuration(w.After); err != nil {
			return fail("after", "%q: want a Go duration such as \"90m\" or \"72h\"", w.After)
		}
		if r.After < 0 || r.After > MaxAfter {
			return fail("after", "%s: want 0 to %s", r.After, MaxAfter)
		}
	}
	if len(r.CancelOn) > 0 && r.After == 0 {
		return fail("cancelOn", "needs a delay (after): an immediate emission has nothing to cancel")
	}
	if r.Key != "" {
		if r.After == 0 {
			return fail("key", "needs a delay (after): it scopes the pending timer")
		}
		if !hasPath(on, r.Key) {
			return fail("key", "%s has no field %q", w.On, r.Key)
		}
	}
	for j, typ := range r.CancelOn {
		field := fmt.Sprintf("cancelOn[%d]", j)
		t, err := eventType(typ)
		if err != nil {
			return fail(field, "%v", err)
		}
		if typ == r.On || slices.Index(r.CancelOn, typ) != j {
			return fail(field, "%s is the trigger or listed twice", typ)
		}
		if r.Key != "" && !hasPath(t, r.Key) {
			return fail(field, "%s has no key field %q", typ, r.Key)
		}
	}
	if w.Emit == nil {
		return fail("emit", "required")
	}
	r.Emit = Action{Type: w.Emit.Type, Data: w.Emit.Data}
	emit, err := eventType(r.Emit.Type)
	if err != nil {
		return fail("emit.type", "%v", err)
	}
	if slices.Contains(unemittable, r.Emit.Type) {
		return fail("emit.type", "a rule cannot emit %s", r.Emit.Type)
	}
	if err := r.Emit.compile(on, emit); err != nil {
		return fail("emit.data", "%v", err)
	}
	return r, nil
}

// eventType is the Go type of event type typ.
func eventType(typ string) (reflect.Type, error) {
	v, err := domain.SchemaVersion(typ)
	if err != nil {
		return nil, fmt.Errorf("unknown event type %q", typ)
	}
	e, err := domain.Decode(typ, v, []byte("{}"))
	if err != nil {
		return nil, fmt.Errorf("event type %q: %v", typ, err)
	}
	return reflect.TypeOf(e), nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// hasPath reports whether the JSON of a t has the dotted field path.
func hasPath(t reflect.Type, path string) bool {
	if path == "" {
		return false
	}
	for part := range strings.SplitSeq(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler):
			return false // a leaf: nothing inside
		case t.Kind() == reflect.Map:
			t = t.Elem()
			continue
		case t.Kind() != reflect.Struct:
			return false
		}
		f, ok := jsonField(t, part)
		if !ok {
			return false
		}
		t = f
	}
	return true
}

// jsonField finds the field of struct t whose JSON name is name.
func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			if f.Anonymous {
				if ft, ok := jsonField(f.Type, name); ok {
					return ft, true
				}
				continue
			}
			tag = f.Name
		}
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

// compile checks the operator and decodes the value.
func (c *Condition) compile() error {
	if !slices.Contains(ops, c.Op) {
		return fmt.Errorf("op %q: want one of %s", c.Op, strings.Join(ops, " "))
	}
	if len(c.Value) == 0 {
		return fmt.Errorf("op %s needs a value", c.Op)
	}
	v, err := decodeJSON(c.Value)
	if err != nil {
		return fmt.Errorf("value: %v", err)
	}
	switch c.Op {
	case "exists":
		if _, ok := v.(bool); !ok {
			return errors.New("exists takes true or false")
		}
	case "in":
		if a, ok := v.([]any); !ok || len(a) == 0 {
			return errors.New("in takes a non-empty array")
		}
	case ">", ">=", "<", "<=":
		switch v.(type) {
		case json.Number, string:
		default:
			return fmt.Errorf("%s takes a number or a string", c.Op)
		}
	}
	c.value = v
	return nil
}

var placeholder = regexp.MustCompile(`\{\{\s*([^{}\s]*)\s*\}\}`)

// compile checks the data template against the trigger type on and the
// emitted type emit.
func (a *Action) compile(on, emit reflect.Type) error {
	if len(a.Data) == 0 {
		return errors.New("required (an object)")
	}
	v, err := decodeJSON(a.Data)
	if err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errors.New("want an object")
	}
	for k := range obj {
		if !hasPath(emit, k) {
			return fmt.Errorf("%s has no field %q", a.Type, k)
		}
	}
	var bad error
	placeholders := 0
	walkStrings(v, func(s string) {
		for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
			placeholders++
			if bad == nil && m[1] != IDPlaceholder && !hasPath(on, m[1]) {
				bad = fmt.Errorf("placeholder {{%s}}: the trigger has no such field", m[1])
			}
		}
	})
	if bad != nil {
		return bad
	}
	if placeholders == 0 {
		if _, err := domain.Parse(a.Type, a.Data); err != nil {
			return err
		}
	}
	a.tmpl = v
	return nil
}

func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, x := range v {
			walkStrings(x, fn)
		}
	case map[string]any:
		for _, x := range v {
			walkStrings(x, fn)
		}
	}
}

// unknownField is the name of a field strictDecode did not know.
type unknownField string

func (u unknownField) Error() string { return fmt.Sprintf("unknown field %q", string(u)) }

// strictDecode decodes one JSON value into v, refusing unknown fields and
// trailing data.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return unknownField(strings.Trim(name, `"`))
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// decodeJSON decodes one JSON value, numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}
