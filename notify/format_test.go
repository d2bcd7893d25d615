package notify

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/northwind-it/ticketgw/domain"
)

func jerusalem(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	return loc
}

// TestHebrewDates covers every weekday and every month with the names of
// LIBNOTES §7.
func TestHebrewDates(t *testing.T) {
	loc := jerusalem(t)
	he := formatter{lang: LangHebrew, loc: loc}
	tests := []struct {
		t        time.Time
		longDate string
	}{
		// Sunday 29 November 2026 to Saturday 5 December 2026.
		{time.Date(2026, 11, 29, 8, 0, 0, 0, loc), "יום ראשון, 29 בנובמבר 2026"},
		{time.Date(2026, 11, 30, 10, 30, 0, 0, loc), "יום שני, 30 בנובמבר 2026"},
		{time.Date(2026, 12, 1, 9, 30, 0, 0, loc), "יום שלישי, 1 בדצמבר 2026"},
		{time.Date(2026, 12, 2, 0, 0, 0, 0, loc), "יום רביעי, 2 בדצמבר 2026"},
		{time.Date(2026, 12, 3, 23, 59, 0, 0, loc), "יום חמישי, 3 בדצמבר 2026"},
		{time.Date(2026, 12, 4, 12, 0, 0, 0, loc), "יום שישי, 4 בדצמבר 2026"},
		{time.Date(2026, 12, 5, 12, 0, 0, 0, loc), "שבת, 5 בדצמבר 2026"},
		// Every month of 2027.
		{time.Date(2027, 1, 5, 0, 0, 0, 0, loc), "יום שלישי, 5 בינואר 2027"},
		{time.Date(2027, 2, 14, 0, 0, 0, 0, loc), "יום ראשון, 14 בפברואר 2027"},
		{time.Date(2027, 3, 3, 0, 0, 0, 0, loc), "יום רביעי, 3 במרץ 2027"},
		{time.Date(2027, 4, 1, 0, 0, 0, 0, loc), "יום חמישי, 1 באפריל 2027"},
		{time.Date(2027, 5, 7, 0, 0, 0, 0, loc), "יום שישי, 7 במאי 2027"},
		{time.Date(2027, 6, 12, 0, 0, 0, 0, loc), "שבת, 12 ביוני 2027"},
		{time.Date(2027, 7, 19, 0, 0, 0, 0, loc), "יום שני, 19 ביולי 2027"},
		{time.Date(2027, 8, 24, 0, 0, 0, 0, loc), "יום שלישי, 24 באוגוסט 2027"},
		{time.Date(2027, 9, 15, 0, 0, 0, 0, loc), "יום רביעי, 15 בספטמבר 2027"},
		{time.Date(2027, 10, 31, 0, 0, 0, 0, loc), "יום ראשון, 31 באוקטובר 2027"},
		{time.Date(2027, 11, 11, 0, 0, 0, 0, loc), "יום חמישי, 11 בנובמבר 2027"},
		{time.Date(2027, 12, 25, 0, 0, 0, 0, loc), "שבת, 25 בדצמבר 2027"},
	}
	for _, tc := range tests {
		got, err := he.longDate(tc.t)
		if err != nil || got != tc.longDate {
			t.Errorf("longDate(%v) = %q, %v; want %q", tc.t, got, err, tc.longDate)
		}
		dt, err := he.dateTime(tc.t)
		want := tc.longDate + ", " + tc.t.Format("15:04")
		if err != nil || dt != want {
			t.Errorf("dateTime(%v) = %q, %v; want %q", tc.t, dt, err, want)
		}
	}
}

func TestEnglishDates(t *testing.T) {
	loc := jerusalem(t)
	en := formatter{lang: LangEnglish, loc: loc}
	// SPEC §7's dates, given in UTC: shown in the calendar's zone.
	resp := time.Date(2026, 11, 30, 8, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		fn   func(time.Time) (string, error)
		t    time.Time
		want string
	}{
		{"longDate", en.longDate, resp, "Monday 30 November 2026"},
		{"dateTime", en.dateTime, resp, "Monday 30 November 2026, 10:30"},
		{"dateTime", en.dateTime, time.Date(2026, 12, 1, 7, 30, 0, 0, time.UTC), "Tuesday 1 December 2026, 09:30"},
		{"time", en.timeOfDay, resp, "10:30"},
		{"time 24h", en.timeOfDay, time.Date(2026, 11, 30, 21, 5, 0, 0, time.UTC), "23:05"},
		{"shortDate", en.shortDate, resp, "30 Nov 2026"},
		{"monthYear", en.monthYear, resp, "November 2026"},
		{"weekday", en.weekday, resp, "Monday"},
		// Across midnight: 22:30 UTC on the 30th is 1 December in Jerusalem.
		{"zone changes the date", en.longDate, time.Date(2026, 11, 30, 22, 30, 0, 0, time.UTC), "Tuesday 1 December 2026"},
		// Summer time (UTC+3).
		{"DST", en.dateTime, time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC), "Wednesday 1 July 2026, 10:00"},
	}
	for _, tc := range tests {
		got, err := tc.fn(tc.t)
		if err != nil || got != tc.want {
			t.Errorf("%s(%v) = %q, %v; want %q", tc.name, tc.t, got, err, tc.want)
		}
	}
	he := formatter{lang: LangHebrew, loc: loc}
	for _, tc := range []struct {
		fn   func(time.Time) (string, error)
		want string
	}{
		{he.shortDate, "30/11/2026"},
		{he.monthYear, "נובמבר 2026"},
		{he.weekday, "יום שני"},
	} {
		if got, err := tc.fn(resp); err != nil || got != tc.want {
			t.Errorf("Hebrew = %q, %v; want %q", got, err, tc.want)
		}
	}
}

