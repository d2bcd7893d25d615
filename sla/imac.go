package sla

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"
)

// IMACHorizonMonths bounds IMAC scheduling: candidates are service days in
// the notice end's month and the IMACHorizonMonths months after it.
const IMACHorizonMonths = 24

// ErrNoIMACSlot is returned (wrapped) when no service day within the horizon
// has quota and capacity left.
var ErrNoIMACSlot = errors.New("no IMAC slot")

// Validate checks an IMAC plan: service days given and valid, a valid notice
// (or none), quotas not negative and a known over-quota policy ("" means
// next_month). All problems are reported.
func (p IMACPlan) Validate() error {
	var errs []error
	if len(p.ServiceDays) == 0 {
		errs = append(errs, errors.New("no service days"))
	}
	for i, d := range p.ServiceDays {
		if d < time.Sunday || d > time.Saturday {
			errs = append(errs, fmt.Errorf("service day %d: no such weekday", int(d)))
		} else if slices.Contains(p.ServiceDays[:i], d) {
			errs = append(errs, fmt.Errorf("service day %s listed twice", d))
		}
	}
	if !p.Notice.IsZero() {
		if err := p.Notice.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("notice: %w", err))
		}
	}
	if p.MonthlyQuota < 0 {
		errs = append(errs, errors.New("monthly quota is negative"))
	}
	if p.PerVisit < 0 {
		errs = append(errs, errors.New("per-visit capacity is negative"))
	}
	switch p.OverQuota {
	case "", OverQuotaNextMonth, OverQuotaBillable:
	default:
		errs = append(errs, fmt.Errorf("over-quota policy %q: want %s or %s", p.OverQuota, OverQuotaNextMonth, OverQuotaBillable))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("imac plan: %w", err)
	}
	return nil
}

// NoticeEnd is where an IMAC's notice period starts and ends: the effective
// start (the next opening at or after received) and that plus the plan's
// notice, by the rules of Add. A zero notice ends at the effective start.
func NoticeEnd(c *Calendar, received time.Time, p IMACPlan) (effStart, noticeEnd time.Time, err error) {
	effStart = c.NextOpening(received)
	if effStart.IsZero() {
		return time.Time{}, time.Time{}, fmt.Errorf("calendar %q: never opens after %s", c.Name, received.Format(time.RFC3339))
	}
	noticeEnd = effStart
	if !p.Notice.IsZero() {
		noticeEnd = c.Add(effStart, p.Notice)
		if noticeEnd.IsZero() {
			return time.Time{}, time.Time{}, fmt.Errorf("calendar %q: notice %s never ends", c.Name, p.Notice)
		}
	}
	return effStart, noticeEnd, nil
}

// ServiceDays yields, in order, the dates that can take an IMAC whose notice
// ends at noticeEnd: their weekday is one of days, they are business days,
// and their first opening is at or after noticeEnd. The sequence ends after
// three years without such a date.
func (c *Calendar) ServiceDays(noticeEnd time.Time, days []time.Weekday) iter.Seq[Date] {
	return func(yield func(Date) bool) {
		if len(days) == 0 {
			return
		}
		var want [7]bool
		for _, d := range days {
			if d >= time.Sunday && d <= time.Saturday {
				want[d] = true
			}
		}
		ne := noticeEnd.Unix()
		if noticeEnd.Nanosecond() > 0 {
			ne++ // openings are whole seconds: at or after noticeEnd
		}
		// Start a day early: a date's first opening can precede its wall date
		// only in zones whose clocks fall back across midnight.
		day := DateOf(noticeEnd.In(c.loc())).days() - 1
		var buf [4]ival
		for idle := 0; idle <= maxClosedDays; day++ {
			idle++
			if !want[weekdayOf(day)] {
				continue
			}
			spans := c.intervalsOn(buf[:0], day)
			if len(spans) == 0 || spans[0].lo < ne {
				continue
			}
			idle = 0
			if !yield(civilFromDays(day)) {
				return
			}
		}
	}
}

// ServiceDayCandidates is the first n dates of ServiceDays.
func (c *Calendar) ServiceDayCandidates(noticeEnd time.Time, days []time.Weekday, n int) []Date {
	var out []Date
	if n <= 0 {
		return out
	}
	for d := range c.ServiceDays(noticeEnd, days) {
		out = append(out, d)
		if len(out) == n {
			break
		}
	}
	return out
}

