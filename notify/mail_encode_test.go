package notify

import (
	"bytes"
	"encoding/base64"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

// mailCRLFReference is the byte-at-a-time converter that mailCRLFConverter
// replaced: the definition it must keep to.
func mailCRLFReference(chunks [][]byte) []byte {
	var dst []byte
	lastCR := false
	for _, chunk := range chunks {
		for _, b := range chunk {
			switch {
			case b == '\n' && lastCR:
				dst = append(dst, '\n')
			case b == '\n':
				dst = append(dst, '\r', '\n')
			case lastCR:
				dst = append(dst, '\n', b)
			default:
				dst = append(dst, b)
			}
			lastCR = b == '\r'
		}
	}
	if lastCR {
		dst = append(dst, '\n')
	}
	return dst
}

func mailCRLFConverted(chunks [][]byte) []byte {
	var c mailCRLFConverter
	var dst []byte
	for i, ch := range chunks {
		dst, _ = c.convert(dst, ch, i == len(chunks)-1)
	}
	if len(chunks) == 0 {
		dst, _ = c.convert(dst, nil, true)
	}
	return dst
}

func TestMailCRLFConverterMatchesReference(t *testing.T) {
	inputs := []string{"", "a", "\r", "\n", "\r\n", "\n\r", "\r\r\n", "a\rb", "a\nb\r\nc\r", "\r\r\r",
		"line one\r\nline two\nline three\rline four", strings.Repeat("x\r\n", 100) + "end\r"}
	cuts := [][]byte{nil, {1}, {0, 1, 2}, {2, 2, 2, 2}, {5}}
	for _, in := range inputs {
		for _, c := range cuts {
			chunks := smtpSplit([]byte(in), c)
			if got, want := mailCRLFConverted(chunks), mailCRLFReference(chunks); !bytes.Equal(got, want) {
				t.Errorf("%q cut %v: got %q, want %q", in, c, got, want)
			}
		}
	}
}

// FuzzMailCRLFConverter: the line-at-a-time converter agrees with the
// byte-at-a-time definition however the input is cut into chunks.
func FuzzMailCRLFConverter(f *testing.F) {
	f.Add([]byte("a\r\nb\nc\rd\r"), []byte{1, 3})
	f.Add([]byte("\r\r\n\n"), []byte{0, 1})
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		chunks := smtpSplit(in, cuts)
		if got, want := mailCRLFConverted(chunks), mailCRLFReference(chunks); !bytes.Equal(got, want) {
			t.Fatalf("chunks %q: got %q, want %q", chunks, got, want)
		}
	})
}

// mailQPReference is mime/quotedprintable's Writer, the definition
// mailQuotedPrintable keeps to.
func mailQPReference(t testing.TB, text string) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestMailQuotedPrintableMatchesStdlib(t *testing.T) {
	inputs := []string{"", "a", "=", " ", "\t", "a \r\nb\t\nc ", "\r", "\n", "\r\n", "\r\r\n\n", "\r\xff\n",
		strings.Repeat("x", 75), strings.Repeat("x", 76), strings.Repeat("x", 74) + "=", strings.Repeat("x", 73) + "é",
		strings.Repeat("x", 74) + " \r\n", strings.Repeat("y", 75) + " ", "שלום עולם", "<p style=\"color:#1f2937\">Hello</p>\n",
		strings.Repeat("word ", 40) + "\n" + strings.Repeat("=", 30)}
	for _, in := range inputs {
		if got, want := mailQuotedPrintable(nil, in), mailQPReference(t, in); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", in, got, want)
		}
	}
}

// FuzzMailQuotedPrintable: the run-at-a-time encoder writes what the
// standard library's byte-at-a-time one does.
func FuzzMailQuotedPrintable(f *testing.F) {
	f.Add("Hello  \r\nworld\t\n" + strings.Repeat("ab=", 40))
	f.Add("\r\r\n\xfe \n")
	f.Fuzz(func(t *testing.T, in string) {
		if got, want := mailQuotedPrintable([]byte("prefix"), in), append([]byte("prefix"), mailQPReference(t, in)...); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %q\nwant %q", in, got, want)
		}
	})
}

// BenchmarkMailCRLFBareCRs converts a megabyte of classic-Mac line endings
// (bare CRs, no LF): linear, unlike the first line-at-a-time version, which
// searched the rest of the chunk for an LF once per CR (5 s here).
func BenchmarkMailCRLFBareCRs(b *testing.B) {
	in := bytes.Repeat([]byte("x\r"), 1<<19)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		_ = mailCRLF(in)
	}
}

