package ingest

import (
	"encoding/json"
	"flag"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// parseUpdate reports whether golden files are to be rewritten (-update).
// The flag is registered only when no other test file of the package has
// registered it already.
var parseUpdate = func() func() bool {
	if f := flag.Lookup("update"); f != nil {
		return func() bool {
			g, ok := f.Value.(flag.Getter)
			if !ok {
				return false
			}
			v, _ := g.Get().(bool)
			return v
		}
	}
	p := flag.Bool("update", false, "rewrite the golden files under testdata")
	return func() bool { return *p }
}()

// parseTestMsg joins header and body lines with CRLF.
func parseTestMsg(lines ...string) string {
	return strings.Join(lines, "\r\n")
}

func parseString(s string) *domain.Message {
	return Parse(strings.NewReader(s), DefaultLimits())
}

// parseHasWarning reports whether some warning contains sub.
func parseHasWarning(m *domain.Message, sub string) bool {
	for _, w := range m.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func TestParseEnvelope(t *testing.T) {
	raw := parseTestMsg(
		"Return-Path: <Bounce@Example.COM>",
		"From: =?windows-1255?B?5OXj5CDg4A==?= <Dana.Levi@ACME.co.IL>",
		"Sender: helper@acme.co.il",
		"Reply-To: support-replies@acme.co.il",
		"To: undisclosed-recipients:;",
		"Cc: \"IT, Manager\" <it@acme.co.il>, yossi.acme@gmail.com",
		"Subject: =?utf-8?q?Re:_=D7=94=D7=9E=D7=93=D7=A4=D7=A1=D7=AA?= =?utf-8?q?_down?=",
		"Message-ID:  <abc.123@mail.acme.co.il>  (Outlook)",
		"In-Reply-To: <prev@x.example> (Dana's message of Mon)",
		"References: <root@x.example>",
		"\t<prev@x.example> <root@x.example>",
		"Date: Mon, 30 Nov 2026 09:30:05 +0200 (IST)",
		"X-Custom: =?utf-8?b?16nXnNeV150=?=",
		"",
		"body",
	)
	m := parseString(raw)
	if want := (domain.Address{Name: "הודה אא", Addr: "Dana.Levi@acme.co.il"}); m.From != want {
		t.Errorf("From = %+v, want %+v", m.From, want)
	}
	if m.Sender == nil || m.Sender.Addr != "helper@acme.co.il" {
		t.Errorf("Sender = %+v", m.Sender)
	}
	if len(m.ReplyTo) != 1 || m.ReplyTo[0].Addr != "support-replies@acme.co.il" {
		t.Errorf("ReplyTo = %+v", m.ReplyTo)
	}
	if len(m.To) != 0 {
		t.Errorf("To = %+v, want none (empty group)", m.To)
	}
	wantCc := []domain.Address{{Name: "IT, Manager", Addr: "it@acme.co.il"}, {Addr: "yossi.acme@gmail.com"}}
	if !reflect.DeepEqual(m.Cc, wantCc) {
		t.Errorf("Cc = %+v, want %+v", m.Cc, wantCc)
	}
	if m.ReturnPath == nil || *m.ReturnPath != "Bounce@example.com" {
		t.Errorf("ReturnPath = %v", m.ReturnPath)
	}
	if m.Subject != "Re: המדפסת down" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if m.MessageID != "abc.123@mail.acme.co.il" {
		t.Errorf("MessageID = %q", m.MessageID)
	}
	if !reflect.DeepEqual(m.InReplyTo, []string{"prev@x.example"}) {
		t.Errorf("InReplyTo = %q", m.InReplyTo)
	}
	if !reflect.DeepEqual(m.References, []string{"root@x.example", "prev@x.example"}) {
		t.Errorf("References = %q", m.References)
	}
	if want := time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC); !m.Date.Equal(want) {
		t.Errorf("Date = %v, want %v", m.Date, want)
	}
	if v, _ := m.Header("x-custom"); v != "שלום" {
		t.Errorf("X-Custom = %q, want decoded", v)
	}
	if m.Text != "body" || m.Size != int64(len(raw)) {
		t.Errorf("Text = %q, Size = %d", m.Text, m.Size)
	}
	if len(m.Warnings) != 0 {
		t.Errorf("Warnings = %q, want none", m.Warnings)
	}
}

func TestParseAddresses(t *testing.T) {
	tests := []struct {
		name  string
		field string // the To value
		want  []domain.Address
	}{
		{"plain", "a@x.example, B <b@X.EXAMPLE>", []domain.Address{{Addr: "a@x.example"}, {Name: "B", Addr: "b@x.example"}}},
		{"trailing comma", "a@x.example,", []domain.Address{{Addr: "a@x.example"}}},
		{"unquoted comma in name", "Levi, Dana <dana@acme.co.il>", []domain.Address{{Name: "Levi, Dana", Addr: "dana@acme.co.il"}}},
		{"two angle addrs in one item", "Bob <bob@x> Bobby <bobby@x>", []domain.Address{{Name: "Bob", Addr: "bob@x"}, {Name: "Bobby", Addr: "bobby@x"}}},
		{"comment name", "dana@acme.co.il (Dana Levi)", []domain.Address{{Name: "Dana Levi", Addr: "dana@acme.co.il"}}},
		{"encoded word in quotes", `"=?utf-8?b?15PXoNeU?=" <d@x.example>`, []domain.Address{{Name: "דנה", Addr: "d@x.example"}}},
		{"raw utf-8 name", "Jöhn Doe <jdoe@x.example>", []domain.Address{{Name: "Jöhn Doe", Addr: "jdoe@x.example"}}},
		{"group", "Team: a@x.example, b@x.example;, c@x.example", []domain.Address{{Addr: "a@x.example"}, {Addr: "b@x.example"}, {Addr: "c@x.example"}}},
		{"garbage only", "not an address", nil},
		{"unclosed angle", "Dana <dana@acme.co.il", []domain.Address{{Name: "Dana", Addr: "dana@acme.co.il"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := parseString(parseTestMsg("From: a@b.example", "To: "+tc.field, "", "x"))
			if !reflect.DeepEqual(m.To, tc.want) {
				t.Errorf("To(%q) = %+v, want %+v", tc.field, m.To, tc.want)
			}
		})
	}
}

func TestParseFromFallbacks(t *testing.T) {
	tests := []struct {
		name     string
		header   []string
		wantFrom domain.Address
		wantRP   *string
	}{
		{"sender", []string{"From: undisclosed", "Sender: s@x.example"}, domain.Address{Addr: "s@x.example"}, nil},
		{"return path", []string{"Return-Path: <rp@x.example>"}, domain.Address{Addr: "rp@x.example"}, parsePtr("rp@x.example")},
		{"null return path", []string{"From: MAILER-DAEMON <>", "Return-Path: <>"}, domain.Address{Name: "MAILER-DAEMON"}, parsePtr("")},
		{"bare local part", []string{"From: mailer-daemon"}, domain.Address{Addr: "mailer-daemon"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := parseString(parseTestMsg(append(tc.header, "", "x")...))
			if m.From != tc.wantFrom {
				t.Errorf("From = %+v, want %+v", m.From, tc.wantFrom)
			}
			if !reflect.DeepEqual(m.ReturnPath, tc.wantRP) {
				t.Errorf("ReturnPath = %v, want %v", m.ReturnPath, tc.wantRP)
			}
		})
	}
}

func parsePtr(s string) *string { return &s }

func TestParseMessageIDs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"<a@x>", []string{"a@x"}},
		{"<a@x> <b@y>\t<a@x>", []string{"a@x", "b@y"}},
		{"<a@x>,<b@y>", []string{"a@x", "b@y"}},
		{"a@x b@y", []string{"a@x", "b@y"}},
		{"<a@x> (John's message of \"Mon\")", []string{"a@x"}},
		{"<broken", []string{"broken"}},
		{"<>", nil},
		{"", nil},
		{"<a\r\n @x>", []string{"a@x"}},
	}
	for _, tc := range tests {
		if got := hdrMsgIDs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("hdrMsgIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"Mon, 30 Nov 2026 09:30:05 +0200", time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC), true},
		{"30 Nov 2026 09:30:05 +0200", time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC), true},
		{"Mon, 30 Nov 2026 09:30:05 +0200 (IST)", time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC), true},
		{"Mon,30 Nov 2026 09:30:05 +0200", time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC), true},
		{"Mon Nov 30 09:30:05 2026", time.Date(2026, 11, 30, 9, 30, 5, 0, time.UTC), true},
		{"2026-11-30 09:30:05 +0200", time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC), true},
		{"Mon, 30 Nov 2026 09:30:05 +0200 CEST", time.Date(2026, 11, 30, 7, 30, 5, 0, time.UTC), true},
		{"Pn, 29 paX 2007 21:13:00 +0100", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tc := range tests {
		got, ok := hdrDate(tc.in)
		if ok != tc.ok || (ok && !got.Equal(tc.want)) {
			t.Errorf("hdrDate(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseSubjects(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"windows-1255 Q", "=?windows-1255?Q?=FA=F7=EC=E4?=", "תקלה"},
		{"iso-8859-8-i B", "=?iso-8859-8-i?B?+vfs5A==?=", "תקלה"},
		{"split utf-8 character", "=?UTF-8?B?16rXpw==?= =?UTF-8?B?15zXlA==?=", "תקלה"},
		{"utf-8 split inside a character", "=?UTF-8?Q?=D7?= =?UTF-8?Q?=AA=D7=A7?=", "תק"},
		{"space between words dropped", "=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		{"text between words kept", "=?utf-8?q?a?= - =?utf-8?q?b?=", "a - b"},
		{"alias win-1255", "=?win-1255?Q?=F9=EC=E5=ED?=", "שלום"},
		{"alias ms-hebrew", "=?ms-hebrew?Q?=F9=EC=E5=ED?=", "שלום"},
		{"language suffix", "=?utf-8*he?Q?=D7=A9?=", "ש"},
		{"invalid base64 left alone", "=?utf-8?B?@@@@?= x", "=?utf-8?B?@@@@?= x"},
		{"unknown charset best effort", "=?x-nonsense?Q?abc?=", "abc"},
		{"raw utf-8", "Säying Hello", "Säying Hello"},
		{"folded tab", "Hello\r\n\tworld", "Hello world"},
		{"utf-7 word", "=?utf-7?Q?Fr+AOQ-sche?=", "Fräsche"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := parseString(parseTestMsg("From: a@b.example", "Subject: "+tc.header, "", "x"))
			if m.Subject != tc.want {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.want)
			}
		})
	}
}

func TestParseRaw8BitHeaders(t *testing.T) {
	// Raw windows-1255 bytes in a header: decoded with the charset the
	// message declares, or guessed as Hebrew when it declares none.
	hebrew := "\xfa\xf7\xec\xe4 \xe1\xee\xe3\xf4\xf1\xfa" // "תקלה במדפסת"
	m := parseString(parseTestMsg("From: a@b.example", "Subject: "+hebrew, "Content-Type: text/plain; charset=windows-1255", "", "x"))
	if m.Subject != "תקלה במדפסת" {
		t.Errorf("declared charset: Subject = %q", m.Subject)
	}
	m = parseString(parseTestMsg("From: a@b.example", "Subject: "+hebrew, "", "x"))
	if m.Subject != "תקלה במדפסת" {
		t.Errorf("guessed charset: Subject = %q", m.Subject)
	}
	m = parseString(parseTestMsg("From: a@b.example", "Subject: caf\xe9 cr\xe8me", "", "x"))
	if m.Subject != "café crème" {
		t.Errorf("latin guess: Subject = %q", m.Subject)
	}
	// A multipart message declares no charset of its own: its first text
	// part's charset is used (windows-1251 here, which no guess would find).
	m = parseString(parseTestMsg("From: \xc8\xe2\xe0\xed <ivan@x.example>", "Subject: \xcf\xf0\xe8\xe2\xe5\xf2",
		"Content-Type: multipart/alternative; boundary=b", "", "--b", "Content-Type: text/plain; charset=windows-1251", "", "x", "--b--"))
	if m.Subject != "Привет" || m.From.Name != "Иван" {
		t.Errorf("body charset: Subject = %q, From = %+v", m.Subject, m.From)
	}
}

// TestParseConcurrent runs Parse from several goroutines (run with -race):
// the parser keeps no shared mutable state.
func TestParseConcurrent(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "bench", "typical.eml"))
	if err != nil {
		t.Fatal(err)
	}
	want := parseString(string(raw))
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			var msg string
			for range 20 {
				m := Parse(strings.NewReader(string(raw)), DefaultLimits())
				if m.Text != want.Text || m.Subject != want.Subject || len(m.Attachments) != 1 {
					msg = "concurrent parse differs"
				}
			}
			errs <- msg
		}()
	}
	for range 8 {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
}

