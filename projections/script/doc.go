// Package script runs user-defined projections written in JavaScript, in
// the language of KurrentDB's user-defined projections, so that existing
// projections carry over. Scripts run in-process in goja (a JavaScript
// engine in Go, ES2015 and later: arrow functions, method shorthand,
// classes, spread), one runtime per projection, never shared between
// goroutines and never made per event.
//
// # The language
//
// A script declares one source, optionally a partitioning, its handlers,
// and optionally a chain that turns the state into the result:
//
//	fromCategory('customer')
//	    .foreachStream()
//	    .when({
//	        $init: () => ({ orders: 0, total: 0 }),
//	        PurchaseCompleted: (s, e) => { s.orders++; s.total += e.body.amount; }
//	    })
//	    .transformBy(s => ({ orders: s.orders, average: Math.round(s.total / s.orders) }))
//	    .outputState();
//
// Sources: fromAll() reads every event; fromStream(id) one stream;
// fromStreams([id, ...]) (or fromStreams(id, ...)) several; fromCategory(c)
// every stream of a category. A stream's category is the part of its name
// before the first "-", as in KurrentDB; cxledger names every stream
// "customer-<customer uuid>" (domain.StreamID), so fromCategory('customer')
// reads every customer's history and is equivalent to fromAll() for
// customer events. fromCategories is not supported.
//
// Partitioning: .partitionBy(e => key) keeps one state per key (String(key));
// a key of null, undefined or "" skips the event, and a key over 1024 bytes
// fails. .foreachStream() keeps one state per stream (the key is e.streamId).
//
// Handlers, in .when({...}): $init() returns the initial state (a fresh
// object when absent), called once per partition; an event-type handler
// (PurchaseCompleted(s, e)) is called for events of that type, and $any(s, e)
// for every other type. A handler that returns nothing (undefined) keeps the
// state it mutated; one that returns a value replaces the state with it.
// $created(s, e) is called after $init for a partition's first event. Event
// types must be cxledger's (domain.Types()); a misspelt one is refused.
//
// Results: .transformBy(s => r) and .filterBy(s => bool) chain, in order,
// from the state to the result that readers see: transformBy returning
// nothing gives null, filterBy returning a false value gives null. The
// state itself keeps folding. .outputState() is accepted (every state can be
// read; nothing is written to a stream). options({...}) and log(...) are
// accepted and do nothing.
//
// # The event object
//
// Handlers and partitionBy receive the event as KurrentDB hands it over:
// e.eventType, e.body (the parsed payload, also e.data), e.bodyRaw (its
// JSON text), e.streamId, e.sequenceNumber (0-based version in the stream),
// e.metadata (occurredAt, actor, channel, correlationId, causationId),
// e.partition (the partition key, "" when unpartitioned), e.isJson (true);
// plus cxledger's e.eventId, e.position (global position), e.occurredAt and
// e.recordedAt (RFC 3339 text in UTC with microseconds; new Date(e.occurredAt)
// reads it). The object is read-only, and the body is encoded and parsed
// only when a handler first reads it: a projection that looks only at the
// type or stream never pays for it.
//
// # Sandbox and limits
//
// A script has no I/O, no timers (setTimeout and friends are absent), no
// modules (no require), and cannot compile new code: eval, Function and the
// constructors reachable from functions throw. Time comes from events, so
// that every replay gives the same state: Date.now(), Date() and new Date()
// without arguments throw, as does Math.random(); new Date(e.occurredAt)
// and Date.UTC work.
//
// Limits.EventBudget (default 50ms) bounds the time spent on one event
// (partitionBy, handlers, and encoding the state with any toJSON it has);
// the runtime is interrupted when a call outlasts it by five watchdog ticks
// (about 1.25× the budget), so that one pause of the whole process is not
// taken for a slow script. Recursion deeper than 1024 calls fails.
// Limits.StateBytes (default 1 MiB) bounds one state's JSON: checked every
// 16th event of a partition (every event once it passes an eighth of the
// limit) and whenever it is written. A handler that throws, outlasts its
// budget or outgrows the limit fails with a *ScriptError naming the event
// (position, id, type) and the JavaScript stack; the engine stops that
// projection there (a *projections.ProjectionError wrapping it) while the
// process and the other projections carry on. Compile runs the script's top
// level once, under max(4×EventBudget, 200ms), in a fresh sandbox, and
// refuses with a *CompileError (line and column where known); it does not
// panic or hang on any input (FuzzCompile): scripts over 64 KiB or with
// brackets nested deeper than 256 are refused before parsing, and a parse
// that takes longer than a second is abandoned. What goja cannot bound is
// memory allocated within one event's budget (a string of a billion
// characters): scripts are trusted to the level of an analyst's query.
//
// # Storage
//
// States live in the read model through projections.Tx: "state" for an
// unpartitioned program, "p/<partition>" for a partitioned one; with a
// transformBy/filterBy chain the result is stored beside it under "out" or
// "o/<partition>" (and "meta" says so). Within a batch a state stays a live
// JavaScript value in the Tx cache and is encoded (JSON.stringify) once
// when the batch commits, so replay cost follows events, not state size,
// and memory follows the cache limit, not the log. ReadState and
// ListPartitions read states or results back; Query runs a program once
// over a range of the log in memory, writing nothing.
//
// # Personal data
//
// Event bodies reach scripts as stored: sealed personal values are tokens
// ("enc:v1:<customer>:..."), never plaintext, and scripts cannot decrypt
// them. Tokens a script copies into its state stay tokens in the read
// model; the adapters reveal them when the state is read (an erased
// customer's tokens read "[erased]"). Nothing decrypted is ever persisted
// in projection state, so crypto-shredding erases personal data from
// analysts' projections too.
//
// # Left out
//
// emit, linkTo, copyTo, linkStreamTo and outputTo (projections here never
// write events or streams: the script is refused at Compile, or fails when
// one is reached another way); bi-state projections ($initShared);
// $deleted (accepted, never called: cxledger streams are never deleted);
// fromCategories; link events and $-prefixed system streams (none exist);
// options() settings (accepted, ignored).
package script
