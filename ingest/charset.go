package ingest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// csExtraLabels are charset labels seen in real mail that go-message's
// charset table (IANA, then WHATWG names) does not resolve. They are
// registered with go-message once, in init, so that every user of
// charset.Reader (for example IMAP ENVELOPE decoding) benefits. The map is
// never written after init.
var csExtraLabels = map[string]encoding.Encoding{
	// Hebrew, as written by Outlook, old Exchange and webmail systems.
	"win-1255":         charmap.Windows1255,
	"win1255":          charmap.Windows1255,
	"windows1255":      charmap.Windows1255,
	"cp-1255":          charmap.Windows1255,
	"ms-hebrew":        charmap.Windows1255,
	"x-windows-1255":   charmap.Windows1255,
	"x-cp-1255":        charmap.Windows1255,
	"iso-8859-8-e":     charmap.ISO8859_8,
	"iso_8859-8-i":     charmap.ISO8859_8I,
	"iso8859-8-i":      charmap.ISO8859_8I,
	"iso-8859-8i":      charmap.ISO8859_8I,
	"hebrew-logical":   charmap.ISO8859_8I,
	"win-1250":         charmap.Windows1250,
	"win-1251":         charmap.Windows1251,
	"win-1252":         charmap.Windows1252,
	"win-1253":         charmap.Windows1253,
	"win-1254":         charmap.Windows1254,
	"win-1256":         charmap.Windows1256,
	"win-1257":         charmap.Windows1257,
	"win-1258":         charmap.Windows1258,
	"ms-ansi":          charmap.Windows1252,
	"ms-arab":          charmap.Windows1256,
	"ms-cyrl":          charmap.Windows1251,
	"ms-ee":            charmap.Windows1250,
	"ms-greek":         charmap.Windows1253,
	"ms-turk":          charmap.Windows1254,
	"ujis":             japanese.EUCJP,
	"x-euc-jp":         japanese.EUCJP,
	"iso-2022-jp-1":    japanese.ISO2022JP,
	"iso-2022-jp-2":    japanese.ISO2022JP,
	"iso-2022-jp-3":    japanese.ISO2022JP,
	"csiso2022jp2":     japanese.ISO2022JP,
	"cp50220":          japanese.ISO2022JP,
	"cp50221":          japanese.ISO2022JP,
	"x-sjis-open":      japanese.ShiftJIS,
	"eucgb2312_cn":     simplifiedchinese.GBK,
	"x-euc-cn":         simplifiedchinese.GBK,
	"euc-cn":           simplifiedchinese.GBK,
	"gb_2312":          simplifiedchinese.GBK,
	"cp-936":           simplifiedchinese.GBK,
	"ms936":            simplifiedchinese.GBK,
	"x-cp936":          simplifiedchinese.GBK,
	"big5hkscs":        traditionalchinese.Big5,
	"cp950":            traditionalchinese.Big5,
	"ms950":            traditionalchinese.Big5,
	"x-x-big5":         traditionalchinese.Big5,
	"ks_c_5601":        korean.EUCKR,
	"ks_c_5601-1989":   korean.EUCKR,
	"ksc5601":          korean.EUCKR,
	"ksc_5601":         korean.EUCKR,
	"ks_c_5601_1987":   korean.EUCKR,
	"ms949":            korean.EUCKR,
	"cp949":            korean.EUCKR,
	"x-windows-949":    korean.EUCKR,
	"unified-korean":   korean.EUCKR,
	"x-mac-cyrillic":   charmap.MacintoshCyrillic,
	"koi8":             charmap.KOI8R,
	"koi8r":            charmap.KOI8R,
	"koi8u":            charmap.KOI8U,
	"x-iso-8859-15":    charmap.ISO8859_15,
	"iso-8859-15-fdis": charmap.ISO8859_15,
}

// csLocalLabels override what go-message would pick, for this parser only:
// like every browser, we read ISO-8859-1 as its superset windows-1252,
// because Outlook labels cp1252 "smart quotes" as ISO-8859-1.
var csLocalLabels = map[string]encoding.Encoding{
	"iso-8859-1": charmap.Windows1252,
	"latin1":     charmap.Windows1252,
	"latin-1":    charmap.Windows1252,
	"l1":         charmap.Windows1252,
	"cp819":      charmap.Windows1252,
	"ibm819":     charmap.Windows1252,
	"gb2312":     simplifiedchinese.GBK,
	"x-gbk":      simplifiedchinese.GBK,
}

