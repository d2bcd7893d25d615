package service_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode any charset in walked parts
	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// The end-to-end tests run the real gateway (service.Gateway) against
// go-imap's IMAP server and a go-smtp catcher on loopback (demo.World) and a
// real Redis at REDIS_ADDR (default 127.0.0.1:6379). Each test has its own
// random key prefix, removed by World.Close. Without Redis the tests are
// skipped, unless CI=true, where they fail.

const (
	e2eStaffQueue = "helpdesk@northwind-it.example"
	// e2eTimeout bounds every test: nothing may hang.
	e2eTimeout = 25 * time.Second
)

func e2eRedisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// e2eRedisProbe pings the test Redis once per test binary.
var e2eRedisProbe = sync.OnceValue(func() error {
	c := redis.NewClient(&redis.Options{Addr: e2eRedisAddr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
})

func e2eRequireRedis(t *testing.T) {
	t.Helper()
	if err := e2eRedisProbe(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", e2eRedisAddr(), err)
		}
		t.Skipf("redis at %s not reachable: %v", e2eRedisAddr(), err)
	}
}

// e2eClock is the injected clock (service.Options.Now): it stands still
// unless a test advances it.
type e2eClock struct {
	mu  sync.Mutex
	now time.Time
}

func newE2EClock(t time.Time) *e2eClock { return &e2eClock{now: t} }

func (c *e2eClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *e2eClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// e2eLogBuffer keeps the gateway's log and prints it when the test fails
// (or always, with E2E_LOG set).
type e2eLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *e2eLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *e2eLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// e2eOutcomes records the pipeline's outcomes across gateway instances.
type e2eOutcomes struct {
	mu  sync.Mutex
	all []service.Outcome
}

func (l *e2eOutcomes) add(o service.Outcome) {
	l.mu.Lock()
	l.all = append(l.all, o)
	l.mu.Unlock()
}

func (l *e2eOutcomes) snapshot() []service.Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// e2e is one test's mail world, clock and gateway factory.
type e2e struct {
	t        *testing.T
	ctx      context.Context
	w        *demo.World
	clock    *e2eClock
	tmpl     *notify.Templates
	log      *slog.Logger
	st       *store.Store
	outcomes *e2eOutcomes

	sentMu sync.Mutex
	parsed []e2eMail // the catcher's mail, parsed, in arrival order
}

// e2eNow is where the injected clock (Date headers, the outbox, the SLA
// timer worker) starts: Mon 30 Nov 2026 09:32 IST, after the Israeli sample
// mail and the generated mail arrived and before any of their deadlines or
// warnings (the first is at 09:48), so that no timer fires during a test and
// the stored timers can be read back. Nothing in the pipeline depends on the
// clock being after an INTERNALDATE (the New York sample arrives at 16:10
// IST).
var e2eNow = time.Date(2026, 11, 30, 7, 32, 0, 0, time.UTC)

func newE2E(t *testing.T, imapOpt localmail.IMAPOptions) *e2e {
	t.Helper()
	e2eRequireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	t.Cleanup(cancel)
	logs := &e2eLogBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_LOG") != "" {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	w, err := demo.NewWorld(ctx, demo.WorldOptions{RedisURL: "redis://" + e2eRedisAddr(), AllowEmbedded: false, IMAP: imapOpt})
	if err != nil {
		t.Fatalf("start mail world: %v", err)
	}
	t.Cleanup(w.Close)
	if w.Embedded {
		t.Fatal("world fell back to the embedded Redis")
	}
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatalf("load templates: %v", err)
	}
	return &e2e{
		t: t, ctx: ctx, w: w, clock: newE2EClock(e2eNow), tmpl: tmpl,
		log:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		st:       store.New(w.Redis, w.Prefix),
		outcomes: &e2eOutcomes{},
	}
}

// e2eRun is one running gateway instance.
type e2eRun struct {
	g      *service.Gateway
	cancel context.CancelFunc
	done   chan error
	n      atomic.Int64 // outcomes seen by this instance

	mu    sync.Mutex
	conns []net.Conn // the instance's IMAP connections
}

// cutIMAP closes every IMAP connection the instance opened.
func (r *e2eRun) cutIMAP() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		_ = c.Close()
	}
}

