package projections

import "github.com/cxledger/cxledger/domain"

// Handles returns whether p folds events of a type: a type p.Types()
// lists or, when it lists none, any type of the domain's vocabulary (as
// the engine applies them). Other records of the log — the access log's
// AccessRecorded — are folded by no read model: the engine moves a
// checkpoint past them, and a status computed while no engine runs must
// not count them as lag.
func Handles(p Projection) func(typ string) bool {
	types := p.Types()
	if len(types) == 0 {
		types = domain.Types()
	}
	set := make(map[string]struct{}, len(types))
	for _, t := range types {
		set[t] = struct{}{}
	}
	return func(typ string) bool {
		_, ok := set[typ]
		return ok
	}
}
