package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/store"
)

// TestTickets lists and shows tickets stored the way `gateway run` stores
// them, and checks that only open and pending ones are listed by default.
func TestTickets(t *testing.T) {
	rdb, prefix, url := testRedis(t)
	st := store.New(rdb, prefix)
	ctx := context.Background()
	opened := time.Date(2026, 11, 30, 7, 30, 0, 0, time.UTC)
	mk := func(key, subject string, status domain.Status) domain.Ticket {
		tk, _, err := st.CreateTicket(ctx, store.NewTicket{
			Ticket: domain.Ticket{Contract: "acme", Category: domain.Fault, Priority: domain.High, Status: status,
				Subject: subject, Requester: domain.Address{Addr: "yossi@acme.co.il"}, Opened: opened,
				EffectiveStart: opened, ResponseDue: opened.Add(time.Hour), ResolutionDue: opened.Add(24 * time.Hour)},
			Prefix: "ACME", DedupKey: "mid:" + key,
			Event:  domain.Event{Kind: domain.EventOpened, At: opened, Actor: "yossi@acme.co.il"},
			Timers: []store.Timer{{Kind: store.ResponseBreach, Due: opened.Add(time.Hour)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	open := mk("a@test", "Printer is down", domain.StatusOpen)
	mk("b@test", "Old question", domain.StatusClosed)

	env := map[string]string{"REDIS_URL": url, "REDIS_PREFIX": prefix}
	r := runMain(t, env, "tickets", "list", "-c", exampleConfig)
	if r.code != 0 {
		t.Fatalf("list: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, open.ID) || !strings.Contains(r.stdout, "Printer is down") ||
		strings.Contains(r.stdout, "Old question") || !strings.Contains(r.stdout, "1 ticket(s)") {
		t.Errorf("list output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "11-30 10:30") { // response due 08:30 UTC = 10:30 in Jerusalem
		t.Errorf("list should show deadlines in the contract's zone:\n%s", r.stdout)
	}
	r = runMain(t, env, "tickets", "list", "-c", exampleConfig, "--all")
	if !strings.Contains(r.stdout, "Old question") || !strings.Contains(r.stdout, "2 ticket(s)") {
		t.Errorf("list --all output:\n%s", r.stdout)
	}
	r = runMain(t, env, "tickets", "show", "-c", exampleConfig, strings.ToLower(open.ID))
	if r.code != 0 {
		t.Fatalf("show: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{open.ID + "  open  fault/high", "response-breach", "opened", "Mon 2026-11-30 10:30 IST"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runMain(t, env, "tickets", "show", "-c", exampleConfig, "ACME-9999"); r.code != 1 {
		t.Errorf("unknown ticket: exit %d, want 1", r.code)
	}
	if r := runMain(t, env, "tickets"); r.code != 2 {
		t.Errorf("no subcommand: exit %d, want 2", r.code)
	}
}
