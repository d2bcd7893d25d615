package rules

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/northwind-it/ticketgw/sla"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// weekdayNames are the spellings sla.ParseWeekday accepts, for suggestions.
var weekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat",
	"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

// calendars reads `calendars:`, a mapping of name to calendar. It returns
// the valid calendars and the names of all that were written (so that a
// contract naming a broken calendar is not reported twice).
func (l *loader) calendars(top *mapNode) (map[string]*sla.Calendar, []string) {
	cals := map[string]*sla.Calendar{}
	m := l.section(top, "calendars", keySet{noun: "calendar"})
	var names []string
	for i := range m.entries {
		e := &m.entries[i]
		names = append(names, e.name)
		if !nameRE.MatchString(e.name) {
			l.errAt(e.key, "calendars", "invalid calendar name %q: expected letters, digits, '.', '-' and '_'", e.name)
			continue
		}
		if c := l.calendar(e); c != nil {
			cals[e.name] = c
		}
	}
	return cals, names
}

func (l *loader) calendar(e *entry) *sla.Calendar {
	m := l.mapping(e.path, e.val, e.key, keys("timezone", "week", "holidays"))
	nerr := len(l.errs)
	c := &sla.Calendar{Name: e.name, Holidays: map[sla.Date]sla.Hours{}}
	if m.require("timezone") {
		tz := m.get("timezone")
		if name, ok := l.scalar(tz.path, tz.val); ok {
			c.Loc = l.location(tz, name)
		}
	}
	if w := m.get("week"); w != nil {
		wm := l.mapping(w.path, w.val, w.key, keySet{noun: "weekday"})
		seen := map[time.Weekday]*yaml.Node{}
		for _, d := range wm.entries {
			day, err := sla.ParseWeekday(d.name)
			if err != nil {
				l.errAt(d.key, w.path, "unknown weekday %q%s: expected sun, mon, tue, wed, thu, fri or sat",
					d.name, suggest(d.name, weekdayNames))
				continue
			}
			if first, dup := seen[day]; dup {
				l.errAt(d.key, w.path, "%s is given twice (first at %s)", day, l.pos(first))
				continue
			}
			seen[day] = d.key
			c.Week[day] = l.hours(d.path, d.val)
		}
	} else {
		m.require("week")
	}
	if h := m.get("holidays"); h != nil {
		first := map[sla.Date]*yaml.Node{}
		for i, it := range l.seq(h.path, h.val) {
			path := index(h.path, i)
			var dateNode *yaml.Node
			var hours sla.Hours
			if it.Kind == yaml.MappingNode {
				hm := l.mapping(path, it, it, keys("date", "hours"))
				if !hm.require("date") {
					continue
				}
				dateNode = hm.get("date").val
				path = join(path, "date")
				if he := hm.get("hours"); he != nil {
					hours = l.hours(he.path, he.val)
				}
			} else {
				dateNode = it
			}
			d, ok := l.date(path, dateNode)
			if !ok {
				continue
			}
			if f, dup := first[d]; dup {
				l.errAt(dateNode, path, "holiday %s is listed twice (first at %s)", d, l.pos(f))
				continue
			}
			first[d] = dateNode
			c.Holidays[d] = hours
		}
	}
	if len(l.errs) > nerr {
		return nil
	}
	if w := m.get("week"); w != nil && !slices.ContainsFunc(c.Week[:], func(h sla.Hours) bool { return len(h) > 0 }) {
		l.errAt(l.resolve(w.val), w.path, "every day is closed: expected opening hours on at least one day")
		return nil
	}
	if err := c.Validate(); err != nil {
		// A backstop: the checks above cover what Validate checks.
		prefix := "calendar " + strconv.Quote(e.name) + ": "
		for _, line := range strings.Split(strings.TrimPrefix(err.Error(), prefix), "\n") {
			l.errAt(m.n, e.path, "%s", line)
		}
		return nil
	}
	return c
}

// location loads a time zone. "Local" and "" are refused: a calendar must
// not depend on the host the gateway runs on.
func (l *loader) location(e *entry, name string) *time.Location {
	if name == "" || name == "Local" {
		l.errAt(e.val, e.path, "invalid time zone %q: expected an IANA zone name such as Asia/Jerusalem or UTC", name)
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		l.errAt(e.val, e.path, "unknown time zone %q: expected an IANA zone name such as Asia/Jerusalem or UTC", name)
		return nil
	}
	return loc
}

// hours parses a day's opening hours.
func (l *loader) hours(path string, n *yaml.Node) sla.Hours {
	s, ok := l.scalar(path, n)
	if !ok {
		return nil
	}
	h, err := sla.ParseHours(s)
	if err != nil {
		l.errAt(n, path, "invalid hours %q: %s", s, trimParse(err.Error(), s))
		return nil
	}
	return h
}

// date parses a YYYY-MM-DD date.
func (l *loader) date(path string, n *yaml.Node) (sla.Date, bool) {
	s, ok := l.scalar(path, n)
	if !ok {
		return sla.Date{}, false
	}
	d, err := sla.ParseDate(strings.TrimSpace(s))
	if err != nil {
		l.errAt(n, path, "invalid date %q: %s", s, trimParse(err.Error(), strings.TrimSpace(s)))
		return sla.Date{}, false
	}
	return d, true
}

// span parses an SLA span (30m, 4h, 1h30m, 2d).
func (l *loader) span(path string, n *yaml.Node) (sla.Span, bool) {
	s, ok := l.scalar(path, n)
	if !ok {
		return sla.Span{}, false
	}
	sp, err := sla.ParseSpan(s)
	if err != nil {
		l.errAt(n, path, "invalid duration %q: %s", s, trimParse(err.Error(), s))
		return sla.Span{}, false
	}
	return sp, true
}

// weekday parses a day of the week.
func (l *loader) weekday(path string, n *yaml.Node) (time.Weekday, bool) {
	s, ok := l.scalar(path, n)
	if !ok {
		return 0, false
	}
	d, err := sla.ParseWeekday(s)
	if err != nil {
		l.errAt(n, path, "invalid weekday %q%s: expected sun, mon, tue, wed, thu, fri or sat",
			s, suggest(s, weekdayNames))
		return 0, false
	}
	return d, true
}

// trimParse removes the `parse <what> "<value>": ` prefix the sla parsers
// put on their errors: our messages quote the value once, with the key path.
func trimParse(msg, value string) string {
	for _, what := range []string{"hours", "date", "span", "weekday", "calendar"} {
		for _, p := range []string{
			"parse " + what + " " + strconv.Quote(value) + ": ",
			"parse " + what + ": ",
		} {
			if strings.HasPrefix(msg, p) {
				return msg[len(p):]
			}
		}
	}
	return msg
}
