package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/domain"
	"github.com/cxledger/cxledger/eventstore"
	"github.com/cxledger/cxledger/eventstore/boltstore"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

// TestLiveFeedSlowClientsBoundedMemory: 50,000 events of about 2 KiB
// (some 110 MiB of live feed) are appended while two clients hold
// /v1/events/live open with the default batch size: one never reads, one
// reads at about 1 MiB/s and so falls ever further behind. The server's
// live heap, sampled after a GC throughout, must stay under a fixed
// ceiling far below the backlog: the feed pulls from the store one batch
// at a time and waits in Write, so a slow client costs one batch, not its
// backlog. The client that never reads is dropped by the write deadline;
// the slow one stays connected while it reads, receives positions 1, 2,
// 3, ... without a gap, and is dropped once it stops reading too.
//
// The store is a bbolt file (outside the Go heap), so that the heap
// measures the server and not a store holding every event in memory.
//
// Nothing here depends on how fast the machine is: the slow client reads
// a burst only while it holds at most a third of what was appended (so it
// lags far behind however slow the appends: a slower log only makes it
// wait longer), yet never waits more than a third of the write deadline
// between bursts (so it is not dropped while it reads, however busy the
// machine: a burst of 3 MiB drains half the send buffer well within the
// other two thirds; its parsing is a string search, no decode).
func TestLiveFeedSlowClientsBoundedMemory(t *testing.T) {
	const (
		total     = 50_000
		perAppend = 100
		dataSize  = 2 << 10
		// Heap growth allowed over the baseline: under half the 110 MiB
		// backlog, so a server holding either client's backlog fails,
		// with room for what a loaded machine's GC pacing and the
		// appenders' in-flight batches add (+33 MiB seen under -race
		// beside the whole suite; +10 to +20 MiB on a quiet machine).
		ceiling = 48 << 20
		writeTO = 45 * time.Second
	)
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "events.db"), boltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	h := start(t, func(c *httpapi.Config) {
		c.Store = store
		c.SSEWriteTimeout = writeTO
	})
	// A safety net, not a measure: on a loaded machine under the race
	// detector the appends alone take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	heap := startHeapSampler(t)
	base := heap.baseline()

	silent, silentAddr := openLiveFeed(t, ctx, h, 0)
	defer silent.Body.Close()
	// The slow client reads 3 MiB at a time every 3s (1 MiB/s, a fraction
	// of the feed's rate). Bursts rather than a trickle, and a small
	// receive buffer, because of TCP: a writer blocked on a full send
	// buffer is woken only once half of it has drained, so a client that
	// trickles less than that within the write deadline is dropped like
	// one that reads nothing.
	slowResp, slowAddr := openLiveFeed(t, ctx, h, 64<<10)
	var appendedN atomic.Int64
	slow := &pacedReader{r: slowResp.Body, burst: 3 << 20, pause: 3 * time.Second, maxWait: writeTO / 3,
		stall: make(chan struct{}), drain: make(chan struct{})}
	slow.allow = func() bool { return int64(slow.count())*3 <= appendedN.Load() }
	defer slow.r.Close()
	feed := make(chan liveFeedResult, 1)
	go func() { feed <- readLiveFeed(slow) }()

	// Append the load straight into the store, as other processes would.
	customers := make([]string, 50)
	for i := range customers {
		customers[i] = domain.StreamID(uuid.New())
	}
	body := strings.Repeat("ñ", dataSize/2) // 2 bytes each in UTF-8
	began := time.Now()
	// Two appenders, so that validating 100 MiB of JSON under the race
	// detector uses every CPU.
	var g errgroup.Group
	for w := range 2 {
		g.Go(func() error {
			for i := w * perAppend; i < total; i += 2 * perAppend {
				evs := make([]eventstore.EventData, perAppend)
				for j := range evs {
					data, _ := json.Marshal(map[string]any{"body": body, "seq": i + j})
					evs[j] = eventstore.EventData{ID: uuid.New(), Type: domain.TypeNoteAdded, Data: data,
						Metadata: eventstore.Metadata{OccurredAt: time.Now(), Actor: "user:marta", Channel: "web", SchemaVersion: 1}}
				}
				if _, err := store.Append(ctx, customers[(i/perAppend)%len(customers)], eventstore.Any, evs...); err != nil {
					return err
				}
				appendedN.Add(perAppend)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	appended := time.Since(began)
	lag := slow.count()

	// The silent client is dropped; the slow one is still connected, far
	// behind.
	pollUntil(t, 3*time.Minute, "the silent client dropped", func() bool { return dropped(h, silentAddr) })
	if dropped(h, slowAddr) {
		t.Fatalf("the slow client was dropped though it reads within the %s write deadline", writeTO)
	}
	if lag >= total/2 {
		t.Fatalf("the slow client got %d of %d events: too fast to test a slow subscriber", lag, total)
	}

	// The slow client stops reading: the write deadline drops it.
	close(slow.stall)
	stalledAt := time.Now()
	pollUntil(t, 3*time.Minute, "the stalled client dropped", func() bool { return dropped(h, slowAddr) })
	droppedAfter := time.Since(stalledAt)
	pollUntil(t, time.Minute, "no live feed open", func() bool {
		return strings.Contains(string(h.call(t, "", "GET", "/metrics", "").body), "cxledger_live_subscribers 0")
	})
	peak := heap.stop()

	// It reads what the kernel still held for it, then the end of the
	// stream: it got a gapless prefix of the log, not all of it.
	close(slow.drain)
	res := <-feed
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.last == 0 || res.last >= total {
		t.Fatalf("the dropped client got positions 1..%d of %d", res.last, total)
	}

	fed := int64(total) * int64(dataSize)
	t.Logf("appended %d events (%d MiB of payload) in %s; slow client had %d when the appends ended, got 1..%d in all, dropped %s after it stopped reading",
		total, fed>>20, appended.Round(time.Millisecond), lag, res.last, droppedAfter.Round(time.Millisecond))
	t.Logf("heap in use after GC: baseline %.1f MiB, peak %.1f MiB (+%.1f MiB; ceiling +%d MiB) over %d samples",
		mib(base), mib(peak), mib(peak-base), ceiling>>20, heap.samples)
	if peak > base+ceiling {
		t.Fatalf("heap grew from %.1f MiB to %.1f MiB while slow clients lagged: over the +%d MiB ceiling", mib(base), mib(peak), ceiling>>20)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// dropped reports whether the server logged dropping the live feed of the
// client at addr (the log names the connection: "write tcp srv->addr").
func dropped(h *harness, addr string) bool {
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, "live feed client dropped") && strings.Contains(line, "->"+addr+":") {
			return true
		}
	}
	return false
}

// pollUntil polls cond until it holds or the deadline passes.
func pollUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openLiveFeed opens the live feed from the beginning as an analyst, on a
// connection of its own with a receive buffer of rcvBuf bytes (0: the
// system's default), and returns the connection's local address.
func openLiveFeed(t *testing.T, ctx context.Context, h *harness, rcvBuf int) (*http.Response, string) {
	t.Helper()
	var (
		d     net.Dialer
		local string
	)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		local = c.LocalAddr().String()
		if rcvBuf > 0 {
			err = c.(*net.TCPConn).SetReadBuffer(rcvBuf)
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequestWithContext(ctx, "GET", h.url+"/v1/events/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokens[httpapi.RoleAnalyst])
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("live feed: %d", resp.StatusCode)
	}
	return resp, local
}

// heapSampler records the peak of HeapInuse, measured right after a GC,
// so that it follows live data rather than garbage awaiting collection.
type heapSampler struct {
	stopc   chan struct{}
	done    chan struct{}
	peak    uint64
	samples int
}

func startHeapSampler(t *testing.T) *heapSampler {
	s := &heapSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			s.peak = max(s.peak, heapInUse())
			s.samples++
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *heapSampler) baseline() uint64 { return heapInUse() }

// stop ends the sampling and returns the peak.
func (s *heapSampler) stop() uint64 {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
	return s.peak
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// pacedReader reads in bursts: burst bytes as fast as it can, then
// nothing for pause, and after it for as long as allow says no, up to
// maxWait in all; it stops reading once stall is closed, and reads freely
// once drain is closed.
type pacedReader struct {
	r            io.ReadCloser
	burst        int
	pause        time.Duration
	maxWait      time.Duration
	allow        func() bool
	stall, drain chan struct{}
	left         int // bytes left in the current burst

	mu sync.Mutex
	n  int // events parsed so far, kept by readLiveFeed
}

func (p *pacedReader) Read(b []byte) (int, error) {
	select {
	case <-p.drain:
		return p.r.Read(b)
	default:
	}
	if p.left <= 0 {
		waited := time.Duration(0)
		for wait := p.pause; ; wait = 50 * time.Millisecond {
			select {
			case <-p.stall:
				<-p.drain
				return p.r.Read(b)
			case <-time.After(wait):
			}
			waited += wait
			if p.allow == nil || p.allow() || waited >= p.maxWait {
				break
			}
		}
		p.left = p.burst
	}
	n, err := p.r.Read(b[:min(len(b), p.left)])
	p.left -= n
	return n, err
}

func (p *pacedReader) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

type liveFeedResult struct {
	last uint64
	err  error
}

// readLiveFeed parses the feed until the server ends it, checking that
// ids are 1, 2, 3, ... and that each event's data is the record at that
// position. An event counts once its closing blank line arrived: the
// server may cut the connection in the middle of one.
func readLiveFeed(p *pacedReader) liveFeedResult {
	sc := bufio.NewScanner(p)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		last uint64
		id   string
		data string
	)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && id != "":
			pos, err := strconv.ParseUint(id, 10, 64)
			if err != nil || pos != last+1 {
				return liveFeedResult{last, fmt.Errorf("event id %q after %d: want %d", id, last, last+1)}
			}
			// The record names its position (a string search rather than a
			// decode: the reader must keep up with its bursts however busy
			// the machine, and the payload holds no "position" of its own).
			if !strings.Contains(data, `,"position":`+id+`,`) {
				return liveFeedResult{last, fmt.Errorf("data of event %d does not name its position: %.200s", pos, data)}
			}
			last, id, data = pos, "", ""
			p.mu.Lock()
			p.n++
			p.mu.Unlock()
		}
	}
	// The server cut the connection: an unexpected EOF of the chunked
	// body, or a plain end.
	return liveFeedResult{last: last}
}
