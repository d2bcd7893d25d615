package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
)

// TestRedisRestart kills the store's Redis between calls: while it is down
// every call returns an error (no panic, no hang past the context), and
// after a restart (scripts flushed, data gone: no persistence) the store
// works again, loading its scripts anew.
func TestRedisRestart(t *testing.T) {
	srv := startRedisServer(t)
	rdb := redis.NewClient(&redis.Options{
		Addr: srv.addr(), MaxRetries: 1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
	})
	defer rdb.Close()
	s := New(rdb, "tg:")
	ctx := context.Background()

	if _, _, err := s.CreateTicket(ctx, sampleTicket("acme", "ACME", "mid:1", received)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, mail("ack:ACME-0001"), received); err != nil {
		t.Fatal(err)
	}

	srv.stop()
	down := map[string]func(context.Context) error{
		"ping": s.Ping,
		"create": func(ctx context.Context) error {
			_, _, err := s.CreateTicket(ctx, sampleTicket("acme", "ACME", "mid:2", received))
			return err
		},
		"ticket": func(ctx context.Context) error { _, err := s.Ticket(ctx, "ACME-0001"); return err },
		"update": func(ctx context.Context) error {
			_, _, err := s.UpdateTicket(ctx, "ACME-0001", Change{Event: &domain.Event{Kind: domain.EventNote, At: received}})
			return err
		},
		"claim": func(ctx context.Context) error { _, err := s.ClaimOutbox(ctx, received, time.Minute, 10); return err },
		"enqueue": func(ctx context.Context) error {
			_, err := s.Enqueue(ctx, mail("ack:ACME-0002"), received)
			return err
		},
		"checkpoint": func(ctx context.Context) error { return s.SetCheckpoint(ctx, "INBOX", 1, 2) },
		"index":      func(ctx context.Context) error { return s.IndexMessageIDs(ctx, "ACME-0001", "a@b") },
		"timers": func(ctx context.Context) error {
			_, err := s.ClaimTimers(ctx, "acme", received, time.Minute, 1)
			return err
		},
	}
	for name, call := range down {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		start := time.Now()
		err := call(ctx)
		cancel()
		if err == nil {
			t.Errorf("%s: no error while Redis is down", name)
		}
		if errors.Is(err, ErrNotFound) {
			t.Errorf("%s: outage reported as not found: %v", name, err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%s took %v while Redis was down", name, d)
		}
	}

	srv.start()
	// Data is gone (no persistence) and the script cache is empty: EVALSHA
	// fails with NOSCRIPT and the store falls back to EVAL.
	deadline := time.Now().Add(5 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tk, created, err := s.CreateTicket(ctx, sampleTicket("acme", "ACME", "mid:3", received))
	if err != nil || !created || tk.ID != "ACME-0001" {
		t.Fatalf("create after restart: %s %v %v", tk.ID, created, err)
	}
	// Another instance (no cached prefix owners) finds the new ticket.
	if got, err := New(rdb, "tg:").Ticket(ctx, tk.ID); err != nil || got.ID != tk.ID {
		t.Fatalf("ticket by a fresh store after restart: %+v %v", got, err)
	}
	if added, err := s.Enqueue(ctx, mail("ack:ACME-0001"), received); err != nil || !added {
		t.Fatalf("enqueue after restart: %v %v", added, err)
	}
	if got, err := s.ClaimOutbox(ctx, received, time.Minute, 10); err != nil || len(got) != 1 {
		t.Fatalf("claim after restart: %v %v", got, err)
	}
	if _, _, err := s.UpdateTicket(ctx, tk.ID, Change{Event: &domain.Event{Kind: domain.EventNote, At: received}}); err != nil {
		t.Fatalf("update after restart: %v", err)
	}
}

// TestCluster runs every scripted operation against a one-node Redis
// Cluster: Redis rejects any script or transaction whose keys are not in
// one slot (CROSSSLOT), so this proves the hash tags.
func TestCluster(t *testing.T) {
	srv := startRedisServer(t, clusterArgs(t)...)
	setup := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer setup.Close()
	ctx := context.Background()
	if err := setup.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("assign slots: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := setup.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %q %v", info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.addr()}, IsClusterMode: true})
	defer rdb.Close()
	s := New(rdb, "tg:")

	nt := sampleTicket("acme", "ACME", "mid:1", received)
	nt.Ticket.Category = domain.IMAC
	nt.Timers = []Timer{{Kind: ResponseWarn, Due: received.Add(time.Minute)}}
	nt.IMAC = &IMACRequest{Candidates: tuesdays(3), MonthlyQuota: 2, PerVisit: 1, Policy: PolicyNextMonth}
	tk, _, err := s.CreateTicket(ctx, nt)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	steps := map[string]error{}
	_, _, steps["update"] = s.UpdateTicket(ctx, tk.ID, Change{
		Event: &domain.Event{Kind: domain.EventChanged, At: received}, DedupKey: "mid:2",
		CancelTimers: []string{ResponseBreach}, Timers: []Timer{{Kind: ResolutionWarn, Due: received}},
		IMAC: &IMACRequest{Candidates: tuesdays(3)[1:], MonthlyQuota: 2, Policy: PolicyForce},
	})
	_, steps["ticket"] = s.Ticket(ctx, tk.ID)
	_, steps["events"] = s.Events(ctx, tk.ID)
	_, steps["list"] = s.TicketsByContract(ctx, "acme")
	_, steps["usage"] = s.IMACUsage(ctx, "acme")
	_, steps["pending"] = s.PendingTimers(ctx, "acme")
	claimed, err := s.ClaimTimers(ctx, "acme", received.Add(time.Hour), time.Minute, 10)
	steps["claim timers"] = err
	if err == nil && len(claimed) > 0 {
		steps["ack timer"] = s.AckTimer(ctx, claimed[0])
	}
	steps["index"] = s.IndexMessageIDs(ctx, tk.ID, "a@b", "c@d", "e@f")
	_, _, steps["lookup"] = s.TicketByMessageID(ctx, "c@d")
	ref := SourceRef{Mailbox: "INBOX", UIDValidity: 1, UID: 2}
	steps["mark"] = s.MarkProcessed(ctx, ref, tk.ID)
	_, _, steps["processed"] = s.Processed(ctx, ref)
	steps["checkpoint"] = s.SetCheckpoint(ctx, "INBOX", 1, 2)
	_, _, steps["read checkpoint"] = s.Checkpoint(ctx, "INBOX")
	_, steps["lease"] = s.AcquireLease(ctx, "INBOX", "a", time.Minute)
	steps["release"] = s.ReleaseLease(ctx, "INBOX", "a")
	_, steps["rate limit"] = s.AllowAck(ctx, "a@b", "mid:1", received, 5, time.Hour)
	_, steps["enqueue"] = s.Enqueue(ctx, mail("ack:1"), received)
	_, steps["enqueue 2"] = s.Enqueue(ctx, mail("ack:2"), received)
	_, steps["claim"] = s.ClaimOutbox(ctx, received, time.Minute, 10)
	steps["retry"] = s.RetryOutbox(ctx, "ack:1", received, "x")
	steps["ack"] = s.AckOutbox(ctx, "ack:2", received)
	_, _, steps["depth"] = s.OutboxDepth(ctx)
	for name, err := range steps {
		if err != nil {
			t.Errorf("%s on cluster: %v", name, err)
		}
	}
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil || got.IMACDate != "2026-12-08" {
		t.Errorf("ticket on cluster: %+v %v", got, err)
	}
}
