package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// rawReads records which entries' bytes the sender read back from Redis.
type rawReads struct {
	*store.Store
	mu   sync.Mutex
	keys []string
}

func (r *rawReads) OutboxRaw(ctx context.Context, keys []string) ([][]byte, []bool, error) {
	r.mu.Lock()
	r.keys = append(r.keys, keys...)
	r.mu.Unlock()
	return r.Store.OutboxRaw(ctx, keys)
}

func (r *rawReads) read() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.keys))
}

// TestOutboxSendsHeldMail: the sender sends the bytes the pipeline handed
// it (Hold) without reading them back, reads the rest from Redis in one
// request, holds nothing an entry's commit did not add, and uses a held
// copy only when it is the stored message (length and CRC-32C): a copy
// with other bytes is read back instead.
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
	for _, k := range []string{"ack:held", "ack:not-held", "ack:not-added", "ack:other-bytes"} {
		e := entry(k)
		if _, err := st.Enqueue(ctx, e, now); err != nil {
			t.Fatal(err)
		}
		queued = append(queued, e)
	}
	sent := &recordingSender{}
	reads := &rawReads{Store: st}
	o := &service.OutboxSender{Outbox: reads, Sender: sent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workers: 4, Batch: 10, Idle: 20 * time.Millisecond}
	other := queued[3]
	other.Raw = []byte("STORED ack:other-bytes") // same length, other bytes
	o.Hold([]store.OutboxEntry{queued[0], queued[2], other}, []bool{true, false, true})

	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = o.Run(rctx) }()
	for len(sent.got()) < 4 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	got := sent.got()
	slices.Sort(got)
	want := []string{"stored ack:held", "stored ack:not-added", "stored ack:not-held", "stored ack:other-bytes"}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if r, want := reads.read(), []string{"ack:not-added", "ack:not-held", "ack:other-bytes"}; !slices.Equal(r, want) {
		t.Errorf("read back %q from Redis, want %q (not the held one)", r, want)
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
	raws, queued, err := st.OutboxRaw(ctx, []string{"ack:missing", "ack:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(raws) != 2 || raws[0] != nil || string(raws[1]) != string(e.Raw) || !slices.Equal(queued, []bool{false, true}) {
		t.Fatalf("OutboxRaw = %q, queued %v", raws, queued)
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

// TestOutboxHeldMailGoesStale (review): heldMailAge says how long an entry
// nobody claimed stays held, but take() never looks at the age and evict
// runs only under the 4 MiB cap. Instance A holds the ack it queued; its
// Redis entry is then lost (data loss; or another instance sent it and the
// key was queued again after the retention). Another instance queues the
// same key with other bytes (ticket numbers restart after a data loss, so
// "ack:ACME-0001" is now another customer's ack). Minutes later, A's sender
// claims the entry and sends the old held bytes to the new recipient.
func TestOutboxHeldMailGoesStale(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	var clock atomicTime
	clock.set(start)
	old := store.OutboxEntry{Key: "ack:ACME-0001", Kind: "ack", From: "support@x.example", To: []string{"first@customer.example"},
		Raw: []byte("To: first@customer.example\r\nSubject: [ACME-0001] first customer's problem\r\n\r\nack\r\n")}
	if _, err := st.Enqueue(ctx, old, start); err != nil {
		t.Fatal(err)
	}
	sent := &recordingSender{}
	a := &service.OutboxSender{Outbox: st, Sender: sent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Workers: 1, Idle: 20 * time.Millisecond, Now: clock.now}
	a.Hold([]store.OutboxEntry{old}, []bool{true}) // A's pipeline queued it

	// Redis loses the outbox (and the ticket counter); another instance
	// queues a new customer's ack under the same key.
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	later := start.Add(10 * time.Minute) // well past heldMailAge
	clock.set(later)
	fresh := store.OutboxEntry{Key: "ack:ACME-0001", Kind: "ack", From: "support@x.example", To: []string{"second@other.example"},
		Raw: []byte("To: second@other.example\r\nSubject: [ACME-0001] second customer's problem\r\n\r\nack\r\n")}
	if added, err := store.New(rdb, prefix).Enqueue(ctx, fresh, later); err != nil || !added {
		t.Fatalf("enqueue: %v %v", added, err)
	}

	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(rctx) }()
	for len(sent.got()) < 1 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	if got := sent.got(); len(got) != 1 || got[0] != string(fresh.Raw) {
		t.Fatalf("sent %q to %v, want the stored %q", got, fresh.To, fresh.Raw)
	}
}

type atomicTime struct {
	mu sync.Mutex
	t  time.Time
}

func (a *atomicTime) set(t time.Time) { a.mu.Lock(); a.t = t; a.mu.Unlock() }
func (a *atomicTime) now() time.Time  { a.mu.Lock(); defer a.mu.Unlock(); return a.t }

// ackingReads acknowledges each entry just before its bytes are read: an
// earlier claimant, whose lease had lapsed, finishing its send meanwhile.
type ackingReads struct {
	*store.Store
	retried int
}

func (a *ackingReads) OutboxRaw(ctx context.Context, keys []string) ([][]byte, []bool, error) {
	for _, k := range keys {
		if err := a.Store.AckOutbox(ctx, k, time.Now()); err != nil {
			return nil, nil, err
		}
	}
	return a.Store.OutboxRaw(ctx, keys)
}

func (a *ackingReads) RetryOutbox(ctx context.Context, key string, at time.Time, errText string) error {
	a.retried++
	return a.Store.RetryOutbox(ctx, key, at, errText)
}

// TestOutboxEntryAckedBeforeItsBytesAreRead: an entry acknowledged between
// the claim and the read of its bytes is not sent (empty) nor rescheduled.
func TestOutboxEntryAckedBeforeItsBytesAreRead(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := store.OutboxEntry{Key: "ack:gone", Kind: "ack", From: "support@x.example", To: []string{"c@y.example"}, Raw: []byte("m")}
	if _, err := st.Enqueue(ctx, e, time.Now()); err != nil {
		t.Fatal(err)
	}
	sent := &recordingSender{}
	out := &ackingReads{Store: st}
	o := &service.OutboxSender{Outbox: out, Sender: sent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Idle: time.Hour}
	rctx, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	defer stop()
	_ = o.Run(rctx)
	if got := sent.got(); len(got) != 0 || out.retried != 0 {
		t.Fatalf("sent %q, rescheduled %d times; want nothing", got, out.retried)
	}
	if n, _, err := st.OutboxDepth(ctx); err != nil || n != 0 {
		t.Fatalf("outbox depth %d, %v", n, err)
	}
}

// refusingEmpty refuses an empty message, as the SMTP sender does.
type refusingEmpty struct{ recordingSender }

func (r *refusingEmpty) Send(ctx context.Context, env notify.Envelope, raw []byte) error {
	if len(raw) == 0 {
		return &notify.SendError{Op: "data", Code: 554, Err: errors.New("empty message")}
	}
	return r.recordingSender.Send(ctx, env, raw)
}

// TestOutboxEntryWithLostBytesIsGivenUp (review): an entry still queued
// whose stored bytes are gone (evicted, a partial restore) fails as an
// empty message and is given up after MaxAttempts, as before the held-mail
// path; it does not go round unseen at every lease.
func TestOutboxEntryWithLostBytesIsGivenUp(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := store.OutboxEntry{Key: "ack:lost-bytes", Kind: "ack", From: "support@x.example", To: []string{"c@y.example"}, Raw: []byte("m")}
	if _, err := st.Enqueue(ctx, e, time.Now()); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*raw").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("raw keys %v, %v", keys, err)
	}
	if err := rdb.Del(ctx, keys[0]).Err(); err != nil {
		t.Fatal(err)
	}
	sent := &refusingEmpty{}
	o := &service.OutboxSender{Outbox: st, Sender: sent, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Idle: 20 * time.Millisecond, Lease: 50 * time.Millisecond, MaxAttempts: 1}
	rctx, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	_ = o.Run(rctx)
	if n, _, err := st.OutboxDepth(ctx); err != nil || n != 0 {
		t.Fatalf("outbox depth %d, %v: the entry with lost bytes was neither sent nor given up", n, err)
	}
	if got := sent.got(); len(got) != 0 {
		t.Fatalf("sent %q", got)
	}
}
