package sla

import (
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The properties below check the calendar arithmetic against a brute-force
// reference that knows nothing of zone segments or intervals: it steps real
// minutes and asks the time package for each minute's wall clock.

var propZones = []string{"Asia/Jerusalem", "Europe/London", "America/New_York", "UTC"}

// dstDays are the 2026 transition dates of propZones.
var dstDays = []Date{
	{2026, time.March, 8}, {2026, time.March, 27}, {2026, time.March, 29},
	{2026, time.October, 25}, {2026, time.November, 1},
}

type gen struct {
	locs map[string]*time.Location
}

func newGen(t *testing.T) gen {
	g := gen{locs: map[string]*time.Location{}}
	for _, z := range propZones {
		g.locs[z] = mustLoc(t, z)
	}
	return g
}

// hours draws up to three windows, often with bounds near the DST hours.
func (gen) hours(t *rapid.T, label string) Hours {
	n := rapid.IntRange(0, 3).Draw(t, label+"-windows")
	if n == 0 {
		return nil
	}
	bound := rapid.OneOf(
		rapid.IntRange(0, minutesPerDay),
		rapid.SampledFrom([]int{0, 60, 90, 120, 150, 180, 480, 720, 780, 1020, 1440}),
	)
	b := rapid.SliceOfN(bound, 2*n, 2*n).Draw(t, label+"-bounds")
	slices.Sort(b)
	var h Hours
	for i := 0; i+1 < len(b); i += 2 {
		if b[i] < b[i+1] {
			h = append(h, Window{Open: b[i], Close: b[i+1]})
		}
	}
	return h
}

// date draws a 2026 date, often within two days of a DST transition.
func (gen) date(t *rapid.T, label string) Date {
	if rapid.Bool().Draw(t, label+"-near-dst") {
		d := rapid.SampledFrom(dstDays).Draw(t, label+"-dst")
		return d.AddDays(rapid.IntRange(-2, 2).Draw(t, label+"-offset"))
	}
	return Date{2026, time.January, 1}.AddDays(rapid.IntRange(0, 364).Draw(t, label+"-day"))
}

// calendar draws a random calendar that is open at least 4 hours a week, so
// that the brute-force reference stays fast.
func (g gen) calendar(t *rapid.T) *Calendar {
	zone := rapid.SampledFrom(propZones).Draw(t, "zone")
	c := &Calendar{Name: "random", Loc: g.locs[zone], Holidays: map[Date]Hours{}}
	open := 0
	for d := time.Sunday; d <= time.Saturday; d++ {
		c.Week[d] = g.hours(t, d.String())
		for _, w := range c.Week[d] {
			open += w.Close - w.Open
		}
	}
	if open < 4*60 {
		c.Week[time.Wednesday] = Hours{{Open: 9 * 60, Close: 17 * 60}}
	}
	for i, n := 0, rapid.IntRange(0, 4).Draw(t, "holidays"); i < n; i++ {
		c.Holidays[g.date(t, "holiday")] = g.hours(t, "holiday")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("generated an invalid calendar: %v", err)
	}
	return c
}

// instant draws a minute-aligned instant of a 2026 date in c's zone.
func (g gen) instant(t *rapid.T, c *Calendar, label string) time.Time {
	d := g.date(t, label)
	midnight := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, c.Loc)
	return midnight.Add(time.Duration(rapid.IntRange(0, 24*60-1).Draw(t, label+"-minute")) * time.Minute)
}

// refBudget bounds every reference walk (in minutes).
const refBudget = 120 * 24 * 60

// refOpen: is the real minute starting at u open? Its wall clock, on its own
// date, lies in one of that date's windows.
func refOpen(c *Calendar, u time.Time) bool {
	w := u.In(c.Loc)
	y, m, d := w.Date()
	hh, mm, _ := w.Clock()
	hours, ok := c.Holidays[Date{y, m, d}]
	if !ok {
		hours = c.Week[w.Weekday()]
	}
	min := hh*60 + mm
	for _, win := range hours {
		if min >= win.Open && min < win.Close {
			return true
		}
	}
	return false
}

func refAdd(t *rapid.T, c *Calendar, from time.Time, minutes int) time.Time {
	u := from
	for n, steps := 0, 0; n < minutes; steps++ {
		if steps > refBudget {
			t.Fatalf("reference: %d business minutes from %v not reached", minutes, from)
		}
		if refOpen(c, u) {
			n++
		}
		u = u.Add(time.Minute)
	}
	return u
}

