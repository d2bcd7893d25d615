package conversation

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tag is a ticket tag found in a subject, e.g. "[ACME-0042]".
type Tag struct {
	Prefix string // upper-cased, e.g. "ACME"
	Number int    // e.g. 42
	ID     string // canonical: prefix, dash, number zero-padded to four digits ("ACME-0042")
	// Start and End are the byte offsets of the tag in the subject, brackets
	// included: subject[Start:End] == "[acme-42]".
	Start, End int
}

const (
	maxTagPrefix = 16 // rules: contract prefixes are [A-Z0-9]{1,16}
	maxTagDigits = 18 // store.ParseTicketID accepts at most 18 digits
)

// FindTags returns the ticket tags in subject, in order of appearance. A tag
// is '[', a prefix of 1 to 16 ASCII letters or digits, '-', a number of 1 to
// 18 digits that is not zero, and ']'; case and zero padding do not matter
// ("[acme-42]" is ACME-0042). The prefix is not checked against the
// configuration: callers keep only tags whose prefix belongs to a contract.
func FindTags(subject string) []Tag {
	var tags []Tag
	for i := 0; i < len(subject); i++ {
		if subject[i] != '[' {
			continue
		}
		if t, ok := parseTagAt(subject, i); ok {
			tags = append(tags, t)
			i = t.End - 1
		}
	}
	return tags
}

