package conversation

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// StripQuotedSummary removes the gateway's ticket summary block (the text
// that notify's forward.*.txt.tmpl puts before a customer's message in the
// staff forward) from the text of a staff reply, so that the customer does
// not see it in the relayed reply. The staff member's own text and any quote
// of the customer's words stay as they are.
//
// The summary is recognised by its structure, in English and Hebrew, at any
// quote depth ('>' quoting by Gmail, Apple Mail and Thunderbird, none below
// an Outlook "From:/Sent:" header block):
//
//   - as the text template writes it: a headline, a rule of dashes, a
//     "Ticket: ACME-0042" / "קריאה: ACME-0042" line, field lines, a second
//     rule of dashes, the instructions, and a rule of '=' signs;
//   - as a client renders the HTML summary to text (rules missing): a
//     headline naming the ticket, a "Ticket"/"קריאה" label and the same id,
//     ended by the instructions ("Reply to this message to answer the
//     customer. ..." / "כדי לענות ללקוח יש להשיב להודעה זו. ...").
//
// All lines of a block share one quote depth. A blank quoted line right after
// the block goes with it. When nothing is left of that quote (the forward
// carried only the summary), the attribution line above it ("On ... wrote:",
// "בתאריך ... מאת ...:") or Outlook's header block and separator go too.
// Anything that does not match exactly is kept: with templates overridden in
// templates.dir, or an edited quote, the reply is relayed as written.
func StripQuotedSummary(text string) string {
	lines := splitQuoted(text)
	if len(lines) == 0 {
		return text
	}
	removed := make([]bool, len(lines))
	var blocks [][3]int // start, end (inclusive), depth
	for i := 0; i < len(lines); i++ {
		if removed[i] {
			continue
		}
		s, e, ok := matchRuledSummary(lines, i)
		if !ok {
			s, e, ok = matchRenderedSummary(lines, i)
		}
		if !ok {
			continue
		}
		for x := s; x <= e; x++ {
			removed[x] = true
		}
		blocks = append(blocks, [3]int{s, e, lines[s].depth})
		i = e
	}
	if len(blocks) == 0 {
		return text
	}
	for _, b := range blocks {
		dropEmptyQuote(lines, removed, b[0], b[1], b[2])
	}

	// Blank lines that the removal left at the start or the end go too.
	firstKept, firstRemoved := len(lines), len(lines)
	lastKept, lastRemoved := -1, -1
	for i, l := range lines {
		switch {
		case removed[i]:
			firstRemoved = min(firstRemoved, i)
			lastRemoved = i
		case !l.blank() || l.depth > 0:
			firstKept = min(firstKept, i)
			lastKept = i
		}
	}
	var out strings.Builder
	for i, l := range lines {
		if removed[i] || firstRemoved < firstKept && i < firstKept || lastRemoved > lastKept && i > lastKept {
			continue
		}
		out.WriteString(l.raw)
	}
	res := out.String()
	if lastRemoved > lastKept {
		res = strings.TrimRightFunc(res, unicode.IsSpace)
		if res != "" && strings.HasSuffix(text, "\n") {
			res += lineEnding(text)
		}
	}
	return res
}

// qline is one line of a reply's text (or of its HTML, see
// StripQuotedSummaryHTML).
type qline struct {
	raw     string // as written, with its line ending
	depth   int    // number of '>' quote markers
	norm    string // content after the markers, invisible marks removed, trimmed
	content bool   // HTML only: the line shows an image or other non-text content
}

// blank reports whether the line shows nothing.
func (l qline) blank() bool { return l.norm == "" && !l.content }

// splitQuoted splits text into lines and reads their quote depth.
func splitQuoted(text string) []qline {
	var lines []qline
	for pos := 0; pos < len(text); {
		end := strings.IndexByte(text[pos:], '\n')
		next := len(text)
		if end >= 0 {
			next = pos + end + 1
		}
		raw := text[pos:next]
		depth, content := quoteDepth(strings.TrimRight(raw, "\r\n"))
		lines = append(lines, qline{raw: raw, depth: depth, norm: normQuoted(content)})
		pos = next
	}
	return lines
}

// quoteDepth counts the leading '>' markers of a line ("> > x", ">>x") and
// returns the content after them. White space and bidi marks may precede
// and separate the markers.
func quoteDepth(s string) (int, string) {
	depth, i := 0, 0
	for {
		j := skipBlank(s, i)
		if j < len(s) && s[j] == '>' {
			depth++
			i = j + 1
			continue
		}
		if depth == 0 {
			return 0, s
		}
		return depth, s[i:]
	}
}

// normQuoted removes invisible marks and surrounding white space.
func normQuoted(s string) string {
	if strings.IndexFunc(s, isInvisible) >= 0 {
		s = strings.Map(func(r rune) rune {
			if isInvisible(r) {
				return -1
			}
			return r
		}, s)
	}
	return strings.TrimFunc(s, unicode.IsSpace)
}