func refBetween(c *Calendar, a, b time.Time) time.Duration {
	var n time.Duration
	for u := a; u.Before(b); u = u.Add(time.Minute) {
		if refOpen(c, u) {
			n += time.Minute
		}
	}
	return n
}

func refNextOpening(t *rapid.T, c *Calendar, from time.Time) time.Time {
	u := from
	for steps := 0; !refOpen(c, u); steps++ {
		if steps > refBudget {
			t.Fatalf("reference: no opening after %v", from)
		}
		u = u.Add(time.Minute)
	}
	return u
}

// refDayMinutes lists the real minutes whose wall date is d, in real order.
func refDayMinutes(c *Calendar, d Date) []time.Time {
	start := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, c.Loc).Add(-3 * time.Hour)
	var out []time.Time
	for u := start; u.Before(start.Add(30 * time.Hour)); u = u.Add(time.Minute) {
		if DateOf(u.In(c.Loc)) == d {
			out = append(out, u)
		}
	}
	return out
}

// refAddDays is SPEC §3a's d rule, minute by minute.
func refAddDays(t *rapid.T, c *Calendar, eff time.Time, n int) time.Time {
	e := eff.In(c.Loc)
	wall := e.Hour()*60 + e.Minute()
	day := DateOf(e)
	var mins []time.Time
	for found, steps := 0, 0; found < n; steps++ {
		if steps > 120 {
			t.Fatalf("reference: %d business days after %v not found", n, eff)
		}
		day = day.AddDays(1)
		mins = refDayMinutes(c, day)
		if slices.ContainsFunc(mins, func(u time.Time) bool { return refOpen(c, u) }) {
			found++
		}
	}
	at := len(mins) // the first minute whose wall clock reads wall or later
	for i, u := range mins {
		l := u.In(c.Loc)
		if l.Hour()*60+l.Minute() >= wall {
			at = i
			break
		}
	}
	if at < len(mins) && refOpen(c, mins[at]) {
		return mins[at]
	}
	last := -1
	for i := 0; i < at; i++ {
		if refOpen(c, mins[i]) {
			last = i
		}
	}
	if last >= 0 {
		return mins[last].Add(time.Minute) // the last close before
	}
	for _, u := range mins {
		if refOpen(c, u) {
			return u // the first opening
		}
	}
	panic("unreachable: a business day without an open minute")
}

func TestPropertyAddBusinessMatchesReference(t *testing.T) {
	g := newGen(t)
	rapid.Check(t, func(t *rapid.T) {
		c := g.calendar(t)
		from := g.instant(t, c, "from")
		minutes := rapid.IntRange(1, 8*60).Draw(t, "minutes")
		got := c.AddBusiness(from, time.Duration(minutes)*time.Minute)
		want := refAdd(t, c, from, minutes)
		if !got.Equal(want) {
			t.Fatalf("AddBusiness(%s, %dm) = %s, reference %s", fmtT(from), minutes, fmtT(got), fmtT(want))
		}
		// Never strictly inside closed time: open, or just closed.
		if !refOpen(c, got) && !refOpen(c, got.Add(-time.Minute)) {
			t.Fatalf("AddBusiness result %s lies in closed time", fmtT(got))
		}
	})
}

func TestPropertyBusinessBetweenMatchesReference(t *testing.T) {
	g := newGen(t)
	rapid.Check(t, func(t *rapid.T) {
		c := g.calendar(t)
		a := g.instant(t, c, "a")
		b := a.Add(time.Duration(rapid.IntRange(-60, 4*24*60).Draw(t, "minutes")) * time.Minute)
		if got, want := c.BusinessBetween(a, b), refBetween(c, a, b); got != want {
			t.Fatalf("BusinessBetween(%s, %s) = %v, reference %v", fmtT(a), fmtT(b), got, want)
		}
	})
}

