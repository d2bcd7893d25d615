package notify_test

import (
	"fmt"
	"log"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/notify"
)

// The acknowledgement of SPEC §7: a high fault received on Monday 30
// November 2026 at 09:30 under the israel-office calendar.
func ExampleTemplates_Render() {
	loc, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		log.Fatal(err)
	}
	tm, err := notify.LoadTemplates("") // built-ins only; pass templates.dir to override
	if err != nil {
		log.Fatal(err)
	}
	ticket := domain.Ticket{
		ID: "ACME-0042", Category: domain.Fault, Priority: domain.High, Subject: "Server down",
		Opened:         time.Date(2026, 11, 30, 9, 30, 0, 0, loc),
		EffectiveStart: time.Date(2026, 11, 30, 9, 30, 0, 0, loc),
		ResponseDue:    time.Date(2026, 11, 30, 10, 30, 0, 0, loc),
		ResolutionDue:  time.Date(2026, 12, 1, 9, 30, 0, 0, loc),
	}
	info, err := notify.NewTicketInfo(&ticket, "ACME Ltd", loc)
	if err != nil {
		log.Fatal(err)
	}
	r, err := tm.Render(notify.KindAck, notify.LangEnglish, notify.AckData{
		Base:       notify.Base{ServiceName: "Northwind IT Support", ServiceAddress: "support@northwind-it.example", Loc: loc},
		TicketInfo: info, CustomerName: "Dana Levi",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Subject)
	fmt.Print(r.Text)
	// Output:
	// [ACME-0042] Received: Server down
	// Hello Dana Levi,
	//
	// Thank you for contacting Northwind IT Support.
	//
	// Ticket ACME-0042 — we classified your message as a fault (priority high). A technician will respond by Monday 30 November 2026, 10:30 and we aim to resolve it by Tuesday 1 December 2026, 09:30.
	//
	// Ticket:    ACME-0042
	// Subject:   Server down
	// Contract:  ACME Ltd
	// Received:  Monday 30 November 2026, 09:30
	//
	// If we have misjudged your message (for example, if it is more urgent than it looks), simply reply to this email. Please keep [ACME-0042] in the subject of any reply so that it joins this ticket.
	//
	// Kind regards,
	// Northwind IT Support
	// support@northwind-it.example
	//
	// This confirmation was sent automatically.
}
