package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

func createWithTimers(t *testing.T, s *Store, dedup string) domain.Ticket {
	t.Helper()
	nt := sampleTicket("acme", "ACME", dedup, received)
	nt.Timers = []Timer{
		{Kind: ResponseWarn, Due: received.Add(48 * time.Minute)},
		{Kind: ResponseBreach, Due: received.Add(time.Hour)},
		{Kind: ResolutionWarn, Due: received.Add(19 * time.Hour)},
		{Kind: ResolutionBreach, Due: received.Add(24 * time.Hour)},
	}
	tk, _, err := s.CreateTicket(context.Background(), nt)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func timerKinds(t *testing.T, s *Store, contract string) []string {
	t.Helper()
	pend, err := s.PendingTimers(context.Background(), contract)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pend {
		out = append(out, p.Kind)
	}
	return out
}

func TestUpdateTicketLifecycle(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	tk := createWithTimers(t, s, "mid:open")
	at := received.Add(20 * time.Minute)

	// First response: stops the response timers.
	got, applied, err := s.UpdateTicket(ctx, tk.ID, Change{
		Event:        &domain.Event{Kind: domain.EventResponse, At: at, Actor: "dana@northwind-it.example", MessageID: "r1@nw"},
		DedupKey:     "mid:r1@nw",
		CancelTimers: []string{ResponseWarn, ResponseBreach},
	})
	if err != nil || !applied || got.ID != tk.ID {
		t.Fatalf("first response: %v %v", applied, err)
	}
	if k := timerKinds(t, s, "acme"); !slices.Equal(k, []string{ResolutionWarn, ResolutionBreach}) {
		t.Errorf("timers after first response = %v", k)
	}
	// The same staff mail again changes nothing.
	_, applied, err = s.UpdateTicket(ctx, tk.ID, Change{
		Event:    &domain.Event{Kind: domain.EventResponse, At: at},
		DedupKey: "mid:r1@nw",
	})
	if err != nil || applied {
		t.Fatalf("repeated response: applied=%v err=%v", applied, err)
	}

	// Pending: status changes, clock paused.
	got, _, err = s.UpdateTicket(ctx, tk.ID, Change{
		Mutate:       func(t *domain.Ticket) error { t.Status = domain.StatusPending; return nil },
		Event:        &domain.Event{Kind: domain.EventPending, At: at.Add(time.Minute)},
		CancelTimers: TimerKinds,
	})
	if err != nil || got.Status != domain.StatusPending {
		t.Fatalf("pending: %+v %v", got.Status, err)
	}
	if k := timerKinds(t, s, "acme"); len(k) != 0 {
		t.Errorf("timers while pending = %v", k)
	}
	// Open again: deadlines moved on by the paused time.
	newDue := received.Add(26 * time.Hour)
	got, _, err = s.UpdateTicket(ctx, tk.ID, Change{
		Mutate: func(t *domain.Ticket) error {
			t.Status = domain.StatusOpen
			t.ResolutionDue = newDue
			return nil
		},
		Event:  &domain.Event{Kind: domain.EventChanged, At: at.Add(2 * time.Hour), Data: map[string]string{"status": "open"}},
		Timers: []Timer{{Kind: ResolutionBreach, Due: newDue}},
	})
	if err != nil || got.Status != domain.StatusOpen || !got.ResolutionDue.Equal(newDue) {
		t.Fatalf("reopen: %+v %v", got, err)
	}
	pend, err := s.PendingTimers(ctx, "acme")
	if err != nil || len(pend) != 1 || !pend[0].Due.Equal(newDue) {
		t.Fatalf("timers after reopen = %+v %v", pend, err)
	}
	// Resolved.
	if _, _, err = s.UpdateTicket(ctx, tk.ID, Change{
		Mutate:       func(t *domain.Ticket) error { t.Status = domain.StatusResolved; return nil },
		Event:        &domain.Event{Kind: domain.EventResolved, At: at.Add(3 * time.Hour)},
		CancelTimers: TimerKinds,
	}); err != nil {
		t.Fatal(err)
	}
	stored, err := s.Ticket(ctx, tk.ID)
	if err != nil || stored.Status != domain.StatusResolved || stored.Subject != tk.Subject {
		t.Fatalf("stored after resolve: %+v %v", stored, err)
	}
	evs, err := s.Events(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []domain.EventKind
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	want := []domain.EventKind{domain.EventOpened, domain.EventResponse, domain.EventPending, domain.EventChanged, domain.EventResolved}
	if !slices.Equal(kinds, want) {
		t.Errorf("events = %v, want %v", kinds, want)
	}
	if !evs[1].At.Equal(at) || evs[3].Data["status"] != "open" {
		t.Errorf("event details lost: %+v", evs)
	}
	// AppendEvent is the event-only shortcut.
	if added, err := s.AppendEvent(ctx, tk.ID, domain.Event{Kind: domain.EventNote, At: at}, "mid:note"); err != nil || !added {
		t.Fatalf("note: %v %v", added, err)
	}
	if added, err := s.AppendEvent(ctx, tk.ID, domain.Event{Kind: domain.EventNote, At: at}, "mid:note"); err != nil || added {
		t.Fatalf("repeated note: %v %v", added, err)
	}
}

func TestUpdateTicketRejects(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	tk := createWithTimers(t, s, "mid:x")
	boom := errors.New("boom")
	tests := map[string]struct {
		id  string
		ch  Change
		not error
	}{
		"missing ticket":  {"ACME-0042", Change{}, ErrNotFound},
		"unknown prefix":  {"ZZZ-0001", Change{}, ErrNotFound},
		"mutate fails":    {tk.ID, Change{Mutate: func(*domain.Ticket) error { return boom }}, boom},
		"mutate id":       {tk.ID, Change{Mutate: func(t *domain.Ticket) error { t.ID = "ACME-0002"; return nil }}, nil},
		"mutate contract": {tk.ID, Change{Mutate: func(t *domain.Ticket) error { t.Contract = "x"; return nil }}, nil},
		"mutate imac":     {tk.ID, Change{Mutate: func(t *domain.Ticket) error { t.IMACDate = "2026-12-01"; return nil }}, nil},
		"bad timer":       {tk.ID, Change{CancelTimers: []string{"later"}}, nil},
		"both imac":       {tk.ID, Change{IMAC: &IMACRequest{Candidates: tuesdays(1), Policy: PolicyForce}, ReleaseIMAC: true}, nil},
	}
	for name, tc := range tests {
		_, _, err := s.UpdateTicket(ctx, tc.id, tc.ch)
		if err == nil || (tc.not != nil && !errors.Is(err, tc.not)) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.not)
		}
	}
	// None of them changed anything.
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil || !ticketsEqual(got, tk) {
		t.Errorf("ticket changed by rejected updates: %+v %v", got, err)
	}
}

