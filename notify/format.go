package notify

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strconv"
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
	var buf [64]byte
	return string(f.appendLongDate(buf[:0], t)), nil
}

// The date functions append to a stack buffer and convert once: they run
// a few dozen times per message, and fmt cost an allocation per argument.

func (f formatter) appendLongDate(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	if f.lang == LangHebrew {
		b = append(b, hebrewWeekdays[t.Weekday()]...)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, " ב"...)
		b = append(b, hebrewMonths[m-1]...)
	} else {
		b = append(b, t.Weekday().String()...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, ' ')
		b = append(b, m.String()...)
	}
	b = append(b, ' ')
	return strconv.AppendInt(b, int64(y), 10)
}

// appendClock appends the 24-hour wall-clock time of t, "09:30".
func appendClock(b []byte, t time.Time) []byte {
	hh, mm, _ := t.Clock()
	return append(b, byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10))
}

// append2 appends n (0 to 99) as two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// dateTime is longDate followed by the 24-hour time: "Monday 30 November
// 2026, 10:30" or "יום שני, 30 בנובמבר 2026, 10:30".
func (f formatter) dateTime(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	var buf [64]byte
	b := append(f.appendLongDate(buf[:0], t), ", "...)
	return string(appendClock(b, t)), nil
}

// timeOfDay is the 24-hour wall-clock time, "09:30".
func (f formatter) timeOfDay(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	var buf [8]byte
	return string(appendClock(buf[:0], t)), nil
}

// shortDate is "30/11/2026" in Hebrew and "30 Nov 2026" in English (a
// numeric English date would be read differently in the US and the UK).
func (f formatter) shortDate(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	y, m, d := t.Date()
	var buf [32]byte
	var b []byte
	if f.lang == LangHebrew {
		b = append(append2(buf[:0], d), '/')
		b = append(append2(b, int(m)), '/')
	} else {
		b = append(strconv.AppendInt(buf[:0], int64(d), 10), ' ')
		b = append(append(b, m.String()[:3]...), ' ')
	}
	return string(strconv.AppendInt(b, int64(y), 10)), nil
}

// monthYear is "December 2026" or "דצמבר 2026".
func (f formatter) monthYear(t time.Time) (string, error) {
	t, err := f.in(t)
	if err != nil {
		return "", err
	}
	y, m, _ := t.Date()
	var buf [32]byte
	var b []byte
	if f.lang == LangHebrew {
		b = append(buf[:0], hebrewMonths[m-1]...)
	} else {
		b = append(buf[:0], m.String()...)
	}
	b = append(b, ' ')
	return string(strconv.AppendInt(b, int64(y), 10)), nil
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
	ay, am, _ := a.Date()
	by, bm, _ := b.Date()
	return ay == by && am == bm, nil
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
		if r < utf8.RuneSelf { // ASCII: only a-z and A-Z are letters
			if 'a' <= r|0x20 && r|0x20 <= 'z' {
				return 'L'
			}
			continue
		}
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
	if line, ok := alreadyOneLine(s); ok {
		return line
	}
	return buildOneLine(s)
}

// buildOneLine is oneLine for a value that needs more than trimming.
func buildOneLine(s string) string {
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

// alreadyOneLine returns oneLine(s) and true when that is s without its
// leading and trailing breaks and stripped characters, as it is for almost
// every value: a slice of s, without building a copy.
func alreadyOneLine(s string) (string, bool) {
	start, end := 0, len(s)
	for start < end {
		r, n := utf8.DecodeRuneInString(s[start:end])
		if !isStripped(r) && !isBreak(r) {
			break
		}
		start += n
	}
	for end > start {
		r, n := utf8.DecodeLastRuneInString(s[start:end])
		if !isStripped(r) && !isBreak(r) {
			break
		}
		end -= n
	}
	space := false // the previous byte is a space
	for i := start; i < end; {
		if c := s[i]; c < utf8.RuneSelf {
			switch {
			case c == ' ' && space, c < ' ', c == 0x7F: // a run of spaces, a control (\t\n\r included)
				return "", false
			}
			space = c == ' '
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:end])
		if r == utf8.RuneError && n == 1 || isStripped(r) || isBreak(r) {
			return "", false
		}
		space = false
		i += n
	}
	return s[start:end], true
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
