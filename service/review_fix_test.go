package service_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/service"
)

// TestMalformedAddressesDoNotHoldTheMailbox: a From and a Cc that cannot be
// written to must not make the message fail forever. The ticket is opened,
// staff get the copy, nothing is acknowledged, the bad Cc is not kept, and
// the message leaves the inbox.
func TestMalformedAddressesDoNotHoldTheMailbox(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	r := e.start(service.Options{}, 0)
	defer e.stop(r)
	jer := e2eLoc("Asia/Jerusalem")
	e.deliver([]byte("From: Broken <a..b@acme.co.il>\r\nTo: support@northwind-it.example\r\n"+
		"Subject: printer not working\r\nMessage-ID: <bad-from-1@acme.co.il>\r\n\r\nHelp.\r\n"), time.Date(2026, 11, 30, 9, 0, 0, 0, jer))
	e.deliver([]byte("From: Good <good@acme.co.il>\r\nTo: support@northwind-it.example\r\nCc: x.@acme.co.il, Colleague <col@acme.co.il>\r\n"+
		"Subject: scanner not working\r\nMessage-ID: <bad-cc-1@acme.co.il>\r\n\r\nHelp.\r\n"), time.Date(2026, 11, 30, 9, 1, 0, 0, jer))
	e.waitFor("both messages processed", func() (bool, string) {
		n, _ := e.w.IMAP.Count("Processed")
		left, _ := e.w.IMAP.Count("INBOX")
		return n == 2 && left == 0, fmt.Sprintf("%d processed, %d left", n, left)
	})
	e.waitFor("one ack and two staff copies", func() (bool, string) {
		acks, fwds := 0, 0
		for _, m := range e.sent() {
			switch m.Kind {
			case "ack":
				acks++
			case "forward":
				fwds++
			}
		}
		return acks == 1 && fwds == 2, fmt.Sprintf("%d acks, %d forwards", acks, fwds)
	})
	ts, err := e.st.TicketsByContract(e.ctx, "acme")
	if err != nil || len(ts) != 2 {
		t.Fatalf("tickets %d, %v", len(ts), err)
	}
	for _, tk := range ts {
		for _, c := range tk.Cc {
			if strings.HasPrefix(c.Addr, "x.@") {
				t.Errorf("ticket %s kept the malformed copy %q", tk.ID, c.Addr)
			}
		}
	}
}

// TestOutsiderCannotAddCopies: a follow-up with the ticket's tag from
// someone who is neither the requester nor copied joins the ticket, but the
// people it copies are not added to those who receive staff replies.
func TestOutsiderCannotAddCopies(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	r := e.start(service.Options{}, 0)
	defer e.stop(r)
	jer := e2eLoc("Asia/Jerusalem")
	e.deliver([]byte("From: Yossi <yossi@acme.co.il>\r\nTo: support@northwind-it.example\r\n"+
		"Subject: printer not working\r\nMessage-ID: <cc-orig@acme.co.il>\r\n\r\nHelp.\r\n"), time.Date(2026, 11, 30, 9, 0, 0, 0, jer))
	var id string
	e.waitFor("ticket", func() (bool, string) {
		ts, _ := e.st.TicketsByContract(e.ctx, "acme")
		if len(ts) == 1 {
			id = ts[0].ID
		}
		return len(ts) == 1, fmt.Sprint(len(ts))
	})
	e.deliver([]byte("From: Someone <someone@acme.co.il>\r\nTo: support@northwind-it.example\r\nCc: attacker@evil.example\r\n"+
		"Subject: Re: ["+id+"] printer not working\r\nMessage-ID: <cc-outsider@acme.co.il>\r\n\r\nMe too.\r\n"), time.Date(2026, 11, 30, 9, 5, 0, 0, jer))
	e.deliver([]byte("From: Yossi <yossi@acme.co.il>\r\nTo: support@northwind-it.example\r\nCc: Dana <dana@acme.co.il>\r\n"+
		"Subject: Re: ["+id+"] printer not working\r\nMessage-ID: <cc-requester@acme.co.il>\r\n\r\nAdding Dana.\r\n"), time.Date(2026, 11, 30, 9, 6, 0, 0, jer))
	e.waitFor("follow-ups processed", func() (bool, string) {
		n, _ := e.w.IMAP.Count("Processed")
		return n == 3, fmt.Sprint(n, " processed")
	})
	tk, err := e.st.Ticket(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var cc []string
	for _, a := range tk.Cc {
		cc = append(cc, a.Addr)
	}
	if strings.Contains(strings.Join(cc, ","), "attacker@") || !strings.Contains(strings.Join(cc, ","), "dana@acme.co.il") {
		t.Errorf("ticket copies %v: want dana (added by the requester) and not the outsider's", cc)
	}
}
