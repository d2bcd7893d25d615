package service_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/service"
)

// e2eSampleWant is what one sample mail must lead to.
type e2eSampleWant struct {
	ticket    string // "" when the mail makes no ticket
	contract  string
	category  domain.Category
	priority  domain.Priority
	requester string
	cc        []string
	lang      string
	// subject and text fragments the acknowledgement must contain.
	ackSubject []string
	ackText    []string
	// promised instants (zero: none), and the IMAC day.
	responseDue, resolutionDue, responseWarn, resolutionWarn time.Time
	imacDate                                                 string
	imacUsed, imacQuota                                      int
	attachments                                              []string
}

// The expected dates, worked out by hand from SPEC §3a and
// examples/gateway.yaml. INTERNALDATE (when the mail server received the
// message) is set on delivery to 20 s after each sample's Date header, as a
// real server's would be; the SLA clock starts there, so every deadline
// below carries those seconds (the acknowledgement shows minutes only).
//
// ACME (calendar israel-office, Asia/Jerusalem, UTC+2 in Nov/Dec; Sun–Thu
// 08:00–17:00 except Monday 08:00–12:00 and 13:00–17:00, Fri 08:00–12:00):
//
//   - IMAC "New employee starting today", received Sun 29 Nov 09:00:20, a
//     business day and open: effective start 09:00:20. Category imac (rule
//     onboarding: "new employee"), priority normal (unset). The contract has
//     no imac targets, so no deadlines and no timers. Notice 2d: the 2nd
//     business day after Sun 29 Nov is Tue 1 Dec (Mon 30 is the 1st), at
//     09:00:20. Service day Tuesday: Tue 1 Dec opens at 08:00, before the
//     notice end, so the first service day whose opening is at or after it
//     is Tue 8 Dec 2026; the first IMAC of December: 1 of 10.
//   - Fault "האינטרנט לא עובד במשרד" (windows-1255), received Mon 30 Nov
//     09:30:32: rule outage (text "לא עובד"), fault/high, targets 1h/8h.
//     Response: 09:30:32 + 60 business minutes = Mon 10:30:32 (SPEC §7's
//     "יום שני, 30 בנובמבר 2026, 10:30"). Resolution: 8 business hours:
//     Monday gives 09:30:32–12:00 (2h29m28s) and 13:00–17:00 (4h) = 6h29m28s;
//     the remaining 1h30m32s from Tue 08:00 end Tue 1 Dec 09:30:32 ("יום
//     שלישי, 1 בדצמבר 2026, 09:30"). Warnings at 80 %: response 48 min →
//     Mon 10:18:32; resolution 6h24m → 2h29m28s before lunch, 3h54m32s from
//     13:00 → Mon 16:54:32.
//   - The out-of-office reply (Auto-Submitted: auto-replied) makes no ticket
//     and gets no acknowledgement.
//
// Globex (calendar us-east, America/New_York, EST = UTC−5 after 1 Nov 2026;
// Mon–Fri 09:00–17:00; Thanksgiving Thu 26 Nov is long past):
//
//   - Request "Shared mailbox for the sales team", received Mon 30 Nov
//     09:10:20 EST: no rule but default matches: request/normal, 4h/3d.
//     Response: 09:10:20 + 4h = Mon 13:10:20 ("Monday 30 November 2026,
//     13:10"). Resolution 3d: the 3rd business day after Mon 30 Nov is Thu
//     3 Dec, at the effective start's wall time 09:10:20 ("Thursday 3
//     December 2026, 09:10"). Warnings: response 80 % of 4h = 3h12m → Mon
//     12:22:20; resolution 80 % of the business time between start and
//     deadline (Mon 7h49m40s + Tue 8h + Wed 8h + Thu 10m20s = 24h) = 19h12m:
//     Mon 7h49m40s, Tue 8h, then 3h22m20s from Wed 09:00 → Wed 2 Dec
//     12:22:20.
//
// Arrival order (and so ticket numbers): the IMAC (Sunday) ACME-0001, the
// fault ACME-0002, the auto-reply, the request GLX-0001.
func e2eSampleWants() map[string]e2eSampleWant {
	jer, ny := e2eLoc("Asia/Jerusalem"), e2eLoc("America/New_York")
	at := func(loc *time.Location, mo time.Month, d, h, m, s int) time.Time {
		return time.Date(2026, mo, d, h, m, s, 0, loc)
	}
	return map[string]e2eSampleWant{
		"imac-new-employee-sunday.eml": {
			ticket: "ACME-0001", contract: "acme", category: domain.IMAC, priority: domain.Normal,
			requester: "dana.levi@acme.co.il", lang: "he",
			ackSubject: []string{"[ACME-0001]", "New employee starting today"},
			ackText: []string{
				"ACME-0001",
				"בקשה זו נקבעה ליום שלישי, 8 בדצמבר 2026",
				"מספר 1 מתוך 10",
				"יום ראשון, 29 בנובמבר 2026, 09:00", // received
			},
			imacDate: "2026-12-08", imacUsed: 1, imacQuota: 10,
			attachments: []string{"onboarding-form.pdf"},
		},
		"fault-hebrew-windows-1255.eml": {
			ticket: "ACME-0002", contract: "acme", category: domain.Fault, priority: domain.High,
			requester: "yossi@acme.co.il", lang: "he",
			ackSubject: []string{"[ACME-0002]", "האינטרנט לא עובד במשרד"},
			ackText: []string{
				"ACME-0002",
				"סווגה כתקלה (עדיפות גבוהה)",
				"יום שני, 30 בנובמבר 2026, 10:30",
				"יום שלישי, 1 בדצמבר 2026, 09:30",
				"שלום יוסי כהן", // the windows-1255 name, decoded
			},
			responseDue:    at(jer, 11, 30, 10, 30, 32),
			resolutionDue:  at(jer, 12, 1, 9, 30, 32),
			responseWarn:   at(jer, 11, 30, 10, 18, 32),
			resolutionWarn: at(jer, 11, 30, 16, 54, 32),
		},
		"autoreply-out-of-office.eml": {},
		"request-english.eml": {
			ticket: "GLX-0001", contract: "globex", category: domain.Request, priority: domain.Normal,
			requester: "maria.lopez@globex.example", cc: []string{"tom.becker@globex.example"}, lang: "en",
			ackSubject: []string{"[GLX-0001] Received: Shared mailbox for the sales team"},
			ackText: []string{
				"Ticket GLX-0001",
				"service request (priority normal)",
				"We will respond by Monday 30 November 2026, 13:10",
				"complete it by Thursday 3 December 2026, 09:10",
				"Monday 30 November 2026, 09:10", // received
			},
			responseDue:    at(ny, 11, 30, 13, 10, 20),
			resolutionDue:  at(ny, 12, 3, 9, 10, 20),
			responseWarn:   at(ny, 11, 30, 12, 22, 20),
			resolutionWarn: at(ny, 12, 2, 12, 22, 20),
		},
	}
}

