package script

// prelude runs before the user's script in every runtime. It hardens the
// global object (the sandbox) and defines the KurrentDB projection API,
// recording what the script declares in an object only Go holds: the
// function is called with the global object and returns that record.
const prelude = `(function (g) {
	"use strict";
	function refuse(what, why) {
		return function () { throw new Error(what + " is not available in cxledger projections: " + why); };
	}
	var noTime = "time comes from events (e.occurredAt, e.recordedAt), so that every replay gives the same state";

	// Sandbox. goja has no I/O, timers or modules of its own; what remains
	// to close is the clock, randomness and compiling new code.
	var RealDate = g.Date;
	RealDate.now = refuse("Date.now()", noTime);
	g.Date = new Proxy(RealDate, {
		apply: refuse("Date() called without new", noTime),
		construct: function (t, args, nt) {
			if (args.length === 0) { throw new Error("new Date() without arguments is not available in cxledger projections: " + noTime); }
			return Reflect.construct(t, args, nt);
		}
	});
	RealDate.prototype.constructor = g.Date;
	g.Math.random = refuse("Math.random()", "a projection must give the same state on every replay");
	var noEval = refuse("compiling code at run time (eval, Function)", "a projection is the script it was registered with");
	g.eval = noEval;
	var fnProtos = [Object.getPrototypeOf(function () {})];
	try { fnProtos.push(Object.getPrototypeOf(function* () {})); } catch (e) {}
	try { fnProtos.push(Object.getPrototypeOf(async function () {})); } catch (e) {}
	for (var i = 0; i < fnProtos.length; i++) {
		Object.defineProperty(fnProtos[i], "constructor", { value: noEval, writable: false, configurable: false });
	}
	g.Function = noEval;
	["setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval", "queueMicrotask", "require", "WeakRef", "FinalizationRegistry"].forEach(function (n) { delete g[n]; });

	// The projection API.
	var def = {
		source: "", streams: [], category: "",
		partitionBy: null, foreachStream: false,
		handlers: null, transforms: [], outputState: false
	};
	var noEmit = "cxledger projections fold state and never write events; read the state through the API or CLI instead";
	g.emit = refuse("emit()", noEmit);
	g.linkTo = refuse("linkTo()", noEmit);
	g.copyTo = refuse("copyTo()", noEmit);
	g.linkStreamTo = refuse("linkStreamTo()", noEmit);
	g.options = function () {};
	g.log = function () {};

	function text(v, what) {
		if (typeof v !== "string" || v === "") { throw new TypeError(what + " needs a non-empty string, got " + (typeof v)); }
		return v;
	}
	var builder = {
		when: function (h) {
			if (def.handlers !== null) { throw new Error("when() may be called once"); }
			if (h === null || typeof h !== "object") { throw new TypeError("when() needs an object of handlers, e.g. when({ $init: () => ({}), $any: (s, e) => s })"); }
			var hs = {};
			Object.keys(h).forEach(function (k) {
				if (typeof h[k] !== "function") { throw new TypeError("when(): handler " + k + " is not a function"); }
				hs[k] = h[k];
			});
			def.handlers = hs;
			return builder;
		},
		partitionBy: function (fn) {
			if (typeof fn !== "function") { throw new TypeError("partitionBy() needs a function of the event"); }
			if (def.partitionBy || def.foreachStream) { throw new Error("partitionBy() and foreachStream() may be used once, not together"); }
			if (def.handlers !== null) { throw new Error("partitionBy() must come before when()"); }
			def.partitionBy = fn;
			return builder;
		},
		foreachStream: function (h) {
			if (def.partitionBy || def.foreachStream) { throw new Error("partitionBy() and foreachStream() may be used once, not together"); }
			if (def.handlers !== null) { throw new Error("foreachStream() must come before when()"); }
			def.foreachStream = true;
			// KurrentDB also takes the handlers here: foreachStream({...}).
			return h === undefined ? builder : builder.when(h);
		},
		transformBy: function (fn) {
			if (typeof fn !== "function") { throw new TypeError("transformBy() needs a function of the state"); }
			def.transforms.push({ kind: "transform", fn: fn });
			return builder;
		},
		filterBy: function (fn) {
			if (typeof fn !== "function") { throw new TypeError("filterBy() needs a function of the state"); }
			def.transforms.push({ kind: "filter", fn: fn });
			return builder;
		},
		outputState: function () { def.outputState = true; return builder; },
		outputTo: refuse("outputTo()", noEmit)
	};
	function source(kind) {
		if (def.source !== "") { throw new Error("a projection reads one source: " + def.source + "() was already called"); }
		def.source = kind;
	}
	g.fromAll = function () { source("fromAll"); return builder; };
	g.fromStream = function (id) { source("fromStream"); def.streams = [text(id, "fromStream()")]; return builder; };
	g.fromStreams = function () {
		source("fromStreams");
		var ids = arguments.length === 1 && Array.isArray(arguments[0]) ? arguments[0] : Array.prototype.slice.call(arguments);
		if (ids.length === 0) { throw new TypeError("fromStreams() needs at least one stream id"); }
		def.streams = ids.map(function (id) { return text(id, "fromStreams()"); });
		return builder;
	};
	g.fromCategory = function (c) { source("fromCategory"); def.category = text(c, "fromCategory()"); return builder; };
	g.fromCategories = refuse("fromCategories()", "use fromAll() and test e.streamId in the handlers");
	return def;
})`
