package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode any charset in walked parts

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// The conversation tests (conv_e2e_test.go) run the real gateway
// (service.Gateway) on demo.World: go-imap's IMAP server and a go-smtp
// catcher on loopback, and a real Redis at REDIS_ADDR (default
// 127.0.0.1:6379) under a random key prefix. They talk to it only by mail:
// they deliver messages into the INBOX with a chosen INTERNALDATE, wait until
// the gateway has moved them and sent everything it queued, and read what the
// catcher received and what Redis holds.

const (
	convSupport = demo.SupportAddress
	convQueue   = "helpdesk@northwind-it.example"
	// convARPass is the header our receiving MTA adds on top of a staff
	// member's authenticated mail.
	convARPass = "Authentication-Results: mx.northwind-it.example; dkim=pass header.d=northwind-it.example header.s=s1; spf=pass smtp.mailfrom=northwind-it.example"
	convStaff  = "Dana Cohen <dana@northwind-it.example>"
	// convTimeout bounds every test.
	convTimeout = 25 * time.Second
)

// convJer is the ACME calendar's zone.
var convJer = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		panic(err)
	}
	return loc
}()

// convAt is a wall-clock instant in Jerusalem, December 2026 (the 1st is a
// Tuesday, ACME's IMAC service day).
func convAt(day, hour, minute int) time.Time {
	return time.Date(2026, 12, day, hour, minute, 0, 0, convJer)
}

// convLogBuffer keeps a gateway's log, printed when the test fails (or
// always with E2E_LOG set).
type convLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *convLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *convLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// convSetup adjusts a gateway before it runs.
type convSetup struct {
	configure func(*rules.Config)     // the configuration, before service.New
	pipeline  func(*service.Pipeline) // the pipeline, before Run (fault hooks)
	name      string                  // log label, for tests with several gateways
}

// convEnv is one running gateway on its mail world.
type convEnv struct {
	t    *testing.T
	ctx  context.Context
	w    *demo.World
	cfg  *rules.Config
	st   *store.Store
	g    *service.Gateway
	logs *convLogBuffer

	mu        sync.Mutex
	outcomes  []service.Outcome
	delivered int // messages delivered into the INBOX
	taken     int // caught mails already handed out by take
}

// newConvWorld starts a mail world with Redis for the test.
func newConvWorld(t *testing.T, ctx context.Context, imapOpt localmail.IMAPOptions) *demo.World {
	t.Helper()
	w, err := demo.NewWorld(ctx, demo.WorldOptions{RedisURL: "redis://" + e2eRedisAddr(), AllowEmbedded: false, IMAP: imapOpt})
	if err != nil {
		t.Fatalf("start mail world: %v", err)
	}
	t.Cleanup(w.Close)
	if w.Embedded {
		t.Fatal("world fell back to the embedded Redis")
	}
	return w
}

// convContext is the test's deadline.
func convContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), convTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newConvEnv starts a gateway on a new mail world.
func newConvEnv(t *testing.T, ctx context.Context, s convSetup) *convEnv {
	t.Helper()
	e2eRequireRedis(t)
	w := newConvWorld(t, ctx, localmail.IMAPOptions{})
	logs := &convLogBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_LOG") != "" {
			t.Logf("gateway %s log:\n%s", s.name, logs.String())
		}
	})
	// The mailbox is polled every 20ms instead of watched with IDLE: the
	// in-process server (imapmemserver, go-imap v2.0.0-beta.8) does not
	// announce mail appended between the poll that ends a command and the
	// start of IDLE (SessionTracker.Idle waits for the next update without
	// flushing the queued ones), which stalls such a message until the
	// next delivery or the 9-minute IDLE restart. localmail flushes the
	// queue when IDLE starts, which narrows that window without closing
	// it. These tests are about conversations, not about IDLE.
	for i := range w.Config.Mailboxes {
		w.Config.Mailboxes[i].IDLE, w.Config.Mailboxes[i].PollInterval = false, 20*time.Millisecond
	}
	if s.configure != nil {
		s.configure(w.Config)
	}
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatalf("load templates: %v", err)
	}
	e := &convEnv{t: t, ctx: ctx, w: w, cfg: w.Config, st: store.New(w.Redis, w.Config.Redis.Prefix), logs: logs}
	log := slog.New(slog.NewTextHandler(logs, nil))
	if s.name != "" {
		log = log.With("gw", s.name)
	}
	g, err := service.New(ctx, w.Config, tmpl, log, service.Options{
		Redis: w.Redis, OutboxIdle: 20 * time.Millisecond,
		OnOutcome: func(o service.Outcome) {
			e.mu.Lock()
			e.outcomes = append(e.outcomes, o)
			e.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	e.g = g
	if s.pipeline != nil {
		s.pipeline(g.Pipeline)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway %s run: %v", s.name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("gateway %s did not stop within 5s", s.name)
		}
		g.Close()
	})
	return e
}

