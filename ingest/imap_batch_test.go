package ingest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// imapBatchIDs returns the test ids of a batch's messages.
func imapBatchIDs(fs []*Fetched) []string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = string(imapTestIDRE.FindSubmatch(f.Raw)[1])
	}
	return ids
}

// TestIMAPSourceBatchShutdown stops a source while a batch (imapBodyBatch
// messages) is in hand and the next batch, which shares its key, waits for it: the
// batch in hand finishes, the waiting one is left untouched (no attempt,
// no handler error), and the next run handles it once.
func TestIMAPSourceBatchShutdown(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	n := imapBodyBatch + 4
	for i := 1; i <= n; i++ {
		ts.appendMsg("INBOX", imapGroupMessage(fmt.Sprintf("s%02d", i), "one", 500, ""), time.Now())
	}
	keys := func(raw []byte) []OrderKey { return orderKeys("one") }
	entered := make(chan []string, 4)
	release := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	bh := func(ctx context.Context, fs []*Fetched) []error {
		ids := imapBatchIDs(fs)
		entered <- ids
		<-release
		errs := make([]error, len(fs))
		if ctx.Err() != nil {
			for i := range errs {
				errs[i] = ctx.Err() // a batch that has begun must not be cancelled
			}
			return errs
		}
		mu.Lock()
		handled = append(handled, ids...)
		mu.Unlock()
		return errs
	}
	h := func(ctx context.Context, f *Fetched) error {
		t.Errorf("uid %d handled alone", f.UID)
		return nil
	}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, keys))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.RunBatches(ctx, h, bh) }()
	select {
	case ids := <-entered:
		if last := fmt.Sprintf("s%02d", imapBodyBatch); len(ids) != imapBodyBatch || ids[0] != "s01" || ids[len(ids)-1] != last {
			t.Fatalf("first batch %v, want s01..%s", ids, last)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no batch started")
	}
	// Let the source read the next batch (it waits for the first, which
	// shares its key) while the first is in hand.
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
	if len(handled) != imapBodyBatch {
		t.Errorf("handled %v, want the first batch (finished although shutdown began)", handled)
	}
	mu.Unlock()
	if k := len(entered); k != 0 {
		t.Errorf("%d more batches began after shutdown", k)
	}
	if st := src.Stats(); st.HandlerErrors != 0 {
		t.Errorf("stats %+v: want no handler errors", st)
	}

	// The next run handles the rest once.
	src2 := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, keys))
	var mu2 sync.Mutex
	seen := map[string]int{}
	count := func(ids ...string) {
		mu2.Lock()
		defer mu2.Unlock()
		for _, id := range ids {
			seen[id]++
		}
	}
	stop := imapRunSourceBatches(t, src2, func(ctx context.Context, f *Fetched) error {
		count(imapBatchIDs([]*Fetched{f})...)
		return nil
	}, func(ctx context.Context, fs []*Fetched) []error {
		count(imapBatchIDs(fs)...)
		return make([]error, len(fs))
	})
	imapWaitFor(t, 10*time.Second, "INBOX empty", func() bool { return ts.count("INBOX") == 0 })
	stop()
	mu2.Lock()
	defer mu2.Unlock()
	for i := 1; i <= n; i++ {
		// The first batch was handled, and its moves may have been left to
		// this run, which knows nothing of that run (the processed markers
		// of a real handler make a second call a no-op): at most once.
		id := fmt.Sprintf("s%02d", i)
		if i > imapBodyBatch && seen[id] != 1 || seen[id] > 1 {
			t.Errorf("%s handled %d times by the next run, want once (at most once for the first batch)", id, seen[id])
		}
	}
}

