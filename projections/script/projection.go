package script

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// maxPartitionBytes bounds a partition key (it becomes a read-model key).
const maxPartitionBytes = 1024

// projection runs a Program as an engine read model. Its runtime is made
// on first use and kept: one per projection, never one per event. The
// engine may apply the same projection from two runners (a rebuild beside
// the live read model), so every call into the runtime holds vm.mu.
type projection struct {
	prog    *Program
	version int

	mu sync.Mutex // guards v
	v  *vm
}

func (j *projection) Name() string    { return j.prog.name }
func (j *projection) Version() int    { return j.version }
func (j *projection) Types() []string { return j.prog.Types() }

func (j *projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	if !j.prog.reads(e.Stream) || !j.prog.Handles(e.Type) {
		return nil
	}
	v, err := j.runtime()
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.apply(j.prog, tx, &e)
}

// runtime returns the projection's runtime, made on first use and made
// again after a Go panic broke it (the engine drops its cached states on
// the failure, so none refers to the old one).
func (j *projection) runtime() (*vm, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.v != nil && !j.v.isBroken() {
		return j.v, nil
	}
	v, err := j.prog.newVM()
	if err != nil {
		return nil, err
	}
	j.v = v
	return v, nil
}

func (v *vm) isBroken() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.broken
}

// stateBox is one state in the Tx cache: the live JavaScript value, so
// that a batch's events fold it without encoding it between them, or the
// stored JSON until a handler needs it. It is encoded once per batch,
// when the batch commits.
type stateBox struct {
	v       *vm
	val     goja.Value      // nil until parsed or initialised
	raw     json.RawMessage // as stored, until parsed
	last    eventRef        // the last event applied, for errors found when encoding
	touches int
	size    int // JSON size at the last check
}

type eventRef struct {
	pos uint64
	id  uuid.UUID // made text only for an error
	typ string
}

func (b *stateBox) UnmarshalJSON(data []byte) error {
	b.raw = append(json.RawMessage(nil), data...)
	return nil
}

func (b *stateBox) MarshalJSON() ([]byte, error) { return b.AppendJSON(nil) }

// AppendJSON encodes the state for the Tx without encoding/json's second
// pass over JSON.stringify's output (see asGoJSON).
func (b *stateBox) AppendJSON(dst []byte) ([]byte, error) {
	if b.val == nil {
		if b.raw == nil {
			return append(dst, "null"...), nil
		}
		return append(dst, b.raw...), nil
	}
	b.v.mu.Lock()
	defer b.v.mu.Unlock()
	out, err := b.v.encode(b.val, b.last)
	return append(dst, out...), err
}

// resultBox is the stored result of a transformed or filtered state,
// computed from the state when the batch commits.
type resultBox struct {
	state *stateBox
	raw   json.RawMessage
}

func (b *resultBox) UnmarshalJSON(data []byte) error {
	b.raw = append(json.RawMessage(nil), data...)
	return nil
}

func (b *resultBox) MarshalJSON() ([]byte, error) { return b.AppendJSON(nil) }

// AppendJSON encodes the result for the Tx, as stateBox.AppendJSON.
func (b *resultBox) AppendJSON(dst []byte) ([]byte, error) {
	if b.state == nil || b.state.val == nil {
		if b.raw == nil {
			return append(dst, "null"...), nil
		}
		return append(dst, b.raw...), nil
	}
	v := b.state.v
	v.mu.Lock()
	defer v.mu.Unlock()
	var out goja.Value
	if err := v.guard(v.budget, func() error {
		r, err := v.result(b.state.val)
		out = r
		return err
	}); err != nil {
		return nil, v.scriptError(err, b.state.last, "transformBy/filterBy")
	}
	enc, err := v.encode(out, b.state.last)
	return append(dst, enc...), err
}

// meta marks a read model whose results are stored apart from its states.
type meta struct {
	Output bool `json:"output"`
}

