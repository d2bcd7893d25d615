package sla

import (
	"testing"
	"time"
)

func TestAddBusinessDays(t *testing.T) {
	il, ny, ldn := israelOffice(t), newYorkOffice(t), londonOffice(t)
	// lateMonday opens at 10:00 on Mondays, 08:00 otherwise.
	lateMonday := newCal(t, "late-monday", "Asia/Jerusalem", map[string]string{
		"sun": "08:00-17:00", "mon": "10:00-17:00", "tue": "08:00-17:00",
	}, nil)
	// twoShifts has a long midday gap every day.
	twoShifts := allWeek(t, "Europe/London", "06:00-10:00,14:00-18:00")
	ny24 := allWeek(t, "America/New_York", "00:00-24:00")
	tests := []struct {
		name string
		c    *Calendar
		from string
		n    int
		want string
	}{
		// SPEC §3a: Sunday is business day 1, Monday day 2.
		{"Friday 11:50 plus 2d", il, "2026-11-27 11:50", 2, "2026-11-30 11:50"},
		// SPEC §3a: Friday is business day 1 (its half day counts), Sunday day 2.
		{"Thursday 16:00 plus 2d", il, "2026-11-26 16:00", 2, "2026-11-29 16:00"},
		// Israel springs forward on Friday 2026-03-27: still Sunday 16:00, now
		// IDT, only 71 real hours later.
		{"Thursday before spring forward", il, "2026-03-26 16:00", 2, "2026-03-29 16:00"},
		// Israel falls back on Sunday 2026-10-25: Sunday 16:00 IST, 73 real
		// hours later.
		{"Thursday before fall back", il, "2026-10-22 16:00", 2, "2026-10-25 16:00"},
		{"Thursday 16:00 plus 1d: Friday closes at 12:00", il, "2026-11-26 16:00", 1, "2026-11-27 12:00"},
		{"lunch time lands on Monday's lunch break", il, "2026-11-29 12:30", 1, "2026-11-30 12:00"},
		{"same time inside Monday's afternoon window", il, "2026-11-29 13:00", 1, "2026-11-30 13:00"},
		{"the day opens later", lateMonday, "2026-11-29 08:30", 1, "2026-11-30 10:00"},
		{"gap between two shifts", twoShifts, "2026-11-29 10:30", 1, "2026-11-30 10:00"},
		{"a second before the close, seconds kept", twoShifts, "2026-11-29 17:59:59", 1, "2026-11-30 17:59:59"},
		{"after the last close", twoShifts, "2026-11-29 19:00", 1, "2026-11-30 18:00"},
		// Friday 1, Saturday closed, Sunday Rosh Hashana, Monday 2.
		{"over Rosh Hashana", il, "2026-09-10 10:00", 2, "2026-09-14 10:00"},
		// Sunday the eve closes at 13:00: last close before 15:00.
		{"landing on the holiday eve", il, "2026-09-17 15:00", 2, "2026-09-20 13:00"},
		// Eve is day 1, Yom Kippur closed, Tuesday day 2.
		{"over Yom Kippur", il, "2026-09-18 09:00", 2, "2026-09-22 09:00"},
		{"five business days", il, "2026-11-29 08:00", 5, "2026-12-04 08:00"},
		{"New York Friday plus 1d over spring forward", ny, "2026-03-06 16:00", 1, "2026-03-09 16:00"},
		{"New York Friday plus 1d over fall back", ny, "2026-10-30 09:00", 1, "2026-11-02 09:00"},
		{"London Christmas Eve plus 1d", ldn, "2026-12-24 10:00", 1, "2026-12-28 10:00"},
		// 02:30 does not exist on 2026-03-08 in New York: the first instant
		// after the gap stands for it.
		{"wall time in the spring-forward gap", ny24, "2026-03-07 02:30", 1, "2026-03-08 03:00"},
		{"zero days", il, "2026-11-29 10:00", 0, "2026-11-29 10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.AddBusinessDays(at(t, tt.c, tt.from), tt.n)
			sameInstant(t, "AddBusinessDays", got, at(t, tt.c, tt.want))
			sameInstant(t, "Add", tt.c.Add(at(t, tt.c, tt.from), Span{Days: tt.n}), got)
		})
	}
}

// A wall time repeated by a fall-back resolves to its first pass.
func TestAddBusinessDaysRepeatedWallTime(t *testing.T) {
	c := allWeek(t, "America/New_York", "00:00-24:00")
	got := c.AddBusinessDays(atOff(t, c, "2026-10-31 01:30 -0400"), 1)
	sameInstant(t, "AddBusinessDays", got, atOff(t, c, "2026-11-01 01:30 -0400"))
	// From the second pass the next day's 01:30 is ordinary.
	got = c.AddBusinessDays(atOff(t, c, "2026-11-01 01:30 -0500"), 1)
	sameInstant(t, "AddBusinessDays", got, atOff(t, c, "2026-11-02 01:30 -0500"))
}

func span(d time.Duration) *Span { return &Span{Dur: d} }
func days(n int) *Span           { return &Span{Days: n} }

