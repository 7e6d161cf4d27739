package notary

import "errors"

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrTampered: the events do not reproduce a checkpoint's root or the
	// stored tree: an event was altered, deleted, inserted or reordered
	// since. Verify's Report says where and what.
	ErrTampered = errors.New("event log does not match its Merkle tree")

	// ErrInconsistent: a proof failed: a newer checkpoint does not extend an
	// older one (the log was rewritten or forked between them), or a record
	// is not included in a checkpoint.
	ErrInconsistent = errors.New("proof failed: checkpoints or records are inconsistent")

	// ErrBadCheckpoint: a signed checkpoint is malformed, or not signed by
	// the expected key.
	ErrBadCheckpoint = errors.New("invalid checkpoint")

	// ErrHashesDamaged: the events reproduce the checkpoint, but the stored
	// hashes kept for proofs do not match them. The ledger is intact; the
	// stored hashes must be rebuilt from the events before proofs can be
	// trusted.
	ErrHashesDamaged = errors.New("stored Merkle hashes do not match the events")

	// ErrNotInTree: a proof was asked for a leaf the tree (or the stored
	// hashes) does not hold yet.
	ErrNotInTree = errors.New("not in the tree")
)
