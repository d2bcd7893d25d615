package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// TestOutboxSendsHeldMail: the sender sends the bytes the pipeline handed
// it (Hold) without reading them back, reads the rest from Redis in one
// request, and holds nothing an entry's commit did not add.
//
// To tell the two paths apart, the test holds bytes other than the stored
// ones; the pipeline always holds exactly what it stored.
func TestOutboxSendsHeldMail(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	entry := func(key string) store.OutboxEntry {
		return store.OutboxEntry{Key: key, Kind: "ack", From: "support@x.example", To: []string{"c@y.example"}, Raw: []byte("stored " + key)}
	}
	var queued []store.OutboxEntry
	for _, k := range []string{"ack:held", "ack:not-held", "ack:not-added"} {
		e := entry(k)
		if _, err := st.Enqueue(ctx, e, now); err != nil {
			t.Fatal(err)
		}
		queued = append(queued, e)
	}
	sent := &recordingSender{}
	o := &service.OutboxSender{Outbox: st, Sender: sent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workers: 4, Batch: 10, Idle: 20 * time.Millisecond}
	held := queued[0]
	held.Raw = []byte("held ack:held")
	notAdded := queued[2]
	notAdded.Raw = []byte("held ack:not-added")
	o.Hold([]store.OutboxEntry{held, notAdded}, []bool{true, false})

	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = o.Run(rctx) }()
	for len(sent.got()) < 3 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	got := sent.got()
	slices.Sort(got)
	want := []string{"held ack:held", "stored ack:not-added", "stored ack:not-held"}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
}

// TestClaimOutboxMeta: the claim leaves the bytes out, OutboxRaw reads them
// in the order asked, nil for a key without bytes.
func TestClaimOutboxMeta(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	ctx := context.Background()
	now := time.Now()
	e := store.OutboxEntry{Key: "ack:1", Kind: "ack", From: "support@x.example", To: []string{"c@y.example"}, Raw: []byte("bytes\r\n\x00\xff")}
	if _, err := st.Enqueue(ctx, e, now); err != nil {
		t.Fatal(err)
	}
	got, err := st.ClaimOutboxMeta(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %d entries", err, len(got))
	}
	if got[0].Key != "ack:1" || got[0].Raw != nil || got[0].Attempts != 1 || !slices.Equal(got[0].To, e.To) {
		t.Fatalf("claimed %+v", got[0])
	}
	raws, err := st.OutboxRaw(ctx, []string{"ack:missing", "ack:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(raws) != 2 || raws[0] != nil || string(raws[1]) != string(e.Raw) {
		t.Fatalf("OutboxRaw = %q", raws)
	}
}

// TestOutboxBacklogAcksWithNextClaim: draining a backlog in full batches,
// each batch's sent mail is acknowledged in the round trip that claims the
// next: 12 mails in batches of 4 take 4 round trips (3 claims, the last
// with nothing left to claim), not 7, and every mail is sent once and
// acknowledged.
func TestOutboxBacklogAcksWithNextClaim(t *testing.T) {
	e2eRequireRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: e2eRedisAddr()})
	defer rdb.Close()
	_, prefix := qbrRedis(t)
	counter := &rtCounter{names: map[string]int{}}
	rdb.AddHook(counter)
	plain := redis.NewClient(&redis.Options{Addr: e2eRedisAddr()})
	defer plain.Close()
	uncounted := store.New(plain, prefix)
	st := store.New(rdb, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	const n = 12
	sent := &recordingSender{}
	o := &service.OutboxSender{Outbox: st, Sender: sent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workers: 4, Batch: 4, Idle: time.Hour}
	for i := range n {
		e := store.OutboxEntry{Key: fmt.Sprintf("ack:%02d", i), Kind: "ack", From: "s@x.example", To: []string{"c@y.example"}, Raw: []byte("m")}
		if _, err := st.Enqueue(ctx, e, now); err != nil {
			t.Fatal(err)
		}
		o.Hold([]store.OutboxEntry{e}, []bool{true}) // as the pipeline does: no bytes read back
	}
	counter.take()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = o.Run(rctx) }()
	for {
		depth, _, err := uncounted.OutboxDepth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if depth == 0 && counter.quietFor(100*time.Millisecond) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("outbox depth %d: %v", depth, ctx.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	trips, names := counter.take()
	stop()
	<-done
	if got := sent.got(); len(got) != n {
		t.Fatalf("sent %d mails, want %d", len(got), n)
	}
	if trips != 4 {
		t.Errorf("%d round trips (%v), want 4", trips, names)
	}
}
