package sla

import (
	"fmt"
	"time"
)

// ParseDate parses a civil date written YYYY-MM-DD (four-digit year,
// two-digit month and day) and checks that the day exists in that month.
func ParseDate(s string) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return Date{}, fmt.Errorf("parse date %q: want YYYY-MM-DD", s)
	}
	y, okY := digits(s[0:4])
	m, okM := digits(s[5:7])
	d, okD := digits(s[8:10])
	if !okY || !okM || !okD {
		return Date{}, fmt.Errorf("parse date %q: want YYYY-MM-DD", s)
	}
	if y == 0 {
		return Date{}, fmt.Errorf("parse date %q: year 0000 does not exist", s)
	}
	if m < 1 || m > 12 {
		return Date{}, fmt.Errorf("parse date %q: month %02d out of range", s, m)
	}
	if d < 1 || d > daysIn(y, time.Month(m)) {
		return Date{}, fmt.Errorf("parse date %q: %s %d has no day %d", s, time.Month(m), y, d)
	}
	return Date{Year: y, Month: time.Month(m), Day: d}, nil
}

// digits parses a run of ASCII digits.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

// daysIn is the number of days in month m of year y.
func daysIn(y int, m time.Month) int {
	return civilFromDays(daysFromCivil(y, m+1, 1) - 1).Day
}

// DateOf is t's civil date in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// String formats d as YYYY-MM-DD.
func (d Date) String() string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// MarshalText implements encoding.TextMarshaler (YYYY-MM-DD).
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDate.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// Weekday is the day of the week of d (proleptic Gregorian calendar).
func (d Date) Weekday() time.Weekday { return weekdayOf(d.days()) }

// AddDays is the date n days after d (before, for negative n). Out-of-range
// fields of d are normalised as time.Date does.
func (d Date) AddDays(n int) Date { return civilFromDays(d.days() + int64(n)) }

// Compare returns -1 if d is before o, +1 if after, 0 if the same day.
func (d Date) Compare(o Date) int {
	a, b := d.days(), o.days()
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Before reports whether d is before o.
func (d Date) Before(o Date) bool { return d.days() < o.days() }

// After reports whether d is after o.
func (d Date) After(o Date) bool { return d.days() > o.days() }

// MonthKey is d's calendar month as YYYY-MM, e.g. "2026-12": the unit in
// which IMAC quotas are counted.
func (d Date) MonthKey() string { return MonthKey(d) }

// MonthKey is d's calendar month as YYYY-MM, e.g. "2026-12".
func MonthKey(d Date) string {
	n := d.normal()
	return fmt.Sprintf("%04d-%02d", n.Year, int(n.Month))
}

// In is the first instant of d in loc: local midnight, or when a DST change
// skips midnight, the first instant after the gap.
func (d Date) In(loc *time.Location) time.Time {
	return wallInstant(orUTC(loc), d.days(), 0)
}

// normal returns d with out-of-range fields normalised.
func (d Date) normal() Date { return civilFromDays(d.days()) }

// days is the number of days from 1970-01-01 to d.
func (d Date) days() int64 { return daysFromCivil(d.Year, d.Month, d.Day) }

// weekdayOf is the weekday of a day number (1970-01-01 was a Thursday).
func weekdayOf(days int64) time.Weekday {
	return time.Weekday(floorMod(days+4, 7))
}

// daysFromCivil counts days from 1970-01-01 to y-m-d in the proleptic
// Gregorian calendar (H. Hinnant's algorithm). Out-of-range months and days
// are normalised.
func daysFromCivil(y int, m time.Month, d int) int64 {
	yy := int64(y) + floorDiv(int64(m)-1, 12)
	mm := floorMod(int64(m)-1, 12) + 1
	if mm <= 2 {
		yy--
	}
	era := floorDiv(yy, 400)
	yoe := yy - era*400                    // [0, 399]
	mp := (mm + 9) % 12                    // March = 0
	doy := (153*mp+2)/5 + int64(d) - 1     // day of the year from March 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy // day of the 400-year era
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) Date {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return Date{Year: int(y), Month: time.Month(m), Day: int(d)}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}
