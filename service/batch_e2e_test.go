package service_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/service"
)

// batchBacklog is a backlog whose messages depend on each other in every
// way the pipeline knows: a follow-up and an out-of-office reply to
// messages earlier in the same batch, a duplicate, one sender over the
// acknowledgement limit, IMACs competing for quota places, a ticket tag
// in a subject, a staff reply with a command to a ticket the backlog
// opened, an unknown sender, a message without a Message-ID, and, across
// the IMAP batches of 32, a reply to a message of the batch before.
func batchBacklog() []e2eMsg {
	base := e2eMessages(40)
	jer := e2eLoc("Asia/Jerusalem")
	at := func(i int) time.Time {
		return time.Date(2026, 11, 30, 9, 0, 0, 0, jer).Add(time.Duration(i) * time.Minute)
	}
	mk := func(i int, from, subject, id, extra, body string) e2eMsg {
		var b strings.Builder
		fmt.Fprintf(&b, "From: <%s>\r\nTo: support@northwind-it.example\r\nSubject: %s\r\nDate: %s\r\n", from, subject, at(i).Format(time.RFC1123Z))
		if id != "" {
			fmt.Fprintf(&b, "Message-ID: <%s>\r\n", id)
		}
		b.WriteString(extra)
		fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", body)
		return e2eMsg{MessageID: id, From: from, Raw: []byte(b.String()), Received: at(i)}
	}
	var out []e2eMsg
	add := func(m e2eMsg) { out = append(out, m) }
	add(base[0]) // ACME-0001
	add(base[1]) // ACME-0002
	add(mk(2, base[0].From, "Re: Printer on floor 00 not working", "fu-2@mail.acme.co.il",
		"In-Reply-To: <"+base[0].MessageID+">\r\nReferences: <"+base[0].MessageID+">\r\n", "Still broken, please hurry."))
	dup := base[1]
	dup.Received = at(3)
	add(dup) // the same message again
	add(mk(4, base[1].From, "Automatic reply: Question 01 about licences", "ooo-4@mail.acme.co.il",
		"Auto-Submitted: auto-replied\r\nIn-Reply-To: <"+base[1].MessageID+">\r\n", "I am out of the office until Monday."))
	for i := 5; i < 11; i++ { // one sender, six messages: the sixth is not acknowledged
		subject, body := fmt.Sprintf("Question %02d from the same person", i), "Another question."
		if i%2 == 0 {
			subject, body = fmt.Sprintf("New employee %02d: laptop", i), "A new employee starts on Monday; please install a laptop."
		}
		add(mk(i, "busy@acme.co.il", subject, fmt.Sprintf("busy-%02d@mail.acme.co.il", i), "", body))
	}
	add(mk(11, base[0].From, "[ACME-0001] one more detail", "tag-11@mail.acme.co.il", "", "It is the one on the left."))
	add(mk(12, "dana@northwind-it.example", "Re: [ACME-0002] Question 01 about licences", "staff-12@northwind-it.example", convARPass+"\r\n",
		"#priority high\n\nHi, we are on it.\n\nDana"))
	add(mk(13, "someone@unknown.example", "Hello?", "unknown-13@unknown.example", "", "Who handles our printers?"))
	add(mk(14, "noid@acme.co.il", "No Message-ID here", "", "", "Our scanner is broken."))
	for i := 15; i < 22; i++ {
		m := base[i]
		if i%3 == 0 {
			m = mk(i, base[i].From, fmt.Sprintf("New employee %02d: laptop", i), base[i].MessageID, "", "A new employee starts on Monday; please install a laptop.")
		}
		add(m)
	}
	// A run of plain new tickets, as most of a backlog is.
	for i := 22; i < 38; i++ {
		add(base[i])
	}
	// The first IMAP batch ends at 32 messages: this one answers a message
	// of that batch, and this one the message before it.
	add(mk(40, base[15].From, "Re: follow-up", "fu-40@mail.acme.co.il", "In-Reply-To: <"+base[15].MessageID+">\r\n", "Any news?"))
	add(mk(41, base[15].From, "Re: follow-up", "fu-41@mail.acme.co.il", "In-Reply-To: <fu-40@mail.acme.co.il>\r\n", "Hello?"))
	return out
}

// redisTrips counts a client's round trips (a command, a pipeline or a
// transaction: one each).
type redisTrips struct{ n, tx atomic.Int64 }

func (h *redisTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *redisTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *redisTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			h.tx.Add(1)
		}
		return next(ctx, cmds)
	}
}