// start runs a new gateway on the world. The clock, the Redis client and the
// outcome log are filled in; a zero OutboxIdle becomes 20ms. With
// stopAfter > 0 the instance is stopped right after its stopAfter-th message
// is stored and before that message is moved: its IMAP connection dies and
// Run is cancelled at that moment, as when the process is killed there.
// setup, if any, may adjust the gateway before it runs.
func (e *e2e) start(opt service.Options, stopAfter int64, setup ...func(*service.Gateway)) *e2eRun {
	e.t.Helper()
	opt.Now = e.clock.Now
	if opt.Redis == nil {
		opt.Redis = e.w.Redis
	}
	if opt.OutboxIdle == 0 {
		opt.OutboxIdle = 20 * time.Millisecond
	}
	r := &e2eRun{done: make(chan error, 1)}
	runCtx, cancel := context.WithCancel(e.ctx)
	r.cancel = cancel
	dial := opt.IMAPDialer
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	opt.IMAPDialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
		}
		return c, err
	}
	opt.OnOutcome = func(o service.Outcome) {
		e.outcomes.add(o)
		if n := r.n.Add(1); stopAfter > 0 && n == stopAfter {
			r.cutIMAP()
			cancel()
		}
	}
	g, err := service.New(e.ctx, e.w.Config, e.tmpl, e.log, opt)
	if err != nil {
		cancel()
		e.t.Fatalf("new gateway: %v", err)
	}
	r.g = g
	for _, f := range setup {
		f(g)
	}
	go func() { r.done <- g.Run(runCtx) }()
	return r
}

// stopped waits until the instance stopped by itself (stopAfter) and
// releases it.
func (e *e2e) stopped(r *e2eRun) {
	e.t.Helper()
	select {
	case err := <-r.done:
		e.released(r, err)
	case <-e.ctx.Done():
		e.stop(r)
		e.t.Fatalf("gateway did not stop by itself: %v", e.ctx.Err())
	}
}

// stop cancels the instance, waits for Run to return and releases it.
func (e *e2e) stop(r *e2eRun) {
	e.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		e.released(r, err)
	case <-time.After(4 * time.Second): // a cancelled Run returns at once
		e.t.Fatal("gateway did not stop within 4s")
	}
}

func (e *e2e) released(r *e2eRun, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Errorf("gateway run: %v", err)
	}
	r.g.Close()
}

// waitFor polls cond until it holds; on timeout the test fails with the
// last state cond described.
func (e *e2e) waitFor(what string, cond func() (bool, string)) {
	e.t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("timed out waiting for %s; state: %s", what, state)
		case <-tick.C:
		}
	}
}

func (e *e2e) deliver(raw []byte, internalDate time.Time) {
	e.t.Helper()
	if err := e.w.IMAP.Deliver("INBOX", raw, internalDate); err != nil {
		e.t.Fatal(err)
	}
}

// folderCounts returns the number of messages in folder and how many of
// them are not flagged \Deleted.
func (e *e2e) folderCounts(folder string) (all, live int) {
	e.t.Helper()
	st, err := e.w.IMAP.User.Status(folder, &imap.StatusOptions{NumMessages: true, NumDeleted: true})
	if err != nil {
		e.t.Fatalf("status %s: %v", folder, err)
	}
	if st.NumMessages != nil {
		all = int(*st.NumMessages)
	}
	live = all
	if st.NumDeleted != nil {
		live -= int(*st.NumDeleted)
	}
	return all, live
}

// e2eIMAPMessage is a message as an IMAP client sees it in a folder.
type e2eIMAPMessage struct {
	UID          imap.UID
	Flags        []imap.Flag
	InternalDate time.Time
	Raw          []byte
}

