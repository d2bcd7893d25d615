package service_test

import (
	"bytes"
	"net"
	"strconv"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
)

// TestGatewayLMTP runs the gateway with push ingestion configured: a message
// delivered over LMTP gets 250 only once its ticket is stored, the customer
// gets the acknowledgement, and the processed copy is filed in the mailbox.
func TestGatewayLMTP(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	e.w.Config.LMTP = &rules.LMTP{Listen: "127.0.0.1:0", Network: "tcp", Address: "127.0.0.1:0",
		Mailbox: demo.SupportAddress, MaxMessageBytes: 64 << 20}
	var addr string
	r := e.start(service.Options{}, 0, func(g *service.Gateway) {
		if g.LMTP == nil {
			t.Fatal("gateway built no LMTP server")
		}
		if err := g.LMTP.Listen(); err != nil {
			t.Fatal(err)
		}
		addr = g.LMTP.Addr().String()
	})
	defer e.stop(r)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mta.test"); err != nil {
		t.Fatal(err)
	}
	raw := []byte("From: Yossi <yossi@acme.co.il>\r\nTo: " + demo.SupportAddress + "\r\nSubject: the VPN is down\r\n" +
		"Message-ID: <lmtp-gw-1@acme.co.il>\r\nDate: Mon, 30 Nov 2026 09:40:00 +0200\r\n\r\nSince 9 no VPN.\r\n")
	if err := c.Mail("yossi@acme.co.il", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(demo.SupportAddress, nil); err != nil {
		t.Fatal(err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := wc.CloseWithLMTPResponse()
	if err != nil {
		t.Fatalf("LMTP delivery refused: %v", err)
	}
	if len(resp) != 1 {
		t.Fatalf("per-recipient responses %v, want one", resp)
	}
	// The 250 came after the ticket was stored.
	tk, err := e.st.Ticket(e.ctx, "ACME-0001")
	if err != nil {
		t.Fatalf("no ticket after the 250: %v", err)
	}
	if tk.Category != "fault" || tk.MessageID != "lmtp-gw-1@acme.co.il" {
		t.Errorf("ticket %+v", tk)
	}
	e.waitFor("ack and staff copy", func() (bool, string) {
		n := len(e.w.SMTP.Mail())
		return n >= 2, strconv.Itoa(n) + " mails caught"
	})
	e.waitFor("processed copy filed", func() (bool, string) {
		n, _ := e.w.IMAP.Count("Processed")
		return n == 1, "processed folder"
	})
	if all := e.folderContents("Processed"); len(all) != 1 || !bytes.Contains(all[0].Raw, []byte("Since 9 no VPN.")) {
		t.Errorf("processed folder %+v", all)
	}
}
