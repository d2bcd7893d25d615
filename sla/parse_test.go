package sla

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseHours(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical form
		wantErr string
	}{
		{in: "08:00-17:00", want: "08:00-17:00"},
		{in: "08:00-12:00,13:00-17:00", want: "08:00-12:00,13:00-17:00"},
		{in: "13:00-17:00, 08:00-12:00", want: "08:00-12:00,13:00-17:00"}, // sorted
		{in: " 8:00 - 12:00 ", want: "08:00-12:00"},
		{in: "00:00-24:00", want: "00:00-24:00"},
		{in: "08:00-12:00,12:00-13:00", want: "08:00-12:00,12:00-13:00"}, // touching is fine
		{in: "", wantErr: "no windows"},
		{in: "13:00-12:00", wantErr: "window 13:00-12:00 closes before it opens"},
		{in: "22:00-02:00", wantErr: "window 22:00-02:00 closes before it opens (a window never crosses midnight"},
		{in: "12:00-12:00", wantErr: "window 12:00-12:00 is empty"},
		{in: "08:00-12:00,11:00-13:00", wantErr: "windows 08:00-12:00 and 11:00-13:00 overlap"},
		{in: "08:00-17:00,08:00-17:00", wantErr: "overlap"},
		{in: "24:00-24:00", wantErr: "opens at 24:00"},
		{in: "08:00-24:01", wantErr: `time "24:01": out of range`},
		{in: "08:60-09:00", wantErr: `time "08:60": minutes out of range`},
		{in: "25:00-26:00", wantErr: "out of range"},
		{in: "8-17", wantErr: `time "8": want HH:MM`},
		{in: "08:00", wantErr: `window "08:00": want HH:MM-HH:MM`},
		{in: "08:00-12:00,", wantErr: "empty window"},
		{in: "08:00–17:00", wantErr: "want HH:MM-HH:MM"}, // en dash
		{in: "-08:00-09:00", wantErr: "want HH:MM"},
		{in: "08:0a-09:00", wantErr: "want HH:MM"},
	}
	for _, tt := range tests {
		h, err := ParseHours(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseHours(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHours(%q): %v", tt.in, err)
			continue
		}
		if h.String() != tt.want {
			t.Errorf("ParseHours(%q) = %q, want %q", tt.in, h, tt.want)
		}
	}
}

func FuzzParseHours(f *testing.F) {
	for _, s := range []string{"08:00-17:00", "08:00-12:00,13:00-17:00", "00:00-24:00", "13:00-12:00",
		"8:00 - 9:30", "08:00-12:00,11:00-13:00", "", ",", "24:00-24:00", "23:59-24:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHours(s)
		if err != nil {
			return
		}
		if len(h) == 0 {
			t.Fatalf("ParseHours(%q) succeeded with no windows", s)
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("ParseHours(%q) = %v, invalid: %v", s, h, err)
		}
		again, err := ParseHours(h.String())
		if err != nil || !slices.Equal(again, h) {
			t.Fatalf("round trip of %q via %q = %v, %v", s, h, again, err)
		}
	})
}