// folderContents reads folder over IMAP, as a mail client would.
func (e *e2e) folderContents(folder string) []e2eIMAPMessage {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.w.IMAP.Addr, nil)
	if err != nil {
		e.t.Fatalf("dial imap: %v", err)
	}
	defer c.Close()
	stop := context.AfterFunc(e.ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(demo.SupportAddress, "demo-password").Wait(); err != nil {
		e.t.Fatalf("imap login: %v", err)
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		e.t.Fatalf("select %s: %v", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	bufs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		e.t.Fatalf("fetch %s: %v", folder, err)
	}
	out := make([]e2eIMAPMessage, 0, len(bufs))
	for _, b := range bufs {
		out = append(out, e2eIMAPMessage{UID: b.UID, Flags: b.Flags, InternalDate: b.InternalDate, Raw: b.FindBodySection(&imap.FetchItemBodySection{})})
	}
	_ = c.Logout().Wait()
	return out
}

// e2eMail is a message the SMTP catcher accepted, parsed.
type e2eMail struct {
	localmail.Mail
	Msg  *domain.Message
	Kind string // "ack" (Auto-Submitted: auto-replied to a customer), "forward" (to the staff queue), "other"
}

func (e *e2e) sent() []e2eMail {
	e.sentMu.Lock()
	defer e.sentMu.Unlock()
	all := e.w.SMTP.Mail() // append-only: parse only what is new
	for _, m := range all[len(e.parsed):] {
		pm := ingest.Parse(bytes.NewReader(m.Raw), ingest.DefaultLimits())
		kind := "other"
		auto, _ := pm.Header("Auto-Submitted")
		switch {
		case auto == "auto-replied":
			kind = "ack"
		case slices.Equal(m.To, []string{e2eStaffQueue}):
			kind = "forward"
		}
		e.parsed = append(e.parsed, e2eMail{Mail: m, Msg: pm, Kind: kind})
	}
	return slices.Clone(e.parsed)
}

// e2eCountByCustomer counts the mails of kind per customer Message-ID they
// answer (In-Reply-To).
func e2eCountByCustomer(mails []e2eMail, kind string) map[string]int {
	n := map[string]int{}
	for _, m := range mails {
		if m.Kind != kind {
			continue
		}
		key := "(none)"
		if len(m.Msg.InReplyTo) > 0 {
			key = m.Msg.InReplyTo[0]
		}
		n[key]++
	}
	return n
}

// e2eMsg is a generated customer mail.
type e2eMsg struct {
	MessageID string
	From      string
	Raw       []byte
	Received  time.Time
	Marker    string // a unique line in the middle of the body
}

// e2eMessages returns n customer mails from distinct senders of the acme
// domain (so the per-sender acknowledgement limit never applies), with
// distinct Message-IDs and a body of a few kilobytes, arriving a minute
// apart from Mon 30 Nov 2026 09:00 IST.
func e2eMessages(n int) []e2eMsg {
	jer := e2eLoc("Asia/Jerusalem")
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, jer)
	out := make([]e2eMsg, n)
	for i := range out {
		recv := start.Add(time.Duration(i) * time.Minute)
		id := fmt.Sprintf("e2e-%02d.7f3a@mail.acme.co.il", i)
		from := fmt.Sprintf("user%02d@acme.co.il", i)
		subject := fmt.Sprintf("Question %02d about licences", i)
		if i%2 == 0 {
			subject = fmt.Sprintf("Printer on floor %02d not working", i)
		}
		marker := fmt.Sprintf("CUT-MARKER-%02d", i)
		var b strings.Builder
		fmt.Fprintf(&b, "From: Customer %02d <%s>\r\nTo: support@northwind-it.example\r\nSubject: %s\r\n", i, from, subject)
		fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", recv.Format(time.RFC1123Z), id)
		for l := range 30 {
			fmt.Fprintf(&b, "Line %02d of message %02d: the quick brown fox jumps over the lazy dog.\r\n", l, i)
		}
		fmt.Fprintf(&b, "%s\r\n", marker)
		for l := 30; l < 60; l++ {
			fmt.Fprintf(&b, "Line %02d of message %02d: the quick brown fox jumps over the lazy dog.\r\n", l, i)
		}
		out[i] = e2eMsg{MessageID: id, From: from, Raw: []byte(b.String()), Received: recv, Marker: marker}
	}
	return out
}