// TestE2ESampleMail delivers the example mail to the live gateway (IMAP
// IDLE, Redis, SMTP) and checks everything a customer, the staff and the
// state see.
func TestE2ESampleMail(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	tap := &e2eTap{}
	run := e.start(service.Options{IMAPDialer: tap.dial}, 0)
	defer e.stop(run)
	src := run.g.Sources[0]
	e.waitFor("the IMAP session to be ready", func() (bool, string) {
		st := src.Stats()
		return st.Connected, fmt.Sprintf("%+v", st)
	})

	samples, err := demo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	wants := e2eSampleWants()
	if len(samples) != len(wants) {
		t.Fatalf("%d samples, want %d", len(samples), len(wants))
	}
	type delivered struct {
		demo.Sample
		msg          *domain.Message
		internalDate time.Time
		want         e2eSampleWant
	}
	var all []delivered
	byMID := map[string]delivered{}
	for _, s := range samples {
		want, ok := wants[s.Name]
		if !ok {
			t.Fatalf("no expectations for sample %s", s.Name)
		}
		d := delivered{Sample: s, internalDate: s.Received.Add(20 * time.Second), want: want,
			msg: ingest.Parse(bytes.NewReader(s.Raw), ingest.DefaultLimits())}
		e.deliver(s.Raw, d.internalDate)
		all = append(all, d)
		byMID[d.msg.MessageID] = d
	}
	// 3 tickets: 3 acknowledgements and 3 forwards.
	e.waitFor("3 acknowledgements and 3 forwards", func() (bool, string) {
		n, _ := e.folderCounts("Processed")
		return len(e.w.SMTP.Mail()) >= 6 && n == 4, fmt.Sprintf("%d mails, %d processed", len(e.w.SMTP.Mail()), n)
	})

	// Mailbox: INBOX empty (moved, not copied), the processed folder holds
	// the four messages byte for byte with their INTERNALDATE.
	if n, _ := e.folderCounts("INBOX"); n != 0 {
		t.Errorf("INBOX holds %d messages, want 0", n)
	}
	processed := e.folderContents("Processed")
	if len(processed) != len(all) {
		t.Errorf("Processed holds %d messages, want %d", len(processed), len(all))
	}
	for _, pm := range processed {
		mid := ingest.Parse(bytes.NewReader(pm.Raw), ingest.DefaultLimits()).MessageID
		d, ok := byMID[mid]
		if !ok {
			t.Errorf("unexpected message %q in Processed", mid)
			continue
		}
		if !bytes.Equal(pm.Raw, d.Raw) {
			t.Errorf("%s: Processed copy differs from the delivered message", d.Name)
		}
		if !pm.InternalDate.Equal(d.internalDate) {
			t.Errorf("%s: Processed INTERNALDATE %v, want %v", d.Name, pm.InternalDate, d.internalDate)
		}
	}
	if tap.count("UID MOVE") == 0 || tap.count("IDLE") == 0 {
		t.Errorf("gateway used MOVE %d times and IDLE %d times; want both on an IMAP4rev2 server", tap.count("UID MOVE"), tap.count("IDLE"))
	}

	mails := e.sent()
	if len(mails) != 6 {
		t.Errorf("catcher got %d mails, want 6", len(mails))
	}
	acks, fwds := e2eCountByCustomer(mails, "ack"), e2eCountByCustomer(mails, "forward")
	for _, d := range all {
		t.Run(strings.TrimSuffix(d.Name, ".eml"), func(t *testing.T) {
			e2eCheckSample(t, e, d.msg, d.Raw, d.internalDate, d.want, mails, acks, fwds)
		})
	}

	// Three tickets and no more: the auto-reply opened none. Every event
	// of every ticket carries the INTERNALDATE of the message that caused
	// it (SPEC §3a), whichever message that is.
	received := map[string]time.Time{}
	for _, d := range all {
		received[d.msg.MessageID] = d.internalDate
	}
	for contract, want := range map[string]int{"acme": 2, "globex": 1} {
		tickets, err := e.st.TicketsByContract(e.ctx, contract)
		if err != nil {
			t.Fatal(err)
		}
		if len(tickets) != want {
			t.Errorf("contract %s has %d tickets, want %d", contract, len(tickets), want)
		}
		for _, tk := range tickets {
			evs, err := e.st.Events(e.ctx, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if at, ok := received[ev.MessageID]; !ok || !ev.At.Equal(at) {
					t.Errorf("%s event %s of %s at %v, want that message's INTERNALDATE %v", tk.ID, ev.Kind, ev.MessageID, ev.At, at)
				}
			}
		}
	}

	actions := e.outcomeActions()
	if actions["ticket"] != 3 || actions["automatic"] != 1 || len(e.outcomes.snapshot()) != 4 {
		t.Errorf("outcomes %v, want 3 ticket and 1 automatic", actions)
	}
}

