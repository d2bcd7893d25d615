package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/report"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// The quarterly review tests run against a real Redis (REDIS_ADDR, default
// 127.0.0.1:6379), each with its own key prefix, removed afterwards; without
// Redis they are skipped, unless CI=true.

func init() {
	// -update rewrites the golden files (registered here unless another
	// test file of the package already did).
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata")
	}
}

func qbrUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func qbrRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", addr, err)
		}
		t.Skipf("redis at %s not reachable: %v", addr, err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "tgtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Unlink(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up %s*: %v", prefix, err)
		}
		rdb.Close()
	})
	return rdb, prefix
}

// qbrConfig: acme in Jerusalem, closed on Thursday 1 and Friday 2 October
// 2026 (so the first business day of 2026-Q4 is Sunday 4 October); globex
// in New York, open on Thursday 1 October; initech with nobody to mail.
const qbrConfig = `
service: {name: Northwind IT Support, address: support@northwind-it.example}
mailbox: {host: imap.northwind-it.example, password: pw}
smtp: {host: smtp.northwind-it.example}
staff: {addresses: ["*@northwind-it.example"], queue: helpdesk@northwind-it.example}
calendars:
  israel-office:
    timezone: Asia/Jerusalem
    week: {sun: "08:00-17:00", mon: "08:00-17:00", tue: "08:00-17:00", wed: "08:00-17:00", thu: "08:00-17:00", fri: "08:00-12:00"}
    holidays: [2026-10-01, 2026-10-02]
  us-east:
    timezone: America/New_York
    week: {mon: "09:00-17:00", tue: "09:00-17:00", wed: "09:00-17:00", thu: "09:00-17:00", fri: "09:00-17:00"}
contracts:
  - id: acme
    name: ACME Ltd
    match: {domains: [acme.co.il]}
    calendar: israel-office
    language: he
    representative: dana@northwind-it.example
    customer_contacts: [it-manager@acme.co.il, ceo@acme.co.il]
    sla: {fault: {normal: {response: 2h, resolution: 2d}}}
  - id: globex
    name: Globex Corporation
    match: {domains: [globex.example]}
    calendar: us-east
    language: en
    representative: sam@northwind-it.example
    customer_contacts: [cio@globex.example]
    sla: {fault: {normal: {response: 1h, resolution: 1d}}}
  - id: initech
    match: {domains: [initech.example]}
    calendar: us-east
rules:
  - name: default
    set: {category: fault}
reports:
  qbr: {schedule: quarterly, hour: "08:00"}
`

