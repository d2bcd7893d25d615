package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

var imapTestGroupRE = regexp.MustCompile(`(?m)^X-Test-Group: (\S+)\r$`)

// imapGroupMessage is imapTestMessage with an X-Test-Group header, the
// ordering key of the test's key function.
func imapGroupMessage(id, group string, size int, marker string) []byte {
	raw := imapTestMessage(id, size, marker)
	return append([]byte("X-Test-Group: "+group+"\r\n"), raw...)
}

// imapOrderCheck wraps a recorder's handler: it counts handlers running at
// once and checks that messages of one group never overlap and run in UID
// order.
type imapOrderCheck struct {
	mu         sync.Mutex
	running    int
	maxRunning int
	busy       map[string]bool
	lastUID    map[string]uint32
	problems   []string
}

func (c *imapOrderCheck) wrap(rec *imapRecorder, hold time.Duration) Handler {
	return func(ctx context.Context, f *Fetched) error {
		// Peek at the group without consuming the body for the recorder.
		raw := make([]byte, 64)
		n, _ := f.Body.Read(raw)
		group := "?"
		if m := imapTestGroupRE.FindSubmatch(raw[:n]); m != nil {
			group = string(m[1])
		}
		f.Body = io.MultiReader(bytes.NewReader(raw[:n]), f.Body)
		c.mu.Lock()
		if c.busy[group] {
			c.problems = append(c.problems, fmt.Sprintf("uid %d: group %s already being handled", f.UID, group))
		}
		if f.UID <= c.lastUID[group] {
			c.problems = append(c.problems, fmt.Sprintf("uid %d of group %s after uid %d", f.UID, group, c.lastUID[group]))
		}
		c.busy[group] = true
		c.lastUID[group] = f.UID
		c.running++
		c.maxRunning = max(c.maxRunning, c.running)
		c.mu.Unlock()
		time.Sleep(hold)
		err := rec.handle(ctx, f)
		c.mu.Lock()
		c.running--
		c.busy[group] = false
		c.mu.Unlock()
		return err
	}
}