func TestCompute(t *testing.T) {
	il, ny := israelOffice(t), newYorkOffice(t)
	tests := []struct {
		name       string
		c          *Calendar
		received   string
		target     Target
		warnAt     float64
		effective  string
		response   string // "" means none
		respWarn   string
		resolution string
		resWarn    string
	}{
		{
			// SPEC §7. Response: 09:30 + 1h = 10:30; warning after 48m.
			// Resolution: 8 business hours = 09:30-12:00 (2h30) + 13:00-17:00
			// (4h) on Monday, then 08:00-09:30 (1h30) on Tuesday. Warning
			// after 6h24m: 2h30 before lunch, 3h54m after, so 16:54.
			name: "worked example", c: il, received: "2026-11-30 09:30",
			target: Target{Response: span(time.Hour), Resolution: span(8 * time.Hour)}, warnAt: 0.8,
			effective: "2026-11-30 09:30",
			response:  "2026-11-30 10:30", respWarn: "2026-11-30 10:18",
			resolution: "2026-12-01 09:30", resWarn: "2026-11-30 16:54",
		},
		{
			// Received Saturday: the clock starts Sunday 08:00.
			name: "received while closed", c: il, received: "2026-12-05 21:15",
			target: Target{Response: span(30 * time.Minute), Resolution: span(4 * time.Hour)}, warnAt: 0.8,
			effective: "2026-12-06 08:00",
			response:  "2026-12-06 08:30", respWarn: "2026-12-06 08:24",
			resolution: "2026-12-06 12:00", resWarn: "2026-12-06 11:12",
		},
		{
			name: "received exactly at closing", c: il, received: "2026-11-29 17:00",
			target: Target{Response: span(time.Hour)}, warnAt: 0.8,
			effective: "2026-11-30 08:00",
			response:  "2026-11-30 09:00", respWarn: "2026-11-30 08:48",
		},
		{
			name: "received exactly at opening", c: il, received: "2026-11-29 08:00",
			target: Target{Response: span(time.Hour)}, warnAt: 0.5,
			effective: "2026-11-29 08:00",
			response:  "2026-11-29 09:00", respWarn: "2026-11-29 08:30",
		},
		{
			// 2d from Monday 12:30 (lunch: effective start 13:00): Wednesday
			// 13:00. Business time between is 4h + 9h + 5h = 18h; 80% is
			// 14h24m: Monday 4h, Tuesday 9h, Wednesday 1h24m from 08:00.
			name: "business-day target warns on business time", c: il, received: "2026-11-30 12:30",
			target: Target{Response: span(2 * time.Hour), Resolution: days(2)}, warnAt: 0.8,
			effective: "2026-11-30 13:00",
			response:  "2026-11-30 15:00", respWarn: "2026-11-30 14:36",
			resolution: "2026-12-02 13:00", resWarn: "2026-12-02 09:24",
		},
		{
			// 0.75 × 1h3m = 47m15s.
			name: "warnings keep whole seconds", c: il, received: "2026-11-29 10:00",
			target: Target{Response: span(63 * time.Minute)}, warnAt: 0.75,
			effective: "2026-11-29 10:00",
			response:  "2026-11-29 11:03", respWarn: "2026-11-29 10:47:15",
		},
		{
			name: "no targets", c: il, received: "2026-12-05 10:00",
			effective: "2026-12-06 08:00",
		},
		{
			name: "no warnings", c: il, received: "2026-11-29 10:00",
			target: Target{Response: span(time.Hour)}, warnAt: 0,
			effective: "2026-11-29 10:00", response: "2026-11-29 11:00",
		},
		{
			// Received Saturday 2026-03-07 in New York: the clock starts
			// Monday 09:00 EDT, after the spring forward.
			name: "New York weekend before spring forward", c: ny, received: "2026-03-07 12:00",
			target: Target{Response: span(4 * time.Hour), Resolution: days(1)}, warnAt: 0.8,
			effective: "2026-03-09 09:00",
			response:  "2026-03-09 13:00", respWarn: "2026-03-09 12:12",
			resolution: "2026-03-10 09:00", resWarn: "2026-03-09 15:24",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			received := at(t, tt.c, tt.received)
			dl := Compute(tt.c, received.UTC(), tt.target, tt.warnAt)
			sameInstant(t, "Received", dl.Received, received)
			if dl.Received.Location() != tt.c.Loc {
				t.Errorf("Received is in %v, want the calendar's zone", dl.Received.Location())
			}
			sameInstant(t, "EffectiveStart", dl.EffectiveStart, at(t, tt.c, tt.effective))
			opt := func(s string) time.Time {
				if s == "" {
					return time.Time{}
				}
				return at(t, tt.c, s)
			}
			sameInstant(t, "ResponseDue", dl.ResponseDue, opt(tt.response))
			sameInstant(t, "ResponseWarn", dl.ResponseWarn, opt(tt.respWarn))
			sameInstant(t, "ResolutionDue", dl.ResolutionDue, opt(tt.resolution))
			sameInstant(t, "ResolutionWarn", dl.ResolutionWarn, opt(tt.resWarn))
			for _, d := range []time.Time{dl.EffectiveStart, dl.ResponseDue, dl.ResolutionDue, dl.ResponseWarn, dl.ResolutionWarn} {
				if !d.IsZero() && d.Location() != tt.c.Loc {
					t.Errorf("%v is not in the calendar's zone", d)
				}
			}
		})
	}
}

func TestWarnShare(t *testing.T) {
	tests := []struct {
		total  time.Duration
		warnAt float64
		want   time.Duration
	}{
		{8 * time.Hour, 0.8, 6*time.Hour + 24*time.Minute},
		{time.Hour, 0.8, 48 * time.Minute},
		{30 * time.Minute, 0.8, 24 * time.Minute},
		{7 * time.Minute, 0.1, 42 * time.Second},
		{time.Minute + time.Second, 0.5, 30 * time.Second}, // 30.5s truncated
		{time.Hour, 1, time.Hour},
	}
	for _, tt := range tests {
		if got := WarnShare(tt.total, tt.warnAt); got != tt.want {
			t.Errorf("WarnShare(%v, %v) = %v, want %v", tt.total, tt.warnAt, got, tt.want)
		}
	}
}