// e2eCheckSample checks one sample's ticket, events, timers, acknowledgement
// and forward.
func e2eCheckSample(t *testing.T, e *e2e, orig *domain.Message, raw []byte, internalDate time.Time, want e2eSampleWant, mails []e2eMail, acks, fwds map[string]int) {
	mid := orig.MessageID
	if want.ticket == "" {
		// The auto-reply: filed, nothing sent (the ticket counts are
		// checked by the caller).
		if acks[mid] != 0 || fwds[mid] != 0 {
			t.Errorf("auto-reply got %d acknowledgements and %d forwards, want none", acks[mid], fwds[mid])
		}
		return
	}
	if acks[mid] != 1 || fwds[mid] != 1 {
		t.Errorf("%d acknowledgements and %d forwards, want 1 and 1", acks[mid], fwds[mid])
	}

	// The ticket in Redis.
	tk, err := e.st.Ticket(e.ctx, want.ticket)
	if err != nil {
		t.Fatalf("read ticket %s: %v", want.ticket, err)
	}
	if tk.Contract != want.contract || tk.Category != want.category || tk.Priority != want.priority || tk.Status != domain.StatusOpen {
		t.Errorf("ticket %s: contract %q category %q priority %q status %q, want %q %q %q open",
			tk.ID, tk.Contract, tk.Category, tk.Priority, tk.Status, want.contract, want.category, want.priority)
	}
	if tk.MessageID != mid || tk.Requester.Addr != want.requester {
		t.Errorf("ticket %s: message %q requester %q, want %q %q", tk.ID, tk.MessageID, tk.Requester.Addr, mid, want.requester)
	}
	var cc []string
	for _, a := range tk.Cc {
		cc = append(cc, a.Addr)
	}
	if !slices.Equal(cc, want.cc) {
		t.Errorf("ticket %s: cc %v, want %v", tk.ID, cc, want.cc)
	}
	if !tk.Opened.Equal(internalDate) {
		t.Errorf("ticket %s: opened %v, want INTERNALDATE %v", tk.ID, tk.Opened, internalDate)
	}
	e2eSameInstant(t, tk.ID+" response due", tk.ResponseDue, want.responseDue)
	e2eSameInstant(t, tk.ID+" resolution due", tk.ResolutionDue, want.resolutionDue)
	e2eSameInstant(t, tk.ID+" response warn", tk.ResponseWarn, want.responseWarn)
	e2eSameInstant(t, tk.ID+" resolution warn", tk.ResolutionWarn, want.resolutionWarn)
	if tk.IMACDate != want.imacDate || tk.IMACQuotaUse != want.imacUsed || tk.IMACQuota != want.imacQuota {
		t.Errorf("ticket %s: IMAC %q %d of %d, want %q %d of %d", tk.ID, tk.IMACDate, tk.IMACQuotaUse, tk.IMACQuota, want.imacDate, want.imacUsed, want.imacQuota)
	}
	if id, ok, err := e.st.TicketByMessageID(e.ctx, mid); err != nil || !ok || id != want.ticket {
		t.Errorf("Message-ID index: %q %v %v, want %s", id, ok, err, want.ticket)
	}

	// The opened event carries the INTERNALDATE, not the processing time.
	evs, err := e.st.Events(e.ctx, want.ticket)
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	var opened []domain.Event
	for _, ev := range evs {
		if ev.Kind == domain.EventOpened {
			opened = append(opened, ev)
		}
	}
	if len(evs) == 0 || evs[0].Kind != domain.EventOpened || len(opened) != 1 ||
		!opened[0].At.Equal(internalDate) || opened[0].MessageID != mid {
		t.Errorf("events %+v, want first and only one opened event at %v for %s", evs, internalDate, mid)
	}

	// Its timers.
	timers, err := e.st.PendingTimers(e.ctx, want.contract)
	if err != nil {
		t.Fatalf("read timers: %v", err)
	}
	got := map[string]time.Time{}
	for _, tm := range timers {
		if tm.Ticket == want.ticket {
			got[tm.Kind] = tm.Due
		}
	}
	wantTimers := map[string]time.Time{}
	for kind, at := range map[string]time.Time{
		"response-warn": want.responseWarn, "response-breach": want.responseDue,
		"resolution-warn": want.resolutionWarn, "resolution-breach": want.resolutionDue,
	} {
		if !at.IsZero() {
			wantTimers[kind] = at
		}
	}
	if len(got) != len(wantTimers) {
		t.Errorf("timers %v, want %v", got, wantTimers)
	}
	for kind, at := range wantTimers {
		if !got[kind].Equal(at) {
			t.Errorf("timer %s due %v, want %v", kind, got[kind].In(at.Location()), at)
		}
	}

	// The acknowledgement.
	var ack, fwd *e2eMail
	for i := range mails {
		if len(mails[i].Msg.InReplyTo) == 0 || mails[i].Msg.InReplyTo[0] != mid {
			continue
		}
		switch mails[i].Kind {
		case "ack":
			ack = &mails[i]
		case "forward":
			fwd = &mails[i]
		}
	}
	if ack == nil || fwd == nil {
		t.Fatalf("acknowledgement %v, forward %v: missing", ack != nil, fwd != nil)
	}
	a := ack.Msg
	if !slices.Equal(ack.To, []string{want.requester}) || ack.From != demo.SupportAddress {
		t.Errorf("ack envelope %s -> %v, want %s -> [%s]", ack.From, ack.To, demo.SupportAddress, want.requester)
	}
	if len(a.To) != 1 || a.To[0].Addr != want.requester || a.From.Addr != demo.SupportAddress {
		t.Errorf("ack From %v To %v", a.From, a.To)
	}
	for _, s := range want.ackSubject {
		if !strings.Contains(a.Subject, s) {
			t.Errorf("ack subject %q lacks %q", a.Subject, s)
		}
	}
	for _, s := range want.ackText {
		if !strings.Contains(a.Text, s) {
			t.Errorf("ack text lacks %q:\n%s", s, a.Text)
		}
	}
	if a.MessageID == "" || !strings.HasSuffix(a.MessageID, "@northwind-it.example") {
		t.Errorf("ack Message-ID %q", a.MessageID)
	}
	if !slices.Equal(a.InReplyTo, []string{mid}) || !slices.Contains(a.References, mid) {
		t.Errorf("ack In-Reply-To %v References %v, want %s in both", a.InReplyTo, a.References, mid)
	}
	headers := map[string]string{
		"Auto-Submitted":   "auto-replied",
		domain.LoopHeader:  demo.SupportAddress,
		"X-Ticket-ID":      want.ticket,
		"Content-Language": want.lang,
	}
	for name, v := range headers {
		if got, _ := a.Header(name); got != v {
			t.Errorf("ack %s: %q, want %q", name, got, v)
		}
	}
	if !a.Date.Equal(e2eNow) {
		t.Errorf("ack Date %v, want the injected clock's %v", a.Date, e2eNow)
	}
	if a.Auto == domain.Human {
		t.Errorf("the acknowledgement is not recognised as automatic mail")
	}

	// The forward to staff, with the original's attachments intact.
	f := fwd.Msg
	if !slices.Equal(fwd.To, []string{e2eStaffQueue}) {
		t.Errorf("forward envelope to %v, want [%s]", fwd.To, e2eStaffQueue)
	}
	if !strings.Contains(f.Subject, "["+want.ticket+"]") {
		t.Errorf("forward subject %q lacks [%s]", f.Subject, want.ticket)
	}
	if v, _ := f.Header("X-Ticket-ID"); v != want.ticket {
		t.Errorf("forward X-Ticket-ID %q", v)
	}
	if v, _ := f.Header(domain.LoopHeader); v != demo.SupportAddress {
		t.Errorf("forward loop marker %q", v)
	}
	if len(f.ReplyTo) != 1 || f.ReplyTo[0].Addr != demo.SupportAddress {
		t.Errorf("forward Reply-To %v, want the support address", f.ReplyTo)
	}
	wantAtt, gotAtt := e2eAttachments(t, raw), e2eAttachments(t, fwd.Raw)
	var names []string
	for n := range wantAtt {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, want.attachments) {
		t.Errorf("original attachments %v, want %v", names, want.attachments)
	}
	for name, body := range wantAtt {
		if !bytes.Equal(gotAtt[name], body) {
			t.Errorf("forwarded attachment %s: %d bytes, differs from the original's %d bytes", name, len(gotAtt[name]), len(body))
		}
	}
	if len(gotAtt) != len(wantAtt) {
		t.Errorf("forward has attachments %d, want %d", len(gotAtt), len(wantAtt))
	}
	if line := e2eFirstLine(orig.Text); !strings.Contains(e2eTextOf(t, fwd.Raw), line) {
		t.Errorf("forward lacks the customer's text %q", line)
	}
}

