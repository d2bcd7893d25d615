package ingest

import (
	"encoding/base64"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// parseRepeatReader yields line count times without holding more than one
// copy of it.
type parseRepeatReader struct {
	line  []byte
	count int
	off   int
}

func (r *parseRepeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.count > 0 {
		k := copy(p[n:], r.line[r.off:])
		n += k
		r.off += k
		if r.off == len(r.line) {
			r.off = 0
			r.count--
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// parseAllocated returns the bytes allocated while f runs.
func parseAllocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestParseLimitManyRecipients(t *testing.T) {
	var to strings.Builder
	for i := range 10000 {
		if i > 0 {
			to.WriteString(",")
			if i%4 == 0 {
				to.WriteString("\r\n")
			}
			to.WriteString(" ")
		}
		fmt.Fprintf(&to, "\"User %d\" <user%05d@Customer.Example>", i, i)
	}
	raw := parseTestMsg("From: a@b.example", "To: "+to.String(), "Cc: x@y.example", "Subject: many", "", "body")
	start := time.Now()
	m := parseString(raw)
	// Not a speed test (BenchmarkParse* measure speed): a bound far above
	// the ~20 ms this takes, so that only quadratic behaviour fails it,
	// even on a loaded machine under -race.
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("parsing took %v", d)
	}
	if len(m.To) != 10000 {
		t.Fatalf("len(To) = %d, want 10000", len(m.To))
	}
	if m.To[9999] != (domain.Address{Name: "User 9999", Addr: "user09999@customer.example"}) {
		t.Errorf("To[9999] = %+v", m.To[9999])
	}
	if len(m.Cc) != 1 || m.Subject != "many" || m.Text != "body" {
		t.Errorf("Cc %v, Subject %q, Text %q", m.Cc, m.Subject, m.Text)
	}
}

// TestParseLimitHugeAttachment streams a message with a 50 MiB attachment
// through Parse and checks that the attachment is counted, not held.
func TestParseLimitHugeAttachment(t *testing.T) {
	const size = 50 << 20
	pattern := make([]byte, 57) // one 76-character base64 line
	for i := range pattern {
		pattern[i] = byte(i * 7)
	}
	line := []byte(base64.StdEncoding.EncodeToString(pattern) + "\r\n")
	rest := size % len(pattern)
	head := parseTestMsg("From: a@b.example", "Subject: big", "Content-Type: multipart/mixed; boundary=b", "",
		"--b", "Content-Type: text/plain", "", "see attachment", "--b",
		"Content-Type: application/octet-stream", "Content-Disposition: attachment; filename=big.bin",
		"Content-Transfer-Encoding: base64", "", "")
	tail := base64.StdEncoding.EncodeToString(pattern[:rest]) + "\r\n--b--\r\n"
	total := int64(len(head)) + int64(len(line))*int64(size/len(pattern)) + int64(len(tail))
	lim := DefaultLimits()
	lim.MaxMessageBytes = 100 << 20

	var m *domain.Message
	alloc := parseAllocated(func() {
		r := io.MultiReader(strings.NewReader(head), &parseRepeatReader{line: line, count: size / len(pattern)}, strings.NewReader(tail))
		m = Parse(r, lim)
	})
	if len(m.Attachments) != 1 || m.Attachments[0].Size != size || m.Attachments[0].Name != "big.bin" {
		t.Fatalf("Attachments = %+v, want one of %d bytes", m.Attachments, size)
	}
	if m.Text != "see attachment" || m.Size != total || len(m.Warnings) != 0 {
		t.Errorf("Text %q, Size %d (want %d), Warnings %q", m.Text, m.Size, total, m.Warnings)
	}
	if alloc > 4<<20 {
		t.Errorf("Parse allocated %d bytes for a %d-byte message; want < 4 MiB", alloc, total)
	}
	t.Logf("allocated %d KiB while parsing %d MiB", alloc>>10, total>>20)
}

func TestParseLimitMessageBytes(t *testing.T) {
	lim := Limits{MaxMessageBytes: 1000}
	raw := parseTestMsg("From: a@b.example", "Subject: long", "", strings.Repeat("x", 5000))
	m := Parse(strings.NewReader(raw), lim)
	if m.Size != 1000 || len(m.Text) >= 1000 || !parseHasWarning(m, "exceeds 1000 bytes") {
		t.Errorf("Size %d, len(Text) %d, Warnings %q", m.Size, len(m.Text), m.Warnings)
	}
}

func TestParseLimitDepth(t *testing.T) {
	const depth = 40
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nSubject: deep\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ntoo deep to read\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	m := parseString(b.String())
	if !parseHasWarning(m, "nesting deeper than 20 levels") {
		t.Errorf("Warnings %q", m.Warnings)
	}
	if m.Text != "" || m.Subject != "deep" {
		t.Errorf("Text %q, Subject %q", m.Text, m.Subject)
	}

	// Within the limit the text is found.
	lim := DefaultLimits()
	lim.MaxDepth = depth + 1
	m = Parse(strings.NewReader(b.String()), lim)
	if m.Text != "too deep to read" {
		t.Errorf("with MaxDepth %d: Text %q, Warnings %q", lim.MaxDepth, m.Text, m.Warnings)
	}

	// Attached messages nest too.
	var r strings.Builder
	for range depth {
		r.WriteString("From: a@b.example\r\nContent-Type: message/rfc822\r\n\r\n")
	}
	r.WriteString("From: a@b.example\r\n\r\ninnermost")
	m = parseString(r.String())
	if !parseHasWarning(m, "nesting deeper") {
		t.Errorf("attached messages: Warnings %q", m.Warnings)
	}
}

func TestParseLimitParts(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
	b.WriteString("--p\r\nContent-Type: text/plain\r\n\r\nfirst\r\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "--p\r\nContent-Type: image/gif; name=\"%d.gif\"\r\n\r\nGIF\r\n", i)
	}
	b.WriteString("--p--\r\n")
	m := parseString(b.String())
	if len(m.Attachments) != 498 || m.Text != "first" || !parseHasWarning(m, "more than 500 MIME parts") {
		t.Errorf("%d attachments, Text %q, Warnings %q", len(m.Attachments), m.Text, m.Warnings)
	}
	if m.Size != int64(b.Len()) {
		t.Errorf("Size %d, want %d (the rest is still read)", m.Size, b.Len())
	}
}

func TestParseLimitText(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxTextBytes = 1 << 10
	body := strings.Repeat("שלום ", 2000)
	m := Parse(strings.NewReader(parseTestMsg("From: a@b.example", "Content-Type: text/plain; charset=utf-8", "", body)), lim)
	if len(m.Text) > lim.MaxTextBytes || !strings.HasPrefix(body, m.Text) || !parseHasWarning(m, "truncated") {
		t.Errorf("len(Text) %d, Warnings %q", len(m.Text), m.Warnings)
	}
}

func TestParseLimitEmptyBody(t *testing.T) {
	for _, raw := range []string{
		parseTestMsg("From: a@b.example", "Subject: nothing", "", ""),
		parseTestMsg("From: a@b.example", "Subject: nothing", "Content-Type: multipart/mixed; boundary=x", "", ""),
		parseTestMsg("From: a@b.example", "Subject: nothing", "Content-Type: text/plain", "Content-Transfer-Encoding: base64", "", ""),
	} {
		m := parseString(raw)
		if m.Subject != "nothing" || m.Text != "" || m.From.Addr != "a@b.example" {
			t.Errorf("Subject %q, Text %q, From %v", m.Subject, m.Text, m.From)
		}
	}
}

func TestParseLimitHeaderWithoutEnd(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nSubject: endless\r\n")
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("y", 100))
	}
	var m *domain.Message
	alloc := parseAllocated(func() { m = parseString(b.String()) })
	if m.Subject != "endless" || m.From.Addr != "a@b.example" || !parseHasWarning(m, "header exceeds 1048576 bytes") {
		t.Errorf("Subject %q, From %v, Warnings %q", m.Subject, m.From, m.Warnings)
	}
	if len(m.Headers) > hdrMaxFields {
		t.Errorf("%d header fields kept, want at most %d", len(m.Headers), hdrMaxFields)
	}
	if alloc > 16<<20 {
		t.Errorf("allocated %d bytes for a 3 MiB header", alloc)
	}

	// One header line of 5 MiB without any line break.
	long := "From: a@b.example\r\nSubject: " + strings.Repeat("z", 5<<20)
	alloc = parseAllocated(func() { m = parseString(long) })
	if m.From.Addr != "a@b.example" || len(m.Subject) > 1<<20 || !parseHasWarning(m, "header exceeds") {
		t.Errorf("From %v, len(Subject) %d, Warnings %q", m.From, len(m.Subject), m.Warnings)
	}
	if alloc > 16<<20 {
		t.Errorf("allocated %d bytes for a 5 MiB header line", alloc)
	}
}

// TestParseLimitPathologicalHeaders feeds headers built to make naive
// decoders quadratic.
func TestParseLimitPathologicalHeaders(t *testing.T) {
	tests := map[string]string{
		"many encoded-word starts": "Subject: " + strings.Repeat("=?", 300000),
		"many unfinished words":    "Subject: " + strings.Repeat("=?utf-8?q?a ", 60000),
		"many message ids":         "References: " + strings.Repeat("a@b ", 150000),
		"many comments":            "To: " + strings.Repeat("(c)", 200000) + "a@b.example",
		"many angle brackets":      "To: " + strings.Repeat("<", 300000),
		"many quotes":              "Cc: " + strings.Repeat("\"a,", 200000),
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			m := parseString("From: a@b.example\r\n" + h + "\r\n\r\nbody")
			// Only quadratic behaviour (minutes) fails this bound, not a
			// loaded machine.
			if d := time.Since(start); d > 60*time.Second {
				t.Errorf("took %v", d)
			}
			if m.Text != "body" {
				t.Errorf("Text = %q", m.Text)
			}
		})
	}
}
