// Package notary makes the global event log tamper-evident: a Merkle tree
// over every event in position order (RFC 6962, built with
// golang.org/x/mod/sumdb/tlog), signed checkpoints of that tree
// (golang.org/x/mod/sumdb/note, in the C2SP tlog-checkpoint text format),
// inclusion and consistency proofs, and a verifier that recomputes the tree
// from the events and names the first damaged position.
//
// # Leaves
//
// Leaf i of the tree is the i-th event of the global log in position order
// (leaf 0 is the event with the smallest position). Its hash is RFC 6962's
// leaf hash, SHA-256(0x00 || encoding), where encoding is the event's
// canonical encoding below (LeafHash; tlog.RecordHash). The global position
// is not part of it: a log copied to another backend, which numbers
// positions its own way, keeps the same tree.
//
// # Canonical encoding, version 1
//
// Three primitives, all big-endian:
//
//	u64(x)    8 bytes, unsigned
//	i64(x)    8 bytes, two's complement
//	bytes(b)  u64(len(b)), then the bytes of b
//	time(t)   i64(Unix seconds of t), then u64(microseconds within the second,
//	          0..999999); the zero time (no OccurredAt) is i64(-62135596800), u64(0)
//
// The encoding is the concatenation, in this order, of:
//
//	bytes("cxledger/event/v1")  the format tag (17 ASCII bytes)
//	16 bytes                    event id, the uuid's bytes in RFC 9562 order
//	bytes(stream)               UTF-8
//	u64(version)                0-based version within the stream
//	bytes(type)                 UTF-8
//	time(recorded at)
//	time(occurred at)           Metadata.OccurredAt
//	bytes(actor)
//	bytes(channel)
//	bytes(correlation id)
//	bytes(causation id)
//	i64(schema version)
//	bytes(data)                 the JSON payload, byte for byte as stored
//
// Every variable-length field carries its length and every other field has a
// fixed width, so two different events never share an encoding. Times are UTC
// microseconds in every backend, and every backend returns the data bytes it
// was given (PostgreSQL stores json, not jsonb), so the encoding of a stored
// event is the same whichever backend returns it. Encode writes it;
// TestGoldenLeaf pins it.
//
// # Stored hashes
//
// For fast proofs a backend keeps tlog's stored hashes (tlog.StoredHashes:
// about two per event) and which global position each leaf has. The
// HashStore interface says what the notary needs; boltstore (buckets in the
// same bbolt file), pgstore (tables made by a migration) and memstore
// implement it. The KurrentDB backend does not: it has no place of its own to
// keep them, and tamper evidence is not offered on it.
//
// The stored hashes are a cache: the events alone rebuild them, and Verify
// never trusts them before checking that they reproduce a signed root.
//
// # The notary
//
// A Notary follows the log (catch-up with ReadAll from where the stored
// hashes end, then live with Subscribe) and appends the new leaves' stored
// hashes. It is never on the append path: appends do not wait for it, and a
// notary that is behind only makes the next checkpoint wait (Sync).
//
// # Checkpoints
//
// A checkpoint says "the log's first Size events have Merkle root Hash", at
// Time, for the log named Origin. Its signed form is a note:
//
//	<origin>
//	<size, decimal>
//	<root hash, standard base64>
//	time <RFC 3339, UTC, microseconds>
//
//	— <key name> <base64 signature>
//
// Auditors keep signed checkpoints outside the system. Verify recomputes
// every leaf from the events against a checkpoint; CheckConsistency proves
// that a newer checkpoint extends an older one (a rewritten or forked log
// cannot); VerifyStream proves each event of one customer's stream included
// in a checkpoint. CheckInclusion and CheckConsistency are the pure checks an
// auditor's own tool needs, given a checkpoint, a proof and a leaf hash.
package notary
