package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// String formats the position as file:line:col.
func (p Pos) String() string {
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

func (p Pos) compare(q Pos) int {
	return cmp.Or(cmp.Compare(p.File, q.File), cmp.Compare(p.Line, q.Line), cmp.Compare(p.Col, q.Col))
}

// Error is one configuration error at a position. Msg starts with the key
// path it concerns (e.g. "calendars.israel-office.week.mon: invalid hours
// ...") and never contains a secret value.
type Error struct {
	Pos
	Msg string
}

// String formats the error as file:line:col: message.
func (e Error) String() string { return e.Pos.String() + ": " + e.Msg }

// Error implements error.
func (e Error) Error() string { return e.String() }

// Errors is every error found in a configuration, sorted by position. Load
// and Parse return it (as error) whenever anything is wrong; use errors.As to
// get at the individual errors.
type Errors []Error

// Error implements error: one error per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.String())
	}
	return b.String()
}

// sorted returns the errors sorted by position, without exact duplicates
// (which arise when an aliased YAML node is visited twice).
func (es Errors) sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b Error) int {
		return cmp.Or(a.Pos.compare(b.Pos), strings.Compare(a.Msg, b.Msg))
	})
	return slices.Compact(out)
}

// suggest returns ` (did you mean "x"?)` for the candidate closest to s, or
// "" when none is close enough.
func suggest(s string, candidates []string) string {
	best, bestDist := "", -1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := 2
	if n := len([]rune(s)); n <= 4 {
		limit = 1
	}
	if best == "" || bestDist > limit {
		// A prefix or suffix relation ("addr" for "address") also counts.
		for _, c := range candidates {
			lc := strings.ToLower(c)
			if len(ls) >= 3 && (strings.HasPrefix(lc, ls) || strings.HasPrefix(ls, lc)) {
				return fmt.Sprintf(" (did you mean %q?)", c)
			}
		}
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Damerau–Levenshtein (optimal string alignment)
// distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return max(len(ra), len(rb))
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// oneOf formats a list of choices for messages: "a, b or c".
func oneOf(choices []string) string {
	switch len(choices) {
	case 0:
		return ""
	case 1:
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
