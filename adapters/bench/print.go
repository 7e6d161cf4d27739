package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Print writes the report as tables: per backend, the append cases with
// their baselines and ratios, the read side, and every target met or not.
func Print(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "cxledger bench — %s, %s, %d CPUs, seed %d, %d-event log, %s per append case\n",
		rep.GoVersion, rep.OS, rep.CPUs, rep.Seed, rep.Events, rep.Duration)
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped %s\n", s)
	}
	for _, b := range rep.Backends {
		fmt.Fprintf(w, "\n== %s ==\n", b.Name)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "writers\tevents/append\tledger ev/s\tp50 ms\tp99 ms\tbaseline ev/s\tp50 ms\tp99 ms\tratio\tbaseline\t")
		for _, c := range b.Appends {
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f×\t%s\t\n", c.Writers, c.EventsPerAppend,
				c.Ledger.EventsPerSecond, c.Ledger.P50Ms, c.Ledger.P99Ms, c.Baseline.EventsPerSecond, c.Baseline.P50Ms, c.Baseline.P99Ms, c.Ratio, c.BaselineKind)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "seeding (set-up, not a target): %d events, %d customers in %.1fs = %.0f events/s\n",
			b.Seeding.Events, b.Seeding.Operations, b.Seeding.Seconds, b.Seeding.EventsPerSecond)
		fmt.Fprintf(w, "replay of every read model: %d events in %.2fs = %.0f events/s, peak RSS %.0f MiB (%s)\n",
			b.Replay.Events, b.Replay.Seconds, b.Replay.EventsPerSecond, float64(b.Replay.PeakRSSBytes)/(1<<20), b.Replay.RSSNote)
		fmt.Fprintf(w, "rebuild of %s alone: %.0f events/s, peak RSS %.0f MiB; read ceiling (%s): %.0f events/s, replay ratio %.2f×\n",
			b.Replay.Single.ReadModel, b.Replay.Single.EventsPerSecond, float64(b.Replay.Single.PeakRSSBytes)/(1<<20),
			b.Replay.CeilingKind, b.Replay.CeilingEventsPerSecond, b.Replay.Ratio)
		fmt.Fprintf(w, "timeline page: p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d reads (%s)\n", b.Timeline.P50Ms, b.Timeline.P99Ms, b.Timeline.MaxMs, b.Timeline.Samples, b.Timeline.What)
		fmt.Fprintf(w, "live latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d appends (%s)\n", b.Live.P50Ms, b.Live.P99Ms, b.Live.MaxMs, b.Live.Samples, b.Live.What)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "target\twant\tgot\t")
		for _, t := range b.Targets {
			met := "met"
			if !t.Met {
				met = "NOT MET"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f %s\t%s\n", t.Name, t.Want, t.Got, t.Unit, met)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
