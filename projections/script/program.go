package script

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// MaxSourceBytes bounds a script's size (and with it how deep the parser
// can recurse on chains no bracket counts, such as "- - - - 1").
const MaxSourceBytes = 64 << 10

// minTopBudget is the least time a script's top level may run at Compile
// (it only declares the projection, but a tiny EventBudget should not make
// an honest script fail to load).
const minTopBudget = 200 * time.Millisecond

// Program is a compiled projection script: its source, partitioning and
// handlers. It is immutable and safe for concurrent use; every Projection
// and Query runs it in a runtime of its own.
type Program struct {
	name        string
	lim         Limits
	prog        *goja.Program
	source      string // fromAll, fromStream, fromStreams, fromCategory
	streams     map[string]struct{}
	category    string
	partitioned bool
	any         bool
	types       []string // event types named in when, sorted
	typeSet     map[string]struct{}
	transformed bool

	mu    sync.Mutex
	spare *vm // the runtime Compile made, for the first Projection
}

// refusedCall finds calls of the KurrentDB functions that write events, so
// that a script using them is refused when it is registered rather than
// when the handler first runs. A method of the same name (x.emit(...)) is
// the script's own and passes.
var refusedCall = regexp.MustCompile(`(^|[^.\w$])(emit|linkTo|copyTo|linkStreamTo|outputTo)\s*\(`)

// Compile checks a KurrentDB-style projection script by running its top
// level once in a fresh sandbox (within the budget of max(4×EventBudget,
// 200ms)), and returns the projection it declares. Every refusal is a
// *CompileError; Compile does not panic or hang on any input.
func Compile(name, source string, lim Limits) (p *Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &CompileError{Message: fmt.Sprintf("JavaScript engine failure: %v", r)}
		}
	}()
	lim = lim.withDefaults()
	if len(source) > MaxSourceBytes {
		return nil, &CompileError{Message: fmt.Sprintf("script is %d bytes, over the limit of %d", len(source), MaxSourceBytes)}
	}
	if loc := refusedCall.FindStringSubmatchIndex(source); loc != nil {
		line, col := lineCol(source, loc[4])
		fn := source[loc[4]:loc[5]]
		return nil, &CompileError{Line: line, Column: col, Message: fn + "() is not supported: cxledger projections fold state and never write events or streams; read the state through the API or CLI instead"}
	}
	if line, col, deep := tooDeep(source); deep {
		return nil, &CompileError{Line: line, Column: col, Message: fmt.Sprintf("brackets nest deeper than %d", maxNesting)}
	}
	top := max(4*lim.EventBudget, minTopBudget)
	prog, err := parse(name, source, max(top, minParseTime))
	if err != nil {
		return nil, compileError(err)
	}
	v, err := newVM(prog, lim, top)
	if err != nil {
		return nil, compileError(err)
	}
	d := v.def
	p = &Program{
		name: name, lim: lim, prog: prog, spare: v,
		source: d.source, streams: d.streams, category: d.category,
		partitioned: d.partitionBy != nil || d.foreach,
		any:         d.any, types: slices.Sorted(slices.Values(d.types)),
		transformed: len(d.transforms) > 0,
	}
	p.typeSet = make(map[string]struct{}, len(p.types))
	for _, t := range p.types {
		p.typeSet[t] = struct{}{}
	}
	return p, nil
}

// maxNesting bounds how deep brackets may nest, counted naively over the
// whole source (strings and comments included): goja's parser recurses
// once per level, and a Go stack overflow cannot be recovered.
const maxNesting = 256

// minParseTime is the least time parsing and compiling may take before
// Compile gives up on a script.
const minParseTime = time.Second

// tooDeep reports whether brackets nest deeper than maxNesting, and where.
func tooDeep(src string) (line, col int, deep bool) {
	depth := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '(', '[', '{':
			depth++
			if depth > maxNesting {
				line, col = lineCol(src, i)
				return line, col, true
			}
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return 0, 0, false
}

// parse parses and compiles source within d. goja's parser cannot be
// interrupted: past d, Compile refuses the script and the parse finishes
// on its own in the background (bounded by MaxSourceBytes and maxNesting).
// Source maps are off, so a sourceMappingURL comment loads nothing.
func parse(name, source string, d time.Duration) (*goja.Program, error) {
	type result struct {
		prog *goja.Program
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: &CompileError{Message: fmt.Sprintf("JavaScript engine failure: %v", p)}}
			}
			done <- r
		}()
		ast, err := parser.ParseFile(nil, name+".js", source, 0, parser.WithDisableSourceMaps)
		if err != nil {
			r.err = err
			return
		}
		r.prog, r.err = goja.CompileAST(ast, false)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-done:
		return r.prog, r.err
	case <-t.C:
		return nil, &CompileError{Message: fmt.Sprintf("the script took longer than %s to parse", d)}
	}
}

