package service_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"mime"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// TestConvFollowUpReplyPrefixes: a customer's reply whose subject carries
// the ticket tag after any mail client's reply or forward prefix (SPEC §2
// flow 2), without In-Reply-To or References, joins the ticket: a
// follow-up event threaded by the tag, a copy to the staff queue, and no
// second acknowledgement.
func TestConvFollowUpReplyPrefixes(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	tk, ack, _ := e.open(convCustomer("prefix-0@mail.acme.co.il", "Printer on floor 2 not working", "Hello,\nthe printer is broken.\nYossi\n", convAt(1, 8, 0)))

	prefixes := []string{"Re:", "RE:", "Fwd:", "AW:", "WG:", "SV:", "VS:", "TR:", "R:", "Antw:", "השב:", "תשובה:", "הועבר:", "RE: AW: Fwd:"}
	for i, p := range prefixes {
		t.Run(p, func(t *testing.T) {
			e.t = t
			// 30 minutes apart: the per-ticket cap on forwards (10 in 10
			// minutes) is not what this test is about.
			m := convMsg{
				From: "Yossi Levi <yossi@acme.co.il>", To: convSupport,
				Subject:   p + " " + ack.Msg.Subject,
				MessageID: fmt.Sprintf("prefix-%d@mail.acme.co.il", i+1),
				Received:  convAt(1, 8, 30).Add(time.Duration(i) * 30 * time.Minute),
				Body:      "Still broken, see the error on the display.\n",
			}
			e.deliver(m)
			e.settle()
			mails := e.take()
			o := e.outcome(m.MessageID)
			if o.Action != "follow-up" || o.Ticket.ID != tk.ID {
				t.Fatalf("outcome %q on %s, want follow-up on %s", o.Action, o.Ticket.ID, tk.ID)
			}
			ev := e.lastEvent(tk.ID)
			if ev.Kind != domain.EventFollowUp || ev.Data["thread"] != service.SignalTag || ev.MessageID != m.MessageID {
				t.Errorf("last event %+v, want a follow-up of %s threaded by tag", ev, m.MessageID)
			}
			fwd := convOne(t, mails, "fwd")
			if len(mails) != 1 {
				t.Errorf("sent %v, want only the staff copy (no second acknowledgement)", mails)
			}
			if !slices.Equal(fwd.To, []string{convQueue}) {
				t.Errorf("forward went to %v", fwd.To)
			}
			if id, _ := fwd.Msg.Header("X-Ticket-ID"); id != tk.ID {
				t.Errorf("forward X-Ticket-ID %q, want %s", id, tk.ID)
			}
			if !slices.Equal(fwd.Msg.InReplyTo, []string{m.MessageID}) {
				t.Errorf("forward In-Reply-To %v, want the follow-up's id", fwd.Msg.InReplyTo)
			}
		})
	}
	e.t = t
	if n := len(e.tickets("acme")); n != 1 {
		t.Errorf("%d tickets, want 1", n)
	}
}

// TestConvFollowUpThreading: a reply without the tag in its subject joins
// by In-Reply-To or References naming the customer's original message or
// our acknowledgement; a client that drops both headers but keeps the tag
// joins by the tag; a tag of another contract's ticket, or of a ticket that
// does not exist, opens a new ticket (with its acknowledgement).
func TestConvFollowUpThreading(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	orig := convCustomer("thread-0@mail.acme.co.il", "Question about licences", "How many Office licences do we have?\n", convAt(1, 9, 0))
	tk, ack, _ := e.open(orig)
	glx := convMsg{From: "Carol <carol@globex.example>", To: convSupport, Subject: "Question about invoices",
		MessageID: "glx-1@globex.example", Received: convAt(1, 9, 5), Body: "Where is the November invoice?\n"}
	gtk, _, _ := e.open(glx)

	cases := []struct {
		name       string
		subject    string
		inReplyTo  string
		references []string
		join       bool
		signal     string
	}{
		{name: "references-original", subject: "Re: Question about licences", references: []string{orig.MessageID}, join: true, signal: service.SignalReferences},
		{name: "in-reply-to-ack", subject: "Re: your message", inReplyTo: ack.Msg.MessageID, join: true, signal: service.SignalInReplyTo},
		{name: "references-ack", subject: "Antw: licences", references: []string{"unrelated@elsewhere.example", ack.Msg.MessageID}, join: true, signal: service.SignalReferences},
		{name: "tag-only", subject: "Re: " + ack.Msg.Subject, join: true, signal: service.SignalTag},
		{name: "tag-lower-case-unpadded", subject: "more about [acme-" + strings.TrimLeft(strings.TrimPrefix(tk.ID, "ACME-"), "0") + "]", join: true, signal: service.SignalTag},
		{name: "other-contract-tag", subject: "Re: [" + gtk.ID + "] Question about invoices"},
		{name: "nonexistent-tag", subject: "Re: [ACME-0999] Question about licences"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			m := convMsg{
				From: "Yossi Levi <yossi@acme.co.il>", To: convSupport, Subject: c.subject,
				MessageID: fmt.Sprintf("thread-%d@mail.acme.co.il", i+1), InReplyTo: c.inReplyTo, References: c.references,
				Received: convAt(1, 10, 0).Add(time.Duration(i) * 20 * time.Minute), Body: "One more thing.\n",
			}
			before := len(e.tickets("acme"))
			e.deliver(m)
			e.settle()
			mails := e.take()
			o := e.outcome(m.MessageID)
			if !c.join {
				if !o.Created || o.Ticket.ID == tk.ID || o.Ticket.ID == gtk.ID || o.Ticket.Contract != "acme" {
					t.Fatalf("outcome %q on %s (%s), want a new ACME ticket", o.Action, o.Ticket.ID, o.Ticket.Contract)
				}
				if n := len(e.tickets("acme")); n != before+1 {
					t.Errorf("%d ACME tickets, want %d", n, before+1)
				}
				a := convOne(t, mails, "ack")
				if !slices.Equal(a.To, []string{"yossi@acme.co.il"}) || !strings.Contains(a.Msg.Subject, "["+o.Ticket.ID+"]") {
					t.Errorf("ack to %v subject %q, want one for %s", a.To, a.Msg.Subject, o.Ticket.ID)
				}
				convOne(t, mails, "fwd")
				return
			}
			if o.Action != "follow-up" || o.Ticket.ID != tk.ID {
				t.Fatalf("outcome %q on %s, want follow-up on %s", o.Action, o.Ticket.ID, tk.ID)
			}
			if ev := e.lastEvent(tk.ID); ev.Kind != domain.EventFollowUp || ev.Data["thread"] != c.signal {
				t.Errorf("last event %+v, want a follow-up threaded by %s", ev, c.signal)
			}
			if len(mails) != 1 || mails[0].Kind() != "fwd" {
				t.Errorf("sent %v, want only the staff copy", mails)
			}
			if n := len(e.tickets("acme")); n != before {
				t.Errorf("%d ACME tickets, want %d", n, before)
			}
		})
	}
	e.t = t
	if g := e.ticket(gtk.ID); len(e.events(g.ID)) != 1 {
		t.Errorf("the Globex ticket changed: %+v", e.events(g.ID))
	}
}

