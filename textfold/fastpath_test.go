package textfold

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fast paths of Fold must give exactly what the general algorithm gives:
// foldSlow (reference_test.go) is Fold as it was before them.

var fastPathCases = []string{
	"",
	" ",
	"\t\n",
	"a",
	"already folded",
	"already folded ",
	" already folded",
	"already  folded",
	"already folded\n",
	"New  Employee",
	"  leading\tand\ntrailing  ",
	"lower then UPPER",
	"ctrl\x00\x01\x7fchars",
	"x\vy\fz\r",
	// Hebrew: niqqud, cantillation, final letters, punctuation.
	"לֹא עוֹבֵד",
	"שָׁלוֹם",
	"בְּרֵאשִׁ֖ית בָּרָ֣א",
	"שלום",
	"ספקים ספקימ",
	"ך ם ן ף ץ",
	"ךםןףץ",
	"עובד חדש",
	"מחשב־נייד",                  // maqaf
	"צה״ל ג׳",                    // gershayim, geresh
	"פסוק׃ נ׆ ׀",                 // sof pasuq, nun hafukha, paseq
	"\u05BDa\u05BF\u05C7",        // meteg, rafe, qamats qatan
	"\u05B4\u05B4",               // marks with nothing before them
	"e\u05B4\u0301x",             // Hebrew mark after ASCII
	"é\u05B4",                    // after a character of the general path
	"\U0001D165\u05B4\U0001D165", // between non-starters
	"א\U0001D165\u05B4",          // non-starter then mark
	"\uFB2A\uFB4F\u05F0\uFB1D",   // Hebrew presentation forms, Yiddish ligature
	// Mixed ASCII and other scripts.
	"Hello team, שלום, המדפסת בקומה השנייה לא מדפיסה מהבוקר.\n",
	"Printer on 2nd floor — תקלה!",
	"Café crème",
	"Cafe\u0301",
	"naïve Ünïcödé",
	"Σίσυφος ΣΣ ς",
	"Привет, МИР",
	"日本語テキスト",
	"한국어 \u1100\u1161\u11A8",
	"\u0B47\u0B3E \u0CBF\u0CD5", // compositions of two starters
	// Fullwidth letters and compatibility forms.
	"ＦＵＬＬ ｗｉｄｔｈ　ｓｐａｃｅ",
	"①②③ ㎏ ™ ½",
	"\uFDFA",
	"\u212A\u212B", // Kelvin, Angstrom
	// Ligatures.
	"ﬁle ﬂow ﬀ ﬃ",
	"ĳ Ǆ",
	// Turkish dotted and dotless I, German sharp s.
	"İstanbul ıi İ",
	"STRAßE strasse ẞ",
	// Combining marks.
	"a\u0301\u0308\u0327",
	"\u0301leading mark",
	"=\u0338 <\u0338 ≠",
	"ά\u0345",
	// White space beyond ASCII.
	"a\u00A0b\u3000c\u0085d\u2028e\u2003f",
	"\u00A0\u00A0lead",
	"trail\u00A0",
	// Format characters.
	"\u200fתקלה\u200e",
	"\u202Bעברית\u202C",
	"zero\u200Bwidth\u200D\u200C join\u2060er\uFEFF",
	"\u2066iso\u2069 \u206A\u206F",
	"soft\u00ADhyphen",
	"é\u200Fé",
	"\U0001D165\u200F\u05B4",
	// Long ASCII: eight-byte blocks with single and double spaces, tabs,
	// control characters and upper case at block boundaries.
	"Hello team, since this morning the second floor printer shows an error and nobody can print. ",
	"ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz @[`{ 0123456789",
	"1234567 1234567  1234567\t1234567\x001234567\x7f12345678        12345678 ",
	"        leading spaces, then words of eight. trailing        ",
	"seven78 seven78 seven78 seven78 ",
	"eight678 eight678 eight678",
	// Invalid UTF-8.
	"bad\xffutf8",
	"\xff\xfe",
	"\xd7",
	"\xd7\x90\xd7",
	"\xd7A",
	"\xd6\xd7\x90 \xd7\xd7",
	"\xe2\x80",
	"\xe2\x80\x8f\xff",
	"ok\xc0\xafok",
	"\xed\xa0\x80", // surrogate
}

func TestFoldFastPathEqual(t *testing.T) {
	for _, s := range fastPathCases {
		want := foldSlow(s)
		if got := Fold(s); got != want {
			t.Errorf("Fold(%+q) = %+q, general path %+q", s, got, want)
		}
		checkAppendFold(t, s, want)
	}
}

// checkAppendFold checks that AppendFold appends exactly want, the folded
// form of s, whatever the buffer holds already.
func checkAppendFold(t *testing.T, s, want string) {
	t.Helper()
	for _, pre := range []string{"", "x", "x ", " "} {
		buf := make([]byte, len(pre), len(pre)+1) // grows while appending
		copy(buf, pre)
		if got := string(AppendFold(buf, s)); got != pre+want {
			t.Errorf("AppendFold(%+q, %+q) = %+q, want %+q", pre, s, got, pre+want)
		}
	}
}

