package notary

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed statement that the log named Origin held Size
// events whose Merkle tree has root Hash, at Time.
type Checkpoint struct {
	// Origin names the log; by default the signing key's name.
	Origin string
	// Size is the number of leaves (events) the checkpoint covers.
	Size int64
	// Hash is the Merkle tree root of the first Size events.
	Hash tlog.Hash
	// Time is when the checkpoint was made: UTC, microseconds.
	Time time.Time
}

// Tree returns the checkpoint's tree description.
func (c Checkpoint) Tree() tlog.Tree { return tlog.Tree{N: c.Size, Hash: c.Hash} }

// timeLayout is the time extension line's format: RFC 3339, UTC,
// microseconds, always the same length.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// timePrefix starts the checkpoint's time extension line.
const timePrefix = "time "

// maxOriginBytes bounds the origin line.
const maxOriginBytes = 1024

// Text returns the checkpoint's body in the C2SP tlog-checkpoint format:
// origin, size, base64 root hash, then the time extension line, each ending
// in a newline. Sign signs exactly these bytes.
func (c Checkpoint) Text() string {
	return c.Origin + "\n" +
		strconv.FormatInt(c.Size, 10) + "\n" +
		base64.StdEncoding.EncodeToString(c.Hash[:]) + "\n" +
		timePrefix + c.Time.UTC().Format(timeLayout) + "\n"
}

// validate reports a checkpoint that cannot be written unambiguously.
func (c Checkpoint) validate() error {
	switch {
	case c.Origin == "" || len(c.Origin) > maxOriginBytes || !utf8.ValidString(c.Origin):
		return fmt.Errorf("%w: origin must be 1 to %d bytes of UTF-8", ErrBadCheckpoint, maxOriginBytes)
	case strings.ContainsFunc(c.Origin, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: origin %q contains a control character", ErrBadCheckpoint, c.Origin)
	case c.Size < 0:
		return fmt.Errorf("%w: negative size %d", ErrBadCheckpoint, c.Size)
	case c.Time.IsZero():
		return fmt.Errorf("%w: no time", ErrBadCheckpoint)
	case c.Time.UTC().Year() < 1 || c.Time.UTC().Year() > 9999:
		return fmt.Errorf("%w: time %v outside years 1 to 9999", ErrBadCheckpoint, c.Time)
	}
	return nil
}

// Sign returns the signed checkpoint: its Text, a blank line and the
// signature line of signer (a note). The time is written in UTC with
// microseconds.
func Sign(cp Checkpoint, signer note.Signer) ([]byte, error) {
	if err := cp.validate(); err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: cp.Text()}, signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// Open checks that msg is a checkpoint signed by verifier and returns it.
// Signatures by other keys are ignored; a signature by verifier's key that
// does not verify, a note without one, or a malformed body fails with an
// error wrapping ErrBadCheckpoint. Open never panics, whatever msg holds.
func Open(msg []byte, verifier note.Verifier) (Checkpoint, error) {
	if verifier == nil {
		return Checkpoint{}, fmt.Errorf("%w: no verifier key", ErrBadCheckpoint)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("%w: not signed by %s+%08x", ErrBadCheckpoint, verifier.Name(), verifier.KeyHash())
		}
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	return parseText(n.Text)
}

// parseText parses a checkpoint body. Extension lines other than the time
// are allowed (the format says so) and ignored; exactly one time line is
// required.
func parseText(text string) (Checkpoint, error) {
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrBadCheckpoint, fmt.Sprintf(format, args...))
	}
	if !strings.HasSuffix(text, "\n") {
		return bad("body does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 4 {
		return bad("want origin, size, root hash and time lines, got %d lines", len(lines))
	}
	var cp Checkpoint
	cp.Origin = lines[0]
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return bad("size %q is not a non-negative decimal number", lines[1])
	}
	cp.Size = size
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != lines[2] {
		return bad("root hash %q is not %d bytes of standard base64", lines[2], tlog.HashSize)
	}
	copy(cp.Hash[:], raw)
	found := false
	for _, ext := range lines[3:] {
		if ext == "" {
			return bad("empty extension line")
		}
		v, ok := strings.CutPrefix(ext, timePrefix)
		if !ok {
			continue
		}
		if found {
			return bad("two time lines")
		}
		found = true
		t, err := time.Parse(timeLayout, v)
		if err != nil {
			return bad("time %q is not %s", v, timeLayout)
		}
		cp.Time = t.UTC()
	}
	if !found {
		return bad("no time line")
	}
	if err := cp.validate(); err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

// GenerateKey returns a new Ed25519 key pair for signing checkpoints, in
// note's text forms: skey ("PRIVATE+KEY+<name>+<hash>+<key>") must be kept
// secret; vkey ("<name>+<hash>+<key>") is given to auditors. name is
// conventionally the log's origin, e.g. "ledger.example.com/cxledger".
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generate checkpoint key %q: %w", name, err)
	}
	// note.GenerateKey writes any name; only keys whose name note can read
	// back are of use.
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", "", fmt.Errorf("generate checkpoint key: name %q must be non-empty UTF-8 without white space or '+'", name)
	}
	return skey, vkey, nil
}

// NewSigner parses a signer key written by GenerateKey; surrounding white
// space (a key file's final newline) is ignored.
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(string(bytes.TrimSpace([]byte(skey))))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer key: %w", err)
	}
	return s, nil
}

// NewVerifier parses a verifier key written by GenerateKey; surrounding
// white space is ignored.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("checkpoint verifier key: %w", err)
	}
	return v, nil
}
