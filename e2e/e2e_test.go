package e2e

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRealMailStack builds the gateway once and runs each scenario on a
// mail stack of its own (Dovecot, Postfix, a Redis prefix). The scenarios
// spend their time waiting for mail, not computing, so they all run at
// once, whatever -parallel says (t.Run from several goroutines);
// -run TestRealMailStack/NAME picks one.
func TestRealMailStack(t *testing.T) {
	tools := requireTools(t)
	bin := buildGateway(t, tools)
	var wg sync.WaitGroup
	for _, sc := range []struct {
		name string
		run  func(*testing.T, *toolset, string)
	}{
		// The longest first: the crash waits out the dead gateway's lease.
		{"CrashMidStream", func(t *testing.T, tools *toolset, bin string) {
			testRestartMidStream(t, tools, bin, syscall.SIGKILL)
		}},
		{"RestartMidStream", func(t *testing.T, tools *toolset, bin string) {
			testRestartMidStream(t, tools, bin, syscall.SIGTERM)
		}},
		{"Backlog", testBacklog},
		{"NewTickets", testNewTickets},
		{"StaffReplyRelayed", testStaffReplyRelayed},
		{"AutoresponderLoopStops", testAutoresponderLoopStops},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(sc.name, func(t *testing.T) {
				start := time.Now()
				sc.run(t, tools, bin)
				t.Logf("%s took %v", sc.name, time.Since(start).Round(time.Millisecond))
			})
		}()
	}
	wg.Wait()
}

// quiet is how long nothing more may arrive once a scenario looks
// finished: long enough for Dovecot's IDLE notice (about 500 ms), a pass of
// the gateway, its outbox and a Postfix delivery.
const quiet = 2500 * time.Millisecond

// sample is one of examples/messages, delivered with its own Date and
// Message-ID; INTERNALDATE is Dovecot's delivery time.
type sample struct {
	file, from string
	ack        bool
	contract   string
	category   string
	priority   string
	lang       string // of the acknowledgement
	imacQuota  int    // IMAC: the monthly quota named in the acknowledgement
	attachment string // a file the staff copy must carry
}

