package sla

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zoneinfo
)

func mustLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load location %s: %v", name, err)
	}
	return loc
}

func mustHours(tb testing.TB, s string) Hours {
	tb.Helper()
	h, err := ParseHours(s)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func mustDate(tb testing.TB, s string) Date {
	tb.Helper()
	d, err := ParseDate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// newCal builds a calendar from configuration strings: week maps weekday
// names to hours; holidays maps dates to hours ("" closes the day).
func newCal(tb testing.TB, name, zone string, week map[string]string, holidays map[string]string) *Calendar {
	tb.Helper()
	c := &Calendar{Name: name, Loc: mustLoc(tb, zone), Holidays: map[Date]Hours{}}
	for day, hours := range week {
		wd, err := ParseWeekday(day)
		if err != nil {
			tb.Fatal(err)
		}
		c.Week[wd] = mustHours(tb, hours)
	}
	for date, hours := range holidays {
		var h Hours
		if hours != "" {
			h = mustHours(tb, hours)
		}
		c.Holidays[mustDate(tb, date)] = h
	}
	if err := c.Validate(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// israelOffice is the SPEC §3 calendar: Sunday to Thursday with a Monday
// lunch break, Friday half day, Rosh Hashana (2026-09-13, a Sunday), Yom
// Kippur eve with its own hours (2026-09-20, a Sunday) and Yom Kippur
// (2026-09-21, a Monday).
func israelOffice(tb testing.TB) *Calendar {
	return newCal(tb, "israel-office", "Asia/Jerusalem", map[string]string{
		"sun": "08:00-17:00", "mon": "08:00-12:00,13:00-17:00", "tue": "08:00-17:00",
		"wed": "08:00-17:00", "thu": "08:00-17:00", "fri": "08:00-12:00",
	}, map[string]string{"2026-09-13": "", "2026-09-20": "08:00-13:00", "2026-09-21": ""})
}

// newYorkOffice is Monday to Friday 09:00-17:00 in America/New_York (DST
// 2026-03-08 and 2026-11-01, both Sundays).
func newYorkOffice(tb testing.TB) *Calendar {
	return newCal(tb, "new-york", "America/New_York", map[string]string{
		"mon": "09:00-17:00", "tue": "09:00-17:00", "wed": "09:00-17:00",
		"thu": "09:00-17:00", "fri": "09:00-17:00",
	}, nil)
}

// londonOffice is Monday to Friday 09:00-17:30 in Europe/London (DST
// 2026-03-29 and 2026-10-25, both Sundays), closed on 2026-12-25.
func londonOffice(tb testing.TB) *Calendar {
	return newCal(tb, "london", "Europe/London", map[string]string{
		"mon": "09:00-17:30", "tue": "09:00-17:30", "wed": "09:00-17:30",
		"thu": "09:00-17:30", "fri": "09:00-17:30",
	}, map[string]string{"2026-12-25": ""})
}

// allWeek is open on every day with the same hours.
func allWeek(tb testing.TB, zone, hours string) *Calendar {
	week := map[string]string{}
	for _, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
		week[d] = hours
	}
	return newCal(tb, "all-week", zone, week, nil)
}

// at is a wall-clock instant in c's zone, "2006-01-02 15:04" (optionally
// ":05" seconds). Repeated wall times resolve as time.Date does; tests that
// need a particular pass use atOff.
func at(tb testing.TB, c *Calendar, s string) time.Time {
	tb.Helper()
	layout := "2006-01-02 15:04"
	if len(s) > len(layout) {
		layout += ":05"
	}
	t, err := time.ParseInLocation(layout, s, c.Loc)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// atOff is an instant written with an explicit UTC offset, shown in c's
// zone: "2026-10-25 01:30 +0300".
func atOff(tb testing.TB, c *Calendar, s string) time.Time {
	tb.Helper()
	t, err := time.Parse("2006-01-02 15:04 -0700", s)
	if err != nil {
		tb.Fatal(err)
	}
	return t.In(c.Loc)
}

func sameInstant(tb testing.TB, what string, got, want time.Time) {
	tb.Helper()
	if !got.Equal(want) {
		tb.Errorf("%s = %s, want %s", what, fmtT(got), fmtT(want))
	}
}

func fmtT(t time.Time) string {
	if t.IsZero() {
		return "zero time"
	}
	return t.Format("Mon 2006-01-02 15:04:05 -0700 MST")
}
