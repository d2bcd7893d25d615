package conversation

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/sla"
)

// Kind names a command by mail (SPEC §2 flow 4). Its value is the command
// word without '#'.
type Kind string

// The commands.
const (
	Resolve     Kind = "resolve"  // resolved; the customer is told
	Close       Kind = "close"    // closed quietly
	Pending     Kind = "pending"  // waiting on the customer; SLA clock paused
	Open        Kind = "open"     // back to open
	Note        Kind = "note"     // internal: the message is not relayed
	SetCategory Kind = "category" // #category fault|request|imac
	SetPriority Kind = "priority" // #priority urgent|high|normal|low
	Schedule    Kind = "schedule" // #schedule YYYY-MM-DD: the IMAC date
	Change      Kind = "change"   // #change <text>: a dated change for the QBR
	For         Kind = "for"      // #for <address>: a new ticket on a customer's behalf
)

// Kinds lists every command, in the order the help text names them.
func Kinds() []Kind {
	return []Kind{Resolve, Close, Pending, Open, Note, SetCategory, SetPriority, Schedule, Change, For}
}

// IsStatus reports whether k sets the ticket's status.
func (k Kind) IsStatus() bool { return k == Resolve || k == Close || k == Pending || k == Open }

// Command is one command line of a staff message.
type Command struct {
	Kind Kind
	Line int    // 1-based line number in the text
	Arg  string // the argument as written, white space trimmed ("" for none)

	Category domain.Category // #category
	Priority domain.Priority // #priority
	Date     sla.Date        // #schedule
	Addr     domain.Address  // #for
}

// Problem is a command line that cannot be obeyed. Any problem means the
// whole message changes nothing and the staff member gets an error reply
// (SPEC §2 flow 4).
type Problem struct {
	Line    int    // 1-based line number of the offending line
	Text    string // the line as written, trimmed and capped at 200 bytes
	Problem string // what is wrong, one sentence for the error reply
}

// String formats p as "line N: problem".
func (p Problem) String() string { return fmt.Sprintf("line %d: %s", p.Line, p.Problem) }

const maxProblemText = 200

// ParseCommands reads the command block at the top of a staff message's
// text and returns its commands, the body without the block, and the
// problems found.
//
// The block is the run of command lines at the top of the text; blank lines
// before and between them are allowed, and the first other non-blank line
// ends it. A command line is '#' directly followed by a letter, after
// optional white space and bidi marks; the word is matched without case and
// is separated from its argument by white space. So "#1 priority is ..." or
// "# heading" are text, and a '#' word after the first text line is never a
// command. An unknown word or an invalid argument in the block is a Problem
// (the line still belongs to the block), as are conflicting commands:
// different statuses (#resolve and #open), two different values for
// #category, #priority, #schedule or #for, and #schedule with a category
// other than imac. Repeated commands are all returned, so that len(cmds) is
// the number of command lines when there is no problem.
//
// body is the text after the block with leading blank lines removed; the
// text's own line endings are kept. The inline text of "#note <text>" is
// part of the note: it is returned as the first line(s) of body, since with
// #note the body is the internal note that is not relayed.
func ParseCommands(text string) (cmds []Command, body string, problems []Problem) {
	nl := "\n"
	if strings.Contains(text, "\r\n") {
		nl = "\r\n"
	}
	var notes []string
	pos, lineNo := 0, 0
	bodyStart := len(text)
	for pos < len(text) {
		end := strings.IndexByte(text[pos:], '\n')
		next := len(text)
		if end >= 0 {
			next = pos + end + 1
			end += pos
		} else {
			end = len(text)
		}
		lineNo++
		line := strings.TrimSuffix(text[pos:end], "\r")
		trimmed := trimLine(line)
		switch {
		case trimmed == "":
			pos = next
			continue
		case !isCommandLine(trimmed):
			bodyStart = pos
		default:
			c, p := parseCommandLine(trimmed, lineNo)
			if p != nil {
				problems = append(problems, *p)
			} else {
				cmds = append(cmds, c)
				if c.Kind == Note && c.Arg != "" {
					notes = append(notes, c.Arg)
				}
			}
			pos = next
			continue
		}
		break
	}
	body = text[bodyStart:]
	if len(notes) > 0 {
		head := strings.Join(notes, nl)
		if body != "" {
			head += nl
		}
		body = head + body
	}
	problems = append(problems, conflicts(cmds)...)
	return cmds, body, problems
}

// trimLine removes white space (including NBSP) and invisible bidi marks
// around a line.
func trimLine(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || isInvisible(r) })
}

// isCommandLine reports whether a trimmed line is a command line: '#'
// directly followed by a letter.
func isCommandLine(s string) bool {
	if len(s) < 2 || s[0] != '#' {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[1:])
	return unicode.IsLetter(r)
}

