package sla

import (
	"strings"
	"testing"
	"time"
)

func TestHoursOnAndBusinessDays(t *testing.T) {
	c := israelOffice(t)
	tests := []struct {
		date     string
		hours    string
		business bool
	}{
		{"2026-11-29", "08:00-17:00", true},             // Sunday
		{"2026-11-30", "08:00-12:00,13:00-17:00", true}, // Monday, lunch break
		{"2026-12-04", "08:00-12:00", true},             // Friday half day
		{"2026-12-05", "", false},                       // Saturday
		{"2026-09-13", "", false},                       // Rosh Hashana, a Sunday
		{"2026-09-20", "08:00-13:00", true},             // Yom Kippur eve, own hours
		{"2026-09-21", "", false},                       // Yom Kippur, a Monday
	}
	for _, tt := range tests {
		d := mustDate(t, tt.date)
		if got := c.HoursOn(d).String(); got != tt.hours {
			t.Errorf("HoursOn(%s) = %q, want %q", tt.date, got, tt.hours)
		}
		if got := c.IsBusinessDay(d); got != tt.business {
			t.Errorf("IsBusinessDay(%s) = %v, want %v", tt.date, got, tt.business)
		}
		_, ok := c.FirstOpening(d)
		if ok != tt.business {
			t.Errorf("FirstOpening(%s) ok = %v, want %v", tt.date, ok, tt.business)
		}
	}
}

func TestIsOpenAndNextOpening(t *testing.T) {
	c := israelOffice(t)
	tests := []struct {
		name string
		t    string
		open bool
		next string
	}{
		{"exactly at opening", "2026-11-29 08:00", true, "2026-11-29 08:00"},
		{"a second before opening", "2026-11-29 07:59:59", false, "2026-11-29 08:00"},
		{"inside", "2026-11-29 12:34:56", true, "2026-11-29 12:34:56"},
		{"a second before closing", "2026-11-29 16:59:59", true, "2026-11-29 16:59:59"},
		{"exactly at closing", "2026-11-29 17:00", false, "2026-11-30 08:00"},
		{"Monday lunch starts", "2026-11-30 12:00", false, "2026-11-30 13:00"},
		{"Monday lunch ends", "2026-11-30 13:00", true, "2026-11-30 13:00"},
		{"Friday afternoon", "2026-12-04 12:00", false, "2026-12-06 08:00"},
		{"Saturday", "2026-12-05 10:00", false, "2026-12-06 08:00"},
		{"before Rosh Hashana", "2026-09-12 10:00", false, "2026-09-14 08:00"},
		{"Yom Kippur eve after its close", "2026-09-20 13:00", false, "2026-09-22 08:00"},
		{"Yom Kippur eve before its close", "2026-09-20 12:59", true, "2026-09-20 12:59"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := at(t, c, tt.t)
			if got := c.IsOpen(in); got != tt.open {
				t.Errorf("IsOpen(%s) = %v, want %v", tt.t, got, tt.open)
			}
			got := c.NextOpening(in)
			sameInstant(t, "NextOpening", got, at(t, c, tt.next))
			if got.Location() != c.Loc {
				t.Errorf("NextOpening location = %v, want %v", got.Location(), c.Loc)
			}
		})
	}
}

func TestNextOpeningConvertsZone(t *testing.T) {
	c := israelOffice(t)
	// Sunday 2026-11-29 05:30 UTC is 07:30 in Jerusalem.
	in := time.Date(2026, 11, 29, 5, 30, 0, 0, time.UTC)
	got := c.NextOpening(in)
	sameInstant(t, "NextOpening", got, at(t, c, "2026-11-29 08:00"))
	if got.Location() != c.Loc {
		t.Errorf("location = %v, want the calendar's", got.Location())
	}
}

