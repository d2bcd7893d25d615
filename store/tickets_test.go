package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

var zoneIL = time.FixedZone("IST", 2*60*60)

// received is Monday 30 November 2026 09:30 in Israel.
var received = time.Date(2026, 11, 30, 9, 30, 0, 0, zoneIL)

func sampleTicket(contract, prefix, dedup string, at time.Time) NewTicket {
	return NewTicket{
		Ticket: domain.Ticket{
			Contract:       contract,
			Category:       domain.Fault,
			Priority:       domain.High,
			Status:         domain.StatusOpen,
			Subject:        "המדפסת לא עובדת <urgent> & \"quoted\"",
			Requester:      domain.Address{Name: "Yossi", Addr: "yossi@acme.co.il"},
			Cc:             []domain.Address{{Addr: "it-manager@acme.co.il"}},
			Rules:          []string{"outage"},
			MessageID:      "m-" + dedup + "@acme.co.il",
			Opened:         at,
			EffectiveStart: at,
			ResponseDue:    at.Add(time.Hour),
			ResolutionDue:  at.Add(24 * time.Hour),
		},
		Prefix:   prefix,
		DedupKey: dedup,
		Event:    domain.Event{Kind: domain.EventOpened, At: at, MessageID: "m-" + dedup + "@acme.co.il", Actor: "yossi@acme.co.il"},
	}
}

// tuesdays returns n Tuesdays from 1 December 2026 on.
func tuesdays(n int) []sla.Date {
	var out []sla.Date
	d := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for range n {
		out = append(out, sla.Date{Year: d.Year(), Month: d.Month(), Day: d.Day()})
		d = d.AddDate(0, 0, 7)
	}
	return out
}

func TestCreateTicketDedup(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()

	nt := sampleTicket("acme", "ACME", "mid:a@acme.co.il", received)
	t1, created, err := s.CreateTicket(ctx, nt)
	if err != nil || !created {
		t.Fatalf("first create: created=%v err=%v", created, err)
	}
	if t1.ID != "ACME-0001" {
		t.Fatalf("id = %s, want ACME-0001", t1.ID)
	}
	// The same message again (a crash before it was marked processed).
	nt.Ticket.Subject = "changed"
	t2, created, err := s.CreateTicket(ctx, nt)
	if err != nil || created {
		t.Fatalf("second create: created=%v err=%v", created, err)
	}
	if t2.ID != t1.ID || t2.Subject != t1.Subject {
		t.Fatalf("duplicate returned %s %q, want the first ticket %s %q", t2.ID, t2.Subject, t1.ID, t1.Subject)
	}
	evs, err := s.Events(ctx, t1.ID)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events = %v, %v; want the one opened event", evs, err)
	}
	// A different message gets the next number.
	t3, created, err := s.CreateTicket(ctx, sampleTicket("acme", "ACME", "sha256:00ff", received))
	if err != nil || !created || t3.ID != "ACME-0002" {
		t.Fatalf("third create: %s created=%v err=%v, want ACME-0002", t3.ID, created, err)
	}
}

func TestCreateTicketRoundTrip(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	nt := sampleTicket("acme", "ACME", "mid:rt", received)
	nt.Ticket.Tags = []string{"vip"}
	got, _, err := s.CreateTicket(ctx, nt)
	if err != nil {
		t.Fatal(err)
	}
	want := nt.Ticket
	want.ID = "ACME-0001"
	read, err := s.Ticket(ctx, "ACME-0001")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []domain.Ticket{got, read} {
		if !ticketsEqual(tk, want) {
			t.Errorf("stored ticket\n got %+v\nwant %+v", tk, want)
		}
	}
}

