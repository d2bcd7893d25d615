package sla

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// minutesPerDay is 24:00 in minutes after midnight.
const minutesPerDay = 24 * 60

// ParseHours parses a day's opening hours: comma-separated HH:MM-HH:MM
// windows, e.g. "08:00-12:00,13:00-17:00". 00:00-24:00 is the whole day; a
// window never crosses midnight, must open before it closes and must not
// overlap another. Spaces around the separators are allowed. The result is
// sorted.
func ParseHours(s string) (Hours, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("parse hours: no windows (leave the day out to close it)")
	}
	parts := strings.Split(s, ",")
	h := make(Hours, 0, len(parts))
	for _, part := range parts {
		w, err := parseWindow(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("parse hours %q: %w", s, err)
		}
		h = append(h, w)
	}
	slices.SortFunc(h, func(a, b Window) int { return a.Open - b.Open })
	for i := 1; i < len(h); i++ {
		if h[i].Open < h[i-1].Close {
			return nil, fmt.Errorf("parse hours %q: windows %s and %s overlap", s, h[i-1], h[i])
		}
	}
	return h, nil
}

// parseWindow parses one HH:MM-HH:MM window.
func parseWindow(s string) (Window, error) {
	if s == "" {
		return Window{}, errors.New("empty window (want HH:MM-HH:MM)")
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, fmt.Errorf("window %q: want HH:MM-HH:MM", s)
	}
	open, err := parseClock(strings.TrimSpace(a))
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	closeAt, err := parseClock(strings.TrimSpace(b))
	if err != nil {
		return Window{}, fmt.Errorf("window %q: %w", s, err)
	}
	w := Window{Open: open, Close: closeAt}
	switch {
	case open == minutesPerDay:
		return Window{}, fmt.Errorf("window %s opens at 24:00 (use 00:00 of the next day)", w)
	case closeAt < open:
		return Window{}, fmt.Errorf("window %s closes before it opens (a window never crosses midnight; split it at 24:00)", w)
	case closeAt == open:
		return Window{}, fmt.Errorf("window %s is empty", w)
	}
	return w, nil
}

// parseClock parses H:MM or HH:MM (00:00 to 24:00) into minutes after
// midnight.
func parseClock(s string) (int, error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	h, okH := digits(hs)
	m, okM := digits(ms)
	if !okH || !okM {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	if m > 59 {
		return 0, fmt.Errorf("time %q: minutes out of range", s)
	}
	if h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("time %q: out of range (00:00 to 24:00)", s)
	}
	return h*60 + m, nil
}

// String formats w as HH:MM-HH:MM.
func (w Window) String() string {
	return clock(w.Open) + "-" + clock(w.Close)
}

func clock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// String formats h as ParseHours reads it; closed (empty) hours are "".
func (h Hours) String() string {
	parts := make([]string, len(h))
	for i, w := range h {
		parts[i] = w.String()
	}
	return strings.Join(parts, ",")
}

// Validate checks what ParseHours guarantees: every window within
// 00:00-24:00 and non-empty, windows sorted and not overlapping. It lets
// calendars built in code be checked like parsed ones.
func (h Hours) Validate() error {
	for i, w := range h {
		if w.Open < 0 || w.Close > minutesPerDay || w.Open >= w.Close {
			return fmt.Errorf("window %d (%d-%d minutes): want 0 <= open < close <= 1440", i+1, w.Open, w.Close)
		}
		if i > 0 && w.Open < h[i-1].Close {
			return fmt.Errorf("windows %s and %s overlap or are out of order", h[i-1], w)
		}
	}
	return nil
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday,
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// ParseWeekday parses a day of the week: sun, mon, tue, wed, thu, fri, sat
// or the full English name, in any case.
func ParseWeekday(s string) (time.Weekday, error) {
	if d, ok := weekdays[strings.ToLower(strings.TrimSpace(s))]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("parse weekday %q: want sun, mon, tue, wed, thu, fri or sat", s)
}
