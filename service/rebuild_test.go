package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// rbState is what a rebuild must reproduce: every ticket with its events,
// the SLA timers and the IMAC counters, per contract.
type rbState struct {
	Tickets map[string]string   // id -> ticket JSON
	Events  map[string][]string // id -> event JSON lines
	Timers  []string            // "contract ticket kind due", sorted
	IMAC    map[string]string   // contract -> counters of Dec 2026
}

func rbSnapshot(t *testing.T, ctx context.Context, st *store.Store, contracts []string) rbState {
	t.Helper()
	s := rbState{Tickets: map[string]string{}, Events: map[string][]string{}, IMAC: map[string]string{}}
	for _, c := range contracts {
		ts, err := st.TicketsByContract(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			b, _ := json.Marshal(tk)
			s.Tickets[tk.ID] = string(b)
			evs, err := st.Events(ctx, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				b, _ := json.Marshal(ev)
				s.Events[tk.ID] = append(s.Events[tk.ID], string(b))
			}
		}
		timers, err := st.PendingTimers(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, tm := range timers {
			s.Timers = append(s.Timers, fmt.Sprintf("%s %s %s %s", c, tm.Ticket, tm.Kind, tm.Due.UTC().Format(time.RFC3339Nano)))
		}
		u, err := st.IMACUsage(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		s.IMAC[c] = fmt.Sprintf("month %d, 1st %d, 8th %d, 15th %d", u.MonthUsed(2026, time.December),
			u.DayUsed(rbDate(1)), u.DayUsed(rbDate(8)), u.DayUsed(rbDate(15)))
	}
	slices.Sort(s.Timers)
	return s
}

func rbDate(day int) sla.Date { return sla.Date{Year: 2026, Month: time.December, Day: day} }

// rbCompare reports every difference between two states.
func rbCompare(t *testing.T, what string, want, got rbState) {
	t.Helper()
	for id, w := range want.Tickets {
		if g := got.Tickets[id]; g != w {
			t.Errorf("%s: ticket %s\n got %s\nwant %s", what, id, g, w)
		}
	}
	for id := range got.Tickets {
		if _, ok := want.Tickets[id]; !ok {
			t.Errorf("%s: unexpected ticket %s: %s", what, id, got.Tickets[id])
		}
	}
	for id, w := range want.Events {
		if g := got.Events[id]; strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s: events of %s\n got %s\nwant %s", what, id, strings.Join(g, "\n     "), strings.Join(w, "\n     "))
		}
	}
	if strings.Join(got.Timers, "\n") != strings.Join(want.Timers, "\n") {
		t.Errorf("%s: timers\n got %q\nwant %q", what, got.Timers, want.Timers)
	}
	for c, w := range want.IMAC {
		if g := got.IMAC[c]; g != w {
			t.Errorf("%s: IMAC counters of %q: got %s, want %s", what, c, g, w)
		}
	}
}

// rbDeletePrefix removes the prefix's keys (never FLUSHDB: the server is
// shared), as a Redis that lost its data.
func rbDeletePrefix(t *testing.T, ctx context.Context, w *demo.World) {
	t.Helper()
	iter := w.Redis.Scan(ctx, 0, w.Prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys under the prefix")
	}
	if err := w.Redis.Unlink(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// rbMail returns the one caught mail whose Message-ID starts with prefix.
func rbMail(t *testing.T, w *demo.World, prefix string) convMail {
	t.Helper()
	var out []convMail
	for _, m := range w.SMTP.Mail() {
		cm := convParse(m)
		if strings.HasPrefix(cm.Msg.MessageID, prefix) {
			out = append(out, cm)
		}
	}
	if len(out) != 1 {
		t.Fatalf("want one mail with a Message-ID starting %q, got %d", prefix, len(out))
	}
	return out[0]
}

// TestRebuild runs the sample mail and a conversation (a staff reply that
// changes the priority, a customer follow-up that names only our
// acknowledgement, a #pending and the customer's answer that resumes the
// clock) through a gateway, loses Redis's keys, and rebuilds them from the
// processed folder: the same tickets, events, timers and IMAC counters, and
// nothing sent. Rebuilt again later, the deadlines that passed meanwhile are
// recorded as breaches without a notice and no timer is left behind.
func TestRebuild(t *testing.T) {
	e2eRequireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	w := newConvWorld(t, ctx, localmail.IMAPOptions{})
	for i := range w.Config.Mailboxes {
		w.Config.Mailboxes[i].IDLE, w.Config.Mailboxes[i].PollInterval = false, 20*time.Millisecond
	}
	cfg := w.Config
	contracts := []string{""}
	for _, c := range cfg.Contracts {
		contracts = append(contracts, c.ID)
	}
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	logs := &convLogBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_LOG") != "" {
			t.Logf("log:\n%s", logs.String())
		}
	})
	log := slog.New(slog.NewTextHandler(logs, nil))
	st := store.New(w.Redis, cfg.Redis.Prefix)

	// The gateway's clock stands before every deadline: no timer fires
	// while the conversation runs.
	clock := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	g, err := service.New(ctx, cfg, tmpl, log.With("gw", "live"), service.Options{
		Redis: w.Redis, Now: func() time.Time { return clock }, OutboxIdle: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	delivered := 0
	deliver := func(raw []byte, at time.Time) {
		t.Helper()
		if err := w.IMAP.Deliver("INBOX", raw, at); err != nil {
			t.Fatal(err)
		}
		delivered++
		convWaitFor(t, ctx, "the gateway to handle and send everything", func() (bool, string) {
			inbox, _ := w.IMAP.Count("INBOX")
			processed, _ := w.IMAP.Count("Processed")
			depth, _, err := st.OutboxDepth(ctx)
			return err == nil && inbox == 0 && processed == delivered && depth == 0,
				fmt.Sprintf("inbox %d, processed %d of %d, outbox %d %v", inbox, processed, delivered, depth, err)
		})
	}

	samples, err := demo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		deliver(s.Raw, s.Received)
	}
	// ACME-0001 is the Sunday IMAC, ACME-0002 the Hebrew fault, GLX-0001
	// Globex's request.
	faultFwd := rbMail(t, w, "fwd.ACME-0002.")
	deliver(convStaffReply(faultFwd, "#priority urgent\n\nטכנאי בדרך אליכם.", time.Date(2026, 11, 30, 7, 50, 0, 0, time.UTC)).raw(),
		time.Date(2026, 11, 30, 7, 50, 0, 0, time.UTC))
	glxAck := rbMail(t, w, "ack.GLX-0001.")
	glxFwd := rbMail(t, w, "fwd.GLX-0001.")
	// A follow-up that threads only by our acknowledgement's Message-ID:
	// no tag in the subject, no reference to the original.
	deliver(convMsg{
		From: "Maria Lopez <maria.lopez@globex.example>", To: demo.SupportAddress,
		Subject: "Also the shared calendar", MessageID: "followup-1@globex.example",
		InReplyTo: glxAck.Msg.MessageID, References: []string{glxAck.Msg.MessageID},
		Received: time.Date(2026, 11, 30, 14, 40, 0, 0, time.UTC), Body: "Please add the shared calendar too.",
	}.raw(), time.Date(2026, 11, 30, 14, 40, 0, 0, time.UTC))
	deliver(convStaffReply(glxFwd, "#pending\n\nWhich team members need access?", time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)).raw(),
		time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC))
	relay := rbMail(t, w, "relay.GLX-0001.")
	deliver(convReply(relay, "Maria Lopez <maria.lopez@globex.example>", "Ann and Bob from sales.",
		time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC)).raw(), time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC))

	stop()
	if err := <-done; err != nil {
		t.Fatalf("gateway run: %v", err)
	}
	g.Close()

	want := rbSnapshot(t, ctx, st, contracts)
	if len(want.Tickets) != 3 || len(want.Timers) == 0 {
		t.Fatalf("the conversation left %d tickets and %d timers: %+v", len(want.Tickets), len(want.Timers), want)
	}
	if evs := want.Events["GLX-0001"]; len(evs) != 4 {
		t.Fatalf("GLX-0001 has %d events, want 4 (opened, follow-up, pending, follow-up resuming): %s", len(evs), evs)
	}
	sent := len(w.SMTP.Mail())
	nothingSent := func(what string) {
		t.Helper()
		if n := len(w.SMTP.Mail()); n != sent {
			t.Errorf("%s: %d mail(s) sent", what, n-sent)
		}
		if depth, _, err := st.OutboxDepth(ctx); err != nil || depth != 0 {
			t.Errorf("%s: outbox depth %d %v", what, depth, err)
		}
	}

	// Redis loses the data; the rebuild replays the processed folder.
	rbDeletePrefix(t, ctx, w)
	if got := rbSnapshot(t, ctx, st, contracts); len(got.Tickets) != 0 {
		t.Fatal("keys still there")
	}
	opt := service.RebuildOptions{Now: func() time.Time { return clock }, Log: log.With("gw", "rebuild")}
	stats, err := service.Rebuild(ctx, cfg, tmpl, store.New(w.Redis, cfg.Redis.Prefix), opt)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if stats.Messages != delivered || stats.Tickets != 3 || stats.MailNotSent == 0 || stats.Breaches != 0 ||
		stats.ThreadMismatches != 0 || stats.Timers != len(want.Timers) {
		t.Errorf("stats %+v; want %d messages, 3 tickets, %d timers", stats, delivered, len(want.Timers))
	}
	t.Logf("rebuild: %+v; timers %q", stats, want.Timers)
	rbCompare(t, "rebuilt", want, rbSnapshot(t, ctx, st, contracts))
	nothingSent("rebuild")
	// The acknowledgement's id, lost with Redis, was indexed again when
	// the follow-up named it: later replies to it thread as before.
	if id, ok, err := st.TicketByMessageID(ctx, glxAck.Msg.MessageID); err != nil || !ok || id != "GLX-0001" {
		t.Errorf("ack id after rebuild: %q %v %v", id, ok, err)
	}
	if id, ok, err := st.TicketByMessageID(ctx, "CAF1-hebrew-fault-0001@mail.acme.co.il"); err != nil || !ok || id != "ACME-0002" {
		t.Errorf("customer's id after rebuild: %q %v %v", id, ok, err)
	}

	// Again: refused on a populated store, a no-op when forced.
	if _, err := service.Rebuild(ctx, cfg, tmpl, store.New(w.Redis, cfg.Redis.Prefix), opt); !errors.Is(err, service.ErrStateNotEmpty) {
		t.Errorf("second rebuild: %v, want ErrStateNotEmpty", err)
	}
	forced := opt
	forced.Force = true
	if stats, err := service.Rebuild(ctx, cfg, tmpl, store.New(w.Redis, cfg.Redis.Prefix), forced); err != nil || stats.Tickets != 0 {
		t.Errorf("forced second rebuild: %+v %v", stats, err)
	}
	rbCompare(t, "rebuilt twice", want, rbSnapshot(t, ctx, st, contracts))

	// A running gateway holds the mailbox lease: no rebuild meanwhile.
	mb := cfg.Mailboxes[0].Address
	if ok, err := st.AcquireLease(ctx, mb, "another-instance", time.Minute); err != nil || !ok {
		t.Fatalf("take lease: %v %v", ok, err)
	}
	if _, err := service.Rebuild(ctx, cfg, tmpl, store.New(w.Redis, cfg.Redis.Prefix), forced); err == nil || !strings.Contains(err.Error(), "stop every gateway") {
		t.Errorf("rebuild while the lease is held: %v", err)
	}
	if err := st.ReleaseLease(ctx, mb, "another-instance"); err != nil {
		t.Fatal(err)
	}

	// Rebuilt two weeks later: every deadline has passed. The breaches are
	// recorded at their deadlines, as the timer worker records them, but
	// no notice goes out and no timer is left.
	rbDeletePrefix(t, ctx, w)
	late := opt
	lateNow := time.Date(2026, 12, 14, 12, 0, 0, 0, time.UTC)
	late.Now = func() time.Time { return lateNow }
	stats, err = service.Rebuild(ctx, cfg, tmpl, store.New(w.Redis, cfg.Redis.Prefix), late)
	if err != nil {
		t.Fatalf("late rebuild: %v", err)
	}
	got := rbSnapshot(t, ctx, st, contracts)
	wantBreaches, wantWarnings := map[string][]string{}, 0
	for _, tm := range want.Timers {
		f := strings.Fields(tm) // contract ticket kind due
		switch f[2] {
		case store.ResponseBreach, store.ResolutionBreach:
			wantBreaches[f[1]] = append(wantBreaches[f[1]], f[3])
		default:
			wantWarnings++
		}
	}
	breaches := 0
	for id, evs := range want.Events {
		gotEvs := got.Events[id]
		if len(gotEvs) < len(evs) || strings.Join(gotEvs[:len(evs)], "\n") != strings.Join(evs, "\n") {
			t.Errorf("late rebuild: events of %s\n got %s\nwant them to start with %s", id, gotEvs, evs)
			continue
		}
		var at []string
		for _, raw := range gotEvs[len(evs):] {
			var ev domain.Event
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Kind != domain.EventBreached || ev.Actor != "sla" || ev.Data["deadline"] == "" {
				t.Errorf("late rebuild: %s got event %s, want only breaches", id, raw)
			}
			at = append(at, ev.At.UTC().Format(time.RFC3339Nano))
			breaches++
		}
		if strings.Join(at, " ") != strings.Join(wantBreaches[id], " ") {
			t.Errorf("late rebuild: breaches of %s at %v, want %v", id, at, wantBreaches[id])
		}
	}
	t.Logf("late rebuild: %+v", stats)
	if len(got.Timers) != 0 || stats.Timers != 0 {
		t.Errorf("late rebuild left timers: %q", got.Timers)
	}
	if stats.Breaches != breaches || breaches == 0 || stats.WarningsSkipped != wantWarnings {
		t.Errorf("late rebuild stats %+v; want %d breaches, %d warnings skipped", stats, breaches, wantWarnings)
	}
	for id, w := range want.Tickets {
		if got.Tickets[id] != w {
			t.Errorf("late rebuild: ticket %s\n got %s\nwant %s", id, got.Tickets[id], w)
		}
	}
	nothingSent("late rebuild")
}

