package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// turnKeys reads a message's ordering keys from its X-Test-Group header:
// "+"-separated names, "T:name" for an AtTurn and Released key, "t:name"
// for an AtTurn one held to the end, and a bare name for a key waited for
// before the handler begins.
func turnKeys(raw []byte) []OrderKey {
	m := imapTestGroupRE.FindSubmatch(raw)
	if m == nil {
		return nil
	}
	var keys []OrderKey
	for _, tok := range strings.Split(string(m[1]), "+") {
		switch {
		case strings.HasPrefix(tok, "T:"):
			keys = append(keys, OrderKey{Name: tok[2:], AtTurn: true, Released: true})
		case strings.HasPrefix(tok, "t:"):
			keys = append(keys, OrderKey{Name: tok[2:], AtTurn: true})
		default:
			keys = append(keys, OrderKey{Name: tok})
		}
	}
	return keys
}

// turnLog records when each handler began, took its turn, released and
// returned.
type turnLog struct {
	mu     sync.Mutex
	t0     time.Time
	events map[string]map[string]time.Duration // id -> event -> when
	order  []string                            // ids in the order they took their turn
}

func (l *turnLog) mark(id, ev string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events[id] == nil {
		l.events[id] = map[string]time.Duration{}
	}
	l.events[id][ev] = time.Since(l.t0)
	if ev == "turn" {
		l.order = append(l.order, id)
	}
}

// TestIMAPSourceConcurrentTurns checks Fetched.Turn and Release: messages
// that share an AtTurn key begin side by side but take their turns in UID
// order, one at a time; a Released key lets the next one take its turn as
// soon as the previous released, while its handler still runs; a key held
// to the end does not.
func TestIMAPSourceConcurrentTurns(t *testing.T) {
	tests := []struct {
		name    string
		group   string
		release bool // the handler calls Release after its turn's work
		overlap bool // the next turn begins before the previous handler returned
	}{
		{"released", "T:cust", true, true},
		{"held to the end", "t:cust", true, false},
		{"released but never called", "T:cust", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
			const n = 8
			for i := 1; i <= n; i++ {
				ts.appendMsg("INBOX", imapGroupMessage(fmt.Sprintf("m%d", i), tc.group, 400, ""), time.Now())
			}
			log := &turnLog{t0: time.Now(), events: map[string]map[string]time.Duration{}}
			h := func(ctx context.Context, f *Fetched) error {
				b, _ := io.ReadAll(f.Body)
				id := string(imapTestIDRE.FindSubmatch(b)[1])
				log.mark(id, "begin")
				if err := f.Turn(); err != nil {
					return err
				}
				log.mark(id, "turn")
				time.Sleep(5 * time.Millisecond) // the order-sensitive work
				if tc.release {
					log.mark(id, "release")
					f.Release()
				}
				time.Sleep(150 * time.Millisecond) // the rest
				log.mark(id, "end")
				return nil
			}
			src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, turnKeys))
			stop := imapRunSource(t, src, h)
			imapWaitFor(t, 20*time.Second, "all handled", func() bool { return src.Stats().Handled == n })
			stop()

			log.mu.Lock()
			defer log.mu.Unlock()
			for i, id := range log.order {
				if want := fmt.Sprintf("m%d", i+1); id != want {
					t.Fatalf("turns taken in the order %v, want UID order", log.order)
				}
			}
			overlaps := 0
			for i := 1; i < n; i++ {
				prev, next := log.events[fmt.Sprintf("m%d", i)], log.events[fmt.Sprintf("m%d", i+1)]
				held := prev["end"]
				if tc.group[0] == 'T' && tc.release {
					held = prev["release"]
				}
				if next["turn"] < held {
					t.Errorf("m%d took its turn at %v, before m%d let go at %v", i+1, next["turn"], i, held)
				}
				if next["turn"] < prev["end"] {
					overlaps++
				}
				if next["begin"] >= prev["end"] && i+1 <= 4 {
					t.Errorf("m%d began at %v, only after m%d returned at %v: AtTurn keys should not hold back the handler's start", i+1, next["begin"], i, prev["end"])
				}
			}
			if tc.overlap && overlaps < n/2 {
				t.Errorf("only %d of %d turns overlapped the previous handler: Release did not let the next one go", overlaps, n-1)
			}
			if !tc.overlap && overlaps > 0 {
				t.Errorf("%d turns overlapped the previous handler", overlaps)
			}
		})
	}
}