func TestPropertyOpeningMatchesReference(t *testing.T) {
	g := newGen(t)
	rapid.Check(t, func(t *rapid.T) {
		c := g.calendar(t)
		u := g.instant(t, c, "t")
		if got, want := c.IsOpen(u), refOpen(c, u); got != want {
			t.Fatalf("IsOpen(%s) = %v, reference %v", fmtT(u), got, want)
		}
		if got, want := c.NextOpening(u), refNextOpening(t, c, u); !got.Equal(want) {
			t.Fatalf("NextOpening(%s) = %s, reference %s", fmtT(u), fmtT(got), fmtT(want))
		}
		d := DateOf(u.In(c.Loc))
		mins := refDayMinutes(c, d)
		if got, want := c.IsBusinessDay(d), slices.ContainsFunc(mins, func(m time.Time) bool { return refOpen(c, m) }); got != want {
			t.Fatalf("IsBusinessDay(%s) = %v, reference %v", d, got, want)
		}
		var total time.Duration
		for _, iv := range c.Intervals(d) {
			total += iv.Duration()
		}
		if want := refBetween(c, mins[0], mins[len(mins)-1].Add(time.Minute)); total != want {
			t.Fatalf("Intervals(%s) total %v, reference %v", d, total, want)
		}
	})
}

func TestPropertyAddBusinessDaysMatchesReference(t *testing.T) {
	g := newGen(t)
	rapid.Check(t, func(t *rapid.T) {
		c := g.calendar(t)
		eff := g.instant(t, c, "eff")
		n := rapid.IntRange(1, 5).Draw(t, "days")
		got := c.AddBusinessDays(eff, n)
		if want := refAddDays(t, c, eff, n); !got.Equal(want) {
			t.Fatalf("AddBusinessDays(%s, %d) = %s, reference %s", fmtT(eff), n, fmtT(got), fmtT(want))
		}
		if !refOpen(c, got) && !refOpen(c, got.Add(-time.Minute)) {
			t.Fatalf("AddBusinessDays result %s lies in closed time", fmtT(got))
		}
	})
}

// With arbitrary seconds and nanoseconds: AddBusiness and BusinessBetween
// invert each other, additions compose, and results are monotone.
func TestPropertyRoundTripAndMonotone(t *testing.T) {
	g := newGen(t)
	rapid.Check(t, func(t *rapid.T) {
		c := g.calendar(t)
		jitter := func(label string) time.Duration {
			return time.Duration(rapid.Int64Range(0, int64(time.Minute)-1).Draw(t, label))
		}
		from := g.instant(t, c, "from").Add(jitter("from-jitter"))
		d1 := time.Duration(rapid.Int64Range(1, int64(40*time.Hour)).Draw(t, "d1"))
		d2 := time.Duration(rapid.Int64Range(1, int64(40*time.Hour)).Draw(t, "d2"))

		r1 := c.AddBusiness(from, d1)
		if back := c.BusinessBetween(from, r1); back != d1 {
			t.Fatalf("BusinessBetween(from, AddBusiness(from, %v)) = %v", d1, back)
		}
		if !c.IsOpen(r1) && !c.IsOpen(r1.Add(-time.Nanosecond)) {
			t.Fatalf("AddBusiness result %s lies in closed time", fmtT(r1))
		}
		if r12, r := c.AddBusiness(r1, d2), c.AddBusiness(from, d1+d2); !r12.Equal(r) {
			t.Fatalf("AddBusiness(AddBusiness(from, %v), %v) = %s, AddBusiness(from, sum) = %s", d1, d2, fmtT(r12), fmtT(r))
		}
		if lo, hi := min(d1, d2), max(d1, d2); c.AddBusiness(from, lo).After(c.AddBusiness(from, hi)) {
			t.Fatalf("AddBusiness not monotone in the duration (%v, %v)", lo, hi)
		}
		later := from.Add(time.Duration(rapid.Int64Range(0, int64(72*time.Hour)).Draw(t, "later")))
		if c.AddBusiness(from, d1).After(c.AddBusiness(later, d1)) {
			t.Fatalf("AddBusiness not monotone in the start (%s, %s)", fmtT(from), fmtT(later))
		}
		if c.NextOpening(from).After(c.NextOpening(later)) {
			t.Fatalf("NextOpening not monotone (%s, %s)", fmtT(from), fmtT(later))
		}
		if back := c.AddBusiness(from, c.BusinessBetween(from, later)); back.After(later) {
			t.Fatalf("AddBusiness(from, BusinessBetween(from, later)) = %s after later %s", fmtT(back), fmtT(later))
		}
	})
}

