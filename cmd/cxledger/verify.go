package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/pflag"
	"golang.org/x/mod/sumdb/note"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore/notary"
)

func init() {
	register(command{
		name:  "verify",
		short: "check the log against a signed checkpoint (all events; --older: consistency; --customer: inclusion proofs)",
		flags: verifyCommand,
	})
}

// verifyCommand recomputes the Merkle tree from the events against a
// signed checkpoint, and optionally proves an older checkpoint consistent
// with it and a customer's events included in it. Every check runs; the
// command fails (exit 1) if any failed, naming the first bad position.
func verifyCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	cpFile := fs.String("checkpoint", "", "file holding the signed checkpoint to verify against (required)")
	vkey := fs.String("verifier", os.Getenv("CXLEDGER_CHECKPOINT_VERIFIER"), "the verifier key printed by 'checkpoint keygen', or a file holding it (required; env CXLEDGER_CHECKPOINT_VERIFIER)")
	olderFile := fs.String("older", "", "an older signed checkpoint: prove that --checkpoint extends it")
	customer := fs.String("customer", "", "a customer id: prove each of the customer's events included in the checkpoint")
	summary := fs.Bool("summary", false, "with --customer: print only the customer's line of counts (verified, newer, failed, missing), not a line per event")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("unexpected argument %q", e.args[0])
		}
		if *summary && *customer == "" {
			return usageErr("--summary applies to --customer")
		}
		if *cpFile == "" || *vkey == "" {
			return usageErr("--checkpoint FILE and --verifier KEY|FILE are required")
		}
		var customerID uuid.UUID
		if *customer != "" {
			id, err := uuid.Parse(*customer)
			if err != nil || id == uuid.Nil {
				return usageErr("--customer %q is not a customer id", *customer)
			}
			customerID = id
		}
		verifier, err := loadVerifier(*vkey)
		if err != nil {
			return err
		}
		cp, err := readCheckpoint(*cpFile, verifier)
		if err != nil {
			return err
		}
		var older *notary.Checkpoint
		if *olderFile != "" {
			o, err := readCheckpoint(*olderFile, verifier)
			if err != nil {
				return err
			}
			if o.Size > cp.Size {
				return usageErr("--older covers %d events, more than --checkpoint's %d: swap them", o.Size, cp.Size)
			}
			older = &o
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		hashes, err := treeHashes(e.store)
		if err != nil {
			return err
		}

		w := e.stdout
		fmt.Fprintf(w, "checkpoint  %s: %d events, root %s, %s, signed by %s\n",
			cp.Origin, cp.Size, cp.Hash, cp.Time.Format("2006-01-02T15:04:05.000000Z"), verifier.Name())
		var failed []error
		rep, err := notary.Verify(ctx, e.store, hashes, cp)
		switch {
		case err == nil:
			fmt.Fprintf(w, "log         OK: %s\n", rep.Summary())
		case errors.Is(err, notary.ErrTampered), errors.Is(err, notary.ErrHashesDamaged):
			fmt.Fprintf(w, "log         FAILED: %s\n", rep.Summary())
			failed = append(failed, err)
		default:
			return err
		}

		if older != nil {
			_, err := notary.VerifyConsistency(ctx, hashes, *older, cp)
			switch {
			case err == nil:
				fmt.Fprintf(w, "older       OK: the checkpoint of %d events (%s) is a prefix of this one\n",
					older.Size, older.Time.Format("2006-01-02T15:04:05Z"))
			case errors.Is(err, notary.ErrInconsistent):
				fmt.Fprintf(w, "older       FAILED: the log was rewritten or forked since the checkpoint of %d events: %v\n", older.Size, err)
				failed = append(failed, err)
			default:
				fmt.Fprintf(w, "older       FAILED: %v\n", err)
				failed = append(failed, err)
			}
		}

		if customerID != uuid.Nil {
			if err := verifyCustomer(ctx, w, e, hashes, domain.StreamID(customerID), cp, *summary); err != nil {
				failed = append(failed, err)
			}
		}
		return errors.Join(failed...)
	}
}

// verifyCustomer proves each event of one customer's stream and prints a
// line of counts, then (unless summary) a line per event.
func verifyCustomer(ctx context.Context, w io.Writer, e *env, hashes notary.HashStore, stream string, cp notary.Checkpoint, summary bool) error {
	statuses, err := notary.VerifyStream(ctx, e.store, hashes, stream, cp)
	counts := map[notary.Status]int{}
	for _, st := range statuses {
		counts[st.Status]++
	}
	if len(statuses) > 0 || err == nil {
		fmt.Fprintf(w, "customer    %s: %d events: %d verified, %d newer than the checkpoint, %d failed, %d missing\n", stream, len(statuses),
			counts[notary.StatusVerified], counts[notary.StatusNewer], counts[notary.StatusFailed], counts[notary.StatusMissing])
	}
	for _, st := range statuses {
		if summary {
			break
		}
		line := fmt.Sprintf("  version %-4d position %-8d", st.Event.Version, st.Event.Position)
		if st.Leaf >= 0 {
			line += fmt.Sprintf(" leaf %-8d", st.Leaf)
		}
		line += " " + st.Event.Type + " " + st.Status.String()
		if st.Detail != "" {
			line += ": " + st.Detail
		}
		fmt.Fprintln(w, line)
	}
	if err != nil && len(statuses) == 0 {
		fmt.Fprintf(w, "customer    %s: FAILED: %v\n", stream, err)
	}
	return err
}

// loadVerifier takes a verifier key, or the name of a file holding one.
func loadVerifier(arg string) (note.Verifier, error) {
	if v, err := notary.NewVerifier(arg); err == nil {
		return v, nil
	}
	data, err := os.ReadFile(arg)
	if err != nil {
		return nil, usageErr("--verifier: neither a verifier key nor a readable file: %v", err)
	}
	v, err := notary.NewVerifier(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("--verifier %s: %w", arg, err)
	}
	return v, nil
}

// readCheckpoint reads a signed checkpoint and checks its signature.
func readCheckpoint(file string, verifier note.Verifier) (notary.Checkpoint, error) {
	msg, err := os.ReadFile(file)
	if err != nil {
		return notary.Checkpoint{}, fmt.Errorf("read checkpoint: %w", err)
	}
	cp, err := notary.Open(msg, verifier)
	if err != nil {
		return notary.Checkpoint{}, fmt.Errorf("%s: %w", file, err)
	}
	return cp, nil
}
