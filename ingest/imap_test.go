package ingest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// checkProcessedOnce asserts that the processed folder holds exactly one
// byte-identical copy of every message in raws, and that the handler stored
// each of them exactly once.
func imapCheckProcessedOnce(t *testing.T, ts *imapTestServer, rec *imapRecorder, raws map[string][]byte) {
	t.Helper()
	got := ts.snapshot(imapTestProcessed)
	if len(got) != len(raws) {
		t.Errorf("processed folder has %d messages, want %d", len(got), len(raws))
	}
	seen := make(map[string]int)
	for _, m := range got {
		id := "?"
		if sm := imapTestIDRE.FindSubmatch(m.body); sm != nil {
			id = string(sm[1])
		}
		seen[id]++
		if want, ok := raws[id]; !ok || !bytes.Equal(m.body, want) {
			t.Errorf("processed message %s: bytes differ from the delivered message (got %d bytes)", id, len(m.body))
		}
		if m.has(imap.FlagSeen) {
			t.Errorf("processed message %s is \\Seen; BODY.PEEK must not set it", id)
		}
	}
	succ := rec.succeeded()
	for id := range raws {
		if seen[id] != 1 {
			t.Errorf("message %s: %d copies in the processed folder, want 1", id, seen[id])
		}
		if succ[id] != 1 {
			t.Errorf("message %s: handler stored it %d times, want 1", id, succ[id])
		}
	}
}

func TestIMAPSourceProcessesBacklogOnce(t *testing.T) {
	tests := []struct {
		name        string
		caps        imap.CapSet
		wantDeleted bool // handled messages stay in INBOX flagged \Deleted
	}{
		{name: "MOVE", caps: imapCapsRev2},
		{name: "COPY+STORE+UID EXPUNGE", caps: imapCapsRev1UP},
		{name: "COPY+STORE without UIDPLUS", caps: imapCapsRev1, wantDeleted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: tc.caps})
			base := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
			sizes := []int{600, 256 << 10, 3000, 64 << 10, 1}
			raws := make(map[string][]byte)
			dates := make(map[string]time.Time)
			for i, size := range sizes {
				id := fmt.Sprintf("m%d", i+1)
				raws[id] = imapTestMessage(id, size, "")
				dates[id] = base.Add(time.Duration(i) * time.Minute)
				ts.appendMsg("INBOX", raws[id], dates[id])
			}
			// Another client's deleted message: neither handled nor expunged.
			if _, err := ts.user.Append("INBOX", bytes.NewReader(imapTestMessage("foreign", 100, "")),
				&imap.AppendOptions{Flags: []imap.Flag{imap.FlagDeleted}}); err != nil {
				t.Fatal(err)
			}

			cp := newIMAPCheckpoints()
			rec := &imapRecorder{}
			cfg := imapTestConfig(ts)
			src := NewSource(cfg, cp, imapTestLog(t))
			stop := imapRunSource(t, src, rec.handle)
			imapWaitFor(t, 10*time.Second, "5 messages handled", func() bool { return src.Stats().Handled == 5 })
			stop()

			calls := rec.snapshot()
			if len(calls) != 5 {
				t.Fatalf("handler called %d times, want 5", len(calls))
			}
			for i, c := range calls {
				if i > 0 && c.meta.UID <= calls[i-1].meta.UID {
					t.Errorf("call %d: UID %d not after %d: not in UID order", i, c.meta.UID, calls[i-1].meta.UID)
				}
				if !bytes.Equal(c.body, raws[c.id]) {
					t.Errorf("%s: handler got %d bytes, want the %d delivered", c.id, len(c.body), len(raws[c.id]))
				}
				if !c.meta.InternalDate.Equal(dates[c.id]) {
					t.Errorf("%s: InternalDate %v, want %v", c.id, c.meta.InternalDate, dates[c.id])
				}
				if c.meta.Size != int64(len(raws[c.id])) {
					t.Errorf("%s: Size %d, want %d", c.id, c.meta.Size, len(raws[c.id]))
				}
				if c.meta.Mailbox != imapTestUser+"/INBOX" || c.meta.Folder != "INBOX" || c.meta.UIDValidity == 0 {
					t.Errorf("%s: Mailbox %q Folder %q UIDValidity %d", c.id, c.meta.Mailbox, c.meta.Folder, c.meta.UIDValidity)
				}
			}
			imapCheckProcessedOnce(t, ts, rec, raws)

			inbox := ts.snapshot("INBOX")
			wantInbox := 1
			if tc.wantDeleted {
				wantInbox = 6
			}
			if len(inbox) != wantInbox {
				t.Errorf("INBOX has %d messages, want %d", len(inbox), wantInbox)
			}
			for _, m := range inbox {
				if !m.has(imap.FlagDeleted) {
					t.Errorf("INBOX uid %d left without \\Deleted", m.uid)
				}
			}
			uv, last := cp.get(imapTestUser + "/INBOX")
			if uv != calls[0].meta.UIDValidity || last != 5 {
				t.Errorf("checkpoint = (%d, %d), want (%d, 5)", uv, last, calls[0].meta.UIDValidity)
			}
		})
	}
}

