package notify

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

// FuzzComposeAck feeds arbitrary subjects and display names: composition
// must succeed, the header must hold only the gateway's fields, and the
// subject and name must read back as the one-line text that went in.
func FuzzComposeAck(f *testing.F) {
	for _, seed := range [][2]string{
		{"Printer broken", "Dani"},
		{"המדפסת לא עובדת\r\nBcc: v@evil.example", "דני\nTo: x@y"},
		{"=?utf-8?q?fake?=", `"quoted" \ name`},
		{strings.Repeat("x", 2000), strings.Repeat("שם ", 300)},
		{"\x00\x7f\u0085\u2028\u202e", "\xff\xfe invalid utf-8"},
		{"", ""},
		{"  leading and trailing  ", " , ; : < > @ "},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, subject, name string) {
		a := mailEnglishAck()
		a.Subject, a.To.Name = subject, name
		a.HTML = "<p>" + subject + "</p>"
		raw, _, err := ComposeAck(a)
		if err != nil {
			t.Fatalf("compose: %v", err)
		}
		mailCheckNoInjection(t, raw)
		got := mailParse(t, raw)
		gotSubject, err := got.header.Subject()
		if err != nil {
			t.Fatalf("subject: %v", err)
		}
		if want := mailOneLine(subject); gotSubject != want {
			t.Errorf("subject %q reads back as %q, want %q", subject, gotSubject, want)
		}
		to, err := got.header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Address != a.To.Addr {
			t.Fatalf("To %q parses to %v (%v)", got.header.Get("To"), to, err)
		}
		if want := mailOneLine(mailStripBidiControls(name)); to[0].Name != want {
			t.Errorf("name %q reads back as %q, want %q", name, to[0].Name, want)
		}
	})
}

// FuzzComposeForward feeds arbitrary originals: composition must succeed,
// the gateway's header must be intact, and the original's body must be in
// the output byte for byte (line endings made CRLF).
func FuzzComposeForward(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b--\n"))
	f.Add([]byte("not a header\r\n\r\nbody"))
	f.Add([]byte(" leading space\r\n\r\n"))
	f.Add([]byte("Content-Type: text/plain\r\nContent-Transfer-Encoding: 8-bit\r\n\r\n\xff\xfe\r\r\n.\r\n"))
	f.Add([]byte("--=_mix_0123\r\n\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, orig []byte) {
		fw := mailTestForward(bytes.NewReader(orig))
		raw, _, err := ComposeForward(fw)
		if err != nil {
			t.Fatalf("compose: %v", err)
		}
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("read header: %v", err)
		}
		if h.Get("X-Ticket-Gateway-Loop") != fw.LoopMarker || h.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("header damaged: %v", h.Map())
		}
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Error("bare LF in output")
		}
		norm := mailCRLF(orig)
		if _, body, ok := bytes.Cut(norm, []byte("\r\n\r\n")); ok && !bytes.Contains(raw, body) {
			t.Error("original body not copied verbatim")
		}
	})
}
