package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/mod/sumdb/note"

	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/notary"
)

func init() {
	register(command{
		name:  "checkpoint",
		short: "sign a checkpoint of the log's Merkle tree (--key FILE); 'checkpoint keygen' makes the key",
		flags: checkpointCommand,
		subs: []command{{
			name:  "keygen",
			short: "make an Ed25519 checkpoint signing key (--name NAME --out FILE) and print the verifier key for auditors",
			flags: keygenCommand,
		}},
	})
}

// checkpointCommand syncs the log's Merkle tree and prints a signed
// checkpoint of it; its child keygen makes the signing key.
func checkpointCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	keyFile := fs.String("key", os.Getenv("CXLEDGER_CHECKPOINT_KEY"), "file holding the signer key made by 'cxledger checkpoint keygen' (env CXLEDGER_CHECKPOINT_KEY)")
	origin := fs.String("origin", "", "the log's name written in the checkpoint (default: the key's name)")
	return func(ctx context.Context, e *env) error {
		if len(e.args) > 0 {
			return usageErr("unexpected argument %q ('cxledger checkpoint keygen' makes a key)", e.args[0])
		}
		if *keyFile == "" {
			return usageErr("--key FILE is required (make one with 'cxledger checkpoint keygen --name NAME --out FILE')")
		}
		signer, err := loadSigner(*keyFile, e.log)
		if err != nil {
			return err
		}
		if *origin == "" {
			*origin = signer.Name()
		}

		if err := e.open(ctx); err != nil {
			return err
		}
		store := e.store
		hashes, err := treeHashes(store)
		if err != nil {
			return err
		}
		tree, err := notary.New(store, hashes, e.log).Sync(ctx)
		if err != nil {
			return err
		}
		cp := notary.Checkpoint{Origin: *origin, Size: tree.N, Hash: tree.Hash, Time: time.Now().UTC().Truncate(time.Microsecond)}
		msg, err := notary.Sign(cp, signer)
		if err != nil {
			return err
		}
		if _, err := e.stdout.Write(msg); err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
		e.log.Info("checkpoint signed", "origin", cp.Origin, "size", cp.Size, "root", cp.Hash.String(), "key", signer.Name())
		return nil
	}
}

// keygenCommand writes a new signer key to --out (mode 0600, never over
// an existing file) and prints the verifier key for auditors. It opens no
// store.
func keygenCommand(fs *pflag.FlagSet) func(context.Context, *env) error {
	name := fs.String("name", "", "the key's name, conventionally the log's origin, e.g. ledger.example.com/cxledger")
	out := fs.String("out", "", "file to write the secret signer key to (created with mode 0600)")
	return func(_ context.Context, e *env) error { return keygen(e, *name, *out) }
}

func keygen(e *env, name, out string) error {
	if name == "" || out == "" || len(e.args) > 0 {
		return usageErr("checkpoint keygen --name NAME --out FILE: both flags are required, nothing else")
	}
	skey, vkey, err := notary.GenerateKey(name)
	if err != nil {
		return usageErr("--name: %v", err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: refusing to overwrite a signing key", out)
	}
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	if _, err := io.WriteString(f, skey+"\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	_, err = fmt.Fprintln(e.stdout, vkey)
	return err
}

// treeHashes returns the Merkle tree hashes the store keeps, or says that
// this backend keeps none.
func treeHashes(s eventstore.Store) (notary.HashStore, error) {
	hs, ok := s.(notary.HashStore)
	if !ok {
		return nil, errors.New("this store keeps no Merkle tree: tamper evidence needs the embedded or the PostgreSQL store (KurrentDB is not supported)")
	}
	return hs, nil
}

// loadSigner reads a signer key file made by 'checkpoint keygen', warning
// when others may read it.
func loadSigner(file string, log *slog.Logger) (note.Signer, error) {
	skey, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read signer key: %w", err)
	}
	if info, err := os.Stat(file); err == nil && info.Mode().Perm()&0o077 != 0 {
		log.Warn("the signer key file is readable by others: chmod 600 it", "file", file, "mode", info.Mode().Perm())
	}
	signer, err := notary.NewSigner(string(skey))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return signer, nil
}