func e2eSameInstant(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		if want.IsZero() {
			t.Errorf("%s: %v, want none", what, got)
			return
		}
		t.Errorf("%s: %v, want %v", what, got.In(want.Location()), want)
	}
}

func e2eFirstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// TestE2ERestartExactlyOnce stops the gateway twice in the middle of a
// stream of 30 messages (right after a message is stored and before it is
// moved, while the outbox is sending through a slow relay), with mail
// arriving while it is down, and restarts it each time: every message ends
// with exactly one ticket, one acknowledgement and one forward.
func TestE2ERestartExactlyOnce(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	// A relay that takes a moment per message, so that sends are in flight
	// when the gateway stops.
	e.w.SMTP.SetRefuse(func(localmail.Mail) error { time.Sleep(5 * time.Millisecond); return nil })
	msgs := e2eMessages(30)
	for _, m := range msgs[:20] {
		e.deliver(m.Raw, m.Received)
	}

	first := e.start(service.Options{}, 7)
	e.stopped(first)
	if _, live := e.folderCounts("INBOX"); live == 0 {
		t.Fatal("the first instance processed everything before it was stopped")
	}
	// Mail arrives while the gateway is down; the restart takes longer than
	// the outbox lease, so anything left in flight is handed out again.
	for _, m := range msgs[20:] {
		e.deliver(m.Raw, m.Received)
	}
	e.clock.Advance(3 * time.Minute)

	second := e.start(service.Options{}, 9)
	e.stopped(second)
	if _, live := e.folderCounts("INBOX"); live == 0 {
		t.Fatal("the second instance processed everything before it was stopped")
	}
	e.clock.Advance(3 * time.Minute)

	third := e.start(service.Options{}, 0)
	defer e.stop(third)
	e.waitAllProcessed(msgs)
	e.assertExactlyOnce(msgs)
	if n := e.outcomeActions()["already-processed"]; n < 2 {
		// Each stop falls between storing a message and moving it.
		t.Errorf("%d messages seen again as already processed, want at least 2", n)
	}
}

