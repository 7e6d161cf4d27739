package keyring

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeySize is the size of the master key in bytes (AES-256).
const MasterKeySize = 32

// MasterKey is the key from configuration that wraps every customer's data
// key and from which the blind-index and customer-id keys derive. It never
// touches the key store.
type MasterKey [MasterKeySize]byte

// ErrBadMasterKey: the configured master key is not the base64 of 32 bytes.
var ErrBadMasterKey = errors.New("master key must be the base64 of 32 bytes")

// ParseMasterKey reads a master key written as standard or URL-safe
// base64, padded or not, surrounded by white space or not (a file written
// by `openssl rand -base64 32`). Errors wrap ErrBadMasterKey and never
// echo the input.
func ParseMasterKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	var mk MasterKey
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil && len(b) == MasterKeySize {
			copy(mk[:], b)
			return mk, nil
		}
		if err == nil {
			return MasterKey{}, fmt.Errorf("%w (got %d bytes)", ErrBadMasterKey, len(b))
		}
	}
	return MasterKey{}, ErrBadMasterKey
}

// String returns the key in standard base64, as files hold it.
func (m MasterKey) String() string { return base64.StdEncoding.EncodeToString(m[:]) }

// GoString hides the key from %#v, so that a debug print never leaks it.
func (m MasterKey) GoString() string { return "keyring.MasterKey{…}" }

// Format hides the key from every fmt verb; String is the explicit way to
// get it.
func (m MasterKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[master key]")) }

// ReadMasterKeyFile reads a master key from a file holding its base64.
// A file readable by others than its owner is refused: the master key
// protects every customer's personal data.
func ReadMasterKeyFile(path string) (MasterKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("master key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return MasterKey{}, fmt.Errorf("master key file %s is accessible by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("master key file: %w", err)
	}
	mk, err := ParseMasterKey(string(b))
	if err != nil {
		return MasterKey{}, fmt.Errorf("master key file %s: %w", path, err)
	}
	return mk, nil
}

// LoadOrCreateMasterKeyFile reads the master key in path, or, when the
// file does not exist, generates a random one and writes it there with
// mode 0600 (created reports that). Two processes racing to create it end
// with the same key: the file is created exclusively and the loser reads
// the winner's.
func LoadOrCreateMasterKeyFile(path string) (mk MasterKey, created bool, err error) {
	mk, err = ReadMasterKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return mk, false, err
	}
	if _, err := rand.Read(mk[:]); err != nil {
		return MasterKey{}, false, fmt.Errorf("generate master key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return MasterKey{}, false, fmt.Errorf("master key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		mk, err = ReadMasterKeyFile(path)
		return mk, false, err
	}
	if err != nil {
		return MasterKey{}, false, fmt.Errorf("create master key file: %w", err)
	}
	_, werr := f.WriteString(mk.String() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return MasterKey{}, false, fmt.Errorf("write master key file: %w", err)
	}
	return mk, true, nil
}

// Subkey labels: every key derived from the master key has its own, so
// that no two uses ever share a key.
const (
	labelWrap  = "cxledger/keyring/wrap/v1"
	labelCheck = "cxledger/keyring/check/v1"
	labelBlind = "cxledger/identity/blind-index/v1"
	labelID    = "cxledger/customer-id/v1"
	// Per data key.
	labelSeal  = "cxledger/pii/seal/v1"
	labelNonce = "cxledger/pii/nonce/v1"
)

// derive returns a 32-byte key for label from secret (HKDF-SHA256).
func derive(secret []byte, label string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, label, 32)
	if err != nil {
		return nil, fmt.Errorf("derive %s: %w", label, err)
	}
	return k, nil
}

// checkValue is the key check value stored beside the keys: a digest
// that identifies the master key without revealing it, so that starting
// with another master key fails at once instead of making every token
// unreadable.
func (m MasterKey) checkValue() ([]byte, error) {
	k, err := derive(m[:], labelCheck)
	if err != nil {
		return nil, err
	}
	return k[:16], nil
}

// sameCheck compares check values.
func sameCheck(a, b []byte) bool { return bytes.Equal(a, b) }