func TestParseBodies(t *testing.T) {
	tests := []struct {
		name         string
		raw          string
		wantText     string
		fromHTML     bool
		wantHTML     bool
		wantAtt      []domain.Attachment
		wantWarnings []string
	}{
		{
			name: "alternative prefers plain",
			raw: parseTestMsg("From: a@b.example", "Content-Type: multipart/alternative; boundary=b", "",
				"--b", "Content-Type: text/plain; charset=utf-8", "", "plain text", "--b",
				"Content-Type: text/html; charset=utf-8", "", "<p>html text</p>", "--b--", ""),
			wantText: "plain text", wantHTML: true,
		},
		{
			name: "html only",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/html", "",
				"<html><body><p>Hello <b>there</b></p><p>Second</p></body></html>"),
			wantText: "Hello there\n\nSecond", fromHTML: true, wantHTML: true,
		},
		{
			name: "quoted-printable windows-1255",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain; charset=windows-1255",
				"Content-Transfer-Encoding: quoted-printable", "", "=F9=EC=E5=ED =",
				"=E5=EC=ED"),
			wantText: "שלום ולם",
		},
		{
			name: "mislabelled utf-8 is windows-1255",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain; charset=utf-8", "",
				"\xf9\xec\xe5\xed \xf2\xe5\xec\xed"),
			wantText:     "שלום עולם",
			wantWarnings: []string{"not valid UTF-8; decoded as windows-1255"},
		},
		{
			name: "malformed content-type still decodes",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain charset=windows-1255", "",
				"\xf9\xec\xe5\xed"),
			wantText:     "שלום",
			wantWarnings: []string{"malformed Content-Type"},
		},
		{
			name: "unknown transfer encoding taken as is",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: x-weird", "", "as is"),
			wantText:     "as is",
			wantWarnings: []string{`unknown Content-Transfer-Encoding "x-weird"`},
		},
		{
			name: "8-bit spelling",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: 8-bit", "", "ok"),
			wantText: "ok",
		},
		{
			name: "invalid quoted-printable kept",
			raw: parseTestMsg("From: a@b.example", "Content-Transfer-Encoding: quoted-printable", "",
				"100=% sure =ZZ and =4"),
			wantText:     "100=% sure =ZZ and =4",
			wantWarnings: []string{"invalid quoted-printable"},
		},
		{
			name: "unknown charset",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain; charset=x-klingon", "",
				"caf\xe9"),
			wantText:     "café",
			wantWarnings: []string{`unknown charset "x-klingon"`},
		},
		{
			name: "attachments and names",
			raw: parseTestMsg("From: a@b.example", "Content-Type: multipart/mixed; boundary=\"m\"", "",
				"--m", "Content-Type: text/plain", "", "see attached", "--m",
				"Content-Type: application/pdf", "Content-Disposition: attachment; filename*=UTF-8''%D7%97%D7%A9%D7%91%D7%95%D7%9F.pdf",
				"Content-Transfer-Encoding: base64", "", "SGVsbG8gV29ybGQ=", "--m",
				"Content-Type: image/png; name=\"=?utf-8?B?16rXnteV16DXlA==?=.png\"", "", "PNG", "--m",
				"Content-Type: text/plain; name=\"C:\\\\temp\\\\log.txt\"", "Content-Disposition: attachment", "", "log line", "--m",
				"Content-Type: application/octet-stream", "Content-Disposition: attachment;",
				" filename*0*=iso-8859-8''%F9%EC;", " filename*1=\".doc\"", "", "x", "--m--"),
			wantText: "see attached",
			wantAtt: []domain.Attachment{
				{Name: "חשבון.pdf", ContentType: "application/pdf", Size: 11},
				{Name: "תמונה.png", ContentType: "image/png", Size: 3},
				{Name: "log.txt", ContentType: "text/plain", Size: 8},
				{Name: "של.doc", ContentType: "application/octet-stream", Size: 1},
			},
		},
		{
			name: "attached message",
			raw: parseTestMsg("From: a@b.example", "Content-Type: multipart/mixed; boundary=m", "",
				"--m", "Content-Type: text/plain", "", "fyi", "--m", "Content-Type: message/rfc822", "",
				"From: c@d.example", "Subject: Original / report", "", "inner text", "--m--"),
			wantText: "fyi",
			wantAtt:  []domain.Attachment{{Name: "Original _ report.eml", ContentType: "message/rfc822", Size: 59}},
		},
		{
			name: "attached message text is the fallback",
			raw: parseTestMsg("From: a@b.example", "Content-Type: multipart/mixed; boundary=m", "",
				"--m", "Content-Type: message/rfc822", "", "From: c@d.example", "", "inner text", "--m--"),
			wantText: "inner text",
			wantAtt:  []domain.Attachment{{ContentType: "message/rfc822", Size: 31}},
		},
		{
			name: "format flowed",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain; format=flowed; delsp=no", "",
				"This is one ", "paragraph.", "> quoted ", "> too", "-- ", "sig"),
			wantText: "This is one paragraph.\n> quoted too\n-- \nsig",
		},
		{
			name: "uuencoded attachment",
			raw: parseTestMsg("From: a@b.example", "", "see file", "", "begin 644 hello.txt",
				"+:&5L;&\\@=V]R;&0 ", "`", "end", "", "bye"),
			wantText: "see file\n\n\nbye",
			wantAtt:  []domain.Attachment{{Name: "hello.txt", ContentType: "text/plain", Size: 11}},
		},
		{
			name: "multipart without boundary parameter",
			raw: parseTestMsg("From: a@b.example", "Content-Type: multipart/mixed", "",
				"--guess", "Content-Type: text/plain", "", "found", "--guess--"),
			wantText:     "found",
			wantWarnings: []string{"guessed"},
		},
		{
			name: "missing closing boundary",
			raw: parseTestMsg("From: a@b.example", "Content-Type: multipart/mixed; boundary=m", "",
				"--m", "", "text", ""),
			wantText:     "text",
			wantWarnings: []string{"without its closing delimiter"},
		},
		{
			name: "base64 that is text",
			raw: parseTestMsg("From: a@b.example", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "",
				"this is not base64 at all but plain words in a line that go on and on and on"),
			wantText:     "this is not base64 at all but plain words in a line that go on and on and on",
			wantWarnings: []string{"declared base64 but the body is text"},
		},
		{
			name:     "old mac line ends",
			raw:      "From: a@b.example\rSubject: cr\r\rline one\rline two",
			wantText: "line one\nline two",
		},
		{
			name:     "mbox separator line",
			raw:      parseTestMsg("From someone@x Mon Sep 20 19:29:27 2021", "From: a@b.example", "", "hi"),
			wantText: "hi",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := parseString(tc.raw)
			if m.Text != tc.wantText {
				t.Errorf("Text = %q, want %q", m.Text, tc.wantText)
			}
			if m.TextFromHTML != tc.fromHTML {
				t.Errorf("TextFromHTML = %v, want %v", m.TextFromHTML, tc.fromHTML)
			}
			if (m.HTML != "") != tc.wantHTML {
				t.Errorf("HTML = %q, want present=%v", m.HTML, tc.wantHTML)
			}
			if !reflect.DeepEqual(m.Attachments, tc.wantAtt) {
				t.Errorf("Attachments = %+v, want %+v", m.Attachments, tc.wantAtt)
			}
			for _, w := range tc.wantWarnings {
				if !parseHasWarning(m, w) {
					t.Errorf("no warning containing %q in %q", w, m.Warnings)
				}
			}
			if len(tc.wantWarnings) == 0 && len(m.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", m.Warnings)
			}
		})
	}
}