// TestE2EDroppedConnection cuts the IMAP connection four times while 30
// messages arrive: once as the server confirms a MOVE (the message is
// stored and moved, but the gateway never hears so), three times in the
// middle of a message body, and once after a fixed number of bytes on a
// later connection. Every message is still processed exactly once, whether
// messages are handled one by one (the handler streams the body and reads a
// truncated message) or four at a time (the source reads each body whole
// first, and a cut one never reaches the handler).
func TestE2EDroppedConnection(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			e := newE2E(t, localmail.IMAPOptions{})
			msgs := e2eMessages(30)
			markers := []string{"[COPYUID", msgs[4].Marker, msgs[13].Marker, msgs[22].Marker}
			faults := &e2eFaultDialer{
				markers:    slices.Clone(markers),
				afterBytes: map[int]int64{3: 2000},
			}
			run := e.start(service.Options{IMAPDialer: faults.dial, IMAPWorkers: workers}, 0)
			defer e.stop(run)
			for _, m := range msgs {
				e.deliver(m.Raw, m.Received)
			}
			e.waitAllProcessed(msgs)
			e.assertExactlyOnce(msgs)

			fired := faults.fired()
			for _, m := range markers {
				if !slices.Contains(fired, "marker "+m) {
					t.Errorf("cut at %s did not happen (fired: %v)", m, fired)
				}
			}
			if !slices.Contains(fired, "connection 3 after 2000 bytes") {
				t.Errorf("cut after 2000 bytes did not happen (fired: %v)", fired)
			}
			st := run.g.Sources[0].Stats()
			if st.Reconnects < 5 {
				t.Errorf("stats %+v: want at least 5 reconnects", st)
			}
			if workers == 1 && st.HandlerErrors < 3 {
				t.Errorf("stats %+v: want at least 3 handler errors (bodies cut short)", st)
			}
		})
	}
}