// TestConvStaffReplyRelay: an authenticated staff reply to the forwarded
// ticket is relayed to the requester and to the colleague the customer
// copied (never to staff or the gateway's own addresses), from the support
// address with the staff member's name, the tag in the subject, threaded to
// the customer's original message, without the command lines and the
// quoted ticket summary, with its attachment byte for byte; the first
// response is recorded and the response timers cancelled.
func TestConvStaffReplyRelay(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	orig := convCustomer("vpn-1@mail.acme.co.il", "VPN", "I cannot log in to the VPN since this morning.\n", convAt(1, 9, 0))
	orig.Cc = "Rina Mizrahi <rina@acme.co.il>, Dana Cohen <dana@northwind-it.example>, " + convQueue
	tk, _, fwd := e.open(orig)
	if tk.Category != domain.Fault || tk.Priority != domain.High {
		t.Fatalf("ticket %s is %s/%s, want fault/high", tk.ID, tk.Category, tk.Priority)
	}
	if ts := e.timers("acme", tk.ID); len(ts) != 4 {
		t.Fatalf("timers before the response: %v, want 4", ts)
	}

	data := make([]byte, 3000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	at := convAt(1, 9, 40)
	r := convStaffReplyHTML(fwd, "#priority high\n\nHi Yossi,\nplease install the attached profile and try again.\n\nDana", at)
	r.Attach = &convFile{Name: "vpn-profile.bin", Type: "application/octet-stream", Data: data}
	for _, quoted := range []string{"#priority", "כדי לענות ללקוח", "הסכם שירות"} {
		if !strings.Contains(r.Body, quoted) || !strings.Contains(r.HTML, quoted) {
			t.Fatalf("the staff reply does not quote %q: the test would prove nothing", quoted)
		}
	}
	e.deliver(r)
	e.settle()
	mails := e.take()
	relay := convOne(t, mails, "relay")
	if len(mails) != 1 {
		t.Errorf("sent %v, want only the relay", mails)
	}

	if relay.From != convSupport {
		t.Errorf("envelope from %q, want the support address", relay.From)
	}
	if got := slices.Sorted(slices.Values(relay.To)); !slices.Equal(got, []string{"rina@acme.co.il", "yossi@acme.co.il"}) {
		t.Errorf("relayed to %v, want the requester and the copied colleague only", got)
	}
	h := relay.Msg
	if h.From.Addr != convSupport || !strings.Contains(h.From.Name, "Dana Cohen") {
		t.Errorf("From %+v, want the support address in the staff member's name", h.From)
	}
	if !strings.Contains(h.Subject, "["+tk.ID+"]") {
		t.Errorf("subject %q lacks the tag", h.Subject)
	}
	if !slices.Equal(h.InReplyTo, []string{orig.MessageID}) || !slices.Contains(h.References, orig.MessageID) {
		t.Errorf("In-Reply-To %v References %v, want the customer's %s", h.InReplyTo, h.References, orig.MessageID)
	}
	text := convTextOf(t, relay.Raw)
	if !strings.Contains(text, "please install the attached profile") {
		t.Errorf("relay text lacks the staff member's words:\n%s", text)
	}
	for _, bad := range []string{"#priority", "כדי לענות ללקוח", "-----", "=====", "הסכם שירות"} {
		if strings.Contains(text, bad) {
			t.Errorf("relay text shows %q:\n%s", bad, text)
		}
	}
	htm := convHTMLOf(t, relay.Raw)
	if !strings.Contains(htm, "please install the attached profile") || !strings.Contains(htm, "I cannot log in to the VPN") {
		t.Errorf("relay HTML lacks the staff member's words or the customer's quote:\n%s", htm)
	}
	for _, bad := range []string{"#priority", "כדי לענות ללקוח", "הסכם שירות"} {
		if strings.Contains(htm, bad) {
			t.Errorf("relay HTML shows %q:\n%s", bad, htm)
		}
	}
	if got := convAttachments(t, relay.Raw)["vpn-profile.bin"]; !bytes.Equal(got, data) {
		t.Errorf("attachment: %d bytes, want the %d sent, identical", len(got), len(data))
	}

	after := e.ticket(tk.ID)
	if !after.FirstResponse.Equal(at) {
		t.Errorf("first response %v, want %v", after.FirstResponse, at)
	}
	if slices.ContainsFunc(after.Cc, func(a domain.Address) bool { return a.Addr != "rina@acme.co.il" }) {
		t.Errorf("ticket copies %v, want only the customer's colleague", after.Cc)
	}
	ts := e.timers("acme", tk.ID)
	if _, ok := ts[store.ResponseBreach]; ok || len(ts) != 2 || !ts[store.ResolutionBreach].Equal(tk.ResolutionDue) {
		t.Errorf("timers after the response %v, want only the resolution's", ts)
	}
	if ev := e.lastEvent(tk.ID); ev.Kind != domain.EventResponse || ev.Data["thread"] != service.SignalTag || ev.Actor != "dana@northwind-it.example" {
		t.Errorf("last event %+v, want the response", ev)
	}
}

// convCmdCase is one staff command scenario: a customer opens a ticket, a
// staff member replies with commands, check looks at the result.
type convCmdCase struct {
	name    string
	subject string
	body    string
	before  func(c *convCmdRun) // staff or customer mail before the staff reply under test
	staff   string              // the staff reply's text (commands on top)
	check   func(c *convCmdRun)
}

// convCmdRun is the state of one convCmdCase.
type convCmdRun struct {
	t       *testing.T
	e       *convEnv
	orig    convMsg
	opened  domain.Ticket // as opened
	prev    domain.Ticket // just before the staff reply under test
	prevEvs int
	prevTs  map[string]time.Time
	fwd     convMail
	ack     convMail
	at      time.Time // INTERNALDATE of the staff reply under test
	tk      domain.Ticket
	mails   []convMail
}

// staff delivers a staff reply to the forward and waits.
func (c *convCmdRun) staff(text string, at time.Time) []convMail {
	c.e.deliver(convStaffReply(c.fwd, text, at))
	c.e.settle()
	return c.e.take()
}

// unchanged checks that nothing changed and only a command error went out.
func (c *convCmdRun) unchanged(wantProblem string) {
	t := c.t
	if !convSameTicket(c.prev, c.tk) {
		t.Errorf("ticket changed:\n before %+v\n after  %+v", c.prev, c.tk)
	}
	if n := len(c.e.events(c.tk.ID)); n != c.prevEvs {
		t.Errorf("%d events, want %d (unchanged)", n, c.prevEvs)
	}
	if ts := c.e.timers("acme", c.tk.ID); !convSameTimers(ts, c.prevTs) {
		t.Errorf("timers %v, want %v (unchanged)", ts, c.prevTs)
	}
	errMail := convOne(t, c.mails, "cmderr")
	if len(c.mails) != 1 {
		t.Errorf("sent %v, want only the error reply", c.mails)
	}
	if !slices.Equal(errMail.To, []string{"dana@northwind-it.example"}) {
		t.Errorf("error reply to %v, want the staff member", errMail.To)
	}
	if txt := convTextOf(t, errMail.Raw); !strings.Contains(txt, wantProblem) {
		t.Errorf("error reply does not mention %q:\n%s", wantProblem, txt)
	}
}

func convSameTicket(a, b domain.Ticket) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

func convSameTimers(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return true
}

// TestConvStaffCommands runs every command by mail (SPEC §2 flow 4) on
// its own ticket, with the staff member's client quoting the forward below
// the reply as clients do.
func TestConvStaffCommands(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	cal := e.cfg.ContractByID("acme").Calendar
	const fault, request, imac = "Printer on floor 2 not working", "Question about licences", "New employee"
	cases := []convCmdCase{{
		name: "resolve", subject: fault, staff: "#resolve\nHi Yossi, the printer works again.",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Status != domain.StatusResolved || !c.tk.Resolved.Equal(c.at) {
				t.Errorf("status %s resolved %v, want resolved at %v", c.tk.Status, c.tk.Resolved, c.at)
			}
			notice := convOne(t, c.mails, "resolved")
			if !slices.Equal(notice.To, []string{c.opened.Requester.Addr}) || !strings.Contains(notice.Msg.Subject, "["+c.tk.ID+"]") {
				t.Errorf("resolved notice to %v %q", notice.To, notice.Msg.Subject)
			}
			if auto, _ := notice.Msg.Header("Auto-Submitted"); auto != "auto-replied" {
				t.Errorf("resolved notice Auto-Submitted %q", auto)
			}
			relay := convOne(t, c.mails, "relay")
			if txt := convTextOf(t, relay.Raw); strings.Contains(txt, "#resolve") || !strings.Contains(txt, "works again") {
				t.Errorf("relay text:\n%s", txt)
			}
			if ts := c.e.timers("acme", c.tk.ID); len(ts) != 0 {
				t.Errorf("timers %v after #resolve, want none", ts)
			}
			if ev := c.e.lastEvent(c.tk.ID); ev.Kind != domain.EventResolved {
				t.Errorf("last event %+v", ev)
			}
		},
	}, {
		name: "close", subject: fault, staff: "#close",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Status != domain.StatusClosed {
				t.Errorf("status %s, want closed", c.tk.Status)
			}
			if len(c.mails) != 0 {
				t.Errorf("sent %v; #close is quiet", c.mails)
			}
			if ts := c.e.timers("acme", c.tk.ID); len(ts) != 0 {
				t.Errorf("timers %v after #close, want none", ts)
			}
			if !c.tk.FirstResponse.IsZero() {
				t.Errorf("a quiet #close recorded a first response")
			}
		},
	}, {
		name: "pending-then-customer-reply", subject: fault, staff: "#pending\nCould you send a photo of the printer's display?",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Status != domain.StatusPending || !c.tk.PausedAt.Equal(c.at) {
				t.Errorf("status %s paused at %v, want pending at %v", c.tk.Status, c.tk.PausedAt, c.at)
			}
			if ts := c.e.timers("acme", c.tk.ID); len(ts) != 0 {
				t.Errorf("timers %v while pending, want none", ts)
			}
			relay := convOne(t, c.mails, "relay")
			// The customer answers three business hours later.
			back := c.at.Add(3 * time.Hour)
			c.e.deliver(convReply(relay, "Yossi Levi <yossi@acme.co.il>", "Here it is: error E42.", back))
			c.e.settle()
			mails := c.e.take()
			convOne(t, mails, "fwd")
			if len(mails) != 1 {
				t.Errorf("the customer's answer sent %v, want only the staff copy", mails)
			}
			tk := c.e.ticket(c.tk.ID)
			wantDue := cal.AddBusiness(c.opened.ResolutionDue, 3*time.Hour)
			if tk.Status != domain.StatusOpen || !tk.PausedAt.IsZero() || tk.PausedBusiness != 3*time.Hour {
				t.Errorf("after the answer: status %s paused at %v paused %v, want open, 3h paused", tk.Status, tk.PausedAt, tk.PausedBusiness)
			}
			if !tk.ResolutionDue.Equal(wantDue) || !wantDue.Equal(convAt(2, 11, 0)) {
				t.Errorf("resolution due %v, want %v (17:00 moved on by 3 business hours)", tk.ResolutionDue, wantDue)
			}
			if !tk.ResponseDue.Equal(c.opened.ResponseDue) {
				t.Errorf("response due %v moved, but the response was given", tk.ResponseDue)
			}
			ts := c.e.timers("acme", c.tk.ID)
			if len(ts) != 2 || !ts[store.ResolutionBreach].Equal(wantDue) || !ts[store.ResolutionWarn].Equal(tk.ResolutionWarn) {
				t.Errorf("timers after the answer %v, want the moved resolution timers (due %v)", ts, wantDue)
			}
		},
	}, {
		name: "open-after-pending", subject: fault,
		before: func(c *convCmdRun) {
			if m := c.staff("#pending", convAt(1, 9, 30)); len(m) != 0 {
				c.t.Errorf("#pending alone sent %v", m)
			}
		},
		staff: "#open",
		check: func(c *convCmdRun) {
			t := c.t
			// Pending from 09:30 to 10:00: 30 business minutes.
			if c.tk.Status != domain.StatusOpen || !c.tk.PausedAt.IsZero() || c.tk.PausedBusiness != 30*time.Minute {
				t.Errorf("status %s paused at %v paused %v, want open after 30m paused", c.tk.Status, c.tk.PausedAt, c.tk.PausedBusiness)
			}
			if want := convAt(1, 10, 30); !c.tk.ResponseDue.Equal(want) {
				t.Errorf("response due %v, want %v", c.tk.ResponseDue, want)
			}
			if want := convAt(2, 8, 30); !c.tk.ResolutionDue.Equal(want) || !want.Equal(cal.AddBusiness(c.opened.ResolutionDue, 30*time.Minute)) {
				t.Errorf("resolution due %v, want %v", c.tk.ResolutionDue, want)
			}
			ts := c.e.timers("acme", c.tk.ID)
			if len(ts) != 4 || !ts[store.ResponseBreach].Equal(c.tk.ResponseDue) || !ts[store.ResolutionBreach].Equal(c.tk.ResolutionDue) {
				t.Errorf("timers %v, want all four at the moved deadlines", ts)
			}
			if len(c.mails) != 0 {
				t.Errorf("#open alone sent %v", c.mails)
			}
		},
	}, {
		name: "open-after-resolve", subject: fault,
		before: func(c *convCmdRun) { c.staff("#resolve\nFixed: a paper jam.", convAt(1, 9, 30)) },
		staff:  "#open",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Status != domain.StatusOpen || !c.tk.Resolved.IsZero() {
				t.Errorf("status %s resolved %v, want open", c.tk.Status, c.tk.Resolved)
			}
			// The response was given at 09:30; the resolution's timers run
			// again.
			want := map[string]time.Time{store.ResolutionWarn: c.opened.ResolutionWarn, store.ResolutionBreach: c.opened.ResolutionDue}
			if ts := c.e.timers("acme", c.tk.ID); !convSameTimers(ts, want) {
				t.Errorf("timers %v, want %v", ts, want)
			}
		},
	}, {
		name: "open-with-answer-after-pending", subject: fault,
		before: func(c *convCmdRun) { c.staff("#pending", convAt(1, 9, 30)) },
		staff:  "#open\nWe found the cause and are on it.",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Status != domain.StatusOpen || !c.tk.FirstResponse.Equal(c.at) {
				t.Errorf("status %s first response %v, want open, responded at %v", c.tk.Status, c.tk.FirstResponse, c.at)
			}
			ts := c.e.timers("acme", c.tk.ID)
			if _, ok := ts[store.ResponseBreach]; ok {
				t.Errorf("timers %v: a response timer is armed although the response was given", ts)
			}
			if len(ts) != 2 {
				t.Errorf("timers %v, want the resolution's", ts)
			}
			convOne(t, c.mails, "relay")
		},
	}, {
		name: "open-and-priority-after-pending", subject: fault,
		before: func(c *convCmdRun) { c.staff("#pending", convAt(1, 9, 10)) },
		staff:  "#open\n#priority urgent",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Status != domain.StatusOpen || c.tk.Priority != domain.Urgent {
				t.Errorf("status %s priority %s, want open and urgent", c.tk.Status, c.tk.Priority)
			}
			// Urgent: 30m response, 4h resolution from 09:00, moved on by
			// the 50 minutes paused (09:10 to 10:00).
			if !c.tk.ResponseDue.Equal(convAt(1, 10, 20)) || !c.tk.ResolutionDue.Equal(convAt(1, 13, 50)) {
				t.Errorf("due %v / %v, want 10:20 / 13:50", c.tk.ResponseDue, c.tk.ResolutionDue)
			}
			ts := c.e.timers("acme", c.tk.ID)
			if !ts[store.ResponseBreach].Equal(c.tk.ResponseDue) || !ts[store.ResolutionBreach].Equal(c.tk.ResolutionDue) {
				t.Errorf("timers %v, want them at the urgent deadlines", ts)
			}
		},
	}, {
		name: "priority-while-pending", subject: fault,
		before: func(c *convCmdRun) { c.staff("#pending", convAt(1, 9, 20)) },
		staff:  "#priority urgent",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Status != domain.StatusPending || c.tk.Priority != domain.Urgent {
				t.Errorf("status %s priority %s, want still pending, urgent", c.tk.Status, c.tk.Priority)
			}
			if ts := c.e.timers("acme", c.tk.ID); len(ts) != 0 {
				t.Errorf("timers %v armed while the ticket is pending", ts)
			}
			// The customer's answer resumes the urgent deadlines, moved on
			// by the 40 minutes paused (09:20 to the answer at 10:00).
			c.e.deliver(convReply(c.ack, c.opened.Requester.Addr, "Here is the photo.", convAt(1, 10, 0)))
			c.e.settle()
			c.e.take()
			tk := c.e.ticket(c.tk.ID)
			if tk.Status != domain.StatusOpen || !tk.ResponseDue.Equal(convAt(1, 10, 10)) || !tk.ResolutionDue.Equal(convAt(1, 13, 40)) {
				t.Errorf("after the answer: %s due %v / %v, want open, 10:10 / 13:40", tk.Status, tk.ResponseDue, tk.ResolutionDue)
			}
			if ts := c.e.timers("acme", c.tk.ID); len(ts) != 4 || !ts[store.ResolutionBreach].Equal(convAt(1, 13, 40)) || !ts[store.ResponseBreach].Equal(convAt(1, 10, 10)) {
				t.Errorf("timers after the answer %v", ts)
			}
		},
	}, {
		name: "note", subject: fault, staff: "#note called Yossi, the toner is on order\nSupplier says Thursday.",
		check: func(c *convCmdRun) {
			t := c.t
			if len(c.mails) != 0 {
				t.Errorf("#note sent %v", c.mails)
			}
			ev := c.e.lastEvent(c.tk.ID)
			if ev.Kind != domain.EventNote || !strings.Contains(ev.Data["note"], "toner is on order") || !strings.Contains(ev.Data["note"], "Supplier says Thursday") {
				t.Errorf("last event %+v, want the note", ev)
			}
			if c.tk.Status != domain.StatusOpen || !c.tk.FirstResponse.IsZero() {
				t.Errorf("status %s first response %v after a note", c.tk.Status, c.tk.FirstResponse)
			}
			if ts := c.e.timers("acme", c.tk.ID); !convSameTimers(ts, c.prevTs) {
				t.Errorf("timers %v, want them unchanged", ts)
			}
		},
	}, {
		name: "category-imac", subject: request, staff: "#category imac",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Category != domain.IMAC || c.tk.IMACDate != "2026-12-08" || c.tk.IMACQuota != 10 || c.tk.IMACQuotaUse != 1 {
				t.Errorf("ticket %s imac %s %d/%d, want imac on 2026-12-08 (1 of 10)", c.tk.Category, c.tk.IMACDate, c.tk.IMACQuotaUse, c.tk.IMACQuota)
			}
			if !c.tk.ResponseDue.IsZero() || !c.tk.ResolutionDue.IsZero() {
				t.Errorf("deadlines %v / %v: ACME's IMACs have no targets", c.tk.ResponseDue, c.tk.ResolutionDue)
			}
			if ts := c.e.timers("acme", c.tk.ID); len(ts) != 0 {
				t.Errorf("timers %v, want none", ts)
			}
			if len(c.mails) != 0 {
				t.Errorf("a command-only reply sent %v", c.mails)
			}
		},
	}, {
		name: "priority-urgent", subject: fault, staff: "#priority urgent",
		check: func(c *convCmdRun) {
			t := c.t
			if c.tk.Priority != domain.Urgent || !c.tk.ResponseDue.Equal(convAt(1, 9, 30)) || !c.tk.ResolutionDue.Equal(convAt(1, 13, 0)) {
				t.Errorf("priority %s due %v / %v, want urgent 09:30 / 13:00", c.tk.Priority, c.tk.ResponseDue, c.tk.ResolutionDue)
			}
			want := map[string]time.Time{
				store.ResponseWarn: convAt(1, 9, 24), store.ResponseBreach: convAt(1, 9, 30),
				store.ResolutionWarn: convAt(1, 12, 12), store.ResolutionBreach: convAt(1, 13, 0),
			}
			if ts := c.e.timers("acme", c.tk.ID); !convSameTimers(ts, want) {
				t.Errorf("timers %v, want %v", ts, want)
			}
		},
	}, {
		name: "schedule", subject: imac, body: "We have a new employee starting next week, please set up a PC.\n", staff: "#schedule 2026-12-15",
		check: func(c *convCmdRun) {
			t := c.t
			if c.opened.IMACDate != "2026-12-08" || c.tk.IMACDate != "2026-12-15" {
				t.Errorf("IMAC date %s then %s, want 2026-12-08 then 2026-12-15", c.opened.IMACDate, c.tk.IMACDate)
			}
			if ev := c.e.lastEvent(c.tk.ID); ev.Data["schedule"] != "2026-12-15" {
				t.Errorf("last event %+v", ev)
			}
		},
	}, {
		name: "change", subject: request, staff: "#change core switch replaced",
		check: func(c *convCmdRun) {
			t := c.t
			ev := c.e.lastEvent(c.tk.ID)
			if ev.Kind != domain.EventChanged || ev.Data["change"] != "core switch replaced" || !ev.At.Equal(c.at) {
				t.Errorf("last event %+v, want the dated change", ev)
			}
			if len(c.mails) != 0 {
				t.Errorf("#change sent %v", c.mails)
			}
		},
	}, {
		name: "unknown-command", subject: fault, staff: "#resolv\nAll done.",
		check: func(c *convCmdRun) { c.unchanged("#resolve") },
	}, {
		name: "invalid-argument", subject: fault, staff: "#priority hgh\nRaising this.",
		check: func(c *convCmdRun) { c.unchanged("hgh") },
	}, {
		name: "for-on-a-reply", subject: fault, staff: "#for moshe@acme.co.il",
		check: func(c *convCmdRun) { c.unchanged("#for") },
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			body := tc.body
			if body == "" {
				body = "Please help.\n"
			}
			orig := convCustomer(fmt.Sprintf("cmd-%d@mail.acme.co.il", i), tc.subject, body, convAt(1, 9, 0))
			orig.From = fmt.Sprintf("User %d <user%d@acme.co.il>", i, i)
			c := &convCmdRun{t: t, e: e, orig: orig}
			c.opened, c.ack, c.fwd = e.open(orig)
			if tc.before != nil {
				tc.before(c)
			}
			c.prev = e.ticket(c.opened.ID)
			c.prevEvs = len(e.events(c.opened.ID))
			c.prevTs = e.timers("acme", c.opened.ID)
			c.at = convAt(1, 10, 0)
			c.mails = c.staff(tc.staff, c.at)
			c.tk = e.ticket(c.opened.ID)
			tc.check(c)
		})
	}
}

