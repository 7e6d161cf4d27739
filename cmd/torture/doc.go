// Package torture holds the crash-torture test of the cxledger server; it
// has no code outside its tests.
//
// TestCrashTorture builds cmd/cxledger once, then, for the embedded store
// and for PostgreSQL, runs `cxledger serve` as a child process, drives it
// through the Go client with concurrent appenders that retry every request
// with the same event ids until it is acknowledged, and SIGKILLs the
// server at random moments while it serves and, on about one launch in
// five, during start-up, restarting it on the same data each time. After a last clean restart and shutdown
// it checks, against the store opened directly:
//
//   - every acknowledged event is stored exactly once, in its customer's
//     stream at the version its acknowledgement implies, at the position
//     the acknowledgement reported, and nothing unacknowledged is stored;
//   - every stream's versions run 0..n-1 without holes, and the global
//     log's positions strictly increase;
//   - every read model of projections/catalog, as the crashed and
//     restarted server left it, has the same state digest as a rebuild
//     from scratch (projections.Replay into a memory backend).
//
// The audit verification (tamper evidence) is not checked yet: that work
// has not landed.
//
// By default each backend takes 20 kills while serving (plus the start-up
// kills) and a few seconds of load; with -torture.long (or
// CXLEDGER_TORTURE_LONG=1) it takes 120. -torture.seed
// (or CXLEDGER_TORTURE_SEED) replays a schedule of kills and events; the
// seed in use is logged. -torture.race builds the server with the race
// detector. PostgreSQL is found as every database test finds it
// (eventstore/pgstore/pgtest): skipped loudly when unreachable, a failure
// under CI=true.
package torture