// TestE2ENoMove runs against servers without MOVE: the gateway copies each
// message to the processed folder and flags it \Deleted, expunging it by UID
// where UIDPLUS allows; every message is processed exactly once.
func TestE2ENoMove(t *testing.T) {
	for _, tc := range []struct {
		name     string
		caps     imap.CapSet
		expunged bool // else the copies stay in INBOX, flagged \Deleted
	}{
		{"IMAP4rev1", imap.CapSet{imap.CapIMAP4rev1: {}}, false},
		{"IMAP4rev1+UIDPLUS", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, localmail.IMAPOptions{Caps: tc.caps})
			tap := &e2eTap{}
			run := e.start(service.Options{IMAPDialer: tap.dial}, 0)
			defer e.stop(run)
			msgs := e2eMessages(12)
			for _, m := range msgs {
				e.deliver(m.Raw, m.Received)
			}
			e.waitAllProcessed(msgs)
			e.assertExactlyOnce(msgs)
			left := len(msgs)
			if tc.expunged {
				left = 0
			}
			if all, live := e.folderCounts("INBOX"); all != left || live != 0 {
				t.Errorf("INBOX: %d messages, %d not deleted; want %d, 0", all, live, left)
			}
			uidExpunges := 0
			if tc.expunged {
				uidExpunges = len(msgs)
			}
			if tap.count("UID MOVE") != 0 || tap.count("UID COPY") != len(msgs) || tap.count("UID STORE") != len(msgs) ||
				tap.count("UID EXPUNGE") != uidExpunges || tap.count("EXPUNGE") != 0 {
				t.Errorf("commands: UID MOVE %d, UID COPY %d, UID STORE %d, UID EXPUNGE %d, EXPUNGE %d; want 0, %d, %[6]d, %d, 0 (never a plain EXPUNGE)",
					tap.count("UID MOVE"), tap.count("UID COPY"), tap.count("UID STORE"), tap.count("UID EXPUNGE"), tap.count("EXPUNGE"), len(msgs), uidExpunges)
			}
		})
	}
}

