package script

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// maxCallDepth bounds JavaScript recursion, so that a runaway recursion
// fails with a RangeError instead of growing the Go stack until the budget
// ends it.
const maxCallDepth = 1024

// errBudget is the interrupt value of a call that ran past its budget.
var errBudget = errors.New("ran past its time budget")

// vm is one goja runtime with the script loaded: the sandboxed globals, the
// definition the script made, and the helpers Go calls through. A vm is
// not safe for concurrent use; its owner serialises calls with mu.
type vm struct {
	mu  sync.Mutex
	rt  *goja.Runtime
	def *definition

	parse, stringify goja.Callable
	budget           time.Duration // Limits.EventBudget
	stateBytes       int           // Limits.StateBytes

	// The watchdog: one timer reused for every call, ticking every
	// quarter of the budget while a call runs. armed is true while a
	// budgeted call runs; the timer interrupts the runtime only then
	// (checked under wmu), so an interrupt can never outlive its call.
	timer *time.Timer
	wmu   sync.Mutex
	armed bool
	ticks int
	tick  time.Duration
	start time.Time
	cpu0  time.Duration // the process's CPU time at the first tick
	cpuOK bool

	types map[string]goja.Value // interned event type names

	// broken is set when a Go panic unwound through the runtime: its
	// internal state is then unknown, and its owner makes a new one.
	broken bool
}

// definition is what the script declared through the API.
type definition struct {
	source      string // fromAll, fromStream, fromStreams, fromCategory
	streams     map[string]struct{}
	category    string
	partitionBy goja.Callable
	foreach     bool
	handlers    map[string]goja.Callable // event type or $any
	types       []string                 // the event types named in when, sorted
	any         bool
	init        goja.Callable
	created     goja.Callable
	transforms  []transform
}

type transform struct {
	filter bool
	fn     goja.Callable
}

// newVM makes a runtime with limits lim, hardens it, and runs prog's top
// level under the budget top.
func newVM(prog *goja.Program, lim Limits, top time.Duration) (v *vm, err error) {
	v = &vm{rt: goja.New(), budget: lim.EventBudget, stateBytes: lim.StateBytes, types: make(map[string]goja.Value)}
	v.rt.SetMaxCallStackSize(maxCallDepth)
	v.rt.SetFieldNameMapper(goja.TagFieldNameMapper("json", true))
	json := v.rt.Get("JSON").ToObject(v.rt)
	v.parse, _ = goja.AssertFunction(json.Get("parse"))
	v.stringify, _ = goja.AssertFunction(json.Get("stringify"))
	v.timer = time.AfterFunc(time.Hour, v.fire)
	v.timer.Stop()

	pre, err := preludeProgram()
	if err != nil {
		return nil, err
	}
	var defObj *goja.Object
	err = v.guard(top, func() error {
		f, err := v.rt.RunProgram(pre)
		if err != nil {
			return err
		}
		fn, _ := goja.AssertFunction(f)
		d, err := fn(goja.Undefined(), v.rt.GlobalObject())
		if err != nil {
			return err
		}
		defObj = d.ToObject(v.rt)
		_, err = v.rt.RunProgram(prog)
		return err
	})
	if err != nil {
		return nil, err
	}
	if v.def, err = v.readDefinition(defObj); err != nil {
		return nil, err
	}
	return v, nil
}

var (
	preOnce sync.Once
	preProg *goja.Program
	preErr  error
)

func preludeProgram() (*goja.Program, error) {
	preOnce.Do(func() { preProg, preErr = goja.Compile("prelude.js", prelude, false) })
	return preProg, preErr
}

// budgetTicks is how many watchdog ticks a call must outlast, besides
// its budget in wall time, before it is interrupted. One pause of the
// whole process (a garbage collection) delivers one late tick, not five.
// And from the first tick on, the process must also have used the rest
// of the budget in CPU time: on a machine so busy that the process barely
// runs, wall time says nothing about the script. A script that loops is
// stopped after about 1.25× its budget of CPU.
const budgetTicks = 5