// TestIMAPSourceConcurrent drains a backlog with four workers: every
// message is handled once and moved once, messages that share a key are
// handled one after another in UID order, others overlap; a message over
// ConcurrentMaxBytes is streamed alone; a failing handler's message is
// retried; and connections cut while handlers are in flight (a body cut
// short, a MOVE that never reaches the server) lose and repeat nothing.
func TestIMAPSourceConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		caps    imap.CapSet
		faults  bool
		batches bool
	}{
		{name: "MOVE", caps: imapCapsRev2},
		{name: "COPY+STORE+UID EXPUNGE", caps: imapCapsRev1UP},
		{name: "MOVE with dropped connections", caps: imapCapsRev2, faults: true},
		{name: "batches, MOVE", caps: imapCapsRev2, batches: true},
		{name: "batches, MOVE with dropped connections", caps: imapCapsRev2, faults: true, batches: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: tc.caps})
			raws := make(map[string][]byte)
			markers := map[string]string{}
			if tc.faults {
				markers = map[string]string{"c07": "CUT-IN-BODY-OF-C07", "c21": "CUT-IN-BODY-OF-C21"}
			}
			n := 32
			if tc.batches {
				n = 2*imapBodyBatch + 2
			}
			for i := 1; i <= n; i++ {
				id := fmt.Sprintf("c%02d", i)
				size := 2000
				if i == 16 && !tc.batches {
					size = ConcurrentMaxBytes + 4096 // streamed alone
				}
				if i == n-1 && tc.batches { // after two batches, which overlap
					size = ConcurrentMaxBytes + 4096
				}
				raws[id] = imapGroupMessage(id, fmt.Sprintf("g%d", i%5), size, markers[id])
				ts.appendMsg("INBOX", raws[id], time.Now())
			}
			var opts []SourceOption
			var faults *imapFaults
			if tc.faults {
				faults = &imapFaults{
					cutOnRead:  []string{markers["c07"], markers["c21"]},
					cutOnWrite: []string{"MOVE "}, // the first MOVE never reaches the server
				}
				opts = append(opts, WithDialer(faults.dialer()))
			}
			keys := func(raw []byte) []OrderKey {
				if m := imapTestGroupRE.FindSubmatch(raw); m != nil {
					g := string(m[1])
					return orderKeys(g, "group:"+g, g) // a key twice is one key
				}
				return nil
			}
			opts = append(opts, WithConcurrency(4, keys))
			rec := &imapRecorder{fail: func(id string, n int) error {
				if id == "c11" && n == 1 {
					return errors.New("store unavailable")
				}
				return nil
			}}
			check := &imapOrderCheck{busy: map[string]bool{}, lastUID: map[string]uint32{}}
			cp := newIMAPCheckpoints()
			src := NewSource(imapTestConfig(ts), cp, imapTestLog(t), opts...)
			h := check.wrap(rec, 5*time.Millisecond)
			var bh BatchHandler
			var batchMu sync.Mutex
			var batchSizes []int
			if tc.batches {
				// Each message in turn, as a batch handler must order them.
				bh = func(ctx context.Context, fs []*Fetched) []error {
					batchMu.Lock()
					batchSizes = append(batchSizes, len(fs))
					batchMu.Unlock()
					errs := make([]error, len(fs))
					for i, f := range fs {
						if i > 0 && f.UID <= fs[i-1].UID {
							errs[i] = fmt.Errorf("uid %d after uid %d in a batch", f.UID, fs[i-1].UID)
							t.Error(errs[i])
							continue
						}
						if f.Turn != nil || f.Release != nil || f.Raw == nil {
							t.Errorf("uid %d: a batch's message has Turn, Release or no Raw", f.UID)
						}
						errs[i] = h(ctx, f)
					}
					return errs
				}
			}
			stop := imapRunSourceBatches(t, src, h, bh)
			imapWaitFor(t, 20*time.Second, "all handled", func() bool { return src.Stats().Handled == uint64(n) })
			stop()
			if tc.batches {
				batchMu.Lock()
				if !slices.ContainsFunc(batchSizes, func(n int) bool { return n > 4 }) {
					t.Errorf("batch sizes %v: want runs of the 16 read together", batchSizes)
				}
				batchMu.Unlock()
			}

			imapCheckProcessedOnce(t, ts, rec, raws)
			if got := ts.count("INBOX"); got != 0 {
				t.Errorf("INBOX has %d messages left", got)
			}
			check.mu.Lock()
			defer check.mu.Unlock()
			// A message retried after a failure (c11's handler, the bodies
			// of c07 and c21 cut short) may run after later ones of its
			// group, as in the serial path: that is the retry, not a breach
			// of order.
			retried := []string{"uid 11 of group"}
			if tc.faults {
				retried = append(retried, "uid 7 of group", "uid 21 of group")
			}
			for _, p := range check.problems {
				if !slices.ContainsFunc(retried, func(r string) bool { return strings.HasPrefix(p, r) }) {
					t.Error(p)
				}
			}
			if check.maxRunning < 2 && !tc.batches {
				t.Errorf("at most %d handler ran at once with 4 workers", check.maxRunning)
			}
			if n := len(rec.callsFor("c11")); n != 2 {
				t.Errorf("c11 handled %d times, want a failure and a retry", n)
			}
			if tc.faults {
				if fired := faults.firedMarkers(); len(fired) != 3 {
					t.Errorf("faults fired: %q, want all 3", fired)
				}
				// A body cut short never reaches the handler in this mode.
				for _, id := range []string{"c07", "c21"} {
					for _, c := range rec.callsFor(id) {
						if c.readErr != nil {
							t.Errorf("%s: handler saw a read error %v", id, c.readErr)
						}
					}
				}
			}
			if _, last := cp.get(imapTestUser + "/INBOX"); last != uint32(n) {
				t.Errorf("checkpoint last UID %d, want %d", last, n)
			}
		})
	}
}

