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
		if len(b.Processes) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "processes\tclients\tevents/append\tledger ev/s\tp50 ms\tp99 ms\tvs 1 process\t")
			for _, c := range b.Processes {
				fmt.Fprintf(tw, "%d\t%d\t1\t%.0f\t%.2f\t%.2f\t%.2f×\t\n", c.Processes, c.Clients,
					c.Ledger.EventsPerSecond, c.Ledger.P50Ms, c.Ledger.P99Ms, ratio(c.Ledger.EventsPerSecond, b.Processes[0].Ledger.EventsPerSecond))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if b.Replay.Events == 0 {
			fmt.Fprintln(w, "replay not measured (--appends-only or --reads-only)")
		} else {
			fmt.Fprintf(w, "seeding (set-up, not a target): %d events, %d customers %s in %.1fs = %.0f events/s; histories spanning %.0f days\n",
				b.Seeding.Events, b.Seeding.Operations, b.Seeding.how(), b.Seeding.Seconds, b.Seeding.EventsPerSecond, b.Seeding.SpanDays)
			fmt.Fprintf(w, "replay of every read model: %d events in %.2fs = %.0f events/s, peak RSS %.0f MiB (%s)\n",
				b.Replay.Events, b.Replay.Seconds, b.Replay.EventsPerSecond, float64(b.Replay.PeakRSSBytes)/(1<<20), b.Replay.RSSNote)
			fmt.Fprintf(w, "rebuild of %s alone: %.0f events/s, peak RSS %.0f MiB; read ceiling (%s): %.0f events/s, replay ratio %.2f×\n",
				b.Replay.Single.ReadModel, b.Replay.Single.EventsPerSecond, float64(b.Replay.Single.PeakRSSBytes)/(1<<20),
				b.Replay.CeilingKind, b.Replay.CeilingEventsPerSecond, b.Replay.Ratio)
			fmt.Fprintf(w, "rebuild of a counting projection: JavaScript %.0f events/s, Go %.0f events/s, JS/Go %.2f×\n",
				b.Replay.JS.JSEventsPerSecond, b.Replay.JS.GoEventsPerSecond, b.Replay.JS.Ratio)
			fmt.Fprintf(w, "timeline page: p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d reads (%s)\n", b.Timeline.P50Ms, b.Timeline.P99Ms, b.Timeline.MaxMs, b.Timeline.Samples, b.Timeline.What)
			fmt.Fprintf(w, "live latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d appends (%s)\n", b.Live.P50Ms, b.Live.P99Ms, b.Live.MaxMs, b.Live.Samples, b.Live.What)
		}
		for _, c := range b.Reads {
			fmt.Fprintf(w, "reads over %d customers (%d events, %d buyers; model fitted once in %.1fs):\n", c.Customers, c.Events, c.Buyers, c.FitSeconds)
			for _, l := range []struct {
				name string
				l    Latency
			}{{"customer view", c.View}, {"identifier lookup", c.Lookup}, {"full RFM list", c.RFMList}} {
				fmt.Fprintf(w, "  %-17s p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d reads (%s)\n", l.name, l.l.P50Ms, l.l.P99Ms, l.l.MaxMs, l.l.Samples, l.l.What)
			}
			fmt.Fprintf(w, "  %-17s %.0f ms of CPU per list (load-independent)\n", "", c.RFMListCPUMs)
		}
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