func e2eLoc(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// waitAllProcessed waits until every message of msgs has gone through: the
// watched folder holds no live message, the processed folder holds them all,
// every customer has an acknowledgement and staff a forward, and the outbox
// is empty (nothing pending or in flight that could still be sent).
func (e *e2e) waitAllProcessed(msgs []e2eMsg) {
	e.t.Helper()
	e.waitFor("every message processed and its mail sent", func() (bool, string) {
		if n := len(e.w.SMTP.Mail()); n < 2*len(msgs) {
			return false, fmt.Sprintf("%d mails sent", n) // cheap check first: parsing steals CPU from the gateway
		}
		_, inbox := e.folderCounts("INBOX")
		processed, _ := e.folderCounts("Processed")
		mails := e.sent()
		acks, fwds := e2eCountByCustomer(mails, "ack"), e2eCountByCustomer(mails, "forward")
		depth, _, err := e.st.OutboxDepth(e.ctx)
		state := fmt.Sprintf("inbox live %d, processed %d, acked %d, forwarded %d, outbox %d (%v)", inbox, processed, len(acks), len(fwds), depth, err)
		return err == nil && inbox == 0 && processed == len(msgs) && len(acks) >= len(msgs) && len(fwds) >= len(msgs) && depth == 0, state
	})
}

// assertExactlyOnce checks that each of msgs made exactly one ticket, one
// acknowledgement to its sender and one forward to staff, and that nothing
// else was sent.
func (e *e2e) assertExactlyOnce(msgs []e2eMsg) {
	e.t.Helper()
	t := e.t
	mails := e.sent()
	acks, fwds := e2eCountByCustomer(mails, "ack"), e2eCountByCustomer(mails, "forward")
	for _, m := range msgs {
		if acks[m.MessageID] != 1 {
			t.Errorf("%s: %d acknowledgements, want 1", m.MessageID, acks[m.MessageID])
		}
		if fwds[m.MessageID] != 1 {
			t.Errorf("%s: %d forwards, want 1", m.MessageID, fwds[m.MessageID])
		}
	}
	if len(mails) != 2*len(msgs) {
		t.Errorf("catcher got %d mails, want %d (one ack and one forward per message)", len(mails), 2*len(msgs))
	}
	for _, m := range mails {
		if m.Kind == "ack" && len(m.Msg.InReplyTo) > 0 {
			want := ""
			for _, g := range msgs {
				if g.MessageID == m.Msg.InReplyTo[0] {
					want = g.From
				}
			}
			if !slices.Equal(m.To, []string{want}) {
				t.Errorf("ack for %s went to %v, want [%s]", m.Msg.InReplyTo[0], m.To, want)
			}
		}
	}

	tickets, err := e.st.TicketsByContract(e.ctx, "acme")
	if err != nil {
		t.Fatalf("read tickets: %v", err)
	}
	perMsg := map[string]int{}
	ids := map[string]bool{}
	for _, tk := range tickets {
		perMsg[tk.MessageID]++
		ids[tk.ID] = true
	}
	if len(tickets) != len(msgs) || len(ids) != len(msgs) {
		t.Errorf("%d tickets with %d distinct ids, want %d", len(tickets), len(ids), len(msgs))
	}
	for _, m := range msgs {
		if perMsg[m.MessageID] != 1 {
			t.Errorf("%s: %d tickets, want 1", m.MessageID, perMsg[m.MessageID])
		}
	}
	// The pipeline itself created each ticket once: a message seen again
	// (after a restart or a dropped connection) is recognised as stored.
	created := map[string]int{}
	for _, o := range e.outcomes.snapshot() {
		if o.Created {
			created[o.Ticket.MessageID]++
		}
	}
	for _, m := range msgs {
		if created[m.MessageID] != 1 {
			t.Errorf("%s: created %d times, want 1", m.MessageID, created[m.MessageID])
		}
	}
	if _, live := e.folderCounts("INBOX"); live != 0 {
		t.Errorf("INBOX still has %d unprocessed messages", live)
	}
	if n, _ := e.folderCounts("Processed"); n != len(msgs) {
		t.Errorf("Processed holds %d messages, want %d", n, len(msgs))
	}
}

// outcomeActions counts the outcomes by action.
func (e *e2e) outcomeActions() map[string]int {
	n := map[string]int{}
	for _, o := range e.outcomes.snapshot() {
		n[o.Action]++
	}
	return n
}

// e2eOutboxProbe wraps the gateway's outbox store and counts the entries
// rescheduled after a failed send, once the store has recorded them.
type e2eOutboxProbe struct {
	service.Outbox
	retried atomic.Int64
}

// The store's optional outbox methods, passed on, so that the probe keeps
// the sender on the path it takes in production (held mail, batched
// acknowledgements).

func (p *e2eOutboxProbe) ClaimOutboxMeta(ctx context.Context, now time.Time, lease time.Duration, max int) ([]store.OutboxEntry, error) {
	return p.Outbox.(*store.Store).ClaimOutboxMeta(ctx, now, lease, max)
}

func (p *e2eOutboxProbe) OutboxRaw(ctx context.Context, keys []string) ([][]byte, []bool, error) {
	return p.Outbox.(*store.Store).OutboxRaw(ctx, keys)
}

func (p *e2eOutboxProbe) AckOutboxMany(ctx context.Context, keys []string, now time.Time) error {
	return p.Outbox.(*store.Store).AckOutboxMany(ctx, keys, now)
}

func (p *e2eOutboxProbe) AckClaimOutboxMeta(ctx context.Context, ack []string, now time.Time, lease time.Duration, max int) ([]store.OutboxEntry, error) {
	return p.Outbox.(*store.Store).AckClaimOutboxMeta(ctx, ack, now, lease, max)
}

func (p *e2eOutboxProbe) RetryOutbox(ctx context.Context, key string, at time.Time, errText string) error {
	err := p.Outbox.RetryOutbox(ctx, key, at, errText)
	if err == nil {
		p.retried.Add(1)
	}
	return err
}

// e2eFaultDialer cuts IMAP connections on the client side: a connection dies
// right after the client has read a marker (each marker fires once, on
// whichever connection meets it), or after the n-th connection has read a
// given number of bytes.
type e2eFaultDialer struct {
	mu         sync.Mutex
	markers    []string
	afterBytes map[int]int64 // dial index (0-based) -> cut after this many bytes
	dials      int
	cuts       []string
}

func (f *e2eFaultDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	idx := f.dials
	f.dials++
	limit := f.afterBytes[idx]
	f.mu.Unlock()
	return &e2eFaultConn{Conn: c, f: f, idx: idx, limit: limit}, nil
}

func (f *e2eFaultDialer) fired() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cuts)
}

