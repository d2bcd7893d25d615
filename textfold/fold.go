// Package textfold normalises text for the rule operators equals, contains,
// contains_any and in (SPEC §3): Unicode case folding, compatibility
// normalisation, removal of combining marks (Hebrew niqqud and cantillation,
// Latin accents), Hebrew final letters mapped to their base forms, and runs of
// white space collapsed to one space. Both rule values (at load time) and
// message text (at classification time) go through Fold, so that "לא עובד"
// matches "לֹא עוֹבֵד" and "NEW  Employee" matches "new employee".
package textfold

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Fold returns the normalised form of s. It is safe for concurrent use and
// never fails: invalid UTF-8 bytes become U+FFFD.
//
// Text that is already folded is returned as it is, without allocating.
// Otherwise the result is built in one buffer, in one pass, with three fast
// paths that need no Unicode tables:
//
//   - ASCII is lower-cased and its white space collapsed, eight bytes at a
//     time where they need nothing else;
//   - Hebrew letters (U+05D0–U+05EA) are copied, final forms mapped to their
//     base letters;
//   - Hebrew points and cantillation marks, and the bidi and zero-width
//     format characters, are dropped, unless they follow a character of the
//     general path.
//
// Everything else (accented Latin, fullwidth forms, ligatures, other scripts)
// is collected into runs that go through the general path, foldRun:
// compatibility decomposition, mark removal, recomposition, case folding.
//
// The fast paths give exactly the result of the general algorithm (the one
// in reference_test.go, which sends every non-ASCII run through foldRun):
// ASCII characters and Hebrew letters are starters that no normalisation
// form composes with any character that survives mark removal, so a run may
// be cut at them; and the dropped characters are ones the general path
// removes anyway, at a place where removing them early cannot change how
// the remaining characters are reordered or composed. TestFoldFastPathEqual
// and FuzzFoldFastPathEqual check this.
func Fold(s string) string {
	k := foldedPrefix(s)
	if k == len(s) {
		return s
	}
	b := appendFold(make([]byte, 0, len(s)), s, k)
	// b is not used again: hand its bytes over instead of copying them.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// AppendFold appends Fold(s) to dst and returns the extended buffer, so that
// a caller can fold into memory it reuses.
func AppendFold(dst []byte, s string) []byte {
	k := foldedPrefix(s)
	if k == len(s) {
		return append(dst, s...)
	}
	return appendFold(dst, s, k)
}

// appendFold appends the folded form of s to b, given that s[:k] is in
// folded form as far as it goes (see foldedPrefix).
func appendFold(b []byte, s string, k int) []byte {
	base := len(b)
	b, ok := appendFoldValid(b, s, k)
	if !ok {
		b, _ = appendFoldValid(b[:base], strings.ToValidUTF8(s, "\uFFFD"), 0)
	}
	return b
}

// appendFoldValid is appendFold for valid UTF-8; it reports false, having
// appended part of the result, if s is not valid (the caller then starts
// again on strings.ToValidUTF8(s), which is what the general algorithm
// folds: validating first would cost a pass over every text).
func appendFoldValid(b []byte, s string, k int) ([]byte, bool) {
	// White space is written as one space as soon as it is seen, unless
	// nothing has been written for s yet or it already ends with a space; a
	// trailing space is cut at the end. prev is 1 in those two cases.
	base := len(b)
	b = append(b, s[:k]...)
	prev := uint8(0)
	if k == 0 || s[k-1] == ' ' {
		prev = 1
	}
	run := -1 // start of a run for the general path, or -1
	for i := k; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if run >= 0 {
				b, prev = appendRun(b, s[run:i], prev)
				run = -1
			}
			// Each ASCII byte gives at most one byte.
			if cap(b)-len(b) < len(s)-i {
				b = slices.Grow(b, len(s)-i)
			}
			var n int
			n, i, prev = foldASCII(b[:cap(b)], len(b), s, i, prev)
			b = b[:n]
			continue
		}
		// Hebrew block, U+0590–U+05FF: two bytes, D6 90–BF or D7 80–BF.
		if (c == 0xD6 || c == 0xD7) && i+1 < len(s) && s[i+1]&0xC0 == 0x80 {
			r := rune(c&0x1F)<<6 | rune(s[i+1]&0x3F)
			switch {
			case 0x05D0 <= r && r <= 0x05EA:
				if run >= 0 {
					b, _ = appendRun(b, s[run:i], prev) // prev is 0 after the letter
					run = -1
				}
				r = baseLetter(r)
				b = append(b, byte(0xC0|r>>6), byte(0x80|r&0x3F))
				prev = 0
				i += 2
				continue
			case run < 0 && isHebrewMark(r):
				i += 2
				continue
			}
		}
		// Bidi controls and zero-width characters: E2 80 8B–8F, E2 80 AA–AE,
		// E2 81 A0–A4 and A6–AF (U+200B–U+200F, U+202A–U+202E,
		// U+2060–U+2064, U+2066–U+206F), and EF BB BF (U+FEFF).
		if run < 0 && i+2 < len(s) && isFormat3(c, s[i+1], s[i+2]) {
			i += 3
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return b, false
		}
		if run < 0 {
			run = i
		}
		i += size
	}
	if run >= 0 {
		b, _ = appendRun(b, s[run:], prev)
	}
	if len(b) > base && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b, true
}