// deliver puts m into the INBOX as the mail server would, with m.Received
// as INTERNALDATE.
func (e *convEnv) deliver(m convMsg) {
	e.t.Helper()
	e.deliverRaw(m.raw(), m.Received)
}

func (e *convEnv) deliverRaw(raw []byte, at time.Time) {
	e.t.Helper()
	if err := e.w.IMAP.Deliver("INBOX", raw, at); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.delivered++
	e.mu.Unlock()
}

// folderCount is the number of messages in folder not flagged \Deleted.
func (e *convEnv) folderCount(folder string) int {
	e.t.Helper()
	st, err := e.w.IMAP.User.Status(folder, &imap.StatusOptions{NumMessages: true, NumDeleted: true})
	if err != nil {
		e.t.Fatalf("status %s: %v", folder, err)
	}
	n := 0
	if st.NumMessages != nil {
		n = int(*st.NumMessages)
	}
	if st.NumDeleted != nil {
		n -= int(*st.NumDeleted)
	}
	return n
}

// quiet reports whether everything delivered has been handled and moved,
// and everything queued has been sent.
func (e *convEnv) quiet() (bool, string) {
	e.mu.Lock()
	delivered := e.delivered
	e.mu.Unlock()
	inbox, processed := e.folderCount("INBOX"), e.folderCount("Processed")
	depth, _, err := e.st.OutboxDepth(e.ctx)
	state := fmt.Sprintf("delivered %d, inbox %d, processed %d, outbox %d (%v)", delivered, inbox, processed, depth, err)
	return err == nil && inbox == 0 && processed == delivered && depth == 0, state
}

// settle waits until the gateway is quiet.
func (e *convEnv) settle() {
	e.t.Helper()
	convWaitFor(e.t, e.ctx, "the gateway to handle and send everything", e.quiet)
}

// convWaitFor polls cond until it holds.
func convWaitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; state: %s", what, state)
		case <-tick.C:
		}
	}
}

// convMail is a mail the catcher accepted, parsed.
type convMail struct {
	localmail.Mail
	Msg *domain.Message
}

// Kind is what the gateway sent, from its Message-ID ("ack", "fwd",
// "relay", "resolved", "cmderr", "notice"), or "" for mail not ours.
func (m convMail) Kind() string {
	kind, _, _ := strings.Cut(m.Msg.MessageID, ".")
	switch kind {
	case "ack", "fwd", "relay", "resolved", "cmderr", "notice", "sla":
		return kind
	}
	return ""
}

func (m convMail) String() string {
	return fmt.Sprintf("%s to %v: %q", m.Kind(), m.To, m.Msg.Subject)
}

func convParse(lm localmail.Mail) convMail {
	return convMail{Mail: lm, Msg: ingest.Parse(bytes.NewReader(lm.Raw), ingest.DefaultLimits())}
}

// take returns the mail caught since the last call.
func (e *convEnv) take() []convMail {
	all := e.w.SMTP.Mail()
	e.mu.Lock()
	from := e.taken
	e.taken = len(all)
	e.mu.Unlock()
	var out []convMail
	for _, m := range all[from:] {
		out = append(out, convParse(m))
	}
	return out
}

// convOfKind filters mails by Kind.
func convOfKind(ms []convMail, kind string) []convMail {
	var out []convMail
	for _, m := range ms {
		if m.Kind() == kind {
			out = append(out, m)
		}
	}
	return out
}