// goError carries a Go failure (reading the read model) through a guarded
// call, so that it is not reported as the script's.
type goError struct{ err error }

func (e goError) Error() string { return e.err.Error() }
func (e goError) Unwrap() error { return e.err }

// apply folds one event.
func (v *vm) apply(p *Program, tx *projections.Tx, env *domain.Envelope) error {
	d := v.def
	ev := &event{v: v, env: env}
	obj := v.rt.NewDynamicObject(ev)
	ref := eventRef{pos: env.Position, id: env.ID, typ: env.Type}
	stage := "partitionBy"
	err := v.guard(v.budget, func() error {
		key := stateKey
		switch {
		case d.partitionBy != nil:
			k, err := d.partitionBy(goja.Undefined(), obj)
			if err != nil {
				return err
			}
			if goja.IsUndefined(k) || goja.IsNull(k) {
				return nil // no partition: skipped, as in KurrentDB
			}
			ev.partition = k.String()
			if ev.partition == "" {
				return nil
			}
			if len(ev.partition) > maxPartitionBytes {
				return fmt.Errorf("returned a key of %d bytes, over the limit of %d", len(ev.partition), maxPartitionBytes)
			}
			key = partPrefix + ev.partition
		case d.foreach:
			ev.partition = env.Stream
			key = partPrefix + ev.partition
		}
		box, err := projections.Load[stateBox](tx, key)
		if err != nil {
			return goError{err}
		}
		box.v, box.last = v, ref
		stage = "$init"
		fresh := false
		if box.val == nil {
			if box.raw != nil {
				val, err := v.parse(goja.Undefined(), v.rt.ToValue(string(box.raw)))
				if err != nil {
					return err
				}
				box.val, box.raw = val, nil
			} else {
				fresh = true
				if d.init != nil {
					val, err := d.init(goja.Undefined())
					if err != nil {
						return err
					}
					box.val = val
				} else {
					box.val = v.rt.NewObject()
				}
			}
		}
		if fresh && d.created != nil {
			stage = "$created"
			r, err := d.created(goja.Undefined(), box.val, obj)
			if err != nil {
				return err
			}
			if !goja.IsUndefined(r) {
				box.val = r
			}
		}
		h, ok := d.handlers[env.Type]
		stage = env.Type
		if !ok {
			h, stage = d.handlers["$any"], "$any"
		}
		r, err := h(goja.Undefined(), box.val, obj)
		if err != nil {
			return err
		}
		if !goja.IsUndefined(r) {
			box.val = r // a handler that returns nothing keeps its mutated state
		}
		box.touches++
		if box.touches%16 == 1 || box.size > p.lim.StateBytes/8 {
			stage = "state size check"
			b, err := v.encodeRaw(box.val)
			if err != nil {
				return err
			}
			box.size = len(b)
			if box.size > p.lim.StateBytes {
				return stateTooLarge(box.size, p.lim.StateBytes)
			}
		}
		if p.transformed {
			rkey := resultKey
			if key != stateKey {
				rkey = resultPrefix + ev.partition
			}
			rb, err := projections.Load[resultBox](tx, rkey)
			if err != nil {
				return goError{err}
			}
			rb.state = box
			m, err := projections.Load[meta](tx, metaKey)
			if err != nil {
				return goError{err}
			}
			m.Output = true
		}
		return nil
	})
	if err == nil {
		return nil
	}
	var ge goError
	if errors.As(err, &ge) {
		return ge.err
	}
	return v.scriptError(err, ref, stage)
}

type sizeError struct{ size, limit int }

func (e *sizeError) Error() string {
	return fmt.Sprintf("state is %d bytes of JSON, over the limit of %d (Limits.StateBytes)", e.size, e.limit)
}

func stateTooLarge(size, limit int) error { return &sizeError{size, limit} }