// fire is the watchdog's timer function.
func (v *vm) fire() {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	if !v.armed {
		return
	}
	v.ticks++
	now, ok := cpuTime()
	if v.ticks == 1 {
		v.cpu0, v.cpuOK = now, ok
	}
	if v.ticks >= budgetTicks && time.Since(v.start) >= v.tick*4 &&
		(!v.cpuOK || !ok || now-v.cpu0 >= v.tick*3) {
		v.rt.Interrupt(errBudget)
		return
	}
	v.timer.Reset(v.tick)
}

// guard runs fn with the budget d, turning a panic inside goja or fn
// into an error: hostile input must not take the process down.
func (v *vm) guard(d time.Duration, fn func() error) (err error) {
	v.wmu.Lock()
	v.armed, v.ticks, v.tick, v.start = true, 0, max(d/4, time.Millisecond), time.Now()
	v.timer.Reset(v.tick)
	v.wmu.Unlock()
	defer func() {
		v.wmu.Lock()
		v.armed = false
		v.timer.Stop()
		v.wmu.Unlock()
		// An interrupt raised after the call returned but before armed
		// fell would hit the next call: clear it.
		v.rt.ClearInterrupt()
		if r := recover(); r != nil {
			v.broken = true
			err = fmt.Errorf("JavaScript engine failure: %v", r)
		}
	}()
	return fn()
}

// readDefinition turns the prelude's record into a definition, checking
// what a script must declare.
func (v *vm) readDefinition(o *goja.Object) (*definition, error) {
	d := &definition{source: o.Get("source").String(), handlers: make(map[string]goja.Callable)}
	if d.source == "" {
		return nil, &CompileError{Message: "the script names no source: start with fromAll(), fromStream(id), fromStreams([...]) or fromCategory(name)"}
	}
	var ids []string
	if err := v.rt.ExportTo(o.Get("streams"), &ids); err != nil {
		return nil, &CompileError{Message: "stream ids: " + err.Error()}
	}
	if len(ids) > 0 {
		d.streams = make(map[string]struct{}, len(ids))
		for _, id := range ids {
			d.streams[id] = struct{}{}
		}
	}
	d.category = o.Get("category").String()
	if fn, ok := goja.AssertFunction(o.Get("partitionBy")); ok {
		d.partitionBy = fn
	}
	d.foreach = o.Get("foreachStream").ToBoolean()
	hv := o.Get("handlers")
	if goja.IsNull(hv) || goja.IsUndefined(hv) {
		return nil, &CompileError{Message: "the script declares no handlers: add .when({ $init: () => ({}), $any: (s, e) => s })"}
	}
	ho := hv.ToObject(v.rt)
	for _, k := range ho.Keys() {
		fn, _ := goja.AssertFunction(ho.Get(k))
		switch {
		case k == "$init":
			d.init = fn
		case k == "$created":
			d.created = fn
		case k == "$deleted":
			// Never called: cxledger streams are never deleted.
		case k == "$any":
			d.any = true
			d.handlers[k] = fn
		case k == "$initShared":
			return nil, &CompileError{Message: "$initShared (bi-state projections) is not supported: keep shared figures in their own unpartitioned projection"}
		case strings.HasPrefix(k, "$"):
			return nil, &CompileError{Message: fmt.Sprintf("when(): unknown special handler %q (known: $init, $any, $created, $deleted)", k)}
		default:
			if !knownType(k) {
				return nil, &CompileError{Message: fmt.Sprintf("when(): %q is not a cxledger event type", k)}
			}
			d.handlers[k] = fn
			d.types = append(d.types, k)
		}
	}
	if len(d.handlers) == 0 {
		return nil, &CompileError{Message: "when() declares no event handler: name event types or $any"}
	}
	tv := o.Get("transforms").ToObject(v.rt)
	for i := int64(0); i < tv.Get("length").ToInteger(); i++ {
		t := tv.Get(fmt.Sprint(i)).ToObject(v.rt)
		fn, _ := goja.AssertFunction(t.Get("fn"))
		d.transforms = append(d.transforms, transform{filter: t.Get("kind").String() == "filter", fn: fn})
	}
	return d, nil
}

// typeName returns the JavaScript string of an event type, made once.
func (v *vm) typeName(t string) goja.Value {
	s, ok := v.types[t]
	if !ok {
		s = v.rt.ToValue(t)
		v.types[t] = s
	}
	return s
}
