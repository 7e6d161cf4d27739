package projections

import (
	"runtime/debug"
	"testing"
)

// Replays may overlap in one process: the GC settings hold until the last
// ends and then return to what they were, and a lower memory limit the
// process already had is kept.
func TestTuneGCForReplayNestsAndRestores(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	beforeLimit := debug.SetMemoryLimit(1 << 40)
	defer debug.SetMemoryLimit(beforeLimit)

	restoreA := tuneGCForReplay()
	restoreB := tuneGCForReplay()
	if got := debug.SetGCPercent(-1); got != replayGCPercent {
		t.Errorf("GC percent during replay = %d, want %d", got, replayGCPercent)
	}
	debug.SetGCPercent(replayGCPercent)
	if got := debug.SetMemoryLimit(-1); got != replayMemoryLimit {
		t.Errorf("memory limit during replay = %d, want %d", got, replayMemoryLimit)
	}
	restoreA()
	if got := debug.SetGCPercent(-1); got != replayGCPercent {
		t.Errorf("GC percent after the first of two replays = %d, want %d", got, replayGCPercent)
	}
	debug.SetGCPercent(replayGCPercent)
	restoreB()
	if got := debug.SetGCPercent(-1); got != 100 {
		t.Errorf("GC percent after both replays = %d, want 100", got)
	}
	debug.SetGCPercent(100)
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit after both replays = %d, want %d", got, int64(1<<40))
	}

	debug.SetMemoryLimit(64 << 20) // lower than the replay's: kept
	restore := tuneGCForReplay()
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("memory limit during replay = %d, want the process's lower %d", got, 64<<20)
	}
	restore()
}