// IMACCandidates is every date of ServiceDays within the scheduling horizon:
// noticeEnd's month (in the calendar's zone) and the IMACHorizonMonths months
// after it. The Redis store can pass this list to an atomic reservation.
func (c *Calendar) IMACCandidates(noticeEnd time.Time, days []time.Weekday) []Date {
	return slices.Collect(c.imacCandidates(noticeEnd, days))
}

func (c *Calendar) imacCandidates(noticeEnd time.Time, days []time.Weekday) iter.Seq[Date] {
	first := DateOf(noticeEnd.In(c.loc()))
	last := Date{Year: first.Year, Month: first.Month + IMACHorizonMonths + 1, Day: 0}.normal()
	return func(yield func(Date) bool) {
		for d := range c.ServiceDays(noticeEnd, days) {
			if d.After(last) || !yield(d) {
				return
			}
		}
	}
}

// ChooseIMAC picks the date for an IMAC among candidates (in order) given the
// IMACs already scheduled. It returns a slot with Date, QuotaUsed, Quota,
// Billable and Deferred set:
//   - the first candidate whose month is under quota and whose day is under
//     the per-visit capacity;
//   - a candidate whose month is full is skipped under next_month (the
//     default), and the slot is then Deferred;
//   - under billable the first candidate with capacity is taken even when its
//     month is full; the slot is then Billable and QuotaUsed exceeds Quota
//     (11 of 10).
//
// It fails, wrapping ErrNoIMACSlot, when no candidate fits.
func ChooseIMAC(candidates []Date, p IMACPlan, u Usage) (IMACSlot, error) {
	return chooseIMAC(slices.Values(candidates), p, u)
}

func chooseIMAC(candidates iter.Seq[Date], p IMACPlan, u Usage) (IMACSlot, error) {
	billable := false
	switch p.OverQuota {
	case "", OverQuotaNextMonth:
	case OverQuotaBillable:
		billable = true
	default:
		return IMACSlot{}, fmt.Errorf("choose imac date: unknown over-quota policy %q", p.OverQuota)
	}
	if u == nil {
		u = NoUsage{}
	}
	type month struct {
		y int
		m time.Month
	}
	used := make(map[month]int) // Usage may be a network round trip
	deferred := false
	var first, last Date
	seen := 0
	for d := range candidates {
		if seen == 0 {
			first = d
		}
		last = d
		seen++
		if p.PerVisit > 0 && u.DayUsed(d) >= p.PerVisit {
			continue
		}
		k := month{d.Year, d.Month}
		inMonth, ok := used[k]
		if !ok {
			inMonth = u.MonthUsed(d.Year, d.Month)
			used[k] = inMonth
		}
		full := p.MonthlyQuota > 0 && inMonth >= p.MonthlyQuota
		if full && !billable {
			deferred = true
			continue
		}
		return IMACSlot{
			Date:      d,
			QuotaUsed: inMonth + 1,
			Quota:     p.MonthlyQuota,
			Billable:  full,
			Deferred:  deferred,
		}, nil
	}
	if seen == 0 {
		return IMACSlot{}, fmt.Errorf("choose imac date: %w: no service day", ErrNoIMACSlot)
	}
	return IMACSlot{}, fmt.Errorf("choose imac date: %w: quota or capacity exhausted from %s to %s",
		ErrNoIMACSlot, first, last)
}

// ScheduleIMAC schedules an IMAC received at received under plan p (SPEC
// §3a, §2.6): the first service day whose first opening is at or after the
// notice end, within the monthly quota and per-visit capacity, with the
// plan's over-quota policy (see ChooseIMAC). The search covers
// IMACHorizonMonths months.
func ScheduleIMAC(c *Calendar, received time.Time, p IMACPlan, u Usage) (IMACSlot, error) {
	effStart, noticeEnd, err := NoticeEnd(c, received, p)
	if err != nil {
		return IMACSlot{}, fmt.Errorf("schedule imac: %w", err)
	}
	slot, err := chooseIMAC(c.imacCandidates(noticeEnd, p.ServiceDays), p, u)
	if err != nil {
		return IMACSlot{}, fmt.Errorf("schedule imac: %w", err)
	}
	slot.Received = received.In(c.loc())
	slot.EffectiveStart = effStart
	slot.NoticeEnd = noticeEnd
	return slot, nil
}