func lineEnding(text string) string {
	if strings.Contains(text, "\r\n") {
		return "\r\n"
	}
	return "\n"
}

// Limits of a summary block: the template has about 20 lines; a client that
// renders the HTML summary may spread it over twice as many.
const (
	maxRuledLines    = 80
	maxRenderedLines = 80
)

// matchRuledSummary matches the text template's block whose first rule of
// dashes is lines[i]; it returns the block's first and last line.
func matchRuledSummary(lines []qline, i int) (start, end int, ok bool) {
	d := lines[i].depth
	if !isRule(lines[i].norm, '-') {
		return 0, 0, false
	}
	// The ticket line follows the rule (a client may have wrapped the rule,
	// leaving a short run of dashes on the next line).
	j := i + 1
	for j < len(lines) && j <= i+2 && lines[j].depth == d && isRuleFragment(lines[j].norm, '-') {
		j++
	}
	if j >= len(lines) || lines[j].depth != d {
		return 0, 0, false
	}
	if _, ok := labelledID(lines[j].norm); !ok {
		return 0, 0, false
	}
	end, secondRule := -1, false
	for k := j + 1; k < len(lines) && k <= i+maxRuledLines; k++ {
		if lines[k].depth != d {
			return 0, 0, false
		}
		if isRule(lines[k].norm, '-') {
			secondRule = true
		}
		if isRule(lines[k].norm, '=') {
			end = k
			break
		}
	}
	if end < 0 || !secondRule {
		return 0, 0, false
	}
	for end+1 < len(lines) && lines[end+1].depth == d && isRuleFragment(lines[end+1].norm, '=') {
		end++
	}
	start = i
	for b := i - 1; b >= 0 && b >= i-4; b-- {
		if lines[b].depth != d || lines[b].blank() {
			break
		}
		if isHeadline(lines[b].norm) {
			start = b
			break
		}
	}
	return start, withBlankAfter(lines, end, d), true
}

// matchRenderedSummary matches the summary as a client renders its HTML to
// text, starting at a headline on lines[i]: no rules, ended by the
// instructions.
func matchRenderedSummary(lines []qline, i int) (start, end int, ok bool) {
	d := lines[i].depth
	if !isHeadline(lines[i].norm) {
		return 0, 0, false
	}
	id := firstID(lines[i].norm)
	if id == "" && i+1 < len(lines) && lines[i+1].depth == d {
		id = firstID(lines[i+1].norm) // a wrapped headline
	}
	if id == "" {
		return 0, 0, false
	}
	label, again := false, false
	instr := -1
	for k := i + 1; k < len(lines) && k <= i+maxRenderedLines; k++ {
		if lines[k].depth != d {
			return 0, 0, false
		}
		n := lines[k].norm
		if isInstructions(n) {
			instr = k
			break
		}
		if isTicketLabel(n) {
			label = true
		}
		if containsID(n, id) {
			again = true
		}
	}
	if instr < 0 || !label || !again {
		return 0, 0, false
	}
	end = instr
	if !endsInstructions(lines[instr].norm) {
		for k := instr + 1; k < len(lines) && k <= instr+4; k++ {
			if lines[k].depth != d || lines[k].blank() {
				break
			}
			if endsInstructions(lines[k].norm) {
				end = k
				break
			}
		}
	}
	for end+1 < len(lines) && lines[end+1].depth == d && (isRule(lines[end+1].norm, '=') || isRuleFragment(lines[end+1].norm, '=')) {
		end++
	}
	return i, withBlankAfter(lines, end, d), true
}

// withBlankAfter extends a block by one blank line of the same depth.
func withBlankAfter(lines []qline, end, d int) int {
	if end+1 < len(lines) && lines[end+1].depth == d && lines[end+1].blank() {
		return end + 1
	}
	return end
}

// isRule reports whether s is a rule: 20 or more of c and nothing else.
func isRule(s string, c byte) bool {
	return len(s) >= 20 && strings.Trim(s, string(c)) == ""
}

// isRuleFragment reports whether s is a short run of c, left over when a
// client wrapped a rule.
func isRuleFragment(s string, c byte) bool {
	return s != "" && len(s) < 20 && strings.Trim(s, string(c)) == ""
}

// Anchors of the built-in forward templates (notify/templates/forward.*).
var (
	headlinePrefixes = []string{
		"New ticket ",
		"Follow-up from the customer on ticket ",
		"UNAUTHENTICATED: this message comes from a staff address",
		"קריאה חדשה ",
		"המשך פנייה מהלקוח בקריאה ",
		"לא מאומת: הודעה זו נשלחה מכתובת של הצוות",
	}
	instructionPrefixes = []string{
		"Reply to this message to answer the customer.",
		"כדי לענות ללקוח יש להשיב להודעה זו.",
	}
	ticketLabels = []string{"Ticket", "קריאה"}
)