func TestParseHeaderRepairs(t *testing.T) {
	tests := []struct {
		name        string
		raw         string
		wantSubject string
		wantText    string
		wantWarning string
	}{
		{"leading whitespace", " Subject: s\r\nFrom: a@b.example\r\n\r\nbody", "s", "body", "header starts with whitespace"},
		{"unindented wrapped parameter", "From: a@b.example\r\nSubject: s\r\nContent-Type: text/plain;\r\ncharset=utf-8\r\n\r\nbody", "s", "body", "folded header line without leading whitespace"},
		{"no blank line", "From: a@b.example\r\nSubject: s\r\nHello there, no blank line\r\nmore", "s", "Hello there, no blank line\nmore", "no blank line between header and body"},
		{"header without end", "From: a@b.example\r\nSubject: s", "s", "", ""},
		{"no header", "just text\r\n", "", "just text", "message starts without a header"},
		{"space before colon", "Subject : spaced\r\nFrom: a@b.example\r\n\r\nx", "spaced", "x", ""},
		{"from with space before colon first", "From : c@d.example\r\nSubject: s\r\n\r\nx", "s", "x", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := parseString(tc.raw)
			if m.Subject != tc.wantSubject || m.Text != tc.wantText {
				t.Errorf("Subject, Text = %q, %q; want %q, %q", m.Subject, m.Text, tc.wantSubject, tc.wantText)
			}
			if strings.Contains(tc.raw, "@") && !strings.Contains(m.From.Addr, "@") {
				t.Errorf("From = %+v", m.From)
			}
			if tc.wantWarning != "" && !parseHasWarning(m, tc.wantWarning) {
				t.Errorf("no warning %q in %q", tc.wantWarning, m.Warnings)
			}
		})
	}
}

