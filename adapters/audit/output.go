package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cxledger/cxledger/domain"
)

// WriteJSON writes t as one indented JSON document.
func (t Timeline) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(t); err != nil {
		return fmt.Errorf("audit: write JSON: %w", err)
	}
	return nil
}

// csvHeader names the CSV columns. The first rows before it are comments
// (#) naming the customer, the checkpoint and the outcome, so a file opened
// alone still says what it was verified against.
var csvHeader = []string{"position", "version", "event_id", "type", "summary", "occurred_at", "recorded_at", "actor", "channel", "correlation_id", "causation_id", "leaf", "proof", "proof_detail"}

// WriteCSV writes t as CSV (RFC 4180), preceded by # comment lines with
// the customer, the checkpoint and the verification outcome.
func (t Timeline) WriteCSV(w io.Writer) error {
	for _, line := range t.preamble() {
		if _, err := fmt.Fprintf(w, "# %s\n", line); err != nil {
			return fmt.Errorf("audit: write CSV: %w", err)
		}
	}
	cw := csv.NewWriter(w)
	_ = cw.Write(csvHeader)
	for _, e := range t.Entries {
		_ = cw.Write([]string{
			strconv.FormatUint(e.Position, 10), strconv.FormatUint(e.Version, 10), e.EventID.String(), e.Type, e.Summary,
			stamp(e.OccurredAt), stamp(e.RecordedAt), e.Actor, e.Channel, e.CorrelationID, e.CausationID,
			strconv.FormatInt(e.Leaf, 10), e.Proof, e.ProofDetail,
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("audit: write CSV: %w", err)
	}
	return nil
}

// WriteText writes t for a terminal: the preamble, then one aligned row per
// entry.
func (t Timeline) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, line := range t.preamble() {
		b.WriteString(line + "\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POS\tV\tOCCURRED\tRECORDED\tACTOR\tCHANNEL\tWHAT\tPROOF")
	for _, e := range t.Entries {
		// Text for a terminal: metadata strings are shown like the
		// summary, hidden and control characters as marks.
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Position, e.Version, stamp(e.OccurredAt), stamp(e.RecordedAt), dash(e.Actor), dash(e.Channel), domain.ForDisplay(e.Summary), e.Proof)
		if e.CorrelationID != "" || e.CausationID != "" {
			fmt.Fprintf(tw, "\t\t\t\t\t\t  correlation %s, causation %s\t\n", dash(e.CorrelationID), dash(e.CausationID))
		}
		if e.ProofDetail != "" {
			fmt.Fprintf(tw, "\t\t\t\t\t\t  %s\t\n", e.ProofDetail)
		}
	}
	_ = tw.Flush()
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	return nil
}

func (t Timeline) preamble() []string {
	outcome := "VERIFIED: every event the checkpoint covers is in its tree"
	if t.Checkpoint.Signed == "" {
		outcome = "VERIFIED against the tree as it is now (UNSIGNED: no checkpoint held outside the system was given)"
	}
	if !t.Verified {
		outcome = "NOT VERIFIED: " + t.Problem
	}
	return []string{
		"customer " + t.Customer.String() + fmt.Sprintf(": %d events, %d shown", t.Events, len(t.Entries)),
		fmt.Sprintf("checkpoint %s size %d root %s at %s", t.Checkpoint.Origin, t.Checkpoint.Size, t.Checkpoint.Hash, stamp(t.Checkpoint.Time)),
		outcome,
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// dash shows s for a terminal: "-" when empty, hidden and control
// characters as marks (domain.ForDisplay).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return domain.ForDisplay(s)
}