// foldASCII folds the ASCII text at s[i:] into buf[n:], up to the end of s
// or the first non-ASCII byte, and returns the new n, i and prev (as in
// appendFoldValid). buf must have room for len(s)-i more bytes.
func foldASCII(buf []byte, n int, s string, i int, prev uint8) (int, int, uint8) {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	for {
		// Eight bytes at a time while they are ASCII, with no white space
		// but single spaces that need no collapsing: upper case is lowered
		// and the eight bytes copied as they are.
		for ; i+8 <= len(s); i += 8 {
			x := load64(s, i)
			if x&high != 0 {
				break // non-ASCII: no carry crosses bytes in what follows
			}
			upper := (x + (0x80-'A')*ones) &^ (x + (0x80-'Z'-1)*ones) & high
			low := ^(x + (0x80-'!')*ones) & high          // bytes < '!'
			space := ^((x ^ ' '*ones) + 0x7f*ones) & high // bytes == ' '
			if low != space || space&(space<<8) != 0 || (prev == 1 && space&0x80 != 0) {
				break // control characters, white space to collapse
			}
			binary.LittleEndian.PutUint64(buf[n:], x|upper>>2)
			n += 8
			prev = uint8(space >> 63)
		}
		// Then one byte at a time, to the end of the block that stopped the
		// loop above.
		end := min(i+8, len(s))
		if i == end {
			return n, i, prev
		}
		for ; i < end; i++ {
			c := s[i]
			if c >= utf8.RuneSelf {
				return n, i, prev
			}
			sp := asciiSpace[c]
			buf[n] = asciiFold[c]
			n += int(1 - sp&prev)
			prev = sp
		}
	}
}

// load64 reads the eight bytes at s[i:] as a little-endian number.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// foldedPrefix returns the length of the longest prefix of s that is in
// folded form as far as it goes: printable ASCII without upper-case letters,
// no leading space and no two spaces in a row. It returns len(s) only when
// the whole of s is folded (in particular, it does not end with a space).
func foldedPrefix(s string) int {
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			if prevSpace {
				return i
			}
			prevSpace = true
			continue
		case c < 0x21 || c > 0x7e || ('A' <= c && c <= 'Z'):
			return i
		}
		prevSpace = false
	}
	if len(s) > 0 && s[len(s)-1] == ' ' {
		return len(s) - 1
	}
	return len(s)
}

// asciiFold maps an ASCII byte to its folded form, white space to ' ';
// asciiSpace is 1 for white space.
var asciiFold, asciiSpace = func() (fold, space [utf8.RuneSelf]uint8) {
	for c := range fold {
		fold[c] = byte(c)
		switch {
		case 'A' <= c && c <= 'Z':
			fold[c] += 'a' - 'A'
		case c == ' ' || ('\t' <= c && c <= '\r'):
			fold[c], space[c] = ' ', 1
		}
	}
	return
}()

// baseLetter maps the Hebrew final letters to their base forms (each final
// form immediately precedes its base form in Unicode).
func baseLetter(r rune) rune {
	switch r {
	case 'ך', 'ם', 'ן', 'ף', 'ץ':
		return r + 1
	}
	return r
}

// isHebrewMark reports whether r is a Hebrew point or cantillation mark
// (general category Mn in U+0591–U+05C7).
func isHebrewMark(r rune) bool {
	switch {
	case 0x0591 <= r && r <= 0x05BD, r == 0x05BF, r == 0x05C1, r == 0x05C2, r == 0x05C4, r == 0x05C5, r == 0x05C7:
		return true
	}
	return false
}

// isFormat3 reports whether the three bytes encode one of the common format
// characters (general category Cf) that Fold removes: zero-width space and
// joiners, bidi marks, embeddings, overrides and isolates, word joiner,
// invisible operators, deprecated format characters, byte order mark.
func isFormat3(b0, b1, b2 byte) bool {
	switch {
	case b0 == 0xE2 && b1 == 0x80:
		return (0x8B <= b2 && b2 <= 0x8F) || (0xAA <= b2 && b2 <= 0xAE)
	case b0 == 0xE2 && b1 == 0x81:
		return (0xA0 <= b2 && b2 <= 0xA4) || (0xA6 <= b2 && b2 <= 0xAF)
	case b0 == 0xEF && b1 == 0xBB:
		return b2 == 0xBF
	}
	return false
}

// appendRun appends the folded form of a run of non-ASCII text to b, white
// space collapsed as in appendFoldValid (prev is 1 when nothing has been
// written for the text yet or it ends with a space).
func appendRun(b []byte, run string, prev uint8) ([]byte, uint8) {
	for _, r := range foldRun(run) {
		if unicode.IsSpace(r) {
			if prev == 0 {
				b = append(b, ' ')
				prev = 1
			}
			continue
		}
		b = utf8.AppendRune(b, r)
		prev = 0
	}
	return b, prev
}

// folders holds case folders for foldRun: a Caser may keep state and must not
// be shared between goroutines.
var folders = sync.Pool{New: func() any { c := cases.Fold(); return &c }}

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
		b.WriteRune(baseLetter(r))
	}
	f := folders.Get().(*cases.Caser)
	out := f.String(norm.NFC.String(b.String()))
	folders.Put(f)
	return out
}