// parseTagAt parses a tag whose '[' is at s[i].
func parseTagAt(s string, i int) (Tag, bool) {
	j := i + 1
	for j < len(s) && j-(i+1) <= maxTagPrefix && isAlnumASCII(s[j]) {
		j++
	}
	prefix := s[i+1 : j]
	if prefix == "" || len(prefix) > maxTagPrefix || j >= len(s) || s[j] != '-' {
		return Tag{}, false
	}
	k := j + 1
	for k < len(s) && k-(j+1) <= maxTagDigits && '0' <= s[k] && s[k] <= '9' {
		k++
	}
	digits := s[j+1 : k]
	if digits == "" || len(digits) > maxTagDigits || k >= len(s) || s[k] != ']' {
		return Tag{}, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 || int64(int(n)) != n {
		return Tag{}, false
	}
	up := strings.ToUpper(prefix)
	return Tag{Prefix: up, Number: int(n), ID: formatID(up, int(n)), Start: i, End: k + 1}, true
}

func formatID(prefix string, n int) string { return fmt.Sprintf("%s-%04d", prefix, n) }

// canonicalID returns the canonical form of a ticket id such as "acme-42",
// or "" when id is not one.
func canonicalID(id string) string {
	t, ok := parseTagAt("["+strings.TrimSpace(id)+"]", 0)
	if !ok {
		return ""
	}
	return t.ID
}

func isAlnumASCII(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// replyWords are the reply and forward abbreviations of mail clients in the
// languages our customers and staff write, as they appear before the colon.
// Matching ignores case. Longer words come first so that "הועבר לנמען" wins
// over "הועבר" and "Fwd" over "Fw".
var replyWords = sortedByLength([]string{
	"Re", "Fwd", "Fw", // English and most clients
	"AW", "WG", "Antwort", // German
	"SV", "VS", "VB", "VL", // Scandinavian, Finnish
	"TR",       // French (its reply prefix is RE)
	"R", "RIF", // Italian
	"Antw", "Doorst", // Dutch
	"Odp", "PD", // Polish
	"RES", "ENC", "RV", // Portuguese, Spanish
	"YNT", "İLT", // Turkish
	"ΑΠ", "ΣΧΕΤ", "ΠΡΘ", // Greek
	"回复", "转发", "答复", "回覆", "轉寄", "轉發", // Chinese
	"השב", "תשובה", "הועבר", "הועבר לנמען", "מענה", // Hebrew
})

func sortedByLength(words []string) []string {
	out := slices.Clone(words)
	slices.SortStableFunc(out, func(a, b string) int {
		return cmp.Compare(utf8.RuneCountInString(b), utf8.RuneCountInString(a))
	})
	return slices.Compact(out)
}

// StripReplyPrefixes splits subject into the chain of reply and forward
// prefixes at its start and the rest. Prefixes are returned as written,
// trimmed and without bidi marks ("Re:", "AW:", "Re[2]:", "השב:"); rest is
// what follows the chain with leading white space removed (bidi marks that
// belong to the rest, as in our Hebrew subjects, are kept).
//
// A prefix is one of the known words in any case, optionally followed by a
// counter ("[2]", "(2)", "^2"), optional spaces, and a colon (ASCII ':' or
// full-width '：'). Spaces and bidi marks (U+200E, U+200F, U+061C, embeddings
// and isolates) may surround each prefix. "Re: RE: FW: x" gives three
// prefixes and "x"; "Remark: x" and "Re x" give none.
func StripReplyPrefixes(subject string) (prefixes []string, rest string) {
	end, prefixes := replyChain(subject)
	return prefixes, strings.TrimLeftFunc(subject[end:], unicode.IsSpace)
}

// replyChain returns the byte offset where the reply-prefix chain at the
// start of s ends (0 when there is none) and the prefixes.
func replyChain(s string) (end int, prefixes []string) {
	for {
		i := skipBlank(s, end)
		j, ok := replyPrefixAt(s, i)
		if !ok {
			return end, prefixes
		}
		p := strings.Map(func(r rune) rune {
			if isInvisible(r) {
				return -1
			}
			return r
		}, s[i:j])
		prefixes = append(prefixes, strings.Join(strings.Fields(p), " "))
		end = j
	}
}

// replyPrefixAt matches one reply prefix starting exactly at s[i] and
// returns the offset just after its colon.
func replyPrefixAt(s string, i int) (int, bool) {
	for _, w := range replyWords {
		j, ok := hasPrefixFold(s, i, w)
		if !ok {
			continue
		}
		// The word must end here: "Rev:" is not "Re" + "v:".
		if r, _ := utf8.DecodeRuneInString(s[j:]); unicode.IsLetter(r) || unicode.IsDigit(r) {
			continue
		}
		j = skipCounter(s, j)
		j = skipBlank(s, j)
		switch {
		case strings.HasPrefix(s[j:], ":"):
			return j + 1, true
		case strings.HasPrefix(s[j:], "："):
			return j + len("："), true
		}
	}
	return 0, false
}

// hasPrefixFold reports whether s[i:] starts with w, ignoring case, and
// returns the offset after the match.
func hasPrefixFold(s string, i int, w string) (int, bool) {
	for _, wr := range w {
		if i >= len(s) {
			return 0, false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != wr && !equalFoldRune(r, wr) {
			return 0, false
		}
		i += size
	}
	return i, true
}

// equalFoldRune compares two runes under Unicode simple case folding, and
// by their lower case so that the Turkish dotted capital I equals i.
func equalFoldRune(a, b rune) bool {
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return unicode.ToLower(a) == unicode.ToLower(b)
}

// skipCounter skips a reply counter such as "[2]", "(2)" or "^2" at s[i].
func skipCounter(s string, i int) int {
	if i >= len(s) {
		return i
	}
	var closer byte
	switch s[i] {
	case '[':
		closer = ']'
	case '(':
		closer = ')'
	case '^':
	default:
		return i
	}
	j := i + 1
	for j < len(s) && j-i <= 4 && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	if j == i+1 {
		return i
	}
	if closer == 0 {
		return j
	}
	if j < len(s) && s[j] == closer {
		return j + 1
	}
	return i
}

// skipBlank skips white space and invisible bidi marks at s[i:].
func skipBlank(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) && !isInvisible(r) {
			break
		}
		i += size
	}
	return i
}

// isInvisible reports whether r is a bidi mark, embedding, override or
// isolate, a zero-width space or a byte order mark: characters mail clients
// put around words without changing what a reader sees.
func isInvisible(r rune) bool {
	switch {
	case r == 0x200B, r == 0x200E, r == 0x200F, r == 0x061C, r == 0xFEFF:
		return true
	case 0x202A <= r && r <= 0x202E, 0x2066 <= r && r <= 0x2069:
		return true
	}
	return false
}

// TagSubject returns subject with the ticket tag "[id]" placed after any
// reply-prefix chain at its start (SPEC §4): "Re: printer" becomes
// "Re: [ACME-0042] printer". A subject that already carries the tag, in any
// case or zero padding, is returned unchanged, so tagging twice never
// duplicates it. When the subject contains right-to-left letters (Hebrew,
// Arabic), the tag is a left-to-right island between U+200E marks, preceded
// by U+200F when it starts the subject, as in the gateway's own Hebrew
// subjects (LIBNOTES §7). An empty id returns subject unchanged.
func TagSubject(subject, id string) string {
	id = strings.TrimSpace(id)
	if id == "" {
		return subject
	}
	if want := canonicalID(id); want != "" {
		for _, t := range FindTags(subject) {
			if t.ID == want {
				return subject
			}
		}
	} else if strings.Contains(strings.ToUpper(subject), "["+strings.ToUpper(id)+"]") {
		return subject
	}
	end, _ := replyChain(subject)
	head := strings.TrimRightFunc(subject[:end], unicode.IsSpace)
	rest := strings.TrimLeftFunc(subject[end:], unicode.IsSpace)
	tag := "[" + id + "]"
	if hasRTL(subject) {
		tag = "\u200E" + tag + "\u200E"
		if head == "" {
			tag = "\u200F" + tag
		}
	}
	var b strings.Builder
	b.WriteString(head)
	if head != "" {
		b.WriteByte(' ')
	}
	b.WriteString(tag)
	if rest != "" {
		b.WriteByte(' ')
		b.WriteString(rest)
	}
	return b.String()
}

// hasRTL reports whether s contains a letter of a right-to-left script.
func hasRTL(s string) bool {
	for _, r := range s {
		if r >= 0x0590 && r <= 0x08FF && unicode.IsLetter(r) || r >= 0xFB1D && r <= 0xFDFF || r >= 0xFE70 && r <= 0xFEFE {
			return true
		}
	}
	return false
}
