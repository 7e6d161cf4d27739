package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// seededEvents seeds args into a new directory and returns its events as
// comparable lines (id, type, occurred-at, data), sorted: seeding appends
// concurrently, so global positions differ between runs.
func seededEvents(t *testing.T, args ...string) (lines []string, latest time.Time) {
	t.Helper()
	dir := t.TempDir()
	if code, _, errOut := cli(t, "", append([]string{"seed", "--data", dir, "--customers", "30", "--seed", "7"}, args...)...); code != 0 {
		t.Fatalf("seed %v: exit %d: %s", args, code, errOut)
	}
	code, out, errOut := cli(t, "", "export", "--data", dir)
	if code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	for _, r := range decodeRecords(t, out) {
		at := r.Metadata.OccurredAt
		lines = append(lines, strings.Join([]string{r.ID.String(), r.Type, at.UTC().Format(time.RFC3339Nano), string(r.Data)}, " "))
		if at.After(latest) {
			latest = at
		}
	}
	slices.Sort(lines)
	return lines, latest
}

// TestSeedEndsAtNow: seed's history ends just before --now, with events in
// the last 30 days (the demo's 30-day reports have data), and the same
// --seed and --now give the same events.
func TestSeedEndsAtNow(t *testing.T) {
	for _, now := range []string{"2026-03-15", "2031-06-01T12:00:00Z"} {
		t.Run(now, func(t *testing.T) {
			at, err := cliTime("--now", now)
			if err != nil {
				t.Fatal(err)
			}
			first, latest := seededEvents(t, "--now", now)
			if !latest.Before(at) || latest.Before(at.AddDate(0, 0, -30)) {
				t.Errorf("latest event at %s, want within the 30 days before %s", latest, at)
			}
			again, _ := seededEvents(t, "--now", now)
			if !slices.Equal(first, again) {
				t.Errorf("the same --seed and --now gave other events")
			}
		})
	}
}

// TestSeedDefaultNowIsToday: without --now, history ends at the start of
// the current UTC day: the same events as --now with today's date.
func TestSeedDefaultNowIsToday(t *testing.T) {
	for range 2 { // once more if the day turned during the first try
		today := time.Now().UTC().Format(time.DateOnly)
		byDefault, latest := seededEvents(t)
		explicit, _ := seededEvents(t, "--now", today)
		if today != time.Now().UTC().Format(time.DateOnly) {
			continue
		}
		if !slices.Equal(byDefault, explicit) {
			t.Fatalf("seed without --now differs from --now %s", today)
		}
		if start, _ := time.Parse(time.DateOnly, today); latest.Before(start.AddDate(0, 0, -30)) || !latest.Before(start) {
			t.Fatalf("latest event at %s, want within the 30 days before %s", latest, today)
		}
		return
	}
	t.Fatal("the day turned twice during the test")
}

func TestSeedNow(t *testing.T) {
	clock := time.Date(2026, 12, 7, 15, 4, 5, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		flag string
		want time.Time
	}{
		{"", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)},
		{"2026-03-15", time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)},
		{"2026-03-15T10:00:00+02:00", time.Date(2026, 3, 15, 8, 0, 0, 0, time.UTC)},
	} {
		got, err := seedNow(tc.flag, clock)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("seedNow(%q) = %s, %v; want %s", tc.flag, got, err, tc.want)
		}
	}
	if _, err := seedNow("tomorrow", clock); err == nil {
		t.Error("seedNow accepted tomorrow")
	}
}