// TestConvStaffForCustomer: a staff member's new message starting with
// #for opens a ticket for that customer, who gets the acknowledgement.
func TestConvStaffForCustomer(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	m := convMsg{
		From: convStaff, To: convSupport, Subject: "Phone call: printer jams",
		MessageID: "for-1@northwind-it.example", Received: convAt(1, 9, 0), Top: []string{convARPass},
		Body: "#for Moshe Peretz <moshe@acme.co.il>\nMoshe called: the printer on floor 3 jams on every page.\n",
	}
	e.deliver(m)
	e.settle()
	mails := e.take()
	o := e.outcome(m.MessageID)
	if !o.Created || o.Ticket.Contract != "acme" {
		t.Fatalf("outcome %q %s, want a new ACME ticket", o.Action, o.Ticket.ID)
	}
	tk := e.ticket(o.Ticket.ID)
	if tk.Requester.Addr != "moshe@acme.co.il" || tk.Requester.Name != "Moshe Peretz" {
		t.Errorf("requester %+v, want Moshe", tk.Requester)
	}
	ack := convOne(t, mails, "ack")
	if !slices.Equal(ack.To, []string{"moshe@acme.co.il"}) || !strings.Contains(ack.Msg.Subject, "["+tk.ID+"]") {
		t.Errorf("ack to %v %q, want Moshe's for %s", ack.To, ack.Msg.Subject, tk.ID)
	}
	fwd := convOne(t, mails, "fwd")
	if !slices.Equal(fwd.To, []string{convQueue}) {
		t.Errorf("forward to %v", fwd.To)
	}
	if len(mails) != 2 {
		t.Errorf("sent %v, want the ack and the staff copy", mails)
	}

	// Commands on a new message without #for name no ticket, and #for
	// names a customer, never staff or the gateway itself: errors.
	for i, body := range []string{"#resolve\nDone.\n", "#for " + convQueue + "\nCall back.\n", "#for dana@northwind-it.example\nCall back.\n"} {
		bad := m
		bad.MessageID, bad.Subject, bad.Body = fmt.Sprintf("for-bad-%d@northwind-it.example", i), "Printer", body
		bad.Received = convAt(1, 9, 30+i)
		e.deliver(bad)
		e.settle()
		mails = e.take()
		convOne(t, mails, "cmderr")
		if len(mails) != 1 || len(e.tickets("acme"))+len(e.tickets("")) != 1 {
			t.Errorf("%q: sent %v, %d tickets; want only an error reply", body, mails, len(e.tickets("acme"))+len(e.tickets("")))
		}
	}
}