func TestParseWeekday(t *testing.T) {
	for in, want := range map[string]time.Weekday{
		"sun": time.Sunday, "Mon": time.Monday, "TUESDAY": time.Tuesday, " wed ": time.Wednesday,
		"thursday": time.Thursday, "fri": time.Friday, "Saturday": time.Saturday,
	} {
		got, err := ParseWeekday(in)
		if err != nil || got != want {
			t.Errorf("ParseWeekday(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "su", "sunday!", "1", "lundi"} {
		if _, err := ParseWeekday(in); err == nil {
			t.Errorf("ParseWeekday(%q) succeeded", in)
		}
	}
}

func FuzzParseWeekday(f *testing.F) {
	for _, s := range []string{"sun", "Monday", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWeekday(s)
		if err != nil {
			return
		}
		if d < time.Sunday || d > time.Saturday {
			t.Fatalf("ParseWeekday(%q) = %d", s, d)
		}
		if again, err := ParseWeekday(d.String()); err != nil || again != d {
			t.Fatalf("ParseWeekday(%q) = %v, %v", d.String(), again, err)
		}
	})
}

func TestParseSpan(t *testing.T) {
	tests := []struct {
		in      string
		want    Span
		str     string
		wantErr string
	}{
		{in: "30m", want: Span{Dur: 30 * time.Minute}, str: "30m"},
		{in: "4h", want: Span{Dur: 4 * time.Hour}, str: "4h"},
		{in: "1h30m", want: Span{Dur: 90 * time.Minute}, str: "1h30m"},
		{in: "90m", want: Span{Dur: 90 * time.Minute}, str: "1h30m"},
		{in: "2d", want: Span{Days: 2}, str: "2d"},
		{in: " 4H ", want: Span{Dur: 4 * time.Hour}, str: "4h"},
		{in: "0h30m", want: Span{Dur: 30 * time.Minute}, str: "30m"},
		{in: "", wantErr: "empty"},
		{in: "0m", wantErr: "must be positive"},
		{in: "0d", wantErr: "must be positive"},
		{in: "-1h", wantErr: "positive"},
		{in: "1d4h", wantErr: "cannot be mixed"},
		{in: "4h1d", wantErr: "cannot be mixed"},
		{in: "30m1h", wantErr: "hours must come before minutes"},
		{in: "1h1h", wantErr: "unit h given twice"},
		{in: "1.5h", wantErr: "fractions are not allowed"},
		{in: "30", wantErr: "has no unit"},
		{in: "30s", wantErr: "seconds are not allowed"},
		{in: "2w", wantErr: `unknown unit "w"`},
		{in: "2ч", wantErr: `unknown unit 'ч'`},
		{in: "h", wantErr: "want a number before 'h'"},
		{in: "1001d", wantErr: "at most 1000"},
		{in: "10001h", wantErr: "at most 10000h"},
		{in: "9999999h", wantErr: "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSpan(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSpan(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSpan(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if got.String() != tt.str {
			t.Errorf("ParseSpan(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
	}
}

func TestSpanText(t *testing.T) {
	var s Span
	if err := s.UnmarshalText([]byte("2d")); err != nil || s != (Span{Days: 2}) {
		t.Errorf("UnmarshalText(2d) = %+v, %v", s, err)
	}
	if err := s.UnmarshalText([]byte("2x")); err == nil {
		t.Error("UnmarshalText(2x) succeeded")
	}
	if b, _ := (Span{Dur: 150 * time.Minute}).MarshalText(); string(b) != "2h30m" {
		t.Errorf("MarshalText = %s", b)
	}
	if got := (Span{Dur: 90 * time.Second}).String(); got != "1m30s" {
		t.Errorf("String of a sub-minute span = %q", got)
	}
}

func FuzzParseSpan(f *testing.F) {
	for _, s := range []string{"30m", "4h", "1h30m", "2d", "0m", "1d4h", "1.5h", "-2d", "999999m", "h", "ч"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpan(s)
		if err != nil {
			return
		}
		if err := sp.Validate(); err != nil {
			t.Fatalf("ParseSpan(%q) = %+v, invalid: %v", s, sp, err)
		}
		again, err := ParseSpan(sp.String())
		if err != nil || again != sp {
			t.Fatalf("round trip of %q via %q = %+v, %v", s, sp, again, err)
		}
	})
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		want    Date
		wantErr string
	}{
		{in: "2026-09-13", want: Date{2026, time.September, 13}},
		{in: "2028-02-29", want: Date{2028, time.February, 29}},
		{in: "2000-02-29", want: Date{2000, time.February, 29}},
		{in: "2026-02-29", wantErr: "February 2026 has no day 29"},
		{in: "1900-02-29", wantErr: "February 1900 has no day 29"},
		{in: "2026-04-31", wantErr: "April 2026 has no day 31"},
		{in: "2026-13-01", wantErr: "month 13 out of range"},
		{in: "2026-00-10", wantErr: "month 00 out of range"},
		{in: "2026-01-00", wantErr: "has no day 0"},
		{in: "0000-01-01", wantErr: "year 0000"},
		{in: "2026-9-13", wantErr: "want YYYY-MM-DD"},
		{in: "26-09-13", wantErr: "want YYYY-MM-DD"},
		{in: "2026/09/13", wantErr: "want YYYY-MM-DD"},
		{in: "2026-09-1a", wantErr: "want YYYY-MM-DD"},
		{in: "+026-09-13", wantErr: "want YYYY-MM-DD"},
		{in: "", wantErr: "want YYYY-MM-DD"},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDate(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got, tt.in)
		}
	}
}

var errYearZero = errors.New("year 0000")

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-09-13", "2028-02-29", "2026-02-29", "0001-01-01", "9999-12-31", "2026-13-01", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		_, stdErr := time.Parse(time.DateOnly, s)
		if stdErr == nil && strings.HasPrefix(s, "0000-") {
			stdErr = errYearZero // we reject year 0000, time.Parse does not
		}
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("ParseDate(%q) error %v, but time.Parse error %v", s, err, stdErr)
		}
		if err != nil {
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDate(%q).String() = %q", s, d)
		}
		if d.normal() != d {
			t.Fatalf("ParseDate(%q) = %v, not normal", s, d)
		}
	})
}

func TestDateMethods(t *testing.T) {
	d := mustDate(t, "2026-12-31")
	if got := d.AddDays(1); got != (Date{2027, time.January, 1}) {
		t.Errorf("AddDays(1) = %v", got)
	}
	if got := d.AddDays(-365); got != (Date{2025, time.December, 31}) {
		t.Errorf("AddDays(-365) = %v", got)
	}
	if d.Weekday() != time.Thursday {
		t.Errorf("Weekday = %v", d.Weekday())
	}
	if d.Compare(d.AddDays(1)) != -1 || d.AddDays(1).Compare(d) != 1 || d.Compare(d) != 0 {
		t.Error("Compare is wrong")
	}
	if !d.Before(d.AddDays(1)) || d.Before(d) || !d.AddDays(1).After(d) {
		t.Error("Before/After is wrong")
	}
	if MonthKey(d) != "2026-12" || d.MonthKey() != "2026-12" {
		t.Errorf("MonthKey = %s", MonthKey(d))
	}
	if got := DateOf(time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC).In(mustLoc(t, "Asia/Jerusalem"))); got != (Date{2026, time.December, 1}) {
		t.Errorf("DateOf = %v", got)
	}
	var back Date
	b, _ := d.MarshalText()
	if err := back.UnmarshalText(b); err != nil || back != d {
		t.Errorf("text round trip = %v, %v", back, err)
	}
	if err := back.UnmarshalText([]byte("2026-02-30")); err == nil {
		t.Error("UnmarshalText(2026-02-30) succeeded")
	}
	if !(Date{}).IsZero() || d.IsZero() {
		t.Error("IsZero is wrong")
	}
}
