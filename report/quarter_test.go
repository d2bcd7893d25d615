package report

import (
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/sla"
)

func TestParseQuarter(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Quarter
		wantErr bool
	}{
		{"2026-Q3", Quarter{2026, 3}, false},
		{"2026q1", Quarter{2026, 1}, false},
		{" 2027-Q4 ", Quarter{2027, 4}, false},
		{"2026-Q5", Quarter{}, true},
		{"2026-Q0", Quarter{}, true},
		{"26-Q1", Quarter{}, true},
		{"2026-3", Quarter{}, true},
		{"", Quarter{}, true},
		{"0000-Q1", Quarter{}, true},
		{"2026-Q3x", Quarter{}, true},
	} {
		got, err := ParseQuarter(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseQuarter(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestQuarterBounds(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		t.Fatal(err)
	}
	s, e := Quarter{2026, 3}.Bounds(loc)
	if want := time.Date(2026, 7, 1, 0, 0, 0, 0, loc); !s.Equal(want) {
		t.Errorf("start %v, want %v", s, want)
	}
	if want := time.Date(2026, 10, 1, 0, 0, 0, 0, loc); !e.Equal(want) {
		t.Errorf("end %v, want %v", e, want)
	}
	if p := (Quarter{2026, 1}).Prev(); p != (Quarter{2025, 4}) {
		t.Errorf("prev of 2026-Q1 = %v", p)
	}
	if q4 := (Quarter{2026, 4}); q4.EndDay() != (sla.Date{Year: 2027, Month: 1, Day: 1}) {
		t.Errorf("end of Q4 = %v", q4.EndDay())
	}
}

func TestWeekStart(t *testing.T) {
	il, uk := israelContract(t).Calendar, londonContract(t).Calendar
	if WeekStartDay(il) != time.Sunday || WeekStartDay(uk) != time.Monday {
		t.Errorf("week starts %v and %v, want Sunday and Monday", WeekStartDay(il), WeekStartDay(uk))
	}
	// 2026-08-12 is a Wednesday: its week starts on Sunday 9 Aug or Monday 10 Aug.
	n := dayNum(sla.Date{Year: 2026, Month: 8, Day: 12})
	if got := dateOfNum(weekOf(n, time.Sunday)).String(); got != "2026-08-09" {
		t.Errorf("Sunday week of 2026-08-12 = %s", got)
	}
	if got := dateOfNum(weekOf(n, time.Monday)).String(); got != "2026-08-10" {
		t.Errorf("Monday week of 2026-08-12 = %s", got)
	}
}

func TestQuartiles(t *testing.T) {
	q1, med, q3 := quartiles([]int{1, 2, 3, 4, 5, 6, 7, 8})
	if q1 != 2.75 || med != 4.5 || q3 != 6.25 {
		t.Errorf("quartiles = %v %v %v, want 2.75 4.5 6.25", q1, med, q3)
	}
}

func FuzzParseQuarter(f *testing.F) {
	for _, s := range []string{"2026-Q3", "2026q4", "1999-Q1", "2026-Q9", "", "Q", "-Q1", "2026--Q1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuarter(s)
		if err != nil {
			return
		}
		if q.Q < 1 || q.Q > 4 || q.Year < 1 {
			t.Fatalf("ParseQuarter(%q) = %v", s, q)
		}
		back, err := ParseQuarter(q.String())
		if err != nil || back != q {
			t.Fatalf("round trip of %v: %v, %v", q, back, err)
		}
	})
}
