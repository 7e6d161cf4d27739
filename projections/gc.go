package projections

import (
	"math"
	"runtime/debug"
	"sync"
)

// Garbage collection during a full replay. A replay allocates a decoded
// event per record and an encoded value per changed object, and keeps
// little: with the default GOGC the collector ran every few megabytes and
// took about a third of a replay's CPU (docs/replay-profile.md). During a
// replay the collector's target is raised to replayGCPercent, bounded by a
// soft memory limit of replayMemoryLimit (unless the process already has a
// lower one), so the heap stays bounded by that limit rather than by the
// log's length; both are restored when the last replay of the process ends.
// 200 rather than the 400 first chosen: the live heap of an eleven-model
// replay is about 100 MB, so 400 let the heap reach 5× that (peak RSS
// 1,100 MiB with the read models' mapped files) where 200 keeps it near
// 3× (about 900 MiB) for the same CPU, measured on 200,000 events
// (docs/replay-profile.md).
const (
	replayGCPercent   = 200
	replayMemoryLimit = 768 << 20
)

var replayGC struct {
	mu      sync.Mutex
	n       int
	percent int
	limit   int64
}

// tuneGCForReplay applies the replay's GC settings and returns the
// function that restores the previous ones; nested and concurrent replays
// share one setting.
func tuneGCForReplay() (restore func()) {
	g := &replayGC
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.limit = debug.SetMemoryLimit(-1)
		if g.limit == math.MaxInt64 || g.limit > replayMemoryLimit {
			debug.SetMemoryLimit(replayMemoryLimit)
		}
		g.percent = debug.SetGCPercent(replayGCPercent)
		if g.percent < 0 || g.percent > replayGCPercent {
			debug.SetGCPercent(g.percent) // GC off or already laxer: leave it
		}
	}
	g.n++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.n--; g.n == 0 {
			debug.SetGCPercent(g.percent)
			debug.SetMemoryLimit(g.limit)
		}
	}
}