// convOne returns the only mail of kind, failing otherwise.
func convOne(t *testing.T, ms []convMail, kind string) convMail {
	t.Helper()
	got := convOfKind(ms, kind)
	if len(got) != 1 {
		t.Fatalf("want one %q mail, got %d; all mail: %v", kind, len(got), ms)
	}
	return got[0]
}

// outcomesFor returns the outcomes of the message with this Message-ID.
func (e *convEnv) outcomesFor(id string) []service.Outcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []service.Outcome
	for _, o := range e.outcomes {
		if o.Decision.Msg != nil && o.Decision.Msg.MessageID == id {
			out = append(out, o)
		}
	}
	return out
}

// outcome returns the last outcome of the message with this Message-ID.
func (e *convEnv) outcome(id string) service.Outcome {
	e.t.Helper()
	os := e.outcomesFor(id)
	if len(os) == 0 {
		e.t.Fatalf("no outcome for %s", id)
	}
	return os[len(os)-1]
}

func (e *convEnv) ticket(id string) domain.Ticket {
	e.t.Helper()
	tk, err := e.st.Ticket(e.ctx, id)
	if err != nil {
		e.t.Fatalf("read ticket %s: %v", id, err)
	}
	return tk
}

func (e *convEnv) tickets(contract string) []domain.Ticket {
	e.t.Helper()
	ts, err := e.st.TicketsByContract(e.ctx, contract)
	if err != nil {
		e.t.Fatalf("read tickets of %q: %v", contract, err)
	}
	return ts
}

func (e *convEnv) events(id string) []domain.Event {
	e.t.Helper()
	evs, err := e.st.Events(e.ctx, id)
	if err != nil {
		e.t.Fatalf("read events of %s: %v", id, err)
	}
	return evs
}

// lastEvent is the ticket's most recent event.
func (e *convEnv) lastEvent(id string) domain.Event {
	e.t.Helper()
	evs := e.events(id)
	if len(evs) == 0 {
		e.t.Fatalf("ticket %s has no events", id)
	}
	return evs[len(evs)-1]
}

// timers returns the pending SLA timers of a ticket, by kind.
func (e *convEnv) timers(contract, id string) map[string]time.Time {
	e.t.Helper()
	all, err := e.st.PendingTimers(e.ctx, contract)
	if err != nil {
		e.t.Fatalf("read timers: %v", err)
	}
	out := map[string]time.Time{}
	for _, tm := range all {
		if tm.Ticket == id {
			out[tm.Kind] = tm.Due
		}
	}
	return out
}

// convMsg is a message written by a person's mail client.
type convMsg struct {
	From, To, Cc string
	Subject      string
	MessageID    string // without angle brackets; "" writes none
	InReplyTo    string
	References   []string
	Received     time.Time // INTERNALDATE; the Date header is a minute earlier
	Top          []string  // header lines above all others (added by the receiving MTA)
	Extra        []string  // further header lines
	Body         string
	HTML         string // with Body, a multipart/alternative
	Attach       *convFile
}

// convFile is an attachment.
type convFile struct {
	Name, Type string
	Data       []byte
}

func convIDs(ids []string) string {
	var b []string
	for _, id := range ids {
		b = append(b, "<"+id+">")
	}
	return strings.Join(b, " ")
}