// parseCommandLine parses one trimmed command line.
func parseCommandLine(s string, line int) (Command, *Problem) {
	word, arg := s[1:], ""
	if i := strings.IndexFunc(s[1:], unicode.IsSpace); i >= 0 {
		word, arg = s[1:1+i], s[1+i:]
	}
	arg = trimLine(arg)
	c := Command{Kind: Kind(strings.ToLower(word)), Line: line, Arg: arg}
	bad := func(format string, a ...any) (Command, *Problem) {
		return Command{}, &Problem{Line: line, Text: capText(s), Problem: fmt.Sprintf(format, a...)}
	}
	switch c.Kind {
	case Resolve, Close, Pending, Open:
		if arg != "" {
			return bad("#%s takes no argument (got %q); put your text on the lines after the commands", c.Kind, capText(arg))
		}
	case Note:
		// Any inline text is the start of the note.
	case SetCategory:
		v := domain.Category(strings.ToLower(arg))
		if !v.Valid() {
			return bad("#category needs one of fault, request, imac (got %q)", capText(arg))
		}
		c.Category = v
	case SetPriority:
		v := domain.Priority(strings.ToLower(arg))
		if !v.Valid() {
			return bad("#priority needs one of urgent, high, normal, low (got %q)", capText(arg))
		}
		c.Priority = v
	case Schedule:
		if arg == "" {
			return bad("#schedule needs the IMAC date, written YYYY-MM-DD (e.g. #schedule 2026-12-08)")
		}
		d, err := sla.ParseDate(arg)
		if err != nil {
			return bad("#schedule: %v", err)
		}
		c.Date = d
	case Change:
		if arg == "" {
			return bad("#change needs a description of the change (e.g. #change mail moved to Microsoft 365)")
		}
	case For:
		if arg == "" {
			return bad("#for needs the customer's address (e.g. #for dana@example.com)")
		}
		a, err := mail.ParseAddress(arg)
		if err != nil || !strings.Contains(a.Address, "@") {
			return bad("#for needs one valid address (got %q)", capText(arg))
		}
		at := strings.LastIndexByte(a.Address, '@')
		c.Addr = domain.Address{Name: a.Name, Addr: a.Address[:at] + strings.ToLower(a.Address[at:])}
	default:
		msg := fmt.Sprintf("unknown command %q; the commands are %s", capText("#"+word), commandList())
		if k, ok := closestKind(strings.ToLower(word)); ok {
			msg = fmt.Sprintf("unknown command %q (did you mean #%s?); the commands are %s", capText("#"+word), k, commandList())
		}
		return Command{}, &Problem{Line: line, Text: capText(s), Problem: msg}
	}
	return c, nil
}

func commandList() string {
	var b strings.Builder
	for i, k := range Kinds() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("#" + string(k))
	}
	return b.String()
}

// closestKind returns the command within edit distance 2 of word, if
// exactly one is that close.
func closestKind(word string) (Kind, bool) {
	if word == "" || len(word) > 32 {
		return "", false
	}
	best, bestD, ties := Kind(""), 3, 0
	for _, k := range Kinds() {
		d := editDistance(word, string(k))
		switch {
		case d < bestD:
			best, bestD, ties = k, d, 1
		case d == bestD:
			ties++
		}
	}
	return best, bestD <= 2 && ties == 1
}

// editDistance is the Levenshtein distance between two short strings,
// counted in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// capText caps s at maxProblemText bytes on a rune boundary.
func capText(s string) string {
	if len(s) <= maxProblemText {
		return s
	}
	s = s[:maxProblemText]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// conflicts finds commands that contradict each other.
func conflicts(cmds []Command) []Problem {
	var out []Problem
	first := map[string]Command{} // conflict group -> first command of it
	for _, c := range cmds {
		group, value := string(c.Kind), ""
		switch c.Kind {
		case Resolve, Close, Pending, Open:
			group, value = "status", string(c.Kind)
		case SetCategory:
			value = string(c.Category)
		case SetPriority:
			value = string(c.Priority)
		case Schedule:
			value = c.Date.String()
		case For:
			value = strings.ToLower(c.Addr.Addr)
		default:
			continue
		}
		f, seen := first[group]
		if !seen {
			first[group] = c
			continue
		}
		var fv string
		switch c.Kind {
		case SetCategory:
			fv = string(f.Category)
		case SetPriority:
			fv = string(f.Priority)
		case Schedule:
			fv = f.Date.String()
		case For:
			fv = strings.ToLower(f.Addr.Addr)
		default:
			fv = string(f.Kind)
		}
		if fv != value {
			out = append(out, Problem{
				Line: c.Line, Text: capText(commandText(c)),
				Problem: fmt.Sprintf("%s conflicts with %s on line %d; give one of them", commandText(c), commandText(f), f.Line),
			})
		}
	}
	if cat, ok := first[string(SetCategory)]; ok && cat.Category != domain.IMAC {
		if s, ok := first[string(Schedule)]; ok {
			out = append(out, Problem{
				Line: s.Line, Text: capText(commandText(s)),
				Problem: fmt.Sprintf("%s sets an IMAC date but %s on line %d makes the ticket a %s", commandText(s), commandText(cat), cat.Line, cat.Category),
			})
		}
	}
	return out
}

// commandText writes c back as a command line.
func commandText(c Command) string {
	if c.Arg == "" {
		return "#" + string(c.Kind)
	}
	return "#" + string(c.Kind) + " " + c.Arg
}

// ContextProblems checks commands against what the message is: a reply on
// an existing ticket (onTicket) or a new message. #for only opens a new
// ticket, so it is a problem on a reply; on a new message, commands other
// than #for need one, since there is no ticket for them to change.
func ContextProblems(cmds []Command, onTicket bool) []Problem {
	var out []Problem
	hasFor := false
	for _, c := range cmds {
		if c.Kind == For {
			hasFor = true
			if onTicket {
				out = append(out, Problem{
					Line: c.Line, Text: capText(commandText(c)),
					Problem: "#for opens a new ticket on a customer's behalf; this message is a reply on an existing ticket (write a new message instead)",
				})
			}
		}
	}
	if !onTicket && !hasFor && len(cmds) > 0 {
		c := cmds[0]
		out = append(out, Problem{
			Line: c.Line, Text: capText(commandText(c)),
			Problem: "this message belongs to no ticket: reply to the ticket's mail, or start a new message with #for customer@example.com",
		})
	}
	return out
}

// HasNote reports whether cmds contain #note: the message is internal and
// nothing of it is relayed to the customer.
func HasNote(cmds []Command) bool {
	for _, c := range cmds {
		if c.Kind == Note {
			return true
		}
	}
	return false
}