// TestParseGolden parses testdata/parse/*.eml and compares the JSON form of
// the result with the .golden files (refresh with -update).
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "parse", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := parseString(string(raw))
			got, err := json.MarshalIndent(struct {
				*domain.Message
				HTMLBytes int `json:"html_bytes"`
				Headers   int `json:"header_count"`
			}{m, len(m.HTML), len(m.Headers)}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(f, ".eml") + ".golden"
			if parseUpdate() {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("parse result differs from %s\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
			}
		})
	}
}

func TestParseNilAndEmpty(t *testing.T) {
	m := Parse(nil, DefaultLimits())
	if !parseHasWarning(m, "no input") {
		t.Errorf("nil reader: warnings %q", m.Warnings)
	}
	m = Parse(strings.NewReader(""), Limits{})
	if m.Size != 0 || !parseHasWarning(m, "empty message") {
		t.Errorf("empty input: size %d, warnings %q", m.Size, m.Warnings)
	}
}

func TestParseReadError(t *testing.T) {
	r := &parseFailingReader{data: []byte("From: a@b.example\r\nSubject: cut\r\n\r\npartial bo")}
	m := Parse(r, DefaultLimits())
	if m.Subject != "cut" || m.Text != "partial bo" {
		t.Errorf("Subject, Text = %q, %q", m.Subject, m.Text)
	}
	if !parseHasWarning(m, "read message: connection reset") {
		t.Errorf("warnings %q", m.Warnings)
	}
}