// TestIMAPSourceTurnNoDeadlock: a message waits for its slot behind a long
// handler (a key held before it begins), and the four later messages that
// share its AtTurn key start at once and wait for it in Turn. They must not
// keep the handler slots from it while they wait.
func TestIMAPSourceTurnNoDeadlock(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	groups := []string{"x", "x+T:cust", "T:cust", "T:cust", "T:cust", "T:cust", "T:cust"}
	for i, g := range groups {
		ts.appendMsg("INBOX", imapGroupMessage(fmt.Sprintf("d%d", i+1), g, 400, ""), time.Now())
	}
	var mu sync.Mutex
	var order []string
	h := func(ctx context.Context, f *Fetched) error {
		b, _ := io.ReadAll(f.Body)
		id := string(imapTestIDRE.FindSubmatch(b)[1])
		if id == "d1" {
			time.Sleep(200 * time.Millisecond) // the others start meanwhile
		}
		if err := f.Turn(); err != nil {
			return err
		}
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
		f.Release()
		return nil
	}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, turnKeys))
	stop := imapRunSource(t, src, h)
	imapWaitFor(t, 20*time.Second, "all handled (no deadlock)", func() bool { return src.Stats().Handled == uint64(len(groups)) })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, " "); got != "d1 d2 d3 d4 d5 d6 d7" {
		t.Errorf("turns %s, want UID order", got)
	}
}

// TestIMAPSourceTurnShutdown: shutdown begins while a message (s1) waits,
// without a slot, behind a long handler (s0, a key held before it begins),
// and three later messages that share s1's AtTurn key have begun and wait
// for it in Turn. s1 is left for the next run, so their Turn must report
// ErrTurnLost: none of them may do its ordered work ahead of s1, and all
// four stay untouched, at no attempt.
func TestIMAPSourceTurnShutdown(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	groups := []string{"x", "x+T:cust", "T:cust", "T:cust", "T:cust"}
	for i, g := range groups {
		ts.appendMsg("INBOX", imapGroupMessage(fmt.Sprintf("s%d", i), g, 400, ""), time.Now())
	}
	release := make(chan struct{})
	waiting := make(chan string, len(groups))
	var mu sync.Mutex
	var turned, lost []string
	h := func(ctx context.Context, f *Fetched) error {
		b, _ := io.ReadAll(f.Body)
		id := string(imapTestIDRE.FindSubmatch(b)[1])
		if id == "s0" {
			<-release
			return nil
		}
		waiting <- id
		err := f.Turn()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if !errors.Is(err, ErrTurnLost) {
				t.Errorf("%s: Turn = %v, want ErrTurnLost", id, err)
			}
			lost = append(lost, id)
			return err
		}
		turned = append(turned, id)
		return nil
	}
	src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t), WithConcurrency(4, turnKeys))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	for range 3 { // s2, s3 and s4 have begun and wait in Turn
		select {
		case <-waiting:
		case <-time.After(10 * time.Second):
			t.Fatal("the later messages did not begin")
		}
	}
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(release) // s0 returns; s1 finds the source shutting down
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(turned) != 0 {
		t.Errorf("%v did their ordered work although s1, before them, was left for the next run", turned)
	}
	if len(lost) != 3 {
		t.Errorf("Turn reported ErrTurnLost to %v, want s2, s3 and s4", lost)
	}
	if st := src.Stats(); st.HandlerErrors != 0 {
		t.Errorf("stats %+v: a lost turn must cost no attempt", st)
	}
}
