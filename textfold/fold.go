// Package textfold normalises text for the rule operators equals, contains,
// contains_any and in (SPEC §3): Unicode case folding, compatibility
// normalisation, removal of combining marks (Hebrew niqqud and cantillation,
// Latin accents), Hebrew final letters mapped to their base forms, and runs of
// white space collapsed to one space. Both rule values (at load time) and
// message text (at classification time) go through Fold, so that "לא עובד"
// matches "לֹא עוֹבֵד" and "NEW  Employee" matches "new employee".
package textfold

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

var finals = map[rune]rune{
	'ך': 'כ',
	'ם': 'מ',
	'ן': 'נ',
	'ף': 'פ',
	'ץ': 'צ',
}

// Fold returns the normalised form of s. It is safe for concurrent use and
// never fails: invalid UTF-8 bytes become U+FFFD.
//
// ASCII text is folded inline (lower case, white space collapsed); only runs
// of non-ASCII characters go through Unicode normalisation and case folding,
// which keeps a typical English body at a few ns per byte.
func Fold(s string) string {
	if isPlainASCIILower(s) {
		return s
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' || ('\t' <= c && c <= '\r') {
				space = true
				i++
				continue
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if space && len(b) > 0 {
				b = append(b, ' ')
			}
			space = false
			b = append(b, c)
			i++
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= utf8.RuneSelf {
			j++
		}
		for _, r := range foldRun(s[i:j]) {
			if unicode.IsSpace(r) {
				space = true
				continue
			}
			if space && len(b) > 0 {
				b = append(b, ' ')
			}
			space = false
			b = utf8.AppendRune(b, r)
		}
		i = j
	}
	return string(b)
}

// foldRun normalises a run of non-ASCII text: compatibility decomposition,
// combining marks and format characters removed, Hebrew final letters mapped,
// recomposed and case folded. White space is kept for the caller to collapse.
func foldRun(s string) string {
	d := norm.NFKD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		switch {
		case unicode.Is(unicode.Mn, r) || r == '\u05BD' || r == '\u05BF' || r == '\u05C7':
			continue // combining marks: niqqud, cantillation, accents
		case unicode.Is(unicode.Cf, r):
			continue // bidi controls, zero-width joiners, soft hyphens
		}
		if f, ok := finals[r]; ok {
			r = f
		}
		b.WriteRune(r)
	}
	return cases.Fold().String(norm.NFC.String(b.String()))
}

// isPlainASCIILower reports whether s is already in folded form: printable
// lower-case ASCII with single spaces and no leading/trailing space.
func isPlainASCIILower(s string) bool {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			if prevSpace {
				return false
			}
			prevSpace = true
			continue
		case c < 0x21 || c > 0x7e || ('A' <= c && c <= 'Z'):
			return false
		}
		prevSpace = false
	}
	return len(s) == 0 || s[len(s)-1] != ' '
}
