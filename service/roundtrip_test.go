package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// rtCounter is a go-redis hook that counts round trips: a command is one, a
// pipeline (or transaction) of any length is one.
type rtCounter struct {
	mu    sync.Mutex
	n     int
	names map[string]int
	last  time.Time
}

func (c *rtCounter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.names[name]++
	c.last = time.Now()
}

// take returns the round trips counted since the last take, and what they were.
func (c *rtCounter) take() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, names := c.n, c.names
	c.n, c.names = 0, map[string]int{}
	return n, names
}

// quietFor reports whether no round trip started for d.
func (c *rtCounter) quietFor(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.last) >= d
}

// rtSetup reports whether cmd sets up a new connection (not counted).
func rtSetup(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }

func rtName(cmd redis.Cmder) string {
	name := cmd.Name()
	if args := cmd.Args(); name == "evalsha" && len(args) > 1 {
		return fmt.Sprintf("evalsha:%.8s", args[1])
	}
	return name
}

func (c *rtCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (c *rtCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !rtSetup(cmd) {
			c.add(rtName(cmd))
		}
		return next(ctx, cmd)
	}
}

func (c *rtCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, func(cmd redis.Cmder) bool { return !rtSetup(cmd) }) {
			return next(ctx, cmds)
		}
		var names []string
		for _, cmd := range cmds {
			names = append(names, rtName(cmd))
		}
		c.add("pipeline[" + strings.Join(names, " ") + "]")
		return next(ctx, cmds)
	}
}

// countingOutbox passes everything to the store and counts the entries
// acknowledged.
type countingOutbox struct {
	*store.Store
	mu    sync.Mutex
	acked int
}

func (o *countingOutbox) AckOutbox(ctx context.Context, key string, now time.Time) error {
	err := o.Store.AckOutbox(ctx, key, now)
	o.mu.Lock()
	o.acked++
	o.mu.Unlock()
	return err
}

func (o *countingOutbox) AckOutboxMany(ctx context.Context, keys []string, now time.Time) error {
	err := o.Store.AckOutboxMany(ctx, keys, now)
	o.mu.Lock()
	o.acked += len(keys)
	o.mu.Unlock()
	return err
}

func (o *countingOutbox) AckClaimOutboxMeta(ctx context.Context, ack []string, now time.Time, lease time.Duration, max int) ([]store.OutboxEntry, error) {
	es, err := o.Store.AckClaimOutboxMeta(ctx, ack, now, lease, max)
	if err == nil {
		o.mu.Lock()
		o.acked += len(ack)
		o.mu.Unlock()
	}
	return es, err
}

func (o *countingOutbox) ackedN() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acked
}

type discardSender struct{}

func (discardSender) Send(context.Context, notify.Envelope, []byte) error { return nil }

// TestRedisRoundTripsPerMessage counts the Redis round trips of the hot
// path, one new customer message at a time as in live operation: storing
// the message (a new ticket, its acknowledgement and its staff copy), then
// the outbox sender claiming, sending and acknowledging the two mails. The
// counts are deterministic; the limits guard against a regression.
func TestRedisRoundTripsPerMessage(t *testing.T) {
	e2eRequireRedis(t)
	const messages = 6
	limits := []struct {
		path string
		max  int
	}{
		{"store new ticket (ack + forward)", 2},
		{"outbox: send its two mails", 2}, // claim both, ack both
	}

	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	w, err := demo.NewWorld(ctx, demo.WorldOptions{RedisURL: "redis://" + e2eRedisAddr()})
	if err != nil {
		t.Fatalf("start mail world: %v", err)
	}
	defer w.Close()
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	counter := &rtCounter{names: map[string]int{}}
	rdb := redis.NewClient(&redis.Options{Addr: e2eRedisAddr()})
	defer rdb.Close()
	rdb.AddHook(counter)
	st := store.New(rdb, w.Prefix)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := newE2EClock(e2eNow)
	p := service.NewPipeline(w.Config, tmpl, st, log, clock.Now)
	var outcomes []service.Outcome
	p.OnOutcome = func(o service.Outcome) { outcomes = append(outcomes, o) }
	ob := &countingOutbox{Store: st}
	sender := &service.OutboxSender{Outbox: ob, Sender: discardSender{}, Log: log, Now: clock.Now,
		Lease: time.Minute, Idle: time.Hour}
	p.OnQueued = sender.Hold // as service.New wires it: the claim reads no mail back
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sender.Run(runCtx) }()
	defer func() { stop(); <-done }()

	// settle waits until the sender acknowledged want entries and then
	// did nothing for a while (a last, empty claim counts).
	settle := func(want int) {
		t.Helper()
		for ob.ackedN() < want || !counter.quietFor(100*time.Millisecond) {
			if ctx.Err() != nil {
				t.Fatalf("outbox: %d of %d mails acknowledged: %v", ob.ackedN(), want, ctx.Err())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	settle(0)
	var total [2]int
	seen := [2]map[string]int{{}, {}}
	for i, m := range e2eMessages(messages + 1) {
		counter.take()
		// Unprocessed: as the IMAP source marks a message its batch's
		// processed lookup (one HMGET for up to 256 messages) found new.
		f := &ingest.Fetched{Mailbox: demo.SupportAddress, Folder: "INBOX", UIDValidity: 1, UID: uint32(i + 1),
			InternalDate: m.Received, Size: int64(len(m.Raw)), Body: bytes.NewReader(m.Raw), Raw: m.Raw, Unprocessed: true}
		if err := p.Handle(ctx, f); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if o := outcomes[len(outcomes)-1]; !o.Created || !o.Decision.Class.Ack {
			t.Fatalf("message %d: %+v, want a new acknowledged ticket", i, o)
		}
		stored, storedNames := counter.take()
		// Read through an uncounted client: the marker is written with the mail.
		ref := store.SourceRef{Mailbox: f.Mailbox, UIDValidity: f.UIDValidity, UID: f.UID}
		if id, ok, err := store.New(w.Redis, w.Prefix).Processed(ctx, ref); err != nil || !ok || id != outcomes[len(outcomes)-1].Ticket.ID {
			t.Fatalf("message %d: processed marker %q %v %v", i, id, ok, err)
		}
		sender.Kick()
		settle(2 * (i + 1))
		sent, sentNames := counter.take()
		if i == 0 {
			continue // the first message loads the scripts and claims the prefix
		}
		total[0] += stored
		total[1] += sent
		maps.Copy(seen[0], storedNames)
		maps.Copy(seen[1], sentNames)
	}
	for i, l := range limits {
		per := float64(total[i]) / messages
		names := slices.Sorted(maps.Keys(seen[i]))
		t.Logf("%s: %.2f round trips per message (%s)", l.path, per, strings.Join(names, ", "))
		if per > float64(l.max) {
			t.Errorf("%s: %.2f Redis round trips per message, want at most %d", l.path, per, l.max)
		}
	}
}