func TestDateErrors(t *testing.T) {
	noZone := formatter{lang: LangEnglish}
	if _, err := noZone.longDate(time.Now()); err == nil || !strings.Contains(err.Error(), "no time zone") {
		t.Errorf("no zone: err = %v", err)
	}
	f := formatter{lang: LangEnglish, loc: time.UTC}
	if _, err := f.dateTime(time.Time{}); err == nil || !strings.Contains(err.Error(), "zero time") {
		t.Errorf("zero time: err = %v", err)
	}
	if _, err := f.sameMonth(time.Now(), time.Time{}); err == nil {
		t.Error("sameMonth with a zero time succeeded")
	}
}

func TestSameMonthAndDayInZone(t *testing.T) {
	loc := jerusalem(t)
	f := formatter{lang: LangEnglish, loc: loc}
	// 22:30 UTC on 30 November is 00:30 on 1 December in Jerusalem.
	a := time.Date(2026, 11, 30, 22, 30, 0, 0, time.UTC)
	b := time.Date(2026, 12, 1, 9, 0, 0, 0, loc)
	if same, err := f.sameMonth(a, b); err != nil || !same {
		t.Errorf("sameMonth = %v, %v; want true in Jerusalem", same, err)
	}
	if same, err := f.sameDay(a, b); err != nil || !same {
		t.Errorf("sameDay = %v, %v; want true in Jerusalem", same, err)
	}
	if same, _ := (formatter{lang: LangEnglish, loc: time.UTC}).sameMonth(a, b); same {
		t.Error("sameMonth in UTC = true, want false")
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		lang, group string
		v           any
		want        string
	}{
		{LangEnglish, "category", domain.Fault, "fault"},
		{LangEnglish, "categoryLong", domain.IMAC, "IMAC request (install, move, add or change)"},
		{LangHebrew, "category", domain.Fault, "תקלה"},
		{LangHebrew, "category", domain.Request, "בקשה"},
		{LangHebrew, "categoryLong", domain.IMAC, "בקשת IMAC (התקנה/העברה/הוספה/שינוי)"},
		{LangHebrew, "priority", domain.Urgent, "דחופה"},
		{LangHebrew, "priority", domain.High, "גבוהה"},
		{LangHebrew, "priority", domain.Normal, "רגילה"},
		{LangHebrew, "priority", domain.Low, "נמוכה"},
		{LangHebrew, "priority", "high", "גבוהה"},
		{LangHebrew, "deadline", ResolutionDeadline, "פתרון"},
		{LangHebrew, "status", domain.StatusPending, "ממתינה ללקוח"},
		{LangEnglish, "status", domain.StatusPending, "pending on the customer"},
	}
	for _, tc := range tests {
		got, err := formatter{lang: tc.lang}.label(tc.group)(tc.v)
		if err != nil || got != tc.want {
			t.Errorf("%s %s(%v) = %q, %v; want %q", tc.lang, tc.group, tc.v, got, err, tc.want)
		}
	}
	// Every category and priority has a label in every language.
	for _, lang := range Languages() {
		f := formatter{lang: lang}
		for _, c := range domain.Categories {
			for _, g := range []string{"category", "categoryLong"} {
				if _, err := f.label(g)(c); err != nil {
					t.Errorf("%s %s(%s): %v", lang, g, c, err)
				}
			}
		}
		for _, p := range domain.Priorities {
			if _, err := f.label("priority")(p); err != nil {
				t.Errorf("%s priority(%s): %v", lang, p, err)
			}
		}
		for _, s := range []domain.Status{domain.StatusOpen, domain.StatusPending, domain.StatusResolved, domain.StatusClosed} {
			if _, err := f.label("status")(s); err != nil {
				t.Errorf("%s status(%s): %v", lang, s, err)
			}
		}
	}
	if _, err := (formatter{lang: LangEnglish}).label("priority")(42); err == nil {
		t.Error("a label of an int succeeded")
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  plain  ", "plain"},
		{"Dana\r\nBcc: x@y", "Dana Bcc: x@y"},
		{"a\tb\x00c\x1bd", "a b c d"},
		{"line\u2028sep\u2029para\u0085nel", "line sep para nel"},
		{"rlo\u202eevil\u202c \u2066iso\u2069", "rloevil iso"},
		{"\ufeffbom", "bom"},
		{"keep \u200emarks\u200f", "keep \u200emarks\u200f"},
		{"bad \xff byte", "bad \ufffd byte"},
		{"עובד   חדש\n", "עובד חדש"},
	}
	for _, tc := range tests {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanSubject(t *testing.T) {
	tests := []struct{ in, lang, want string }{
		{"[ACME-0042] Received: x\r\n", LangEnglish, "[ACME-0042] Received: x"},
		{"\u200e[ACME-0042]\u200e התקבלה", LangHebrew, "\u200f\u200e[ACME-0042]\u200e התקבלה"},
		{"התקבלה", LangHebrew, "התקבלה"},
		{"   ", LangHebrew, ""},
		{strings.Repeat("ab ", 200), LangEnglish, strings.Repeat("ab ", 66) + "a…"},
	}
	for _, tc := range tests {
		if got := cleanSubject(tc.in, tc.lang); got != tc.want {
			t.Errorf("cleanSubject(%q, %s) = %q, want %q", tc.in, tc.lang, got, tc.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, lang, want string }{
		{"\n\nHello  \r\n\r\n\r\n\nWorld\t\n\n", LangEnglish, "Hello\n\nWorld\n"},
		{"a\x00b\x07c\u202ed\n  indented\n", LangEnglish, "abcd\n  indented\n"},
		{"שלום\nACME Ltd\n\n  \u200eACME\u200e\n", LangHebrew, "שלום\n\u200fACME Ltd\n\n\u200f  \u200eACME\u200e\n"},
		{"", LangEnglish, ""},
	}
	for _, tc := range tests {
		if got := cleanText(tc.in, tc.lang); got != tc.want {
			t.Errorf("cleanText(%q, %s) = %q, want %q", tc.in, tc.lang, got, tc.want)
		}
	}
}

func TestBidiIslands(t *testing.T) {
	he := formatter{lang: LangHebrew}
	en := formatter{lang: LangEnglish}
	tests := []struct {
		name string
		got  any
		want string
	}{
		{"he ltr", he.textLTR("[ACME-0042]"), "\u200e[ACME-0042]\u200e"},
		{"en ltr", en.textLTR("[ACME-0042]"), "[ACME-0042]"},
		{"he bidi latin", he.textBidi("Dana Levi"), "\u200eDana Levi\u200e"},
		{"he bidi hebrew", he.textBidi("יוסי כהן"), "יוסי כהן"},
		{"he bidi digits", he.textBidi("12345"), "12345"},
		{"en bidi hebrew", en.textBidi("יוסי כהן"), "יוסי כהן\u200e"},
		{"he html ltr", string(he.htmlLTR("a<b>@c")), `<span dir="ltr">a&lt;b&gt;@c</span>&lrm;`},
		{"en html ltr", string(en.htmlLTR("a<b>")), `a&lt;b&gt;`},
		{"he html bidi latin", string(he.htmlBidi("Dana & Co")), `<span dir="ltr">Dana &amp; Co</span>&lrm;`},
		{"en html bidi hebrew", string(en.htmlBidi("יוסי")), `<span dir="rtl">יוסי</span>&lrm;`},
		{"he address", he.textAddress(domain.Address{Name: "Dana", Addr: "d@x.example"}), "\u200eDana\u200e \u200e<d@x.example>\u200e"},
		{"en address", en.textAddress(domain.Address{Name: "Dana", Addr: "d@x.example"}), "Dana <d@x.example>"},
		{"en address no name", en.textAddress(domain.Address{Addr: "d@x.example"}), "d@x.example"},
		{"he address no name", he.textAddress(domain.Address{Addr: "d@x.example"}), "\u200ed@x.example\u200e"},
		{"he html address", string(he.htmlAddress(domain.Address{Name: "יוסי", Addr: "y@x.example"})), `יוסי <span dir="ltr">&lt;y@x.example&gt;</span>&lrm;`},
		{"en addresses", en.textAddresses([]domain.Address{{Addr: "a@x"}, {Name: "B", Addr: "b@x"}}), "a@x, B <b@x>"},
		{"island strips controls", he.textLTR("x\r\ny\u202e"), "\u200ex y\u200e"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestReplySubject(t *testing.T) {
	for in, want := range map[string]string{
		"Printer":         "Re: Printer",
		"RE: Printer":     "RE: Printer",
		"re:Printer":      "re:Printer",
		"AW: Drucker":     "AW: Drucker",
		"Regarding money": "Re: Regarding money",
	} {
		if got := replySubject(in); got != want {
			t.Errorf("replySubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncateRunes(t *testing.T) {
	if got := truncateRunes("שלום עולם", 20); got != "שלום עולם" {
		t.Errorf("short string changed: %q", got)
	}
	if got := truncateRunes("שלום עולם", 6); got != "שלום…" {
		t.Errorf("truncateRunes = %q, want %q", got, "שלום…")
	}
}

func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", hostile, "עובד\u2028חדש", "\xff", "\u202e\u2066x",
		" a b ", "a  b", "\u00a0a\u0085", "a\u200f b\u202e", "\ufeffa\ufeff", "x\xe2\x80", "\xe2\u2028", "a \tb", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := oneLine(s)
		// The fast path (a slice of s) agrees with building the line.
		if want := buildOneLine(s); got != want {
			t.Errorf("oneLine(%q) = %q, buildOneLine = %q", s, got, want)
		}
		if d, want := direction(s), directionRef(s); d != want {
			t.Errorf("direction(%q) = %c, want %c", s, d, want)
		}
		if got, want := needsTextRune(s), strings.Map(textRune, s) != s; got != want {
			t.Errorf("needsTextRune(%q) = %v, want %v", s, got, want)
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Errorf("oneLine(%q) = %q: untrimmed or doubled spaces", s, got)
		}
		for _, r := range got {
			if isBreak(r) && r != ' ' || isStripped(r) {
				t.Errorf("oneLine(%q) = %q keeps %U", s, got, r)
			}
		}
		if oneLine(got) != got {
			t.Errorf("oneLine is not idempotent on %q", s)
		}
		cs := cleanSubject(s, LangHebrew)
		if n := len([]rune(cs)); n > MaxSubjectRunes {
			t.Errorf("cleanSubject has %d runes", n)
		}
		if cs != "" && !startsRTL(cs) {
			t.Errorf("Hebrew subject %q does not start right to left", cs)
		}
	})
}

// directionRef is direction without its ASCII shortcut.
func directionRef(s string) byte {
	for _, r := range s {
		switch {
		case r == '\u200F' || r == '\u061C':
			return 'R'
		case r == '\u200E':
			return 'L'
		case unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko) && unicode.IsLetter(r):
			return 'R'
		case unicode.IsLetter(r):
			return 'L'
		}
	}
	return 0
}

// TestDatesMatchFmt compares the date functions with the fmt formats they
// replaced, across two years of times in two zones and a few odd years.
func TestDatesMatchFmt(t *testing.T) {
	ref := func(f formatter, t time.Time) map[string]string {
		t = t.In(f.loc)
		long := fmt.Sprintf("%s %d %s %d", t.Weekday(), t.Day(), t.Month(), t.Year())
		short := fmt.Sprintf("%d %s %d", t.Day(), t.Month().String()[:3], t.Year())
		month := fmt.Sprintf("%s %d", t.Month(), t.Year())
		if f.lang == LangHebrew {
			long = fmt.Sprintf("%s, %d ב%s %d", hebrewWeekdays[t.Weekday()], t.Day(), hebrewMonths[t.Month()-1], t.Year())
			short = fmt.Sprintf("%02d/%02d/%d", t.Day(), int(t.Month()), t.Year())
			month = fmt.Sprintf("%s %d", hebrewMonths[t.Month()-1], t.Year())
		}
		clock := fmt.Sprintf("%02d:%02d", t.Hour(), t.Minute())
		return map[string]string{"longDate": long, "dateTime": long + ", " + clock, "time": clock, "shortDate": short, "monthYear": month}
	}
	times := []time.Time{
		time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC),
		time.Date(999, 2, 3, 4, 5, 0, 0, time.UTC),
		time.Date(12345, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	for at := time.Date(2026, 1, 1, 0, 7, 0, 0, time.UTC); at.Year() < 2028; at = at.Add(7*time.Hour + 13*time.Minute) {
		times = append(times, at)
	}
	for _, loc := range []*time.Location{jerusalem(t), time.FixedZone("X", -(9*60+30)*60)} {
		for _, lang := range Languages() {
			f := formatter{lang: lang, loc: loc}
			fns := map[string]func(time.Time) (string, error){
				"longDate": f.longDate, "dateTime": f.dateTime, "time": f.timeOfDay, "shortDate": f.shortDate, "monthYear": f.monthYear,
			}
			for _, at := range times {
				for name, want := range ref(f, at) {
					if got, err := fns[name](at); err != nil || got != want {
						t.Fatalf("%s %s(%v in %v) = %q, %v; want %q", lang, name, at, loc, got, err, want)
					}
				}
			}
		}
	}
}