func qbrCfg(t testing.TB, edit func(*rules.Config)) *rules.Config {
	t.Helper()
	cfg, err := rules.Parse("qbr.yaml", []byte(qbrConfig), rules.LoadOptions{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	return cfg
}

// qbrSeed stores a few resolved faults of every contract in 2026-Q3.
func qbrSeed(t *testing.T, st *store.Store, cfg *rules.Config) {
	t.Helper()
	ctx := context.Background()
	for _, c := range cfg.Contracts {
		for i := range 4 {
			opened := time.Date(2026, time.Month(7+i%3), 6+i, 10, 0, 0, 0, c.Calendar.Loc)
			tk, _, err := st.CreateTicket(ctx, store.NewTicket{
				Ticket: domain.Ticket{Contract: c.ID, Category: domain.Fault, Priority: domain.Normal, Status: domain.StatusOpen,
					Subject: "Printer", Requester: domain.Address{Addr: "bob@" + c.Domains[0]}, Opened: opened, EffectiveStart: opened},
				Prefix: c.Prefix, DedupKey: fmt.Sprintf("mid:%s-%d", c.ID, i),
				Event: domain.Event{Kind: domain.EventOpened, At: opened, Actor: "bob@" + c.Domains[0],
					Data: map[string]string{"category": "fault", "priority": "normal", "rules": "default"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.AppendEvent(ctx, tk.ID, domain.Event{Kind: domain.EventResolved, At: opened.Add(time.Hour)}, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type qbrClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *qbrClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *qbrClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var (
	jerusalem = mustLoc("Asia/Jerusalem")
	newYork   = mustLoc("America/New_York")
)

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// qbrOutbox reads every entry in the outbox (claiming it briefly).
func qbrOutbox(t *testing.T, st *store.Store) map[string]store.OutboxEntry {
	t.Helper()
	es, err := st.ClaimOutbox(context.Background(), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Millisecond, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.OutboxEntry{}
	for _, e := range es {
		if _, dup := out[e.Key]; dup {
			t.Errorf("outbox key %s twice", e.Key)
		}
		out[e.Key] = e
	}
	return out
}

// qbrMail is a parsed review mail.
type qbrMail struct {
	to, cc, replyTo []string
	subject, text   string
	files           map[string][]byte
}

func qbrParse(t *testing.T, raw []byte) qbrMail {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse review mail: %v", err)
	}
	m := qbrMail{files: map[string][]byte{}}
	addrs := func(k string) []string {
		l, _ := mr.Header.AddressList(k)
		var out []string
		for _, a := range l {
			out = append(out, a.Address)
		}
		return out
	}
	m.to, m.cc, m.replyTo = addrs("To"), addrs("Cc"), addrs("Reply-To")
	m.subject, _ = mr.Header.Subject()
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch h := p.Header.(type) {
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			m.files[name] = body
		case *mail.InlineHeader:
			if mt, _, _ := h.ContentType(); mt == "text/plain" && m.text == "" {
				m.text = string(body)
			}
		}
	}
	return m
}

func TestQBRDue(t *testing.T) {
	cfg := qbrCfg(t, nil)
	acme, globex := cfg.ContractByID("acme").Calendar, cfg.ContractByID("globex").Calendar
	q3 := report.Quarter{Year: 2026, Q: 3}
	tests := []struct {
		name string
		cal  *sla.Calendar
		q    report.Quarter
		at   int
		want time.Time
	}{
		{"holidays on Thursday and Friday, then the weekend", acme, q3, 8 * 60, time.Date(2026, 10, 4, 8, 0, 0, 0, jerusalem)},
		{"first opening", acme, q3, -1, time.Date(2026, 10, 4, 8, 0, 0, 0, jerusalem)},
		{"a business 1st", globex, q3, 8 * 60, time.Date(2026, 10, 1, 8, 0, 0, 0, newYork)},
		{"first opening in New York", globex, q3, -1, time.Date(2026, 10, 1, 9, 0, 0, 0, newYork)},
		// 2027-01-01 is a Friday, 2027-01-02 and 03 the weekend.
		{"Q4 in New York: Friday 1 January is a business day", globex, report.Quarter{Year: 2026, Q: 4}, 7*60 + 30, time.Date(2027, 1, 1, 7, 30, 0, 0, newYork)},
		// 2026-04-01 is a Wednesday.
		{"Q1", acme, report.Quarter{Year: 2026, Q: 1}, 0, time.Date(2026, 4, 1, 0, 0, 0, 0, jerusalem)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := service.QBRDue(tt.cal, tt.q, tt.at)
			if !ok || !got.Equal(tt.want) {
				t.Errorf("QBRDue = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
	closed := &sla.Calendar{Name: "closed-q4", Loc: time.UTC, Holidays: map[sla.Date]sla.Hours{}}
	closed.Week[time.Monday] = sla.Hours{{Open: 9 * 60, Close: 17 * 60}}
	for d := (sla.Date{Year: 2026, Month: 10, Day: 1}); d.Before(sla.Date{Year: 2027, Month: 1, Day: 1}); d = d.AddDays(1) {
		closed.Holidays[d] = nil
	}
	if got, ok := service.QBRDue(closed, q3, 8*60); ok {
		t.Errorf("a quarter without business days: due %v", got)
	}
}

// TestQBRScheduler walks a clock over the start of 2026-Q4: each contract's
// review of 2026-Q3 is made once, on the first business day of the quarter
// in its own calendar, from 08:00 there; acme's not on the holidays or the
// weekend before it.
func TestQBRScheduler(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	cfg := qbrCfg(t, nil)
	qbrSeed(t, st, cfg)
	clock := &qbrClock{}
	var outcomes []service.QBROutcome
	kicks := 0
	s := &service.QBRScheduler{Cfg: cfg, Store: st, Now: clock.Now, Kick: func() { kicks++ },
		OnOutcome: func(o service.QBROutcome) { outcomes = append(outcomes, o) }}
	ctx := context.Background()
	steps := []struct {
		at   time.Time
		made []string // contracts whose review this round makes
	}{
		{time.Date(2026, 9, 30, 23, 0, 0, 0, time.UTC), nil},                         // 1 Oct 02:00 in Jerusalem
		{time.Date(2026, 10, 1, 8, 0, 0, 0, jerusalem), nil},                         // acme's holiday; 01:00 in New York
		{time.Date(2026, 10, 1, 7, 59, 0, 0, newYork), nil},                          // one minute early
		{time.Date(2026, 10, 1, 8, 0, 0, 0, newYork), []string{"globex", "initech"}}, // due in New York
		{time.Date(2026, 10, 1, 8, 5, 0, 0, newYork), nil},                           // the next round
		{time.Date(2026, 10, 3, 9, 0, 0, 0, jerusalem), nil},                         // Saturday
		{time.Date(2026, 10, 4, 7, 59, 59, 0, jerusalem), nil},                       // Sunday, just before 08:00
		{time.Date(2026, 10, 4, 8, 0, 0, 0, jerusalem), []string{"acme"}},            // due in Jerusalem
		{time.Date(2026, 10, 9, 10, 0, 0, 0, jerusalem), nil},                        // later that week
		{time.Date(2026, 12, 31, 23, 0, 0, 0, jerusalem), nil},                       // Q4's review: not yet anywhere
		{time.Date(2027, 1, 1, 8, 0, 0, 0, jerusalem), []string{"acme"}},             // Friday 1 January, a short business day
		{time.Date(2027, 1, 1, 7, 59, 0, 0, newYork), nil},                           // not yet in New York
		{time.Date(2027, 1, 1, 8, 0, 0, 0, newYork), []string{"globex", "initech"}},  // Friday 1 January in New York
	}
	for _, step := range steps {
		clock.Set(step.at)
		outcomes = nil
		made, err := s.RunOnce(ctx)
		if err != nil {
			t.Fatalf("%v: %v", step.at, err)
		}
		var got []string
		for _, o := range outcomes {
			got = append(got, o.Contract)
		}
		slices.Sort(got)
		if fmt.Sprint(got) != fmt.Sprint(step.made) || made != len(step.made) {
			t.Fatalf("at %v: made %d %v, want %v", step.at, made, got, step.made)
		}
		for _, o := range outcomes {
			want := service.QBRQueued
			if o.Contract == "initech" {
				want = service.QBRNoRecipients
			}
			if o.Action != want || o.Err != nil {
				t.Errorf("at %v: %s %s: %s %v, want %s", step.at, o.Contract, o.Quarter, o.Action, o.Err, want)
			}
		}
	}
	if kicks != 4 {
		t.Errorf("outbox kicked %d times, want 4", kicks)
	}

	out := qbrOutbox(t, st)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	})
	if want := "[qbr:acme:2026-Q3 qbr:acme:2026-Q4 qbr:globex:2026-Q3 qbr:globex:2026-Q4]"; fmt.Sprint(keys) != want {
		t.Fatalf("outbox keys %v, want %s", keys, want)
	}
	e := out["qbr:acme:2026-Q3"]
	if e.Kind != "qbr" || e.From != "support@northwind-it.example" ||
		fmt.Sprint(e.To) != "[it-manager@acme.co.il ceo@acme.co.il dana@northwind-it.example]" {
		t.Errorf("acme entry: kind %s, from %s, to %v", e.Kind, e.From, e.To)
	}
	m := qbrParse(t, e.Raw)
	if fmt.Sprint(m.to) != "[it-manager@acme.co.il ceo@acme.co.il]" || fmt.Sprint(m.cc) != "[dana@northwind-it.example]" ||
		fmt.Sprint(m.replyTo) != "[dana@northwind-it.example]" {
		t.Errorf("acme mail: to %v cc %v reply-to %v", m.to, m.cc, m.replyTo)
	}
	page := m.files["qbr-acme-2026-Q3.html"]
	if !bytes.Contains(page, []byte(`dir="rtl"`)) || !bytes.Contains(page, []byte("ACME Ltd")) || len(m.files["qbr-acme-2026-Q3.csv"]) == 0 {
		t.Errorf("acme attachments: %d files, page of %d bytes", len(m.files), len(page))
	}
	// As of the due instant: Sunday 4 October 08:00 in Jerusalem.
	if !bytes.Contains(m.files["qbr-acme-2026-Q3.csv"], []byte("report,acme,as_of,2026-10-04T08:00:00+03:00")) {
		t.Errorf("acme review not as of its due instant:\n%s", m.files["qbr-acme-2026-Q3.csv"][:200])
	}
	if !strings.Contains(m.text, "רבעון 3 של 2026") || !strings.Contains(m.text, "qbr-acme-2026-Q3.html") {
		t.Errorf("acme note:\n%s", m.text)
	}
	g := qbrParse(t, out["qbr:globex:2026-Q3"].Raw)
	if g.subject != "Quarterly service review Q3 2026: Globex Corporation" || fmt.Sprint(g.to) != "[cio@globex.example]" ||
		!strings.Contains(g.text, "Q3 2026 (1 July to 30 September 2026)") {
		t.Errorf("globex mail: subject %q, to %v, text:\n%s", g.subject, g.to, g.text)
	}
}

// TestQBRSchedulerRace: schedulers of several instances, each with its own
// Redis connection, run the same round at once: one review per contract.
func TestQBRSchedulerRace(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	cfg := qbrCfg(t, func(c *rules.Config) { c.Contracts = c.Contracts[:2] })
	qbrSeed(t, store.New(rdb, prefix), cfg)
	at := time.Date(2026, 10, 4, 9, 0, 0, 0, jerusalem) // both due (globex since 1 October)
	const instances = 4
	var mu sync.Mutex
	made := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range instances {
		c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
		t.Cleanup(func() { c.Close() })
		s := &service.QBRScheduler{Cfg: cfg, Store: store.New(c, prefix), Now: func() time.Time { return at },
			OnOutcome: func(o service.QBROutcome) { mu.Lock(); made[o.Contract+" "+o.Action]++; mu.Unlock() }}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := s.RunOnce(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if fmt.Sprint(made) != "map[acme queued:1 globex queued:1]" {
		t.Errorf("reviews made: %v", made)
	}
	out := qbrOutbox(t, store.New(rdb, prefix))
	if len(out) != 2 || out["qbr:acme:2026-Q3"].Raw == nil || out["qbr:globex:2026-Q3"].Raw == nil {
		t.Errorf("outbox: %d entries", len(out))
	}
}

// failingStore fails the first Enqueue.
type failingStore struct {
	*store.Store
	mu    sync.Mutex
	fails int
}

func (f *failingStore) Enqueue(ctx context.Context, e store.OutboxEntry, now time.Time) (bool, error) {
	f.mu.Lock()
	fail := f.fails > 0
	f.fails--
	f.mu.Unlock()
	if fail {
		return false, errors.New("redis: connection reset")
	}
	return f.Store.Enqueue(ctx, e, now)
}

// TestQBRSchedulerRetries: a review that fails releases its claim and is
// made by the next round; a claim left by an instance that died expires
// after its lease; a review queued first by `gateway report qbr --send` is
// not queued again.
func TestQBRSchedulerRetries(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	cfg := qbrCfg(t, func(c *rules.Config) { c.Contracts = c.Contracts[:2] })
	qbrSeed(t, st, cfg)
	ctx := context.Background()
	at := time.Date(2026, 10, 4, 9, 0, 0, 0, jerusalem)
	var outcomes []service.QBROutcome
	fs := &failingStore{Store: st, fails: 1}
	s := &service.QBRScheduler{Cfg: cfg, Store: fs, Now: func() time.Time { return at }, Lease: 300 * time.Millisecond,
		OnOutcome: func(o service.QBROutcome) { outcomes = append(outcomes, o) }}

	// globex's review was queued by hand before; acme's claim is held by an
	// instance that died while making it.
	c := cfg.ContractByID("globex")
	r, err := report.Build(report.Input{Contract: c, Quarter: report.Quarter{Year: 2026, Q: 3}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := service.RenderQBR(r, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, added, err := service.EnqueueQBR(ctx, st, cfg, c, files, at); err != nil || !added {
		t.Fatalf("queue by hand: %v %v", added, err)
	}
	const deadLease = 1500 * time.Millisecond
	claimed := time.Now()
	if ok, err := st.ClaimOnce(ctx, "qbr:acme:2026-Q3", deadLease); err != nil || !ok {
		t.Fatal(ok, err)
	}

	// Round 1: acme is claimed elsewhere; globex fails to queue.
	if made, err := s.RunOnce(ctx); made != 0 || err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("round 1: made %d, err %v", made, err)
	}
	if len(outcomes) != 1 || outcomes[0].Contract != "globex" || outcomes[0].Action != service.QBRFailed {
		t.Fatalf("round 1 outcomes %+v", outcomes)
	}
	// Round 2: globex's claim was released: made, found already queued.
	outcomes = nil
	if made, err := s.RunOnce(ctx); made != 1 || err != nil {
		t.Fatalf("round 2: made %d, err %v", made, err)
	}
	if len(outcomes) != 1 || outcomes[0].Contract != "globex" || outcomes[0].Action != service.QBRAlreadySent {
		t.Fatalf("round 2 outcomes %+v", outcomes)
	}
	// Round 3, after the dead instance's lease: acme is made.
	if time.Since(claimed) > deadLease {
		t.Fatal("rounds 1 and 2 outlasted the dead instance's lease: the test proves nothing")
	}
	time.Sleep(time.Until(claimed.Add(deadLease + 100*time.Millisecond)))
	outcomes = nil
	if made, err := s.RunOnce(ctx); made != 1 || err != nil || len(outcomes) != 1 || outcomes[0].Action != service.QBRQueued {
		t.Fatalf("round 3: made %d, err %v, outcomes %+v", made, err, outcomes)
	}
	// And then held (for Keep, not Lease): nothing more.
	time.Sleep(400 * time.Millisecond)
	outcomes = nil
	if made, err := s.RunOnce(ctx); made != 0 || err != nil {
		t.Fatalf("round 4: made %d, err %v, outcomes %+v", made, err, outcomes)
	}
	if out := qbrOutbox(t, st); len(out) != 2 {
		t.Errorf("outbox: %d entries, want 2", len(out))
	}
}

// TestQBRSchedulerDir: with send: false and a dir the reviews are files
// only; late by more than CatchUp, nothing is made.
func TestQBRSchedulerDir(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	dir := t.TempDir()
	cfg := qbrCfg(t, func(c *rules.Config) {
		c.Contracts = c.Contracts[1:2]
		c.Reports.QBR.Send, c.Reports.QBR.Dir = false, dir
	})
	qbrSeed(t, st, cfg)
	clock := &qbrClock{t: time.Date(2026, 10, 8, 8, 0, 0, 0, newYork)} // 7 days late: too late
	var outcomes []service.QBROutcome
	s := &service.QBRScheduler{Cfg: cfg, Store: st, Now: clock.Now, OnOutcome: func(o service.QBROutcome) { outcomes = append(outcomes, o) }}
	if made, err := s.RunOnce(context.Background()); made != 0 || err != nil {
		t.Fatalf("too late: made %d, %v", made, err)
	}
	clock.Set(time.Date(2026, 10, 8, 7, 59, 0, 0, newYork)) // within 7 days
	if made, err := s.RunOnce(context.Background()); made != 1 || err != nil {
		t.Fatalf("made %d, %v", made, err)
	}
	want := []string{filepath.Join(dir, "qbr-globex-2026-Q3.html"), filepath.Join(dir, "qbr-globex-2026-Q3.csv")}
	if len(outcomes) != 1 || outcomes[0].Action != service.QBRWritten || fmt.Sprint(outcomes[0].Files) != fmt.Sprint(want) {
		t.Fatalf("outcomes %+v", outcomes)
	}
	for _, p := range want {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the report directory (temporary files left?)", len(entries))
	}
	if out := qbrOutbox(t, st); len(out) != 0 {
		t.Errorf("send: false queued %d mails", len(out))
	}
}

// TestQBRSchedulerRun: Run makes the due reviews on its own and stops with
// its context; with the schedule off it returns at once.
func TestQBRSchedulerRun(t *testing.T) {
	rdb, prefix := qbrRedis(t)
	st := store.New(rdb, prefix)
	cfg := qbrCfg(t, func(c *rules.Config) { c.Contracts = c.Contracts[1:2] })
	qbrSeed(t, st, cfg)
	clock := &qbrClock{t: time.Date(2026, 10, 1, 7, 0, 0, 0, newYork)}
	got := make(chan service.QBROutcome, 1)
	s := &service.QBRScheduler{Cfg: cfg, Store: st, Now: clock.Now, Interval: 10 * time.Millisecond,
		OnOutcome: func(o service.QBROutcome) { got <- o }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	clock.Set(time.Date(2026, 10, 1, 8, 0, 0, 0, newYork))
	select {
	case o := <-got:
		if o.Contract != "globex" || o.Action != service.QBRQueued {
			t.Errorf("outcome %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run made no review")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}

	off := &service.QBRScheduler{Cfg: qbrCfg(t, func(c *rules.Config) { c.Reports.QBR.Schedule = rules.ScheduleOff }), Store: st}
	if err := off.Run(context.Background()); err != nil {
		t.Errorf("Run with the schedule off: %v", err)
	}
	if err := (&service.QBRScheduler{}).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "Cfg, Store not set") {
		t.Errorf("Run without a configuration: %v", err)
	}
}

// TestQBRNote compares the covering notes with golden files and checks the
// plain-text direction rules of a Hebrew note.
func TestQBRNote(t *testing.T) {
	cfg := qbrCfg(t, nil)
	at := time.Date(2026, 10, 4, 8, 0, 0, 0, jerusalem)
	for _, tt := range []struct{ contract, lang string }{{"acme", ""}, {"globex", ""}, {"acme", "en"}} {
		name := tt.contract + "-" + tt.lang
		t.Run(name, func(t *testing.T) {
			c := cfg.ContractByID(tt.contract)
			prev := 4
			r, err := report.Build(report.Input{Contract: c, Quarter: report.Quarter{Year: 2026, Q: 3}, AsOf: at})
			if err != nil {
				t.Fatal(err)
			}
			// A quarter with figures to summarise.
			r.Total = report.Count{Key: "all", Count: 12, Previous: prev, Delta: 8, Pct: new(200.0)}
			r.ByCategory[0].Count, r.ByCategory[1].Count, r.ByCategory[2].Count = 7, 3, 2
			r.Findings = []report.Finding{{Kind: report.FindCompliance, Category: "fault", Measure: "resolution", N: 9, Of: 10, Rate: 0.9, Target: 0.95}}
			files, err := service.RenderQBR(r, tt.lang)
			if err != nil {
				t.Fatal(err)
			}
			e, err := service.ComposeQBR(cfg, c, files, at)
			if err != nil {
				t.Fatal(err)
			}
			m := qbrParse(t, e.Raw)
			text := strings.ReplaceAll(m.text, "\r\n", "\n")
			golden := filepath.Join("testdata", "qbr-note-"+strings.TrimSuffix(name, "-")+".golden")
			got := []byte("Subject: " + m.subject + "\n\n" + text)
			if qbrUpdate() {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(got, want) {
				t.Errorf("note differs from %s (run go test -update after checking):\n%s\n(%v)", golden, got, err)
			}
			if files.Lang == "he" {
				for _, l := range strings.Split(text, "\n") {
					if l != "" && !strings.HasPrefix(l, "\u200f") && !startsHebrew(l) {
						t.Errorf("Hebrew note line does not start right to left: %q", l)
					}
				}
			}
		})
	}
	// A contract without anyone to mail.
	c := cfg.ContractByID("initech")
	r, _ := report.Build(report.Input{Contract: c, Quarter: report.Quarter{Year: 2026, Q: 3}})
	files, _ := service.RenderQBR(r, "")
	if _, err := service.ComposeQBR(cfg, c, files, at); !errors.Is(err, service.ErrNoRecipients) {
		t.Errorf("initech: %v, want ErrNoRecipients", err)
	}
}

func startsHebrew(s string) bool {
	for _, r := range strings.TrimLeft(s, " ") {
		return r >= 0x0590 && r <= 0x05FF
	}
	return false
}
