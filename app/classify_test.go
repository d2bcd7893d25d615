package app

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The example messages (examples/messages), classified under the example
// configuration (examples/gateway.yaml).
const (
	msgDir       = "../examples/messages/"
	heFault      = msgDir + "fault-hebrew-windows-1255.eml" // yossi@acme.co.il, "לא עובד": fault, high
	enRequest    = msgDir + "request-english.eml"           // maria.lopez@globex.example: request, normal
	imacSunday   = msgDir + "imac-new-employee-sunday.eml"  // dana.levi@acme.co.il, "new employee": imac
	outOfOffice  = msgDir + "autoreply-out-of-office.eml"   // yossi@acme.co.il, Auto-Submitted: auto-replied
	specJSONKeys = "file contract category priority rules received response_due resolution_due imac_date imac_quota_used imac_quota ack ack_reason trace"
)

var exampleMessages = []string{outOfOffice, heFault, imacSunday, enRequest}

// jsonLine is one line of `classify --json`, each field rendered as text so
// that a table can state it: null is "", a JSON string is its value (an
// empty string shows as `""`), a list is comma-joined.
type jsonLine map[string]string

func parseJSONLines(t *testing.T, out string) []jsonLine {
	t.Helper()
	var lines []jsonLine
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			t.Fatalf("line %d of the output is empty", i+1)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", i+1, err, l)
		}
		for _, k := range strings.Fields(specJSONKeys) {
			if _, ok := raw[k]; !ok {
				t.Errorf("line %d has no %q (SPEC §4): %s", i+1, k, l)
			}
		}
		line := jsonLine{}
		for k, v := range raw {
			line[k] = jsonText(t, v)
		}
		lines = append(lines, line)
	}
	return lines
}

func jsonText(t *testing.T, v json.RawMessage) string {
	t.Helper()
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		t.Fatal(err)
	}
	switch x := x.(type) {
	case nil:
		return ""
	case string:
		if x == "" {
			return `""`
		}
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		var parts []string
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return string(v) // a list of objects (trace): compared raw
			}
			parts = append(parts, s)
		}
		if parts == nil {
			return "[]"
		}
		return strings.Join(parts, ",")
	default:
		return string(v)
	}
}