func TestNeverOpens(t *testing.T) {
	c := &Calendar{Name: "closed", Loc: time.UTC}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "no opening window") {
		t.Fatalf("Validate() = %v, want a no-opening-window error", err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := c.NextOpening(now); !got.IsZero() {
		t.Errorf("NextOpening = %v, want zero", got)
	}
	if got := c.AddBusiness(now, time.Hour); !got.IsZero() {
		t.Errorf("AddBusiness = %v, want zero", got)
	}
	if got := c.AddBusinessDays(now, 1); !got.IsZero() {
		t.Errorf("AddBusinessDays = %v, want zero", got)
	}
	if got := c.BusinessBetween(now, now.AddDate(1, 0, 0)); got != 0 {
		t.Errorf("BusinessBetween = %v, want 0", got)
	}
	dl := Compute(c, now, Target{Response: &Span{Dur: time.Hour}}, 0.8)
	if !dl.EffectiveStart.IsZero() || !dl.ResponseDue.IsZero() {
		t.Errorf("Compute = %+v, want no deadlines", dl)
	}
	if _, err := ScheduleIMAC(c, now, IMACPlan{ServiceDays: []time.Weekday{time.Tuesday}}, NoUsage{}); err == nil {
		t.Error("ScheduleIMAC on a calendar that never opens: want an error")
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := &Calendar{
		Name: "bad",
		Holidays: map[Date]Hours{
			{2026, 2, 30}: nil,
			{2026, 3, 1}:  {{Open: 600, Close: 500}},
		},
	}
	c.Week[time.Monday] = Hours{{Open: 600, Close: 700}, {Open: 650, Close: 800}}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{`calendar "bad"`, "no time zone", "Monday: windows 10:00-11:40 and 10:50-13:20 overlap",
		"holiday 2026-02-30: no such date", "holiday 2026-03-01: window 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, missing %q", err, want)
		}
	}
}

func TestAddBusiness(t *testing.T) {
	il, ny, ldn := israelOffice(t), newYorkOffice(t), londonOffice(t)
	tests := []struct {
		name string
		c    *Calendar
		from string
		add  time.Duration
		want string
	}{
		{"ends exactly at closing", il, "2026-11-29 16:00", time.Hour, "2026-11-29 17:00"},
		{"one minute past closing carries over", il, "2026-11-29 16:00", 61 * time.Minute, "2026-11-30 08:01"},
		{"lunch break: up to lunch", il, "2026-11-30 11:30", 30 * time.Minute, "2026-11-30 12:00"},
		{"lunch break: across it", il, "2026-11-30 11:30", time.Hour, "2026-11-30 13:30"},
		// SPEC §7: 09:30-12:00 (2h30) + 13:00-17:00 (4h) Monday, then 08:00-09:30 Tuesday.
		{"worked example resolution", il, "2026-11-30 09:30", 8 * time.Hour, "2026-12-01 09:30"},
		{"Friday half day to Sunday", il, "2026-12-04 11:00", 2 * time.Hour, "2026-12-06 09:00"},
		{"from closed time starts at opening", il, "2026-12-05 10:00", 30 * time.Minute, "2026-12-06 08:30"},
		// Friday 11:00-12:00, Saturday closed, Rosh Hashana Sunday closed, Monday 08:00-09:00.
		{"over Rosh Hashana", il, "2026-09-11 11:00", 2 * time.Hour, "2026-09-14 09:00"},
		// Yom Kippur eve 12:00-13:00, Yom Kippur closed, Tuesday 08:00-09:00.
		{"over Yom Kippur eve and Yom Kippur", il, "2026-09-20 12:00", 2 * time.Hour, "2026-09-22 09:00"},
		{"seconds are kept", il, "2026-11-29 10:00:30", 90 * time.Second, "2026-11-29 10:02"},
		{"zero adds nothing", il, "2026-12-05 10:00", 0, "2026-12-05 10:00"},
		// Five full weeks of 9+8+9+9+9+4 = 48h.
		{"a long target", il, "2026-11-29 08:00", 5 * 48 * time.Hour, "2027-01-01 12:00"},
		// Israel spring forward, Friday 2026-03-27 02:00 -> 03:00: Thursday
		// 16:00-17:00 then Friday 08:00-09:00 (IDT).
		{"Jerusalem over spring forward", il, "2026-03-26 16:00", 2 * time.Hour, "2026-03-27 09:00"},
		// Israel fall back, Sunday 2026-10-25 02:00 -> 01:00: Friday
		// 11:00-12:00 IDT then Sunday 08:00-09:00 IST.
		{"Jerusalem over fall back", il, "2026-10-23 11:00", 2 * time.Hour, "2026-10-25 09:00"},
		{"New York over spring forward", ny, "2026-03-06 16:00", 2 * time.Hour, "2026-03-09 10:00"},
		{"New York over fall back", ny, "2026-10-30 16:00", 2 * time.Hour, "2026-11-02 10:00"},
		{"London over spring forward", ldn, "2026-03-27 17:00", time.Hour, "2026-03-30 09:30"},
		{"London over fall back", ldn, "2026-10-23 17:00", time.Hour, "2026-10-26 09:30"},
		{"London over Christmas", ldn, "2026-12-24 17:00", time.Hour, "2026-12-28 09:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := at(t, tt.c, tt.from)
			got := tt.c.AddBusiness(from, tt.add)
			sameInstant(t, "AddBusiness", got, at(t, tt.c, tt.want))
			if tt.add > 0 {
				if back := tt.c.BusinessBetween(from, got); back != tt.add {
					t.Errorf("BusinessBetween(from, result) = %v, want %v", back, tt.add)
				}
			}
		})
	}
}

