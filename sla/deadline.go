package sla

import (
	"math"
	"time"
)

// AddBusinessDays is the SPEC §3a deadline of an n-business-day target from
// the effective start effStart. The deadline falls on the nth business day
// after effStart's date (in the calendar's zone), at effStart's wall-clock
// time W:
//   - if W lies inside one of that day's windows, at W;
//   - if W is before the day's first opening, at the first opening;
//   - otherwise (in a gap between windows, such as a lunch break, or after
//     the last close) at the last close before W.
//
// When W does not exist on that day (a spring-forward gap) the first instant
// after the gap stands for it; when it occurs twice (fall-back), the first
// occurrence. For n <= 0 the result is effStart. It is the zero Time when the
// calendar stays closed for three years.
func (c *Calendar) AddBusinessDays(effStart time.Time, n int) time.Time {
	loc := c.loc()
	effStart = effStart.In(loc)
	if n <= 0 {
		return effStart
	}
	y, m, d := effStart.Date()
	hh, mm, ss := effStart.Clock()
	tod := time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute +
		time.Duration(ss)*time.Second + time.Duration(effStart.Nanosecond())

	day := daysFromCivil(y, m, d)
	var buf [4]ival
	var spans []ival
	for found, idle := 0, 0; found < n; {
		day++
		spans = c.intervalsOn(buf[:0], day)
		if len(spans) > 0 {
			found++
			idle = 0
			continue
		}
		if idle++; idle > maxClosedDays {
			return time.Time{}
		}
	}

	at := wallInstant(loc, day, tod)
	as := at.Unix()
	if as < spans[0].lo {
		return time.Unix(spans[0].lo, 0).In(loc) // before the first opening
	}
	lastClose := spans[0].hi
	for _, s := range spans {
		if as < s.lo {
			break
		}
		if as < s.hi {
			return at // inside a window
		}
		lastClose = s.hi
	}
	return time.Unix(lastClose, 0).In(loc)
}

// Add is effStart plus sp: business days by AddBusinessDays, business time by
// AddBusiness.
func (c *Calendar) Add(effStart time.Time, sp Span) time.Time {
	if sp.Days > 0 {
		return c.AddBusinessDays(effStart, sp.Days)
	}
	return c.AddBusiness(effStart, sp.Dur)
}

// Compute derives a ticket's deadlines from the instant the mail server
// received it (IMAP INTERNALDATE), as SPEC §3a defines them: the clock starts
// at the next opening at or after received, each target is added to that
// effective start, and each warning falls when warnAt (a share, e.g. 0.8) of
// the business time between the effective start and its deadline has
// elapsed, truncated to whole seconds. A nil span gives no deadline and no
// warning; warnAt outside (0, 1] gives no warnings. All instants are in the
// calendar's zone.
func Compute(c *Calendar, received time.Time, t Target, warnAt float64) Deadlines {
	loc := c.loc()
	dl := Deadlines{Received: received.In(loc)}
	dl.EffectiveStart = c.NextOpening(dl.Received)
	if dl.EffectiveStart.IsZero() {
		return dl // the calendar never opens: nothing can be promised
	}
	dl.ResponseDue, dl.ResponseWarn = c.deadline(dl.EffectiveStart, t.Response, warnAt)
	dl.ResolutionDue, dl.ResolutionWarn = c.deadline(dl.EffectiveStart, t.Resolution, warnAt)
	return dl
}

func (c *Calendar) deadline(eff time.Time, sp *Span, warnAt float64) (due, warn time.Time) {
	if sp == nil || sp.IsZero() {
		return time.Time{}, time.Time{}
	}
	due = c.Add(eff, *sp)
	if due.IsZero() || !(warnAt > 0 && warnAt <= 1) {
		return due, time.Time{}
	}
	return due, c.AddBusiness(eff, WarnShare(c.BusinessBetween(eff, due), warnAt))
}

// WarnShare is the share warnAt of the business time total, truncated to
// whole seconds (0.8 of 1h is 48m).
func WarnShare(total time.Duration, warnAt float64) time.Duration {
	d := time.Duration(math.Round(warnAt * float64(total)))
	return d.Truncate(time.Second)
}