func TestIMAPSourceIdleNotification(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	cfg := imapTestConfig(ts)
	cfg.PollInterval = time.Hour // only the IDLE notification can wake it
	cfg.IdleRestart = time.Hour
	rec := &imapRecorder{}
	src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
	imapRunSource(t, src, rec.handle)
	imapWaitFor(t, 5*time.Second, "IDLE", func() bool { st := src.Stats(); return st.Mode == "idle" && st.IdleCycles >= 1 })

	for i := range 3 {
		id := fmt.Sprintf("live%d", i)
		raw := imapTestMessage(id, 2000, "")
		appended := time.Now()
		ts.appendMsg("INBOX", raw, appended)
		imapWaitFor(t, 2*time.Second, id+" handled", func() bool { return src.Stats().Handled == uint64(i+1) })
		calls := rec.callsFor(id)
		if len(calls) != 1 {
			t.Fatalf("%s: %d calls, want 1", id, len(calls))
		}
		latency := calls[0].at.Sub(appended)
		t.Logf("%s: handled %s after delivery", id, latency)
		if latency > time.Second {
			t.Errorf("%s: handled after %s, want within 1s of delivery (SPEC §2)", id, latency)
		}
		if !bytes.Equal(calls[0].body, raw) {
			t.Errorf("%s: body differs", id)
		}
	}
	st := src.Stats()
	if st.Notifications == 0 || st.Polls != 0 || st.Reconnects != 0 {
		t.Errorf("stats = %+v, want notifications, no polls, no reconnects", st)
	}
}

func TestIMAPSourceIdleRestartCycle(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	cfg := imapTestConfig(ts)
	cfg.IdleRestart = 100 * time.Millisecond
	rec := &imapRecorder{}
	src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
	imapRunSource(t, src, rec.handle)
	imapWaitFor(t, 5*time.Second, "4 IDLE cycles", func() bool { return src.Stats().IdleCycles >= 4 })
	ts.appendMsg("INBOX", imapTestMessage("after-restarts", 500, ""), time.Now())
	imapWaitFor(t, 2*time.Second, "handled", func() bool { return src.Stats().Handled == 1 })
	if st := src.Stats(); st.Reconnects != 0 || st.Sessions != 1 {
		t.Errorf("IDLE restarts must reuse the connection: %+v", st)
	}
}

func TestIMAPSourcePollingWithoutIdle(t *testing.T) {
	tests := []struct {
		name      string
		noIdle    bool
		configure bool
	}{
		{name: "server without IDLE", noIdle: true, configure: true},
		{name: "IDLE disabled in config", noIdle: false, configure: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev1UP, noIdle: tc.noIdle})
			raws := map[string][]byte{}
			for _, id := range []string{"p1", "p2"} {
				raws[id] = imapTestMessage(id, 4000, "")
				ts.appendMsg("INBOX", raws[id], time.Now())
			}
			cfg := imapTestConfig(ts)
			cfg.IDLE = tc.configure
			rec := &imapRecorder{}
			src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
			stop := imapRunSource(t, src, rec.handle)
			imapWaitFor(t, 5*time.Second, "backlog", func() bool { return src.Stats().Handled == 2 })
			raws["p3"] = imapTestMessage("p3", 4000, "")
			ts.appendMsg("INBOX", raws["p3"], time.Now())
			imapWaitFor(t, 2*time.Second, "polled message", func() bool { return src.Stats().Handled == 3 })
			st := src.Stats()
			stop()
			if st.Mode != "poll" || st.IdleCycles != 0 || st.Polls == 0 {
				t.Errorf("stats = %+v, want polling mode", st)
			}
			if ts.sawIdle.Load() {
				t.Error("client sent IDLE to a server that does not advertise it")
			}
			imapCheckProcessedOnce(t, ts, rec, raws)
		})
	}
}