func TestPropertyCompute(t *testing.T) {
	g := newGen(t)
	rapid.Check(t, func(t *rapid.T) {
		c := g.calendar(t)
		received := g.instant(t, c, "received").Add(time.Duration(rapid.IntRange(0, 59).Draw(t, "second")) * time.Second)
		resp := Span{Dur: time.Duration(rapid.IntRange(1, 600).Draw(t, "response")) * time.Minute}
		res := Span{Days: rapid.IntRange(1, 5).Draw(t, "resolution")}
		warnAt := rapid.Float64Range(0.05, 1).Draw(t, "warn-at")
		dl := Compute(c, received, Target{Response: &resp, Resolution: &res}, warnAt)
		if dl.EffectiveStart.Before(received) || !c.IsOpen(dl.EffectiveStart) {
			t.Fatalf("effective start %s: before received or closed", fmtT(dl.EffectiveStart))
		}
		if c.BusinessBetween(received, dl.EffectiveStart) != 0 {
			t.Fatalf("business time passes before the effective start %s", fmtT(dl.EffectiveStart))
		}
		for _, p := range []struct {
			name      string
			due, warn time.Time
		}{{"response", dl.ResponseDue, dl.ResponseWarn}, {"resolution", dl.ResolutionDue, dl.ResolutionWarn}} {
			if p.warn.After(p.due) || p.warn.Before(dl.EffectiveStart) {
				t.Fatalf("%s warning %s outside [%s, %s]", p.name, fmtT(p.warn), fmtT(dl.EffectiveStart), fmtT(p.due))
			}
			total := c.BusinessBetween(dl.EffectiveStart, p.due)
			if got, want := c.BusinessBetween(dl.EffectiveStart, p.warn), WarnShare(total, warnAt); got != want {
				t.Fatalf("%s warning after %v of business time, want %v", p.name, got, want)
			}
		}
		if got := c.BusinessBetween(dl.EffectiveStart, dl.ResponseDue); got != resp.Dur {
			t.Fatalf("response due after %v of business time, want %v", got, resp.Dur)
		}
	})
}

func TestPropertyServiceDays(t *testing.T) {
	g := newGen(t)
	rapid.Check(t, func(t *rapid.T) {
		c := g.calendar(t)
		notice := g.instant(t, c, "notice")
		days := rapid.SliceOfNDistinct(rapid.IntRange(0, 6), 1, 3, rapid.ID).Draw(t, "service-days")
		var wd []time.Weekday
		for _, d := range days {
			wd = append(wd, time.Weekday(d))
		}
		// Reference: walk 120 dates and check each against the definition.
		first := DateOf(notice.In(c.Loc))
		horizon := first.AddDays(120)
		var got []Date
		for _, d := range c.ServiceDayCandidates(notice, wd, 3) {
			if d.Before(horizon) {
				got = append(got, d)
			}
		}
		var want []Date
		for d := first; len(want) < 3 && d.Before(horizon); d = d.AddDays(1) {
			if !slices.Contains(wd, d.Weekday()) {
				continue
			}
			for _, u := range refDayMinutes(c, d) {
				if refOpen(c, u) {
					if !u.Before(notice) {
						want = append(want, d)
					}
					break
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ServiceDayCandidates(%s, %v) = %v, reference %v", fmtT(notice), wd, got, want)
		}
	})
}

func TestPropertyCivilDays(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Int64Range(-1_000_000, 1_000_000).Draw(t, "day")
		d := civilFromDays(n)
		y, m, dd := time.Unix(n*secondsPerDay, 0).UTC().Date()
		if d != (Date{y, m, dd}) {
			t.Fatalf("civilFromDays(%d) = %v, time says %d-%d-%d", n, d, y, m, dd)
		}
		if back := d.days(); back != n {
			t.Fatalf("days(%v) = %d, want %d", d, back, n)
		}
		if wd := time.Unix(n*secondsPerDay, 0).UTC().Weekday(); d.Weekday() != wd {
			t.Fatalf("Weekday(%v) = %v, want %v", d, d.Weekday(), wd)
		}
		k := rapid.IntRange(-1000, 1000).Draw(t, "add")
		if got, want := d.AddDays(k), DateOf(time.Date(y, m, dd+k, 12, 0, 0, 0, time.UTC)); got != want {
			t.Fatalf("%v.AddDays(%d) = %v, want %v", d, k, got, want)
		}
	})
}