// convMS365 is a Microsoft 365 style header: no authserv-id.
const convMS365 = "Authentication-Results: spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=northwind-it.example; dkim=pass (signature was verified) header.d=northwind-it.example;dmarc=pass action=none header.from=northwind-it.example;compauth=pass reason=100"

// TestConvUnauthenticatedStaff: staff mail without a trusted pass (SPEC
// §6) obeys nothing and relays nothing; it reaches the staff queue marked
// unauthenticated. A Microsoft 365 header has no authserv-id, so with
// trusted_authserv_id set it is not trusted (only our MX's header counts).
func TestConvUnauthenticatedStaff(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	cases := []struct {
		name string
		top  []string
	}{
		{name: "no-header"},
		{name: "dkim-fail", top: []string{"Authentication-Results: mx.northwind-it.example; dkim=fail (signature did not verify) header.d=northwind-it.example; spf=softfail smtp.mailfrom=northwind-it.example"}},
		{name: "pass-below-failing-top", top: []string{
			"Authentication-Results: mx.northwind-it.example; dkim=none; spf=fail smtp.mailfrom=northwind-it.example; dmarc=fail header.from=northwind-it.example",
			convARPass,
		}},
		{name: "other-server-pass", top: []string{"Authentication-Results: mx.attacker.example; dkim=pass header.d=northwind-it.example; dmarc=pass header.from=northwind-it.example"}},
		{name: "microsoft-365-without-authserv-id", top: []string{convMS365}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			orig := convCustomer(fmt.Sprintf("forged-%d@mail.acme.co.il", i), "Printer on floor 2 not working", "Broken.\n", convAt(1, 9, 0))
			orig.From = fmt.Sprintf("<user%d@acme.co.il>", i)
			tk, _, fwd := e.open(orig)
			prevEvs := len(e.events(tk.ID))
			forged := convStaffReply(fwd, "#resolve\n#priority low\nFixed, nothing to worry about. Please send your password to reset@evil.example.", convAt(1, 10, 0))
			forged.Top = c.top
			e.deliver(forged)
			e.settle()
			mails := e.take()
			if o := e.outcome(forged.MessageID); o.Action != "unauthenticated" {
				t.Errorf("outcome %q, want unauthenticated", o.Action)
			}
			after := e.ticket(tk.ID)
			if after.Status != domain.StatusOpen || after.Priority != tk.Priority || !after.FirstResponse.IsZero() {
				t.Errorf("ticket changed: status %s priority %s first response %v", after.Status, after.Priority, after.FirstResponse)
			}
			fwdU := convOne(t, mails, "fwd")
			if len(mails) != 1 || !slices.Equal(fwdU.To, []string{convQueue}) {
				t.Fatalf("sent %v, want only the marked copy to the staff queue", mails)
			}
			// Marked in the subject, with the reason (naming the
			// Authentication-Results found or missing) in the summary.
			if !strings.Contains(fwdU.Msg.Subject, "לא מאומת") || !strings.Contains(convTextOf(t, fwdU.Raw), "Authentication-Results") {
				t.Errorf("staff copy not marked unauthenticated: %q\n%s", fwdU.Msg.Subject, convTextOf(t, fwdU.Raw))
			}
			evs := e.events(tk.ID)
			if len(evs) != prevEvs+1 || evs[len(evs)-1].Data["unauthenticated"] == "" {
				t.Errorf("events %+v, want one note of the unauthenticated mail", evs[prevEvs:])
			}
			if ts := e.timers("acme", tk.ID); len(ts) != 4 {
				t.Errorf("timers %v, want all four still armed", ts)
			}
		})
	}
}

