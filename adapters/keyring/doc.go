// Package keyring erases customers by crypto-shredding (GDPR art. 17).
//
// Every personal value of an event (domain.PersonalFields: names,
// identifier values, addresses, e-mail and SMS parties and contents, free
// text) is sealed before it is stored, with a data key of its customer's
// own (AES-256-GCM). Forgetting the customer destroys that key: every copy
// of their personal data — in the log, its backups, the read models, a
// rebuild, an export made later — becomes unreadable at once, while the
// stored bytes of the events never change (hashes over them still verify)
// and everything that is not personal (ids, amounts, statuses, times)
// stays readable, so aggregates stay right.
//
// # Tokens
//
// A sealed value is a token, "enc:v1:<customer uuid>:<base64url>" (see
// Token), standing in the JSON string where the plaintext was. Sealing is
// deterministic (SIV-style: the GCM nonce is an HMAC of the plaintext under
// a key of its own), so the same event always seals to the same bytes — a
// retried append stays an idempotent retry, which the stores check byte
// for byte. The price is a known leak: two equal values of one customer
// have equal tokens (that Zoë's two e-mails went to the same address shows;
// what the address is does not). Tokens of different customers never
// compare equal: the customer is in the key and in the associated data.
//
// Read models keep tokens; the edges reveal them (Reveal, RevealJSON,
// RevealRecords): to plaintext while the key lives, to Erased ("[erased]")
// once it is destroyed. A token of another customer, a forged or damaged
// one, or one whose key this store never held is left as it is: it is
// ciphertext and says nothing.
//
// The identity index cannot key a token, and must not hold plaintext
// either: it opens the token in memory (Open) and keys the canonical value
// by its blind index (Blind: HMAC-SHA256 under a key derived from the
// master key). Customer ids derived from identifiers (broker ingest,
// imports) use a keyed hash too (CustomerID), so that nobody can find a
// customer's stream from a guessed address, with a generation that moves
// on past forgotten customers (DerivedCustomerIDs, which every such edge
// shares).
//
// # Keys
//
// A data key is 32 random bytes, wrapped (AES-256-GCM, bound to its
// customer) with a key derived from the master key, and kept in a Backend
// apart from the events: a bbolt file beside the embedded store
// (boltkeys), or a table of the PostgreSQL schema (pgkeys), or memory
// (tests). The master key comes from configuration and never reaches the
// backend; the backend keeps only its check value, so that a wrong master
// key fails at Open (ErrWrongMasterKey) instead of making every token
// unreadable. Forget replaces the wrapped key by a tombstone: the key is
// gone, and none is ever made again for that customer (sealing for them
// fails with ErrForgotten). Moving a ledger to another backend
// (adapters/migrate) copies the wrapped keys and tombstones as they are,
// between backends whose check values match.
//
// # Caching and other processes
//
// Unwrapped keys are cached in memory (Options.CacheSize customers, least
// recently used first out). A tombstone, once seen, is cached for good. A
// live key is trusted for Options.CacheTTL (default 5 s), then the backend
// is asked again: a Forget through this Keyring takes effect at once, one
// through another process sharing the backend (a `cxledger forget` against
// the PostgreSQL store a server uses) within the TTL. The read models drop
// the customer's personal data as they apply CustomerForgotten anyway;
// the TTL bounds only how long a reveal of a token may still succeed. The
// embedded key file is held by one process at a time, like the embedded
// store.
//
// # Not covered
//
// Events stored before a keyring was configured hold plaintext, and their
// bytes may not change: forgetting such a customer blanks the read models
// (CustomerForgotten) but cannot erase those events. What the file system,
// the disk, PostgreSQL's dead tuples and its write-ahead log keep of a
// destroyed wrapped key is outside a file's reach (see boltkeys and
// pgkeys); without the master key it is useless.
package keyring
