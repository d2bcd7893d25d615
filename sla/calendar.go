package sla

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// How windows meet DST. A window is wall-clock time: an instant is open when
// its wall clock in the calendar's zone, on its own date, lies in one of that
// date's windows. So on a spring-forward day a window that is partly
// nonexistent covers only the real instants that exist (00:00-03:00 in
// Asia/Jerusalem on 2026-03-27 is two real hours), and on a fall-back day a
// window that spans the repeated hour is open during both passes of it
// (00:00-03:00 on 2026-10-25 is four real hours). Business time is the real
// elapsed time spent inside windows; every real minute counts once.

// Interval is a stretch of real time [Start, End) during which a calendar is
// open.
type Interval struct {
	Start, End time.Time
}

// Duration is the real time between Start and End.
func (iv Interval) Duration() time.Duration { return iv.End.Sub(iv.Start) }

// maxClosedDays bounds every forward search: a calendar that stays closed for
// this many days in a row is taken to never open again.
const maxClosedDays = 3 * 366

const (
	secondsPerDay = 86400
	// zoneSlack exceeds the largest difference between two UTC offsets
	// (UTC-12 to UTC+14) plus a margin, so that all instants whose wall clock
	// lies on a given date are within a day and zoneSlack of its UTC midnight.
	zoneSlack = 27 * 3600
)

// Validate checks the calendar: a zone, valid hours on every weekday and
// holiday, and at least one window in the week (a calendar that never opens
// would make every deadline unreachable). All problems are reported.
func (c *Calendar) Validate() error {
	var errs []error
	if c.Loc == nil {
		errs = append(errs, errors.New("no time zone"))
	}
	open := false
	for d, h := range c.Week {
		if err := h.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", time.Weekday(d), err))
		}
		open = open || len(h) > 0
	}
	if !open {
		errs = append(errs, errors.New("the week has no opening window"))
	}
	for d, h := range c.Holidays {
		if d != d.normal() {
			errs = append(errs, fmt.Errorf("holiday %s: no such date", d))
		}
		if err := h.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("holiday %s: %w", d, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("calendar %q: %w", c.Name, err)
	}
	return nil
}

func (c *Calendar) loc() *time.Location { return orUTC(c.Loc) }

// HoursOn is the configured windows of date d: its holiday hours when d is a
// holiday (empty: closed), otherwise its weekday's.
func (c *Calendar) HoursOn(d Date) Hours { return c.hoursOnDay(d.days()) }

func (c *Calendar) hoursOnDay(day int64) Hours {
	if len(c.Holidays) > 0 {
		if h, ok := c.Holidays[civilFromDays(day)]; ok {
			return h
		}
	}
	return c.Week[weekdayOf(day)]
}

// IsBusinessDay reports whether d has any opening: at least one window that
// covers real time (a window that lies wholly in a DST gap does not count).
func (c *Calendar) IsBusinessDay(d Date) bool { return c.isBusinessDay(d.days()) }

func (c *Calendar) isBusinessDay(day int64) bool {
	if len(c.hoursOnDay(day)) == 0 {
		return false
	}
	var buf [4]ival
	return len(c.intervalsOn(buf[:0], day)) > 0
}

// Intervals is the real open time of date d, in order. Adjacent pieces are
// merged; on a fall-back day one window may yield two intervals.
func (c *Calendar) Intervals(d Date) []Interval {
	loc := c.loc()
	spans := c.intervalsOn(nil, d.days())
	out := make([]Interval, len(spans))
	for i, s := range spans {
		out[i] = Interval{Start: time.Unix(s.lo, 0).In(loc), End: time.Unix(s.hi, 0).In(loc)}
	}
	return out
}

// FirstOpening is the first instant at which d opens; ok is false when d is
// not a business day.
func (c *Calendar) FirstOpening(d Date) (t time.Time, ok bool) {
	var buf [4]ival
	spans := c.intervalsOn(buf[:0], d.days())
	if len(spans) == 0 {
		return time.Time{}, false
	}
	return time.Unix(spans[0].lo, 0).In(c.loc()), true
}

