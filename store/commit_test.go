package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestCommitMessage: the ids are indexed, the entries queued and the
// message marked processed (on one server, in one round trip),
// idempotently; a bad entry stores nothing.
func TestCommitMessage(t *testing.T) {
	bad := mail("ack:bad")
	bad.To = nil
	ref := &SourceRef{Mailbox: "support@northwind-it.example", UIDValidity: 9, UID: 17}
	tests := []struct {
		name      string
		commit    Commit
		wantAdded []bool
		wantErr   bool
		trips     int // round trips of the first call
	}{
		{name: "new ticket: ids, two mails, marker", commit: Commit{TicketID: "ACME-0001", IDs: []string{"<in-1@acme.co.il>", "ack.1@nw.example", " "},
			Entries: []OutboxEntry{mail("ack:ACME-0001"), mail("fwd:ACME-0001")}, Processed: ref}, wantAdded: []bool{true, true}, trips: 1},
		{name: "ids and two mails, no marker (pushed mail)", commit: Commit{TicketID: "ACME-0001", IDs: []string{"in-1@acme.co.il"},
			Entries: []OutboxEntry{mail("ack:ACME-0001"), mail("fwd:ACME-0001")}}, wantAdded: []bool{true, true}, trips: 1},
		{name: "mail without a ticket", commit: Commit{Entries: []OutboxEntry{mail("notice:x"), mail("fwd:unknown:x")}, Processed: ref},
			wantAdded: []bool{true, true}, trips: 1},
		{name: "ids only", commit: Commit{TicketID: "ACME-0002", IDs: []string{"in-2@acme.co.il"}}, wantAdded: []bool{}, trips: 1},
		{name: "one mail", commit: Commit{TicketID: "ACME-0003", Entries: []OutboxEntry{mail("fwd:ACME-0003")}}, wantAdded: []bool{true}, trips: 1},
		{name: "marker only", commit: Commit{TicketID: "ACME-0003", Processed: ref}, wantAdded: []bool{}, trips: 1},
		{name: "nothing", commit: Commit{TicketID: "ACME-0004"}, wantAdded: []bool{}, trips: 0},
		{name: "ids without a ticket", commit: Commit{IDs: []string{"in-5@acme.co.il"}, Processed: ref}, wantErr: true},
		{name: "an entry without recipients", commit: Commit{TicketID: "ACME-0006", IDs: []string{"in-6@acme.co.il"},
			Entries: []OutboxEntry{mail("ack:ACME-0006"), bad}, Processed: ref}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, rdb := newTestStore(t)
			ctx := context.Background()
			// Connected, and the script loaded: only the call's own round
			// trips are counted.
			if err := enqueueScript.Load(ctx, rdb).Err(); err != nil {
				t.Fatal(err)
			}
			trips := &tripCounter{}
			rdb.AddHook(trips)
			c := tc.commit
			added, err := s.CommitMessage(ctx, c, received)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error (added %v)", added)
				}
				if n, _, err := s.OutboxDepth(ctx); err != nil || n != 0 {
					t.Errorf("outbox depth after a refused commit: %d %v", n, err)
				}
				for _, id := range c.IDs {
					if _, ok, _ := s.TicketByMessageID(ctx, id); ok {
						t.Errorf("%s indexed by a refused commit", id)
					}
				}
				if _, ok, _ := s.Processed(ctx, *ref); ok {
					t.Error("marked processed by a refused commit")
				}
				return
			}
			if err != nil || !slices.Equal(added, tc.wantAdded) {
				t.Fatalf("added %v, %v; want %v", added, err, tc.wantAdded)
			}
			if trips.n != tc.trips {
				t.Errorf("%d round trips, want %d", trips.n, tc.trips)
			}
			for _, id := range c.IDs {
				if NormalizeMessageID(id) == "" {
					continue
				}
				if got, ok, err := s.TicketByMessageID(ctx, id); err != nil || !ok || got != c.TicketID {
					t.Errorf("TicketByMessageID(%s) = %q %v %v", id, got, ok, err)
				}
			}
			got, ok, err := s.Processed(ctx, *ref)
			if err != nil || ok != (c.Processed != nil) || got != map[bool]string{true: c.TicketID}[ok] {
				t.Errorf("Processed = %q %v %v, want marked: %v", got, ok, err, c.Processed != nil)
			}
			again, err := s.CommitMessage(ctx, c, received)
			if err != nil || slices.Contains(again, true) {
				t.Errorf("second commit added %v, %v; want nothing", again, err)
			}
			claimed := claimKeys(t, s, received, time.Minute, 10)
			var want []string
			for _, e := range c.Entries {
				want = append(want, e.Key)
			}
			slices.Sort(claimed)
			slices.Sort(want)
			if !slices.Equal(claimed, want) {
				t.Errorf("claimed %v, want %v", claimed, want)
			}
		})
	}
}

