package script

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cxledger/cxledger/projections"
)

// Limits bound what one projection script may spend.
type Limits struct {
	// EventBudget is the time one event's calls (partitionBy, handlers,
	// encoding the state) may run before they are interrupted, counted
	// while the process gets CPU (see the package documentation); 0 means
	// DefaultEventBudget.
	EventBudget time.Duration
	// StateBytes is the largest JSON encoding one state (one partition's)
	// may have; 0 means DefaultStateBytes.
	StateBytes int
}

// Defaults for a zero Limits.
const (
	DefaultEventBudget = 50 * time.Millisecond
	DefaultStateBytes  = 1 << 20
)

func (l Limits) withDefaults() Limits {
	if l.EventBudget <= 0 {
		l.EventBudget = DefaultEventBudget
	}
	if l.StateBytes <= 0 {
		l.StateBytes = DefaultStateBytes
	}
	return l
}

// CompileError is a script the loader refuses: a syntax error, a top level
// that throws or runs too long, or a definition outside the language (no
// source, no handlers, emit, an unknown event type).
type CompileError struct {
	Line, Column int // 1-based; 0 when not known
	Message      string
}

func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("script: line %d, column %d: %s", e.Line, e.Column, e.Message)
	}
	return "script: " + e.Message
}

// ScriptError is a handler that failed on one event: it threw, ran past
// Limits.EventBudget, or left a state larger than Limits.StateBytes. It
// stops that projection at the event (the engine wraps it in a
// *projections.ProjectionError); nothing else stops.
type ScriptError struct {
	Position  uint64 // global position of the event
	EventID   string
	EventType string
	Message   string
	Stack     string // the JavaScript stack, when there is one
}

func (e *ScriptError) Error() string {
	s := fmt.Sprintf("script failed at position %d (event %s, %s): %s", e.Position, e.EventID, e.EventType, e.Message)
	if e.Stack != "" {
		s += "\n" + e.Stack
	}
	return s
}

// Partition is one partition's state (or result, see ReadState).
type Partition struct {
	Key   string
	State json.RawMessage
}

// Progress reports a Query's advance.
type Progress struct {
	Position, Head  uint64
	Events          int64
	EventsPerSecond float64
}

// Result is what a Query computed.
type Result struct {
	Partitioned bool
	State       json.RawMessage // unpartitioned programs
	Partitions  []Partition     // partitioned programs, sorted by key
}

// Source is what Query reads: the engine's source (every eventstore.Store
// is one).
type Source = projections.Source

// Keys of a projection's read model.
const (
	stateKey     = "state" // unpartitioned state
	partPrefix   = "p/"    // partitioned state, "p/<partition>"
	resultKey    = "out"   // unpartitioned result, when transformBy/filterBy is used
	resultPrefix = "o/"    // partitioned results, "o/<partition>"
	metaKey      = "meta"  // {"output":true} when results are stored apart
)