// isHeadline reports whether s starts a summary headline.
func isHeadline(s string) bool {
	for _, p := range headlinePrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	// "Ticket ACME-0047 was reopened ..." / "קריאה ACME-0047 נפתחה מחדש ..."
	for _, w := range [][2]string{{"Ticket ", "was reopened"}, {"קריאה ", "נפתחה מחדש"}} {
		if rest, ok := strings.CutPrefix(s, w[0]); ok {
			if id, n := readID(rest); id != "" && strings.HasPrefix(strings.TrimSpace(rest[n:]), w[1]) {
				return true
			}
		}
	}
	return false
}

// labelledID matches the summary's ticket line, "Ticket: ACME-0042 (open)"
// or "קריאה: ACME-0042", and returns the id.
func labelledID(s string) (string, bool) {
	for _, l := range ticketLabels {
		if rest, ok := strings.CutPrefix(s, l+":"); ok {
			if id, _ := readID(strings.TrimSpace(rest)); id != "" {
				return id, true
			}
		}
	}
	return "", false
}

// isTicketLabel reports whether a rendered line is the "Ticket" row of the
// HTML summary: the label alone, or followed by white space or a colon.
func isTicketLabel(s string) bool {
	for _, l := range ticketLabels {
		if rest, ok := strings.CutPrefix(s, l); ok {
			r, _ := utf8.DecodeRuneInString(rest)
			if rest == "" || r == ':' || unicode.IsSpace(r) {
				return true
			}
		}
	}
	return false
}

