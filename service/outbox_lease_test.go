package service_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// recordingSender records what it sends, taking hold per message.
type recordingSender struct {
	mu      sync.Mutex
	hold    time.Duration
	sent    []string
	started chan string
}

func (s *recordingSender) Send(_ context.Context, env notify.Envelope, raw []byte) error {
	if s.started != nil {
		s.started <- string(raw)
	}
	time.Sleep(s.hold)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, string(raw))
	return nil
}

func (s *recordingSender) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

// TestOutboxLeaseRenewedWhileSending runs two senders on one Redis outbox
// with a lease of 300 ms: a send that takes four leases keeps its claim (the
// other instance does not send it too), and an entry claimed by an instance
// that then died is sent by the survivor within about a lease.
func TestOutboxLeaseRenewedWhileSending(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const lease = 300 * time.Millisecond
	enqueue := func(key string) {
		t.Helper()
		e := store.OutboxEntry{Key: key, Kind: "ack", From: "support@x.example", To: []string{"c@y.example"}, Raw: []byte(key)}
		if _, err := st.Enqueue(ctx, e, time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	enqueue("ack:slow")
	slow := &recordingSender{hold: 4 * lease, started: make(chan string, 1)}
	a := &service.OutboxSender{Outbox: st, Sender: slow, Log: log, Lease: lease, Workers: 1, Idle: 20 * time.Millisecond}
	actx, stopA := context.WithCancel(ctx)
	doneA := make(chan struct{})
	go func() { defer close(doneA); a.Run(actx) }()
	select {
	case <-slow.started:
	case <-ctx.Done():
		t.Fatal("instance a never started sending")
	}
	fast := &recordingSender{}
	b := &service.OutboxSender{Outbox: st, Sender: fast, Log: log, Lease: lease, Workers: 1, Idle: 20 * time.Millisecond}
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	doneB := make(chan struct{})
	go func() { defer close(doneB); b.Run(bctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for len(slow.got()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stopA()
	<-doneA
	if got := slow.got(); len(got) != 1 {
		t.Fatalf("instance a sent %q, want the slow entry once", got)
	}
	if got := fast.got(); len(got) != 0 {
		t.Fatalf("instance b sent %q while a held and renewed the lease", got)
	}

	// An instance claims an entry and dies before sending it. b is paused
	// meanwhile, or it could claim the entry first (a race CI once lost).
	stopB()
	<-doneB
	enqueue("ack:orphan")
	claimed, err := st.ClaimOutbox(ctx, time.Now(), lease, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	died := time.Now()
	bctx, stopB = context.WithCancel(ctx)
	defer stopB()
	doneB = make(chan struct{})
	go func() { defer close(doneB); b.Run(bctx) }()
	for len(fast.got()) == 0 && time.Now().Before(died.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(died)
	stopB()
	<-doneB
	if got := fast.got(); len(got) != 1 || got[0] != "ack:orphan" {
		t.Fatalf("instance b sent %q, want the orphaned entry", got)
	}
	t.Logf("orphaned entry sent %v after its claimer died (lease %v)", took.Round(time.Millisecond), lease)
	if n, _, err := st.OutboxDepth(ctx); err != nil || n != 0 {
		t.Errorf("outbox depth %d, %v; want 0", n, err)
	}
}