func TestIMAPSourceMissingProcessedFolderNeverDeletes(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps imap.CapSet
	}{{"MOVE", imapCapsRev2}, {"COPY fallback", imapCapsRev1}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: tc.caps})
			clock := &imapFakeClock{now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
			cfg := imapTestConfig(ts)
			rec := &imapRecorder{}
			src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t), WithClock(clock.Now))
			imapRunSource(t, src, rec.handle)
			imapWaitFor(t, 5*time.Second, "ready", func() bool { return src.Stats().Connected })
			if err := ts.user.Delete(imapTestProcessed); err != nil {
				t.Fatal(err)
			}
			raw := imapTestMessage("orphan", 3000, "")
			ts.appendMsg("INBOX", raw, time.Now())
			imapWaitFor(t, 5*time.Second, "failed move", func() bool { return src.Stats().MoveErrors >= 1 })
			time.Sleep(150 * time.Millisecond) // several wake-ups; the clock is frozen

			inbox := ts.snapshot("INBOX")
			if len(inbox) != 1 || inbox[0].has(imap.FlagDeleted) || !bytes.Equal(inbox[0].body, raw) {
				t.Fatalf("after a failed move the source message must stay intact and undeleted: %+v", inbox)
			}
			if st := src.Stats(); st.MoveErrors != 1 || st.Handled != 0 || st.PendingRetry != 1 {
				t.Fatalf("stats = %+v, want one move error, retry not due yet", st)
			}

			clock.Advance(time.Second)
			imapWaitFor(t, 5*time.Second, "move retried", func() bool { return src.Stats().Handled == 1 })
			if n := len(rec.snapshot()); n != 1 {
				t.Errorf("handler called %d times; the retry should only redo the move", n)
			}
			imapCheckProcessedOnce(t, ts, rec, map[string][]byte{"orphan": raw})
		})
	}
}

func TestIMAPSourceDroppedConnection(t *testing.T) {
	for _, tc := range []struct {
		name             string
		ignoreReadErrors bool
	}{{"honest handler", false}, {"handler ignoring read errors", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
			raws := make(map[string][]byte)
			markers := map[string]string{"d2": "CUT-IN-BODY-OF-D2", "d4": "CUT-IN-BODY-OF-D4"}
			for i := 1; i <= 5; i++ {
				id := fmt.Sprintf("d%d", i)
				raws[id] = imapTestMessage(id, 40<<10, markers[id])
				ts.appendMsg("INBOX", raws[id], time.Now())
			}
			faults := &imapFaults{
				cutOnRead:  []string{markers["d2"], markers["d4"]},
				cutOnWrite: []string{"MOVE "}, // the first MOVE (of d1) never reaches the server
			}
			cfg := imapTestConfig(ts)
			rec := &imapRecorder{ignoreReadErrors: tc.ignoreReadErrors}
			src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t), WithDialer(faults.dialer()))
			stop := imapRunSource(t, src, rec.handle)
			imapWaitFor(t, 10*time.Second, "all handled", func() bool { return src.Stats().Handled == 5 })
			stop()

			if fired := faults.firedMarkers(); len(fired) != 3 {
				t.Fatalf("faults fired: %q, want all 3", fired)
			}
			if st := src.Stats(); st.Reconnects < 3 {
				t.Errorf("reconnects = %d, want >= 3", st.Reconnects)
			}
			if n := len(rec.callsFor("d1")); n != 1 {
				t.Errorf("d1 (move cut) handled %d times; after reconnect only the move is redone", n)
			}
			for _, id := range []string{"d2", "d4"} {
				calls := rec.callsFor(id)
				if len(calls) < 2 {
					t.Fatalf("%s: %d calls, want a truncated one and a full one", id, len(calls))
				}
				if !errors.Is(calls[0].readErr, io.ErrUnexpectedEOF) {
					t.Errorf("%s: first read error = %v, want io.ErrUnexpectedEOF (never a silent EOF)", id, calls[0].readErr)
				}
				last := calls[len(calls)-1]
				if last.readErr != nil || !bytes.Equal(last.body, raws[id]) {
					t.Errorf("%s: last call got %d bytes (err %v), want the full message", id, len(last.body), last.readErr)
				}
			}
			if tc.ignoreReadErrors {
				// Truncated calls "succeeded" but must not have led to a move:
				// check the folders rather than the handler's count.
				got := ts.snapshot(imapTestProcessed)
				if len(got) != 5 {
					t.Errorf("processed folder has %d messages, want 5", len(got))
				}
				for _, m := range got {
					id := string(imapTestIDRE.FindSubmatch(m.body)[1])
					if !bytes.Equal(m.body, raws[id]) {
						t.Errorf("%s: processed copy differs from the delivered bytes", id)
					}
				}
			} else {
				imapCheckProcessedOnce(t, ts, rec, raws)
			}
			if n := ts.count("INBOX"); n != 0 {
				t.Errorf("INBOX has %d messages left, want 0", n)
			}
		})
	}
}