func TestUpdateTicketConcurrent(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	tk := createWithTimers(t, s, "mid:c")
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, _, errs[i] = s.UpdateTicket(ctx, tk.ID, Change{
				Mutate: func(t *domain.Ticket) error {
					t.Tags = append(t.Tags, fmt.Sprintf("t%02d", i))
					return nil
				},
				Event:    &domain.Event{Kind: domain.EventFollowUp, At: received.Add(time.Duration(i) * time.Minute)},
				DedupKey: fmt.Sprintf("mid:f%d", i),
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != n {
		t.Errorf("tags = %v: lost updates", got.Tags)
	}
	evs, err := s.Events(ctx, tk.ID)
	if err != nil || len(evs) != n+1 {
		t.Errorf("%d events, %v; want %d", len(evs), err, n+1)
	}
}

func TestUpdateTicketIMAC(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	cands := tuesdays(10)
	nt := sampleTicket("acme", "ACME", "mid:imac", received)
	nt.Ticket.Category = domain.IMAC
	nt.IMAC = &IMACRequest{Candidates: cands, MonthlyQuota: 2, PerVisit: 1, Policy: PolicyNextMonth}
	tk, _, err := s.CreateTicket(ctx, nt)
	if err != nil || tk.IMACDate != "2026-12-01" {
		t.Fatalf("create: %+v %v", tk, err)
	}
	usage := func() IMACCounts {
		u, err := s.IMACUsage(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return u
	}

	// Staff: #schedule 2027-01-12, forced.
	jan12 := sla.Date{Year: 2027, Month: time.January, Day: 12}
	got, _, err := s.UpdateTicket(ctx, tk.ID, Change{
		IMAC:  &IMACRequest{Candidates: []sla.Date{jan12}, MonthlyQuota: 2, Policy: PolicyForce},
		Event: &domain.Event{Kind: domain.EventChanged, At: received, Data: map[string]string{"imac_date": "2027-01-12"}},
	})
	if err != nil || got.IMACDate != "2027-01-12" || got.IMACQuotaUse != 1 || got.IMACQuota != 2 || got.Billable {
		t.Fatalf("reschedule: %+v %v", got, err)
	}
	u := usage()
	if u.MonthUsed(2026, time.December) != 0 || u.DayUsed(cands[0]) != 0 || u.MonthUsed(2027, time.January) != 1 || u.DayUsed(jan12) != 1 {
		t.Errorf("counters after reschedule: %+v", u)
	}
	// Forced onto a full day of a full month: counted, billable.
	for i := range 2 {
		nt := sampleTicket("acme", "ACME", fmt.Sprintf("mid:fill%d", i), received)
		nt.IMAC = &IMACRequest{Candidates: []sla.Date{cands[i+1]}, MonthlyQuota: 2, Policy: PolicyForce}
		if _, _, err := s.CreateTicket(ctx, nt); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err = s.UpdateTicket(ctx, tk.ID, Change{IMAC: &IMACRequest{Candidates: []sla.Date{cands[1]}, MonthlyQuota: 2, Policy: PolicyForce}})
	if err != nil || got.IMACDate != "2026-12-08" || got.IMACQuotaUse != 3 || !got.Billable {
		t.Fatalf("forced over quota: %+v %v", got, err)
	}
	// A policy reservation that finds no slot changes nothing.
	_, _, err = s.UpdateTicket(ctx, tk.ID, Change{IMAC: &IMACRequest{Candidates: cands[:1], MonthlyQuota: 2, Policy: PolicyNextMonth}})
	if !errors.Is(err, ErrNoIMACSlot) {
		t.Fatalf("no slot: %v", err)
	}
	if u := usage(); u.MonthUsed(2026, time.December) != 3 || u.DayUsed(cands[1]) != 2 {
		t.Errorf("counters changed by a failed reservation: %+v", u)
	}
	if again, _ := s.Ticket(ctx, tk.ID); again.IMACDate != "2026-12-08" {
		t.Errorf("ticket changed by a failed reservation: %+v", again)
	}
	// Category changed away from imac: the slot is given back.
	got, _, err = s.UpdateTicket(ctx, tk.ID, Change{
		Mutate:      func(t *domain.Ticket) error { t.Category = domain.Request; return nil },
		ReleaseIMAC: true,
	})
	if err != nil || got.IMACDate != "" || got.IMACQuotaUse != 0 || got.Billable || got.Category != domain.Request {
		t.Fatalf("release: %+v %v", got, err)
	}
	if u := usage(); u.MonthUsed(2026, time.December) != 2 || u.DayUsed(cands[1]) != 1 {
		t.Errorf("counters after release: %+v", u)
	}
	// Releasing again is harmless.
	if _, _, err = s.UpdateTicket(ctx, tk.ID, Change{ReleaseIMAC: true}); err != nil {
		t.Fatal(err)
	}
	if u := usage(); u.MonthUsed(2026, time.December) != 2 {
		t.Errorf("counters after second release: %+v", u)
	}
}