// raw writes m as RFC 5322 with CRLF line endings: UTF-8 quoted-printable
// text, and a base64 attachment in multipart/mixed when m has one.
func (m convMsg) raw() []byte {
	var b bytes.Buffer
	h := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	for _, l := range m.Top {
		b.WriteString(l + "\r\n")
	}
	h("Return-Path", "<"+convAddrOf(m.From)+">")
	h("From", m.From)
	h("To", m.To)
	h("Cc", m.Cc)
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", m.Received.Add(-time.Minute).Format(time.RFC1123Z))
	if m.MessageID != "" {
		h("Message-ID", "<"+m.MessageID+">")
	}
	if m.InReplyTo != "" {
		h("In-Reply-To", "<"+m.InReplyTo+">")
	}
	h("References", convIDs(m.References))
	for _, l := range m.Extra {
		b.WriteString(l + "\r\n")
	}
	h("MIME-Version", "1.0")
	part := func(mt, s string) {
		b.WriteString("Content-Type: " + mt + "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		qw := quotedprintable.NewWriter(&b)
		qw.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")))
		qw.Close()
		b.WriteString("\r\n")
	}
	text := func() {
		if m.HTML == "" {
			part("text/plain", m.Body)
			return
		}
		const alt = "conv-alt-5d2a"
		b.WriteString("Content-Type: multipart/alternative; boundary=\"" + alt + "\"\r\n\r\n--" + alt + "\r\n")
		part("text/plain", m.Body)
		b.WriteString("--" + alt + "\r\n")
		part("text/html", m.HTML)
		b.WriteString("--" + alt + "--\r\n")
	}
	if m.Attach == nil {
		text()
		return b.Bytes()
	}
	const bnd = "conv-boundary-7c1e"
	b.WriteString("Content-Type: multipart/mixed; boundary=\"" + bnd + "\"\r\n\r\n")
	b.WriteString("--" + bnd + "\r\n")
	text()
	b.WriteString("--" + bnd + "\r\n")
	fmt.Fprintf(&b, "Content-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
		m.Attach.Type, m.Attach.Name, m.Attach.Name)
	enc := base64.StdEncoding.EncodeToString(m.Attach.Data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--" + bnd + "--\r\n")
	return b.Bytes()
}

// convAddrOf extracts the address of "Name <addr>".
func convAddrOf(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		return strings.TrimSuffix(s[i+1:], ">")
	}
	return strings.TrimSpace(s)
}

// convSeq numbers generated Message-IDs.
var convSeq atomic.Int64

// convReply is what a mail client writes when its user replies to mail
// with text on top and the mail quoted below ("On ... wrote:" and '>'
// lines), threaded to it.
func convReply(to convMail, from, text string, received time.Time) convMsg {
	var q strings.Builder
	q.WriteString(text)
	fmt.Fprintf(&q, "\n\nOn %s, %s wrote:\n", to.Msg.Date.Format("Mon, 2 Jan 2006 at 15:04"), to.Msg.From.Addr)
	for _, l := range strings.Split(strings.TrimRight(strings.ReplaceAll(to.Msg.Text, "\r\n", "\n"), "\n"), "\n") {
		if l == "" {
			q.WriteString(">\n")
		} else {
			q.WriteString("> " + l + "\n")
		}
	}
	return convMsg{
		From: from, To: to.Msg.From.Addr,
		Subject:   "Re: " + to.Msg.Subject,
		MessageID: fmt.Sprintf("reply-%d.%s@mail.example", convSeq.Add(1), strings.ReplaceAll(convAddrOf(from), "@", ".")),
		InReplyTo: to.Msg.MessageID, References: append(slices.Clone(to.Msg.References), to.Msg.MessageID),
		Received: received, Body: q.String(),
	}
}

// staffReply is an authenticated staff member's reply to the forward.
func convStaffReply(fwd convMail, text string, received time.Time) convMsg {
	r := convReply(fwd, convStaff, text, received)
	r.To = convSupport
	r.Top = []string{convARPass}
	return r
}

// convStaffReplyHTML is convStaffReply as Gmail writes it: the text part
// and an HTML part whose quote is a blockquote holding the forward's HTML.
func convStaffReplyHTML(fwd convMail, text string, received time.Time) convMsg {
	r := convStaffReply(fwd, text, received)
	var h strings.Builder
	h.WriteString(`<div dir="ltr">`)
	for _, l := range strings.Split(text, "\n") {
		h.WriteString(html.EscapeString(l) + "<br>")
	}
	h.WriteString(`</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, 1 Dec 2026 at 09:01, ` +
		html.EscapeString(fwd.Msg.From.Addr) + ` wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">`)
	body := fwd.Msg.HTML
	if i := strings.Index(body, "<body"); i >= 0 {
		body = body[strings.IndexByte(body[i:], '>')+i+1:]
	}
	body, _, _ = strings.Cut(body, "</body>")
	h.WriteString(body)
	// The customer's own message follows the summary in the forward.
	cust := fwd.Msg.Text
	if i := strings.LastIndex(cust, "====="); i >= 0 {
		cust = cust[i:]
		cust = cust[strings.IndexByte(cust+"\n", '\n'):]
	}
	h.WriteString("<div>")
	for _, l := range strings.Split(strings.TrimSpace(cust), "\n") {
		h.WriteString(html.EscapeString(l) + "<br>")
	}
	h.WriteString("</div></blockquote></div>")
	r.HTML = h.String()
	return r
}

// convHTMLOf is the decoded text of every text/html part of raw.
func convHTMLOf(t *testing.T, raw []byte) string {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("read message: %v", err)
	}
	var b strings.Builder
	err = ent.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		if mt, _, _ := part.Header.ContentType(); mt != "text/html" {
			return nil
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return err
		}
		b.Write(body)
		return nil
	})
	if err != nil {
		t.Fatalf("walk message: %v", err)
	}
	return b.String()
}