// TestConvUnauthenticatedFor: a forged staff message that names no ticket
// (a "#for" opening a ticket on someone's behalf) opens nothing and reaches
// the staff queue marked unauthenticated; the mailbox does not get stuck on
// it.
func TestConvUnauthenticatedFor(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	m := convMsg{
		From: convStaff, To: convSupport, Subject: "Phone call",
		MessageID: "forged-for@attacker.example", Received: convAt(1, 9, 0),
		Body: "#for victim@acme.co.il\nPlease reset your password at http://evil.example.\n",
	}
	e.deliver(m)
	e.settle()
	mails := e.take()
	fwd := convOne(t, mails, "fwd")
	if len(mails) != 1 || !slices.Equal(fwd.To, []string{convQueue}) || !strings.Contains(fwd.Msg.Subject, "UNAUTHENTICATED") {
		t.Errorf("sent %v, want one copy to the staff queue marked unauthenticated", mails)
	}
	if n := len(e.tickets("acme")); n != 0 {
		t.Errorf("%d tickets opened by a forged #for", n)
	}
	if o := e.outcome(m.MessageID); o.Action != "unauthenticated" {
		t.Errorf("outcome %q", o.Action)
	}
}

// TestConvMicrosoft365Trusted: with trusted_authserv_id empty the topmost
// header counts whatever its authserv-id, so Microsoft 365's header (which
// has none) is trusted: the reply is relayed and its commands obeyed.
func TestConvMicrosoft365Trusted(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{configure: func(c *rules.Config) { c.Staff.TrustedAuthservID = "" }})
	tk, _, fwd := e.open(convCustomer("m365-1@mail.acme.co.il", "Printer on floor 2 not working", "Broken.\n", convAt(1, 9, 0)))
	r := convStaffReply(fwd, "#resolve\nThe printer works again.", convAt(1, 10, 0))
	r.Top = []string{convMS365}
	e.deliver(r)
	e.settle()
	mails := e.take()
	convOne(t, mails, "relay")
	convOne(t, mails, "resolved")
	if after := e.ticket(tk.ID); after.Status != domain.StatusResolved {
		t.Errorf("status %s, want resolved", after.Status)
	}
	// A forged pass below a failing top header is still refused.
	tk2, _, fwd2 := e.open(convCustomer("m365-2@mail.acme.co.il", "Printer on floor 3 not working", "Broken.\n", convAt(1, 9, 30)))
	f := convStaffReply(fwd2, "#resolve\nDone.", convAt(1, 10, 30))
	f.Top = []string{"Authentication-Results: spf=fail smtp.mailfrom=northwind-it.example; dkim=none; dmarc=fail header.from=northwind-it.example", convARPass}
	e.deliver(f)
	e.settle()
	if mails := e.take(); len(mails) != 1 || mails[0].Kind() != "fwd" || e.ticket(tk2.ID).Status != domain.StatusOpen {
		t.Errorf("forged pass below a failing top header: sent %v, status %s", mails, e.ticket(tk2.ID).Status)
	}
}

