package projections

import "context"

// Backend stores read models. Each projection generation lives in its own
// namespace: a sorted key/value space (keys compared as bytes, values JSON
// documents kept byte for byte) with a checkpoint. A read model's name
// points at the namespace serving its reads, so that a rebuild can fill a
// new namespace beside the live one and switch readers over atomically.
//
// Backends: boltrm (embedded, a sibling bbolt file), pgrm (tables in the
// events' PostgreSQL database), and Memory (tests).
type Backend interface {
	// Update runs fn in one write transaction on namespace ns, creating it
	// if needed. Everything fn writes, checkpoint included, commits together
	// or not at all. fn's Writer is valid only during the call. A
	// namespace's checkpoint never moves backwards: a transaction that
	// would leave it below where it started fails with
	// ErrCheckpointBackwards and commits nothing.
	Update(ctx context.Context, ns string, fn func(w Writer) error) error
	// Commit is the engine's fenced Update: fn's writes commit only if,
	// checked inside the same transaction, namespace ns exists (Commit
	// never creates one, so a dropped generation stays dropped) and was not
	// retired by an Activate of another namespace for its read model, its
	// checkpoint is still c.From, and c.Lease (unless zero) is still held.
	// Otherwise it fails with an error wrapping ErrFenced, fn's writes
	// discarded (fn may or may not have run).
	Commit(ctx context.Context, ns string, c Claim, fn func(w Writer) error) error
	// View runs fn on a consistent snapshot of namespace ns.
	View(ctx context.Context, ns string, fn func(r Reader) error) error
	// Checkpoint returns the last position committed into ns (0: none).
	Checkpoint(ctx context.Context, ns string) (uint64, error)
	// Active returns the namespace serving reads of the read model name,
	// or "" when there is none yet.
	Active(ctx context.Context, name string) (string, error)
	// Activate makes ns serve the reads of name, atomically: a reader sees
	// either the old namespace or the new one, never a mix. The namespace
	// name served before is retired in the same step: no Commit to it
	// succeeds after the switch.
	Activate(ctx context.Context, name, ns string) error
	// Switch moves the reads of name from namespace from ("" when none
	// is active) to namespace to, atomically and only if no reader would
	// see the read model go back in time: from is still the active one
	// (else an error wrapping ErrFenced: another process switched first)
	// and to's checkpoint is at least from's (else ErrNotCaughtUp: the
	// builder catches up further and tries again). Like Activate it retires
	// from, so that its owner's next Commit is fenced. While it runs,
	// Commits to from wait, so from's checkpoint cannot move past the
	// comparison.
	Switch(ctx context.Context, name, from, to string) error
	// Drop deletes namespace ns with its checkpoint. Dropping a namespace
	// that does not exist is not an error.
	Drop(ctx context.Context, ns string) error
	// Namespaces lists every namespace, in name order.
	Namespaces(ctx context.Context) ([]string, error)
	// Close releases the backend.
	Close() error
	// Leases grants the leases that fence Commit, across every process
	// sharing the backend.
	Leases
}

// Reader reads one namespace.
type Reader interface {
	// Get returns the value at key, and whether there is one.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Scan calls fn for each key that starts with prefix and sorts after
	// after ("" for the first), in byte order, until fn returns false or
	// an error. The value slice is valid only during the call.
	Scan(ctx context.Context, prefix, after string, fn func(key string, value []byte) (bool, error)) error
}

// Writer writes one namespace within a Backend.Update transaction.
type Writer interface {
	Reader
	// Put stores value (a JSON document) at key.
	Put(ctx context.Context, key string, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// SetCheckpoint records the last position this transaction applied.
	SetCheckpoint(ctx context.Context, position uint64) error
}
