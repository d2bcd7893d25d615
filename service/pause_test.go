package service_test

import (
	"slices"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// twAt parses "2006-01-02 15:04" in the calendar's zone.
func twAt(tb testing.TB, cal *sla.Calendar, s string) time.Time {
	tb.Helper()
	if s == "" {
		return time.Time{}
	}
	t, err := time.ParseInLocation("2006-01-02 15:04", s, cal.Loc)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func TestPauseShift(t *testing.T) {
	cal := twConfig(t).Calendars["israel-office"] // Sun–Thu 08–17, Mon lunch 12–13, Fri 08–12
	for _, tc := range []struct {
		name           string
		paused, resume string
		want           time.Duration
	}{
		{"within one morning", "2026-11-30 09:00", "2026-11-30 11:00", 2 * time.Hour},
		{"across the monday lunch break", "2026-11-30 11:00", "2026-11-30 14:00", 2 * time.Hour},
		// Thu 16–17, Fri 08–12, Saturday closed, Sun 08–10.
		{"across a weekend", "2026-12-03 16:00", "2026-12-06 10:00", 7 * time.Hour},
		// Yom Kippur eve (Sun 20 Sep) closes at 13:00, Yom Kippur (Mon 21 Sep) is closed.
		{"across a holiday", "2026-09-20 12:00", "2026-09-22 09:00", 2 * time.Hour},
		// Fri 25 Dec 2026 is a holiday in the example calendar: Thu 1h, Sun 1h.
		{"across a holiday friday and the weekend", "2026-12-24 16:00", "2026-12-27 09:00", 2 * time.Hour},
		// Israel leaves DST on Sun 25 Oct 2026 at 02:00, while closed.
		{"across the end of DST", "2026-10-22 16:00", "2026-10-25 09:00", 6 * time.Hour},
		{"starts and ends outside hours", "2026-12-04 13:00", "2026-12-05 20:00", 0},
		{"evening to next opening", "2026-11-30 17:00", "2026-12-01 08:00", 0},
		{"resumed before paused", "2026-11-30 11:00", "2026-11-30 10:00", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := service.PauseShift(cal, twAt(t, cal, tc.paused), twAt(t, cal, tc.resume))
			if got != tc.want {
				t.Errorf("PauseShift(%s, %s) = %v, want %v", tc.paused, tc.resume, got, tc.want)
			}
		})
	}
	if got := service.PauseShift(nil, time.Now(), time.Now().Add(time.Hour)); got != 0 {
		t.Errorf("PauseShift without a calendar = %v, want 0", got)
	}
}

func TestResumeDeadlines(t *testing.T) {
	cal := twConfig(t).Calendars["israel-office"]
	// times of a ticket: response warn, response due, resolution warn,
	// resolution due ("" for none)
	type times [4]string
	ticket := func(tt times, firstResponse string, paused time.Duration) domain.Ticket {
		return domain.Ticket{
			ID: "ACME-0042", Contract: "acme", Status: domain.StatusPending,
			ResponseWarn: twAt(t, cal, tt[0]), ResponseDue: twAt(t, cal, tt[1]),
			ResolutionWarn: twAt(t, cal, tt[2]), ResolutionDue: twAt(t, cal, tt[3]),
			FirstResponse: twAt(t, cal, firstResponse), PausedBusiness: paused,
		}
	}
	// The SPEC §7 high fault received Mon 30 Nov 2026 09:30 (1h / 8h).
	spec7 := times{"2026-11-30 10:18", "2026-11-30 10:30", "2026-11-30 16:54", "2026-12-01 09:30"}
	// A normal fault (2h / 2d) received Thu 3 Dec 2026 15:00.
	thursday := times{"2026-12-03 16:36", "2026-12-03 17:00", "2026-12-06 12:24", "2026-12-06 15:00"}

	for _, tc := range []struct {
		name           string
		before         times
		firstResponse  string
		pausedBefore   time.Duration
		paused, resume string
		want           times
		wantPaused     time.Duration
		wantTimers     []string // kinds re-armed, in order
	}{
		{
			name:   "one business hour, everything pending",
			before: spec7, paused: "2026-11-30 10:00", resume: "2026-11-30 11:00",
			// 16:54 + 1h: 6 minutes to the 17:00 close, 54 on Tuesday.
			want:       times{"2026-11-30 11:18", "2026-11-30 11:30", "2026-12-01 08:54", "2026-12-01 10:30"},
			wantPaused: time.Hour,
			wantTimers: []string{store.ResponseWarn, store.ResponseBreach, store.ResolutionWarn, store.ResolutionBreach},
		},
		{
			name:   "across a weekend",
			before: thursday, paused: "2026-12-03 16:00", resume: "2026-12-06 10:00",
			// 7h: Thu 16:36 → Fri → Sun 10:36; Thu 17:00 (a closing
			// instant) → Sun 11:00; Sun 12:24 → Mon 10:24; Sun 15:00 → Mon
			// 14:00 past the lunch break.
			want:       times{"2026-12-06 10:36", "2026-12-06 11:00", "2026-12-07 10:24", "2026-12-07 14:00"},
			wantPaused: 7 * time.Hour,
			wantTimers: []string{store.ResponseWarn, store.ResponseBreach, store.ResolutionWarn, store.ResolutionBreach},
		},
		{
			name:   "across a holiday",
			before: times{"", "", "2026-09-20 12:10", "2026-09-20 12:30"}, paused: "2026-09-20 12:00", resume: "2026-09-22 09:00",
			// 2h: 12:10 + 50m to the 13:00 holiday close, Yom Kippur closed, Tue 08:00 + 1h10.
			want:       times{"", "", "2026-09-22 09:10", "2026-09-22 09:30"},
			wantPaused: 2 * time.Hour,
			wantTimers: []string{store.ResolutionWarn, store.ResolutionBreach},
		},
		{
			name:   "outside hours: nothing moves, pending timers re-armed",
			before: thursday, paused: "2026-12-04 13:00", resume: "2026-12-05 20:00",
			// Friday afternoon pause: the response deadline (Thursday) had passed.
			want:       thursday,
			wantTimers: []string{store.ResolutionWarn, store.ResolutionBreach},
		},
		{
			name:   "response met: only resolution moves",
			before: spec7, firstResponse: "2026-11-30 09:50", paused: "2026-11-30 10:00", resume: "2026-11-30 11:00",
			want:       times{"2026-11-30 10:18", "2026-11-30 10:30", "2026-12-01 08:54", "2026-12-01 10:30"},
			wantPaused: time.Hour,
			wantTimers: []string{store.ResolutionWarn, store.ResolutionBreach},
		},
		{
			name:   "passed deadlines stay, paused time accumulates",
			before: spec7, pausedBefore: 30 * time.Minute, paused: "2026-11-30 10:45", resume: "2026-11-30 14:00",
			// 2h15 paused (10:45–12:00, 13:00–14:00): 16:54 → Tue 10:09, Tue 09:30 → 11:45.
			want:       times{"2026-11-30 10:18", "2026-11-30 10:30", "2026-12-01 10:09", "2026-12-01 11:45"},
			wantPaused: 30*time.Minute + 2*time.Hour + 15*time.Minute,
			wantTimers: []string{store.ResolutionWarn, store.ResolutionBreach},
		},
		{
			name:   "paused exactly at a warning: it had fired",
			before: spec7, paused: "2026-11-30 10:18", resume: "2026-11-30 10:28",
			want:       times{"2026-11-30 10:18", "2026-11-30 10:40", "2026-12-01 08:04", "2026-12-01 09:40"},
			wantPaused: 10 * time.Minute,
			wantTimers: []string{store.ResponseBreach, store.ResolutionWarn, store.ResolutionBreach},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ticket(tc.before, tc.firstResponse, tc.pausedBefore)
			got, timers := service.ResumeDeadlines(cal, in, twAt(t, cal, tc.paused), twAt(t, cal, tc.resume))
			want := ticket(tc.want, tc.firstResponse, tc.wantPaused)
			for _, f := range []struct {
				name      string
				got, want time.Time
			}{
				{"ResponseWarn", got.ResponseWarn, want.ResponseWarn},
				{"ResponseDue", got.ResponseDue, want.ResponseDue},
				{"ResolutionWarn", got.ResolutionWarn, want.ResolutionWarn},
				{"ResolutionDue", got.ResolutionDue, want.ResolutionDue},
			} {
				if !f.got.Equal(f.want) {
					t.Errorf("%s = %s, want %s", f.name, f.got.In(cal.Loc).Format(time.DateTime), f.want.In(cal.Loc).Format(time.DateTime))
				}
			}
			if got.PausedBusiness != tc.wantPaused {
				t.Errorf("PausedBusiness = %v, want %v", got.PausedBusiness, tc.wantPaused)
			}
			if got.Status != in.Status || got.ID != in.ID || !got.FirstResponse.Equal(in.FirstResponse) {
				t.Errorf("other fields changed: %+v", got)
			}
			var kinds []string
			for _, tm := range timers {
				kinds = append(kinds, tm.Kind)
				at, ok := map[string]time.Time{
					store.ResponseWarn: got.ResponseWarn, store.ResponseBreach: got.ResponseDue,
					store.ResolutionWarn: got.ResolutionWarn, store.ResolutionBreach: got.ResolutionDue,
				}[tm.Kind]
				if !ok || !tm.Due.Equal(at) {
					t.Errorf("timer %s at %v, want the ticket's %v", tm.Kind, tm.Due, at)
				}
			}
			if !slices.Equal(kinds, tc.wantTimers) {
				t.Errorf("timers %v, want %v", kinds, tc.wantTimers)
			}
		})
	}
}