func TestIMAPSourceRestartResumes(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps imap.CapSet
	}{{"MOVE", imapCapsRev2}, {"COPY without UIDPLUS", imapCapsRev1}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: tc.caps})
			raws := make(map[string][]byte)
			add := func(id string) {
				raws[id] = imapTestMessage(id, 1500, "")
				ts.appendMsg("INBOX", raws[id], time.Now())
			}
			add("r1")
			add("r2")
			add("r3")
			cp := newIMAPCheckpoints()
			rec := &imapRecorder{}
			cfg := imapTestConfig(ts)
			cfg.IdleRestart = 100 * time.Millisecond

			a := NewSource(cfg, cp, imapTestLog(t))
			stopA := imapRunSource(t, a, rec.handle)
			imapWaitFor(t, 5*time.Second, "first run", func() bool { return a.Stats().Handled == 3 })
			stopA()

			add("r4")
			add("r5")
			b := NewSource(cfg, cp, imapTestLog(t))
			stopB := imapRunSource(t, b, rec.handle)
			imapWaitFor(t, 5*time.Second, "second run", func() bool { return b.Stats().Handled == 2 })
			// Let a few more passes (IDLE restarts) run over the folder.
			imapWaitFor(t, 5*time.Second, "more passes", func() bool { return b.Stats().IdleCycles >= 4 })
			stopB()

			if n := len(rec.snapshot()); n != 5 {
				t.Errorf("handler called %d times over two runs, want 5", n)
			}
			imapCheckProcessedOnce(t, ts, rec, raws)
			_, last := cp.get(imapTestUser + "/INBOX")
			if last != 5 {
				t.Errorf("checkpoint last UID = %d, want 5", last)
			}
		})
	}
}

func TestIMAPSourceUIDValidityChange(t *testing.T) {
	t.Run("while running", func(t *testing.T) {
		ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
		ts.appendMsg("INBOX", imapTestMessage("v1", 500, ""), time.Now())
		ts.appendMsg("INBOX", imapTestMessage("v2", 500, ""), time.Now())
		cp := newIMAPCheckpoints()
		rec := &imapRecorder{}
		cfg := imapTestConfig(ts)
		cfg.IdleRestart = 150 * time.Millisecond
		src := NewSource(cfg, cp, imapTestLog(t))
		imapRunSource(t, src, rec.handle)
		imapWaitFor(t, 5*time.Second, "first two", func() bool { return src.Stats().Handled == 2 })
		oldUV, last := cp.get(imapTestUser + "/INBOX")
		if last != 2 {
			t.Fatalf("checkpoint last = %d, want 2", last)
		}

		// Recreate the folder: UIDs restart from 1 under a new UIDVALIDITY.
		if err := ts.user.Delete("INBOX"); err != nil {
			t.Fatal(err)
		}
		if err := ts.user.Create("INBOX", nil); err != nil {
			t.Fatal(err)
		}
		ts.appendMsg("INBOX", imapTestMessage("v3", 500, ""), time.Now())
		imapWaitFor(t, 5*time.Second, "message after the change", func() bool { return src.Stats().Handled == 3 })

		calls := rec.callsFor("v3")
		if len(calls) != 1 || calls[0].meta.UID != 1 || calls[0].meta.UIDValidity == oldUV {
			t.Fatalf("v3 calls = %+v, want one with UID 1 under a new UIDVALIDITY", calls)
		}
		uv, last := cp.get(imapTestUser + "/INBOX")
		if uv != calls[0].meta.UIDValidity || last != 1 {
			t.Errorf("checkpoint = (%d, %d), want (%d, 1)", uv, last, calls[0].meta.UIDValidity)
		}
		if n := src.Stats().UIDValidityChanges; n != 1 {
			t.Errorf("UIDValidityChanges = %d, want 1", n)
		}
	})
	t.Run("at start", func(t *testing.T) {
		ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
		ts.appendMsg("INBOX", imapTestMessage("s1", 500, ""), time.Now())
		cp := newIMAPCheckpoints()
		key := imapTestUser + "/INBOX"
		_ = cp.SetCheckpoint(context.Background(), key, 987654, 40)
		rec := &imapRecorder{}
		src := NewSource(imapTestConfig(ts), cp, imapTestLog(t))
		imapRunSource(t, src, rec.handle)
		imapWaitFor(t, 5*time.Second, "handled", func() bool { return src.Stats().Handled == 1 })
		calls := rec.snapshot()
		uv, last := cp.get(key)
		if uv != calls[0].meta.UIDValidity || uv == 987654 || last != 1 {
			t.Errorf("checkpoint = (%d, %d), want (%d, 1)", uv, last, calls[0].meta.UIDValidity)
		}
		if n := src.Stats().UIDValidityChanges; n != 1 {
			t.Errorf("UIDValidityChanges = %d, want 1", n)
		}
	})
}