// IsOpen reports whether t lies inside an opening window (windows are
// half-open: open at the opening instant, closed at the closing one).
func (c *Calendar) IsOpen(t time.Time) bool {
	ts := t.Unix()
	w := c.walk(ts)
	for {
		iv, ok := w.next(ts + 1)
		if !ok {
			return false
		}
		if ts < iv.hi {
			return ts >= iv.lo
		}
	}
}

// NextOpening is t itself when the calendar is open at t, otherwise the next
// instant at which it opens, in the calendar's zone. It is the zero Time when
// the calendar stays closed for three years from t.
func (c *Calendar) NextOpening(t time.Time) time.Time {
	t = t.In(c.loc())
	ts := t.Unix()
	w := c.walk(ts)
	for {
		iv, ok := w.next(math.MaxInt64)
		if !ok {
			return time.Time{}
		}
		if ts < iv.hi {
			if ts >= iv.lo {
				return t
			}
			return time.Unix(iv.lo, 0).In(c.loc())
		}
	}
}

// AddBusiness is the earliest instant u at or after t such that the business
// time between t and u is d. For d > 0 it lies inside a window or exactly at
// a closing instant (adding 1h at 16:00 with a 17:00 close gives 17:00, not
// the next opening). For d <= 0 it is t. It is the zero Time when the
// calendar stays closed for three years.
func (c *Calendar) AddBusiness(t time.Time, d time.Duration) time.Time {
	loc := c.loc()
	t = t.In(loc)
	if d <= 0 {
		return t
	}
	ts := t.Unix()
	w := c.walk(ts)
	left := d
	for {
		iv, ok := w.next(math.MaxInt64)
		if !ok {
			return time.Time{}
		}
		if iv.hi <= ts {
			continue
		}
		start := t
		if iv.lo > ts {
			start = time.Unix(iv.lo, 0).In(loc)
		}
		avail := time.Unix(iv.hi, 0).Sub(start)
		if avail >= left {
			return start.Add(left)
		}
		left -= avail
	}
}

// BusinessBetween is the business time in [a, b): the real time inside
// opening windows. It is 0 when b is not after a.
func (c *Calendar) BusinessBetween(a, b time.Time) time.Duration {
	if !a.Before(b) {
		return 0
	}
	as, bs := a.Unix(), b.Unix()
	w := c.walk(as)
	var total time.Duration
	for {
		iv, ok := w.next(bs + 1)
		if !ok {
			return total
		}
		lo, hi := time.Unix(iv.lo, 0), time.Unix(iv.hi, 0)
		if lo.Before(a) {
			lo = a
		}
		if hi.After(b) {
			hi = b
		}
		if hi.After(lo) {
			total += hi.Sub(lo)
		}
	}
}

// ival is an open interval [lo, hi) in Unix seconds.
type ival struct{ lo, hi int64 }

// intervalsOn appends the real open time of day number day to buf, merged
// and in order.
func (c *Calendar) intervalsOn(buf []ival, day int64) []ival {
	hours := c.hoursOnDay(day)
	if len(hours) == 0 {
		return buf
	}
	loc := c.loc()
	midnight := day * secondsPerDay // the date's midnight read as UTC
	// Fast path: one UTC offset holds from well before to well after the
	// date, so its wall clock maps linearly onto real time.
	seg := segmentAt(loc, midnight+12*3600)
	if seg.start <= midnight-zoneSlack && seg.end >= midnight+secondsPerDay+zoneSlack {
		base := midnight - seg.off
		for _, win := range hours {
			buf = appendMerged(buf, ival{base + int64(win.Open)*60, base + int64(win.Close)*60})
		}
		return buf
	}
	w := c.walk(midnight - zoneSlack)
	for {
		iv, ok := w.next(midnight + secondsPerDay + zoneSlack)
		if !ok {
			return buf
		}
		if iv.day == day {
			buf = appendMerged(buf, ival{iv.lo, iv.hi})
		}
	}
}