// TestConvReopen: a customer reply within the reopen window reopens a
// resolved ticket (same ticket, no acknowledgement); after the window, or
// after #close, it opens a new ticket that refers to the old one and is
// acknowledged.
func TestConvReopen(t *testing.T) {
	ctx := convContext(t)
	e := newConvEnv(t, ctx, convSetup{})
	finish := func(t *testing.T, n int, cmd string) (domain.Ticket, convMail) {
		t.Helper()
		e.t = t
		orig := convCustomer(fmt.Sprintf("reopen-%d@mail.acme.co.il", n), fmt.Sprintf("Printer %d not working", n), "Broken.\n", convAt(1, 9, 0))
		orig.From = fmt.Sprintf("<reopen%d@acme.co.il>", n)
		tk, ack, fwd := e.open(orig)
		e.deliver(convStaffReply(fwd, cmd+"\nFixed: a paper jam.", convAt(1, 11, 0)))
		e.settle()
		mails := e.take()
		if st := e.ticket(tk.ID).Status; cmd == "#resolve" && st != domain.StatusResolved || cmd == "#close" && st != domain.StatusClosed {
			t.Fatalf("status %s after %s", st, cmd)
		}
		if cmd == "#resolve" {
			return tk, convOne(t, mails, "resolved")
		}
		return tk, ack
	}
	reply := func(t *testing.T, to convMail, at time.Time) (convMsg, []convMail) {
		t.Helper()
		e.t = t
		r := convReply(to, to.To[0], "It is broken again.", at)
		e.deliver(r)
		e.settle()
		return r, e.take()
	}

	t.Run("within-window", func(t *testing.T) {
		tk, notice := finish(t, 1, "#resolve")
		r, mails := reply(t, notice, convAt(3, 11, 0))
		o := e.outcome(r.MessageID)
		after := e.ticket(tk.ID)
		if o.Ticket.ID != tk.ID || after.Status != domain.StatusOpen || !after.Resolved.IsZero() {
			t.Errorf("outcome %q on %s, status %s, want %s reopened", o.Action, o.Ticket.ID, after.Status, tk.ID)
		}
		if ev := e.lastEvent(tk.ID); ev.Kind != domain.EventReopened {
			t.Errorf("last event %+v, want reopened", ev)
		}
		fwd := convOne(t, mails, "fwd")
		if len(mails) != 1 || !strings.Contains(fwd.Msg.Subject, "נפתחה מחדש") {
			t.Errorf("sent %v, want only a 'reopened' staff copy", mails)
		}
	})
	t.Run("rearms-timers", func(t *testing.T) {
		// Resolved at 11:00 and reopened at 12:00, before the resolution
		// deadline (17:00): its timers run again. The response was given
		// with the resolution, so its timers stay off.
		tk, notice := finish(t, 4, "#resolve")
		if ts := e.timers("acme", tk.ID); len(ts) != 0 {
			t.Fatalf("timers %v after #resolve", ts)
		}
		reply(t, notice, convAt(1, 12, 0))
		want := map[string]time.Time{store.ResolutionWarn: tk.ResolutionWarn, store.ResolutionBreach: tk.ResolutionDue}
		if ts := e.timers("acme", tk.ID); e.ticket(tk.ID).Status != domain.StatusOpen || !convSameTimers(ts, want) {
			t.Errorf("after reopening: status %s, timers %v, want open with %v", e.ticket(tk.ID).Status, ts, want)
		}
	})
	t.Run("after-window", func(t *testing.T) {
		tk, notice := finish(t, 2, "#resolve")
		r, mails := reply(t, notice, convAt(9, 11, 30))
		o := e.outcome(r.MessageID)
		if !o.Created || o.Ticket.ID == tk.ID {
			t.Fatalf("outcome %q on %s, want a new ticket", o.Action, o.Ticket.ID)
		}
		if nt := e.ticket(o.Ticket.ID); nt.RefersTo != tk.ID {
			t.Errorf("new ticket refers to %q, want %s", nt.RefersTo, tk.ID)
		}
		if ack := convOne(t, mails, "ack"); !strings.Contains(ack.Msg.Subject, "["+o.Ticket.ID+"]") {
			t.Errorf("ack %q, want the new ticket's", ack.Msg.Subject)
		}
		if old := e.ticket(tk.ID); old.Status != domain.StatusResolved {
			t.Errorf("old ticket %s, want it left resolved", old.Status)
		}
	})
	t.Run("after-close", func(t *testing.T) {
		tk, ack := finish(t, 3, "#close")
		r, mails := reply(t, ack, convAt(1, 12, 0))
		o := e.outcome(r.MessageID)
		if !o.Created || o.Ticket.ID == tk.ID || e.ticket(o.Ticket.ID).RefersTo != tk.ID {
			t.Fatalf("outcome %q on %s, want a new ticket referring to %s", o.Action, o.Ticket.ID, tk.ID)
		}
		convOne(t, mails, "ack")
		if old := e.ticket(tk.ID); old.Status != domain.StatusClosed {
			t.Errorf("old ticket %s, want it left closed", old.Status)
		}
	})
}

// convClockSteps hands out INTERNALDATEs a fixed step apart.
type convClockSteps struct {
	next time.Time
	step time.Duration
}

func (c *convClockSteps) tick() time.Time {
	c.next = c.next.Add(c.step)
	return c.next
}