func init() {
	for name, enc := range csExtraLabels {
		charset.RegisterEncoding(name, enc)
	}
}

// csClass says how a charset label is to be handled.
type csClass int

const (
	csUTF8    csClass = iota // UTF-8 or ASCII: validated, legacy fallback when invalid
	csGuess                  // declared as unknown: UTF-8 if valid, else a legacy guess
	csUTF7                   // UTF-7, which golang.org/x/text lacks
	csNamed                  // a named charset resolved by lookup
	csMissing                // no label at all
)

// csNormalize lower-cases a charset label and repairs the damage real mail
// does to it: quotes, trailing punctuation, a quoted-printable "=3D" prefix
// and the iso8859-N / iso_8859-N spellings.
func csNormalize(label string) string {
	l := strings.ToLower(strings.TrimSpace(label))
	l = strings.Trim(l, "\"' \t;,")
	if strings.HasPrefix(l, "3d") && len(l) > 4 {
		l = strings.Trim(l[2:], "\"'")
	}
	for _, p := range []string{"iso8859-", "iso8859_", "iso_8859-", "iso_8859_", "iso-8859_", "iso8859"} {
		if strings.HasPrefix(l, p) && len(l) > len(p) && l[len(p)] >= '0' && l[len(p)] <= '9' {
			l = "iso-8859-" + l[len(p):]
			break
		}
	}
	if strings.HasPrefix(l, "iso-8859-") {
		// "iso-8859-1:1987" and similar suffixes.
		if i := strings.IndexAny(l[len("iso-8859-"):], ":"); i >= 0 {
			l = l[:len("iso-8859-")+i]
		}
	}
	return l
}

// csClassify returns how a normalised label is handled.
func csClassify(l string) csClass {
	switch l {
	case "":
		return csMissing
	case "utf-8", "utf8", "us-ascii", "ascii", "us_ascii", "usascii", "ansi_x3.4-1968",
		"iso-646-us", "iso646-us", "us", "x-utf_8j", "unicode-1-1-utf-8", "utf-8-bom":
		return csUTF8
	case "unknown-8bit", "x-unknown", "unknown", "default", "default_charset",
		"x-user-defined", "charset", "none", "8bit", "binary", "unknown-charset":
		return csGuess
	case "utf-7", "utf7", "x-utf-7", "x-utf7", "unicode-1-1-utf-7", "x-unicode-2-0-utf-7",
		"csunicode11utf7", "x-unicode20utf7":
		return csUTF7
	}
	return csNamed
}

// csLookup resolves a normalised label to an encoding, or nil.
func csLookup(l string) encoding.Encoding {
	if enc, ok := csLocalLabels[l]; ok {
		return enc
	}
	if enc, ok := csExtraLabels[l]; ok {
		return enc
	}
	return nil
}

// csReadAll decodes raw with the named charset through go-message's charset
// table. ok is false when the charset is unknown; err reports a decoding
// failure part way (the text decoded up to it is returned).
func csReadAll(l string, raw []byte) (text string, ok bool, err error) {
	if enc := csLookup(l); enc != nil {
		out, err := enc.NewDecoder().Bytes(raw)
		if err != nil {
			return "", true, err
		}
		return string(out), true, nil
	}
	r, lerr := charset.Reader(l, bytes.NewReader(raw))
	if lerr != nil || r == nil {
		return "", false, nil
	}
	out, err := io.ReadAll(r)
	return string(out), true, err
}