func appendMerged(buf []ival, s ival) []ival {
	if n := len(buf); n > 0 && buf[n-1].hi == s.lo {
		buf[n-1].hi = s.hi
		return buf
	}
	return append(buf, s)
}

// segment is a stretch of real time with one UTC offset, in Unix seconds;
// start and end are math.MinInt64 and math.MaxInt64 when unbounded.
type segment struct {
	start, end int64
	off        int64 // seconds east of UTC
}

func segmentAt(loc *time.Location, sec int64) segment {
	t := time.Unix(sec, 0).In(loc)
	_, off := t.Zone()
	s, e := t.ZoneBounds()
	seg := segment{start: math.MinInt64, end: math.MaxInt64, off: int64(off)}
	if !s.IsZero() {
		seg.start = s.Unix()
	}
	if !e.IsZero() {
		seg.end = e.Unix()
	}
	return seg
}

// walker yields a calendar's open intervals in real-time order. It walks
// zone segments (stretches of constant UTC offset) and, within each, the
// civil dates whose wall clock the segment shows, so that every real instant
// is judged by its own wall clock exactly once.
type walker struct {
	c     *Calendar
	loc   *time.Location
	seg   segment
	day   int64 // day number being produced
	hours Hours // its windows
	wi    int   // next window of hours
	idle  int   // days in a row that produced nothing
}

// dayIv is an open interval and the day number whose window produced it.
type dayIv struct {
	lo, hi int64
	day    int64
}

// walk starts a walker at Unix second sec: it yields every interval that
// ends after sec (and possibly some that end earlier).
func (c *Calendar) walk(sec int64) walker {
	w := walker{c: c, loc: c.loc()}
	w.seg = segmentAt(w.loc, sec)
	w.day = floorDiv(sec+w.seg.off, secondsPerDay)
	w.hours = c.hoursOnDay(w.day)
	return w
}

// next returns the next open interval. ok is false once no further interval
// starts before limit, or after maxClosedDays days without any opening.
func (w *walker) next(limit int64) (iv dayIv, ok bool) {
	for {
		base := w.day*secondsPerDay - w.seg.off // where this segment shows midnight of day
		if base >= w.seg.end {
			w.seg = segmentAt(w.loc, w.seg.end)
			w.day = floorDiv(w.seg.start+w.seg.off, secondsPerDay)
			w.hours, w.wi = w.c.hoursOnDay(w.day), 0
			continue
		}
		if max(base, w.seg.start) >= limit {
			return dayIv{}, false
		}
		for w.wi < len(w.hours) {
			win := w.hours[w.wi]
			w.wi++
			lo := max(base+int64(win.Open)*60, w.seg.start)
			hi := min(base+int64(win.Close)*60, w.seg.end)
			if lo < hi {
				if lo >= limit {
					return dayIv{}, false
				}
				w.idle = 0
				return dayIv{lo: lo, hi: hi, day: w.day}, true
			}
		}
		w.idle++
		if w.idle > maxClosedDays {
			return dayIv{}, false
		}
		w.day++
		w.hours, w.wi = w.c.hoursOnDay(w.day), 0
	}
}

// wallInstant is the earliest instant whose wall clock in loc reads at least
// day number day at time of day tod: the instant itself when that wall time
// exists (its first occurrence when a fall-back repeats it), and the end of
// the gap when a spring-forward skips it.
func wallInstant(loc *time.Location, day int64, tod time.Duration) time.Time {
	xs := day*secondsPerDay + int64(tod/time.Second)
	xn := tod % time.Second
	sec := xs - zoneSlack
	for {
		seg := segmentAt(loc, sec)
		if c := xs - seg.off; c >= seg.start && c < seg.end {
			return time.Unix(c, int64(xn)).In(loc)
		}
		if seg.start > xs-seg.off && seg.start < seg.end {
			return time.Unix(seg.start, 0).In(loc) // the wall clock jumped over X
		}
		if seg.end == math.MaxInt64 {
			// Unreachable for real zones; fall back to the nominal offset.
			return time.Unix(xs-seg.off, int64(xn)).In(loc)
		}
		sec = seg.end
	}
}