// testNewTickets: a Hebrew windows-1255 fault, an English request and a
// Sunday-morning IMAC each get one acknowledgement in the customer's
// mailbox and one staff copy in the queue's; an out-of-office reply gets
// neither. The acknowledgement's dates are checked twice: against `gateway
// classify --at <INTERNALDATE>` on the very bytes Dovecot delivered (the
// same code on the same instant must give the same text), and by rendering
// classify's RFC 3339 dates ourselves and finding them in the text.
func testNewTickets(t *testing.T, tools *toolset, bin string) {
	samples := []sample{
		{file: "fault-hebrew-windows-1255.eml", from: "yossi@acme.co.il", ack: true, contract: "acme", category: "fault", priority: "high", lang: "he"},
		{file: "request-english.eml", from: "maria.lopez@globex.example", ack: true, contract: "globex", category: "request", priority: "normal", lang: "en"},
		{file: "imac-new-employee-sunday.eml", from: "dana.levi@acme.co.il", ack: true, contract: "acme", category: "imac", lang: "he", imacQuota: 10, attachment: "onboarding-form.pdf"},
		{file: "autoreply-out-of-office.eml", from: "yossi@acme.co.il"},
	}
	stack := startMailStack(t, tools, "yossi@acme.co.il", "dana.levi@acme.co.il", "maria.lopez@globex.example", "tom.becker@globex.example")
	g := newGatewaySetup(t, bin, stack)
	gw := g.start(t)

	start := time.Now()
	ids := map[string]sample{} // Message-ID → sample
	for _, s := range samples {
		raw := readSample(t, s.file)
		pm, err := parseMail(raw)
		if err != nil {
			t.Fatalf("%s: %v", s.file, err)
		}
		ids[pm.MessageID] = s
		stack.inject(t, s.from, []string{supportAddr}, raw)
	}
	processed := stack.awaitMail(t, supportAddr, "Processed", 30*time.Second, "the four samples in Processed",
		func(m []fetched) bool { return len(m) == len(samples) })
	acks := map[string]fetched{} // Message-ID of the customer's mail → its acknowledgement
	for id, s := range ids {
		if !s.ack {
			continue
		}
		inbox := stack.awaitMail(t, s.from, "INBOX", 30*time.Second, "the acknowledgement of "+s.file, func(m []fetched) bool {
			return len(repliesTo(m, id)) > 0
		})
		acks[id] = repliesTo(inbox, id)[0]
	}
	t.Logf("three acknowledgements delivered %v after the first injection", time.Since(start).Round(time.Millisecond))
	stack.awaitMail(t, helpdeskAddr, "INBOX", 30*time.Second, "three staff copies", func(m []fetched) bool { return len(m) >= 3 })

	// Nothing more may come: no second acknowledgement, none for the
	// out-of-office reply, no copy of it for staff.
	time.Sleep(quiet)
	wantCounts := map[string]int{"yossi@acme.co.il": 1, "dana.levi@acme.co.il": 1, "maria.lopez@globex.example": 1,
		"tom.becker@globex.example": 0, helpdeskAddr: 3, escalationAddr: 0}
	for user, want := range wantCounts {
		if got := stack.mustFetch(t, user, "INBOX"); len(got) != want {
			t.Errorf("%s has %s, want %d", user, describe(got), want)
		}
	}
	if left := stack.mustFetch(t, supportAddr, "INBOX"); len(left) != 0 {
		t.Errorf("the support INBOX still has %s", describe(left))
	}
	queue := stack.mustFetch(t, helpdeskAddr, "INBOX")

	state := g.tickets(t)
	if len(state) != 3 {
		t.Errorf("%d tickets in the state, want 3: %v", len(state), slices.Sorted(maps.Keys(state)))
	}
	tickets := map[string]bool{}
	for _, orig := range processed {
		s, ok := ids[orig.MessageID]
		if !ok {
			t.Errorf("Processed holds a message the test did not send: %q", orig.Subject)
			continue
		}
		res := g.classify(t, orig.Raw, orig.InternalDate)
		t.Run(strings.TrimSuffix(s.file, ".eml"), func(t *testing.T) {
			checkClassified(t, s, orig, res)
			if !s.ack {
				return
			}
			ack := acks[orig.MessageID]
			ticket := checkAck(t, s, orig, ack, res)
			if tickets[ticket] {
				t.Errorf("two messages acknowledged as ticket %s", ticket)
			}
			tickets[ticket] = true
			checkState(t, orig, state[ticket], res)
			checkStaffCopy(t, s, orig, ticket, queue)
		})
	}
	gw.stop(t, 15*time.Second)
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "examples", "messages", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// repliesTo keeps the messages whose In-Reply-To names id.
func repliesTo(msgs []fetched, id string) []fetched {
	var out []fetched
	for _, m := range msgs {
		if slices.Contains(m.InReplyTo, id) {
			out = append(out, m)
		}
	}
	return out
}

// checkClassified: classify on the delivered bytes at INTERNALDATE agrees
// with the sample's expected contract, category and acknowledgement
// decision, and takes INTERNALDATE (not the Date header, days away) as
// the received instant.
func checkClassified(t *testing.T, s sample, orig fetched, res classifyResult) {
	t.Helper()
	if res.Ack != s.ack {
		t.Fatalf("classify says ack=%v (%v), want %v", res.Ack, deref(res.AckReason), s.ack)
	}
	if !s.ack {
		if deref(res.AckReason) != "auto-reply" {
			t.Errorf("ack_reason %q, want auto-reply", deref(res.AckReason))
		}
		return
	}
	if deref(res.Contract) != s.contract || res.Category != s.category || (s.priority != "" && res.Priority != s.priority) {
		t.Errorf("classified %s %s/%s, want %s %s/%s", deref(res.Contract), res.Category, res.Priority, s.contract, s.category, s.priority)
	}
	if got := mustTime(t, res.Received); !got.Equal(orig.InternalDate) {
		t.Errorf("received %v, want INTERNALDATE %v", got, orig.InternalDate)
	}
}

// ticketTag finds a ticket tag such as [ACME-0042] in a subject.
var ticketTag = regexp.MustCompile(`\[([A-Z]+)-(\d{4,})\]`)

// checkAck checks one acknowledgement and returns its ticket id.
func checkAck(t *testing.T, s sample, orig, ack fetched, res classifyResult) string {
	t.Helper()
	m := ticketTag.FindStringSubmatch(ack.Subject)
	if m == nil {
		t.Fatalf("acknowledgement subject %q has no ticket tag", ack.Subject)
	}
	ticket := m[1] + "-" + m[2]
	if got := ack.Header.Get("X-Ticket-ID"); got != ticket {
		t.Errorf("X-Ticket-ID %q, want %s", got, ticket)
	}
	// Loop safety (SPEC §6) and threading.
	for k, want := range map[string]string{"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All",
		"X-Ticket-Gateway-Loop": supportAddr, "Content-Language": s.lang} {
		if got := ack.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if got := addrs(ack.From); !slices.Equal(got, []string{supportAddr}) {
		t.Errorf("From %v, want the support address", got)
	}
	if got := addrs(ack.To); !slices.Equal(got, []string{s.from}) {
		t.Errorf("To %v, want the requester only", got)
	}
	if !slices.Contains(ack.References, orig.MessageID) {
		t.Errorf("References %v lack the customer's %s", ack.References, orig.MessageID)
	}

	// The running gateway and `gateway classify` at the same instant must
	// write the same acknowledgement, but for the ticket number.
	placeholder := m[1] + "-0000"
	if want := strings.ReplaceAll(res.AckSubject, placeholder, ticket); ack.Subject != want {
		t.Errorf("acknowledgement subject\n got %q\nwant %q (classify at %v)", ack.Subject, want, orig.InternalDate)
	}
	want := strings.TrimRight(strings.ReplaceAll(res.AckText, placeholder, ticket), "\n")
	if got := strings.TrimRight(ack.Text, "\n"); got != want {
		t.Errorf("acknowledgement text differs from classify at %v:\n--- got\n%s\n--- want\n%s", orig.InternalDate, got, want)
	}

	// And the promised dates are classify's, rendered the way SPEC §7 shows
	// them, in the contract calendar's zone.
	text := ack.Text
	received := mustTime(t, res.Received)
	var promised []time.Time
	for _, due := range []*string{res.ResponseDue, res.ResolutionDue} {
		if due != nil {
			promised = append(promised, mustTime(t, *due))
		}
	}
	switch s.category {
	case "imac":
		if res.IMACDate == nil || res.IMACQuotaUsed == nil || res.IMACQuota == nil {
			t.Fatalf("IMAC without a date or quota: %+v", res)
		}
		day, err := time.ParseInLocation(time.DateOnly, *res.IMACDate, received.Location())
		if err != nil {
			t.Fatalf("imac_date %q: %v", *res.IMACDate, err)
		}
		if day.Weekday() != time.Tuesday || !day.After(received) {
			t.Errorf("IMAC day %s is not a Tuesday after %v (ACME's service day)", *res.IMACDate, received)
		}
		if *res.IMACQuotaUsed != 1 || *res.IMACQuota != s.imacQuota {
			t.Errorf("IMAC quota %d of %d, want 1 of %d (fresh state)", *res.IMACQuotaUsed, *res.IMACQuota, s.imacQuota)
		}
		if d := renderDay(day, s.lang); !strings.Contains(text, d) {
			t.Errorf("the acknowledgement does not name the IMAC day %q:\n%s", d, text)
		}
		q := fmt.Sprintf("1 of the %d", s.imacQuota)
		if s.lang == "he" {
			q = fmt.Sprintf("1 מתוך %d", s.imacQuota)
		}
		if !strings.Contains(text, q) {
			t.Errorf("the acknowledgement does not say %q:\n%s", q, text)
		}
	default:
		if len(promised) != 2 {
			t.Fatalf("%s without response and resolution deadlines: %+v", s.category, res)
		}
		if !promised[0].After(received) || !promised[1].After(promised[0]) || promised[1].Sub(received) > 14*24*time.Hour {
			t.Errorf("deadlines %v, %v do not follow %v", promised[0], promised[1], received)
		}
	}
	for _, at := range promised {
		if d := renderDateTime(at, s.lang); !strings.Contains(text, d) {
			t.Errorf("the acknowledgement does not promise %q:\n%s", d, text)
		}
	}
	if !strings.Contains(text, ticket) {
		t.Errorf("the acknowledgement text does not name %s", ticket)
	}
	return ticket
}

// checkState: the stored ticket was opened at INTERNALDATE by this message,
// with the deadlines the acknowledgement promised (to the second).
func checkState(t *testing.T, orig fetched, ts ticketState, res classifyResult) {
	t.Helper()
	if ts.ID == "" {
		t.Fatalf("the ticket is not in the state")
	}
	if ts.MessageID != orig.MessageID || !ts.Opened.Equal(orig.InternalDate) || ts.Status != "open" {
		t.Errorf("stored ticket: message %s opened %v status %s, want %s at INTERNALDATE %v, open",
			ts.MessageID, ts.Opened, ts.Status, orig.MessageID, orig.InternalDate)
	}
	if ts.Category != res.Category || ts.Priority != res.Priority {
		t.Errorf("stored ticket is %s/%s, classify says %s/%s", ts.Category, ts.Priority, res.Category, res.Priority)
	}
	for _, d := range []struct {
		name   string
		stored time.Time
		want   *string
	}{{"response", ts.ResponseDue, res.ResponseDue}, {"resolution", ts.ResolutionDue, res.ResolutionDue}} {
		if d.want == nil {
			if !d.stored.IsZero() {
				t.Errorf("stored %s due %v, classify has none", d.name, d.stored)
			}
		} else if want := mustTime(t, *d.want); !d.stored.Equal(want) {
			t.Errorf("stored %s due %v, classify says %v", d.name, d.stored, want)
		}
	}
	if ts.IMACDate != deref(res.IMACDate) {
		t.Errorf("stored IMAC date %q, classify says %q", ts.IMACDate, deref(res.IMACDate))
	}
}

// checkStaffCopy: the queue got one copy of the ticket, addressed so that a
// reply comes back to the gateway, with the customer's attachment.
func checkStaffCopy(t *testing.T, s sample, orig fetched, ticket string, queue []fetched) {
	t.Helper()
	var copies []fetched
	for _, m := range queue {
		if m.Header.Get("X-Ticket-ID") == ticket {
			copies = append(copies, m)
		}
	}
	if len(copies) != 1 {
		t.Fatalf("the staff queue has %d copies of %s, want 1", len(copies), ticket)
	}
	c := copies[0]
	if !strings.Contains(c.Subject, "["+ticket+"]") {
		t.Errorf("staff copy subject %q lacks the tag", c.Subject)
	}
	if got := c.Header.Get("Reply-To"); !strings.Contains(got, supportAddr) {
		t.Errorf("staff copy Reply-To %q, want the support address", got)
	}
	if got := c.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("staff copy Auto-Submitted %q, want auto-generated", got)
	}
	if !slices.Contains(c.InReplyTo, orig.MessageID) {
		t.Errorf("staff copy In-Reply-To %v, want the customer's %s", c.InReplyTo, orig.MessageID)
	}
	if s.attachment != "" && !strings.Contains(string(c.Raw), `filename="`+s.attachment+`"`) {
		t.Errorf("staff copy lacks the attachment %s", s.attachment)
	}
}

var (
	hebrewDays   = [...]string{"ראשון", "שני", "שלישי", "רביעי", "חמישי", "שישי", "שבת"}
	hebrewMonths = [...]string{"ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי", "אוגוסט", "ספטמבר", "אוקטובר", "נובמבר", "דצמבר"}
)

// renderDay writes a date as SPEC §7 does: "Tuesday 8 December 2026",
// "יום שלישי, 8 בדצמבר 2026".
func renderDay(t time.Time, lang string) string {
	if lang == "he" {
		return fmt.Sprintf("יום %s, %d ב%s %d", hebrewDays[t.Weekday()], t.Day(), hebrewMonths[t.Month()-1], t.Year())
	}
	return t.Format("Monday 2 January 2006")
}

// renderDateTime adds the wall-clock time: "Monday 30 November 2026, 10:30".
func renderDateTime(t time.Time, lang string) string {
	return renderDay(t, lang) + t.Format(", 15:04")
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse time %q: %v", s, err)
	}
	return v
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// staffReply is a reply from a staff mail client to a staff copy.
func staffReply(fwd fetched, from, authResults, body string) composed {
	return composed{
		From: from, To: supportAddr, Subject: "Re: " + fwd.Subject,
		MessageID: "staff-" + randomHex(8) + "@northwind-it.example",
		InReplyTo: fwd.MessageID, References: append(slices.Clone(fwd.References), fwd.MessageID),
		Extra: []string{"Authentication-Results: " + authResults}, Body: body + quote(fwd.Text),
	}
}

// quote renders text as a mail client quotes the message it answers.
func quote(text string) string {
	var b strings.Builder
	b.WriteString("\nOn " + time.Now().Format("Mon, 2 Jan 2006 at 15:04") + ", Northwind IT Support wrote:\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("> " + line + "\n")
	}
	return b.String()
}

// testStaffReplyRelayed: a reply to the staff copy from a staff address
// whose topmost Authentication-Results (by the trusted authserv-id) shows
// dkim=pass is relayed to the requester and the colleague she copied, from
// the support address in the staff member's name, threaded into the
// customer's conversation, without the quoted ticket summary; the same
// reply with dkim=fail is relayed to nobody and reaches staff marked
// unauthenticated.
func testStaffReplyRelayed(t *testing.T, tools *toolset, bin string) {
	const maria, tom = "maria.lopez@globex.example", "tom.becker@globex.example"
	stack := startMailStack(t, tools, maria, tom)
	g := newGatewaySetup(t, bin, stack)
	gw := g.start(t)

	raw := readSample(t, "request-english.eml")
	orig, err := parseMail(raw)
	if err != nil {
		t.Fatal(err)
	}
	stack.inject(t, maria, []string{supportAddr}, raw)
	ack := repliesTo(stack.awaitMail(t, maria, "INBOX", 30*time.Second, "the acknowledgement", func(m []fetched) bool {
		return len(repliesTo(m, orig.MessageID)) == 1
	}), orig.MessageID)[0]
	ticket := ack.Header.Get("X-Ticket-ID")
	fwd := stack.awaitMail(t, helpdeskAddr, "INBOX", 30*time.Second, "the staff copy", func(m []fetched) bool { return len(m) == 1 })[0]
	if fwd.Header.Get("X-Ticket-ID") != ticket {
		t.Fatalf("staff copy of %q, want %s", fwd.Header.Get("X-Ticket-ID"), ticket)
	}

	// A forged staff reply: the receiving server says the signature failed.
	forged := staffReply(fwd, "Dana Cohen <dana@northwind-it.example>",
		trustedAuthID+"; dkim=fail reason=\"signature verification failed\" header.d=northwind-it.example",
		"Hi Maria,\n\nplease send your password to this address so that we can set it up.\n\nDana\n")
	stack.inject(t, "dana@northwind-it.example", []string{supportAddr}, forged.bytes())
	flagged := stack.awaitMail(t, helpdeskAddr, "INBOX", 30*time.Second, "the unauthenticated copy", func(m []fetched) bool {
		return len(withSubject(m, "UNAUTHENTICATED")) == 1
	})
	if u := withSubject(flagged, "UNAUTHENTICATED")[0]; !strings.Contains(u.Subject, ticket) && !strings.Contains(string(u.Raw), ticket) {
		t.Errorf("the unauthenticated copy %q does not name %s", u.Subject, ticket)
	}

	if ts := g.tickets(t)[ticket]; !ts.FirstResponse.IsZero() {
		t.Errorf("the forged reply recorded a first response at %v", ts.FirstResponse)
	}

	// The genuine reply.
	const answer = "the shared mailbox sales@globex.example is ready; it appears in Outlook within the hour."
	start := time.Now()
	genuine := staffReply(fwd, "Dana Cohen <dana@northwind-it.example>",
		trustedAuthID+"; dkim=pass header.d=northwind-it.example header.s=sel1; spf=pass smtp.mailfrom=northwind-it.example",
		"Hi Maria,\n\n"+answer+"\n\nDana\n")
	stack.inject(t, "dana@northwind-it.example", []string{supportAddr}, genuine.bytes())
	relayTo := func(user string) fetched {
		got := stack.awaitMail(t, user, "INBOX", 30*time.Second, "the relayed reply", func(m []fetched) bool {
			return len(withText(m, answer)) == 1
		})
		return withText(got, answer)[0]
	}
	relay := relayTo(maria)
	t.Logf("staff reply relayed %v after injection", time.Since(start).Round(time.Millisecond))
	if ccd := relayTo(tom); ccd.MessageID != relay.MessageID {
		t.Errorf("Tom got %s, Maria %s: want the same relayed message", ccd.MessageID, relay.MessageID)
	}
	if got := addrs(relay.From); !slices.Equal(got, []string{supportAddr}) {
		t.Errorf("relay From %v, want the support address", got)
	} else if name := relay.From[0].Name; !strings.Contains(name, "Dana Cohen") || !strings.Contains(name, "Northwind IT Support") {
		t.Errorf("relay From name %q, want Dana Cohen (Northwind IT Support)", name)
	}
	if !strings.Contains(relay.Subject, "["+ticket+"]") {
		t.Errorf("relay subject %q lacks the tag", relay.Subject)
	}
	if !slices.Contains(relay.References, orig.MessageID) {
		t.Errorf("relay References %v lack the customer's %s", relay.References, orig.MessageID)
	}
	if got := append(addrs(relay.To), addrs(relay.Cc)...); !slices.Contains(got, maria) || !slices.Contains(got, tom) ||
		slices.ContainsFunc(got, func(a string) bool { return strings.HasSuffix(a, "@northwind-it.example") }) {
		t.Errorf("relay addressed to %v, want Maria and Tom and no staff or gateway address", got)
	}
	for _, gone := range []string{"Resolution by", "Reply to this message to answer the customer", "password"} {
		if strings.Contains(relay.Text, gone) {
			t.Errorf("the relay shows %q:\n%s", gone, relay.Text)
		}
	}

	// Its INTERNALDATE is the ticket's first response (SPEC §3a).
	var replyAt time.Time
	for _, m := range stack.mustFetch(t, supportAddr, "Processed") {
		if m.MessageID == genuine.MessageID {
			replyAt = m.InternalDate
		}
	}
	if ts := g.tickets(t)[ticket]; replyAt.IsZero() || !ts.FirstResponse.Equal(replyAt) {
		t.Errorf("first response %v, want the staff reply's INTERNALDATE %v", ts.FirstResponse, replyAt)
	}

	time.Sleep(quiet)
	for user, want := range map[string]int{maria: 2, tom: 1, "dana@northwind-it.example": 0} {
		if got := stack.mustFetch(t, user, "INBOX"); len(got) != want {
			t.Errorf("%s has %s, want %d", user, describe(got), want)
		}
	}
	if got := stack.mustFetch(t, helpdeskAddr, "INBOX"); len(withText(got, answer)) != 0 {
		t.Errorf("the staff queue got the relay: %s", describe(got))
	}
	gw.stop(t, 15*time.Second)
}

// withText keeps the messages whose text part contains fragment.
func withText(msgs []fetched, fragment string) []fetched {
	var out []fetched
	for _, m := range msgs {
		if strings.Contains(m.Text, fragment) {
			out = append(out, m)
		}
	}
	return out
}

// autoresponder is the customer's naive auto-reply, played by the test: it
// answers every message that reaches its mailbox with a mail that looks
// human (no Auto-Submitted, no X-Autoreply, no Precedence), up to a cap.
type autoresponder struct {
	addr, name string
	threads    bool // keeps "Re: <subject>", In-Reply-To and References
	cap        int
	seen       map[uint32]bool
	sent       int
	capped     bool
}

func (a *autoresponder) answer(m fetched) composed {
	c := composed{
		From: a.name + " <" + a.addr + ">", To: supportAddr,
		MessageID: fmt.Sprintf("auto-%d-%s@globex.example", a.sent, randomHex(4)),
		Body:      "Hello,\n\nthank you for your message. I am travelling until next week and will answer as soon as I can.\n\nBest regards,\n" + a.name + "\n",
	}
	if a.threads {
		c.Subject, c.InReplyTo, c.References = "Re: "+m.Subject, m.MessageID, append(slices.Clone(m.References), m.MessageID)
		c.Body += quote(m.Text)
	} else {
		c.Subject = "Thank you for your message"
	}
	return c
}

// testAutoresponderLoopStops: two customer autoresponders answer the
// gateway's mail: one replies in the thread (its reply joins the ticket as
// a follow-up and gets no second acknowledgement), the other with a fixed
// subject and no threading headers (every reply opens a new ticket, and
// the per-sender limit of 5 acknowledgements an hour ends the exchange).
// Both exchanges must come to a stable end well inside the responders' caps.
func testAutoresponderLoopStops(t *testing.T, tools *toolset, bin string) {
	responders := []*autoresponder{
		{addr: "carol@globex.example", name: "Carol Diaz", threads: true, cap: 12},
		{addr: "dave@globex.example", name: "Dave Fisher", threads: false, cap: 12},
	}
	stack := startMailStack(t, tools, "carol@globex.example", "dave@globex.example")
	g := newGatewaySetup(t, bin, stack)
	gw := g.start(t)

	injected := 0
	for _, a := range responders {
		a.seen = map[uint32]bool{}
		first := composed{From: a.name + " <" + a.addr + ">", To: supportAddr, Subject: "Printer on the 3rd floor jams",
			MessageID: "first-" + randomHex(6) + "@globex.example", Body: "Hi,\n\nthe printer on the 3rd floor jams on every job.\n\n" + a.name + "\n"}
		stack.inject(t, a.addr, []string{supportAddr}, first.bytes())
		injected++
	}
	start := time.Now()
	lastActivity := time.Now()
	lastProcessed := -1
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, a := range responders {
			msgs := stack.mustFetch(t, a.addr, "INBOX")
			for _, m := range msgs {
				if a.seen[uint32(m.UID)] {
					continue
				}
				a.seen[uint32(m.UID)] = true
				lastActivity = time.Now()
				if a.sent >= a.cap {
					a.capped = true
					continue
				}
				a.sent++
				stack.inject(t, a.addr, []string{supportAddr}, a.answer(m).bytes())
				injected++
			}
		}
		n, err := stack.count(supportAddr, "Processed")
		if err != nil {
			t.Fatal(err)
		}
		if n != lastProcessed {
			// The quiet period counts from the gateway's last message too,
			// not only the responders': a gateway slow to start (a loaded
			// machine) has its acknowledgements still on the way.
			lastProcessed, lastActivity = n, time.Now()
		}
		if n == injected && time.Since(lastActivity) > quiet {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stable end after %v: %d of %d processed; responders sent %d and %d", time.Since(start),
				n, injected, responders[0].sent, responders[1].sent)
		}
		time.Sleep(150 * time.Millisecond)
	}
	t.Logf("stable after %v: %d messages processed", time.Since(start).Round(time.Millisecond), injected)

	for _, a := range responders {
		if a.capped {
			t.Errorf("%s hit its cap of %d replies: the gateway kept answering", a.addr, a.cap)
		}
		got := len(a.seen)
		switch {
		case a.threads && got != 1:
			t.Errorf("%s (replies in the thread) got %d messages, want exactly 1 acknowledgement", a.addr, got)
		case !a.threads && (got < 1 || got > 5):
			t.Errorf("%s (fixed subject) got %d messages, want 1 to 5 (acks_per_sender_per_hour)", a.addr, got)
		}
		t.Logf("%s received %d, sent %d", a.addr, got, a.sent)
	}
	perRequester := map[string]int{}
	for _, ts := range g.tickets(t) {
		perRequester[ts.Requester.Addr]++
	}
	if got := perRequester[responders[0].addr]; got != 1 {
		t.Errorf("%s has %d tickets, want 1 (its reply is a follow-up)", responders[0].addr, got)
	}
	t.Logf("tickets per requester %v; staff queue %s", perRequester, describe(stack.mustFetch(t, helpdeskAddr, "INBOX")))
	gw.stop(t, 15*time.Second)
}