// TestE2ENoIdle runs against a server that does not offer IDLE: the
// gateway polls, and picks up mail that arrives while it waits.
func TestE2ENoIdle(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}})
	e.w.Config.Mailboxes[0].PollInterval = 200 * time.Millisecond
	tap := &e2eTap{hideIdle: true}
	run := e.start(service.Options{IMAPDialer: tap.dial}, 0)
	defer e.stop(run)
	src := run.g.Sources[0]
	e.waitFor("the IMAP session to be ready", func() (bool, string) {
		st := src.Stats()
		return st.Connected, fmt.Sprintf("%+v", st)
	})
	if st := src.Stats(); st.Mode != "poll" {
		t.Fatalf("mode %q, want poll", st.Mode)
	}
	msgs := e2eMessages(20)
	for _, batch := range [][]e2eMsg{msgs[:10], msgs[10:]} {
		for _, m := range batch {
			e.deliver(m.Raw, m.Received)
		}
		e.waitFor("the batch to be processed", func() (bool, string) {
			_, live := e.folderCounts("INBOX")
			return live == 0, fmt.Sprintf("%d left", live)
		})
	}
	e.waitAllProcessed(msgs)
	e.assertExactlyOnce(msgs)
	if tap.rewrote.Load() == 0 {
		t.Error("no CAPABILITY line offered IDLE: the test does not test the fallback")
	}
	if n := tap.count("IDLE"); n != 0 {
		t.Errorf("gateway sent IDLE %d times to a server without it", n)
	}
	if st := src.Stats(); st.Polls == 0 || st.IdleCycles != 0 {
		t.Errorf("stats %+v: want polls and no IDLE cycles", st)
	}
}

// TestE2ESMTPOutage makes the relay refuse every message with 451 for a
// while: nothing is lost, each entry is retried with the outbox backoff
// (5 s, then 10 s, on the injected clock), and once the relay recovers every
// acknowledgement and forward arrives exactly once.
func TestE2ESMTPOutage(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	var refused atomic.Int64
	e.w.SMTP.SetRefuse(func(localmail.Mail) error {
		refused.Add(1)
		return errors.New("relay busy, try again later")
	})
	probe := &e2eOutboxProbe{}
	run := e.start(service.Options{}, 0, func(g *service.Gateway) {
		probe.Outbox = g.Outbox.Outbox
		g.Outbox.Outbox = probe
	})
	defer e.stop(run)
	msgs := e2eMessages(6)
	for _, m := range msgs {
		e.deliver(m.Raw, m.Received)
	}
	entries := int64(2 * len(msgs))
	// waitRetried waits until n failed attempts are rescheduled.
	waitRetried := func(n int64) {
		t.Helper()
		e.waitFor(fmt.Sprintf("%d attempts refused and rescheduled", n), func() (bool, string) {
			return probe.retried.Load() >= n, fmt.Sprintf("%d refused, %d rescheduled", refused.Load(), probe.retried.Load())
		})
		if got := refused.Load(); got != n {
			t.Fatalf("%d attempts reached the relay, want %d", got, n)
		}
	}
	// notDue checks that no attempt is made for a while (the outbox looks
	// for due entries every 20 ms).
	notDue := func(n int64) {
		t.Helper()
		time.Sleep(250 * time.Millisecond)
		if got := refused.Load(); got != n {
			t.Fatalf("%d attempts before the backoff elapsed, want %d", got, n)
		}
	}

	// Tickets are stored and the mailbox drained regardless of SMTP.
	waitRetried(entries)
	e.waitFor("the INBOX to be drained", func() (bool, string) {
		_, live := e.folderCounts("INBOX")
		return live == 0, fmt.Sprintf("%d left", live)
	})
	if depth, _, err := e.st.OutboxDepth(e.ctx); err != nil || depth != entries {
		t.Fatalf("outbox depth %d (%v), want %d", depth, err, entries)
	}
	notDue(entries)

	// First retry 5 s after the first attempt.
	e.clock.Advance(4 * time.Second)
	notDue(entries)
	e.clock.Advance(time.Second)
	waitRetried(2 * entries)
	// Second retry 10 s after the second attempt.
	e.clock.Advance(9 * time.Second)
	notDue(2 * entries)

	// The relay recovers.
	e.w.SMTP.SetRefuse(nil)
	e.clock.Advance(time.Second)
	e.waitAllProcessed(msgs)
	e.assertExactlyOnce(msgs)
	if got := refused.Load(); got != 2*entries {
		t.Errorf("%d refused attempts, want %d", got, 2*entries)
	}
}