func TestIMAPSourceCancelPromptly(t *testing.T) {
	t.Run("while idling", func(t *testing.T) {
		ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
		cfg := imapTestConfig(ts)
		cfg.IdleRestart = time.Hour
		src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
		stop := imapRunSource(t, src, (&imapRecorder{}).handle)
		imapWaitFor(t, 5*time.Second, "IDLE", func() bool { return src.Stats().IdleCycles >= 1 })
		t.Logf("Run returned %s after cancel", stop())
	})
	t.Run("inside the handler", func(t *testing.T) {
		ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
		raw := imapTestMessage("blocked", 500, "")
		ts.appendMsg("INBOX", raw, time.Now())
		rec := &imapRecorder{block: true, entered: make(chan string, 1)}
		src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t))
		stop := imapRunSource(t, src, rec.handle)
		select {
		case <-rec.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("handler not called")
		}
		t.Logf("Run returned %s after cancel", stop())
		inbox := ts.snapshot("INBOX")
		if len(inbox) != 1 || inbox[0].has(imap.FlagDeleted) || ts.count(imapTestProcessed) != 0 {
			t.Errorf("an interrupted message must stay in the folder untouched: %+v", inbox)
		}
	})
	t.Run("during reconnect backoff", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens: every dial fails
		cfg := IMAPConfig{Addr: addr, TLS: "none", Username: "u", ProcessedFolder: "P",
			BackoffMin: 10 * time.Second, BackoffMax: 20 * time.Second}
		src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
		stop := imapRunSource(t, src, (&imapRecorder{}).handle)
		imapWaitFor(t, 5*time.Second, "a failed attempt", func() bool { return src.Stats().Reconnects >= 1 })
		t.Logf("Run returned %s after cancel", stop())
	})
}

func TestIMAPSourceCommandDeadlines(t *testing.T) {
	t.Run("server silent after DONE", func(t *testing.T) {
		ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
		faults := &imapFaults{stallOnWrite: []string{"DONE\r\n"}}
		cfg := imapTestConfig(ts)
		cfg.IdleRestart = 100 * time.Millisecond
		cfg.CommandTimeout = 300 * time.Millisecond
		rec := &imapRecorder{}
		src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t), WithDialer(faults.dialer()))
		imapRunSource(t, src, rec.handle)
		imapWaitFor(t, 5*time.Second, "reconnect after the stall", func() bool {
			return len(faults.firedMarkers()) == 1 && src.Stats().Sessions >= 2
		})
		ts.appendMsg("INBOX", imapTestMessage("after-stall", 500, ""), time.Now())
		imapWaitFor(t, 5*time.Second, "handled", func() bool { return src.Stats().Handled == 1 })
	})
	t.Run("server never greets", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		cfg := IMAPConfig{Addr: ln.Addr().String(), TLS: "none", Username: "u", ProcessedFolder: "P",
			CommandTimeout: 100 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
		src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
		imapRunSource(t, src, (&imapRecorder{}).handle)
		imapWaitFor(t, 5*time.Second, "3 timed-out attempts", func() bool { return src.Stats().Reconnects >= 3 })
		if src.Stats().Sessions != 0 {
			t.Error("a session became ready without a greeting")
		}
	})
}