// TestClassifyDates checks the dates `classify --json --at` promises against
// the ones a person computes by hand from SPEC §3a, under the calendars of
// examples/gateway.yaml:
//
//	israel-office (Asia/Jerusalem, UTC+2 all winter): Sun 08-17, Mon 08-12
//	  and 13-17, Tue-Thu 08-17, Fri 08-12; 2026-12-25 (a Friday) closed.
//	us-east (America/New_York; EST UTC-5 from 1 Nov 2026, EDT UTC-4 before):
//	  Mon-Fri 09-17; 2026-11-26 (Thanksgiving) and 2026-12-25 closed.
//
// acme (israel-office): fault high 1h/8h, request normal 4h/3d; IMAC on
// Tuesdays with 2d notice, 10 a month. globex (us-east): request normal
// 4h/3d. Offline, the IMAC quota counts as untouched: this IMAC is number 1.
func TestClassifyDates(t *testing.T) {
	type want struct {
		contract, category, priority, rules   string
		received, start, response, resolution string // "" = null
		imacDate, imacUsed, imacQuota         string // "" = null
		ack                                   bool
		ackReason                             string // "" = null
		ackHas                                []string
	}
	tests := []struct {
		name string
		file string
		at   string // "" = now (testNow)
		want want
	}{
		{
			// SPEC §7's example. Monday 09:30 is open. Response: 60
			// business minutes, 09:30 → 10:30. Resolution: 8 business
			// hours: Monday has 09:30-12:00 (2.5h) and 13:00-17:00 (4h),
			// 6.5h; the remaining 1.5h from Tuesday 08:00 → 09:30.
			name: "hebrew fault, SPEC §7", file: heFault, at: "2026-11-30T09:30",
			want: want{contract: "acme", category: "fault", priority: "high", rules: "outage",
				received: "2026-11-30T09:30:00+02:00", start: "2026-11-30T09:30:00+02:00",
				response: "2026-11-30T10:30:00+02:00", resolution: "2026-12-01T09:30:00+02:00",
				ack:    true,
				ackHas: []string{"יום שני, 30 בנובמבר 2026, 10:30", "יום שלישי, 1 בדצמבר 2026, 09:30"}},
		},
		{
			// No --at: received now, 07:30 UTC = 09:30 in Jerusalem, the
			// same dates as above.
			name: "hebrew fault, now", file: heFault,
			want: want{contract: "acme", category: "fault", priority: "high", rules: "outage",
				received: "2026-11-30T09:30:00+02:00", start: "2026-11-30T09:30:00+02:00",
				response: "2026-11-30T10:30:00+02:00", resolution: "2026-12-01T09:30:00+02:00", ack: true},
		},
		{
			// Monday 12:30 is the lunch break: the clock starts at 13:00.
			// Response 13:00 + 1h = 14:00. Resolution: 13:00-17:00 is 4h,
			// the other 4h from Tuesday 08:00 → 12:00.
			name: "hebrew fault in the lunch break", file: heFault, at: "2026-11-30T12:30",
			want: want{contract: "acme", category: "fault", priority: "high", rules: "outage",
				received: "2026-11-30T12:30:00+02:00", start: "2026-11-30T13:00:00+02:00",
				response: "2026-11-30T14:00:00+02:00", resolution: "2026-12-01T12:00:00+02:00", ack: true},
		},
		{
			// Friday 11:30, the office closes at 12:00: 30 minutes on
			// Friday, none on Saturday, the rest from Sunday 08:00.
			// Response 08:30; resolution 8h - 0.5h = 7.5h → 15:30.
			name: "hebrew fault on friday noon", file: heFault, at: "2026-12-04T11:30",
			want: want{contract: "acme", category: "fault", priority: "high", rules: "outage",
				received: "2026-12-04T11:30:00+02:00", start: "2026-12-04T11:30:00+02:00",
				response: "2026-12-06T08:30:00+02:00", resolution: "2026-12-06T15:30:00+02:00", ack: true},
		},
		{
			// Thursday 24 December 16:00; Friday 25 is a holiday. Response:
			// the hour 16:00-17:00 is still open, so 17:00 the same day.
			// Resolution: 1h on Thursday, nothing Friday (holiday) or
			// Saturday, 7h from Sunday 27 08:00 → 15:00.
			name: "hebrew fault before a holiday", file: heFault, at: "2026-12-24T16:00",
			want: want{contract: "acme", category: "fault", priority: "high", rules: "outage",
				received: "2026-12-24T16:00:00+02:00", start: "2026-12-24T16:00:00+02:00",
				response: "2026-12-24T17:00:00+02:00", resolution: "2026-12-27T15:00:00+02:00", ack: true},
		},
		{
			// Monday 09:30 New York. Response 4h → 13:30. Resolution 3d:
			// the 3rd business day after Monday 30 Nov is Thursday 3 Dec,
			// at the same wall-clock time.
			name: "english request, monday", file: enRequest, at: "2026-11-30T09:30",
			want: want{contract: "globex", category: "request", priority: "normal", rules: "default",
				received: "2026-11-30T09:30:00-05:00", start: "2026-11-30T09:30:00-05:00",
				response: "2026-11-30T13:30:00-05:00", resolution: "2026-12-03T09:30:00-05:00",
				ack: true, ackHas: []string{"We will respond by Monday 30 November 2026, 13:30 and we aim to complete it by Thursday 3 December 2026, 09:30."}},
		},
		{
			// An RFC 3339 --at in another zone: 14:30Z is 09:30 EST, so the
			// same dates, shown in the calendar's zone.
			name: "english request, --at in UTC", file: enRequest, at: "2026-11-30T14:30:00Z",
			want: want{contract: "globex", category: "request", priority: "normal", rules: "default",
				received: "2026-11-30T09:30:00-05:00", start: "2026-11-30T09:30:00-05:00",
				response: "2026-11-30T13:30:00-05:00", resolution: "2026-12-03T09:30:00-05:00", ack: true},
		},
		{
			// Wednesday before Thanksgiving, 14:00. Response: 3h on
			// Wednesday (to 17:00), Thursday 26 is a holiday, the last hour
			// Friday 09:00-10:00. Resolution 3d: business days after
			// Wednesday 25 are Friday 27 (1), Monday 30 (2), Tuesday 1 Dec
			// (3) → Tuesday 14:00.
			name: "english request, day before thanksgiving", file: enRequest, at: "2026-11-25T14:00",
			want: want{contract: "globex", category: "request", priority: "normal", rules: "default",
				received: "2026-11-25T14:00:00-05:00", start: "2026-11-25T14:00:00-05:00",
				response: "2026-11-27T10:00:00-05:00", resolution: "2026-12-01T14:00:00-05:00",
				ack: true, ackHas: []string{"We will respond by Friday 27 November 2026, 10:00"}},
		},
		{
			// On Thanksgiving: closed all day, the clock starts Friday 27
			// at 09:00. Response 13:00. Resolution 3d after Friday 27:
			// Monday 30 (1), Tuesday 1 (2), Wednesday 2 December (3), at
			// 09:00.
			name: "english request on thanksgiving", file: enRequest, at: "2026-11-26T10:00",
			want: want{contract: "globex", category: "request", priority: "normal", rules: "default",
				received: "2026-11-26T10:00:00-05:00", start: "2026-11-27T09:00:00-05:00",
				response: "2026-11-27T13:00:00-05:00", resolution: "2026-12-02T09:00:00-05:00",
				ack: true, ackHas: []string{"Your message arrived outside our business hours (Thursday 26 November 2026, 10:00), so these times count from when we open: Friday 27 November 2026, 09:00."}},
		},
		{
			// Friday 16:30: 30 minutes on Friday, 3.5h from Monday 09:00 →
			// 12:30. Resolution 3d after Friday 4: Monday 7, Tuesday 8,
			// Wednesday 9, at 16:30.
			name: "english request, friday 16:30", file: enRequest, at: "2026-12-04T16:30",
			want: want{contract: "globex", category: "request", priority: "normal", rules: "default",
				received: "2026-12-04T16:30:00-05:00", start: "2026-12-04T16:30:00-05:00",
				response: "2026-12-07T12:30:00-05:00", resolution: "2026-12-09T16:30:00-05:00", ack: true},
		},
		{
			// Saturday: the clock starts Monday 7 at 09:00. Response 13:00.
			// Resolution 3d after Monday 7: Tuesday 8, Wednesday 9,
			// Thursday 10, at 09:00.
			name: "english request on a saturday", file: enRequest, at: "2026-12-05T11:00",
			want: want{contract: "globex", category: "request", priority: "normal", rules: "default",
				received: "2026-12-05T11:00:00-05:00", start: "2026-12-07T09:00:00-05:00",
				response: "2026-12-07T13:00:00-05:00", resolution: "2026-12-10T09:00:00-05:00", ack: true},
		},
		{
			// Friday 30 October 15:00 EDT; New York leaves daylight saving
			// time on Sunday 1 November. Response: 2h on Friday, 2h from
			// Monday 09:00 EST → 11:00 EST. Resolution 3d: Monday 2,
			// Tuesday 3, Wednesday 4 November, at 15:00 wall-clock time
			// (now EST: business days are counted on the calendar, not as
			// multiples of 24 hours, which would give 14:00).
			name: "english request across the end of DST", file: enRequest, at: "2026-10-30T15:00",
			want: want{contract: "globex", category: "request", priority: "normal", rules: "default",
				received: "2026-10-30T15:00:00-04:00", start: "2026-10-30T15:00:00-04:00",
				response: "2026-11-02T11:00:00-05:00", resolution: "2026-11-04T15:00:00-05:00", ack: true},
		},
		{
			// Sunday 29 November 09:00, a business day in Israel. Notice 2d
			// ends on the 2nd business day after Sunday, Tuesday 1
			// December, at 09:00. Tuesday 1 opens at 08:00, before the
			// notice end, so the first service day that qualifies is
			// Tuesday 8 December. No IMAC targets: no response or
			// resolution dates.
			name: "imac sunday 09:00", file: imacSunday, at: "2026-11-29T09:00",
			want: want{contract: "acme", category: "imac", priority: "normal", rules: "onboarding",
				received: "2026-11-29T09:00:00+02:00", start: "2026-11-29T09:00:00+02:00",
				imacDate: "2026-12-08", imacUsed: "1", imacQuota: "10",
				ack: true, ackHas: []string{"8 בדצמבר 2026", "1 מתוך 10"}},
		},
		{
			// Sunday 07:30, before opening: the clock starts at 08:00, the
			// notice ends Tuesday 1 December 08:00, and Tuesday 1 opens at
			// 08:00, at the notice end: scheduled that day.
			name: "imac sunday 07:30", file: imacSunday, at: "2026-11-29T07:30",
			want: want{contract: "acme", category: "imac", priority: "normal", rules: "onboarding",
				received: "2026-11-29T07:30:00+02:00", start: "2026-11-29T08:00:00+02:00",
				imacDate: "2026-12-01", imacUsed: "1", imacQuota: "10",
				ack: true, ackHas: []string{"1 בדצמבר 2026"}},
		},
		{
			// Thursday 24 December 10:00; Friday 25 is a holiday, Saturday
			// closed: notice ends on Sunday 27 (1), Monday 28 (2) at
			// 10:00; the next Tuesday is 29 December.
			name: "imac before a holiday", file: imacSunday, at: "2026-12-24T10:00",
			want: want{contract: "acme", category: "imac", priority: "normal", rules: "onboarding",
				received: "2026-12-24T10:00:00+02:00", start: "2026-12-24T10:00:00+02:00",
				imacDate: "2026-12-29", imacUsed: "1", imacQuota: "10", ack: true},
		},
		{
			// The out-of-office reply is still classified (request, normal,
			// with its dates: 4h = 09:30-12:00 + 13:00-14:30; 3d →
			// Thursday 3 December 09:30) but never acknowledged.
			name: "auto-reply", file: outOfOffice, at: "2026-11-30T09:30",
			want: want{contract: "acme", category: "request", priority: "normal", rules: "default",
				received: "2026-11-30T09:30:00+02:00", start: "2026-11-30T09:30:00+02:00",
				response: "2026-11-30T14:30:00+02:00", resolution: "2026-12-03T09:30:00+02:00",
				ack: false, ackReason: "auto-reply"},
		},
		{
			// A d target landing in a closed hour. Thursday 26 November
			// 12:30 (acme): resolution 3d → Friday 27 (1), Sunday 29 (2),
			// Monday 30 (3) at 12:30, which is Monday's lunch break: the
			// deadline is that day's last close before 12:30, 12:00.
			// Response: 12:30-17:00 holds the 4h → 16:30.
			name: "d target in the lunch break", file: outOfOffice, at: "2026-11-26T12:30",
			want: want{contract: "acme", category: "request", priority: "normal", rules: "default",
				received: "2026-11-26T12:30:00+02:00", start: "2026-11-26T12:30:00+02:00",
				response: "2026-11-26T16:30:00+02:00", resolution: "2026-11-30T12:00:00+02:00",
				ack: false, ackReason: "auto-reply"},
		},
		{
			// Tuesday 1 December 15:00: the 3rd business day is Friday 4,
			// which closes at 12:00, before 15:00: the deadline is Friday
			// 12:00. Response: 2h on Tuesday, 2h from Wednesday 08:00.
			name: "d target on a short day", file: outOfOffice, at: "2026-12-01T15:00",
			want: want{contract: "acme", category: "request", priority: "normal", rules: "default",
				received: "2026-12-01T15:00:00+02:00", start: "2026-12-01T15:00:00+02:00",
				response: "2026-12-02T10:00:00+02:00", resolution: "2026-12-04T12:00:00+02:00",
				ack: false, ackReason: "auto-reply"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"classify", "-c", exampleConfig, "--json", "--show-ack"}
			if tt.at != "" {
				args = append(args, "--at", tt.at)
			}
			r := runMain(t, nil, append(args, tt.file)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
			}
			lines := parseJSONLines(t, r.stdout)
			if len(lines) != 1 {
				t.Fatalf("%d lines of output, want 1:\n%s", len(lines), r.stdout)
			}
			got := lines[0]
			w := tt.want
			for _, f := range []struct{ key, want string }{
				{"file", tt.file},
				{"contract", w.contract},
				{"category", w.category},
				{"priority", w.priority},
				{"rules", w.rules},
				{"received", w.received},
				{"effective_start", w.start},
				{"response_due", w.response},
				{"resolution_due", w.resolution},
				{"imac_date", w.imacDate},
				{"imac_quota_used", w.imacUsed},
				{"imac_quota", w.imacQuota},
				{"ack", strconv.FormatBool(w.ack)},
				{"ack_reason", w.ackReason},
			} {
				if got[f.key] != f.want {
					t.Errorf("%s = %q, want %q", f.key, got[f.key], f.want)
				}
			}
			if w.ack != (got["ack_text"] != "") {
				t.Errorf("ack is %v but the acknowledgement text is %q", w.ack, got["ack_text"])
			}
			for _, s := range w.ackHas {
				if !strings.Contains(got["ack_text"], s) {
					t.Errorf("the acknowledgement does not say %q:\n%s", s, got["ack_text"])
				}
			}
		})
	}
}