// e2eTextOf returns the decoded text of every text/plain part of raw.
func e2eTextOf(t *testing.T, raw []byte) string {
	t.Helper()
	var b strings.Builder
	for _, p := range e2eTextParts(t, raw) {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestE2EBacklogFirstComeFirstServed: one customer's backlog of 24 messages,
// all answering the same thread, handled four at a time. Their parsing and
// mail composition overlap (takeTurn, releaseOrder), with jitter injected on
// both sides of the release, yet the tickets are numbered, and the IMACs
// among them given their quota places, in arrival order.
func TestE2EBacklogFirstComeFirstServed(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	msgs := e2eMessages(24)
	imac := map[string]bool{}
	for i := range msgs {
		raw := "In-Reply-To: <thread-root@mail.acme.co.il>\r\n" + string(msgs[i].Raw)
		if i%3 == 0 {
			head, rest, _ := strings.Cut(raw, "\r\nSubject: ")
			_, rest, _ = strings.Cut(rest, "\r\n")
			raw = head + fmt.Sprintf("\r\nSubject: New employee %02d: laptop\r\n", i) + rest
			raw = strings.Replace(raw, "\r\n\r\n", "\r\n\r\nA new employee starts on Monday; please install a laptop.\r\n", 1)
			imac[msgs[i].MessageID] = true
		}
		msgs[i].Raw = []byte(raw)
		e.deliver(msgs[i].Raw, msgs[i].Received)
	}
	var jitter atomic.Int64
	run := e.start(service.Options{IMAPWorkers: 4}, 0, func(g *service.Gateway) {
		g.Pipeline.FaultHook = func(step string, m *domain.Message) error {
			if step == "before-create" || step == "after-create" || step == "before-enqueue" {
				time.Sleep(time.Duration(jitter.Add(7)%3) * time.Millisecond)
			}
			return nil
		}
	})
	defer e.stop(run)
	e.waitAllProcessed(msgs)
	e.assertExactlyOnce(msgs)

	byID := map[string]domain.Ticket{}
	for _, o := range e.outcomes.snapshot() {
		if o.Created {
			byID[o.Decision.Msg.MessageID] = o.Ticket
		}
	}
	lastQuota := 0
	for i, m := range msgs {
		tk, ok := byID[m.MessageID]
		if !ok {
			t.Fatalf("message %d: no ticket created", i)
		}
		if want := fmt.Sprintf("ACME-%04d", i+1); tk.ID != want {
			t.Errorf("message %d (arrival order) got ticket %s, want %s", i, tk.ID, want)
		}
		if imac[m.MessageID] {
			if tk.Category != domain.IMAC {
				t.Fatalf("message %d: %s, want an IMAC", i, tk.Category)
			}
			if tk.IMACQuotaUse <= lastQuota {
				t.Errorf("message %d: IMAC %d of the month after an earlier message's %d: places not in arrival order", i, tk.IMACQuotaUse, lastQuota)
			}
			lastQuota = tk.IMACQuotaUse
		}
	}
}