// Name returns the name the program was compiled under.
func (p *Program) Name() string { return p.name }

// Partitioned reports whether the program keeps one state per partition
// (partitionBy or foreachStream).
func (p *Program) Partitioned() bool { return p.partitioned }

// Handles reports whether the program's handlers see events of type typ
// ($any: every cxledger event type). It says nothing of the source: an
// event of a handled type on another stream is still skipped.
func (p *Program) Handles(typ string) bool {
	if p.any {
		return knownType(typ)
	}
	_, ok := p.typeSet[typ]
	return ok
}

// Types returns the event types the program handles: nil for $any (every
// type), else those named in when, sorted.
func (p *Program) Types() []string {
	if p.any {
		return nil
	}
	return slices.Clone(p.types)
}

// Category returns the stream category of a stream name: the part before
// the first "-". Every cxledger stream is "customer-<uuid>"
// (domain.StreamID), so its category is "customer".
func Category(stream string) string {
	c, _, _ := strings.Cut(stream, "-")
	return c
}

// reads reports whether the program's source includes stream.
func (p *Program) reads(stream string) bool {
	switch p.source {
	case "fromStream", "fromStreams":
		_, ok := p.streams[stream]
		return ok
	case "fromCategory":
		return Category(stream) == p.category
	}
	return true
}

// newVM returns a runtime for the program: the one Compile made, the
// first time, then a new one.
func (p *Program) newVM() (*vm, error) {
	p.mu.Lock()
	v := p.spare
	p.spare = nil
	p.mu.Unlock()
	if v != nil {
		return v, nil
	}
	v, err := newVM(p.prog, p.lim, max(4*p.lim.EventBudget, minTopBudget))
	if err != nil {
		return nil, fmt.Errorf("script %s: load: %w", p.name, compileError(err))
	}
	return v, nil
}

var domainTypes = func() map[string]struct{} {
	m := make(map[string]struct{})
	for _, t := range domain.Types() {
		m[t] = struct{}{}
	}
	return m
}()

func knownType(t string) bool {
	_, ok := domainTypes[t]
	return ok
}

// compileError turns what goja reports about a script's top level into a
// *CompileError with the script's line and column where known.
func compileError(err error) error {
	var ce *CompileError
	if errors.As(err, &ce) {
		return ce
	}
	var pl parser.ErrorList
	if errors.As(err, &pl) && len(pl) > 0 {
		return &CompileError{Line: pl[0].Position.Line, Column: pl[0].Position.Column, Message: "syntax error: " + pl[0].Message}
	}
	var pe *parser.Error
	if errors.As(err, &pe) {
		return &CompileError{Line: pe.Position.Line, Column: pe.Position.Column, Message: "syntax error: " + pe.Message}
	}
	var se *goja.CompilerSyntaxError
	if errors.As(err, &se) {
		c := &CompileError{Message: "syntax error: " + se.Message}
		if se.File != nil {
			pos := se.File.Position(se.Offset)
			c.Line, c.Column = pos.Line, pos.Column
		}
		return c
	}
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		return &CompileError{Message: "the script's top level ran past its time budget (it should only declare the projection)"}
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		c := &CompileError{Message: "the script's top level threw: " + exceptionMessage(ex)}
		for _, f := range ex.Stack() {
			if f.SrcName() != "prelude.js" && f.SrcName() != "<native>" {
				pos := f.Position()
				c.Line, c.Column = pos.Line, pos.Column
				break
			}
		}
		return c
	}
	return &CompileError{Message: err.Error()}
}

// lineCol returns the 1-based line and column of byte offset off in s.
func lineCol(s string, off int) (int, int) {
	line := 1 + strings.Count(s[:off], "\n")
	return line, off - strings.LastIndex(s[:off], "\n")
}

// Projection returns the program as a read model for the engine
// (projections.Engine.Register). Its state is stored under "state"
// (unpartitioned) or "p/<partition>"; with transformBy or filterBy the
// result is stored beside it under "out" or "o/<partition>". Apply fails
// with a *ScriptError when the script does.
func (p *Program) Projection(version int) projections.Projection {
	return &projection{prog: p, version: version}
}

var _ projections.Projection = (*projection)(nil)