// TestE2EBatchesMatchOneByOne: the same backlog, drained by a gateway that
// hands the IMAP batches to Pipeline.HandleBatch and by one that handles
// each message alone, gives every message the same outcome, the same
// tickets (numbers, IMAC places, events) and the same mail; batches take
// fewer Redis round trips.
func TestE2EBatchesMatchOneByOne(t *testing.T) {
	msgs := batchBacklog()
	type world struct {
		outcomes []string
		tickets  []string
		mail     []string
		trips    int64
		tx       int64 // of them MULTI/EXEC transactions
	}
	drain := func(oneByOne bool) world {
		e := newE2E(t, localmail.IMAPOptions{})
		for _, m := range msgs {
			e.deliver(m.Raw, m.Received)
		}
		trips := &redisTrips{}
		e.w.Redis.AddHook(trips)
		run := e.start(service.Options{IMAPWorkers: 4, IMAPOneByOne: oneByOne}, 0)
		e.waitFor("every message handled and moved", func() (bool, string) {
			n := len(e.outcomes.snapshot())
			_, live := e.folderCounts("INBOX")
			return n >= len(msgs) && live == 0, fmt.Sprintf("%d outcomes, %d left in INBOX", n, live)
		})
		e.waitFor("the outbox sent", func() (bool, string) {
			n, _, err := e.st.OutboxDepth(e.ctx)
			return err == nil && n == 0, fmt.Sprintf("outbox %d (%v)", n, err)
		})
		w := world{trips: trips.n.Load(), tx: trips.tx.Load()}
		e.stop(run)
		for _, o := range e.outcomes.snapshot() {
			key := "(no message)"
			if m := o.Decision.Msg; m != nil {
				key = m.MessageID + "|" + m.Subject
			}
			w.outcomes = append(w.outcomes, fmt.Sprintf("%s -> %s %s created=%v ack=%v reason=%q imac=%s/%d",
				key, o.Action, o.Ticket.ID, o.Created, o.Decision.Class.Ack, o.Decision.Class.AckReason, o.Ticket.IMACDate, o.Ticket.IMACQuotaUse))
		}
		sort.Strings(w.outcomes)
		contracts := []string{""}
		for _, c := range e.w.Config.Contracts {
			contracts = append(contracts, c.ID)
		}
		for _, contract := range contracts {
			ts, err := e.st.TicketsByContract(e.ctx, contract)
			if err != nil {
				t.Fatalf("list tickets: %v", err)
			}
			for _, tk := range ts {
				evs, err := e.st.Events(e.ctx, tk.ID)
				if err != nil {
					t.Fatalf("events of %s: %v", tk.ID, err)
				}
				var kinds []string
				for _, ev := range evs {
					kinds = append(kinds, string(ev.Kind)+":"+ev.MessageID)
				}
				w.tickets = append(w.tickets, fmt.Sprintf("%s %s %s %s prio=%s imac=%s/%d billable=%v events=%v",
					tk.ID, tk.Status, tk.Category, tk.Subject, tk.Priority, tk.IMACDate, tk.IMACQuotaUse, tk.Billable, kinds))
			}
		}
		sort.Strings(w.tickets)
		for _, m := range e.sent() {
			w.mail = append(w.mail, fmt.Sprintf("%s to=%v subject=%q in-reply-to=%v", m.Kind, m.To, m.Msg.Subject, m.Msg.InReplyTo))
		}
		sort.Strings(w.mail)
		return w
	}
	alone := drain(true)
	batched := drain(false)
	if len(alone.outcomes) != len(msgs) {
		t.Fatalf("one by one: %d outcomes for %d messages:\n%s", len(alone.outcomes), len(msgs), strings.Join(alone.outcomes, "\n"))
	}
	for _, c := range []struct {
		what      string
		one, many []string
	}{{"outcomes", alone.outcomes, batched.outcomes}, {"tickets", alone.tickets, batched.tickets}, {"mail", alone.mail, batched.mail}} {
		if !slices.Equal(c.one, c.many) {
			t.Errorf("%s differ\none by one:\n%s\nbatched:\n%s", c.what, strings.Join(c.one, "\n"), strings.Join(c.many, "\n"))
		}
	}
	// The backlog really is what it claims to be.
	joined := strings.Join(alone.outcomes, "\n")
	for _, want := range []string{"-> duplicate", "-> automatic", "reason=\"rate-limit\"", "-> staff"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no outcome %q in\n%s", want, joined)
		}
	}
	t.Logf("redis round trips: one by one %d (%d transactions), batched %d (%d)", alone.trips, alone.tx, batched.trips, batched.tx)
	// Every message that leaves something behind commits it in a
	// transaction of its own when handled alone; a batch's run shares one.
	if batched.tx*2 > alone.tx || batched.trips >= alone.trips {
		t.Errorf("batched drain took %d redis round trips (%d transactions), one by one %d (%d): want at most half the transactions",
			batched.trips, batched.tx, alone.trips, alone.tx)
	}
}
