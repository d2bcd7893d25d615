package textfold

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// foldSlow is Fold as it was before the fast paths were added (commit
// 81166d7), kept verbatim as the reference the fast paths are compared with
// (TestFoldFastPathEqual, FuzzFoldFastPathEqual). Do not optimise it.
func foldSlow(s string) string {
	if isPlainASCIILowerSlow(s) {
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
		for _, r := range foldRunSlow(s[i:j]) {
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

var finalsSlow = map[rune]rune{
	'ך': 'כ',
	'ם': 'מ',
	'ן': 'נ',
	'ף': 'פ',
	'ץ': 'צ',
}

func foldRunSlow(s string) string {
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
		if f, ok := finalsSlow[r]; ok {
			r = f
		}
		b.WriteRune(r)
	}
	return cases.Fold().String(norm.NFC.String(b.String()))
}

func isPlainASCIILowerSlow(s string) bool {
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