// result applies the transformBy and filterBy chain to a state.
func (v *vm) result(state goja.Value) (goja.Value, error) {
	r := state
	for _, t := range v.def.transforms {
		out, err := t.fn(goja.Undefined(), r)
		if err != nil {
			return nil, err
		}
		if t.filter {
			if !out.ToBoolean() {
				return goja.Null(), nil
			}
			continue
		}
		if goja.IsUndefined(out) {
			return goja.Null(), nil // transformBy returning nothing gives a null result
		}
		r = out
	}
	return r, nil
}

// encodeRaw is JSON.stringify(val), as bytes; undefined encodes as null.
func (v *vm) encodeRaw(val goja.Value) ([]byte, error) {
	s, err := v.stringify(goja.Undefined(), val)
	if err != nil {
		return nil, err
	}
	if goja.IsUndefined(s) {
		return []byte("null"), nil
	}
	return asGoJSON([]byte(s.String()))
}

// asGoJSON makes JSON.stringify's output what encoding/json.Marshal gives
// for it (projections.JSONAppender's rule, so stored bytes do not depend
// on the encoder): both are compact, but Go escapes <, >, & and U+2028/9
// in strings. Most states have none of these, and pass unchanged.
func asGoJSON(b []byte) ([]byte, error) {
	if !bytes.ContainsAny(b, "<>&\u2028\u2029") {
		return b, nil
	}
	return json.Marshal(json.RawMessage(b))
}

// encode encodes a state or result when a batch commits, under the budget
// and the size limit (toJSON methods are the script's code too).
func (v *vm) encode(val goja.Value, last eventRef) ([]byte, error) {
	var b []byte
	err := v.guard(v.budget, func() error {
		var err error
		b, err = v.encodeRaw(val)
		if err == nil && len(b) > v.stateBytes {
			err = stateTooLarge(len(b), v.stateBytes)
		}
		return err
	})
	if err != nil {
		return nil, v.scriptError(err, last, "encoding the state")
	}
	return b, nil
}

// scriptError describes a failed call for the operator: what failed, at
// which event, and the JavaScript stack.
func (v *vm) scriptError(err error, at eventRef, stage string) *ScriptError {
	se := &ScriptError{Position: at.pos, EventID: at.id.String(), EventType: at.typ}
	var ie *goja.InterruptedError
	var ex *goja.Exception
	var sz *sizeError
	var so *goja.StackOverflowError
	switch {
	case errors.As(err, &so):
		se.Message = fmt.Sprintf("%s: recursion deeper than %d calls", stage, maxCallDepth)
		se.Stack = stackOf(so.Stack())
	case errors.As(err, &ie):
		se.Message = fmt.Sprintf("%s ran past its time budget of %s (Limits.EventBudget)", stage, v.budget)
		se.Stack = stackOf(ie.Stack())
	case errors.As(err, &ex):
		se.Message = stage + " threw: " + exceptionMessage(ex)
		se.Stack = stackOf(ex.Stack())
	case errors.As(err, &sz):
		se.Message = sz.Error()
	default:
		se.Message = stage + ": " + err.Error()
	}
	return se
}

// exceptionMessage is a thrown value as text: an Error's "Name: message",
// anything else as String() gives it.
func exceptionMessage(ex *goja.Exception) string {
	if ex.Value() == nil {
		return ex.Error()
	}
	return ex.Value().String()
}

func stackOf(frames []goja.StackFrame) string {
	var b strings.Builder
	for i := range frames {
		f := &frames[i]
		if f.SrcName() == "prelude.js" {
			continue
		}
		pos := f.Position()
		name := f.FuncName()
		if name == "" {
			name = "<anonymous>"
		}
		if f.SrcName() == "<native>" {
			fmt.Fprintf(&b, "\tat %s (native)\n", name)
			continue
		}
		fmt.Fprintf(&b, "\tat %s (%s:%d:%d)\n", name, f.SrcName(), pos.Line, pos.Column)
	}
	return b.String()
}

// timeText is how the event object shows a time: RFC 3339 in UTC with the
// store's microseconds, which new Date(text) reads back.
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