// TestIMAPSourceBatchFailures: a batch handler's error fails only its
// message, which is retried. When the batch handler panics or answers the
// wrong number of errors, its messages are handled alone, in order: a
// message that makes every handler panic (a poison message) stays, alone,
// and holds up none of the others, which are handled once each.
func TestIMAPSourceBatchFailures(t *testing.T) {
	for _, mode := range []string{"one error", "poison", "short answer"} {
		t.Run(mode, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
			const n = 10
			for i := 1; i <= n; i++ {
				ts.appendMsg("INBOX", imapGroupMessage(fmt.Sprintf("f%02d", i), fmt.Sprintf("g%d", i%3), 500, ""), time.Now())
			}
			keys := func(raw []byte) []OrderKey {
				return orderKeys(string(imapTestGroupRE.FindSubmatch(raw)[1]))
			}
			var mu sync.Mutex
			calls := map[string]int{}
			ok := map[string]int{}
			first := true
			handle := func(fs []*Fetched) []error {
				mu.Lock()
				defer mu.Unlock()
				errs := make([]error, len(fs))
				failing := first
				first = false
				for i, id := range imapBatchIDs(fs) {
					calls[id]++
					switch {
					case ok[id] > 0:
						// Stored by a batch that then panicked: found
						// processed, as a real handler finds it.
					case mode == "poison" && id == "f03":
						panic("poison message")
					case failing && mode == "short answer":
						return errs[:len(errs)-1]
					case failing && mode == "one error" && id == "f03":
						errs[i] = fmt.Errorf("store unavailable for %s", id)
					default:
						ok[id]++
					}
				}
				return errs
			}
			// Every message is looked up and found unprocessed before its
			// batch is fetched (Fetched.Unprocessed).
			lookup := func(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32) ([]bool, error) {
				return make([]bool, len(uids)), nil
			}
			src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, keys), WithProcessedLookup(lookup))
			var batches int
			stop := imapRunSourceBatches(t, src, func(ctx context.Context, f *Fetched) error {
				if mode == "short answer" && f.Unprocessed {
					// Handled alone only after the batch failed, which
					// may have stored it: the handler must check.
					t.Errorf("uid %d handled alone after a failed batch marked unprocessed", f.UID)
				}
				return handle([]*Fetched{f})[0]
			}, func(ctx context.Context, fs []*Fetched) []error {
				mu.Lock()
				batches++
				mu.Unlock()
				return handle(fs)
			})
			want := uint64(n)
			if mode == "poison" {
				want = n - 1
			}
			imapWaitFor(t, 10*time.Second, "all handled", func() bool { return src.Stats().Handled == want })
			if mode == "poison" {
				// f03 is tried again (alone or in a batch of its own) and
				// fails again.
				imapWaitFor(t, 10*time.Second, "the poison message tried again", func() bool {
					mu.Lock()
					defer mu.Unlock()
					return calls["f03"] >= 3
				})
			}
			stop()
			if got, left := ts.count("INBOX"), int(n-want); got != left {
				t.Errorf("INBOX has %d messages left, want %d", got, left)
			}
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i <= n; i++ {
				id := fmt.Sprintf("f%02d", i)
				wantOK := 1
				if mode == "poison" && id == "f03" {
					wantOK = 0
				}
				if ok[id] != wantOK {
					t.Errorf("%s handled successfully %d times, want %d (calls %d)", id, ok[id], wantOK, calls[id])
				}
			}
			if batches == 0 {
				t.Error("no batch")
			}
			st := src.Stats()
			switch mode {
			case "one error":
				if st.HandlerErrors != 1 {
					t.Errorf("stats %+v: want 1 handler error", st)
				}
			case "short answer":
				if st.HandlerErrors != 0 {
					t.Errorf("stats %+v: want no handler errors (handled alone after the short answer)", st)
				}
			}
		})
	}
}

// TestIMAPSourceBatchBarrier: a message handled alone after a batch (the
// one after the first imapBodyBatch of a backlog, read in a group of its
// own) waits until the batch is
// done, although its ordering keys were never compared with the batch's.
func TestIMAPSourceBatchBarrier(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	n := imapBodyBatch + 1
	for i := 1; i <= n; i++ {
		ts.appendMsg("INBOX", imapGroupMessage(fmt.Sprintf("b%02d", i), "one", 500, ""), time.Now())
	}
	keys := func(raw []byte) []OrderKey { return orderKeys("one") }
	var mu sync.Mutex
	var events []string
	note := func(s string) {
		mu.Lock()
		events = append(events, s)
		mu.Unlock()
	}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, keys))
	stop := imapRunSourceBatches(t, src, func(ctx context.Context, f *Fetched) error {
		note("alone " + imapBatchIDs([]*Fetched{f})[0])
		return nil
	}, func(ctx context.Context, fs []*Fetched) []error {
		note(fmt.Sprintf("batch of %d begins", len(fs)))
		time.Sleep(150 * time.Millisecond)
		note(fmt.Sprintf("batch of %d ends", len(fs)))
		return make([]error, len(fs))
	})
	imapWaitFor(t, 10*time.Second, "all handled", func() bool { return src.Stats().Handled == uint64(n) })
	stop()
	mu.Lock()
	defer mu.Unlock()
	want := []string{fmt.Sprintf("batch of %d begins", imapBodyBatch), fmt.Sprintf("batch of %d ends", imapBodyBatch), fmt.Sprintf("alone b%02d", n)}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", events, want)
	}
}