// takeMarker removes and returns the first pending marker found in data.
func (f *e2eFaultDialer) takeMarker(data []byte) (string, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.markers {
		if at := bytes.Index(data, []byte(m)); at >= 0 {
			f.markers = slices.Delete(f.markers, i, i+1)
			f.cuts = append(f.cuts, "marker "+m)
			return m, at, true
		}
	}
	return "", 0, false
}

type e2eFaultConn struct {
	net.Conn
	f     *e2eFaultDialer
	idx   int
	limit int64 // 0: no byte limit
	read  int64
	tail  []byte // the last bytes read, to find a marker split across reads
	cut   atomic.Bool
}

var e2eErrCut = errors.New("injected fault: connection cut")

func (c *e2eFaultConn) Read(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, e2eErrCut
	}
	n, err := c.Conn.Read(p)
	if c.limit > 0 && c.read+int64(n) >= c.limit {
		keep := int(c.limit - c.read)
		c.read = c.limit
		c.f.mu.Lock()
		c.f.cuts = append(c.f.cuts, fmt.Sprintf("connection %d after %d bytes", c.idx, c.limit))
		c.f.mu.Unlock()
		c.kill()
		return keep, nil
	}
	c.read += int64(n)
	window := append(c.tail, p[:n]...)
	if m, at, ok := c.f.takeMarker(window); ok {
		c.kill()
		// The client gets the bytes up to the marker's end: the message
		// body is cut short in the middle.
		return max(at+len(m)-len(c.tail), 0), nil
	}
	if len(window) > 64 {
		window = window[len(window)-64:]
	}
	c.tail = append(c.tail[:0], window...)
	return n, err
}

