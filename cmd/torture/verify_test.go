package torture

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/projections"
	"github.com/cxledger/cxledger/projections/catalog"
	"github.com/cxledger/cxledger/projections/identity"
	"github.com/google/uuid"
)

// findings collects violations by kind, so that a broken run reports how
// many of each and the first few in full instead of thousands of lines.
type findings struct {
	order []string
	items map[string][]string
}

const shownPerKind = 10

func (f *findings) add(kind, format string, args ...any) {
	if f.items == nil {
		f.items = map[string][]string{}
	}
	if _, ok := f.items[kind]; !ok {
		f.order = append(f.order, kind)
	}
	f.items[kind] = append(f.items[kind], fmt.Sprintf(format, args...))
}

// kinds returns the kinds of violation found, in the order first found.
func (f *findings) kinds() []string { return f.order }

// report fails t once per kind of violation.
func (f *findings) report(t testing.TB) {
	t.Helper()
	for _, kind := range f.order {
		items := f.items[kind]
		shown := items[:min(len(items), shownPerKind)]
		more := ""
		if len(items) > len(shown) {
			more = fmt.Sprintf("\n  … and %d more", len(items)-len(shown))
		}
		t.Errorf("%s: %d violation(s):\n  %s%s", kind, len(items), strings.Join(shown, "\n  "), more)
	}
}

// expectedEvent is where an acknowledged event must be.
type expectedEvent struct {
	ack     *ack
	stream  string
	version uint64
	typ     string
}

func (e expectedEvent) String() string {
	return fmt.Sprintf("%s at version %d of %s (appender %d, request %d, expected version %s, acknowledged after %d attempt(s) at version %d, position %d)",
		e.typ, e.version, e.stream, e.ack.appender, e.ack.seq, e.ack.expected, e.ack.attempts, e.ack.version, e.ack.position)
}

// logReader is what verifyStore reads of a store.
type logReader interface {
	ReadAll(ctx context.Context, opts eventstore.ReadAllOptions) ([]eventstore.Record, error)
	ReadStream(ctx context.Context, stream string, opts eventstore.ReadStreamOptions) ([]eventstore.Record, error)
	Head(ctx context.Context) (uint64, error)
}

// verifyStore checks the store against the acknowledgements: every
// acknowledged event exactly once, where its acknowledgement put it;
// nothing unacknowledged; streams without holes; positions strictly
// increasing. It returns the log's head, the number of retried requests
// whose events an earlier attempt had stored (an acknowledgement lost in a
// crash, settled by the idempotent retry) and the violations found.
func verifyStore(ctx context.Context, store logReader, acks []ack) (head uint64, settled int, f *findings, err error) {
	f = &findings{}
	want := make(map[uuid.UUID]expectedEvent)
	lengths := make(map[string]uint64) // stream -> events acknowledged
	for i := range acks {
		k := &acks[i]
		stream := domain.StreamID(k.customer)
		for j, id := range k.ids {
			e := expectedEvent{ack: k, stream: stream, version: k.firstVersion + uint64(j), typ: k.types[j]}
			if prev, dup := want[id]; dup {
				f.add("harness: event id generated twice", "%s: %s and %s", id, prev, e)
			}
			want[id] = e
		}
		lengths[stream] = max(lengths[stream], k.firstVersion+uint64(len(k.ids)))
	}

	// The global log, page by page.
	seen := make(map[uuid.UUID][]eventstore.Record)
	var last uint64
	total := 0
	for {
		page, err := store.ReadAll(ctx, eventstore.ReadAllOptions{After: last, Limit: 1000})
		if err != nil {
			return 0, 0, nil, fmt.Errorf("ReadAll after %d: %w", last, err)
		}
		for _, r := range page {
			if r.Position <= last {
				f.add("global positions not strictly increasing", "event %s (%s version %d) at position %d after position %d", r.ID, r.Stream, r.Version, r.Position, last)
			}
			last = max(last, r.Position)
			seen[r.ID] = append(seen[r.ID], r)
			total++
		}
		if len(page) == 0 {
			break
		}
	}
	head, err = store.Head(ctx)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("Head: %w", err)
	}
	if head != last {
		f.add("head differs from the log's last position", "Head %d, last position read %d", head, last)
	}

	for id, recs := range seen {
		e, acked := want[id]
		switch {
		case !acked:
			for _, r := range recs {
				f.add("unacknowledged events stored", "event %s: %s at version %d of %s, position %d", id, r.Type, r.Version, r.Stream, r.Position)
			}
			continue
		case len(recs) > 1:
			var at []string
			for _, r := range recs {
				at = append(at, fmt.Sprintf("%s v%d @%d", r.Stream, r.Version, r.Position))
			}
			f.add("acknowledged events stored more than once", "event %s, %s: stored %d times: %s", id, e, len(recs), strings.Join(at, ", "))
		}
		if r := recs[0]; r.Stream != e.stream || r.Version != e.version || r.Type != e.typ {
			f.add("acknowledged events stored elsewhere", "event %s, %s: stored as %s at version %d of %s", id, e, r.Type, r.Version, r.Stream)
		}
	}
	for id, e := range want {
		if len(seen[id]) == 0 {
			f.add("acknowledged events missing", "event %s, %s", id, e)
		}
	}

	// Each acknowledgement reported where its last event is. A retried
	// request whose events were recorded before its last attempt started
	// had been stored by an earlier attempt whose answer the crash lost.
	for i := range acks {
		k := &acks[i]
		id := k.ids[len(k.ids)-1]
		recs := seen[id]
		if len(recs) == 0 {
			continue
		}
		if recs[0].Position != k.position {
			f.add("acknowledged positions differ from the store's", "appender %d request %d (%s, %d attempt(s)): acknowledged position %d, event %s stored at position %d",
				k.appender, k.seq, domain.StreamID(k.customer), k.attempts, k.position, id, recs[0].Position)
		}
		if k.attempts > 1 && recs[0].RecordedAt.Before(k.lastAttempt) {
			settled++
		}
	}

	// Every stream, read on its own: versions 0..n-1, n as acknowledged.
	for _, stream := range slices.Sorted(maps.Keys(lengths)) {
		var n uint64
		for {
			page, err := store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{From: n, Limit: 1000})
			if err != nil {
				f.add("streams unreadable", "%s from version %d: %v", stream, n, err)
				break
			}
			for _, r := range page {
				if r.Version != n {
					f.add("stream versions with holes", "%s: version %d where %d was due (event %s)", stream, r.Version, n, r.ID)
				}
				n = r.Version + 1
			}
			if len(page) == 0 {
				break
			}
		}
		if n != lengths[stream] {
			f.add("stream lengths differ from the acknowledgements", "%s: %d events stored, %d acknowledged", stream, n, lengths[stream])
		}
	}
	if total != len(want) {
		f.add("log length differs from the acknowledgements", "%d events in the log, %d acknowledged", total, len(want))
	}
	return head, settled, f, nil
}