func TestIMAPSourceHandlerErrorRetriedWithBackoff(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	bad := imapTestMessage("bad", 800, "")
	good := imapTestMessage("good", 800, "")
	ts.appendMsg("INBOX", bad, time.Now())
	ts.appendMsg("INBOX", good, time.Now())

	clock := &imapFakeClock{now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	cfg := imapTestConfig(ts)
	cfg.IdleRestart = 50 * time.Millisecond // frequent passes over the folder
	cfg.BackoffMin = time.Second            // on the fake clock
	cfg.BackoffMax = 4 * time.Second
	rec := &imapRecorder{fail: func(id string, n int) error {
		switch {
		case id != "bad" || n > 2:
			return nil
		case n == 1:
			return errors.New("panic: handler bug")
		default:
			return errors.New("store unavailable")
		}
	}}
	src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t), WithClock(clock.Now))
	imapRunSource(t, src, rec.handle)

	imapWaitFor(t, 5*time.Second, "good handled past the failing one", func() bool { return src.Stats().Handled == 1 })
	if rec.succeeded()["good"] != 1 {
		t.Fatal("good was not the one handled")
	}
	passes := src.Stats().IdleCycles
	imapWaitFor(t, 5*time.Second, "more passes", func() bool { return src.Stats().IdleCycles >= passes+4 })
	if n := len(rec.callsFor("bad")); n != 1 {
		t.Fatalf("bad handled %d times before its backoff elapsed, want 1 (no hot loop)", n)
	}
	inbox := ts.snapshot("INBOX")
	if len(inbox) != 1 || inbox[0].has(imap.FlagDeleted) || !bytes.Equal(inbox[0].body, bad) {
		t.Fatalf("a failed message must stay in the folder: %+v", inbox)
	}
	if st := src.Stats(); st.HandlerErrors != 1 || st.PendingRetry != 1 {
		t.Errorf("stats = %+v, want 1 handler error (the panic) and 1 pending retry", st)
	}

	clock.Advance(time.Second)
	imapWaitFor(t, 5*time.Second, "second attempt", func() bool { return len(rec.callsFor("bad")) == 2 })
	passes = src.Stats().IdleCycles
	imapWaitFor(t, 5*time.Second, "more passes", func() bool { return src.Stats().IdleCycles >= passes+4 })
	if n := len(rec.callsFor("bad")); n != 2 {
		t.Fatalf("bad handled %d times; the second backoff (2s) has not elapsed", n)
	}
	clock.Advance(2 * time.Second)
	imapWaitFor(t, 5*time.Second, "bad finally handled", func() bool { return src.Stats().Handled == 2 })
	if st := src.Stats(); st.HandlerErrors != 2 || st.PendingRetry != 0 {
		t.Errorf("stats = %+v, want 2 handler errors, nothing pending", st)
	}
	imapCheckProcessedOnce(t, ts, rec, map[string][]byte{"bad": bad, "good": good})
}

func TestIMAPSourceTLSAndAuth(t *testing.T) {
	tests := []struct {
		name     string
		tls      string
		trustCA  bool
		insecure bool
		auth     string
		password string
		wantOK   bool
	}{
		{name: "implicit TLS, trusted CA, AUTHENTICATE PLAIN", tls: imapTLSImplicit, trustCA: true, auth: "plain", wantOK: true},
		{name: "implicit TLS, unknown CA is refused", tls: imapTLSImplicit},
		{name: "implicit TLS, verification disabled", tls: imapTLSImplicit, insecure: true, wantOK: true},
		{name: "STARTTLS, trusted CA, LOGIN", tls: imapTLSStartTLS, trustCA: true, auth: "login", wantOK: true},
		{name: "STARTTLS, unknown CA is refused", tls: imapTLSStartTLS},
		{name: "plaintext to loopback, automatic auth", tls: imapTLSNone, wantOK: true},
		{name: "wrong password", tls: imapTLSNone, password: "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srvTLS := tc.tls
			if srvTLS == imapTLSNone {
				srvTLS = ""
			}
			ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2, tls: srvTLS})
			raw := imapTestMessage("tls", 1000, "")
			ts.appendMsg("INBOX", raw, time.Now())
			cfg := imapTestConfig(ts)
			cfg.TLS, cfg.Auth, cfg.InsecureSkipVerify = tc.tls, tc.auth, tc.insecure
			if tc.password != "" {
				cfg.Password = tc.password
			}
			var opts []SourceOption
			if tc.trustCA {
				opts = append(opts, WithTLSConfig(&tls.Config{RootCAs: ts.certPEM}))
			}
			rec := &imapRecorder{}
			src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t), opts...)
			imapRunSource(t, src, rec.handle)
			if tc.wantOK {
				imapWaitFor(t, 5*time.Second, "handled", func() bool { return src.Stats().Handled == 1 })
				imapCheckProcessedOnce(t, ts, rec, map[string][]byte{"tls": raw})
				return
			}
			imapWaitFor(t, 5*time.Second, "failed attempts", func() bool { return src.Stats().Reconnects >= 2 })
			if st := src.Stats(); st.Sessions != 0 || len(rec.snapshot()) != 0 || ts.count("INBOX") != 1 {
				t.Errorf("stats = %+v: no session may succeed", st)
			}
		})
	}
}