// TestResumeDeadlinesKeepsRemainingBusinessTime checks the invariant behind
// the shift on business instants: a deadline that was r business time away
// when the ticket was paused is r business time away when it resumes.
func TestResumeDeadlinesKeepsRemainingBusinessTime(t *testing.T) {
	cal := twConfig(t).Calendars["israel-office"]
	resp, res := sla.Span{Dur: 4 * time.Hour}, sla.Span{Days: 3}
	start := twAt(t, cal, "2026-09-10 08:00")
	for i := range 200 {
		received := start.Add(time.Duration(i) * 97 * time.Minute)
		dl := sla.Compute(cal, received, sla.Target{Response: &resp, Resolution: &res}, 0.8)
		// Pause and resume at business instants.
		paused := cal.AddBusiness(dl.EffectiveStart, time.Duration(i%7)*17*time.Minute+time.Minute)
		resumed := cal.AddBusiness(paused, time.Duration(i%11)*53*time.Minute+time.Minute)
		tk := domain.Ticket{ResponseWarn: dl.ResponseWarn, ResponseDue: dl.ResponseDue, ResolutionWarn: dl.ResolutionWarn, ResolutionDue: dl.ResolutionDue}
		got, _ := service.ResumeDeadlines(cal, tk, paused, resumed)
		for _, p := range [][2]time.Time{{tk.ResponseWarn, got.ResponseWarn}, {tk.ResponseDue, got.ResponseDue}, {tk.ResolutionDue, got.ResolutionDue}, {tk.ResolutionWarn, got.ResolutionWarn}} {
			if !p[0].After(paused) {
				if !p[1].Equal(p[0]) {
					t.Fatalf("case %d: passed deadline %v moved to %v", i, p[0], p[1])
				}
				continue
			}
			before, after := cal.BusinessBetween(paused, p[0]), cal.BusinessBetween(resumed, p[1])
			if before != after {
				t.Fatalf("case %d: paused %v resumed %v: %v had %v left, %v has %v", i, paused, resumed, p[0], before, p[1], after)
			}
		}
	}
}
