package keyring

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/google/uuid"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
)

// Erased is what a reveal shows in place of a value whose data key was
// destroyed: the customer was forgotten.
const Erased = "[erased]"

// Undecryptable is what a reveal shows in place of a value of the
// customer's that does not open with their live key — tampered with,
// damaged, or sealed under a key that is not theirs — instead of the
// ciphertext, which a reader could take for data. Each such reveal is
// logged as a warning naming the customer (and the event, where known),
// never the value.
const Undecryptable = "[undecryptable]"

// revealer opens the tokens of one customer within one call, loading the
// key at most once.
type revealer struct {
	k        *Keyring
	ctx      context.Context
	customer uuid.UUID
	loaded   bool
	dk       *dataKey
	st       state
	err      error
	// failed counts the customer's tokens that did not open.
	failed int
}

// reveal returns the replacement of one token: its plaintext, Erased when
// the customer's key is destroyed, Undecryptable when it is the customer's
// but does not open (or no key of theirs was ever made), or the token
// itself when it is another customer's.
func (r *revealer) reveal(t Token, text string) (plain string, opened bool) {
	if t.Customer != r.customer || r.err != nil {
		return text, false
	}
	if !r.loaded {
		r.dk, r.st, r.err = r.k.key(r.ctx, r.customer, false)
		r.loaded = true
		if r.err != nil {
			return text, false
		}
	}
	switch r.st {
	case stateDestroyed:
		return Erased, false
	case stateLive:
		if p, ok := r.dk.open(r.customer, t.Sealed); ok {
			return p, true
		}
	}
	r.failed++
	return Undecryptable, false
}

// warn logs the tokens that did not open, with attrs saying where they
// were (the event, when known).
func (r *revealer) warn(attrs ...any) {
	if r.failed == 0 {
		return
	}
	args := append([]any{"customer", r.customer, "values", r.failed}, attrs...)
	r.k.opts.Logger.WarnContext(r.ctx, "keyring: sealed values do not open (tampered or damaged); shown as "+Undecryptable, args...)
}

// Reveal returns s with every token of customer in it — the whole of s, or
// embedded in longer text such as a timeline summary — replaced by its
// plaintext, or by Erased once the customer was forgotten. A token of the
// customer's that does not open (forged, tampered with or damaged) shows as
// Undecryptable, and is logged as a warning. Tokens of other customers are
// left as they are: they are ciphertext, and say nothing. A nil Keyring
// returns s. The error is the key store's, when it cannot be read.
func (k *Keyring) Reveal(ctx context.Context, customer uuid.UUID, s string) (string, error) {
	return k.RevealFunc(ctx, customer, s, nil)
}

// RevealFunc is Reveal passing each revealed plaintext through fn (nil: as
// it is) — to clip it to one line for a summary, say. The Erased marker
// and tokens left alone do not go through fn.
func (k *Keyring) RevealFunc(ctx context.Context, customer uuid.UUID, s string, fn func(string) string) (string, error) {
	if k == nil {
		return s, nil
	}
	r := &revealer{k: k, ctx: ctx, customer: customer}
	out := ReplaceTokens(s, func(t Token, text string) string {
		p, opened := r.reveal(t, text)
		if opened && fn != nil {
			p = fn(p)
		}
		return p
	})
	if r.err != nil {
		return "", r.err
	}
	r.warn()
	return out, nil
}

// RevealJSON returns the JSON document doc with every token of customer
// in its strings revealed as Reveal does, the plaintext escaped as JSON
// (as encoding/json.Marshal escapes it, so that revealing sealed event data
// gives back the bytes domain.Encode made). A token can only sit inside a
// JSON string (its characters are no JSON syntax and need no escaping), so
// this works on the text and keeps every other byte. A nil Keyring returns
// doc.
func (k *Keyring) RevealJSON(ctx context.Context, customer uuid.UUID, doc []byte) ([]byte, error) {
	return k.revealJSON(ctx, customer, doc)
}

