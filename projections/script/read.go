package script

import (
	"context"
	"encoding/json"

	"github.com/cxledger/cxledger/projections"
)

// ReadState returns the state of one partition ("" for an unpartitioned
// program), or its result when the program transforms or filters it.
func ReadState(ctx context.Context, r projections.Reader, partition string) (json.RawMessage, bool, error) {
	return nil, false, errNotImplemented
}

// ListPartitions returns up to limit partitions whose key sorts after
// after, and the cursor for the next page ("" at the end).
func ListPartitions(ctx context.Context, r projections.Reader, after string, limit int) ([]Partition, string, error) {
	return nil, "", errNotImplemented
}

// Query runs p once over the log from position from through to (0: the
// head), in memory, writing nothing.
func Query(ctx context.Context, src Source, p *Program, from, to uint64, progress func(Progress)) (Result, error) {
	return Result{}, errNotImplemented
}
