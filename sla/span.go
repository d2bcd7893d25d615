package sla

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Upper bounds of a Span: anything longer is a typo, not a contract term.
const (
	MaxSpanDays = 1000
	MaxSpanDur  = 10000 * time.Hour
)

// ParseSpan parses an SLA span: business time as hours and/or minutes ("30m",
// "4h", "1h30m", "90m") or business days ("2d"). Days cannot be mixed with
// hours or minutes, units are whole numbers, and the span must be positive.
func ParseSpan(s string) (Span, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	if in == "" {
		return Span{}, fmt.Errorf("parse span %q: empty (want e.g. 30m, 4h, 1h30m or 2d)", s)
	}
	var (
		sp     Span
		units  string // units seen, in order
		rest   = in
		anyNum bool
	)
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			if rest[0] == '-' || rest[0] == '+' {
				return Span{}, fmt.Errorf("parse span %q: must be a positive number of m, h or d", s)
			}
			r, _ := utf8.DecodeRuneInString(rest)
			return Span{}, fmt.Errorf("parse span %q: want a number before %q", s, r)
		}
		if i > 6 {
			return Span{}, fmt.Errorf("parse span %q: number %s too large", s, rest[:i])
		}
		n, _ := digits(rest[:i])
		if i == len(rest) {
			return Span{}, fmt.Errorf("parse span %q: %s has no unit (m, h or d)", s, rest)
		}
		unit := rest[i]
		if unit >= utf8.RuneSelf {
			r, _ := utf8.DecodeRuneInString(rest[i:])
			return Span{}, fmt.Errorf("parse span %q: unknown unit %q (use m, h or d)", s, r)
		}
		rest = rest[i+1:]
		if unit == '.' || unit == ',' {
			return Span{}, fmt.Errorf("parse span %q: fractions are not allowed (write 1h30m, not 1.5h)", s)
		}
		if strings.IndexByte(units, unit) >= 0 {
			return Span{}, fmt.Errorf("parse span %q: unit %c given twice", s, unit)
		}
		switch unit {
		case 'd':
			sp.Days = n
		case 'h':
			if strings.IndexByte(units, 'm') >= 0 {
				return Span{}, fmt.Errorf("parse span %q: hours must come before minutes", s)
			}
			sp.Dur += time.Duration(n) * time.Hour
		case 'm':
			sp.Dur += time.Duration(n) * time.Minute
		case 's':
			return Span{}, fmt.Errorf("parse span %q: seconds are not allowed (use m, h or d)", s)
		default:
			return Span{}, fmt.Errorf("parse span %q: unknown unit %q (use m, h or d)", s, string(unit))
		}
		units += string(unit)
		anyNum = anyNum || n > 0
	}
	if strings.IndexByte(units, 'd') >= 0 && len(units) > 1 {
		return Span{}, fmt.Errorf("parse span %q: business days (d) cannot be mixed with h or m", s)
	}
	if !anyNum {
		return Span{}, fmt.Errorf("parse span %q: must be positive", s)
	}
	if err := sp.Validate(); err != nil {
		return Span{}, fmt.Errorf("parse span %q: %w", s, err)
	}
	return sp, nil
}

// Validate checks that exactly one of Dur and Days is set, positive and
// within MaxSpanDur or MaxSpanDays.
func (s Span) Validate() error {
	switch {
	case s.Dur != 0 && s.Days != 0:
		return errors.New("span has both business time and business days")
	case s.Dur < 0 || s.Days < 0:
		return errors.New("span is negative")
	case s.Dur == 0 && s.Days == 0:
		return errors.New("span is zero")
	case s.Days > MaxSpanDays:
		return fmt.Errorf("span of %d business days is too long (at most %d)", s.Days, MaxSpanDays)
	case s.Dur > MaxSpanDur:
		return fmt.Errorf("span of %s is too long (at most %dh)", s.Dur, MaxSpanDur/time.Hour)
	}
	return nil
}

// IsZero reports whether s is the zero Span (no time at all).
func (s Span) IsZero() bool { return s == Span{} }

// String formats s as ParseSpan reads it ("2d", "1h30m", "4h", "30m"). A
// duration that is not a whole number of minutes falls back to
// time.Duration's format.
func (s Span) String() string {
	switch {
	case s.Days != 0 && s.Dur == 0:
		return fmt.Sprintf("%dd", s.Days)
	case s.Dur == 0:
		return "0m"
	case s.Days != 0:
		return fmt.Sprintf("%dd+%s", s.Days, s.Dur) // invalid span, shown as is
	case s.Dur < 0 || s.Dur%time.Minute != 0:
		return s.Dur.String()
	}
	h, m := int64(s.Dur/time.Hour), int64(s.Dur%time.Hour/time.Minute)
	switch {
	case m == 0:
		return fmt.Sprintf("%dh", h)
	case h == 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

// MarshalText implements encoding.TextMarshaler.
func (s Span) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSpan.
func (s *Span) UnmarshalText(b []byte) error {
	v, err := ParseSpan(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