// TestConvLoopAutoresponder: an autoresponder that ignores Auto-Submitted
// answers every mail it gets with a human-looking reply quoting our subject.
// Whatever it keeps of the thread, the exchange reaches a stable end within
// the caps: at most 5 acknowledgements to it an hour, and at most 10 staff
// copies per ticket in 10 minutes when a staff member's equally broken
// out-of-office answers the queue.
func TestConvLoopAutoresponder(t *testing.T) {
	const robot = "robot@acme.co.il"
	cases := []struct {
		name      string
		from      string // the autoresponder's address
		subject   func(ours string) string
		threaded  bool // sets In-Reply-To and References
		staffOOO  bool // the staff queue is answered by an out-of-office
		acks      int  // acknowledgements (and notices) to the autoresponder
		tickets   int  // tickets opened
		maxRounds int
	}{
		{name: "quotes-tagged-subject", from: robot, subject: func(s string) string { return "Re: " + s }, acks: 1, tickets: 1, maxRounds: 4},
		{name: "threaded-untagged", from: robot, subject: func(string) string { return "Thank you for your message" }, threaded: true, acks: 1, tickets: 1, maxRounds: 4},
		{name: "unthreaded-untagged", from: robot, subject: func(string) string { return "Thank you for your message" }, acks: 5, tickets: 6, maxRounds: 10},
		{name: "unknown-sender-unthreaded", from: "robot@unknown.example", subject: func(string) string { return "Thank you for your message" }, acks: 1, tickets: 0, maxRounds: 4},
		{name: "unknown-sender-threaded", from: "robot@unknown.example", subject: func(s string) string { return "Re: " + s }, threaded: true, acks: 1, tickets: 0, maxRounds: 4},
		{name: "staff-out-of-office", from: robot, subject: func(s string) string { return "Re: " + s }, threaded: true, staffOOO: true, acks: 1, tickets: 1, maxRounds: 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := convContext(t)
			e := newConvEnv(t, ctx, convSetup{})
			clock := &convClockSteps{next: convAt(1, 9, 0), step: 20 * time.Second}
			var seq int
			reply := func(m convMail, from, body string, top []string) convDelivery {
				seq++
				r := convMsg{From: from, To: convSupport, Subject: c.subject(m.Msg.Subject),
					MessageID: fmt.Sprintf("auto-%d@responder.example", seq), Received: clock.tick(), Top: top, Body: body}
				if c.threaded {
					r.InReplyTo, r.References = m.Msg.MessageID, append(slices.Clone(m.Msg.References), m.Msg.MessageID)
				}
				return convDelivery{to: e, raw: r.raw(), at: r.Received}
			}
			first := convMsg{From: c.from, To: convSupport, Subject: "Printer on floor 2 not working",
				MessageID: "loop-0@responder.example", Received: clock.tick(), Body: "The printer is broken.\n"}
			e.deliver(first)
			sent := convExchange(t, []*convEnv{e}, c.maxRounds, func(_ *convEnv, m convMail) []convDelivery {
				var out []convDelivery
				if slices.Contains(m.To, c.from) {
					out = append(out, reply(m, c.from, "Thank you for your message. We will answer as soon as possible.\n", nil))
				}
				if c.staffOOO && slices.Contains(m.To, convQueue) {
					out = append(out, reply(m, convStaff, "I am out of the office until Monday.\n", []string{convARPass}))
				}
				return out
			})[e]

			toRobot, fwds := 0, map[string]int{}
			for _, m := range sent {
				if slices.Contains(m.To, c.from) && (m.Kind() == "ack" || m.Kind() == "notice") {
					toRobot++
				}
				if m.Kind() == "fwd" {
					id, _ := m.Msg.Header("X-Ticket-ID")
					fwds[id]++
				}
			}
			t.Logf("%d mails sent in all, %d acknowledgements or notices to the autoresponder, forwards per ticket %v", len(sent), toRobot, fwds)
			if toRobot != c.acks {
				t.Errorf("%d acknowledgements or notices to the autoresponder, want %d", toRobot, c.acks)
			}
			if n := len(e.tickets("acme")); n != c.tickets {
				t.Errorf("%d tickets, want %d", n, c.tickets)
			}
			for id, n := range fwds {
				// All within 10 minutes of INTERNALDATE: the new ticket's
				// copy and at most 10 follow-up copies.
				if n > 11 {
					t.Errorf("%d staff copies for %s, want at most 11", n, id)
				}
			}
			if c.staffOOO {
				// Every staff copy drew an out-of-office, relayed to the
				// autoresponder, whose answer drew the next copy, until the
				// cap of 10 follow-up copies in 10 minutes ended it.
				if relays := len(convOfKind(sent, "relay")); relays != 11 || fwds["ACME-0001"] != 11 {
					t.Errorf("%d out-of-office relays and %d staff copies, want 11 and 11", relays, fwds["ACME-0001"])
				}
			}
		})
	}
}

// convRelayStrip is what a forwarding system between two gateways does to
// mail: headers removed (none when names is empty), tags removed from the
// subject when dropTags.
func convRelayStrip(t *testing.T, raw []byte, names []string, dropTags bool) []byte {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(raw))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatalf("read header: %v", err)
	}
	for _, n := range names {
		h.Del(n)
	}
	if dropTags {
		subj, err := (&mime.WordDecoder{}).DecodeHeader(h.Get("Subject"))
		if err != nil {
			t.Fatalf("decode subject: %v", err)
		}
		subj = convTagRE.ReplaceAllString(subj, "")
		h.Set("Subject", mime.QEncoding.Encode("utf-8", strings.TrimSpace(subj)))
	}
	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, h); err != nil {
		t.Fatalf("write header: %v", err)
	}
	if _, err := io.Copy(&b, br); err != nil {
		t.Fatalf("copy body: %v", err)
	}
	return b.Bytes()
}

var convTagRE = regexp.MustCompile(`\[[A-Za-z0-9]+-[0-9]+\]`)

// TestConvLoopTwoGateways: two gateways whose support addresses write to
// each other (each is the other's customer) reach a stable end, also when a
// forwarding system between them strips the automatic-mail headers and the
// loop marker, and even when it strips the threading headers and the tags
// too: then only the per-sender acknowledgement limit (5 an hour) ends it.
func TestConvLoopTwoGateways(t *testing.T) {
	const (
		addrA = convSupport
		addrB = "support@southwind.example"
	)
	auto := []string{"Auto-Submitted", "X-Auto-Response-Suppress", "Precedence", domain.LoopHeader}
	cases := []struct {
		name             string
		strip            []string
		dropTags         bool
		acksAB, acksBA   int // acknowledgements A sent to B, B to A
		ticketA, ticketB int
	}{
		{name: "headers-intact", acksAB: 1, ticketA: 1},
		{name: "auto-headers-stripped", strip: auto, acksAB: 1, acksBA: 1, ticketA: 1, ticketB: 1},
		{name: "everything-stripped", strip: append(slices.Clone(auto), "In-Reply-To", "References"), dropTags: true,
			acksAB: 5, acksBA: 5, ticketA: 6, ticketB: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := convContext(t)
			a := newConvEnv(t, ctx, convSetup{name: "A", configure: func(cfg *rules.Config) {
				// Southwind is one of Northwind's customers, under Globex's terms.
				g := cfg.ContractByID("globex")
				g.Domains = append(g.Domains, "southwind.example")
			}})
			b := newConvEnv(t, ctx, convSetup{name: "B", configure: func(cfg *rules.Config) {
				cfg.Service.Name, cfg.Service.Address = "Southwind Help", addrB
				cfg.Mailboxes[0].Address = addrB
				cfg.Staff.Addresses = []string{"*@southwind.example"}
				cfg.Staff.Queue, cfg.Staff.Escalation = "helpdesk@southwind.example", "noc@southwind.example"
				cfg.Staff.TrustedAuthservID = "mx.southwind.example"
				// ... and Northwind is one of Southwind's.
				nw := cfg.ContractByID("acme")
				nw.ID, nw.Name, nw.Prefix, nw.Language = "northwind", "Northwind IT", "NW", "en"
				nw.Domains, nw.Addresses = []string{"northwind-it.example"}, nil
			}})
			clock := &convClockSteps{next: convAt(1, 9, 0), step: 20 * time.Second}
			a.deliver(convMsg{From: "Southwind Help <" + addrB + ">", To: addrA, Subject: "Our invoice portal is down",
				MessageID: "start@southwind.example", Received: clock.tick(), Body: "Since this morning the portal answers 502.\n"})
			sent := convExchange(t, []*convEnv{a, b}, 30, func(from *convEnv, m convMail) []convDelivery {
				to, addr := b, addrB
				if from == b {
					to, addr = a, addrA
				}
				if !slices.Contains(m.To, addr) {
					return nil
				}
				return []convDelivery{{to: to, raw: convRelayStrip(t, m.Raw, c.strip, c.dropTags), at: clock.tick()}}
			})
			count := func(ms []convMail, to string) int {
				n := 0
				for _, m := range ms {
					if slices.Contains(m.To, to) {
						n++
					}
				}
				return n
			}
			ab, ba := count(sent[a], addrB), count(sent[b], addrA)
			t.Logf("A sent %d mails (%d to B), B sent %d (%d to A)", len(sent[a]), ab, len(sent[b]), ba)
			if ab != c.acksAB || ba != c.acksBA {
				t.Errorf("A sent B %d mails and B sent A %d, want %d and %d", ab, ba, c.acksAB, c.acksBA)
			}
			if n, m := len(a.tickets("globex")), len(b.tickets("northwind")); n != c.ticketA || m != c.ticketB {
				t.Errorf("%d tickets at A and %d at B, want %d and %d", n, m, c.ticketA, c.ticketB)
			}
			for _, m := range append(slices.Clone(sent[a]), sent[b]...) {
				if k := m.Kind(); k != "ack" && k != "fwd" {
					t.Errorf("unexpected %s", m)
				}
			}
		})
	}
}