// TestIMAPSourceConcurrentShutdown stops a source while six messages that
// share a key are in hand: the handler already running finishes, and the
// five not begun are left untouched (no attempt, no handler error), to be
// handled by the next run.
func TestIMAPSourceConcurrentShutdown(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	raws := map[string][]byte{}
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("s%d", i)
		raws[id] = imapGroupMessage(id, "one", 500, "")
		ts.appendMsg("INBOX", raws[id], time.Now())
	}
	keys := func(raw []byte) []OrderKey { return orderKeys("one") }
	entered := make(chan string, 6)
	release := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	h := func(ctx context.Context, f *Fetched) error {
		b, _ := io.ReadAll(f.Body)
		id := string(imapTestIDRE.FindSubmatch(b)[1])
		entered <- id
		<-release
		if ctx.Err() != nil {
			return ctx.Err() // a handler that has begun must not be cancelled
		}
		mu.Lock()
		handled = append(handled, id)
		mu.Unlock()
		return nil
	}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, keys))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	select {
	case id := <-entered:
		if id != "s1" {
			t.Fatalf("first handler for %s, want s1", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no handler started")
	}
	// Let the source fetch the rest (they wait for s1, which shares their
	// key) while s1 is in hand.
	time.Sleep(300 * time.Millisecond)
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || handled[0] != "s1" {
		t.Errorf("handled %v, want s1 alone (finished although shutdown began)", handled)
	}
	if n := len(entered); n != 0 {
		t.Errorf("%d more handlers began after shutdown", n)
	}
	st := src.Stats()
	if st.HandlerErrors != 0 || st.PendingRetry > 1 {
		t.Errorf("stats %+v: want no handler errors and at most s1's move pending", st)
	}

	// The next run handles the rest, and s1 only moves.
	src2 := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, keys))
	var mu2 sync.Mutex
	seen := map[string]int{}
	stop := imapRunSource(t, src2, func(ctx context.Context, f *Fetched) error {
		b, _ := io.ReadAll(f.Body)
		mu2.Lock()
		seen[string(imapTestIDRE.FindSubmatch(b)[1])]++
		mu2.Unlock()
		return nil
	})
	imapWaitFor(t, 10*time.Second, "INBOX empty", func() bool { return ts.count("INBOX") == 0 })
	stop()
	mu2.Lock()
	defer mu2.Unlock()
	for i := 2; i <= 6; i++ {
		if id := fmt.Sprintf("s%d", i); seen[id] != 1 {
			t.Errorf("%s handled %d times by the next run, want 1", id, seen[id])
		}
	}
}

// TestIMAPSourceConcurrentListedSmaller: a server that lists a message far
// smaller than the body it then sends does not get that body read whole
// into memory: the first attempt stops at the literal's announced size,
// and the next one streams the message; the small ones around it are read
// whole as usual, and everything is handled once.
func TestIMAPSourceConcurrentListedSmaller(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2, shrinkSize: true})
	raws := map[string][]byte{}
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("s%02d", i)
		size := 2000
		if i == 3 {
			size = ConcurrentMaxBytes + 64<<10
		}
		raws[id] = imapGroupMessage(id, fmt.Sprintf("g%d", i), size, "")
		ts.appendMsg("INBOX", raws[id], time.Now())
	}
	rec := &imapRecorder{}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t),
		WithConcurrency(4, func([]byte) []OrderKey { return nil }))
	stop := imapRunSource(t, src, rec.handle)
	imapWaitFor(t, 20*time.Second, "all handled", func() bool { return src.Stats().Handled == uint64(len(raws)) })
	stop()

	imapCheckProcessedOnce(t, ts, rec, raws)
	for id := range raws {
		calls := rec.callsFor(id)
		if len(calls) != 1 {
			t.Fatalf("%s handled %d times", id, len(calls))
		}
		streamed := calls[0].meta.Raw == nil
		if want := id == "s03"; streamed != want {
			t.Errorf("%s: streamed %v, want %v", id, streamed, want)
		}
	}
}