// verifyReadModels compares every catalog read model in rm, as the server
// left it, with a rebuild from scratch of the same log into memory: equal
// state digests, and checkpoints at the log's head. keys is the server's
// keyring (nil: none), with which the identity index is keyed.
func verifyReadModels(ctx context.Context, store eventstore.Store, rm projections.Backend, head uint64, keys identity.Keys) (*findings, error) {
	fresh := projections.NewMemory()
	all := catalog.All(catalog.Deps{Identifiers: keys})
	if err := projections.Replay(ctx, store, fresh, all, projections.Config{}, nil); err != nil {
		return nil, fmt.Errorf("rebuild from scratch: %w", err)
	}
	f := &findings{}
	for _, p := range all {
		name := p.Name()
		ns, err := rm.Active(ctx, name)
		if err != nil || ns == "" {
			f.add("read models not active", "%s: active namespace %q, %v", name, ns, err)
			continue
		}
		if cp, err := rm.Checkpoint(ctx, ns); err != nil || cp != head {
			f.add("read-model checkpoints not at the head", "%s (%s): checkpoint %d, head %d, %v", name, ns, cp, head, err)
		}
		live, err := projections.Digest(ctx, rm, name)
		if err != nil {
			f.add("read models unreadable", "%s: %v", name, err)
			continue
		}
		rebuilt, err := projections.Digest(ctx, fresh, name)
		if err != nil {
			return nil, fmt.Errorf("digest of the rebuilt %s: %w", name, err)
		}
		if live != rebuilt {
			f.add("read models differ from a rebuild from scratch", "%s (%s): digest %s, rebuilt %s\n    %s",
				name, ns, short(live), short(rebuilt), strings.Join(diffModels(ctx, rm, fresh, name), "\n    "))
		}
	}
	return f, nil
}

func short(digest string) string { return digest[:min(len(digest), 16)] }

// diffModels lists the first keys whose values differ between the read
// model name in a (live) and b (rebuilt).
func diffModels(ctx context.Context, a, b projections.Backend, name string) []string {
	load := func(be projections.Backend) (map[string]string, error) {
		var kv map[string]string
		err := projections.View(ctx, be, name, func(r projections.Reader) error {
			kv = map[string]string{}
			return r.Scan(ctx, "", "", func(k string, v []byte) (bool, error) {
				kv[k] = string(v)
				return true, nil
			})
		})
		return kv, err
	}
	live, err := load(a)
	if err != nil {
		return []string{"cannot read the live model: " + err.Error()}
	}
	rebuilt, err := load(b)
	if err != nil {
		return []string{"cannot read the rebuilt model: " + err.Error()}
	}
	keys := slices.Sorted(maps.Keys(live))
	for k := range rebuilt {
		if _, ok := live[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := []string{fmt.Sprintf("%d keys live, %d rebuilt", len(live), len(rebuilt))}
	for _, k := range keys {
		lv, lok := live[k]
		rv, rok := rebuilt[k]
		switch {
		case !rok:
			out = append(out, fmt.Sprintf("key %q only live: %s", k, clip(lv)))
		case !lok:
			out = append(out, fmt.Sprintf("key %q only rebuilt: %s", k, clip(rv)))
		case lv != rv:
			out = append(out, fmt.Sprintf("key %q live %s, rebuilt %s", k, clip(lv), clip(rv)))
		default:
			continue
		}
		if len(out) > 6 {
			break
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 240 {
		return s[:240] + "…"
	}
	return s
}
