package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIMAPProcessedLookup: the source asks its processed lookup once per
// batch about the new messages, and marks unprocessed exactly those the
// lookup found no marker for, alone or with handlers overlapping; a lookup
// that fails marks none (each handler then checks for itself).
func TestIMAPProcessedLookup(t *testing.T) {
	for _, tc := range []struct {
		name    string
		workers int
		fail    bool
		stale   bool // the handlers start more than processedLookupFresh after the lookup
	}{
		{"one at a time", 1, false, false},
		{"concurrent", 4, false, false},
		{"lookup fails", 4, true, false},
		{"answer too old", 4, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
			const n = 6
			for i := 1; i <= n; i++ {
				ts.appendMsg("INBOX", imapGroupMessage(fmt.Sprintf("m%d", i), "k", 200, ""), time.Now())
			}
			var mu sync.Mutex
			var asked [][]uint32
			var skew atomic.Int64 // added to the source's clock
			lookup := func(_ context.Context, mailbox string, _ uint32, uids []uint32) ([]bool, error) {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, slices.Clone(uids))
				if tc.stale {
					skew.Add(int64(processedLookupFresh + time.Second))
				}
				if tc.fail {
					return nil, errors.New("redis down")
				}
				done := make([]bool, len(uids))
				for i, u := range uids {
					done[i] = u%2 == 0 // even UIDs were processed before
				}
				return done, nil
			}
			unprocessed := map[uint32]bool{}
			h := func(ctx context.Context, f *Fetched) error {
				_, _ = io.Copy(io.Discard, f.Body)
				mu.Lock()
				unprocessed[f.UID] = f.Unprocessed
				mu.Unlock()
				return nil
			}
			opts := []SourceOption{WithProcessedLookup(lookup), WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })}
			if tc.workers > 1 {
				opts = append(opts, WithConcurrency(tc.workers, func([]byte) []OrderKey { return nil }))
			}
			src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), opts...)
			stop := imapRunSource(t, src, h)
			imapWaitFor(t, 20*time.Second, "all handled", func() bool { return src.Stats().Handled == n })
			stop()

			mu.Lock()
			defer mu.Unlock()
			if len(asked) != 1 || len(asked[0]) != n {
				t.Fatalf("lookups %v, want one for the %d new messages", asked, n)
			}
			for uid := uint32(1); uid <= n; uid++ {
				want := !tc.fail && !tc.stale && uid%2 == 1
				if got, ok := unprocessed[uid]; !ok || got != want {
					t.Errorf("uid %d: Unprocessed = %v (handled %v), want %v", uid, got, ok, want)
				}
			}
		})
	}
}
