package analyst

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/adapters/keyring"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/script"
)

// ScriptCompiler compiles with projections/script under lim, turning the
// loader's *script.CompileError into an *InvalidError.
func ScriptCompiler(lim script.Limits) Compiler {
	return func(name, source string) (Program, error) {
		p, err := script.Compile(name, source, lim)
		if err != nil {
			var ce *script.CompileError
			if errors.As(err, &ce) {
				return nil, &InvalidError{Line: ce.Line, Column: ce.Column, Message: ce.Message}
			}
			return nil, err
		}
		return p, nil
	}
}

// Failure returns the script's failure inside a projection's error (a
// *projections.ProjectionError wrapping a *script.ScriptError), or nil.
func Failure(err error) *script.ScriptError {
	var se *script.ScriptError
	if errors.As(err, &se) {
		return se
	}
	return nil
}

// Reveal returns doc, a JSON document of an analyst projection's state,
// with every sealed value in it (of any customer) revealed: its plaintext,
// or keyring.Erased once its customer was forgotten. State is stored
// sealed, so that forgetting a customer erases analyst projections too;
// it is revealed only here, when read. A nil keyring returns doc.
func Reveal(ctx context.Context, k *keyring.Keyring, doc []byte) ([]byte, error) {
	if k == nil {
		return doc, nil
	}
	var customers []uuid.UUID
	keyring.ReplaceTokens(string(doc), func(t keyring.Token, text string) string {
		if !slices.Contains(customers, t.Customer) {
			customers = append(customers, t.Customer)
		}
		return text
	})
	for _, c := range customers {
		var err error
		if doc, err = k.RevealJSON(ctx, c, doc); err != nil {
			return nil, fmt.Errorf("reveal: %w", err)
		}
	}
	return doc, nil
}

// State reads the state of an analyst projection as served now: the whole
// state of an unpartitioned one, or one partition's. Sealed values are
// revealed with k.
func State(ctx context.Context, b projections.Backend, k *keyring.Keyring, name, partition string) (json.RawMessage, error) {
	var out json.RawMessage
	var found bool
	err := projections.View(ctx, b, name, func(r projections.Reader) error {
		var err error
		out, found, err = script.ReadState(ctx, r, partition)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		if partition != "" {
			return nil, fmt.Errorf("%w: partition %q of %s", projections.ErrNotFound, partition, name)
		}
		return json.RawMessage("null"), nil
	}
	return Reveal(ctx, k, out)
}

// Partitions reads a page of a partitioned analyst projection's states,
// after the cursor after, revealed with k; next is "" on the last page.
func Partitions(ctx context.Context, b projections.Backend, k *keyring.Keyring, name, after string, limit int) (parts []script.Partition, next string, err error) {
	err = projections.View(ctx, b, name, func(r projections.Reader) error {
		var err error
		parts, next, err = script.ListPartitions(ctx, r, after, limit)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	for i := range parts {
		if parts[i].State, err = Reveal(ctx, k, parts[i].State); err != nil {
			return nil, "", err
		}
	}
	return parts, next, nil
}

// Checkpoint returns the position the analyst projection's served state
// has applied.
func Checkpoint(ctx context.Context, b projections.Backend, name string) (uint64, error) {
	active, err := b.Active(ctx, name)
	if err != nil {
		return 0, err
	}
	if active == "" {
		return 0, fmt.Errorf("%s: %w", name, projections.ErrNotActive)
	}
	return b.Checkpoint(ctx, active)
}

// Query runs source once over the log from position from through to (0:
// the head when it starts), writing nothing, and returns its result with
// sealed values revealed with k, and the position it ran through. A
// script the loader refuses is an *InvalidError.
func Query(ctx context.Context, src projections.Source, k *keyring.Keyring, source string, from, to uint64, lim script.Limits, progress func(script.Progress)) (script.Result, uint64, error) {
	if len(source) > MaxSourceBytes {
		return script.Result{}, 0, &InvalidError{Message: fmt.Sprintf("script of %d bytes, more than %d", len(source), MaxSourceBytes)}
	}
	prog, err := ScriptCompiler(lim)(Prefix+"query", source)
	if err != nil {
		return script.Result{}, 0, err
	}
	head, err := src.Head(ctx)
	if err != nil {
		return script.Result{}, 0, fmt.Errorf("query: head: %w", err)
	}
	if to == 0 || to > head {
		to = head
	}
	if from > to && to > 0 {
		return script.Result{}, 0, &InvalidError{Message: fmt.Sprintf("from %d is after to %d", from, to)}
	}
	res, err := script.Query(ctx, src, prog.(*script.Program), from, to, progress)
	if err != nil {
		return script.Result{}, 0, err
	}
	if res.State, err = Reveal(ctx, k, res.State); err != nil {
		return script.Result{}, 0, err
	}
	for i := range res.Partitions {
		if res.Partitions[i].State, err = Reveal(ctx, k, res.Partitions[i].State); err != nil {
			return script.Result{}, 0, err
		}
	}
	return res, to, nil
}

// ReadAll reads the whole served state of an analyst projection, every
// partition of a partitioned one, revealed with k: what an export writes.
func ReadAll(ctx context.Context, b projections.Backend, k *keyring.Keyring, name string, partitioned bool) (script.Result, error) {
	res := script.Result{Partitioned: partitioned}
	if !partitioned {
		st, err := State(ctx, b, k, name, "")
		res.State = st
		return res, err
	}
	after := ""
	for {
		parts, next, err := Partitions(ctx, b, k, name, after, 1000)
		if err != nil {
			return script.Result{}, err
		}
		res.Partitions = append(res.Partitions, parts...)
		if next == "" || len(parts) == 0 {
			return res, nil
		}
		after = next
	}
}
