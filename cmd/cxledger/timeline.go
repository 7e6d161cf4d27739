package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/cxledger/cxledger/adapters/access"
	"github.com/cxledger/cxledger/adapters/audit"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
)

func init() {
	register(command{
		name:  "timeline",
		args:  "ID",
		short: "a customer's audited timeline: every event with who/when/why and its proof against a checkpoint (text, --format json|csv)",
		flags: timelineCommand,
	})
}

// timelineCommand prints the auditor's timeline of one customer, verified
// against a signed checkpoint the auditor holds (--checkpoint and
// --verifier) or, without one, against the tree as it is now (said so in
// the output). The read is recorded in the access log.
func timelineCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	format := fs.String("format", "text", "text, json or csv")
	out := fs.String("out", "", "write to this file instead of standard output")
	cpFile := fs.String("checkpoint", "", "a signed checkpoint to verify against (default: the tree as it is now, unsigned)")
	vkey := fs.String("verifier", os.Getenv("CXLEDGER_CHECKPOINT_VERIFIER"), "the checkpoint's verifier key or a file holding it (with --checkpoint; env CXLEDGER_CHECKPOINT_VERIFIER)")
	from := fs.String("from", "", "only events that occurred at or after this time (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "only events that occurred before this time")
	types := fs.String("types", "", "only these event types (comma-separated)")
	actor := fs.String("actor", "", "only events recorded by this actor")
	proofs := fs.Bool("proofs", false, "add each event's leaf hash, inclusion proof and stored record (json)")
	reader := fs.String("reader", "", "who reads, for the access log (default: the operating-system user)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) != 1 {
			return usageErr("timeline needs one customer id")
		}
		id, err := uuid.Parse(e.args[0])
		if err != nil || id == uuid.Nil {
			return usageErr("%q is not a customer id", e.args[0])
		}
		if *format != "text" && *format != "json" && *format != "csv" {
			return usageErr("--format %q: want text, json or csv", *format)
		}
		var f audit.Filter
		if f.From, err = cliTime("--from", *from); err != nil {
			return err
		}
		if f.To, err = cliTime("--to", *to); err != nil {
			return err
		}
		f.Actor = *actor
		for t := range strings.SplitSeq(*types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				f.Types = append(f.Types, t)
			}
		}

		// The checkpoint the auditor holds is read before the store is
		// opened: a wrong one creates nothing.
		var cp notary.Checkpoint
		var signed string
		if *cpFile != "" {
			if *vkey == "" {
				return usageErr("--checkpoint needs --verifier KEY|FILE")
			}
			verifier, err := loadVerifier(*vkey)
			if err != nil {
				return err
			}
			if cp, err = readCheckpoint(*cpFile, verifier); err != nil {
				return err
			}
			msg, _ := os.ReadFile(*cpFile)
			signed = string(msg)
		}
		if err := e.open(ctx); err != nil {
			return err
		}
		hashes, err := treeHashes(e.store)
		if err != nil {
			return err
		}
		tree, err := notary.New(e.store, hashes, e.log).Sync(ctx)
		if err != nil {
			return err
		}
		if *cpFile == "" {
			cp = notary.Checkpoint{Origin: "unsigned: the tree as it is now", Size: tree.N, Hash: tree.Hash, Time: time.Now().UTC().Truncate(time.Microsecond)}
		}

		kr, err := openKeyring(ctx, e.cfg, e.log)
		if err != nil {
			return err
		}
		defer kr.Close()
		tl, err := audit.Build(ctx, e.store, hashes, id, cp, audit.Options{Filter: f, Proofs: *proofs, Signed: signed, Reveal: kr})
		if err != nil {
			return err
		}
		q := url.Values{"format": {*format}}
		for k, v := range map[string]string{"from": *from, "to": *to, "types": *types, "actor": *actor} {
			if v != "" {
				q.Set(k, v)
			}
		}
		q.Set("size", strconv.FormatInt(cp.Size, 10))
		if err := recordCLIRead(ctx, e, id, "audit-timeline", *reader, q.Encode()); err != nil {
			return err
		}

		w := e.stdout
		if *out != "" {
			file, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("timeline: %w", err)
			}
			defer file.Close()
			w = file
		}
		if err := writeTimeline(w, tl, *format); err != nil {
			return err
		}
		if !tl.Verified {
			return errors.New("timeline NOT verified: " + tl.Problem)
		}
		return nil
	}
}

func writeTimeline(w io.Writer, tl audit.Timeline, format string) error {
	switch format {
	case "json":
		return tl.WriteJSON(w)
	case "csv":
		return tl.WriteCSV(w)
	}
	return tl.WriteText(w)
}

// cliTime parses a time flag: RFC 3339 or a date (midnight UTC).
func cliTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageErr("%s %q: want RFC 3339 or YYYY-MM-DD", name, s)
}

// recordCLIRead records a command's read of a customer's personal data in
// the access log: by reader (default the operating-system user), role
// operator, with query saying which slice was read. The query is built by
// the command from its options, never the command line: that may hold an
// identifier (personal data) or a connection string with a password, and
// the access log is kept forever. A read that cannot be recorded is not
// shown.
func recordCLIRead(ctx context.Context, e *env, customer uuid.UUID, resource, reader, query string) error {
	if reader == "" {
		reader = osUser()
	}
	err := access.New(e.store).Record(ctx, access.Entry{
		Customer: customer, Reader: reader, Role: "operator", Resource: resource,
		Query: query, Via: "cli",
	})
	if err != nil {
		return fmt.Errorf("the read could not be recorded in the access log, so it is not shown: %w", err)
	}
	return nil
}

// cliReads returns the access-log recorder of a command that shows many
// events (read, tail, export): one entry per customer it shows, before
// showing them (access.Reads). query is built from the command's options,
// as for recordCLIRead.
func cliReads(e *env, resource, reader, query string) *access.Reads {
	if reader == "" {
		reader = osUser()
	}
	return access.New(e.store).NewReads(access.Entry{Reader: reader, Role: "operator", Resource: resource, Query: query, Via: "cli"})
}

// recordShown records the customers of recs in reads; a read that cannot
// be recorded is not shown.
func recordShown(ctx context.Context, reads *access.Reads, recs []eventstore.Record) error {
	if err := reads.Records(ctx, recs); err != nil {
		return fmt.Errorf("the read could not be recorded in the access log, so it is not shown: %w", err)
	}
	return nil
}

// osUser names whoever runs the command, for the access log.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}
