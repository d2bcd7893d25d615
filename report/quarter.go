package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/sla"
)

// Quarter is a calendar quarter: Q 1 is January to March.
type Quarter struct {
	Year int
	Q    int // 1..4
}

// ParseQuarter parses "2026-Q3" (also "2026Q3", case-insensitive).
func ParseQuarter(s string) (Quarter, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	i := strings.LastIndex(u, "Q")
	if i < 4 || i != len(u)-2 {
		return Quarter{}, fmt.Errorf("parse quarter %q: want YYYY-Qn", s)
	}
	ys := strings.TrimSuffix(u[:i], "-")
	y, err := strconv.Atoi(ys)
	if err != nil || len(ys) != 4 || y < 1 {
		return Quarter{}, fmt.Errorf("parse quarter %q: want YYYY-Qn", s)
	}
	q := int(u[i+1] - '0')
	if q < 1 || q > 4 {
		return Quarter{}, fmt.Errorf("parse quarter %q: quarter must be 1 to 4", s)
	}
	return Quarter{Year: y, Q: q}, nil
}

// QuarterOf is the quarter that contains date d.
func QuarterOf(d sla.Date) Quarter { return Quarter{Year: d.Year, Q: (int(d.Month)-1)/3 + 1} }

// String formats q as "2026-Q3".
func (q Quarter) String() string { return fmt.Sprintf("%04d-Q%d", q.Year, q.Q) }

// Prev is the quarter before q.
func (q Quarter) Prev() Quarter {
	if q.Q == 1 {
		return Quarter{Year: q.Year - 1, Q: 4}
	}
	return Quarter{Year: q.Year, Q: q.Q - 1}
}

// FirstDay is the quarter's first date.
func (q Quarter) FirstDay() sla.Date {
	return sla.Date{Year: q.Year, Month: time.Month(3*(q.Q-1) + 1), Day: 1}
}

// EndDay is the first date after the quarter (exclusive end).
func (q Quarter) EndDay() sla.Date {
	if q.Q == 4 {
		return sla.Date{Year: q.Year + 1, Month: time.January, Day: 1}
	}
	return sla.Date{Year: q.Year, Month: time.Month(3*q.Q + 1), Day: 1}
}

// Months are the quarter's three months as their first dates.
func (q Quarter) Months() [3]sla.Date {
	f := q.FirstDay()
	return [3]sla.Date{f, {Year: f.Year, Month: f.Month + 1, Day: 1}, {Year: f.Year, Month: f.Month + 2, Day: 1}}
}

// Bounds is the quarter as the half-open interval of instants [start, end)
// in loc: from local midnight of its first day to local midnight of the
// day after it.
func (q Quarter) Bounds(loc *time.Location) (start, end time.Time) {
	return q.FirstDay().In(loc), q.EndDay().In(loc)
}

// dayNum is the number of days from 1970-01-01 to d.
func dayNum(d sla.Date) int64 {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// dateOfNum is the inverse of dayNum.
func dateOfNum(n int64) sla.Date { return sla.DateOf(time.Unix(n*86400, 0).UTC()) }

// localDate is t's civil date in loc.
func localDate(t time.Time, loc *time.Location) sla.Date { return sla.DateOf(t.In(loc)) }

// WeekStartDay is the first day of the week for reports on calendar c
// (SPEC §8): Sunday for a calendar that works on Sunday and not on Saturday
// (a Sunday–Thursday week), Monday otherwise.
func WeekStartDay(c *sla.Calendar) time.Weekday {
	if c != nil && len(c.Week[time.Sunday]) > 0 && len(c.Week[time.Saturday]) == 0 {
		return time.Sunday
	}
	return time.Monday
}

// weekOf is the day number of the first day of the week containing day n.
func weekOf(n int64, start time.Weekday) int64 {
	wd := ((n % 7) + 7 + 4) % 7 // 1970-01-01 was a Thursday
	return n - (wd-int64(start)+7)%7
}