// TestRebuildReplaysDeadlines: a gateway whose clock runs with the mail
// records a breach between two messages of a ticket (its resolution
// deadline passes before the staff resolve it). The rebuild replays that
// deadline at its instant, between the same two messages, without mailing
// the notice the gateway sent: the same events, in the same order.
func TestRebuildReplaysDeadlines(t *testing.T) {
	e2eRequireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := newConvWorld(t, ctx, localmail.IMAPOptions{})
	for i := range w.Config.Mailboxes {
		w.Config.Mailboxes[i].IDLE, w.Config.Mailboxes[i].PollInterval = false, 20*time.Millisecond
	}
	cfg := w.Config
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	logs := &convLogBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("E2E_LOG") != "" {
			t.Logf("log:\n%s", logs.String())
		}
	})
	log := slog.New(slog.NewTextHandler(logs, nil))
	st := store.New(w.Redis, cfg.Redis.Prefix)
	clock := newE2EClock(time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC))
	g, err := service.New(ctx, cfg, tmpl, log.With("gw", "live"), service.Options{
		Redis: w.Redis, Now: clock.Now, OutboxIdle: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	g.Timers.Idle = 10 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	delivered := 0
	// deliver moves the clock to the message's arrival, lets the timers due
	// by then fire, and hands the message to the gateway.
	deliver := func(raw []byte, at time.Time) {
		t.Helper()
		clock.Advance(at.Sub(clock.Now()))
		convWaitFor(t, ctx, "the timers due to fire", func() (bool, string) {
			timers, err := st.PendingTimers(ctx, "acme")
			due := 0
			for _, tm := range timers {
				if !tm.Due.After(at) {
					due++
				}
			}
			depth, _, derr := st.OutboxDepth(ctx)
			return err == nil && derr == nil && due == 0 && depth == 0, fmt.Sprintf("%d due, outbox %d", due, depth)
		})
		if err := w.IMAP.Deliver("INBOX", raw, at); err != nil {
			t.Fatal(err)
		}
		delivered++
		convWaitFor(t, ctx, "the gateway to handle and send everything", func() (bool, string) {
			inbox, _ := w.IMAP.Count("INBOX")
			processed, _ := w.IMAP.Count("Processed")
			depth, _, err := st.OutboxDepth(ctx)
			return err == nil && inbox == 0 && processed == delivered && depth == 0,
				fmt.Sprintf("inbox %d, processed %d of %d, outbox %d %v", inbox, processed, delivered, depth, err)
		})
	}
	samples, err := demo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	var fault demo.Sample
	for _, s := range samples {
		if strings.HasPrefix(s.Name, "fault-") {
			fault = s
		}
	}
	deliver(fault.Raw, fault.Received) // ACME-0001, a high fault
	fwd := rbMail(t, w, "fwd.ACME-0001.")
	// Urgent from its start: resolution due 12:30:12Z, warning at 11:42:12Z.
	at := time.Date(2026, 11, 30, 7, 50, 0, 0, time.UTC)
	deliver(convStaffReply(fwd, "#priority urgent\n\nOn it.", at).raw(), at)
	at = time.Date(2026, 11, 30, 13, 0, 0, 0, time.UTC) // after the resolution deadline
	deliver(convStaffReply(fwd, "#resolve\n\nThe router was replaced.", at).raw(), at)
	ack := rbMail(t, w, "ack.ACME-0001.")
	at = time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	deliver(convReply(ack, "Yossi <yossi@acme.co.il>", "It fails again.", at).raw(), at)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("gateway run: %v", err)
	}
	g.Close()

	want := rbSnapshot(t, ctx, st, []string{"acme"})
	notices := len(convOfKind(convMails(w), "sla"))
	if notices != 1 {
		t.Fatalf("the gateway sent %d SLA notices, want the one breach", notices)
	}
	sent := len(w.SMTP.Mail())

	rbDeletePrefix(t, ctx, w)
	stats, err := service.Rebuild(ctx, cfg, tmpl, store.New(w.Redis, cfg.Redis.Prefix),
		service.RebuildOptions{Now: clock.Now, Log: log.With("gw", "rebuild")})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	got := rbSnapshot(t, ctx, st, []string{"acme"})
	// The gateway noticed the breach at its next round, the replay at the
	// deadline itself: only the "notified" time and the business time
	// overdue at that moment differ.
	mask := func(evs []string) []string {
		var out []string
		for _, raw := range evs {
			var ev domain.Event
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Kind == domain.EventBreached {
				delete(ev.Data, "notified")
				delete(ev.Data, "overdue_business")
			}
			b, _ := json.Marshal(ev)
			out = append(out, string(b))
		}
		return out
	}
	for id := range want.Events {
		want.Events[id], got.Events[id] = mask(want.Events[id]), mask(got.Events[id])
	}
	rbCompare(t, "rebuilt", want, got)
	kinds := func(evs []string) string {
		var k []string
		for _, raw := range evs {
			var ev domain.Event
			_ = json.Unmarshal([]byte(raw), &ev)
			k = append(k, string(ev.Kind))
		}
		return strings.Join(k, " ")
	}
	if k := kinds(got.Events["ACME-0001"]); k != "opened response breached resolved reopened" {
		t.Errorf("events %s", k)
	}
	if stats.Breaches != 1 {
		t.Errorf("stats %+v, want one breach", stats)
	}
	if n := len(w.SMTP.Mail()); n != sent {
		t.Errorf("the rebuild sent %d mail(s)", n-sent)
	}
}

func convMails(w *demo.World) []convMail {
	var out []convMail
	for _, m := range w.SMTP.Mail() {
		out = append(out, convParse(m))
	}
	return out
}