func TestBusinessBetween(t *testing.T) {
	il, ny := israelOffice(t), newYorkOffice(t)
	ny24, il24 := allWeek(t, "America/New_York", "00:00-24:00"), allWeek(t, "Asia/Jerusalem", "00:00-24:00")
	tests := []struct {
		name     string
		c        *Calendar
		from, to string
		want     time.Duration
	}{
		{"a Monday with lunch", il, "2026-11-30 00:00", "2026-12-01 00:00", 8 * time.Hour},
		{"an Israeli week", il, "2026-11-29 00:00", "2026-12-06 00:00", (9 + 8 + 9 + 9 + 9 + 4) * time.Hour},
		{"the Rosh Hashana week", il, "2026-09-13 00:00", "2026-09-20 00:00", (8 + 9 + 9 + 9 + 4) * time.Hour},
		{"reversed is zero", il, "2026-12-01 00:00", "2026-11-30 00:00", 0},
		{"both in closed time", il, "2026-12-05 00:00", "2026-12-05 23:00", 0},
		{"partial windows", il, "2026-11-30 11:30", "2026-11-30 13:15", 45 * time.Minute},
		// 65 real hours but 2 business hours.
		{"New York Friday to Monday over spring forward", ny, "2026-03-06 16:00", "2026-03-09 10:00", 2 * time.Hour},
		{"New York spring-forward day lasts 23h", ny24, "2026-03-08 00:00", "2026-03-09 00:00", 23 * time.Hour},
		{"New York fall-back day lasts 25h", ny24, "2026-11-01 00:00", "2026-11-02 00:00", 25 * time.Hour},
		{"Jerusalem spring-forward day lasts 23h", il24, "2026-03-27 00:00", "2026-03-28 00:00", 23 * time.Hour},
		{"Jerusalem fall-back day lasts 25h", il24, "2026-10-25 00:00", "2026-10-26 00:00", 25 * time.Hour},
		// The Sunday of the fall back: an ordinary 9h business day.
		{"window on the fall-back date", il, "2026-10-25 00:00", "2026-10-26 00:00", 9 * time.Hour},
		{"window on the spring-forward date", il, "2026-03-27 00:00", "2026-03-28 00:00", 4 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.BusinessBetween(at(t, tt.c, tt.from), at(t, tt.c, tt.to))
			if got != tt.want {
				t.Errorf("BusinessBetween = %v, want %v", got, tt.want)
			}
		})
	}
}

