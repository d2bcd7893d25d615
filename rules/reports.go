package rules

import (
	"errors"
	"strconv"
	"strings"
)

// Reports is the `reports:` section: the reports the gateway makes on its
// own, without anyone running `gateway report`.
//
//	reports:
//	  qbr:
//	    schedule: quarterly   # quarterly | off (default off)
//	    send: true            # mail it to representative + customer_contacts (default true)
//	    hour: "08:00"         # from this time on the day (default: the calendar's first opening)
//	    dir: reports          # also write qbr-<contract>-<quarter>.html/.csv here (optional)
type Reports struct {
	QBR QBRSchedule
}

// Values of reports.qbr.schedule.
const (
	ScheduleOff       = "off"
	ScheduleQuarterly = "quarterly"
)

// QBRSchedule is `reports.qbr`: the quarterly business review (SPEC §8) of
// every contract, made for the quarter just ended on the first business day
// of the next one in the contract's own calendar.
type QBRSchedule struct {
	// Schedule is ScheduleQuarterly or ScheduleOff (the default: reports are
	// made only by `gateway report qbr`).
	Schedule string
	// Send mails each report to the contract's representative and
	// customer_contacts through the outbox (default true).
	Send bool
	// At is the time of day, in minutes after midnight in the contract
	// calendar's zone, from which the report is made on its day; -1 (the
	// default) is that day's first opening.
	At int
	// Dir, when set, is a directory (relative paths are resolved against the
	// configuration file) where each report is also written, as
	// qbr-<contract>-<quarter>.html and .csv, by the instance that makes it.
	Dir string
	Pos Pos
}

// Quarterly reports whether the reports are made on the quarterly schedule.
func (s QBRSchedule) Quarterly() bool { return s.Schedule == ScheduleQuarterly }

var (
	reportsKeys  = keys("qbr")
	qbrKeys      = keys("schedule", "send", "hour", "dir")
	qbrSchedules = []string{ScheduleQuarterly, ScheduleOff}
)

// reports reads the `reports:` section (m may be absent).
func (l *loader) reports(m *mapNode) Reports {
	r := Reports{QBR: QBRSchedule{Schedule: ScheduleOff, Send: true, At: -1}}
	e := m.get("qbr")
	if e == nil {
		return r
	}
	q := l.mapping(e.path, e.val, e.key, qbrKeys)
	s := &r.QBR
	s.Pos = l.pos(q.n)
	if q.present {
		q.require("schedule")
	}
	s.Schedule = q.choice("schedule", ScheduleOff, qbrSchedules...)
	s.Send = q.boolean("send", true)
	if h := q.get("hour"); h != nil && !isNull(l.resolve(h.val)) {
		if v, ok := l.scalar(h.path, h.val); ok {
			if at, err := ParseTimeOfDay(v); err != nil {
				l.errAt(h.val, h.path, "invalid time %q: %v", v, err)
			} else {
				s.At = at
			}
		}
	}
	if s.Dir = q.nonEmpty("dir", ""); s.Dir != "" {
		s.Dir = l.abs(s.Dir)
	}
	if s.Quarterly() && !s.Send && s.Dir == "" {
		at := q.n
		if e := q.get("send"); e != nil {
			at = e.val
		}
		l.errAt(at, join(q.path, "send"), "false and no dir: the scheduled reports would go nowhere; set send: true, or dir to keep them as files")
	}
	return r
}

// ParseTimeOfDay parses a wall-clock time "HH:MM" (or "H:MM") from 00:00 to
// 23:59 into minutes after midnight.
func ParseTimeOfDay(s string) (int, error) {
	hs, ms, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 || !allDigits(hs) || !allDigits(ms) {
		return 0, errors.New("expected HH:MM, e.g. 08:00")
	}
	h, _ := strconv.Atoi(hs)
	m, _ := strconv.Atoi(ms)
	if h > 23 || m > 59 {
		return 0, errors.New("expected a time from 00:00 to 23:59")
	}
	return h*60 + m, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