// TestCommitMessageNoScript: after the script cache is flushed (a Redis
// restart, a failover), the transaction's EVALSHA fails; the script is
// loaded and the whole commit done again.
func TestCommitMessageNoScript(t *testing.T) {
	srv := startRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer rdb.Close()
	s := New(rdb, "tg:")
	ctx := context.Background()
	for i := range 2 {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		ticket := fmt.Sprintf("ACME-%04d", i+1)
		ref := SourceRef{Mailbox: "support", UIDValidity: 1, UID: uint32(i + 1)}
		added, err := s.CommitMessage(ctx, Commit{TicketID: ticket, IDs: []string{"in-" + ticket},
			Entries: []OutboxEntry{mail("ack:" + ticket), mail("fwd:" + ticket)}, Processed: &ref}, received)
		if err != nil || !slices.Equal(added, []bool{true, true}) {
			t.Fatalf("commit %d after SCRIPT FLUSH: %v %v", i+1, added, err)
		}
		if got, ok, err := s.TicketByMessageID(ctx, "in-"+ticket); err != nil || !ok || got != ticket {
			t.Errorf("TicketByMessageID = %q %v %v", got, ok, err)
		}
		if got, ok, err := s.Processed(ctx, ref); err != nil || !ok || got != ticket {
			t.Errorf("Processed = %q %v %v", got, ok, err)
		}
	}
	if n, _, err := s.OutboxDepth(ctx); err != nil || n != 4 {
		t.Errorf("outbox depth %d %v, want 4", n, err)
	}
}

// failScriptLoad makes every SCRIPT command fail, as a connection lost at
// that moment would.
type failScriptLoad struct{}

func (failScriptLoad) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failScriptLoad) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "script" {
			err := errors.New("connection reset (injected)")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (failScriptLoad) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestCommitMessageNeverMarksWithoutMail: after SCRIPT FLUSH (a restart, a
// failover), the commit does not depend on loading a script, so it cannot
// end with the message marked processed and its mail missing (review
// finding: EVALSHA in MULTI/EXEC failed alone while EXEC applied the
// marker, and a failed reload left it so).
func TestCommitMessageNeverMarksWithoutMail(t *testing.T) {
	srv := startRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer rdb.Close()
	s := New(rdb, "tg:")
	ctx := context.Background()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.AddHook(failScriptLoad{})
	ref := SourceRef{Mailbox: "support", UIDValidity: 1, UID: 1}
	_, err := s.CommitMessage(ctx, Commit{TicketID: "ACME-0001", IDs: []string{"in-1"},
		Entries: []OutboxEntry{mail("ack:ACME-0001")}, Processed: &ref}, received)
	n, _, derr := s.OutboxDepth(ctx)
	_, marked, perr := s.Processed(ctx, ref)
	if derr != nil || perr != nil {
		t.Fatal(derr, perr)
	}
	if marked && n == 0 {
		t.Fatalf("commit failed (%v) but the message is marked processed with no mail queued", err)
	}
	if err != nil || !marked || n != 1 {
		t.Errorf("commit: %v, marked %v, %d queued; want it stored whole", err, marked, n)
	}
}

// tripCounter counts round trips: a command or a whole pipeline is one.
// Those that set up a new connection are not counted.
type tripCounter struct{ n int }

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !setupCmd(cmd) {
			c.n++
		}
		return next(ctx, cmd)
	}
}

func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(cmd redis.Cmder) bool { return !setupCmd(cmd) }) {
			c.n++
		}
		return next(ctx, cmds)
	}
}

func setupCmd(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }
