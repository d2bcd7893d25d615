package notify

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/northwind-it/ticketgw/domain"
)

// Bidi marks (LIBNOTES §7).
const (
	lrm = "\u200E" // LEFT-TO-RIGHT MARK
	rlm = "\u200F" // RIGHT-TO-LEFT MARK
)

// errNoZone is returned by the date functions when the template data carries
// no time zone: showing a date in the wrong zone is the one mistake an
// acknowledgement must never make.
var errNoZone = errors.New("template data carries no time zone (Base.Loc is nil)")

var (
	hebrewWeekdays = [7]string{"יום ראשון", "יום שני", "יום שלישי", "יום רביעי", "יום חמישי", "יום שישי", "שבת"}
	hebrewMonths   = [12]string{"ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי", "אוגוסט", "ספטמבר", "אוקטובר", "נובמבר", "דצמבר"}
)

// formatter renders dates, labels and bidi islands for one language and one
// time zone. A fresh one is bound to the templates at every Render.
type formatter struct {
	lang string
	loc  *time.Location
}

func (f formatter) in(t time.Time) (time.Time, error) {
	if f.loc == nil {
		return time.Time{}, errNoZone
	}
	if t.IsZero() {
		return time.Time{}, errors.New("format a zero time (guard it with {{if not .Field.IsZero}})")
	}
	return t.In(f.loc), nil
}

// longDate formats the date of t in the formatter's zone: "Monday 30
// November 2026" or "יום שני, 30 בנובמבר 2026".
func (f formatter) longDate(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	return f.longDateIn(t), nil
}

func (f formatter) longDateIn(t time.Time) string {
	if f.lang == LangHebrew {
		return fmt.Sprintf("%s, %d ב%s %d", hebrewWeekdays[t.Weekday()], t.Day(), hebrewMonths[t.Month()-1], t.Year())
	}
	return fmt.Sprintf("%s %d %s %d", t.Weekday(), t.Day(), t.Month(), t.Year())
}

// dateTime is longDate followed by the 24-hour time: "Monday 30 November
// 2026, 10:30" or "יום שני, 30 בנובמבר 2026, 10:30".
func (f formatter) dateTime(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	return f.longDateIn(t) + ", " + clock(t), nil
}

// timeOfDay is the 24-hour wall-clock time, "09:30".
func (f formatter) timeOfDay(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	return clock(t), nil
}

func clock(t time.Time) string { return fmt.Sprintf("%02d:%02d", t.Hour(), t.Minute()) }

// shortDate is "30/11/2026" in Hebrew and "30 Nov 2026" in English (a
// numeric English date would be read differently in the US and the UK).
func (f formatter) shortDate(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	if f.lang == LangHebrew {
		return fmt.Sprintf("%02d/%02d/%d", t.Day(), int(t.Month()), t.Year()), nil
	}
	return fmt.Sprintf("%d %s %d", t.Day(), t.Month().String()[:3], t.Year()), nil
}

// monthYear is "December 2026" or "דצמבר 2026".
func (f formatter) monthYear(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	if f.lang == LangHebrew {
		return fmt.Sprintf("%s %d", hebrewMonths[t.Month()-1], t.Year()), nil
	}
	return fmt.Sprintf("%s %d", t.Month(), t.Year()), nil
}

// weekday is "Tuesday" or "יום שלישי".
func (f formatter) weekday(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	if f.lang == LangHebrew {
		return hebrewWeekdays[t.Weekday()], nil
	}
	return t.Weekday().String(), nil
}

// sameMonth reports whether a and b fall in the same calendar month of the
// formatter's zone.
func (f formatter) sameMonth(a, b time.Time) (bool, error) {
	a, err := f.in(a)
	if err != nil {
		return false, err
	}
	b, err = f.in(b)
	if err != nil {
		return false, err
	}
	return a.Year() == b.Year() && a.Month() == b.Month(), nil
}

// sameDay reports whether a and b fall on the same date of the formatter's
// zone.
func (f formatter) sameDay(a, b time.Time) (bool, error) {
	a, err := f.in(a)
	if err != nil {
		return false, err
	}
	b, err = f.in(b)
	if err != nil {
		return false, err
	}
	return a.Year() == b.Year() && a.YearDay() == b.YearDay(), nil
}

// labelString accepts domain.Category, domain.Priority, domain.Status,
// DeadlineKind or a plain string, so that templates may pass either a field
// or a literal.
func labelString(v any) (string, error) {
	switch v := v.(type) {
	case domain.Category:
		return string(v), nil
	case domain.Priority:
		return string(v), nil
	case DeadlineKind:
		return string(v), nil
	case domain.Status:
		return string(v), nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("want a category, priority or string, got %T", v)
	}
}

var labels = map[string]map[string]string{
	LangEnglish: {
		"category:fault":       "fault",
		"category:request":     "request",
		"category:imac":        "IMAC",
		"categoryLong:fault":   "fault",
		"categoryLong:request": "service request",
		"categoryLong:imac":    "IMAC request (install, move, add or change)",
		"priority:urgent":      "urgent",
		"priority:high":        "high",
		"priority:normal":      "normal",
		"priority:low":         "low",
		"deadline:response":    "response",
		"deadline:resolution":  "resolution",
		"status:open":          "open",
		"status:pending":       "pending on the customer",
		"status:resolved":      "resolved",
		"status:closed":        "closed",
	},
	LangHebrew: {
		"category:fault":       "תקלה",
		"category:request":     "בקשה",
		"category:imac":        "IMAC",
		"categoryLong:fault":   "תקלה",
		"categoryLong:request": "בקשה",
		"categoryLong:imac":    "בקשת IMAC (התקנה/העברה/הוספה/שינוי)",
		"priority:urgent":      "דחופה",
		"priority:high":        "גבוהה",
		"priority:normal":      "רגילה",
		"priority:low":         "נמוכה",
		"deadline:response":    "תגובה",
		"deadline:resolution":  "פתרון",
		"status:open":          "פתוחה",
		"status:pending":       "ממתינה ללקוח",
		"status:resolved":      "נפתרה",
		"status:closed":        "סגורה",
	},
}

// label returns the localized label of a category, priority or deadline kind.
// An unknown value is an error rather than a blank: the template data is
// wrong and the message would read badly.
func (f formatter) label(group string) func(any) (string, error) {
	return func(v any) (string, error) {
		s, err := labelString(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", group, err)
		}
		l, ok := labels[f.lang][group+":"+s]
		if !ok {
			return "", fmt.Errorf("%s: unknown value %q", group, s)
		}
		return l, nil
	}
}

// direction is the bidi direction of a string taken from its first strong
// character: 'R' for Hebrew or Arabic letters, 'L' for other letters, 0 for a
// string without letters (digits, punctuation).
func direction(s string) byte {
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

// langDirection is the base direction of a template language.
func langDirection(lang string) byte {
	if lang == LangHebrew {
		return 'R'
	}
	return 'L'
}

// textLTR makes s a left-to-right island in a Hebrew text line (U+200E on
// both sides); in English it is s unchanged. s is reduced to one line first.
func (f formatter) textLTR(s string) string {
	s = oneLine(s)
	if f.lang != LangHebrew || s == "" {
		return s
	}
	return lrm + s + lrm
}

// textBidi isolates s only when its own direction differs from the
// language's: a Latin name in Hebrew text, a Hebrew name in English text.
func (f formatter) textBidi(s string) string {
	s = oneLine(s)
	d := direction(s)
	switch {
	case d == 0 || d == langDirection(f.lang):
		return s
	case d == 'L':
		return lrm + s + lrm
	default:
		return s + lrm
	}
}

// htmlLTR is the HTML form of textLTR: <span dir="ltr">s</span>&lrm; in
// Hebrew, escaped s in English.
func (f formatter) htmlLTR(s string) htmltemplate.HTML {
	s = oneLine(s)
	if f.lang != LangHebrew || s == "" {
		return htmltemplate.HTML(htmltemplate.HTMLEscapeString(s))
	}
	return htmltemplate.HTML(`<span dir="ltr">` + htmltemplate.HTMLEscapeString(s) + `</span>&lrm;`)
}

// htmlBidi is the HTML form of textBidi.
func (f formatter) htmlBidi(s string) htmltemplate.HTML {
	s = oneLine(s)
	esc := htmltemplate.HTMLEscapeString(s)
	d := direction(s)
	switch {
	case d == 0 || d == langDirection(f.lang):
		return htmltemplate.HTML(esc)
	case d == 'L':
		return htmltemplate.HTML(`<span dir="ltr">` + esc + `</span>&lrm;`)
	default:
		return htmltemplate.HTML(`<span dir="rtl">` + esc + `</span>&lrm;`)
	}
}

// textAddress shows a mailbox as `Name <addr>` (the address alone when
// there is no name), with bidi islands as textBidi and textLTR place them.
func (f formatter) textAddress(a domain.Address) string {
	name, addr := f.textBidi(a.Name), oneLine(a.Addr)
	switch {
	case addr == "":
		return name
	case name == "":
		return f.textLTR(addr)
	}
	return name + " " + f.textLTR("<"+addr+">")
}

func (f formatter) textAddresses(as []domain.Address) string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, f.textAddress(a))
	}
	return strings.Join(out, ", ")
}

// htmlAddress is the HTML form of textAddress.
func (f formatter) htmlAddress(a domain.Address) htmltemplate.HTML {
	name := f.htmlBidi(a.Name)
	addr := oneLine(a.Addr)
	switch {
	case addr == "":
		return name
	case name == "":
		return f.htmlLTR(addr)
	}
	return name + " " + f.htmlLTR("<"+addr+">")
}

func (f formatter) htmlAddresses(as []domain.Address) htmltemplate.HTML {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, string(f.htmlAddress(a)))
	}
	return htmltemplate.HTML(strings.Join(out, ", "))
}

// isStripped reports the characters removed from single-line values: bidi
// embeddings, overrides and isolates (a customer must not be able to reorder
// our text around theirs), the byte-order mark and other invisible format
// characters that are no use in a subject. LRM, RLM and ALM stay.
func isStripped(r rune) bool {
	switch {
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069', r == '\uFEFF':
		return true
	}
	return false
}

// isBreak reports characters that become a single space in a one-line
// value: every control character (CR, LF, NUL, C1 controls such as NEL),
// line and paragraph separators, and white space.
func isBreak(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.IsSpace(r)
}

// oneLine reduces s to a single trimmed line: control characters and runs of
// white space become one space, bidi controls are removed, invalid UTF-8
// becomes U+FFFD. This is what makes a customer's subject or display name
// safe in a header and in a text part.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case isStripped(r):
			continue
		case isBreak(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r) // RuneError for invalid bytes
	}
	return b.String()
}

// truncateRunes cuts s to at most n runes, ending with "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n-1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return strings.TrimRightFunc(s[:i], unicode.IsSpace) + "…"
}

// replySubject prefixes "Re: " unless s already starts with a reply prefix.
func replySubject(s string) string {
	s = oneLine(s)
	l := strings.ToLower(s)
	for _, p := range []string{"re:", "aw:", "sv:", "השב:", "תשובה:"} {
		if strings.HasPrefix(l, p) {
			return s
		}
	}
	return "Re: " + s
}

// startsRTL reports whether a line starts with a right-to-left letter or an
// RLM, so that a mail client guessing the direction from the first strong
// character lays it out right to left (LIBNOTES §7).
func startsRTL(line string) bool {
	r, _ := utf8.DecodeRuneInString(line)
	if r == '\u200F' {
		return true
	}
	return unicode.IsLetter(r) && unicode.In(r, unicode.Hebrew, unicode.Arabic)
}

// funcs is the function map shared by the text and HTML templates; ltr and
// bidi differ between them (see textFuncs and htmlFuncs).
func (f formatter) funcs() map[string]any {
	return map[string]any{
		"longDate":     f.longDate,
		"dateTime":     f.dateTime,
		"time":         f.timeOfDay,
		"shortDate":    f.shortDate,
		"monthYear":    f.monthYear,
		"weekday":      f.weekday,
		"sameMonth":    f.sameMonth,
		"sameDay":      f.sameDay,
		"category":     f.label("category"),
		"categoryLong": f.label("categoryLong"),
		"priority":     f.label("priority"),
		"deadline":     f.label("deadline"),
		"status":       f.label("status"),
		"oneLine":      oneLine,
		"re":           replySubject,
		"lang":         func() string { return f.lang },
	}
}

func (f formatter) textFuncs() map[string]any {
	m := f.funcs()
	m["ltr"] = f.textLTR
	m["bidi"] = f.textBidi
	m["address"] = f.textAddress
	m["addresses"] = f.textAddresses
	return m
}

func (f formatter) htmlFuncs() map[string]any {
	m := f.funcs()
	m["ltr"] = f.htmlLTR
	m["bidi"] = f.htmlBidi
	m["address"] = f.htmlAddress
	m["addresses"] = f.htmlAddresses
	return m
}