// parseFailingReader returns its data and then an error other than EOF.
type parseFailingReader struct {
	data []byte
}

func (r *parseFailingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, &parseTestError{"connection reset"}
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

type parseTestError struct{ s string }

func (e *parseTestError) Error() string { return e.s }

// FuzzHdrDateFastPath: where hdrDate's first layout parses a value,
// net/mail.ParseDate (which hdrDate used first before) gives the same time
// and zone.
func FuzzHdrDateFastPath(f *testing.F) {
	for _, s := range []string{"Mon, 30 Nov 2026 09:30:05 +0200", "Tue, 1 Dec 2026 23:59:59 -0000", "Sun, 29 Nov 2026 9:10:00 +0000",
		"Fri, 31 Feb 2026 09:30:05 +0200", "Mon, 30 Nov 2026 09:30:05 +0200 (IST)", "Xyz, 30 Nov 2026 09:30:05 +1400", "Mon, 30 Nov 2026 24:00:00 +0200"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		fast, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", v)
		if err != nil || v == "" || (v[0] >= '0' && v[0] <= '9') {
			return
		}
		want, err := mail.ParseDate(v)
		if err != nil {
			t.Fatalf("%q: the fast layout parses it, net/mail does not: %v", v, err)
		}
		if !fast.Equal(want) || fast.Location().String() != want.Location().String() || fast.Format(time.RFC3339) != want.Format(time.RFC3339) {
			t.Fatalf("%q: fast %v, net/mail %v", v, fast, want)
		}
	})
}