// TestClassifyGolden pins the whole output for every example: the JSON
// lines, and the human report with the rendered acknowledgements, on a
// Monday morning and before opening on a Sunday (outside business hours in
// both calendars).
func TestClassifyGolden(t *testing.T) {
	tests := []struct {
		golden string
		flags  []string
	}{
		{"classify-json.golden", []string{"--json", "--at", "2026-11-30T09:30"}},
		{"classify-show-ack.golden", []string{"--show-ack", "--at", "2026-11-30T09:30"}},
		{"classify-show-ack-sunday-early.golden", []string{"--show-ack", "--at", "2026-11-29T07:30"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			args := append([]string{"classify", "-c", exampleConfig}, tt.flags...)
			r := runMain(t, nil, append(args, exampleMessages...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
			}
			checkGolden(t, tt.golden, r.stdout)
		})
	}
}

// TestClassifyFlags covers how an administrator types the command.
func TestClassifyFlags(t *testing.T) {
	t.Run("flags after the messages", func(t *testing.T) {
		r := runMain(t, nil, "classify", heFault, "-c", exampleConfig, enRequest, "--json", "--at", "2026-11-30T09:30")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
		}
		lines := parseJSONLines(t, r.stdout)
		if len(lines) != 2 || lines[0]["file"] != heFault || lines[1]["file"] != enRequest {
			t.Fatalf("want JSON for %s and %s in order, got:\n%s", heFault, enRequest, r.stdout)
		}
		if lines[0]["received"] != "2026-11-30T09:30:00+02:00" || lines[1]["received"] != "2026-11-30T09:30:00-05:00" {
			t.Errorf("--at after the messages was not applied: received %s and %s", lines[0]["received"], lines[1]["received"])
		}
	})
	t.Run("-- ends the flags", func(t *testing.T) {
		r := runMain(t, nil, "classify", "-c", exampleConfig, "--json", "--", "--at")
		if r.code != 1 {
			t.Errorf("exit status %d, want 1", r.code)
		}
		if want := "--at: no such file or directory\n"; r.stderr != want {
			t.Errorf("stderr = %q, want %q", r.stderr, want)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		r := runMain(t, nil, "classify", "-c", exampleConfig, heFault, "--jsn")
		if r.code != 2 {
			t.Errorf("exit status %d, want 2", r.code)
		}
		if !strings.HasPrefix(r.stderr, "flag provided but not defined: -jsn\nusage: gateway classify ") {
			t.Errorf("stderr does not name the flag and show the usage:\n%s", r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("stdout = %q, want nothing", r.stdout)
		}
	})
	for _, at := range []string{"tomorrow", "2026-11-31T09:30", "30/11/2026 09:30", "2026-11-30T25:00"} {
		t.Run("invalid --at "+at, func(t *testing.T) {
			r := runMain(t, nil, "classify", "-c", exampleConfig, "--at", at, heFault)
			if r.code != 1 {
				t.Errorf("exit status %d, want 1", r.code)
			}
			want := "gateway classify: --at: invalid time " + strconv.Quote(at) +
				": want RFC 3339 (2026-11-30T09:30:00+02:00) or YYYY-MM-DDTHH:MM in the contract's zone\n"
			if r.stderr != want {
				t.Errorf("stderr = %q\nwant     %q", r.stderr, want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	t.Run("missing and unreadable messages", func(t *testing.T) {
		r := runMain(t, nil, "classify", "-c", exampleConfig, "--json", "--at", "2026-11-30T09:30",
			heFault, "testdata/no-such.eml", msgDir, enRequest)
		if r.code != 1 {
			t.Errorf("exit status %d, want 1", r.code)
		}
		want := "testdata/no-such.eml: no such file or directory\n" +
			msgDir + ": is a directory, not a message file\n"
		if r.stderr != want {
			t.Errorf("stderr = %q\nwant     %q", r.stderr, want)
		}
		lines := parseJSONLines(t, r.stdout)
		if len(lines) != 2 || lines[0]["file"] != heFault || lines[1]["file"] != enRequest {
			t.Errorf("the readable messages were not all classified:\n%s", r.stdout)
		}
	})
	t.Run("broken configuration", func(t *testing.T) {
		r := runMain(t, nil, "classify", "-c", "testdata/check/missing_calendar.yaml", heFault)
		if r.code != 1 {
			t.Errorf("exit status %d, want 1", r.code)
		}
		want := "testdata/check/missing_calendar.yaml:13:15: contracts[0].calendar: unknown calendar \"us-east\": expected israel-office\n"
		if r.stderr != want || r.stdout != "" {
			t.Errorf("stdout %q, stderr %q; want only the error %q", r.stdout, r.stderr, want)
		}
	})
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestParseAt pins the --at layouts and the zone they are read in.
func TestParseAt(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	tests := []struct {
		in   string
		want string // RFC 3339, "" for an error
	}{
		{"2026-11-30T09:30", "2026-11-30T09:30:00-05:00"},
		{"2026-11-30T09:30:15", "2026-11-30T09:30:15-05:00"},
		{"2026-11-30 09:30", "2026-11-30T09:30:00-05:00"},
		{"2026-11-30", "2026-11-30T00:00:00-05:00"},
		{"2026-11-30T9:30", "2026-11-30T09:30:00-05:00"},               // Go reads the hour leniently
		{"2026-07-01T09:30", "2026-07-01T09:30:00-04:00"},              // summer time
		{"2026-11-30T09:30:00+02:00", "2026-11-30T09:30:00+02:00"},     // an explicit offset wins
		{"2026-11-30T07:30:00Z", "2026-11-30T07:30:00Z"},               // so does Z
		{"2026-11-30T09:30:00.5+02:00", "2026-11-30T09:30:00.5+02:00"}, // fractions are kept
		{"", ""},
		{"now", ""},
		{"2026-02-29T09:30", ""},
		{"2026-11-30T09:30+02:00", ""},
	}
	for _, tt := range tests {
		got, err := parseAt(tt.in, ny)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("parseAt(%q) = %v, want an error", tt.in, got)
		case tt.want != "" && err != nil:
			t.Errorf("parseAt(%q): %v", tt.in, err)
		case tt.want != "" && got.Format("2006-01-02T15:04:05.999999999Z07:00") != tt.want:
			t.Errorf("parseAt(%q) = %s, want %s", tt.in, got.Format("2006-01-02T15:04:05.999999999Z07:00"), tt.want)
		}
	}
}

// TestClassifyUnknownSender: a sender no contract matches. Under the
// example's unknown_senders: reply there is no ticket and no
// acknowledgement; under unknown_senders: ticket (corpus.yaml) there is a
// ticket with the T prefix, no calendar (times in UTC) and no targets, and
// its acknowledgement renders.
func TestClassifyUnknownSender(t *testing.T) {
	const msg = "testdata/messages/unknown-sender.eml"
	tests := []struct {
		config    string
		ack       string
		ackReason string
		ackHas    string
	}{
		{config: exampleConfig, ack: "false", ackReason: "unknown-sender"},
		{config: "testdata/corpus.yaml", ack: "true",
			ackHas: "Ticket T-0000 — we classified your message as a service request (priority normal). " +
				"Your plan sets no fixed response time for this kind of request; our team will look at it during business hours, from Monday 30 November 2026, 09:30."},
	}
	for _, tt := range tests {
		t.Run(tt.config, func(t *testing.T) {
			r := runMain(t, corpusEnv, "classify", "-c", tt.config, "--json", "--show-ack", "--at", "2026-11-30T09:30", msg)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
			}
			l := parseJSONLines(t, r.stdout)[0]
			for k, want := range map[string]string{
				"contract": "", "category": "request", "priority": "normal", "received": "2026-11-30T09:30:00Z",
				"effective_start": "", "response_due": "", "resolution_due": "", "imac_date": "",
				"ack": tt.ack, "ack_reason": tt.ackReason,
			} {
				if l[k] != want {
					t.Errorf("%s = %q, want %q", k, l[k], want)
				}
			}
			if !strings.Contains(l["ack_text"], tt.ackHas) || (tt.ackHas == "") != (l["ack_text"] == "") {
				t.Errorf("acknowledgement:\n%s\nwant it to say %q", l["ack_text"], tt.ackHas)
			}
		})
	}
}