// Windows are wall-clock time: partly nonexistent windows cover the real
// instants that exist, and windows spanning a repeated hour are open in both
// passes.
func TestWindowsAcrossDSTTransitions(t *testing.T) {
	tests := []struct {
		name  string
		zone  string
		date  string
		hours string
		want  []string // intervals as "start/end" with offsets
	}{
		{"spring forward inside a window", "Asia/Jerusalem", "2026-03-27", "00:00-03:00",
			[]string{"2026-03-27 00:00 +0200/2026-03-27 03:00 +0300"}},
		{"window ends in the gap", "Asia/Jerusalem", "2026-03-27", "01:00-02:30",
			[]string{"2026-03-27 01:00 +0200/2026-03-27 03:00 +0300"}},
		{"window starts in the gap", "America/New_York", "2026-03-08", "02:30-04:00",
			[]string{"2026-03-08 03:00 -0400/2026-03-08 04:00 -0400"}},
		{"window wholly in the gap", "America/New_York", "2026-03-08", "02:10-02:50", nil},
		{"fall back inside a window", "Asia/Jerusalem", "2026-10-25", "00:00-03:00",
			[]string{"2026-10-25 00:00 +0300/2026-10-25 03:00 +0200"}},
		// The first pass ends at the transition, 02:00 +0300 = 01:00 +0200.
		{"window inside the repeated hour", "Asia/Jerusalem", "2026-10-25", "01:30-02:00",
			[]string{"2026-10-25 01:30 +0300/2026-10-25 01:00 +0200", "2026-10-25 01:30 +0200/2026-10-25 02:00 +0200"}},
		{"window ending inside the repeated hour", "America/New_York", "2026-11-01", "00:00-01:30",
			[]string{"2026-11-01 00:00 -0400/2026-11-01 01:30 -0400", "2026-11-01 01:00 -0500/2026-11-01 01:30 -0500"}},
		{"whole day in London's spring forward", "Europe/London", "2026-03-29", "00:00-24:00",
			[]string{"2026-03-29 00:00 +0000/2026-03-30 00:00 +0100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCal(t, "dst", tt.zone, map[string]string{"wed": "09:00-10:00"}, map[string]string{tt.date: tt.hours})
			ivs := c.Intervals(mustDate(t, tt.date))
			var got []string
			for _, iv := range ivs {
				got = append(got, iv.Start.Format("2006-01-02 15:04 -0700")+"/"+iv.End.Format("2006-01-02 15:04 -0700"))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Intervals = %q, want %q", got, tt.want)
			}
			if business := c.IsBusinessDay(mustDate(t, tt.date)); business != (len(tt.want) > 0) {
				t.Errorf("IsBusinessDay = %v", business)
			}
			// IsOpen agrees with the intervals on both passes of a repeated hour.
			for _, iv := range ivs {
				if !c.IsOpen(iv.Start) || !c.IsOpen(iv.End.Add(-time.Second)) {
					t.Errorf("IsOpen false inside %v-%v", iv.Start, iv.End)
				}
				if c.IsOpen(iv.End) && !containsStart(ivs, iv.End) {
					t.Errorf("IsOpen true at close %v", iv.End)
				}
			}
		})
	}
}

func containsStart(ivs []Interval, t time.Time) bool {
	for _, iv := range ivs {
		if iv.Start.Equal(t) {
			return true
		}
	}
	return false
}

func TestDateIn(t *testing.T) {
	tests := []struct {
		zone, date, want string
	}{
		{"Asia/Jerusalem", "2026-03-27", "2026-03-27 00:00 +0200"},
		{"Asia/Jerusalem", "2026-10-25", "2026-10-25 00:00 +0300"},
		{"America/New_York", "2026-11-01", "2026-11-01 00:00 -0400"},
		// Santiago springs forward at midnight: 2026-09-06 starts at 01:00.
		{"America/Santiago", "2026-09-06", "2026-09-06 01:00 -0300"},
		// Samoa skipped 2011-12-30 entirely.
		{"Pacific/Apia", "2011-12-30", "2011-12-31 00:00 +1400"},
	}
	for _, tt := range tests {
		got := mustDate(t, tt.date).In(mustLoc(t, tt.zone)).Format("2006-01-02 15:04 -0700")
		if got != tt.want {
			t.Errorf("%s in %s = %s, want %s", tt.date, tt.zone, got, tt.want)
		}
	}
}

// Samoa skipped Friday 2011-12-30: a calendar open every day has no business
// day there, and business time runs straight from Thursday to Saturday.
func TestSkippedDate(t *testing.T) {
	c := allWeek(t, "Pacific/Apia", "09:00-17:00")
	if c.IsBusinessDay(mustDate(t, "2011-12-30")) {
		t.Error("2011-12-30 in Samoa is a business day")
	}
	sameInstant(t, "AddBusiness", c.AddBusiness(at(t, c, "2011-12-29 16:00"), 2*time.Hour), at(t, c, "2011-12-31 10:00"))
	sameInstant(t, "AddBusinessDays", c.AddBusinessDays(at(t, c, "2011-12-29 16:00"), 1), at(t, c, "2011-12-31 16:00"))
}
