package ingest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"testing"

	"pgregory.net/rapid"
)

// TestParseRoundTripProperty builds random multipart messages with the
// standard library's writer and checks that Parse finds every part with its
// exact decoded size, whatever the transfer encoding and line structure.
func TestParseRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		fmt.Fprintf(&buf, "From: a@b.example\r\nSubject: round trip\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n", w.Boundary())
		text := rapid.StringMatching(`[a-zA-Z0-9][a-zA-Z0-9 ,.]{0,200}[a-z]`).Draw(t, "text")
		h := textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}}
		pw, _ := w.CreatePart(h)
		fmt.Fprint(pw, text)

		n := rapid.IntRange(0, 6).Draw(t, "parts")
		var sizes []int64
		for i := range n {
			body := rapid.SliceOfN(rapid.Byte(), 0, 5000).Draw(t, fmt.Sprintf("body%d", i))
			enc := rapid.SampledFrom([]string{"base64", "quoted-printable", "8bit"}).Draw(t, fmt.Sprintf("enc%d", i))
			if enc == "8bit" {
				body = bytes.ReplaceAll(body, []byte("\r"), nil) // CR-only lines are normalised
			}
			h := textproto.MIMEHeader{
				"Content-Type":              {"application/octet-stream"},
				"Content-Disposition":       {fmt.Sprintf("attachment; filename=\"f%d.bin\"", i)},
				"Content-Transfer-Encoding": {enc},
			}
			pw, _ := w.CreatePart(h)
			switch enc {
			case "base64":
				lineLen := rapid.SampledFrom([]int{76, 64, 1000}).Draw(t, "lineLen")
				s := base64.StdEncoding.EncodeToString(body)
				for len(s) > lineLen {
					fmt.Fprintf(pw, "%s\r\n", s[:lineLen])
					s = s[lineLen:]
				}
				fmt.Fprint(pw, s)
			case "quoted-printable":
				qw := quotedprintable.NewWriter(pw)
				qw.Binary = true
				_, _ = qw.Write(body)
				_ = qw.Close()
			default:
				_, _ = pw.Write(body)
			}
			sizes = append(sizes, int64(len(body)))
		}
		_ = w.Close()

		m := Parse(bytes.NewReader(buf.Bytes()), DefaultLimits())
		if m.Text != text {
			t.Fatalf("Text = %q, want %q", m.Text, text)
		}
		if len(m.Attachments) != len(sizes) {
			t.Fatalf("%d attachments, want %d (warnings %q)", len(m.Attachments), len(sizes), m.Warnings)
		}
		for i, a := range m.Attachments {
			if a.Size != sizes[i] || a.Name != fmt.Sprintf("f%d.bin", i) {
				t.Fatalf("attachment %d = %+v, want size %d", i, a, sizes[i])
			}
		}
		if len(m.Warnings) != 0 {
			t.Fatalf("warnings %q", m.Warnings)
		}
	})
}