func TestIMAPConfigValidate(t *testing.T) {
	ok := IMAPConfig{Addr: "imap.example.com:993", Username: "u", ProcessedFolder: "Processed"}
	tests := []struct {
		name string
		edit func(*IMAPConfig)
		want []string // substrings of the error; none = valid
	}{
		{name: "defaults", edit: func(*IMAPConfig) {}},
		{name: "starttls", edit: func(c *IMAPConfig) { c.TLS = "STARTTLS" }},
		{name: "plaintext to loopback", edit: func(c *IMAPConfig) { c.TLS, c.Addr = "none", "127.0.0.1:143" }},
		{name: "plaintext to localhost", edit: func(c *IMAPConfig) { c.TLS, c.Addr = "none", "localhost:143" }},
		{name: "plaintext to ::1", edit: func(c *IMAPConfig) { c.TLS, c.Addr = "none", "[::1]:143" }},
		{name: "plaintext allowed explicitly", edit: func(c *IMAPConfig) { c.TLS, c.AllowPlaintext = "none", true }},
		{name: "plaintext refused", edit: func(c *IMAPConfig) { c.TLS = "none" },
			want: []string{"refusing to send credentials in plaintext"}},
		{name: "all errors at once", edit: func(c *IMAPConfig) {
			c.Addr, c.TLS, c.Auth, c.Username, c.ProcessedFolder = "nohost", "ssl", "cram-md5", "", ""
		}, want: []string{`addr "nohost"`, `tls "ssl"`, `auth "cram-md5"`, "username: required", "processed folder: required"}},
		{name: "processed folder is the watched folder", edit: func(c *IMAPConfig) { c.ProcessedFolder = "inbox" },
			want: []string{"must differ"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestIMAPSourceRunRefuses(t *testing.T) {
	cp := newIMAPCheckpoints()
	h := (&imapRecorder{}).handle
	bad := NewSource(IMAPConfig{Addr: "imap.example.com:143", TLS: "none", Username: "u", ProcessedFolder: "P"}, cp, nil)
	if err := bad.Run(context.Background(), h); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Errorf("Run with plaintext to a remote host = %v, want a refusal", err)
	}
	if err := bad.Run(context.Background(), nil); err == nil {
		t.Error("Run with a nil handler succeeded")
	}
	if err := NewSource(IMAPConfig{}, nil, nil).Run(context.Background(), h); err == nil {
		t.Error("Run with nil checkpoints succeeded")
	}

	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	src := NewSource(imapTestConfig(ts), cp, imapTestLog(t))
	imapRunSource(t, src, h)
	imapWaitFor(t, 5*time.Second, "running", func() bool { return src.Stats().Connected })
	if err := src.Run(context.Background(), h); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second concurrent Run = %v, want an error", err)
	}
}

func TestIMAPBodyTruncation(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		size    int64
		wantErr error
	}{
		{name: "complete", data: "hello world", size: 11, wantErr: nil},
		{name: "cut short", data: "hello", size: 11, wantErr: io.ErrUnexpectedEOF},
		{name: "empty", data: "", size: 0, wantErr: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &imapBody{r: strings.NewReader(tc.data), size: tc.size}
			got, err := io.ReadAll(b)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("ReadAll error = %v, want %v", err, tc.wantErr)
			}
			if string(got) != tc.data {
				t.Errorf("read %q, want %q", got, tc.data)
			}
			if (b.err != nil) != (tc.wantErr != nil) {
				t.Errorf("remembered error = %v", b.err)
			}
		})
	}
}

func TestIMAPBackoff(t *testing.T) {
	minD, maxD := time.Second, 10*time.Second
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := imapBackoff(minD, maxD, i+1); got != w {
			t.Errorf("imapBackoff(attempt %d) = %s, want %s", i+1, got, w)
		}
	}
	s := NewSource(IMAPConfig{BackoffMin: minD, BackoffMax: maxD}, nil, nil)
	var seen []time.Duration
	for n := 1; n <= 6; n++ {
		full := imapBackoff(minD, maxD, n)
		for range 50 {
			d := s.reconnectDelay(n)
			if d < full/2 || d > full {
				t.Fatalf("reconnectDelay(%d) = %s, want within [%s, %s]", n, d, full/2, full)
			}
			seen = append(seen, d)
		}
	}
	slices.Sort(seen)
	if len(slices.Compact(seen)) < 10 {
		t.Error("reconnect delays are not jittered")
	}
}

