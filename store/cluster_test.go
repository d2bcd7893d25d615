package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
)

// requireBinaries skips the test without the Redis binaries, or fails it
// under CI=true.
func requireBinaries(tb testing.TB, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("%s not on PATH: %v", n, err)
			}
			tb.Skipf("%s not on PATH: %v", n, err)
		}
	}
}

// portFree reports whether a TCP port on 127.0.0.1 can be bound now.
func portFree(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// clusterPorts picks n ports P whose cluster bus ports P+10000 are free
// too.
func clusterPorts(tb testing.TB, n int) []int {
	tb.Helper()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			tb.Fatal("no free port pairs for a Redis Cluster")
		}
		p := 20000 + rand.IntN(25000)
		dup := false
		for _, q := range out {
			dup = dup || q == p || q+10000 == p || q == p+10000
		}
		if !dup && portFree(p) && portFree(p+10000) {
			out = append(out, p)
		}
	}
	return out
}

// startCluster starts a Redis Cluster of three masters on local ports,
// without persistence, and returns the nodes' addresses. The processes are
// killed when the test ends.
func startCluster(tb testing.TB) []string {
	tb.Helper()
	requireBinaries(tb, "redis-server", "redis-cli")
	dir := tb.TempDir()
	var addrs []string
	for attempt := 1; ; attempt++ {
		ports := clusterPorts(tb, 3)
		addrs = addrs[:0]
		var started []*exec.Cmd
		ok := true
		for _, p := range ports {
			cmd := exec.Command("redis-server",
				"--port", strconv.Itoa(p), "--bind", "127.0.0.1",
				"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", p),
				"--cluster-node-timeout", "5000",
				"--appendonly", "no", "--save", "", "--dir", dir, "--daemonize", "no")
			if err := cmd.Start(); err != nil {
				tb.Fatalf("start redis-server: %v", err)
			}
			started = append(started, cmd)
			addr := fmt.Sprintf("127.0.0.1:%d", p)
			addrs = append(addrs, addr)
			if err := waitPing(addr, 10*time.Second); err != nil {
				ok = false // lost the port to another process meanwhile
				tb.Logf("redis-server on %s: %v", addr, err)
				break
			}
		}
		kill := func() {
			for _, c := range started {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}
		if ok {
			tb.Cleanup(kill)
			break
		}
		kill()
		if attempt == 3 {
			tb.Fatal("could not start three redis-server nodes")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must agree that the cluster is whole before the client
	// reads the slot map.
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") &&
				strings.Contains(info, "cluster_slots_ok:16384") {
				break
			}
			if ctx.Err() != nil {
				c.Close()
				tb.Fatalf("cluster node %s not ready: %q %v", a, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return addrs
}

func waitPing(addr string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// contractsOnEveryMaster returns contract ids whose keys (hash tag
// {c:<id>}) land on every master of the cluster, at least one per master.
func contractsOnEveryMaster(t *testing.T, rdb *redis.ClusterClient, s *Store) []string {
	t.Helper()
	ctx := context.Background()
	seen := map[string]bool{}
	var out []string
	for i := 0; i < 200 && len(seen) < 3; i++ {
		c := fmt.Sprintf("c%d", i)
		node, err := rdb.MasterForKey(ctx, s.k.tickets(c))
		if err != nil {
			t.Fatalf("master for contract %s: %v", c, err)
		}
		if addr := node.Options().Addr; !seen[addr] {
			seen[addr] = true
			out = append(out, c)
		}
	}
	if len(seen) < 3 {
		t.Fatalf("contracts reach only %d masters", len(seen))
	}
	return out
}

// TestThreeMasterCluster runs the store on a real three-master Redis
// Cluster: every script and pipeline must address one slot (CROSSSLOT
// otherwise) and follow the slots to the right master (MOVED otherwise),
// with contracts, mailboxes, senders and Message-IDs spread over all three
// masters. Results are checked, not only the absence of errors.
func TestThreeMasterCluster(t *testing.T) {
	addrs := startCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer rdb.Close()
	ctx := context.Background()
	s := New(rdb, "tg:")

	contracts := contractsOnEveryMaster(t, rdb, s)
	for _, c := range contracts {
		t.Run("contract "+c, func(t *testing.T) { clusterScenario(t, s, c) })
	}

	// The Message-ID index: one slot per id, written by one pipeline that
	// the client splits by node.
	var ids []string
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("<id-%d@mail.example>", i))
	}
	if err := s.IndexMessageIDs(ctx, "C0-0001", ids...); err != nil {
		t.Fatalf("index: %v", err)
	}
	masters := map[string]bool{}
	for _, id := range ids {
		node, err := rdb.MasterForKey(ctx, s.k.messageID(NormalizeMessageID(id)))
		if err != nil {
			t.Fatal(err)
		}
		masters[node.Options().Addr] = true
		if got, ok, err := s.TicketByMessageID(ctx, id); err != nil || !ok || got != "C0-0001" {
			t.Errorf("TicketByMessageID(%s) = %q %v %v", id, got, ok, err)
		}
	}
	if len(masters) < 2 {
		t.Errorf("30 Message-IDs landed on %d master(s)", len(masters))
	}
	// One pipelined look-up across the slots.
	if got, err := s.TicketsByMessageIDs(ctx, ids); err != nil || len(got) != len(ids) || slices.ContainsFunc(got, func(t string) bool { return t != "C0-0001" }) {
		t.Errorf("TicketsByMessageIDs = %q, %v", got, err)
	}

	// Rate limits and mailboxes live under their own tags.
	for i := range 6 {
		sender := fmt.Sprintf("user%d@acme.example", i)
		for j := range 3 {
			ok, err := s.AllowAck(ctx, sender, fmt.Sprintf("mid:%d", j), received.Add(time.Duration(j)*time.Minute), 2, time.Hour)
			if err != nil || ok != (j < 2) {
				t.Errorf("AllowAck(%s, %d) = %v %v", sender, j, ok, err)
			}
		}
		mb := fmt.Sprintf("support%d@msp.example", i)
		ref := SourceRef{Mailbox: mb, UIDValidity: 7, UID: 42}
		if err := s.MarkProcessed(ctx, ref, "C0-0001"); err != nil {
			t.Fatalf("mark: %v", err)
		}
		if id, ok, err := s.Processed(ctx, ref); err != nil || !ok || id != "C0-0001" {
			t.Errorf("Processed(%v) = %q %v %v", ref, id, ok, err)
		}
		if err := s.SetCheckpoint(ctx, mb, 7, 42); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCheckpoint(ctx, mb, 7, 41); err != nil { // never moves back
			t.Fatal(err)
		}
		if uv, last, err := s.Checkpoint(ctx, mb); err != nil || uv != 7 || last != 42 {
			t.Errorf("Checkpoint(%s) = %d %d %v", mb, uv, last, err)
		}
		if ok, err := s.AcquireLease(ctx, mb, "a", time.Minute); err != nil || !ok {
			t.Errorf("AcquireLease a: %v %v", ok, err)
		}
		if ok, err := s.AcquireLease(ctx, mb, "b", time.Minute); err != nil || ok {
			t.Errorf("AcquireLease b while a holds it: %v %v", ok, err)
		}
		if err := s.ReleaseLease(ctx, mb, "a"); err != nil {
			t.Error(err)
		}
		if ok, err := s.AcquireLease(ctx, mb, "b", time.Minute); err != nil || !ok {
			t.Errorf("AcquireLease b after release: %v %v", ok, err)
		}
	}

	// The outbox: one tag, claimed atomically.
	for i := range 5 {
		if added, err := s.Enqueue(ctx, mail(fmt.Sprintf("ack:%d", i)), received); err != nil || !added {
			t.Fatalf("enqueue %d: %v %v", i, added, err)
		}
	}
	if added, err := s.Enqueue(ctx, mail("ack:0"), received); err != nil || added {
		t.Errorf("enqueue again: %v %v", added, err)
	}
	claimed, err := s.ClaimOutbox(ctx, received, time.Minute, 10)
	if err != nil || len(claimed) != 5 {
		t.Fatalf("claim outbox: %d %v", len(claimed), err)
	}
	if again, err := s.ClaimOutbox(ctx, received, time.Minute, 10); err != nil || len(again) != 0 {
		t.Errorf("claimed twice: %d %v", len(again), err)
	}
	if err := s.RetryOutbox(ctx, "ack:0", received.Add(time.Minute), "421 try later"); err != nil {
		t.Error(err)
	}
	for _, e := range claimed[1:] {
		if err := s.AckOutbox(ctx, e.Key, received); err != nil {
			t.Errorf("ack %s: %v", e.Key, err)
		}
	}
	if n, _, err := s.OutboxDepth(ctx); err != nil || n != 1 {
		t.Errorf("outbox depth %d %v, want 1", n, err)
	}
	// Message-IDs, mail and the processed marker in one call: on a
	// cluster, the ids (one slot each), then the entries, then the marker,
	// one round trip after the other.
	commit := Commit{TicketID: "C0-0002", IDs: []string{"<both-1@mail.example>", "<both-2@mail.example>"},
		Entries:   []OutboxEntry{mail("ack:both-1"), mail("fwd:both-1")},
		Processed: &SourceRef{Mailbox: "support@msp.example", UIDValidity: 7, UID: 43}}
	for i, want := range []bool{true, false} {
		added, err := s.CommitMessage(ctx, commit, received)
		if err != nil || len(added) != 2 || added[0] != want || added[1] != want {
			t.Errorf("commit, call %d: %v %v, want added %v", i+1, added, err, want)
		}
	}
	if got, ok, err := s.TicketByMessageID(ctx, "both-2@mail.example"); err != nil || !ok || got != "C0-0002" {
		t.Errorf("TicketByMessageID after CommitMessage = %q %v %v", got, ok, err)
	}
	if id, ok, err := s.Processed(ctx, *commit.Processed); err != nil || !ok || id != "C0-0002" {
		t.Errorf("Processed after CommitMessage = %q %v %v", id, ok, err)
	}
	if n, _, err := s.OutboxDepth(ctx); err != nil || n != 3 {
		t.Errorf("outbox depth %d %v, want 3", n, err)
	}
	if ok, err := s.ClaimOnce(ctx, "qbr:c0:2026-Q4", time.Minute); err != nil || !ok {
		t.Errorf("ClaimOnce: %v %v", ok, err)
	}

	// After a script cache flush on every master (a failover to a replica
	// that never saw the scripts), EVALSHA fails with NOSCRIPT and the
	// store falls back to EVAL on each shard.
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.ScriptFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range contracts {
		nt := sampleTicket(c, strings.ToUpper(c), "mid:after-flush", received)
		if tk, created, err := s.CreateTicket(ctx, nt); err != nil || !created {
			t.Errorf("create after script flush (%s): %s %v %v", c, tk.ID, created, err)
		}
	}
	if _, err := s.ClaimOutbox(ctx, received.Add(time.Hour), time.Minute, 10); err != nil {
		t.Errorf("claim outbox after script flush: %v", err)
	}
}

// clusterScenario takes one contract's ticket through creation with an
// IMAC slot, updates, timers, events and IMAC counters, checking results.
func clusterScenario(t *testing.T, s *Store, contract string) {
	ctx := context.Background()
	prefix := strings.ToUpper(contract)
	nt := sampleTicket(contract, prefix, "mid:1", received)
	nt.Ticket.Category = domain.IMAC
	nt.Timers = []Timer{{Kind: ResponseWarn, Due: received.Add(time.Minute)}, {Kind: ResponseBreach, Due: received.Add(time.Hour)}}
	nt.IMAC = &IMACRequest{Candidates: tuesdays(3), MonthlyQuota: 2, PerVisit: 1, Policy: PolicyNextMonth}
	tk, created, err := s.CreateTicket(ctx, nt)
	if err != nil || !created || tk.ID != prefix+"-0001" || tk.IMACDate != "2026-12-01" {
		t.Fatalf("create: %+v %v %v", tk, created, err)
	}
	if again, created, err := s.CreateTicket(ctx, nt); err != nil || created || again.ID != tk.ID {
		t.Errorf("create again (dedup): %s %v %v", again.ID, created, err)
	}
	// The visit is full (per_visit 1): the second IMAC goes to the next
	// Tuesday.
	nt2 := sampleTicket(contract, prefix, "mid:2", received)
	nt2.Ticket.Category = domain.IMAC
	nt2.IMAC = nt.IMAC
	tk2, _, err := s.CreateTicket(ctx, nt2)
	if err != nil || tk2.ID != prefix+"-0002" || tk2.IMACDate != "2026-12-08" {
		t.Fatalf("second IMAC: %+v %v", tk2, err)
	}
	// A fresh store (another instance) finds the ticket by id alone.
	if got, err := New(s.rdb, "tg:").Ticket(ctx, strings.ToLower(prefix)+"-1"); err != nil || got.ID != tk.ID {
		t.Errorf("ticket by another instance: %+v %v", got, err)
	}

	upd, applied, err := s.UpdateTicket(ctx, tk.ID, Change{
		Mutate:       func(x *domain.Ticket) error { x.Priority = domain.Urgent; return nil },
		Event:        &domain.Event{Kind: domain.EventChanged, At: received.Add(time.Minute)},
		DedupKey:     "mid:3",
		CancelTimers: []string{ResponseWarn},
		Timers:       []Timer{{Kind: ResolutionBreach, Due: received.Add(2 * time.Hour)}},
		IMAC:         &IMACRequest{Candidates: tuesdays(4)[2:], MonthlyQuota: 2, Policy: PolicyForce},
	})
	if err != nil || !applied || upd.Priority != domain.Urgent || upd.IMACDate != "2026-12-15" {
		t.Fatalf("update: %+v %v %v", upd, applied, err)
	}
	if _, applied, err := s.UpdateTicket(ctx, tk.ID, Change{DedupKey: "mid:3", Event: &domain.Event{Kind: domain.EventNote, At: received}}); err != nil || applied {
		t.Errorf("update again (dedup): %v %v", applied, err)
	}
	if added, err := s.AppendEvent(ctx, tk.ID, domain.Event{Kind: domain.EventNote, At: received.Add(2 * time.Minute)}, ""); err != nil || !added {
		t.Errorf("append event: %v %v", added, err)
	}
	evs, err := s.Events(ctx, tk.ID)
	if err != nil || len(evs) != 3 || evs[0].Kind != domain.EventOpened || evs[1].Kind != domain.EventChanged || evs[2].Kind != domain.EventNote {
		t.Errorf("events: %+v %v", evs, err)
	}
	usage, err := s.IMACUsage(ctx, contract)
	if err != nil || usage.MonthUsed(2026, time.December) != 2 || usage.DayUsed(tuesdays(3)[0]) != 0 || usage.DayUsed(tuesdays(3)[2]) != 1 {
		t.Errorf("imac usage: %+v %v", usage, err)
	}
	list, err := s.TicketsByContract(ctx, contract)
	if err != nil || len(list) != 2 || list[0].ID != tk.ID {
		t.Errorf("tickets by contract: %d %v", len(list), err)
	}

	timers, err := s.PendingTimers(ctx, contract)
	if err != nil || len(timers) != 2 || timers[0].Kind != ResponseBreach || timers[1].Kind != ResolutionBreach {
		t.Fatalf("pending timers: %+v %v", timers, err)
	}
	if n, err := s.TimerCount(ctx, contract); err != nil || n != 2 {
		t.Errorf("timer count: %d %v", n, err)
	}
	claimed, err := s.ClaimTimers(ctx, contract, received.Add(90*time.Minute), time.Minute, 10)
	if err != nil || len(claimed) != 1 || claimed[0].Kind != ResponseBreach {
		t.Fatalf("claim timers: %+v %v", claimed, err)
	}
	if err := s.AckTimer(ctx, claimed[0]); err != nil {
		t.Errorf("ack timer: %v", err)
	}
	if err := s.AckTimer(ctx, claimed[0]); !errors.Is(err, ErrNotClaimed) {
		t.Errorf("ack twice: %v, want ErrNotClaimed", err)
	}
	if timers, err := s.PendingTimers(ctx, contract); err != nil || len(timers) != 1 {
		t.Errorf("timers after ack: %+v %v", timers, err)
	}
}