// revealJSON is RevealJSON; attrs locate doc in the warning about tokens
// that do not open.
func (k *Keyring) revealJSON(ctx context.Context, customer uuid.UUID, doc []byte, attrs ...any) ([]byte, error) {
	if k == nil || !bytes.Contains(doc, []byte(domain.SealedPrefix)) {
		return doc, nil
	}
	r := &revealer{k: k, ctx: ctx, customer: customer}
	out := ReplaceTokens(string(doc), func(t Token, text string) string {
		p, opened := r.reveal(t, text)
		if !opened {
			return p // the token, Erased or Undecryptable: none needs escaping
		}
		return jsonStringContent(p)
	})
	if r.err != nil {
		return nil, r.err
	}
	r.warn(attrs...)
	return []byte(out), nil
}

// jsonStringContent is s as encoding/json writes it inside quotes.
func jsonStringContent(s string) string {
	b, _ := json.Marshal(s) // a string always marshals, quoted
	return string(b[1 : len(b)-1])
}

// RevealRecords returns recs with the data of each record revealed for the
// customer of its stream (RevealJSON), for an edge that shows stored
// events. recs is not modified; records without tokens, and records of
// streams that are no customer's, are returned as they are. A nil Keyring
// returns recs.
func (k *Keyring) RevealRecords(ctx context.Context, recs []eventstore.Record) ([]eventstore.Record, error) {
	if k == nil {
		return recs, nil
	}
	var out []eventstore.Record
	for i, rec := range recs {
		if !bytes.Contains(rec.Data, []byte(domain.SealedPrefix)) {
			continue
		}
		customer, err := domain.ParseStreamID(rec.Stream)
		if err != nil {
			continue
		}
		data, err := k.revealJSON(ctx, customer, rec.Data, "event", rec.ID, "stream", rec.Stream, "position", rec.Position)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = append([]eventstore.Record(nil), recs...)
		}
		out[i].Data = data
	}
	if out == nil {
		return recs, nil
	}
	return out, nil
}

// Open returns the plaintext of one stored value of customer's: the value
// itself when it is not sealed. ok is false when it is sealed and cannot be
// opened — the customer was forgotten, the token is another customer's or
// malformed — so that the identity index leaves it out. The error is the
// key store's. A nil Keyring returns stored.
func (k *Keyring) Open(ctx context.Context, customer uuid.UUID, stored string) (plain string, ok bool, err error) {
	if k == nil || !domain.IsSealed(stored) {
		return stored, true, nil
	}
	t, perr := ParseToken(stored)
	if perr != nil || t.Customer != customer {
		return "", false, nil
	}
	dk, st, err := k.key(ctx, customer, false)
	if err != nil || st != stateLive {
		return "", false, err
	}
	p, ok := dk.open(customer, t.Sealed)
	return p, ok, nil
}

// Blind returns the blind index of an identifier: HMAC-SHA256, under a
// key derived from the master key, of its kind and canonical value, in
// hex. The identity index keys identifiers by it, so that the read model
// holds no e-mail address or phone number, and nobody without the master
// key can test a guess against it. A nil Keyring returns canonical.
func (k *Keyring) Blind(kind domain.IdentifierKind, canonical string) string {
	if k == nil {
		return canonical
	}
	return hex.EncodeToString(k.mac(k.blind, string(kind), canonical))
}

// CustomerID derives the id of the customer registered for an identifier
// nobody holds (broker ingest, imports: see DerivedCustomerIDs, which
// picks the generation): a uuid (version 8) from HMAC-SHA256, under
// a key derived from the master key, of the kind, the canonical value and
// the generation. Unlike an unkeyed hash it cannot be recomputed from a
// guessed address. generation starts at 0 and moves on when the customer
// of the previous one was forgotten. A nil Keyring returns uuid.Nil: the
// caller keeps its unkeyed derivation.
func (k *Keyring) CustomerID(kind domain.IdentifierKind, canonical string, generation int) uuid.UUID {
	if k == nil {
		return uuid.Nil
	}
	sum := k.mac(k.idKey, string(kind), canonical, strconv.Itoa(generation))
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x80 // version 8: custom
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// mac is HMAC-SHA256 of parts, each length-prefixed so that no two lists
// of parts collide.
func (k *Keyring) mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(strconv.Itoa(len(p)) + ":"))
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}