// TestIMAPSourceChaos combines, per seed, random message sizes, bodies cut
// mid-literal, commands that never reach the server, transient handler
// failures and mail arriving while the source runs. Whatever happens, every
// message must end in the processed folder exactly once, byte for byte, and
// be stored by the handler exactly once.
func TestIMAPSourceChaos(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x1ca9))
			caps := []imap.CapSet{imapCapsRev2, imapCapsRev1UP, imapCapsRev1}[rng.IntN(3)]
			ts := newIMAPTestServer(t, imapServerOpts{caps: caps})
			faults := &imapFaults{cutOnWrite: []string{"UID FETCH", "SEARCH"}}
			if caps.Has(imap.CapMove) {
				faults.cutOnWrite = append(faults.cutOnWrite, "MOVE ")
			} else {
				faults.cutOnWrite = append(faults.cutOnWrite, "COPY ", "STORE ")
			}
			const n = 12
			raws := make(map[string][]byte)
			var late []string
			for i := range n {
				id := fmt.Sprintf("c%02d", i)
				marker := ""
				if rng.IntN(3) == 0 {
					marker = "CUT-" + id
					faults.cutOnRead = append(faults.cutOnRead, marker)
				}
				raws[id] = imapTestMessage(id, 200+rng.IntN(30<<10), marker)
				if i < n/2 {
					ts.appendMsg("INBOX", raws[id], time.Now())
				} else {
					late = append(late, id)
				}
			}
			flaky := make(map[string]int) // id -> number of failing attempts
			for id := range raws {
				if rng.IntN(4) == 0 {
					flaky[id] = 1 + rng.IntN(2)
				}
			}
			rec := &imapRecorder{fail: func(id string, n int) error {
				if n <= flaky[id] {
					return fmt.Errorf("transient failure %d", n)
				}
				return nil
			}}
			cfg := imapTestConfig(ts)
			cfg.IdleRestart = 200 * time.Millisecond
			src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t), WithDialer(faults.dialer()))
			stop := imapRunSource(t, src, rec.handle)
			for _, id := range late {
				time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
				ts.appendMsg("INBOX", raws[id], time.Now())
			}
			imapWaitFor(t, 20*time.Second, "all handled", func() bool { return src.Stats().Handled == n })
			stop()

			// A fault whose trigger was never met (e.g. no second SEARCH) is
			// fine; the read cuts all sit in bodies that must be fetched.
			faults.mu.Lock()
			left := append([]string(nil), faults.cutOnRead...)
			faults.mu.Unlock()
			if len(left) != 0 {
				t.Errorf("body cuts never triggered: %q", left)
			}
			t.Logf("caps %v, faults fired %q, stats %+v", slices.Sorted(maps.Keys(caps)), faults.firedMarkers(), src.Stats())
			imapCheckProcessedOnce(t, ts, rec, raws)
			for _, m := range ts.snapshot("INBOX") {
				if !m.has(imap.FlagDeleted) {
					t.Errorf("INBOX still has unprocessed %v", m)
				}
			}
		})
	}
}

// go-imap beta.8 drops the connection when COPYUID holds "*" (#749). The
// COPY or MOVE did succeed: nothing may be lost or copied twice.
func TestIMAPSourceCopyUIDStarBug(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps imap.CapSet
	}{{"MOVE", imapCapsRev2}, {"COPY fallback", imapCapsRev1UP}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapServerOpts{caps: tc.caps, copyUIDStar: true})
			raws := make(map[string][]byte)
			for i := range 3 {
				id := fmt.Sprintf("star%d", i)
				raws[id] = imapTestMessage(id, 900, "")
				ts.appendMsg("INBOX", raws[id], time.Now())
			}
			rec := &imapRecorder{}
			src := NewSource(imapTestConfig(ts), newIMAPCheckpoints(), imapTestLog(t))
			stop := imapRunSource(t, src, rec.handle)
			// Every COPY or MOVE kills the connection once.
			imapWaitFor(t, 10*time.Second, "3 handled, 3 reconnects", func() bool {
				st := src.Stats()
				return st.Handled == 3 && st.Reconnects >= 3
			})
			stop()
			imapCheckProcessedOnce(t, ts, rec, raws)
			if n := ts.count("INBOX"); n != 0 {
				t.Errorf("INBOX has %d messages left", n)
			}
		})
	}
}