func isInstructions(s string) bool {
	for _, p := range instructionPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// endsInstructions reports whether s ends the instruction sentence, whose
// last item is "#change <text>".
func endsInstructions(s string) bool {
	return strings.HasSuffix(s, "<text>.") || strings.HasSuffix(s, "<text>")
}

// readID reads a ticket id ("ACME-0042", any case) at the start of s and
// returns it in canonical form and its length in bytes.
func readID(s string) (string, int) {
	i := 0
	for i < len(s) && i <= maxTagPrefix && isAlnumASCII(s[i]) {
		i++
	}
	if i == 0 || i > maxTagPrefix || i >= len(s) || s[i] != '-' {
		return "", 0
	}
	j := i + 1
	for j < len(s) && j-i <= maxTagDigits && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	if j == i+1 || (j < len(s) && isAlnumASCII(s[j])) {
		return "", 0
	}
	id := canonicalID(s[:j])
	if id == "" {
		return "", 0
	}
	return id, j
}

// firstID returns the first ticket id in s, or "".
func firstID(s string) string {
	for i := 0; i < len(s); i++ {
		if i > 0 && isAlnumASCII(s[i-1]) {
			continue
		}
		if id, _ := readID(s[i:]); id != "" {
			return id
		}
	}
	return ""
}

// containsID reports whether s names ticket id, in any case or padding.
func containsID(s, id string) bool {
	for i := 0; i < len(s); i++ {
		if i > 0 && isAlnumASCII(s[i-1]) {
			continue
		}
		if got, _ := readID(s[i:]); got == id {
			return true
		}
	}
	return false
}

// dropEmptyQuote removes what is left of a quote whose only content was the
// summary block lines[s..e] at depth d: the blank lines after the block, and
// the attribution ("On ... wrote:") or Outlook header block above it.
func dropEmptyQuote(lines []qline, removed []bool, s, e, d int) {
	var trailing []int
	for x := e + 1; x < len(lines); x++ {
		if removed[x] {
			continue
		}
		if d > 0 && lines[x].depth < d {
			break
		}
		if !lines[x].blank() {
			return // the quote goes on: the customer's words
		}
		trailing = append(trailing, x)
	}
	for _, x := range trailing {
		removed[x] = true
	}
	// Blank lines between the attribution and the block.
	b := s - 1
	var gap []int
	for b >= 0 && (removed[b] || lines[b].blank() && lines[b].depth >= max(d-1, 0)) && len(gap) < 3 {
		if !removed[b] {
			gap = append(gap, b)
		}
		b--
	}
	if b < 0 {
		return
	}
	var attr []int
	switch {
	case d > 0 && lines[b].depth == d:
		// Apple Mail quotes its attribution with the message.
		attr = attributionAt(lines, b, d)
	case d > 0:
		attr = attributionAt(lines, b, d-1)
	default:
		attr = outlookHeaderAt(lines, b)
	}
	if len(attr) == 0 {
		return
	}
	for _, x := range append(attr, gap...) {
		removed[x] = true
	}
}

// attribution words: the verb of "On ... X wrote:" in the languages of our
// users' clients.
var attributionWords = []string{
	"wrote", "schrieb", "écrit", "escribió", "scritto", "schreef", "napisał", "skrev", "kirjoitti", "написал",
	"כתב", "כתבה", "mailto:",
}

// attributionOpeners start an attribution that a client wrapped.
var attributionOpeners = []string{"On ", "Am ", "Le ", "El ", "Il ", "Op ", "W dniu ", "Den ", "בתאריך ", "ב-", "ב־"}

// attributionAt returns the lines of the attribution ending at lines[b]
// (depth d): one line ending with ':' that names an address or says
// "wrote", or two when the client wrapped it.
func attributionAt(lines []qline, b, d int) []int {
	l := lines[b]
	if l.depth != d || !strings.HasSuffix(l.norm, ":") {
		return nil
	}
	text := l.norm
	out := []int{b}
	if !hasAnyPrefix(l.norm, attributionOpeners) && b > 0 && lines[b-1].depth == d && hasAnyPrefix(lines[b-1].norm, attributionOpeners) {
		text = lines[b-1].norm + " " + text
		out = append(out, b-1)
	}
	if !strings.Contains(text, "@") && !containsAny(strings.ToLower(text), attributionWords) {
		return nil
	}
	return out
}

// Outlook's reply header: field names in English, Hebrew, German, French.
var (
	outlookFrom   = []string{"From:", "מאת:", "Von:", "De :", "De:"}
	outlookFields = []string{
		"From:", "Sent:", "To:", "Cc:", "Subject:", "Date:",
		"מאת:", "נשלח:", "אל:", "עותק:", "נושא:", "תאריך:",
		"Von:", "Gesendet:", "An:", "Betreff:", "Datum:",
		"De :", "Envoyé :", "À :", "Cc :", "Objet :",
	}
)

// isOutlookSeparator reports whether s separates a reply from Outlook's
// header block: "-----Original Message-----" in any language (five dashes on
// both sides), or a rule of underscores.
func isOutlookSeparator(s string) bool {
	if isRule(s, '_') {
		return true
	}
	return len(s) > 10 && len(s) < 80 && strings.HasPrefix(s, "-----") && strings.HasSuffix(s, "-----") && strings.Trim(s, "-") != ""
}

// outlookHeaderAt returns the lines of an Outlook reply header ending at
// lines[b]: field lines at depth 0 starting with From, and the separator
// line above them if there is one.
func outlookHeaderAt(lines []qline, b int) []int {
	var out []int
	x := b
	for ; x >= 0 && x > b-12; x-- {
		l := lines[x]
		if l.depth != 0 || l.blank() || !hasAnyPrefix(l.norm, outlookFields) {
			break
		}
		out = append(out, x)
	}
	if len(out) < 2 || !hasAnyPrefix(lines[x+1].norm, outlookFrom) {
		return nil
	}
	if x >= 0 && lines[x].depth == 0 && isOutlookSeparator(lines[x].norm) {
		out = append(out, x)
	}
	return out
}

func hasAnyPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func containsAny(s string, subs []string) bool {
	for _, p := range subs {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// HasOwnText reports whether a reply's text (after its command lines) has
// words of the writer's own: a non-blank line that is not quoted ('>'), not
// the attribution line of a quote that follows ("On ... wrote:"), not part
// of a signature ("-- " and what follows up to the quote), and not at or
// below an Outlook separator or header block ("-----Original
// Message-----", "From: ... Sent: ..."), below which the quoted message
// follows unmarked. A staff reply carrying only commands and the client's
// quote of the ticket mail has none: there is nothing to relay.
func HasOwnText(text string) bool {
	lines := splitQuoted(text)
	attribution := make([]bool, len(lines))
	quoteNext := false // the next line that is not blank at depth 0 is quoted
	for b := len(lines) - 1; b >= 0; b-- {
		if quoteNext {
			for _, x := range attributionAt(lines, b, 0) {
				attribution[x] = true
			}
		}
		if l := lines[b]; l.depth > 0 || !l.blank() {
			quoteNext = l.depth > 0
		}
	}
	signature := false
	for i, l := range lines {
		switch {
		case l.depth > 0:
			signature = false // a signature ends where the quote begins
			continue
		case l.blank() || attribution[i]:
			continue
		case strings.TrimRight(l.raw, "\r\n") == "-- ":
			signature = true
			continue
		case isOutlookSeparator(l.norm):
			return false
		case hasAnyPrefix(l.norm, outlookFrom) && i+1 < len(lines) && lines[i+1].depth == 0 && hasAnyPrefix(lines[i+1].norm, outlookFields):
			return false
		case signature:
			continue
		}
		return true
	}
	return false
}