// TestMailMultipartMatchesGoMessage holds the direct multipart writer to
// go-message's MultipartWriter and Header.Add formatting, byte for byte,
// including values that go-message folds and values it refuses.
func TestMailMultipartMatchesGoMessage(t *testing.T) {
	long := `attachment; filename="` + strings.Repeat("quarterly-report ", 6) + `.pdf"`
	for _, tc := range []mailPartHeader{
		{{"Content-Type", "text/plain; charset=utf-8"}, {"Content-Transfer-Encoding", "quoted-printable"}},
		{{"Content-Type", "multipart/alternative; boundary=\"=_alt_0123456789abcdef0123456789abcdef\""}},
		{{"Content-Type", "application/pdf; name=x.pdf"}, {"Content-Disposition", long}, {"Content-Transfer-Encoding", "base64"}},
		{{"Content-Disposition", strings.Repeat("x", 120)}},
		{{"X-Empty", ""}, {"Content-Type", "text/html; charset=utf-8"}},
		{{"Content-Type", "text/plain\r\nBcc: x"}, {"Content-Transfer-Encoding", "base64"}},
		{{"Content-Type", "text/plain;\n charset=utf-8\n"}},
	} {
		var want bytes.Buffer
		gw := textproto.NewMultipartWriter(&want)
		if err := gw.SetBoundary("=_b"); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		mw := &mailMultipart{w: &got, boundary: "=_b"}
		for range 2 {
			var th textproto.Header
			for i := len(tc) - 1; i >= 0; i-- {
				th.Add(tc[i][0], tc[i][1])
			}
			pw, err := gw.CreatePart(th)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pw.Write([]byte("body")); err != nil {
				t.Fatal(err)
			}
			if err := mw.part(tc); err != nil {
				t.Fatal(err)
			}
			got.WriteString("body")
		}
		if err := gw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := mw.close(); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%q:\n got %q\nwant %q", tc, got.String(), want.String())
		}
	}
}

// mailMemOriginal is an original in memory as the pipeline passes it: a
// reader with a Bytes method.
type mailMemOriginal struct {
	*bytes.Reader
	b []byte
}

func (m mailMemOriginal) Bytes() []byte { return m.b[len(m.b)-m.Len():] }

// mailSplitCases are originals for the in-memory and streaming paths of
// mailSplitOriginal: the corpus and the edge cases of header and line ends.
func mailSplitCases(t testing.TB) map[string][]byte {
	cases := map[string][]byte{
		"empty":            nil,
		"blank first line": []byte("\r\nbody\r\n"),
		"bare LF":          []byte("Subject: x\nContent-Type: text/plain\n\nbody\nline\n"),
		"bare CR":          []byte("Subject: x\rContent-Type: text/plain\r\rbody\r"),
		"mixed":            []byte("Subject: x\r\nContent-Type: text/plain\n\r\nbody\rline\r\n"),
		"no blank line":    []byte("Subject: x\r\nContent-Type: text/plain\r\n"),
		"no line end":      []byte("Subject: x"),
		"broken header":    []byte("Subject x\r\n: y\r\n\r\nbody\r\n"),
		"folded":           []byte("Content-Type: multipart/mixed;\r\n boundary=\"b\"\r\nContent-Length: 9\r\n\r\n--b--\r\n"),
		"huge header":      append(bytes.Repeat([]byte("X-Pad: "+strings.Repeat("p", 990)+"\r\n"), 1100), "\r\nbody\r\n"...),
		"long line":        []byte("Subject: " + strings.Repeat("s", 70000) + "\r\nContent-Type: text/plain\r\n\r\nbody"),
	}
	for _, dir := range []string{"plain", "charsets", "mime-edge", "autoreply", "bounces", "lists"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "corpus", dir, "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cases[dir+"/"+filepath.Base(f)] = b
		}
	}
	return cases
}

// TestForwardInMemoryMatchesStreaming: a forward of an original in memory
// (split in place) is byte for byte the forward of the same original
// streamed.
func TestForwardInMemoryMatchesStreaming(t *testing.T) {
	for name, b := range mailSplitCases(t) {
		want, _, werr := ComposeForward(mailTestForward(bytes.NewReader(b)))
		got, _, gerr := ComposeForward(mailTestForward(mailMemOriginal{bytes.NewReader(b), b}))
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Errorf("%s: in memory %d bytes (%v), streamed %d bytes (%v)", name, len(got), gerr, len(want), werr)
		}
	}
}

// FuzzMailSplitInMemory holds the in-memory split to the streaming one.
func FuzzMailSplitInMemory(f *testing.F) {
	for _, b := range mailSplitCases(f) {
		if len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, _, werr := ComposeForward(mailTestForward(bytes.NewReader(b)))
		got, _, gerr := ComposeForward(mailTestForward(mailMemOriginal{bytes.NewReader(b), b}))
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("in memory %q (%v), streamed %q (%v)", got, gerr, want, werr)
		}
	})
}

// TestMailBase64Lines holds the line-by-line encoder to the definition:
// the whole base64 encoding cut every 76 characters, CRLF between lines.
func TestMailBase64Lines(t *testing.T) {
	for n := range 400 {
		b := mailRandom(n, uint64(n))
		enc := base64.StdEncoding.EncodeToString(b)
		var lines []string
		for len(enc) > 76 {
			lines, enc = append(lines, enc[:76]), enc[76:]
		}
		want := strings.Join(append(lines, enc), "\r\n")
		var buf bytes.Buffer
		buf.WriteString("x")
		mailBase64Lines(&buf, b)
		if got := buf.String(); got != "x"+want {
			t.Fatalf("%d bytes: %q, want %q", n, got, want)
		}
	}
}