func (c *e2eFaultConn) Write(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, e2eErrCut
	}
	return c.Conn.Write(p)
}

func (c *e2eFaultConn) kill() {
	c.cut.Store(true)
	_ = c.Conn.Close()
}

// e2eTap connects the gateway to the IMAP server through a tap that
// records the commands the client sends and, with hideIdle, removes IDLE
// from every CAPABILITY list the server sends (go-imap's server always
// offers it), so that the gateway meets a server without IDLE.
type e2eTap struct {
	hideIdle bool
	rewrote  atomic.Int64 // capability lines edited

	mu       sync.Mutex
	commands map[string]int // "UID MOVE", "IDLE", ... -> times sent
}

var (
	e2eIdleCapRE = regexp.MustCompile(`(CAPABILITY[^\r\n]*?) IDLE([ \]\r])`)
	e2eCommandRE = regexp.MustCompile(`(?m)^[A-Za-z0-9.]+ ((?i:UID) )?([A-Za-z]+)`)
	e2eTaggedRE  = regexp.MustCompile(`^[A-Za-z0-9.]+ `)
)

func (d *e2eTap) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &e2eTapConn{Conn: c, d: d, r: bufio.NewReader(c)}, nil
}

func (d *e2eTap) count(cmd string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.commands[cmd]
}

// e2eTapConn rewrites whole response lines: the server ends every line with
// CRLF, and no CAPABILITY line is ever inside a literal here.
type e2eTapConn struct {
	net.Conn
	d       *e2eTap
	r       *bufio.Reader
	pending []byte
}

func (c *e2eTapConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		line, err := c.r.ReadBytes('\n')
		if len(line) == 0 {
			return 0, err
		}
		if c.d.hideIdle {
			if out := e2eIdleCapRE.ReplaceAll(line, []byte("$1$2")); !bytes.Equal(out, line) {
				c.d.rewrote.Add(1)
				line = out
			}
		}
		c.pending = line
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *e2eTapConn) Write(p []byte) (int, error) {
	if e2eTaggedRE.Match(p) {
		c.d.mu.Lock()
		if c.d.commands == nil {
			c.d.commands = map[string]int{}
		}
		for _, m := range e2eCommandRE.FindAllSubmatch(p, -1) {
			c.d.commands[strings.ToUpper(string(m[1])+string(m[2]))]++
		}
		c.d.mu.Unlock()
	}
	return c.Conn.Write(p)
}

// e2eAttachments returns the decoded bodies of the parts of raw that carry a
// file name, keyed by file name, at any depth of the MIME tree.
func e2eAttachments(t *testing.T, raw []byte) map[string][]byte {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("read message: %v", err)
	}
	out := map[string][]byte{}
	err = ent.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		if mt, _, _ := part.Header.ContentType(); strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		_, params, _ := part.Header.ContentDisposition()
		name := params["filename"]
		if name == "" {
			_, ct, _ := part.Header.ContentType()
			name = ct["name"]
		}
		if name == "" {
			return nil
		}
		if dec, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
			name = dec
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return fmt.Errorf("read part %s: %w", name, err)
		}
		out[name] = body
		return nil
	})
	if err != nil {
		t.Fatalf("walk message: %v", err)
	}
	return out
}

// e2eTextParts returns the decoded text of every text/plain part of raw, at
// any depth of the MIME tree.
func e2eTextParts(t *testing.T, raw []byte) []string {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("read message: %v", err)
	}
	var out []string
	err = ent.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		if mt, _, _ := part.Header.ContentType(); mt != "text/plain" {
			return nil
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return fmt.Errorf("read text part: %w", err)
		}
		out = append(out, strings.ReplaceAll(string(body), "\r\n", "\n"))
		return nil
	})
	if err != nil {
		t.Fatalf("walk message: %v", err)
	}
	return out
}