// csDecode turns raw bytes declared to be in charset label into valid UTF-8.
// It never fails: an unknown or wrong label falls back to UTF-8 when the
// bytes are valid UTF-8, else to windows-1255 when they look Hebrew, else to
// windows-1252. problem is empty when the declared label was used as is, and
// otherwise says what was done (for a warning).
//
// ISO-8859-8 ("visual" Hebrew) is decoded byte for byte; its visual order is
// not reversed into logical order.
func csDecode(label string, raw []byte) (text string, problem string) {
	l := csNormalize(label)
	class := csClassify(l)
	if class != csUTF7 && !csNeedsDecoder(l) && csIsASCII(raw) {
		return string(raw), ""
	}
	switch class {
	case csMissing:
		if utf8.Valid(raw) {
			return csClean(string(raw)), ""
		}
		s, guess := csGuessLegacy(raw)
		return s, "no charset declared and the text is not UTF-8; decoded as " + guess
	case csUTF8:
		if utf8.Valid(raw) {
			return csClean(string(raw)), ""
		}
		s, guess := csGuessLegacy(raw)
		return s, fmt.Sprintf("declared charset %q but the text is not valid UTF-8; decoded as %s", label, guess)
	case csGuess:
		if utf8.Valid(raw) {
			return csClean(string(raw)), ""
		}
		s, guess := csGuessLegacy(raw)
		return s, fmt.Sprintf("charset %q; decoded as %s", label, guess)
	case csUTF7:
		if !csIsASCII(raw) {
			s, guess := csGuessLegacy(raw)
			return s, fmt.Sprintf("declared charset %q is 7-bit but the text has 8-bit bytes; decoded as %s", label, guess)
		}
		if s, ok := csDecodeUTF7(raw, false); ok {
			return s, ""
		}
		s, _ := csDecodeUTF7(raw, true)
		return s, "malformed UTF-7; decoded leniently"
	}
	if csSingleByte(l) && csHasMultibyteUTF8(raw) {
		return csClean(string(raw)), fmt.Sprintf("declared charset %q but the text is UTF-8; decoded as UTF-8", label)
	}
	if csSevenBit(l) && !csIsASCII(raw) {
		s, guess := csGuessLegacy(raw)
		return s, fmt.Sprintf("declared charset %q is 7-bit but the text has 8-bit bytes; decoded as %s", label, guess)
	}
	s, known, err := csReadAll(l, raw)
	if !known {
		if utf8.Valid(raw) {
			return csClean(string(raw)), fmt.Sprintf("unknown charset %q; the text is valid UTF-8", label)
		}
		g, guess := csGuessLegacy(raw)
		return g, fmt.Sprintf("unknown charset %q; decoded as %s", label, guess)
	}
	if err != nil {
		g, guess := csGuessLegacy(raw)
		if utf8.Valid(raw) {
			g, guess = string(raw), "UTF-8"
		}
		return csClean(g), fmt.Sprintf("charset %q: %v; decoded as %s", label, err, guess)
	}
	return csClean(s), ""
}

// csNeedsDecoder reports charsets that are not ASCII-compatible, so that
// pure 7-bit input still has to go through their decoder.
func csNeedsDecoder(l string) bool {
	return strings.Contains(l, "2022") || strings.Contains(l, "utf-16") ||
		strings.Contains(l, "utf16") || strings.Contains(l, "utf-32") ||
		strings.Contains(l, "ucs-2") || strings.HasPrefix(l, "hz") || strings.Contains(l, "50220") ||
		strings.Contains(l, "50221")
}

// csSevenBit reports 7-bit stateful charsets: 8-bit bytes in text labelled
// with one of them mean the label is wrong.
func csSevenBit(l string) bool {
	return strings.Contains(l, "2022") || strings.HasPrefix(l, "hz") || strings.Contains(l, "50220") ||
		strings.Contains(l, "50221")
}

func csIsASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// csClean makes s valid UTF-8 and drops NUL bytes and a leading byte-order
// mark.
func csClean(s string) string {
	s = strings.TrimPrefix(s, "\ufeff")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\ufffd")
	}
	return s
}

// csGuessLegacy decodes bytes of unknown 8-bit charset: as UTF-8 when valid,
// as windows-1255 when they look like Hebrew, else as windows-1252. It
// returns the text and the name of the charset used.
func csGuessLegacy(raw []byte) (string, string) {
	if utf8.Valid(raw) {
		return csClean(string(raw)), "UTF-8"
	}
	if csMostlyUTF8(raw) {
		return csClean(strings.ToValidUTF8(string(raw), "\ufffd")), "UTF-8 (invalid bytes replaced)"
	}
	enc, name := encoding.Encoding(charmap.Windows1252), "windows-1252"
	if csLooksHebrew(raw) {
		enc, name = charmap.Windows1255, "windows-1255"
	}
	out, err := enc.NewDecoder().Bytes(raw)
	if err != nil {
		return strings.ToValidUTF8(string(raw), "\ufffd"), "UTF-8 (invalid sequences replaced)"
	}
	return csClean(string(out)), name
}

