package lmtp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/lmtp"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// The end-to-end tests run the real pipeline (service.Gateway's Pipeline and
// OutboxSender) on demo.World: go-imap's IMAP server holding the support
// mailbox, a go-smtp catcher as the relay, and a real Redis at REDIS_ADDR
// (default 127.0.0.1:6379), with a random key prefix removed at the end.
// Without Redis they are skipped, unless CI=true, where they fail.

func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

var redisProbe = sync.OnceValue(func() error {
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
})

func requireRedis(t testing.TB) {
	t.Helper()
	if err := redisProbe(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", redisAddr(), err)
		}
		t.Skipf("redis at %s not reachable: %v", redisAddr(), err)
	}
}

// world is one test's mail world with the gateway's pipeline and outbox
// running (but no LMTP server: each test starts its own).
type world struct {
	t        testing.TB
	ctx      context.Context
	w        *demo.World
	g        *service.Gateway
	st       *store.Store
	log      *slog.Logger
	mu       sync.Mutex
	outcomes []service.Outcome
}

func newWorld(t testing.TB) *world {
	t.Helper()
	requireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	w, err := demo.NewWorld(ctx, demo.WorldOptions{RedisURL: "redis://" + redisAddr()})
	if err != nil {
		t.Fatalf("start mail world: %v", err)
	}
	t.Cleanup(w.Close)
	// What `lmtp: {listen: 127.0.0.1:0}` would load to (a fixed port in
	// production; rules refuses port 0).
	w.Config.LMTP = &rules.LMTP{Listen: "127.0.0.1:0", Network: "tcp", Address: "127.0.0.1:0",
		Mailbox: demo.SupportAddress, MaxMessageBytes: w.Config.Limits.MaxMessageBytes}
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	wd := &world{t: t, ctx: ctx, w: w, st: store.New(w.Redis, w.Prefix), log: testLogger(t)}
	g, err := service.New(ctx, w.Config, tmpl, wd.log, service.Options{
		Redis: w.Redis, OutboxIdle: 20 * time.Millisecond,
		OnOutcome: func(o service.Outcome) { wd.mu.Lock(); wd.outcomes = append(wd.outcomes, o); wd.mu.Unlock() },
	})
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	t.Cleanup(g.Close)
	wd.g = g
	octx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.Outbox.Run(octx) }()
	t.Cleanup(func() { stop(); <-done })
	return wd
}

// lmtpServer starts the gateway's LMTP server (lmtp.FromRules, as `gateway
// run` builds it) with h as the handler and a fixed arrival clock.
func (wd *world) lmtpServer(h ingest.Handler, now time.Time) *lmtp.Server {
	wd.t.Helper()
	ic, err := lmtp.IMAPConfigFromRules(wd.w.Config)
	if err != nil {
		wd.t.Fatal(err)
	}
	s, err := lmtp.FromRules(wd.w.Config, ic, h, wd.log.With("component", "lmtp"), []lmtp.Option{lmtp.WithClock(func() time.Time { return now })})
	if err != nil {
		wd.t.Fatal(err)
	}
	runServer(wd.t, s)
	return s
}

func (wd *world) snapshot() []service.Outcome {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	return append([]service.Outcome(nil), wd.outcomes...)
}

// sample returns the embedded example message whose file name starts with
// prefix.
func sample(t testing.TB, prefix string) []byte {
	t.Helper()
	all, err := demo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if strings.HasPrefix(s.Name, prefix) {
			return s.Raw
		}
	}
	t.Fatalf("no sample %s", prefix)
	return nil
}