// TestIMAPSourceConcurrentMoveRefused: handled messages are moved together
// with one UID MOVE; when the server refuses it (here the processed folder
// was deleted while the handlers ran), each is moved on its own so that the
// refusal is recorded against each message, nothing is deleted, and the
// retry only redoes the moves.
func TestIMAPSourceConcurrentMoveRefused(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	clock := &imapFakeClock{now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	raws := map[string][]byte{}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("r%d", i)
		raws[id] = imapTestMessage(id, 3000, "")
		ts.appendMsg("INBOX", raws[id], time.Now())
	}
	rec := &imapRecorder{}
	gate, entered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, f *Fetched) error {
		once.Do(func() { close(entered) })
		<-gate
		return rec.handle(ctx, f)
	}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithClock(clock.Now),
		WithConcurrency(4, func([]byte) []OrderKey { return nil }))
	imapRunSource(t, src, h)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no handler started")
	}
	if err := ts.user.Delete(imapTestProcessed); err != nil {
		t.Fatal(err)
	}
	close(gate)
	imapWaitFor(t, 5*time.Second, "failed moves", func() bool { return src.Stats().MoveErrors >= 3 })
	time.Sleep(150 * time.Millisecond) // several wake-ups; the clock is frozen
	if st := src.Stats(); st.MoveErrors != 3 || st.Handled != 0 || st.PendingRetry != 3 {
		t.Fatalf("stats = %+v, want a move error for each of the 3, retries not due yet", st)
	}
	inbox := ts.snapshot("INBOX")
	if len(inbox) != 3 {
		t.Fatalf("INBOX holds %d messages, want the 3 intact", len(inbox))
	}
	for _, m := range inbox {
		if m.has(imap.FlagDeleted) {
			t.Fatal("a message was flagged deleted after a refused move")
		}
	}
	clock.Advance(time.Second)
	imapWaitFor(t, 5*time.Second, "moves retried", func() bool { return src.Stats().Handled == 3 })
	if n := len(rec.snapshot()); n != 3 {
		t.Errorf("handler called %d times; the retry should only redo the moves", n)
	}
	imapCheckProcessedOnce(t, ts, rec, raws)
}

// TestIMAPSourceConcurrentMovesTogether: a backlog's handled messages are
// moved with a few UID MOVE commands, not one per message.
func TestIMAPSourceConcurrentMovesTogether(t *testing.T) {
	var moves atomic.Int32
	moveRE := regexp.MustCompile(`(?i)\bUID MOVE\b`)
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2, watch: func(p []byte) {
		moves.Add(int32(len(moveRE.FindAll(p, -1))))
	}})
	raws := map[string][]byte{}
	const n = 20
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("b%02d", i)
		raws[id] = imapTestMessage(id, 2000, "")
		ts.appendMsg("INBOX", raws[id], time.Now())
	}
	rec := &imapRecorder{}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t),
		WithConcurrency(4, func([]byte) []OrderKey { return nil }))
	stop := imapRunSource(t, src, rec.handle)
	imapWaitFor(t, 10*time.Second, "all handled", func() bool { return src.Stats().Handled == n })
	stop()
	imapCheckProcessedOnce(t, ts, rec, raws)
	if got := moves.Load(); got < 1 || got > n/4 {
		t.Errorf("%d UID MOVE commands for %d messages, want a few", got, n)
	}
}

// orderKeys are keys held until the handler returns.
func orderKeys(names ...string) []OrderKey {
	keys := make([]OrderKey, len(names))
	for i, n := range names {
		keys[i] = OrderKey{Name: n}
	}
	return keys
}