// convAttachments returns the decoded bodies of the parts of raw that carry
// a file name, keyed by file name.
func convAttachments(t *testing.T, raw []byte) map[string][]byte {
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

// convTextOf is the decoded text of every text/plain part of raw.
func convTextOf(t *testing.T, raw []byte) string {
	t.Helper()
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("read message: %v", err)
	}
	var b strings.Builder
	err = ent.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			return err
		}
		if mt, _, _ := part.Header.ContentType(); mt != "text/plain" {
			return nil
		}
		if disp, _, _ := part.Header.ContentDisposition(); disp == "attachment" {
			return nil
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return err
		}
		b.WriteString(strings.ReplaceAll(string(body), "\r\n", "\n"))
		return nil
	})
	if err != nil {
		t.Fatalf("walk message: %v", err)
	}
	return b.String()
}

// convCustomer is a new message from an ACME user.
func convCustomer(id, subject, body string, received time.Time) convMsg {
	return convMsg{
		From: "Yossi Levi <yossi@acme.co.il>", To: "Northwind Support <" + convSupport + ">",
		Subject: subject, MessageID: id, Received: received, Body: body,
	}
}

// open delivers a new customer message and returns its ticket, the
// acknowledgement and the staff forward.
func (e *convEnv) open(m convMsg) (domain.Ticket, convMail, convMail) {
	e.t.Helper()
	e.deliver(m)
	e.settle()
	mails := e.take()
	o := e.outcome(m.MessageID)
	if !o.Created {
		e.t.Fatalf("%s: outcome %q, want a new ticket", m.MessageID, o.Action)
	}
	return e.ticket(o.Ticket.ID), convOne(e.t, mails, "ack"), convOne(e.t, mails, "fwd")
}

// convDelivery is mail a test participant sends into a gateway's INBOX.
type convDelivery struct {
	to  *convEnv
	raw []byte
	at  time.Time
}

// convExchange lets mail flow between gateways and the autoresponders that
// respond plays: each round it waits until every gateway is quiet, takes
// the mail each one sent, and delivers what respond answers to it. It stops
// at a stable end, when a round brings no new mail and none arrives for a
// further half second, and fails when that takes more than maxRounds. It
// returns every mail the gateways sent, per gateway.
func convExchange(t *testing.T, envs []*convEnv, maxRounds int, respond func(from *convEnv, m convMail) []convDelivery) map[*convEnv][]convMail {
	t.Helper()
	sent := map[*convEnv][]convMail{}
	for round := 0; ; round++ {
		if round > maxRounds {
			t.Fatalf("no stable end after %d rounds; sent %v", maxRounds, sent)
		}
		for _, e := range envs {
			e.settle()
		}
		var out []convDelivery
		for _, e := range envs {
			for _, m := range e.take() {
				sent[e] = append(sent[e], m)
				out = append(out, respond(e, m)...)
			}
		}
		if len(out) > 0 {
			for _, d := range out {
				d.to.deliverRaw(d.raw, d.at)
			}
			continue
		}
		// Nothing to answer: the exchange has ended unless more mail is
		// still coming.
		quietUntil := time.Now().Add(500 * time.Millisecond)
		more := false
		for time.Now().Before(quietUntil) && !more {
			time.Sleep(50 * time.Millisecond)
			for _, e := range envs {
				if ok, _ := e.quiet(); !ok || len(e.w.SMTP.Mail()) > e.takenCount() {
					more = true
				}
			}
		}
		if !more {
			return sent
		}
	}
}

func (e *convEnv) takenCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.taken
}