// csMostlyUTF8 reports whether bytes that are not valid UTF-8 are still
// mostly UTF-8: truncated or slightly damaged UTF-8 text, not a legacy
// charset (whose high bytes rarely form valid multi-byte sequences).
func csMostlyUTF8(raw []byte) bool {
	valid, invalid := 0, 0
	for i := 0; i < len(raw); {
		if raw[i] < 0x80 {
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size <= 1 {
			invalid++
			i++
			continue
		}
		valid++
		i += size
	}
	return valid > 0 && invalid*4 <= valid
}

// csSingleByte reports single-byte legacy charsets, whose text is almost
// never valid UTF-8 with multi-byte sequences by accident.
func csSingleByte(l string) bool {
	for _, p := range []string{"iso-8859-", "windows-125", "cp125", "win-125", "koi8", "latin", "cp8", "ibm8", "cp437", "macintosh", "x-mac-roman", "us-ascii"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// csHasMultibyteUTF8 reports whether raw is valid UTF-8 with at least one
// multi-byte sequence.
func csHasMultibyteUTF8(raw []byte) bool {
	return !csIsASCII(raw) && utf8.Valid(raw)
}

// csLooksHebrew reports whether 8-bit text reads better as windows-1255 than
// as windows-1252. Hebrew letters are 0xE0-0xFA in both windows-1255 and
// ISO-8859-8, and Hebrew words consist only of them, while the same bytes in
// Latin text are accented letters inside words of ASCII letters. So: count
// high bytes that stand in runs of Hebrew-range bytes away from ASCII
// letters, against high bytes touching ASCII letters.
func csLooksHebrew(raw []byte) bool {
	hebrew, latin, runs := 0, 0, 0
	isASCIILetter := func(c byte) bool { return c < 0x80 && (c|0x20) >= 'a' && (c|0x20) <= 'z' }
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < 0x80 {
			i++
			continue
		}
		j := i
		for j < len(raw) && raw[j] >= 0x80 {
			j++
		}
		run := raw[i:j]
		touchesASCII := (i > 0 && isASCIILetter(raw[i-1])) || (j < len(raw) && isASCIILetter(raw[j]))
		inRange := 0
		for _, b := range run {
			if (b >= 0xE0 && b <= 0xFA) || (b >= 0xC0 && b <= 0xD8) || b == 0x96 || b == 0x97 {
				inRange++
			}
		}
		switch {
		case touchesASCII:
			latin += len(run)
		case inRange == len(run) && len(run) >= 2:
			hebrew += len(run)
			runs++
		default:
			latin += len(run)
		}
		i = j
	}
	return runs > 0 && hebrew > 2*latin
}

// csDecodeUTF7 decodes RFC 2152 UTF-7. In strict mode it reports ok=false on
// any malformed shift sequence; otherwise it keeps going and replaces what it
// cannot decode.
func csDecodeUTF7(raw []byte, lenient bool) (string, bool) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '+' {
			if c >= 0x80 {
				if !lenient {
					return "", false
				}
				b.WriteRune(utf8.RuneError)
			} else if c != 0 {
				b.WriteByte(c)
			}
			i++
			continue
		}
		i++
		if i < len(raw) && raw[i] == '-' {
			b.WriteByte('+')
			i++
			continue
		}
		var units []uint16
		var acc uint32
		bits := 0
		start := i
		for i < len(raw) {
			v := csB64Value(raw[i])
			if v < 0 {
				break
			}
			acc = acc<<6 | uint32(v)
			bits += 6
			if bits >= 16 {
				bits -= 16
				units = append(units, uint16(acc>>uint(bits)))
				acc &= 1<<uint(bits) - 1
			}
			i++
		}
		if !lenient && (i == start || bits >= 6 || acc != 0) {
			return "", false
		}
		b.WriteString(string(utf16.Decode(units)))
		if i < len(raw) && raw[i] == '-' {
			i++
		}
	}
	return b.String(), true
}

// csB64Values maps a byte to its base64 value, or -1. It is never written
// after initialisation.
var csB64Values = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// csB64Value returns the value of a base64 alphabet byte, or -1.
func csB64Value(c byte) int { return int(csB64Values[c]) }
