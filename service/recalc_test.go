package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// TestDeadlinesFollowCalendarChange: a ticket opened under one calendar has
// its deadlines and timers recomputed when the gateway starts with a changed
// calendar (a reload builds a new gateway), and only then.
func TestDeadlinesFollowCalendarChange(t *testing.T) {
	e := newE2E(t, localmail.IMAPOptions{})
	jer := e2eLoc("Asia/Jerusalem")
	raw := []byte("From: Yossi <yossi@acme.co.il>\r\nTo: support@northwind-it.example\r\nSubject: server down\r\n" +
		"Message-ID: <recalc-1@acme.co.il>\r\n\r\nThe server is not working.\r\n")
	// Monday 30 Nov 2026 09:30: high fault, 1h/8h. With Monday's lunch
	// break (08:00-12:00, 13:00-17:00) the resolution is due Tue 09:30.
	r := e.start(service.Options{}, 0)
	e.deliver(raw, time.Date(2026, 11, 30, 9, 30, 0, 0, jer))
	var id string
	e.waitFor("ticket", func() (bool, string) {
		ts, _ := e.st.TicketsByContract(e.ctx, "acme")
		if len(ts) == 1 {
			id = ts[0].ID
		}
		return len(ts) == 1, fmt.Sprint(len(ts), " tickets")
	})
	e.stop(r)
	tk, err := e.st.Ticket(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 1, 9, 30, 0, 0, jer); !tk.ResolutionDue.Equal(want) {
		t.Fatalf("resolution due %v, want %v", tk.ResolutionDue, want)
	}

	// The same configuration again changes nothing.
	r = e.start(service.Options{}, 0)
	e.stop(r)
	if again, _ := e.st.Ticket(e.ctx, id); !again.ResolutionDue.Equal(tk.ResolutionDue) {
		t.Fatalf("unchanged configuration moved the deadline to %v", again.ResolutionDue)
	}

	// Monday loses its lunch break: 09:30-17:00 is 7.5 h, so the 8 h
	// resolution is due Tue 08:30; the response (10:30) stays.
	hours, err := sla.ParseHours("08:00-17:00")
	if err != nil {
		t.Fatal(err)
	}
	e.w.Config.ContractByID("acme").Calendar.Week[time.Monday] = hours
	r = e.start(service.Options{}, 0)
	defer e.stop(r)
	want := time.Date(2026, 12, 1, 8, 30, 0, 0, jer)
	e.waitFor("deadline recomputed", func() (bool, string) {
		nt, _ := e.st.Ticket(e.ctx, id)
		return nt.ResolutionDue.Equal(want), nt.ResolutionDue.String()
	})
	nt, _ := e.st.Ticket(e.ctx, id)
	if wantResp := time.Date(2026, 11, 30, 10, 30, 0, 0, jer); !nt.ResponseDue.Equal(wantResp) {
		t.Errorf("response due %v, want %v", nt.ResponseDue, wantResp)
	}
	timers, err := e.st.PendingTimers(e.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tm := range timers {
		if tm.Ticket == id && tm.Kind == store.ResolutionBreach {
			found = true
			if !tm.Due.Equal(want) {
				t.Errorf("resolution timer at %v, want %v", tm.Due, want)
			}
		}
	}
	if !found {
		t.Error("no resolution timer after the recalculation")
	}
}