// ticketsEqual compares tickets with time.Time.Equal (the zone's name does
// not survive JSON, the instant and offset do).
func ticketsEqual(a, b domain.Ticket) bool {
	times := func(t *domain.Ticket) []*time.Time {
		return []*time.Time{&t.Opened, &t.EffectiveStart, &t.ResponseDue, &t.ResolutionDue, &t.ResponseWarn, &t.ResolutionWarn}
	}
	ta, tb := times(&a), times(&b)
	for i := range ta {
		if !ta[i].Equal(*tb[i]) {
			return false
		}
		*ta[i], *tb[i] = time.Time{}, time.Time{}
	}
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

func TestTicketIDs(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()

	tests := []struct {
		name     string
		contract string
		prefix   string
		counter  int64 // set before creating; 0: leave
		want     string
	}{
		{"first", "acme", "ACME", 0, "ACME-0001"},
		{"second", "acme", "ACME", 0, "ACME-0002"},
		{"four digits", "acme", "ACME", 9998, "ACME-9999"},
		{"five digits", "acme", "ACME", 0, "ACME-10000"},
		{"no contract", "", "", 0, "T-0001"},
		{"other contract", "globex", "GLX", 0, "GLX-0001"},
		{"number taken", "globex", "GLX", 0, "GLX-0002"},
	}
	for i, tc := range tests {
		if tc.counter != 0 {
			if err := rdb.Set(ctx, s.k.seq(tc.contract), tc.counter, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if tc.name == "number taken" {
			// Someone reset the counter: ids already used are skipped.
			if err := rdb.Set(ctx, s.k.seq(tc.contract), 0, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, created, err := s.CreateTicket(ctx, sampleTicket(tc.contract, tc.prefix, fmt.Sprintf("mid:%d", i), received))
		if err != nil || !created || got.ID != tc.want {
			t.Errorf("%s: got %s created=%v err=%v, want %s", tc.name, got.ID, created, err, tc.want)
		}
	}

	lookups := []struct{ id, want string }{
		{"ACME-10000", "ACME-10000"},
		{"acme-0002", "ACME-0002"},
		{"Acme-2", "ACME-0002"},
		{"t-1", "T-0001"},
	}
	for _, l := range lookups {
		got, err := s.Ticket(ctx, l.id)
		if err != nil || got.ID != l.want {
			t.Errorf("Ticket(%s) = %s, %v; want %s", l.id, got.ID, err, l.want)
		}
	}
	for _, missing := range []string{"ACME-0003", "NOPE-0001", "ACME", "", "ACME-0000", "ACME-x1"} {
		if _, err := s.Ticket(ctx, missing); !errors.Is(err, ErrNotFound) {
			t.Errorf("Ticket(%q) err = %v, want ErrNotFound", missing, err)
		}
	}

	// The unknown-sender tickets are listed under contract "".
	list, err := s.TicketsByContract(ctx, "")
	if err != nil || len(list) != 1 || list[0].ID != "T-0001" || list[0].Contract != "" {
		t.Errorf("TicketsByContract(\"\") = %v, %v", list, err)
	}
	list, err = s.TicketsByContract(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range list {
		ids = append(ids, tk.ID)
	}
	if want := []string{"ACME-0001", "ACME-0002", "ACME-9999", "ACME-10000"}; !slices.Equal(ids, want) {
		t.Errorf("TicketsByContract(acme) = %v, want %v", ids, want)
	}
}

func TestCreateTicketRejects(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	if _, _, err := s.CreateTicket(ctx, sampleTicket("acme", "ACME", "mid:1", received)); err != nil {
		t.Fatal(err)
	}
	bad := map[string]NewTicket{
		"prefix of another contract": sampleTicket("globex", "ACME", "mid:2", received),
		"prefix in another case":     sampleTicket("acme", "Acme", "mid:3", received),
		"reserved contract":          sampleTicket("_", "X", "mid:4", received),
		"no prefix":                  sampleTicket("acme", "", "mid:5", received),
		"bad prefix":                 sampleTicket("acme", "AC ME", "mid:6", received),
		"no dedup key":               sampleTicket("acme", "ACME", "", received),
		"bad timer": func() NewTicket {
			nt := sampleTicket("acme", "ACME", "mid:7", received)
			nt.Timers = []Timer{{Kind: "soon", Due: received}}
			return nt
		}(),
		"bad imac policy": func() NewTicket {
			nt := sampleTicket("acme", "ACME", "mid:8", received)
			nt.IMAC = &IMACRequest{Candidates: tuesdays(1), Policy: "whenever"}
			return nt
		}(),
		"bad imac date": func() NewTicket {
			nt := sampleTicket("acme", "ACME", "mid:9", received)
			nt.IMAC = &IMACRequest{Candidates: []sla.Date{{Year: 2026, Month: 2, Day: 30}}, Policy: PolicyBillable}
			return nt
		}(),
	}
	for name, nt := range bad {
		if _, _, err := s.CreateTicket(ctx, nt); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Nothing was allocated by the rejected calls.
	got, _, err := s.CreateTicket(ctx, sampleTicket("acme", "ACME", "mid:10", received))
	if err != nil || got.ID != "ACME-0002" {
		t.Errorf("after rejects: %s, %v; want ACME-0002", got.ID, err)
	}
}

func TestEventsAndTimers(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	nt := sampleTicket("acme", "ACME", "mid:ev", received)
	nt.Event.Data = map[string]string{"rule": "outage"}
	nt.Timers = []Timer{
		{Kind: ResolutionBreach, Due: received.Add(24 * time.Hour)},
		{Kind: ResponseWarn, Due: received.Add(48 * time.Minute)},
		{Kind: ResponseBreach, Due: received.Add(time.Hour)},
		{Kind: ResolutionWarn, Due: received.Add(19 * time.Hour)},
	}
	tk, _, err := s.CreateTicket(ctx, nt)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != domain.EventOpened || !evs[0].At.Equal(received) || evs[0].Data["rule"] != "outage" {
		t.Fatalf("events = %+v", evs)
	}
	if _, off := evs[0].At.Zone(); off != 2*60*60 {
		t.Errorf("event offset = %d, want the INTERNALDATE's +02:00", off)
	}
	for _, tm := range nt.Timers {
		score, err := rdb.ZScore(ctx, s.k.timers("acme"), tk.ID+"|"+tm.Kind).Result()
		if err != nil || int64(score) != tm.Due.UnixMilli() {
			t.Errorf("timer %s score = %v, %v; want %d", tm.Kind, score, err, tm.Due.UnixMilli())
		}
	}
	pend, err := s.PendingTimers(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range pend {
		kinds = append(kinds, p.Kind)
		if p.Ticket != tk.ID || p.Contract != "acme" || !p.LeasedUntil.IsZero() {
			t.Errorf("pending timer %+v", p)
		}
	}
	if want := []string{ResponseWarn, ResponseBreach, ResolutionWarn, ResolutionBreach}; !slices.Equal(kinds, want) {
		t.Errorf("pending timers by due = %v, want %v", kinds, want)
	}
}

func TestConcurrentIMAC(t *testing.T) {
	tests := []struct {
		policy string
		// wantMonths: IMACs per month after 50 requests.
		wantMonths map[string]int
	}{
		{PolicyNextMonth, map[string]int{"2026-12": 10, "2027-01": 10, "2027-02": 10, "2027-03": 10, "2027-04": 10}},
		// billable fills every Tuesday to capacity: 5 Tuesdays in December,
		// 4 in January, then the first Tuesday of February.
		{PolicyBillable, map[string]int{"2026-12": 25, "2027-01": 20, "2027-02": 5}},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			s, _ := newTestStore(t)
			ctx := context.Background()
			const n, quota, perVisit = 50, 10, 5
			cands := tuesdays(60)

			var wg sync.WaitGroup
			got := make([]domain.Ticket, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					nt := sampleTicket("acme", "ACME", fmt.Sprintf("mid:imac-%d", i), received)
					nt.Ticket.Category = domain.IMAC
					nt.IMAC = &IMACRequest{Candidates: cands, MonthlyQuota: quota, PerVisit: perVisit, Policy: tc.policy}
					got[i], _, errs[i] = s.CreateTicket(ctx, nt)
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}

			perDay := map[string]int{}
			uses := map[string][]int{}
			for _, tk := range got {
				perDay[tk.IMACDate]++
				month := tk.IMACDate[:7]
				uses[month] = append(uses[month], tk.IMACQuotaUse)
				if tk.IMACQuota != quota {
					t.Errorf("%s: imac quota %d", tk.ID, tk.IMACQuota)
				}
				if wantBillable := tk.IMACQuotaUse > quota; tk.Billable != wantBillable {
					t.Errorf("%s: %s use %d billable=%v", tk.ID, tk.IMACDate, tk.IMACQuotaUse, tk.Billable)
				}
				if wantDeferred := month != "2026-12"; tk.IMACDeferred != wantDeferred {
					t.Errorf("%s: %s deferred=%v", tk.ID, tk.IMACDate, tk.IMACDeferred)
				}
			}
			for day, c := range perDay {
				if c > perVisit {
					t.Errorf("%s has %d IMACs, capacity %d", day, c, perVisit)
				}
			}
			for month, u := range uses {
				slices.Sort(u)
				for i, v := range u {
					if v != i+1 {
						t.Errorf("%s quota uses %v, want 1..%d each once", month, u, len(u))
						break
					}
				}
				if len(u) != tc.wantMonths[month] {
					t.Errorf("%s: %d IMACs, want %d", month, len(u), tc.wantMonths[month])
				}
			}
			if tc.policy == PolicyNextMonth {
				for month, u := range uses {
					if len(u) > quota {
						t.Errorf("%s: %d IMACs over quota %d", month, len(u), quota)
					}
				}
			}

			usage, err := s.IMACUsage(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			for month, want := range tc.wantMonths {
				var y, m int
				fmt.Sscanf(month, "%d-%d", &y, &m)
				if got := usage.MonthUsed(y, time.Month(m)); got != want {
					t.Errorf("MonthUsed(%s) = %d, want %d", month, got, want)
				}
			}
			for _, d := range cands {
				if got, want := usage.DayUsed(d), perDay[FormatDate(d)]; got != want {
					t.Errorf("DayUsed(%s) = %d, want %d", FormatDate(d), got, want)
				}
			}
			var _ sla.Usage = usage
		})
	}
}

func TestIMACEdgeCases(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	imac := func(dedup string, r IMACRequest) (domain.Ticket, error) {
		nt := sampleTicket("acme", "ACME", dedup, received)
		nt.Ticket.Category = domain.IMAC
		nt.Ticket.IMACDate = "1999-01-01" // ignored: the reservation decides
		nt.IMAC = &r
		tk, _, err := s.CreateTicket(ctx, nt)
		return tk, err
	}
	// Unlimited quota and capacity: always the first candidate.
	for i := range 3 {
		tk, err := imac(fmt.Sprintf("mid:u%d", i), IMACRequest{Candidates: tuesdays(2), Policy: PolicyNextMonth})
		if err != nil || tk.IMACDate != "2026-12-01" || tk.IMACQuotaUse != i+1 || tk.IMACQuota != 0 || tk.Billable || tk.IMACDeferred {
			t.Fatalf("unlimited #%d: %+v, %v", i, tk, err)
		}
	}
	// Candidates exhausted: an error, and nothing is stored or counted.
	_, err := imac("mid:full", IMACRequest{Candidates: tuesdays(1), MonthlyQuota: 3, Policy: PolicyNextMonth})
	if !errors.Is(err, ErrNoIMACSlot) {
		t.Fatalf("exhausted: err = %v, want ErrNoIMACSlot", err)
	}
	usage, err := s.IMACUsage(ctx, "acme")
	if err != nil || usage.DayUsed(tuesdays(1)[0]) != 3 {
		t.Fatalf("after failed reservation: day used %d, %v", usage.DayUsed(tuesdays(1)[0]), err)
	}
	tk, err := imac("mid:next", IMACRequest{Candidates: tuesdays(1), MonthlyQuota: 4, PerVisit: 3, Policy: PolicyBillable})
	if !errors.Is(err, ErrNoIMACSlot) {
		t.Fatalf("billable without capacity: %+v, %v", tk, err)
	}
	// The same message retried returns the same reservation, uncounted.
	first, err := imac("mid:again", IMACRequest{Candidates: tuesdays(2), MonthlyQuota: 10, PerVisit: 3, Policy: PolicyNextMonth})
	if err != nil || first.IMACDate != "2026-12-08" {
		t.Fatalf("capacity skip: %+v, %v", first, err)
	}
	again, err := imac("mid:again", IMACRequest{Candidates: tuesdays(2), MonthlyQuota: 10, PerVisit: 3, Policy: PolicyNextMonth})
	if err != nil || again.ID != first.ID || again.IMACQuotaUse != first.IMACQuotaUse {
		t.Fatalf("retry: %+v, %v", again, err)
	}
	if usage, _ := s.IMACUsage(ctx, "acme"); usage.MonthUsed(2026, time.December) != 4 {
		t.Errorf("month used %d after retry, want 4", usage.MonthUsed(2026, time.December))
	}
	if !strings.HasPrefix(first.ID, "ACME-") {
		t.Errorf("id %s", first.ID)
	}
}
