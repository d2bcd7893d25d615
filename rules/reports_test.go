package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reportsBase is a valid configuration without `reports:`.
const reportsBase = `service: {address: support@msp.example}
mailbox: {host: imap.msp.example, password: pw}
smtp: {host: smtp.msp.example}
staff: {addresses: ["*@msp.example"], queue: helpdesk@msp.example}
calendars:
  office:
    timezone: Europe/London
    week: {mon: "09:00-17:00", tue: "09:00-17:00", wed: "09:00-17:00", thu: "09:00-17:00", fri: "09:00-17:00"}
contracts:
  - id: acme
    match: {domains: [acme.example]}
rules:
  - name: default
    set: {category: request}
`

func TestReportsSection(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	tests := []struct {
		name string
		yaml string
		want QBRSchedule
	}{
		{"absent", "", QBRSchedule{Schedule: ScheduleOff, Send: true, At: -1}},
		{"empty section", "reports: {}\n", QBRSchedule{Schedule: ScheduleOff, Send: true, At: -1}},
		{"quarterly with defaults", "reports: {qbr: {schedule: quarterly}}\n",
			QBRSchedule{Schedule: ScheduleQuarterly, Send: true, At: -1, Pos: Pos{File: file, Line: 15, Col: 16}}},
		{"everything", "reports:\n  qbr:\n    schedule: quarterly\n    send: false\n    hour: 08:30\n    dir: out/qbr\n",
			QBRSchedule{Schedule: ScheduleQuarterly, Send: false, At: 8*60 + 30, Dir: filepath.Join(dir, "out/qbr"), Pos: Pos{File: file, Line: 17, Col: 5}}},
		{"off keeps the rest", "reports: {qbr: {schedule: off, hour: \"7:05\"}}\n",
			QBRSchedule{Schedule: ScheduleOff, Send: true, At: 7*60 + 5, Pos: Pos{File: file, Line: 15, Col: 16}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(reportsBase+tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(file, testOptions(nil))
			if err != nil {
				t.Fatalf("load:\n%v", err)
			}
			if got := cfg.Reports.QBR; got != tt.want {
				t.Errorf("reports.qbr = %+v, want %+v", got, tt.want)
			}
			if got := cfg.Reports.QBR.Quarterly(); got != (tt.want.Schedule == ScheduleQuarterly) {
				t.Errorf("Quarterly() = %v", got)
			}
		})
	}
}

func TestParseTimeOfDay(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		err  string
	}{
		{"08:00", 480, ""},
		{"8:00", 480, ""},
		{" 23:59 ", 23*60 + 59, ""},
		{"00:00", 0, ""},
		{"24:00", 0, "00:00 to 23:59"},
		{"12:60", 0, "00:00 to 23:59"},
		{"8", 0, "HH:MM"},
		{"8am", 0, "HH:MM"},
		{"08:0", 0, "HH:MM"},
		{"+8:00", 0, "HH:MM"},
		{"108:00", 0, "HH:MM"},
		{"", 0, "HH:MM"},
	} {
		got, err := ParseTimeOfDay(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseTimeOfDay(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseTimeOfDay(%q) error %v, want one saying %q", tt.in, err, tt.err)
		}
	}
}

func FuzzParseTimeOfDay(f *testing.F) {
	for _, s := range []string{"08:00", "8:00", "23:59", "24:00", "12:60", "8am", "", "0:00", "99:99", "１２:００"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseTimeOfDay(s)
		if err != nil {
			return
		}
		if m < 0 || m >= 24*60 {
			t.Fatalf("ParseTimeOfDay(%q) = %d: out of the day", s, m)
		}
		// What it accepts is the canonical form, give or take a leading zero
		// and surrounding space.
		got, want := strings.TrimSpace(s), fmtClock(m)
		if got != want && !(want[0] == '0' && got == want[1:]) {
			t.Fatalf("ParseTimeOfDay(%q) = %d (%s)", s, m, want)
		}
	})
}

func fmtClock(m int) string {
	return string([]byte{byte('0' + m/600), byte('0' + m/60%10), ':', byte('0' + m%60/10), byte('0' + m%10)})
}
