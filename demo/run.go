package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
)

// Options of a demo run.
type Options struct {
	RedisURL string
	Log      *slog.Logger // nil: quiet
	Timeout  time.Duration
}

// Run starts the world and the gateway, delivers the sample mail and writes
// what happened to out.
func Run(ctx context.Context, out io.Writer, opt Options) error {
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	log := opt.Log
	if log == nil {
		log = discardLogger()
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()

	w, err := NewWorld(ctx, WorldOptions{RedisURL: opt.RedisURL, AllowEmbedded: true})
	if err != nil {
		return err
	}
	defer w.Close()
	samples, err := Samples()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ticketgw demo: the real pipeline (IMAP → rules → Redis → SMTP) on an embedded mail world\n\n")
	fmt.Fprintf(out, "  IMAP   in-process go-imap server at %s, mailbox %s (IDLE)\n", w.IMAP.Addr, SupportAddress)
	fmt.Fprintf(out, "  SMTP   in-process catcher at %s (nothing leaves this process)\n", w.SMTP.Addr)
	fmt.Fprintf(out, "  Redis  %s, key prefix %q (removed at the end)\n", w.RedisDesc, w.Prefix)
	fmt.Fprintf(out, "  Config examples/gateway.yaml (%d contracts, %d rules)\n\n", len(w.Config.Contracts), len(w.Config.Rules))

	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var outcomes []service.Outcome
	done := make(chan struct{}, len(samples))
	g, err := service.New(ctx, w.Config, tmpl, log, service.Options{
		Redis:     w.Redis,
		OnOutcome: func(o service.Outcome) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock(); done <- struct{}{} },
	})
	if err != nil {
		return err
	}
	defer g.Close()
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- g.Run(runCtx) }()

	fmt.Fprintf(out, "Customer mail arrives in the support mailbox:\n")
	start := time.Now()
	for _, s := range samples {
		if err := w.IMAP.Deliver("INBOX", s.Raw, s.Received); err != nil {
			stop()
			return err
		}
		fmt.Fprintf(out, "  %s  %s\n", s.Received.Format("Mon 02 Jan 2006 15:04 -0700"), s.Name)
	}
	for range samples {
		select {
		case <-done:
		case <-ctx.Done():
			stop()
			return fmt.Errorf("the gateway did not process the sample mail in time: %w", ctx.Err())
		}
	}
	// Acknowledgements and staff copies: one ack per ticket that acks, and
	// one staff copy per ticket.
	mu.Lock()
	want := 0
	for _, o := range outcomes {
		if o.Action == "ticket" {
			want++
			if o.Decision.Class.Ack {
				want++
			}
		}
	}
	mu.Unlock()
	mails, err := w.SMTP.WaitFor(ctx, want)
	elapsed := time.Since(start)
	if err != nil {
		stop()
		return err
	}

	// Act two: a technician answers the Hebrew fault from their own mail
	// client, with a command on the first line. The receiving mail server
	// vouched for the staff domain (Authentication-Results), so the gateway
	// obeys the command and relays the rest to the customer.
	var fault *service.Outcome
	mu.Lock()
	for i := range outcomes {
		if outcomes[i].Action == "ticket" && outcomes[i].Ticket.Category == domain.Fault {
			fault = &outcomes[i]
		}
	}
	mu.Unlock()
	var relay *localmail.Mail
	var staffRaw []byte
	if fault != nil {
		staffRaw = staffReply(fault.Ticket, w.Config.Staff.TrustedAuthservID)
		at := fault.Ticket.Opened.Add(20 * time.Minute)
		if err := w.IMAP.Deliver("INBOX", staffRaw, at); err != nil {
			stop()
			return err
		}
		select {
		case <-done:
		case <-ctx.Done():
			stop()
			return fmt.Errorf("the staff reply was not processed in time: %w", ctx.Err())
		}
		all, err := w.SMTP.WaitFor(ctx, len(mails)+1)
		if err != nil {
			stop()
			return err
		}
		relay = &all[len(all)-1]
	}
	// A message is moved to Processed just after its handler returns: let
	// the last move happen before stopping.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left, err := w.IMAP.Count("INBOX"); err != nil || left == 0 {
			break
		}
	}
	stop()
	<-runErr

	fmt.Fprintf(out, "\nWhat the gateway did (%d messages in %s):\n", len(samples), elapsed.Round(time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	// In arrival order: messages are handled side by side, so outcomes come
	// in the order handling finished.
	slices.SortStableFunc(outcomes, func(a, b service.Outcome) int {
		if a.Decision.Msg == nil || b.Decision.Msg == nil {
			return 0
		}
		return a.Decision.Msg.Received.Compare(b.Decision.Msg.Received)
	})
	for _, o := range outcomes {
		m := o.Decision.Msg
		if o.Action == "staff-reply" {
			continue // shown below
		}
		if o.Action != "ticket" {
			fmt.Fprintf(out, "\n  ✗ %s from %s: no ticket, no acknowledgement (%s: %s)\n", quote(m.Subject), m.From.Addr, o.Decision.Class.AckReason, m.AutoWhy)
			continue
		}
		t := o.Ticket
		fmt.Fprintf(out, "\n  ✓ Ticket %s  contract %s  %s/%s  rules %s\n", t.ID, t.Contract, t.Category, t.Priority, strings.Join(t.Rules, ","))
		fmt.Fprintf(out, "    from %s, subject %s\n", m.From.Addr, quote(m.Subject))
		loc := o.Decision.Loc
		const layout = "Mon 02 Jan 2006 15:04 MST"
		fmt.Fprintf(out, "    received %s", t.Opened.In(loc).Format(layout))
		if t.EffectiveStart.After(t.Opened) {
			fmt.Fprintf(out, ", clock starts %s", t.EffectiveStart.In(loc).Format(layout))
		}
		fmt.Fprintln(out)
		if !t.ResponseDue.IsZero() {
			fmt.Fprintf(out, "    response due   %s\n", t.ResponseDue.In(loc).Format(layout))
		}
		if !t.ResolutionDue.IsZero() {
			fmt.Fprintf(out, "    resolution due %s\n", t.ResolutionDue.In(loc).Format(layout))
		}
		if t.IMACDate != "" {
			fmt.Fprintf(out, "    IMAC scheduled %s (IMAC %d of %d this month)\n", t.IMACDate, t.IMACQuotaUse, t.IMACQuota)
		}
		for _, ml := range mails {
			pm := ingest.Parse(bytes.NewReader(ml.Raw), ingest.DefaultLimits())
			if v, _ := pm.Header("X-Ticket-ID"); v != t.ID {
				continue
			}
			if a, _ := pm.Header("Auto-Submitted"); a == "auto-replied" {
				fmt.Fprintf(out, "\n    Acknowledgement to %s:\n      Subject: %s\n", strings.Join(ml.To, ", "), pm.Subject)
				for _, line := range strings.Split(strings.TrimRight(pm.Text, "\n"), "\n") {
					fmt.Fprintf(out, "      │ %s\n", line)
				}
			} else {
				fmt.Fprintf(out, "\n    Staff copy to %s: %s (%d attachment(s) forwarded)\n", strings.Join(ml.To, ", "), quote(pm.Subject), countAttachments(pm))
			}
		}
	}
	if relay != nil && fault != nil {
		st := g.Store
		t, err := st.Ticket(context.WithoutCancel(ctx), fault.Ticket.ID)
		if err != nil {
			return err
		}
		pm := ingest.Parse(bytes.NewReader(relay.Raw), ingest.DefaultLimits())
		fmt.Fprintf(out, "\nA technician replies from their own mail client (first line \"#priority urgent\"):\n")
		fmt.Fprintf(out, "  ✓ %s is now %s/%s; first response recorded at %s; response timers cancelled\n",
			t.ID, t.Category, t.Priority, t.FirstResponse.In(fault.Decision.Loc).Format("15:04 MST"))
		fmt.Fprintf(out, "  ✓ relayed to %s from %q, subject %s:\n", strings.Join(relay.To, ", "), pm.From.Name, quote(pm.Subject))
		for _, line := range strings.Split(strings.TrimRight(pm.Text, "\n"), "\n") {
			fmt.Fprintf(out, "      │ %s\n", line)
		}
	}
	n, _ := w.IMAP.Count("Processed")
	left, _ := w.IMAP.Count("INBOX")
	fmt.Fprintf(out, "\nMailbox: %d message(s) moved to Processed, %d left in INBOX. SMTP catcher received %d message(s).\n", n, left, len(w.SMTP.Mail()))

	// The quarterly review a new user would otherwise wait a quarter for:
	// built from a generated history of three quarters stored through the
	// same store, after the live flow so its ticket numbers stay as shown.
	path, err := WriteSampleQBR(context.WithoutCancel(ctx), w, "")
	if err != nil {
		return fmt.Errorf("write the sample QBR: %w", err)
	}
	fmt.Fprintf(out, "\nQuarterly review of ACME for 2026-Q3 (from a generated history of three quarters): %s\n", path)
	return nil
}

// staffReply is a technician's answer to the staff copy of ticket t, as it
// arrives in the support mailbox: the receiving server has added its
// Authentication-Results on top.
func staffReply(t domain.Ticket, authserv string) []byte {
	return []byte("Authentication-Results: " + authserv + "; dkim=pass header.d=northwind-it.example header.s=mail; spf=pass smtp.mailfrom=northwind-it.example\r\n" +
		"From: Dana Cohen <dana@northwind-it.example>\r\n" +
		"To: " + SupportAddress + "\r\n" +
		"Subject: RE: [" + t.ID + "] " + t.Subject + "\r\n" +
		"Date: Mon, 30 Nov 2026 09:50:00 +0200\r\n" +
		"Message-ID: <staff-reply-1@northwind-it.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"#priority urgent\r\n" +
		"\r\n" +
		"שלום יוסי,\r\n" +
		"טכנאי בדרך אליכם ויגיע תוך שעה. בינתיים אפשר לנסות לכבות ולהדליק את הנתב.\r\n" +
		"\r\n" +
		"דנה\r\n")
}

func quote(s string) string { return "«" + s + "»" }

func countAttachments(m *domain.Message) int { return len(m.Attachments) }
