package script

import (
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/projections"
)

// Program is a compiled projection script: its sources, partitioning and
// handlers. It holds no runtime; each Projection and Query makes its own.
type Program struct {
	name   string
	source string
	lim    Limits
}

// Compile checks a KurrentDB-style projection script by running its top
// level once in a fresh sandbox, and returns the definition it made.
func Compile(name, source string, lim Limits) (*Program, error) {
	return &Program{name: name, source: source, lim: lim.withDefaults()}, nil
}

// Name returns the name the program was compiled under.
func (p *Program) Name() string { return p.name }

// Partitioned reports whether the program keeps one state per partition
// (partitionBy or foreachStream).
func (p *Program) Partitioned() bool { return false }

// Handles reports whether the program's handlers see events of type typ.
func (p *Program) Handles(typ string) bool { return false }

// Projection returns the program as a read model for the engine.
func (p *Program) Projection(version int) projections.Projection {
	return &projection{prog: p, version: version}
}

type projection struct {
	prog    *Program
	version int
}

func (j *projection) Name() string    { return j.prog.name }
func (j *projection) Version() int    { return j.version }
func (j *projection) Types() []string { return nil }
func (j *projection) Apply(tx *projections.Tx, e domain.Envelope) error {
	return errNotImplemented
}
