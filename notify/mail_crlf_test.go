package notify

import (
	"bytes"
	"testing"
)

// mailIsCRLFSlow is the definition mailIsCRLF implements: every CR is
// followed by LF and every LF follows a CR.
func mailIsCRLFSlow(b []byte) bool {
	for i, c := range b {
		switch {
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return false
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return false
		}
	}
	return true
}

func TestMailIsCRLF(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", true},
		{"no line ending", true},
		{"a\r\nb\r\n", true},
		{"\r\n\r\n", true},
		{"a\nb\r\n", false},
		{"\n", false},
		{"a\r\nb\rc\r\n", false},
		{"a\r\n\r", false},
		{"\r", false},
		{"a\r\r\n", false},
		{"a\r\n\n", false},
	} {
		if got := mailIsCRLF([]byte(tc.in)); got != tc.want {
			t.Errorf("mailIsCRLF(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzMailIsCRLF(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "\r\r\n", "x\n", "\r", "line\r\nline\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := mailIsCRLF(b), mailIsCRLFSlow(b); got != want {
			t.Fatalf("mailIsCRLF(%q) = %v, want %v", b, got, want)
		}
	})
}

func BenchmarkMailIsCRLF(b *testing.B) {
	msg := bytes.Repeat([]byte("Line of a typical message: the quick brown fox jumps over the lazy dog.\r\n"), 300)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if !mailIsCRLF(msg) {
			b.Fatal("not CRLF")
		}
	}
}
