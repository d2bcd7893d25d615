package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/examples"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// The timer tests run against a real Redis: REDIS_ADDR (default
// 127.0.0.1:6379), each test with its own random key prefix, whose keys are
// deleted afterwards. Without Redis they are skipped, unless CI=true.

func twRedisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

var twRedisProbe = sync.OnceValue(func() error {
	c := redis.NewClient(&redis.Options{Addr: twRedisAddr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
})

// twRedis returns a client of the test Redis and a fresh key prefix whose
// keys are deleted when the test ends.
func twRedis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	if err := twRedisProbe(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis at %s: %v", twRedisAddr(), err)
		}
		tb.Skipf("redis at %s not reachable: %v", twRedisAddr(), err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	prefix := "tgtest:" + hex.EncodeToString(b[:]) + ":"
	rdb := redis.NewClient(&redis.Options{Addr: twRedisAddr()})
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("scan test keys: %v", err)
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
				tb.Errorf("delete test keys: %v", err)
			}
			keys = keys[n:]
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}

// twConfig is the annotated example configuration: contracts acme (Hebrew,
// israel-office) and globex (English, us-east), staff queue
// helpdesk@northwind-it.example, escalation noc-lead@northwind-it.example.
func twConfig(tb testing.TB) *rules.Config {
	tb.Helper()
	data, err := fs.ReadFile(examples.FS, "gateway.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := rules.Parse("examples/gateway.yaml", data, rules.LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

var twTemplates = sync.OnceValues(func() (*notify.Templates, error) { return notify.LoadTemplates("") })

func twTmpl(tb testing.TB) *notify.Templates {
	tb.Helper()
	t, err := twTemplates()
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// twClock is an injected clock.
type twClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *twClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *twClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// twTicket builds the ticket the pipeline would store for a message of
// contract ct received at received, and its timers.
func twTicket(tb testing.TB, ct *rules.Contract, cat domain.Category, prio domain.Priority, received time.Time, n int) store.NewTicket {
	tb.Helper()
	target, ok := ct.SLA.Target(cat, prio)
	if !ok {
		tb.Fatalf("contract %s has no %s/%s target", ct.ID, cat, prio)
	}
	dl := sla.Compute(ct.Calendar, received, target, ct.SLA.WarnAt)
	t := domain.Ticket{
		Contract: ct.ID, Category: cat, Priority: prio, Status: domain.StatusOpen,
		Subject:   fmt.Sprintf("Printer down #%d", n),
		Requester: domain.Address{Name: "Bob Customer", Addr: "bob@" + ct.ID + ".example"},
		MessageID: fmt.Sprintf("m%d@customer.example", n), Opened: dl.Received,
		EffectiveStart: dl.EffectiveStart, ResponseDue: dl.ResponseDue, ResolutionDue: dl.ResolutionDue,
		ResponseWarn: dl.ResponseWarn, ResolutionWarn: dl.ResolutionWarn,
	}
	var timers []store.Timer
	for _, tm := range []store.Timer{
		{Kind: store.ResponseWarn, Due: dl.ResponseWarn}, {Kind: store.ResponseBreach, Due: dl.ResponseDue},
		{Kind: store.ResolutionWarn, Due: dl.ResolutionWarn}, {Kind: store.ResolutionBreach, Due: dl.ResolutionDue},
	} {
		if !tm.Due.IsZero() {
			timers = append(timers, tm)
		}
	}
	return store.NewTicket{
		Ticket: t, Prefix: ct.Prefix, DedupKey: fmt.Sprintf("mid:m%d@customer.example", n),
		Event:  domain.Event{Kind: domain.EventOpened, At: dl.Received, MessageID: t.MessageID, Actor: t.Requester.Addr},
		Timers: timers,
	}
}

// twOutbox takes every outbox entry due at now out of the real queue, as
// the sender would: claimed, then acknowledged as sent.
func twOutbox(tb testing.TB, st *store.Store, now time.Time) []store.OutboxEntry {
	tb.Helper()
	ctx := context.Background()
	var all []store.OutboxEntry
	for {
		got, err := st.ClaimOutbox(ctx, now, time.Minute, 100)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range got {
			if err := st.AckOutbox(ctx, e.Key, now); err != nil {
				tb.Fatal(err)
			}
		}
		all = append(all, got...)
		if len(got) < 100 {
			return all
		}
	}
}

type twEnv struct {
	cfg      *rules.Config
	st       *store.Store
	clock    *twClock
	w        *service.TimerWorker
	outcomes []service.TimerOutcome
	kicks    atomic.Int32
}

func newTWEnv(t *testing.T) *twEnv {
	t.Helper()
	rdb, prefix := twRedis(t)
	e := &twEnv{cfg: twConfig(t), st: store.New(rdb, prefix), clock: &twClock{}}
	e.w = &service.TimerWorker{
		Cfg: e.cfg, Store: e.st, Templates: twTmpl(t), Now: e.clock.Now,
		Log:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Lease:     time.Minute,
		Kick:      func() { e.kicks.Add(1) },
		OnOutcome: func(o service.TimerOutcome) { e.outcomes = append(e.outcomes, o) },
	}
	return e
}

// fire sets the clock to at, runs one round and returns its outcomes.
func (e *twEnv) fire(t *testing.T, at time.Time) []service.TimerOutcome {
	t.Helper()
	e.clock.Set(at)
	e.outcomes = nil
	if _, err := e.w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e.outcomes
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func summary(outs []service.TimerOutcome) []string {
	var s []string
	for _, o := range outs {
		x := o.Timer.Ticket + " " + o.Timer.Kind + " " + o.Action
		if o.Reason != "" {
			x += " (" + o.Reason + ")"
		}
		s = append(s, x)
	}
	return s
}

// checkNotice parses a queued notice and checks what staff read.
func checkNotice(t *testing.T, e store.OutboxEntry, subject string, text ...string) *domain.Message {
	t.Helper()
	want := []string{"helpdesk@northwind-it.example", "noc-lead@northwind-it.example"}
	if !slices.Equal(e.To, want) {
		t.Errorf("%s: envelope to %v, want %v", e.Key, e.To, want)
	}
	if e.From != "support@northwind-it.example" {
		t.Errorf("%s: envelope from %q", e.Key, e.From)
	}
	m := ingest.Parse(bytes.NewReader(e.Raw), ingest.DefaultLimits())
	if m.Subject != subject {
		t.Errorf("%s: subject %q, want %q", e.Key, m.Subject, subject)
	}
	for _, s := range text {
		if !strings.Contains(m.Text, s) {
			t.Errorf("%s: text lacks %q:\n%s", e.Key, s, m.Text)
		}
	}
	if v, _ := m.Header("Auto-Submitted"); v != "auto-generated" {
		t.Errorf("%s: Auto-Submitted %q", e.Key, v)
	}
	if v, _ := m.Header(domain.LoopHeader); v != "support@northwind-it.example" {
		t.Errorf("%s: loop marker %q", e.Key, v)
	}
	if v, _ := m.Header("X-Ticket-ID"); v != e.Ticket {
		t.Errorf("%s: X-Ticket-ID %q, want %q", e.Key, v, e.Ticket)
	}
	if len(m.InReplyTo) > 0 || len(m.References) > 0 || strings.Contains(m.Subject, "[") {
		t.Errorf("%s: a notice must not thread into the ticket: in-reply-to %v references %v subject %q", e.Key, m.InReplyTo, m.References, m.Subject)
	}
	if m.HTML == "" {
		t.Errorf("%s: no HTML alternative", e.Key)
	}
	return m
}

// TestTimerWorkerFiresOnce walks one English ticket through its four timers
// with an injected clock.
func TestTimerWorkerFiresOnce(t *testing.T) {
	e := newTWEnv(t)
	ctx := context.Background()
	glx := e.cfg.ContractByID("globex") // us-east, 1h / 1d normal fault
	ny := glx.Calendar.Loc
	received := time.Date(2026, 11, 30, 10, 0, 0, 0, ny)
	nt := twTicket(t, glx, domain.Fault, domain.Normal, received, 1)
	tk, _, err := e.st.CreateTicket(ctx, nt)
	if err != nil {
		t.Fatal(err)
	}
	// Response due 11:00, warning at 10:48; resolution due Tue 10:00 (one
	// business day), warning after 80 % of its 8 business hours: Mon 16:24.
	at := func(s string) time.Time { return twAt(t, &sla.Calendar{Loc: ny}, s) }
	if !tk.ResponseWarn.Equal(at("2026-11-30 10:48")) || !tk.ResolutionWarn.Equal(at("2026-11-30 16:24")) {
		t.Fatalf("unexpected deadlines %+v", tk)
	}

	if outs := e.fire(t, at("2026-11-30 10:47").Add(59*time.Second)); len(outs) != 0 {
		t.Fatalf("fired early: %v", summary(outs))
	}
	if got := twOutbox(t, e.st, e.clock.Now()); len(got) != 0 {
		t.Fatalf("queued early: %d", len(got))
	}

	// The response warning, in New York time.
	outs := e.fire(t, at("2026-11-30 10:48"))
	if want := []string{"GLX-0001 response-warn warn"}; !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	if !outs[0].Queued || outs[0].Key != fmt.Sprintf("sla:GLX-0001:response-warn:%d", tk.ResponseWarn.Unix()) {
		t.Errorf("outcome %+v", outs[0])
	}
	if e.kicks.Load() != 1 {
		t.Errorf("outbox kicked %d times, want 1", e.kicks.Load())
	}
	box := twOutbox(t, e.st, e.clock.Now())
	if len(box) != 1 {
		t.Fatalf("outbox has %d entries, want 1", len(box))
	}
	checkNotice(t, box[0], "SLA warning GLX-0001: response due 30 Nov 2026, 11:00 - Printer down #1",
		"As of 10:48, no response to the customer has been recorded. The response is due by Monday 30 November 2026, 11:00; 80% of the target's business time has elapsed.",
		"Resolution by:    Tuesday 1 December 2026, 10:00")

	// Nothing more until the deadline; at 11:05 the breach, with the
	// breach recorded once.
	if outs := e.fire(t, at("2026-11-30 10:59")); len(outs) != 0 {
		t.Fatalf("fired again: %v", summary(outs))
	}
	outs = e.fire(t, at("2026-11-30 11:05"))
	if want := []string{"GLX-0001 response-breach breach"}; !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	box = twOutbox(t, e.st, e.clock.Now())
	if len(box) != 1 {
		t.Fatalf("outbox has %d new entries, want 1", len(box))
	}
	checkNotice(t, box[0], "SLA BREACH GLX-0001: response overdue since 30 Nov 2026, 11:00 - Printer down #1",
		"SLA breach: the response deadline of ticket GLX-0001 passed on Monday 30 November 2026, 11:00.")
	checkBreaches(t, e.st, "GLX-0001", map[string]string{"deadline": "response", "due": "2026-11-30T11:00:00-05:00", "overdue_business": "5m0s"})

	// The resolution warning at 16:24; the breach on Tuesday at 10:30 is 30
	// business minutes late (the evening and the night are closed).
	outs = e.fire(t, at("2026-11-30 16:30"))
	if want := []string{"GLX-0001 resolution-warn warn"}; !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	if box = twOutbox(t, e.st, e.clock.Now()); len(box) != 1 {
		t.Fatalf("outbox has %d new entries, want 1", len(box))
	}
	checkNotice(t, box[0], "SLA warning GLX-0001: resolution due 1 Dec 2026, 10:00 - Printer down #1",
		"As of 16:30, the ticket is not resolved. Resolution is due by Tuesday 1 December 2026, 10:00")
	outs = e.fire(t, at("2026-12-01 10:30"))
	if want := []string{"GLX-0001 resolution-breach breach"}; !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	checkBreaches(t, e.st, "GLX-0001",
		map[string]string{"deadline": "response", "due": "2026-11-30T11:00:00-05:00", "overdue_business": "5m0s"},
		map[string]string{"deadline": "resolution", "due": "2026-12-01T10:00:00-05:00", "overdue_business": "30m0s"})

	if outs := e.fire(t, at("2026-12-31 10:00")); len(outs) != 0 {
		t.Fatalf("fired again: %v", summary(outs))
	}
	if p, err := e.st.PendingTimers(ctx, "globex"); err != nil || len(p) != 0 {
		t.Fatalf("pending timers %v, %v", p, err)
	}
}

// checkBreaches checks a ticket's breached events.
func checkBreaches(t *testing.T, st *store.Store, id string, want ...map[string]string) {
	t.Helper()
	evs, err := st.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var got []domain.Event
	for _, ev := range evs {
		if ev.Kind == domain.EventBreached {
			got = append(got, ev)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s has %d breached events, want %d: %+v", id, len(got), len(want), got)
	}
	for i, w := range want {
		for k, v := range w {
			if got[i].Data[k] != v {
				t.Errorf("%s breach %d: %s = %q, want %q", id, i, k, got[i].Data[k], v)
			}
		}
		if due, err := time.Parse(time.RFC3339, w["due"]); err == nil && !got[i].At.Equal(due) {
			t.Errorf("%s breach %d at %v, want the deadline %v", id, i, got[i].At, due)
		}
	}
}

// TestTimerWorkerHebrewContract: a Hebrew contract's notices are in Hebrew,
// with dates in Asia/Jerusalem whatever the server's zone; after an outage
// the stale warning gives way to the breach.
func TestTimerWorkerHebrewContract(t *testing.T) {
	e := newTWEnv(t)
	acme := e.cfg.ContractByID("acme")
	// SPEC §7: a high fault received Mon 30 Nov 2026 09:30 Israel time
	// (07:30 UTC): respond by 10:30, warning at 10:18.
	received := time.Date(2026, 11, 30, 7, 30, 0, 0, time.UTC)
	if _, _, err := e.st.CreateTicket(context.Background(), twTicket(t, acme, domain.Fault, domain.High, received, 1)); err != nil {
		t.Fatal(err)
	}
	outs := e.fire(t, time.Date(2026, 11, 30, 8, 20, 0, 0, time.UTC)) // 10:20 in Israel
	if want := []string{"ACME-0001 response-warn warn"}; !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	box := twOutbox(t, e.st, e.clock.Now())
	if len(box) != 1 {
		t.Fatalf("outbox has %d entries", len(box))
	}
	m := checkNotice(t, box[0], "התראת SLA \u200eACME-0001\u200e: תגובה עד 30/11/2026, 10:30 - \u200ePrinter down #1\u200e",
		"נכון ל־10:20 לא נרשמה תגובה ללקוח. יש להגיב עד יום שני, 30 בנובמבר 2026, 10:30; חלפו 80% מזמן היעד.")
	if !strings.Contains(m.HTML, `dir="rtl"`) {
		t.Errorf("Hebrew HTML is not right-to-left")
	}

	// The gateway was down from 10:25 until Tuesday: the resolution warning
	// (16:54) is stale when the resolution deadline (Tue 09:30) has passed.
	outs = e.fire(t, time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)) // Tue 10:00 in Israel
	want := []string{"ACME-0001 response-breach breach", "ACME-0001 resolution-warn void (superseded)", "ACME-0001 resolution-breach breach"}
	if !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	if box = twOutbox(t, e.st, e.clock.Now()); len(box) != 2 {
		t.Fatalf("outbox has %d new entries, want 2", len(box))
	}
	// Response due Mon 10:30: late by the rest of Monday (10:30–12:00,
	// 13:00–17:00) and Tuesday 08:00–10:00.
	checkBreaches(t, e.st, "ACME-0001",
		map[string]string{"deadline": "response", "due": "2026-11-30T10:30:00+02:00", "overdue_business": "7h30m0s"},
		map[string]string{"deadline": "resolution", "due": "2026-12-01T09:30:00+02:00", "overdue_business": "30m0s"})
}

// TestTimerWorkerVoidTimers: timers of tickets that no longer need them
// send nothing and are discarded.
func TestTimerWorkerVoidTimers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change store.Change
		want   []string // outcomes of the four timers once all are due
	}{
		{
			name:   "resolved",
			change: store.Change{Mutate: func(t *domain.Ticket) error { t.Status = domain.StatusResolved; return nil }},
			want: []string{"GLX-0001 response-warn void (resolved)", "GLX-0001 response-breach void (resolved)",
				"GLX-0001 resolution-warn void (resolved)", "GLX-0001 resolution-breach void (resolved)"},
		},
		{
			name:   "closed",
			change: store.Change{Mutate: func(t *domain.Ticket) error { t.Status = domain.StatusClosed; return nil }},
			want: []string{"GLX-0001 response-warn void (closed)", "GLX-0001 response-breach void (closed)",
				"GLX-0001 resolution-warn void (closed)", "GLX-0001 resolution-breach void (closed)"},
		},
		{
			name:   "pending on the customer",
			change: store.Change{Mutate: func(t *domain.Ticket) error { t.Status = domain.StatusPending; return nil }},
			want: []string{"GLX-0001 response-warn void (paused)", "GLX-0001 response-breach void (paused)",
				"GLX-0001 resolution-warn void (paused)", "GLX-0001 resolution-breach void (paused)"},
		},
		{
			name:   "response recorded as an event",
			change: store.Change{Event: &domain.Event{Kind: domain.EventResponse, At: time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC)}},
			want: []string{"GLX-0001 response-warn void (responded)", "GLX-0001 response-breach void (responded)",
				"GLX-0001 resolution-warn void (superseded)", "GLX-0001 resolution-breach breach"},
		},
		{
			name: "response recorded on the ticket",
			change: store.Change{Mutate: func(t *domain.Ticket) error {
				t.FirstResponse = time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC)
				return nil
			}},
			want: []string{"GLX-0001 response-warn void (responded)", "GLX-0001 response-breach void (responded)",
				"GLX-0001 resolution-warn void (superseded)", "GLX-0001 resolution-breach breach"},
		},
		{
			// The deadlines moved (a priority change) but the old timers
			// were left behind: they are stale.
			name: "deadlines moved",
			change: store.Change{Mutate: func(t *domain.Ticket) error {
				t.ResponseDue = t.ResponseDue.Add(time.Hour)
				t.ResolutionWarn = time.Time{}
				return nil
			}},
			want: []string{"GLX-0001 response-warn void (superseded)", "GLX-0001 response-breach void (moved)",
				"GLX-0001 resolution-warn void (moved)", "GLX-0001 resolution-breach breach"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTWEnv(t)
			glx := e.cfg.ContractByID("globex")
			received := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC) // 10:00 in New York
			if _, _, err := e.st.CreateTicket(ctx, twTicket(t, glx, domain.Fault, domain.Normal, received, 1)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.st.UpdateTicket(ctx, "GLX-0001", tc.change); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
			outs := e.fire(t, now)
			if !slices.Equal(summary(outs), tc.want) {
				t.Errorf("outcomes\n%v\nwant\n%v", strings.Join(summary(outs), "\n"), strings.Join(tc.want, "\n"))
			}
			notices := 0
			for _, w := range tc.want {
				if !strings.Contains(w, "void") {
					notices++
				}
			}
			if box := twOutbox(t, e.st, now); len(box) != notices {
				t.Errorf("outbox has %d entries, want %d", len(box), notices)
			}
			if int(e.kicks.Load()) != min(notices, 1) {
				t.Errorf("kicked %d times", e.kicks.Load())
			}
			if p, err := e.st.PendingTimers(ctx, "globex"); err != nil || len(p) != 0 {
				t.Errorf("timers left: %v, %v", p, err)
			}
		})
	}
}

// flakyAckStore fails every AckTimer once: the worker "dies" after its
// notice and breach are stored but before the timer is acknowledged.
type flakyAckStore struct {
	*store.Store
	mu     sync.Mutex
	failed map[string]bool
}

func (s *flakyAckStore) AckTimer(ctx context.Context, e store.TimerEntry) error {
	s.mu.Lock()
	k := e.Ticket + "|" + e.Kind
	first := !s.failed[k]
	s.failed[k] = true
	s.mu.Unlock()
	if first {
		return errors.New("connection reset (injected)")
	}
	return s.Store.AckTimer(ctx, e)
}

// TestTimerWorkerRedelivery: a timer whose acknowledgement was lost comes
// back after its lease and sends nothing twice.
func TestTimerWorkerRedelivery(t *testing.T) {
	e := newTWEnv(t)
	ctx := context.Background()
	e.w.Store = &flakyAckStore{Store: e.st, failed: map[string]bool{}}
	glx := e.cfg.ContractByID("globex")
	received := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	if _, _, err := e.st.CreateTicket(ctx, twTicket(t, glx, domain.Fault, domain.Normal, received, 1)); err != nil {
		t.Fatal(err)
	}
	ny := glx.Calendar.Loc
	at := func(hm string) time.Time { return twAt(t, &sla.Calendar{Loc: ny}, "2026-11-30 "+hm) }
	// 10:48:30: the warning is queued, its acknowledgement lost.
	if outs := e.fire(t, at("10:48").Add(30*time.Second)); len(outs) != 0 {
		t.Fatalf("outcomes reported for unacknowledged timers: %v", summary(outs))
	}
	// Within the lease nothing is handed out again.
	if outs := e.fire(t, at("10:49")); len(outs) != 0 {
		t.Fatalf("claimed again within the lease: %v", summary(outs))
	}
	// 11:05: the warning comes back (stale now, discarded); the breach is
	// queued and recorded, its acknowledgement lost.
	outs := e.fire(t, at("11:05"))
	if want := []string{"GLX-0001 response-warn void (superseded)"}; !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	// 11:07: the breach comes back; its notice and event exist already.
	outs = e.fire(t, at("11:07"))
	if want := []string{"GLX-0001 response-breach breach"}; !slices.Equal(summary(outs), want) {
		t.Fatalf("outcomes %v, want %v", summary(outs), want)
	}
	if outs[0].Queued {
		t.Errorf("breach notice queued twice")
	}
	box := twOutbox(t, e.st, at("11:07"))
	var keys []string
	for _, b := range box {
		keys = append(keys, b.Key)
	}
	slices.Sort(keys)
	r := twAt(t, &sla.Calendar{Loc: ny}, "2026-11-30 11:00").Unix()
	if want := []string{fmt.Sprintf("sla:GLX-0001:response-breach:%d", r), fmt.Sprintf("sla:GLX-0001:response-warn:%d", r-12*60)}; !slices.Equal(keys, want) {
		t.Errorf("outbox keys %v, want %v", keys, want)
	}
	checkBreaches(t, e.st, "GLX-0001", map[string]string{"deadline": "response", "overdue_business": "5m0s"})
	if p, err := e.st.PendingTimers(ctx, "globex"); err != nil || len(p) != 2 {
		t.Errorf("want the two resolution timers left, got %v, %v", p, err)
	}
}

// countingStore records, for the multi-instance test, which outbox keys a
// worker added, and cancels its worker once it holds claimed timers when
// cancelAfterClaim is set.
type countingStore struct {
	service.TimerStore
	added            func(key string)
	cancelAfterClaim context.CancelFunc
	claimedThenDied  atomic.Int64
}

func (s *countingStore) ClaimTimers(ctx context.Context, contract string, now time.Time, lease time.Duration, limit int) ([]store.TimerEntry, error) {
	got, err := s.TimerStore.ClaimTimers(ctx, contract, now, lease, limit)
	if len(got) > 0 && s.cancelAfterClaim != nil && s.claimedThenDied.Load() == 0 {
		s.claimedThenDied.Store(int64(len(got)))
		s.cancelAfterClaim() // the instance dies holding a batch
	}
	return got, err
}

func (s *countingStore) Enqueue(ctx context.Context, e store.OutboxEntry, now time.Time) (bool, error) {
	added, err := s.TimerStore.Enqueue(ctx, e, now)
	if added {
		s.added(e.Key)
	}
	return added, err
}

// TestTimerWorkersExactlyOnce runs three workers, each with its own
// connection, against one Redis: 10,000 due timers of 5,000 tickets under 50
// contracts (2,000 of 1,000 under 20 with -race). One worker dies right after claiming a batch; its claims come
// back when their lease ends. Every timer must queue exactly one notice and
// every response breach be recorded exactly once.
func TestTimerWorkersExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-instance test skipped in -short mode")
	}
	contracts, perContract := 50, 100
	if twRaceEnabled() {
		// The race detector slows every render and round trip about
		// tenfold: a fifth of the load keeps the package quick.
		contracts, perContract = 20, 50
	}
	rdb, prefix := twRedis(t)
	cfg := twConfig(t)
	cal := cfg.Calendars["us-east"]
	for i := range contracts {
		cfg.Contracts = append(cfg.Contracts, &rules.Contract{
			ID: fmt.Sprintf("m%02d", i), Name: fmt.Sprintf("Customer %02d", i), Prefix: fmt.Sprintf("M%02d", i),
			Calendar: cal, CalendarName: "us-east", Language: notify.LangEnglish, SLA: rules.SLA{WarnAt: 0.8},
		})
	}
	// Every ticket: response deadline and resolution warning passed, the
	// resolution deadline a month ahead (its timer must stay untouched).
	base := time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)
	setup := store.New(rdb, prefix)
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, contracts)
	for i := range contracts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("m%02d", i)
			for n := range perContract {
				off := time.Duration(i*perContract+n) * time.Second
				tk := domain.Ticket{
					Contract: id, Category: domain.Fault, Priority: domain.Normal, Status: domain.StatusOpen,
					Subject: fmt.Sprintf("Ticket %d", n), Requester: domain.Address{Addr: "user@" + id + ".example"},
					Opened:      base.Add(-48 * time.Hour),
					ResponseDue: base.Add(-3*time.Hour - off), ResponseWarn: base.Add(-4*time.Hour - off),
					ResolutionWarn: base.Add(-2*time.Hour - off), ResolutionDue: base.Add(30 * 24 * time.Hour),
				}
				_, _, err := setup.CreateTicket(ctx, store.NewTicket{
					Ticket: tk, Prefix: fmt.Sprintf("M%02d", i), DedupKey: fmt.Sprintf("mid:%s-%d", id, n),
					Event: domain.Event{Kind: domain.EventOpened, At: tk.Opened},
					Timers: []store.Timer{
						{Kind: store.ResponseBreach, Due: tk.ResponseDue},
						{Kind: store.ResolutionWarn, Due: tk.ResolutionWarn},
						{Kind: store.ResolutionBreach, Due: tk.ResolutionDue},
					},
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	// Plain one-line notices: this test is about claiming, and the built-in
	// HTML templates cost milliseconds per render under -race.
	dir := t.TempDir()
	for name, body := range map[string]string{
		"subject.tmpl": "SLA {{.Deadline}} {{.TicketID}}",
		"txt.tmpl":     "{{.Deadline}} of {{.TicketID}} due {{dateTime .Due}}",
		"html.tmpl":    "",
	} {
		for _, kind := range []string{notify.KindWarn, notify.KindBreach} {
			if err := os.WriteFile(filepath.Join(dir, kind+".en."+name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmpl, err := notify.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	added := map[string]int{}
	record := func(k string) { mu.Lock(); added[k]++; mu.Unlock() }
	start := time.Now()
	now := func() time.Time { return base.Add(time.Since(start)) }

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	dieCtx, die := context.WithCancel(runCtx)
	defer die()
	var dying *countingStore
	var running sync.WaitGroup
	for i := range 3 {
		c := redis.NewClient(&redis.Options{Addr: twRedisAddr()})
		defer c.Close()
		cs := &countingStore{TimerStore: store.New(c, prefix), added: record}
		wctx := runCtx
		if i == 0 {
			cs.cancelAfterClaim, wctx, dying = die, dieCtx, cs
		}
		w := &service.TimerWorker{
			Cfg: cfg, Store: cs, Templates: tmpl, Now: now,
			Log:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Lease: 2 * time.Second, Batch: 16, Idle: 20 * time.Millisecond,
		}
		running.Add(1)
		go func() {
			defer running.Done()
			if err := w.Run(wctx); err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		}()
	}

	// Wait until every due timer is acknowledged and only the resolution
	// deadlines remain.
	deadline := time.Now().Add(90 * time.Second)
	for {
		left, leased, err := countTimers(ctx, setup, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if left == contracts*perContract && leased == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timers left after 90 s: %d (%d claimed)", left, leased)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	running.Wait()

	if dying.claimedThenDied.Load() == 0 {
		t.Fatal("the dying worker never claimed a batch")
	}
	want := 0
	for i := range contracts {
		for n := range perContract {
			id := fmt.Sprintf("M%02d-%04d", i, n+1)
			tk, err := setup.Ticket(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []struct {
				kind string
				due  time.Time
			}{{store.ResponseBreach, tk.ResponseDue}, {store.ResolutionWarn, tk.ResolutionWarn}} {
				want++
				if key := service.TimerKey(id, k.kind, k.due); added[key] != 1 {
					t.Errorf("%s: queued %d times, want once", key, added[key])
				}
			}
		}
	}
	if len(added) != want {
		t.Errorf("%d notices queued, want %d", len(added), want)
	}
	if n, err := rdb.HLen(ctx, prefix+"{outbox}:msg").Result(); err != nil || n != int64(want) {
		t.Errorf("outbox holds %d entries (%v), want %d", n, err, want)
	}
	for i := range contracts {
		for n := range perContract {
			id := fmt.Sprintf("M%02d-%04d", i, n+1)
			evs, err := setup.Events(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			breaches := 0
			for _, ev := range evs {
				if ev.Kind == domain.EventBreached {
					breaches++
				}
			}
			if breaches != 1 {
				t.Errorf("%s has %d breached events, want 1", id, breaches)
			}
		}
	}
	t.Logf("%d timers fired by 3 workers (one died holding %d) in %v", want, dying.claimedThenDied.Load(), elapsed.Round(time.Millisecond))
}

// twRaceEnabled reports whether the test binary was built with -race.
func twRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// countTimers counts the pending timers of the configured contracts and how
// many of them are claimed.
func countTimers(ctx context.Context, st *store.Store, cfg *rules.Config) (left, leased int, err error) {
	for _, c := range cfg.Contracts {
		p, err := st.PendingTimers(ctx, c.ID)
		if err != nil {
			return 0, 0, err
		}
		left += len(p)
		for _, e := range p {
			if !e.LeasedUntil.IsZero() {
				leased++
			}
		}
	}
	return left, leased, nil
}

// twFillTimers adds n due timers to contract's timer set with pipelined
// ZADDs straight on the store's key (P{c:C}:timers, see the store's key
// layout) and returns the Redis memory they take, in bytes.
func twFillTimers(b *testing.B, rdb *redis.Client, prefix, contract string, n int, due time.Time) int64 {
	b.Helper()
	ctx := context.Background()
	used := func() int64 {
		v, err := rdb.MemoryUsage(ctx, prefix+"{c:"+contract+"}:timers", 0).Result()
		if errors.Is(err, redis.Nil) {
			return 0
		}
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	before := used()
	const chunk = 10_000
	for i := 0; i < n; i += chunk {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			zs := make([]redis.Z, 0, chunk)
			for j := i; j < min(i+chunk, n); j++ {
				zs = append(zs, redis.Z{Score: float64(due.Add(time.Duration(j) * time.Millisecond).UnixMilli()),
					Member: fmt.Sprintf("B-%07d|%s", j/4+1, store.TimerKinds[j%4])})
			}
			p.ZAdd(ctx, prefix+"{c:"+contract+"}:timers", zs...)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return used() - before
}

// BenchmarkClaimTimers measures claiming batches of 64 due timers, alone
// and with each timer acknowledged, with 1,000,000 timers pending in the
// contract. It reports the Redis memory a pending timer takes (MEMORY USAGE
// of the sorted set, and the used_memory growth of INFO memory, divided by
// the timers added).
func BenchmarkClaimTimers(b *testing.B) {
	rdb, prefix := twRedis(b)
	st := store.New(rdb, prefix)
	ctx := context.Background()
	due := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	const pending = 1_000_000
	usedBefore := twUsedMemory(b, rdb)
	keyMem := twFillTimers(b, rdb, prefix, "bench", pending, due)
	usedGrowth := twUsedMemory(b, rdb) - usedBefore
	now := due.Add(2 * time.Hour)
	const batch = 64
	for _, ack := range []bool{false, true} {
		name := "claim64"
		if ack {
			name = "claim64+ack"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				got, err := st.ClaimTimers(ctx, "bench", now, time.Hour, batch)
				if err != nil || len(got) != batch {
					b.Fatalf("claimed %d: %v", len(got), err)
				}
				for _, e := range got {
					if !ack {
						break
					}
					if err := st.AckTimer(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/timer")
			b.ReportMetric(float64(keyMem)/pending, "B/pending-timer")
			b.ReportMetric(float64(usedGrowth)/pending, "used_memory-B/pending-timer")
		})
	}
}

func twUsedMemory(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.InfoMap(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	if _, err := fmt.Sscan(info["Memory"]["used_memory"], &n); err != nil {
		b.Fatalf("parse used_memory: %v", err)
	}
	return n
}

// BenchmarkScheduleTimers measures storing a ticket with its four timers
// (store.CreateTicket) into a contract with 1,000,000 timers pending.
func BenchmarkScheduleTimers(b *testing.B) {
	rdb, prefix := twRedis(b)
	st := store.New(rdb, prefix)
	ctx := context.Background()
	due := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	twFillTimers(b, rdb, prefix, "bench", 1_000_000, due)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		t := domain.Ticket{Contract: "bench", Status: domain.StatusOpen, Opened: due}
		_, _, err := st.CreateTicket(ctx, store.NewTicket{
			Ticket: t, Prefix: "BENCH", DedupKey: fmt.Sprintf("mid:%d", i), Event: domain.Event{Kind: domain.EventOpened, At: due},
			Timers: []store.Timer{
				{Kind: store.ResponseWarn, Due: due.Add(time.Duration(i) * time.Second)},
				{Kind: store.ResponseBreach, Due: due.Add(time.Duration(i)*time.Second + time.Hour)},
				{Kind: store.ResolutionWarn, Due: due.Add(time.Duration(i)*time.Second + 6*time.Hour)},
				{Kind: store.ResolutionBreach, Due: due.Add(time.Duration(i)*time.Second + 8*time.Hour)},
			},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTimerFire measures the whole work of one fired breach timer with
// the built-in templates: read the ticket and its events, render the notice
// (text and HTML), compose it, queue it, record the breach, acknowledge.
func BenchmarkTimerFire(b *testing.B) {
	rdb, prefix := twRedis(b)
	st := store.New(rdb, prefix)
	cfg := twConfig(b)
	glx := cfg.ContractByID("globex")
	ctx := context.Background()
	received := time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)
	for n := range b.N {
		nt := twTicket(b, glx, domain.Fault, domain.Normal, received.Add(time.Duration(n)*time.Millisecond), n)
		nt.Timers = []store.Timer{{Kind: store.ResponseBreach, Due: nt.Ticket.ResponseDue}}
		if _, _, err := st.CreateTicket(ctx, nt); err != nil {
			b.Fatal(err)
		}
	}
	w := &service.TimerWorker{Cfg: cfg, Store: st, Templates: twTmpl(b), Now: func() time.Time { return received.Add(24 * time.Hour) }, Batch: 256}
	fired := 0
	w.OnOutcome = func(o service.TimerOutcome) {
		if o.Action == service.TimerBreached {
			fired++
		}
	}
	b.ResetTimer()
	for fired < b.N {
		if n, err := w.RunOnce(ctx); err != nil || n == 0 {
			b.Fatalf("claimed %d: %v", n, err)
		}
	}
}
