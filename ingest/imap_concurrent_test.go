package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
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
		name   string
		caps   imap.CapSet
		faults bool
	}{
		{name: "MOVE", caps: imapCapsRev2},
		{name: "COPY+STORE+UID EXPUNGE", caps: imapCapsRev1UP},
		{name: "MOVE with dropped connections", caps: imapCapsRev2, faults: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: tc.caps})
			raws := make(map[string][]byte)
			markers := map[string]string{}
			if tc.faults {
				markers = map[string]string{"c07": "CUT-IN-BODY-OF-C07", "c21": "CUT-IN-BODY-OF-C21"}
			}
			const n = 32
			for i := 1; i <= n; i++ {
				id := fmt.Sprintf("c%02d", i)
				size := 2000
				if i == 16 {
					size = ConcurrentMaxBytes + 4096 // streamed alone
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
			keys := func(raw []byte) []string {
				if m := imapTestGroupRE.FindSubmatch(raw); m != nil {
					return []string{string(m[1])}
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
			stop := imapRunSource(t, src, check.wrap(rec, 5*time.Millisecond))
			imapWaitFor(t, 20*time.Second, "all handled", func() bool { return src.Stats().Handled == n })
			stop()

			imapCheckProcessedOnce(t, ts, rec, raws)
			if got := ts.count("INBOX"); got != 0 {
				t.Errorf("INBOX has %d messages left", got)
			}
			check.mu.Lock()
			defer check.mu.Unlock()
			// The retried message runs again after later ones of its group:
			// that is the retry, not a breach of order.
			for _, p := range check.problems {
				if !strings.HasPrefix(p, "uid 11 of group g1 after") {
					t.Error(p)
				}
			}
			if check.maxRunning < 2 {
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
			if _, last := cp.get(imapTestUser + "/INBOX"); last != n {
				t.Errorf("checkpoint last UID %d, want %d", last, n)
			}
		})
	}
}