// awaitLease makes CrashMidStream wait for the mail that the killed
// gateway had claimed from its outbox (its lease is 15 s) and then
// demand exactly one acknowledgement and one staff copy per ticket.
var awaitLease = flag.Duration("awaitlease", 0, "in CrashMidStream, wait this long for mail held by the killed gateway's outbox lease")

// deliveries reads every requester's INBOX and the staff queue: per ticket,
// the Message-IDs of its acknowledgements and staff copies (a message
// delivered twice appears twice: README promises one acknowledgement).
func (s *mailStack) deliveries(t *testing.T, state map[string]ticketState) (acks, copies map[string][]string) {
	t.Helper()
	acks, copies = map[string][]string{}, map[string][]string{}
	seen := map[string]bool{}
	for _, ts := range state {
		if seen[ts.Requester.Addr] {
			continue
		}
		seen[ts.Requester.Addr] = true
		for _, m := range s.mustFetch(t, ts.Requester.Addr, "INBOX") {
			id := m.Header.Get("X-Ticket-ID")
			acks[id] = append(acks[id], m.MessageID)
		}
	}
	for _, m := range s.mustFetch(t, helpdeskAddr, "INBOX") {
		id := m.Header.Get("X-Ticket-ID")
		copies[id] = append(copies[id], m.MessageID)
	}
	return acks, copies
}