// TestFoldFastPathEveryRune puts every code point of the Basic Multilingual
// Plane (and of the planes with combining characters) between characters the
// fast paths handle, and compares with the general path.
func TestFoldFastPathEveryRune(t *testing.T) {
	contexts := [][2]string{
		{"", ""},
		{"Aא", "\u05B4\u200Fb"},
		{"\u05B0", "ם"},
	}
	if testing.Short() {
		contexts = contexts[1:2]
	}
	for r := rune(0); r <= 0x1FFFF; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		for _, c := range contexts {
			s := c[0] + string(r) + c[1]
			if got, want := Fold(s), foldSlow(s); got != want {
				t.Errorf("Fold(%+q) = %+q, general path %+q", s, got, want)
			}
		}
	}
}

// TestFoldFastPathRandom compares short strings drawn from characters chosen
// to sit on both sides of every fast-path decision.
func TestFoldFastPathRandom(t *testing.T) {
	alphabet := []string{
		"a", "Z", " ", "\t", "\n", ".", "=", "<",
		"א", "ך", "ם", "מ", "ץ", "ת", "\u05B0", "\u05B4", "\u05BC", "\u05BD", "\u05BF", "\u05C1", "\u05C7", "\u0591",
		"\u05BE", "\u05C0", "\u05C3", "\u05C6", "\u05F3", "\u05F0", "\uFB2A", "\uFB4F",
		"\u200B", "\u200D", "\u200F", "\u202B", "\u202E", "\u2060", "\u2066", "\uFEFF", "\u00AD", "\u2061",
		"\u0301", "\u0308", "\u0327", "\u0338", "\u0345", "\U0001D165", "\U0001D16D", "\u0F39",
		"\u0B47", "\u0B3E", "\u1100", "\u1161", "\u11A8", "\uAC00",
		"ﬁ", "İ", "ı", "ß", "ẞ", "Ｆ", "é", "Σ", "ς", "\u212A", "\uFDFA", "½",
		"\u00A0", "\u3000", "\u0085", "\u2028", "\uFFFD", "\xff", "\xd7", "\xe2\x80",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := b.String()
		want := foldSlow(s)
		if got := Fold(s); got != want {
			t.Errorf("Fold(%+q) = %+q, general path %+q", s, got, want)
		}
		checkAppendFold(t, s, want)
	}
}

// TestFoldAlreadyFolded checks that folded text comes back without being
// copied, and other text in one allocation.
func TestFoldAlreadyFolded(t *testing.T) {
	for _, s := range []string{"already folded", "a", "x@y.example", "line one two"} {
		if got := Fold(s); got != s {
			t.Errorf("Fold(%q) = %q", s, got)
		}
		if n := testing.AllocsPerRun(100, func() { Fold(s) }); n != 0 {
			t.Errorf("Fold(%q) allocates %v times", s, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Fold("Hello  World, שָׁלוֹם ךם\u200F") }); n != 1 {
		t.Errorf("Fold of ASCII and Hebrew allocates %v times, want 1", n)
	}
}

func FuzzFoldFastPathEqual(f *testing.F) {
	for _, s := range fastPathCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := Fold(s), foldSlow(s)
		if got != want {
			t.Fatalf("Fold(%+q) = %+q, general path %+q", s, got, want)
		}
		checkAppendFold(t, s, want)
	})
}

// TestFoldASCIIBlocks puts every pair of ASCII bytes at every offset of the
// eight-byte blocks that Fold handles at once, with single and double
// spaces around, and compares with the general path.
func TestFoldASCIIBlocks(t *testing.T) {
	prefixes := []string{"", " ", "A", "ab CD e", "abcdefg ", "  xY  zW", "x\tY"}
	for _, pre := range prefixes {
		for pos := 0; pos <= 8; pos++ {
			lead := (pre + "Hello, World! ")[:pos]
			for a := 0; a < utf8.RuneSelf; a++ {
				for b := 0; b < utf8.RuneSelf; b++ {
					s := lead + string(rune(a)) + string(rune(b)) + "Mixed Case Words  and\ttabs "
					if got, want := Fold(s), foldSlow(s); got != want {
						t.Fatalf("Fold(%+q) = %+q, general path %+q", s, got, want)
					}
				}
			}
		}
	}
}

// TestFoldASCIIRandom compares long, mostly ASCII strings.
func TestFoldASCIIRandom(t *testing.T) {
	alphabet := "aaaaeeeeiioouuxyzZMQAEIO@[`{    \t\n\r\v\f\x00\x1f\x7f..,,!09"
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(100) {
			if rng.IntN(50) == 0 {
				b.WriteString([]string{"ם", "\u05B4", "é", "\u200F", "ﬁ", "\u00A0", "\xff"}[rng.IntN(7)])
				continue
			}
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		s := b.String()
		if got, want := Fold(s), foldSlow(s); got != want {
			t.Fatalf("Fold(%+q) = %+q, general path %+q", s, got, want)
		}
	}
}