// convFaults fails each message once, at the step of the pipeline chosen
// for it, as a crash there would.
type convFaults struct {
	mu     sync.Mutex
	stepOf map[string]string // Message-ID -> step
	fired  map[string]int    // step -> faults injected
	done   map[string]bool   // Message-ID -> failed once
}

func newConvFaults() *convFaults {
	return &convFaults{stepOf: map[string]string{}, fired: map[string]int{}, done: map[string]bool{}}
}

// failAt makes the message fail once at step.
func (f *convFaults) failAt(messageID, step string) {
	f.mu.Lock()
	f.stepOf[messageID] = step
	f.mu.Unlock()
}

func (f *convFaults) hook(step string, m *domain.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stepOf[m.MessageID] != step || f.done[m.MessageID] {
		return nil
	}
	f.done[m.MessageID] = true
	f.fired[step]++
	return fmt.Errorf("injected crash at %s", step)
}

func (f *convFaults) firedAt() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.fired)
}

// convCustomers returns n new customer messages from distinct ACME users.
func convCustomers(n int, tag string) []convMsg {
	var out []convMsg
	for i := range n {
		m := convCustomer(fmt.Sprintf("%s-%02d@mail.acme.co.il", tag, i), fmt.Sprintf("Printer %d not working", i), "Broken.\n", convAt(1, 9, 0).Add(time.Duration(i)*time.Minute))
		m.From = fmt.Sprintf("User %d <%s%02d@acme.co.il>", i, tag, i)
		out = append(out, m)
	}
	return out
}

// TestConvCrashNewTickets: a failure (a crash) at any step of storing a new
// message leaves it in the INBOX; the retry makes exactly one ticket, one
// acknowledgement and one staff copy per message, and loses nothing queued.
// Ten messages fail at each step.
func TestConvCrashNewTickets(t *testing.T) {
	steps := []string{"after-create", "before-enqueue", "after-enqueue", "before-mark"}
	f := newConvFaults()
	e := newConvEnv(t, convContext(t), convSetup{pipeline: func(p *service.Pipeline) { p.FaultHook = f.hook }})
	msgs := convCustomers(10*len(steps), "crash")
	for i, m := range msgs {
		f.failAt(m.MessageID, steps[i%len(steps)])
	}
	for _, m := range msgs {
		e.deliver(m)
	}
	e.settle()
	want := map[string]int{}
	for _, s := range steps {
		want[s] = 10
	}
	if got := f.firedAt(); !maps.Equal(got, want) {
		t.Errorf("faults injected %v, want %v", got, want)
	}
	mails := e.take()
	acks, fwds := map[string]int{}, map[string]int{}
	for _, m := range mails {
		switch m.Kind() {
		case "ack":
			acks[m.Msg.InReplyTo[0]]++
		case "fwd":
			fwds[m.Msg.InReplyTo[0]]++
		default:
			t.Errorf("unexpected %s", m)
		}
	}
	byMsg := map[string]int{}
	for _, tk := range e.tickets("acme") {
		byMsg[tk.MessageID]++
	}
	for i, m := range msgs {
		if acks[m.MessageID] != 1 || fwds[m.MessageID] != 1 || byMsg[m.MessageID] != 1 {
			t.Errorf("%s (failed %s): %d tickets, %d acknowledgements, %d staff copies; want one each",
				m.MessageID, steps[i%len(steps)], byMsg[m.MessageID], acks[m.MessageID], fwds[m.MessageID])
		}
	}
	if len(mails) != 2*len(msgs) || len(byMsg) != len(msgs) {
		t.Errorf("%d mails and %d tickets, want %d and %d", len(mails), len(byMsg), 2*len(msgs), len(msgs))
	}
}

// TestConvCrashConversation: the same for customer follow-ups and staff
// replies: after a failure at any step and the retry, each follow-up made
// one event and one staff copy, each "#resolve" reply one relay and one
// resolved notice, and no change was applied twice. Three follow-ups and
// three staff replies fail at each step.
func TestConvCrashConversation(t *testing.T) {
	steps := []string{"after-update", "before-enqueue", "after-enqueue", "before-mark"}
	f := newConvFaults()
	e := newConvEnv(t, convContext(t), convSetup{pipeline: func(p *service.Pipeline) { p.FaultHook = f.hook }})
	msgs := convCustomers(6*len(steps), "conv")
	for _, m := range msgs {
		e.deliver(m)
	}
	e.settle()
	fwdOf := map[string]convMail{}
	for _, m := range convOfKind(e.take(), "fwd") {
		fwdOf[m.Msg.InReplyTo[0]] = m
	}
	ticketOf := map[string]string{}
	for _, tk := range e.tickets("acme") {
		ticketOf[tk.MessageID] = tk.ID
	}

	followUps, replies := 0, 0
	for i, m := range msgs {
		var next convMsg
		if i%2 == 0 {
			next = convMsg{From: m.From, To: convSupport, Subject: "Re: [" + ticketOf[m.MessageID] + "] " + m.Subject,
				MessageID: "fu-" + m.MessageID, Received: convAt(1, 11, 0), Body: "Still broken.\n"}
			followUps++
		} else {
			next = convStaffReply(fwdOf[m.MessageID], "#resolve\nFixed: a paper jam.", convAt(1, 11, 0))
			replies++
		}
		f.failAt(next.MessageID, steps[i/2%len(steps)])
		e.deliver(next)
	}
	e.settle()
	want := map[string]int{}
	for _, s := range steps {
		want[s] = 6
	}
	if got := f.firedAt(); !maps.Equal(got, want) {
		t.Errorf("faults injected %v, want %v", got, want)
	}
	mails := e.take()
	kinds := map[string]map[string]int{} // ticket -> kind -> count
	for _, m := range mails {
		id, _ := m.Msg.Header("X-Ticket-ID")
		if kinds[id] == nil {
			kinds[id] = map[string]int{}
		}
		kinds[id][m.Kind()]++
	}
	for i, m := range msgs {
		id := ticketOf[m.MessageID]
		step := steps[i/2%len(steps)]
		tk, evs := e.ticket(id), e.events(id)
		if i%2 == 0 {
			if tk.Status != domain.StatusOpen || len(evs) != 2 || evs[1].Kind != domain.EventFollowUp || !maps.Equal(kinds[id], map[string]int{"fwd": 1}) {
				t.Errorf("%s after a follow-up failed %s: status %s, %d events, mails %v; want open, opened + follow-up, one staff copy",
					id, step, tk.Status, len(evs), kinds[id])
			}
			continue
		}
		if tk.Status != domain.StatusResolved || len(evs) != 2 || evs[1].Kind != domain.EventResolved || !maps.Equal(kinds[id], map[string]int{"relay": 1, "resolved": 1}) {
			t.Errorf("%s after #resolve failed %s: status %s, %d events, mails %v; want resolved, opened + resolved, one relay and one notice",
				id, step, tk.Status, len(evs), kinds[id])
		}
		if ts := e.timers("acme", id); len(ts) != 0 {
			t.Errorf("%s: timers %v after #resolve", id, ts)
		}
	}
	if len(mails) != followUps+2*replies {
		t.Errorf("%d mails, want %d", len(mails), followUps+2*replies)
	}
}