// testRestartMidStream: 20 customers write, 150 ms apart, while the
// gateway runs; once about half are processed the gateway is stopped
// (SIGTERM: it must exit cleanly; SIGKILL: a crash, and the new instance
// must first wait out the dead one's mailbox lease) and started again
// while mail keeps arriving. In the end every message is processed once:
// one ticket per message in the state, numbered 1 to 20 (a duplicate would
// take number 21), exactly one acknowledgement per customer and one staff
// copy per ticket.
func testRestartMidStream(t *testing.T, tools *toolset, bin string, sig syscall.Signal) {
	const n = 20
	var users []string
	for i := 1; i <= n; i++ {
		users = append(users, fmt.Sprintf("user%02d@globex.example", i))
	}
	stack := startMailStack(t, tools, users...)
	g := newGatewaySetup(t, bin, stack)
	gw := g.start(t)

	var injected atomic.Int32
	messageIDs := make([]string, n)
	injectErr := make(chan error, 1)
	go func() {
		defer close(injectErr)
		for i, u := range users {
			m := composed{From: u, To: supportAddr, Subject: fmt.Sprintf("Request %02d: a laptop for a new colleague", i+1),
				MessageID: fmt.Sprintf("restart-%02d-%s@globex.example", i+1, randomHex(4)),
				Body:      "Hello,\n\nplease order a laptop for our new colleague.\n"}
			messageIDs[i] = m.MessageID
			if err := stack.send(u, []string{supportAddr}, m.bytes()); err != nil {
				injectErr <- err
				return
			}
			injected.Add(1)
			time.Sleep(150 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := stack.count(supportAddr, "Processed")
		if err != nil {
			t.Fatal(err)
		}
		if got >= n/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d processed after 30s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	atStop := injected.Load()
	if sig == syscall.SIGKILL {
		gw.kill(t)
	} else {
		took := gw.stop(t, 15*time.Second)
		t.Logf("the gateway stopped %v after SIGTERM", took.Round(time.Millisecond))
	}
	processedAtStop, err := stack.count(supportAddr, "Processed")
	if err != nil {
		t.Fatal(err)
	}
	gw2 := g.start(t)
	restart := time.Now()
	t.Logf("%v after %d processed of %d injected; restarted with %d injected", sig, processedAtStop, atStop, injected.Load())
	if processedAtStop >= n {
		t.Errorf("all %d were processed before the restart: the test did not restart mid-stream", n)
	}
	if err := <-injectErr; err != nil {
		t.Fatalf("inject: %v", err)
	}
	stack.awaitCount(t, supportAddr, "Processed", n, 45*time.Second)
	t.Logf("all processed %v after the restart", time.Since(restart).Round(time.Millisecond))

	want, state := oneTicketEach(t, g, messageIDs)

	// Mail queued before a crash and claimed by the dead instance's outbox
	// comes back when its claim's lease ends (15 s), at least once and
	// under the same Message-ID; everything queued by the new instance, and
	// everything after a clean stop, arrives now, exactly once. A ticket
	// numbered up to one past the count in Processed at the stop was stored
	// by the first instance (one message may have been stored, not moved).
	mayWait := func(ticket string) bool {
		if sig != syscall.SIGKILL || *awaitLease > 0 {
			return false
		}
		num, _ := strconv.Atoi(strings.TrimPrefix(ticket, "GLX-"))
		return num <= processedAtStop+1
	}
	limit := 30 * time.Second
	if sig == syscall.SIGKILL && *awaitLease > 0 {
		limit += *awaitLease
	}
	var acks, copies map[string][]string // ticket → Message-IDs of what arrived
	missing := func() []string {
		acks, copies = stack.deliveries(t, state)
		var out []string
		for _, id := range want {
			if !mayWait(id) && (len(acks[id]) == 0 || len(copies[id]) == 0) {
				out = append(out, id)
			}
		}
		return out
	}
	until := time.Now().Add(limit)
	for m := missing(); len(m) > 0; m = missing() {
		if time.Now().After(until) {
			t.Fatalf("after %v, no acknowledgement or staff copy yet for %v", limit, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("acknowledgements and staff copies in %v after the restart", time.Since(restart).Round(time.Millisecond))
	time.Sleep(quiet)
	missing()
	// A mail the killed instance had handed to Postfix but not yet marked
	// sent in Redis (SIGKILL between the two) is sent again, under the same
	// Message-ID: at least once, by design. Only the killed instance's
	// tickets may show that; anything else twice is a bug.
	killedSent := func(ticket string, ids []string) bool {
		if sig != syscall.SIGKILL {
			return false
		}
		num, _ := strconv.Atoi(strings.TrimPrefix(ticket, "GLX-"))
		return num <= processedAtStop+1 && len(slices.Compact(slices.Clone(ids))) == 1
	}
	var held, resent []string
	for _, id := range want {
		switch a, c := len(acks[id]), len(copies[id]); {
		case (a > 1 || c > 1) && killedSent(id, acks[id]) && killedSent(id, copies[id]):
			resent = append(resent, id)
		case a > 1 || c > 1:
			t.Errorf("%s: %d acknowledgements %v and %d staff copies %v, want one of each", id, a, acks[id], c, copies[id])
		case a == 0 || c == 0:
			if !mayWait(id) {
				t.Errorf("%s: %d acknowledgements and %d staff copies, want one of each", id, a, c)
			}
			held = append(held, id)
		}
	}
	if len(held) > 0 {
		t.Logf("mail of %v was claimed by the killed instance and waits for the outbox lease (run with -args -awaitlease 2m30s to see it arrive)", held)
	}
	if len(resent) > 0 {
		t.Logf("mail of %v reached Postfix from the killed instance before it could mark it sent, and was sent again under the same Message-ID (at least once)", resent)
	}
	if got, _ := stack.count(supportAddr, "Processed"); got != n {
		t.Errorf("%d messages processed, want %d", got, n)
	}
	if left := stack.mustFetch(t, supportAddr, "INBOX"); len(left) != 0 {
		t.Errorf("the support INBOX still has %s", describe(left))
	}
	gw2.stop(t, 15*time.Second)
}

// testBacklog: forty customers' mail waits in the mailbox before the
// gateway starts; it is handled in batches (one round trip for a batch's
// tickets, one for its commit) and its eighty mails go to Postfix several
// transactions per write (BDAT LAST chunks pipelined, notify.SendMany):
// one ticket each, and exactly one acknowledgement and one staff copy each.
func testBacklog(t *testing.T, tools *toolset, bin string) {
	const n = 40
	var users []string
	for i := 1; i <= n; i++ {
		users = append(users, fmt.Sprintf("backlog%02d@globex.example", i))
	}
	stack := startMailStack(t, tools, users...)
	g := newGatewaySetup(t, bin, stack)
	var messageIDs []string
	for i, u := range users {
		m := composed{From: u, To: supportAddr, Subject: fmt.Sprintf("Question %02d about the new printers", i+1),
			MessageID: fmt.Sprintf("backlog-%02d-%s@globex.example", i+1, randomHex(4)),
			Body:      "Hello,\n\nwhich toner do the new printers take?\n"}
		messageIDs = append(messageIDs, m.MessageID)
		if err := stack.send(u, []string{supportAddr}, m.bytes()); err != nil {
			t.Fatalf("inject: %v", err)
		}
	}
	stack.awaitCount(t, supportAddr, "INBOX", n, 30*time.Second)
	gw := g.start(t)
	start := time.Now()
	stack.awaitCount(t, supportAddr, "Processed", n, 30*time.Second)
	want, state := oneTicketEach(t, g, messageIDs)
	var acks, copies map[string][]string
	until := time.Now().Add(30 * time.Second)
	for {
		acks, copies = stack.deliveries(t, state)
		done := 0
		for _, id := range want {
			if len(acks[id]) > 0 && len(copies[id]) > 0 {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Now().After(until) {
			t.Fatalf("after 30s, acknowledgements and staff copies for %d of %d tickets", done, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a backlog of %d: every acknowledgement and staff copy in Dovecot %v after the start", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(quiet)
	acks, copies = stack.deliveries(t, state)
	for _, id := range want {
		if a, c := len(acks[id]), len(copies[id]); a != 1 || c != 1 {
			t.Errorf("%s: %d acknowledgements and %d staff copies, want one of each", id, a, c)
		}
	}
	// Postfix offers PIPELINING and CHUNKING: the outbox gave sessions
	// several messages at once (the gateway logs at debug level here).
	if !regexp.MustCompile(`msg="smtp sent pipelined" .*messages=([2-9]|[1-9][0-9])`).MatchString(gw.log()) {
		t.Errorf("no pipelined send of several messages in the gateway's log")
	}
}

// oneTicketEach checks that the gateway opened tickets GLX-0001 to
// GLX-<n>, one for each of the n messageIDs, and returns their ids and
// state.
func oneTicketEach(t *testing.T, g *gatewaySetup, messageIDs []string) ([]string, map[string]ticketState) {
	t.Helper()
	var want []string
	for i := 1; i <= len(messageIDs); i++ {
		want = append(want, fmt.Sprintf("GLX-%04d", i))
	}
	state := g.tickets(t)
	if ids := slices.Sorted(maps.Keys(state)); !slices.Equal(ids, want) {
		t.Errorf("tickets %v, want %v", ids, want)
	}
	var stateIDs []string
	for _, ts := range state {
		stateIDs = append(stateIDs, ts.MessageID)
	}
	if slices.Sort(stateIDs); !slices.Equal(stateIDs, slices.Sorted(slices.Values(messageIDs))) {
		t.Errorf("tickets opened for messages %v, want one for each of %v", stateIDs, messageIDs)
	}
	return want, state
}
