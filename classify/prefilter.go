package classify

import (
	"regexp/syntax"
	"strings"
)

// requiredLiteral returns a lower-case ASCII string that any text matching
// the regexp must contain (case-insensitively), or "" when none is known. The
// classifier looks for it with the field's keyword matcher and skips the
// regexp when it is absent, so a page of subject regexps costs one scan.
//
// Only ASCII literals without white space are used: textfold.Fold keeps every
// such character (lower-cased), so "raw text contains L" implies "folded
// text contains lower(L)" and the filter never rejects a real match.
func requiredLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	lit := longestRequired(re.Simplify())
	if len(lit) < 3 {
		return ""
	}
	return lit
}

func longestRequired(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		var b strings.Builder
		best := ""
		flush := func() {
			if b.Len() > len(best) {
				best = b.String()
			}
			b.Reset()
		}
		for _, r := range re.Rune {
			if r >= 0x80 || r <= ' ' || r == 0x7f {
				flush()
				continue
			}
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteRune(r)
		}
		flush()
		return best
	case syntax.OpCapture, syntax.OpPlus:
		return longestRequired(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return longestRequired(re.Sub[0])
		}
	case syntax.OpConcat:
		best := ""
		for _, s := range re.Sub {
			if l := longestRequired(s); len(l) > len(best) {
				best = l
			}
		}
		return best
	}
	return ""
}