// mailTo returns the caught mail addressed to addr.
func mailTo(mail []localmail.Mail, addr string) []localmail.Mail {
	var out []localmail.Mail
	for _, m := range mail {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// TestEndToEnd pushes the English request over LMTP into the real pipeline:
// 250 per recipient, the ticket stored with the arrival instant as its
// received time, the acknowledgement and the staff copy sent, the copy
// filed into Processed with that INTERNALDATE; the same message delivered
// again (a lost 250) gives no second ticket and no second mail.
func TestEndToEnd(t *testing.T) {
	wd := newWorld(t)
	// Mon 30 Nov 2026 09:30:20.4 IST: the server keeps whole seconds.
	now := time.Date(2026, 11, 30, 7, 30, 20, 400_000_000, time.UTC)
	received := now.Truncate(time.Second)
	s := wd.lmtpServer(wd.g.Pipeline.Handle, now)
	raw := sample(t, "request-english")
	const customer = "maria.lopez@globex.example"

	a := send(t, "tcp", s.Addr().String(), customer, []string{demo.SupportAddress, "SUPPORT@northwind-it.example"}, raw)
	for r, c := range a.data {
		if c != 250 {
			t.Fatalf("recipient %s: %d %q, want 250", r, c, a.text[r])
		}
	}
	if len(a.data) != 2 {
		t.Fatalf("answers %v", a.data)
	}
	outs := wd.snapshot()
	if len(outs) != 1 || outs[0].Action != "ticket" || !outs[0].Created {
		t.Fatalf("outcomes %+v", outs)
	}
	tk, err := wd.st.Ticket(wd.ctx, outs[0].Ticket.ID)
	if err != nil {
		t.Fatalf("read ticket: %v", err)
	}
	if tk.Contract != "globex" || tk.Category != domain.Request || !tk.Opened.Equal(received) {
		t.Errorf("ticket %s: contract %s category %s opened %v, want globex request %v", tk.ID, tk.Contract, tk.Category, tk.Opened, received)
	}
	mail, err := wd.w.SMTP.WaitFor(wd.ctx, 2)
	if err != nil {
		t.Fatalf("acknowledgement and staff copy: %v", err)
	}
	acks := mailTo(mail, customer)
	if len(acks) != 1 || !bytes.Contains(acks[0].Raw, []byte("Auto-Submitted: auto-replied")) || !bytes.Contains(acks[0].Raw, []byte(tk.ID)) {
		t.Fatalf("acknowledgements to the customer: %d", len(acks))
	}
	if n := len(mailTo(mail, "helpdesk@northwind-it.example")); n != 1 {
		t.Errorf("staff copies: %d", n)
	}
	wantCopy := append([]byte("Return-Path: <"+customer+">\r\n"), raw...)
	filed := readFolder(t, wd.w.IMAP.Addr, demo.SupportAddress, "demo-password", "Processed")
	if len(filed) != 1 || !filed[0].internalDate.Equal(received) || !bytes.Equal(filed[0].body, wantCopy) {
		t.Fatalf("Processed holds %d messages; want the copy with INTERNALDATE %v", len(filed), received)
	}

	// The mail server delivers it again (its 250 was lost): one ticket.
	a = send(t, "tcp", s.Addr().String(), customer, []string{demo.SupportAddress}, raw)
	if a.data[demo.SupportAddress] != 250 {
		t.Fatalf("duplicate: %d", a.data[demo.SupportAddress])
	}
	outs = wd.snapshot()
	if len(outs) != 2 || outs[1].Action != "duplicate" || outs[1].Ticket.ID != tk.ID {
		t.Fatalf("outcomes %+v", outs)
	}
	all, err := wd.st.TicketsByContract(wd.ctx, "globex")
	if err != nil || len(all) != 1 {
		t.Fatalf("globex tickets: %d, %v", len(all), err)
	}
	time.Sleep(300 * time.Millisecond) // the outbox polls every 20ms
	if n := len(wd.w.SMTP.Mail()); n != 2 {
		t.Errorf("%d mails sent after the duplicate, want still 2", n)
	}
	// The filed copy is not deduplicated: the mailbox gets a second copy
	// (rebuilding from it deduplicates by Message-ID).
	if n := len(readFolder(t, wd.w.IMAP.Addr, demo.SupportAddress, "demo-password", "Processed")); n != 2 {
		t.Errorf("Processed holds %d copies, want 2", n)
	}

	// Another message: pushed mail has no UID, so nothing may mistake it
	// for the one already processed.
	a = send(t, "tcp", s.Addr().String(), "yossi@acme.co.il", []string{demo.SupportAddress}, sample(t, "fault-hebrew"))
	if a.data[demo.SupportAddress] != 250 {
		t.Fatalf("second message: %d", a.data[demo.SupportAddress])
	}
	outs = wd.snapshot()
	if len(outs) != 3 || outs[2].Action != "ticket" || !outs[2].Created || outs[2].Ticket.ID == tk.ID {
		t.Fatalf("second message's outcome %+v", outs[len(outs)-1])
	}
	if st := s.Stats(); st.Delivered != 3 || st.Filed != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestEndToEndFailures: with Redis unreachable the message is answered 451
// and nothing is stored, filed or sent; a failure after the ticket was
// stored is answered 451 too, and the mail server's retry then yields the
// one ticket and the one acknowledgement.
func TestEndToEndFailures(t *testing.T) {
	wd := newWorld(t)
	now := time.Date(2026, 11, 30, 7, 40, 0, 0, time.UTC)
	raw := sample(t, "fault-hebrew")
	const customer = "yossi@acme.co.il"

	// A pipeline whose Redis does not answer (port 1 on loopback).
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer down.Close()
	tmpl, _ := notify.LoadTemplates("")
	broken := service.NewPipeline(wd.w.Config, tmpl, store.New(down, wd.w.Prefix), wd.log, nil)
	s1 := wd.lmtpServer(broken.Handle, now)
	a := send(t, "tcp", s1.Addr().String(), customer, []string{demo.SupportAddress}, raw)
	if a.data[demo.SupportAddress] != 451 || !strings.HasPrefix(a.text[demo.SupportAddress], "<"+demo.SupportAddress+">") {
		t.Fatalf("redis down: %d %q, want 451", a.data[demo.SupportAddress], a.text[demo.SupportAddress])
	}
	mid := headerValue(raw, "Message-ID")
	if id, ok, err := wd.st.TicketByMessageID(wd.ctx, mid); ok || err != nil {
		t.Fatalf("message %s stored as %s (%v) although answered 451", mid, id, err)
	}
	if n := len(readFolder(t, wd.w.IMAP.Addr, demo.SupportAddress, "demo-password", "Processed")); n != 0 {
		t.Fatalf("Processed holds %d messages after a 451", n)
	}

	// The real pipeline, failing once right after the ticket is stored.
	var failOnce atomic.Bool
	failOnce.Store(true)
	wd.g.Pipeline.FaultHook = func(step string, _ *domain.Message) error {
		if step == "after-create" && failOnce.CompareAndSwap(true, false) {
			return errors.New("crash after storing the ticket")
		}
		return nil
	}
	s2 := wd.lmtpServer(wd.g.Pipeline.Handle, now)
	a = send(t, "tcp", s2.Addr().String(), customer, []string{demo.SupportAddress}, raw)
	if a.data[demo.SupportAddress] != 451 {
		t.Fatalf("failure after storing: %d, want 451", a.data[demo.SupportAddress])
	}
	a = send(t, "tcp", s2.Addr().String(), customer, []string{demo.SupportAddress}, raw)
	if a.data[demo.SupportAddress] != 250 {
		t.Fatalf("retry: %d, want 250", a.data[demo.SupportAddress])
	}
	acme, err := wd.st.TicketsByContract(wd.ctx, "acme")
	if err != nil || len(acme) != 1 {
		t.Fatalf("acme tickets %d (%v), want 1", len(acme), err)
	}
	mail, err := wd.w.SMTP.WaitFor(wd.ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(mailTo(wd.w.SMTP.Mail(), customer)); n != 1 || len(mail) != 2 {
		t.Errorf("acknowledgements %d, mails %d; want 1 and 2", n, len(mail))
	}
	if n := len(readFolder(t, wd.w.IMAP.Addr, demo.SupportAddress, "demo-password", "Processed")); n != 1 {
		t.Errorf("Processed holds %d copies, want 1 (the 451 filed nothing)", n)
	}
}

// headerValue returns the first value of a header field of raw.
func headerValue(raw []byte, name string) string {
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
		if strings.TrimSpace(line) == "" {
			break
		}
	}
	return ""
}

// BenchmarkEndToEnd measures one LMTP delivery of a new customer message
// through the real pipeline (parse, classify, store in Redis, queue the
// acknowledgement and staff copy) and its filing into the processed folder,
// from MAIL FROM to the 250.
func BenchmarkEndToEnd(b *testing.B) {
	wd := newWorld(b)
	s := wd.lmtpServer(wd.g.Pipeline.Handle, time.Date(2026, 11, 30, 7, 30, 0, 0, time.UTC))
	raw := sample(b, "request-english")
	const mid = "<20261130141000.4711@globex.example>"
	if !bytes.Contains(raw, []byte(mid)) {
		b.Fatal("sample without its Message-ID")
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		msg := bytes.Replace(raw, []byte(mid), []byte(fmt.Sprintf("<bench-%d-%d@globex.example>", time.Now().UnixNano(), i)), 1)
		a := send(b, "tcp", s.Addr().String(), "maria.lopez@globex.example", []string{demo.SupportAddress}, msg)
		if a.data[demo.SupportAddress] != 250 {
			b.Fatalf("delivery %d: %d", i, a.data[demo.SupportAddress])
		}
	}
}
