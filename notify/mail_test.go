package notify

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/northwind-it/ticketgw/domain"
)

// mailUpdateGolden reports whether golden files are to be rewritten: the
// package's -update flag (registered once for the package's tests).
func mailUpdateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

func mailGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if mailUpdateGolden() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

var mailTestDate = time.Date(2026, 11, 30, 9, 30, 5, 0, time.FixedZone("IST", 2*3600))

// mailHebrewAck is an acknowledgement in Hebrew, as the templates render it.
func mailHebrewAck() AckMail {
	return AckMail{
		From:    domain.Address{Name: "Northwind IT – תמיכה", Addr: "support@northwind-it.example"},
		To:      domain.Address{Name: "דני כהן", Addr: "dani@acme.example"},
		Subject: "\u200f[ACME-0042]\u200e התקבלה פנייתך: המדפסת בקומה 2 לא מדפיסה",
		Text: "\u200fשלום דני,\n\u200fפנייתך נרשמה כתקלה (עדיפות גבוהה), מספר \u200e[ACME-0042]\u200e.\n" +
			"\u200fטכנאי יחזור אליך עד יום שני, 30 בנובמבר 2026, 10:30.\n",
		HTML: "<!DOCTYPE html>\n<html dir=\"rtl\" lang=\"he\"><body dir=\"rtl\">\n" +
			"<div dir=\"rtl\" lang=\"he\" style=\"direction:rtl;text-align:right\">" +
			"<p dir=\"rtl\">שלום דני,</p><p dir=\"rtl\">פנייתך נרשמה כתקלה, מספר <span dir=\"ltr\">ACME-0042</span>&lrm;.</p>" +
			"</div>\n</body></html>\n",
		MessageID:  "ack.ACME-0042.k3x9q2@northwind-it.example",
		InReplyTo:  "CAF=abc123@mail.acme.example",
		References: []string{"<root.1@mail.acme.example>", "<CAF=abc123@mail.acme.example>"},
		LoopMarker: "support@northwind-it.example",
		TicketID:   "ACME-0042",
		Date:       mailTestDate,
		Lang:       "he",
	}
}

func mailEnglishAck() AckMail {
	return AckMail{
		From:       domain.Address{Name: "Northwind IT Support", Addr: "support@northwind-it.example"},
		To:         domain.Address{Name: "Smith, John", Addr: "john.smith@acme.example"},
		Subject:    "[ACME-0043] Received: new employee starts Tuesday, needs a laptop and an account",
		Text:       "Hello John,\n\nTicket ACME-0043: we classified your message as an IMAC.\nIt is scheduled for Tuesday 8 December 2026.\n",
		MessageID:  "ack.ACME-0043.zz81@northwind-it.example",
		InReplyTo:  "msg-77@acme.example",
		References: []string{"msg-77@acme.example"},
		LoopMarker: "support@northwind-it.example",
		Date:       mailTestDate,
		Lang:       "en",
	}
}

func TestComposeAckGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		ack    AckMail
	}{
		{"mail_ack_he.golden", mailHebrewAck()},
		{"mail_ack_en_text.golden", mailEnglishAck()},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			raw, _, err := ComposeAck(tc.ack)
			if err != nil {
				t.Fatal(err)
			}
			mailGolden(t, tc.golden, raw)
			mailCheckLines(t, raw)
		})
	}
}

// mailCheckLines asserts the wire rules: CRLF only, header lines of at most
// 78 characters (encoded-words and folding make that possible), body lines
// within 998.
func mailCheckLines(t testing.TB, raw []byte) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) ||
		bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Error("message has a bare CR or LF")
	}
	header, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for l := range bytes.SplitSeq(header, []byte("\r\n")) {
		if len(l) > mailFoldAt {
			t.Errorf("header line of %d characters: %q", len(l), l)
		}
	}
	for l := range bytes.SplitSeq(raw, []byte("\r\n")) {
		if len(l) > mailMaxLine {
			t.Errorf("line of %d characters", len(l))
		}
	}
}

func TestComposeAckParses(t *testing.T) {
	a := mailHebrewAck()
	raw, env, err := ComposeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "support@northwind-it.example" || len(env.To) != 1 || env.To[0] != "dani@acme.example" {
		t.Errorf("envelope = %+v", env)
	}
	got := mailParse(t, raw)
	mailCheckAckHeaders(t, got, a)
	if got.text != mailCRLFString(a.Text) {
		t.Errorf("text part = %q, want %q", got.text, mailCRLFString(a.Text))
	}
	if got.html != mailCRLFString(a.HTML) {
		t.Errorf("html part = %q", got.html)
	}
}

func mailCRLFString(s string) string { return string(mailCRLF([]byte(s))) }

// mailCheckAckHeaders checks what the safety rules and threading need.
func mailCheckAckHeaders(t *testing.T, got mailParsed, a AckMail) {
	t.Helper()
	h := got.header
	want := map[string]string{
		"Auto-Submitted":           "auto-replied",
		"X-Auto-Response-Suppress": "All",
		domain.LoopHeader:          a.LoopMarker,
		"Message-Id":               "<" + a.MessageID + ">",
		"In-Reply-To":              "<" + strings.Trim(a.InReplyTo, "<>") + ">",
		"Content-Language":         a.Lang,
		"Date":                     a.Date.Format(time.RFC1123Z),
	}
	for k, v := range want {
		if g := h.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if n := len(h.Values("References")); n != 1 {
		t.Errorf("%d References fields, want one", n)
	}
	refs := h.Get("References")
	if strings.Contains(refs, ",") {
		t.Errorf("References %q is comma-separated", refs)
	}
	ids, err := h.MsgIDList("References")
	if err != nil {
		t.Fatal(err)
	}
	var wantIDs []string
	for _, r := range a.References {
		wantIDs = append(wantIDs, strings.Trim(r, "<>"))
	}
	if fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
		t.Errorf("References = %v, want %v", ids, wantIDs)
	}
	subject, err := h.Subject()
	if err != nil {
		t.Fatal(err)
	}
	if subject != a.Subject {
		t.Errorf("Subject decodes to %q, want %q", subject, a.Subject)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != a.From.Name || from[0].Address != a.From.Addr {
		t.Errorf("From = %v (%v), want %+v", from, err, a.From)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != a.To.Name || to[0].Address != a.To.Addr {
		t.Errorf("To = %v (%v), want %+v", to, err, a.To)
	}
}

// mailParsed is a message read back with go-message.
type mailParsed struct {
	header      mail.Header
	text, html  string // first text/plain and text/html parts
	attachments map[string][]byte
	leaves      []string // content types of the leaf parts, in order
}

func mailParse(t testing.TB, raw []byte) mailParsed {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	p := mailParsed{header: mail.Header{Header: e.Header}, attachments: map[string][]byte{}}
	err = e.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil {
			return err
		}
		if part.MultipartReader() != nil {
			return nil
		}
		mt, _, _ := part.Header.ContentType()
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return fmt.Errorf("read part %v: %w", path, err)
		}
		p.leaves = append(p.leaves, mt)
		ah := mail.AttachmentHeader{Header: part.Header}
		if name, _ := ah.Filename(); name != "" {
			p.attachments[name] = body
			return nil
		}
		switch {
		case mt == "text/plain" && p.text == "":
			p.text = string(body)
		case mt == "text/html" && p.html == "":
			p.html = string(body)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk message: %v", err)
	}
	return p
}

func TestComposeAckTextOnlyIsSinglePart(t *testing.T) {
	raw, _, err := ComposeAck(mailEnglishAck())
	if err != nil {
		t.Fatal(err)
	}
	got := mailParse(t, raw)
	if fmt.Sprint(got.leaves) != "[text/plain]" {
		t.Errorf("leaves = %v", got.leaves)
	}
	if mt, params, _ := got.header.ContentType(); mt != "text/plain" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type = %s %v", mt, params)
	}
	if !strings.Contains(got.text, "IMAC") {
		t.Errorf("text = %q", got.text)
	}
	// "Smith, John" needs quoting to stay one mailbox.
	if to := got.header.Get("To"); to != `"Smith, John" <john.smith@acme.example>` {
		t.Errorf("To = %q", to)
	}
}

func TestComposeDeterministic(t *testing.T) {
	a := mailHebrewAck()
	r1, _, err1 := ComposeAck(a)
	r2, _, err2 := ComposeAck(a)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r1, r2) {
		t.Error("the same AckMail composed to different bytes")
	}
	a.MessageID = "ack.ACME-0042.other@northwind-it.example"
	r3, _, err := ComposeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	b := regexp.MustCompile(`boundary="([^"]+)"`)
	if string(b.Find(r1)) == string(b.Find(r3)) {
		t.Error("different Message-IDs gave the same boundary")
	}
}

// TestComposeAckHeaderInjection feeds CR/LF through every field a customer
// can influence. Free text is reduced to one line; structured values are
// refused or, for the customer's threading ids, dropped.
func TestComposeAckHeaderInjection(t *testing.T) {
	const evil = "\r\nBcc: victim@evil.example\r\nX-Injected: yes"
	tests := []struct {
		name    string
		mutate  func(*AckMail)
		wantErr string // "" means composed, and must not carry the injection
	}{
		{"subject", func(a *AckMail) { a.Subject = "Printer" + evil }, ""},
		{"subject LF only", func(a *AckMail) { a.Subject = "Printer\nBcc: victim@evil.example" }, ""},
		{"subject CR only", func(a *AckMail) { a.Subject = "Printer\rBcc: victim@evil.example" }, ""},
		{"subject unicode line separator", func(a *AckMail) { a.Subject = "Printer\u2028Bcc: victim@evil.example\u0085x" }, ""},
		{"to name", func(a *AckMail) { a.To.Name = "Dani" + evil }, ""},
		{"from name", func(a *AckMail) { a.From.Name = "Support" + evil }, ""},
		{"to name with quotes and encoded-word look", func(a *AckMail) { a.To.Name = `=?utf-8?q?X?= "q" \ <a@b>` + evil }, ""},
		{"in-reply-to", func(a *AckMail) { a.InReplyTo = "a@b" + evil }, ""},
		{"references", func(a *AckMail) { a.References = []string{"ok@acme.example", "a@b" + evil} }, ""},
		{"to address", func(a *AckMail) { a.To.Addr = "dani@acme.example" + evil }, "to: address"},
		{"cc address", func(a *AckMail) { a.Cc = []domain.Address{{Addr: "x@acme.example\r\nBcc: v@evil.example"}} }, "cc: address"},
		{"to address with angle", func(a *AckMail) { a.To.Addr = "dani@acme.example>, <victim@evil.example" }, "to: address"},
		{"from address", func(a *AckMail) { a.From.Addr = "support@x.example\nBcc: v@evil.example" }, "from: address"},
		{"message-id", func(a *AckMail) { a.MessageID = "ack.1@x.example" + evil }, "message-id"},
		{"loop marker", func(a *AckMail) { a.LoopMarker = "support@x.example" + evil }, "loop marker"},
		{"ticket id", func(a *AckMail) { a.TicketID = "ACME-1" + evil }, "ticket id"},
		{"language", func(a *AckMail) { a.Lang = "he" + evil }, "language"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mailEnglishAck()
			tt.mutate(&a)
			raw, _, err := ComposeAck(a)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mailCheckNoInjection(t, raw)
		})
	}
}

// mailCheckNoInjection asserts that the top-level header holds only the
// fields the gateway writes, each once.
func mailCheckNoInjection(t testing.TB, raw []byte) {
	t.Helper()
	got := mailParse(t, raw)
	allowed := map[string]bool{
		"Date": true, "From": true, "To": true, "Cc": true, "Reply-To": true, "Subject": true,
		"Message-Id": true, "In-Reply-To": true, "References": true, "Auto-Submitted": true,
		"X-Auto-Response-Suppress": true, "X-Ticket-Id": true, "X-Ticket-Gateway-Loop": true,
		"Content-Language": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true,
	}
	seen := map[string]int{}
	for f := got.header.Fields(); f.Next(); {
		k := f.Key()
		seen[k]++
		if !allowed[k] {
			t.Errorf("unexpected header field %s: %q", k, f.Value())
		}
		if seen[k] > 1 {
			t.Errorf("header field %s appears %d times", k, seen[k])
		}
	}
	mailCheckLines(t, raw)
}

func TestComposeAckReportsAllErrors(t *testing.T) {
	_, _, err := ComposeAck(AckMail{
		From: domain.Address{Addr: "not an address"},
		To:   domain.Address{Addr: ""},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"from:", "to:", "text part is empty", "message-id", "loop marker", "date is zero"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestMailReferences(t *testing.T) {
	long := make([]string, 30)
	for i := range long {
		long[i] = fmt.Sprintf("m%d@x.example", i)
	}
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"empty", nil, ""},
		{"brackets optional", []string{"<a@x>", "b@x", " <c@x> "}, "<a@x> <b@x> <c@x>"},
		{"duplicates", []string{"a@x", "<a@x>", "b@x"}, "<a@x> <b@x>"},
		{"invalid dropped", []string{"a@x", "has space@x", "", "<>", "bad\r\n@x", "x<y@x", strings.Repeat("z", 300) + "@x", "b@x"}, "<a@x> <b@x>"},
		{"trimmed keeping root and newest", long, "<m0@x.example> " + func() string {
			var s []string
			for i := 11; i < 30; i++ {
				s = append(s, fmt.Sprintf("<m%d@x.example>", i))
			}
			return strings.Join(s, " ")
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mailReferences(tt.in); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestMailFold(t *testing.T) {
	refs := make([]string, 20)
	for i := range refs {
		refs[i] = fmt.Sprintf("<CAF%d-abcdefgh@mail.example.com>", i)
	}
	v := strings.Join(refs, " ")
	line, err := mailFold("References", v)
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(strings.TrimSuffix(line, "\r\n"), "\r\n") {
		if len(l) > mailFoldAt {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}
	if got := strings.ReplaceAll(strings.TrimSuffix(line, "\r\n"), "\r\n", ""); got != "References: "+v {
		t.Errorf("unfolds to %q", got)
	}
	if _, err := mailFold("X", strings.Repeat("a", 1000)); err == nil {
		t.Error("a 1000-character word was folded without error")
	}
}

func TestMailEncodeText(t *testing.T) {
	dec := new(mime.WordDecoder)
	tests := []struct {
		in, want string // want "" means: encoded, must decode back to in
	}{
		{"Printer broken", "Printer broken"},
		{"  spaces   collapse\t", "spaces collapse"},
		{"שלום עולם", ""},
		{"Drucker kaputt – Büro 3", ""},
		{"looks like =?utf-8?q?encoded?= text", ""},
		{"a" + strings.Repeat("b", 100), ""},
		{strings.Repeat("ארוך מאוד ", 40), ""},
	}
	for _, tt := range tests {
		got := mailEncodeText(tt.in)
		if tt.want != "" {
			if got != tt.want {
				t.Errorf("mailEncodeText(%q) = %q, want %q", tt.in, got, tt.want)
			}
			continue
		}
		if !strings.HasPrefix(got, "=?utf-8?b?") {
			t.Errorf("mailEncodeText(%q) = %q, not encoded", tt.in, got)
		}
		for w := range strings.SplitSeq(got, " ") {
			if len(w) > mailEncodedWordMax {
				t.Errorf("encoded-word of %d characters", len(w))
			}
		}
		back, err := dec.DecodeHeader(got)
		if err != nil || back != mailOneLine(tt.in) {
			t.Errorf("%q round-trips to %q (%v)", tt.in, back, err)
		}
	}
}

func TestMailEncodePhrase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"John Smith", "John Smith"},
		{"Smith, John", `"Smith, John"`},
		{`Say "hi"`, `"Say \"hi\""`},
		{"=?utf-8?q?x?=", `"=?utf-8?q?x?="`},
		{"Evil\u202eReversed", "EvilReversed"},
		{"דני\u202e", "=?utf-8?b?15PXoNeZ?="},
		{"", ""},
		{"\r\n", ""},
	}
	for _, tt := range tests {
		if got := mailEncodePhrase(tt.in); got != tt.want {
			t.Errorf("mailEncodePhrase(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMailCheckLang(t *testing.T) {
	for _, ok := range []string{"", "he", "en", "en-US", "he-IL", "zh-Hant-TW"} {
		if err := mailCheckLang(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"-", "he-", "1he", "he IL", "toolongsubtag", "he\r\n"} {
		if err := mailCheckLang(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNewMessageID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := NewMessageID("ack", "ACME-0042", "northwind-it.example")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^ack\.ACME-0042\.[a-z2-7]{26}@northwind-it\.example$`).MatchString(id) {
			t.Fatalf("id %q has the wrong shape", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	if id, err := NewMessageID("fwd", "", "x.example"); err != nil || !strings.HasPrefix(id, "fwd.") {
		t.Errorf("no ticket: %q, %v", id, err)
	}
	for _, bad := range [][3]string{{"ack", "T-1", ""}, {"ack", "T 1", "x.example"}, {"ack", "a@b", "x.example"}, {"ack", "T-1", "x\r\n.example"}} {
		if id, err := NewMessageID(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("NewMessageID(%q) = %q, want an error", bad, id)
		}
	}
}

// mailTestOriginal builds a customer's message as a mail client would:
// multipart/mixed with text+HTML alternative, a binary attachment and one
// with a Hebrew file name.
func mailTestOriginal(t testing.TB, attachments map[string][]byte) []byte {
	t.Helper()
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Name: "דני כהן", Address: "dani@acme.example"}})
	h.SetAddressList("To", []*mail.Address{{Address: "support@northwind-it.example"}})
	h.SetSubject("המדפסת בקומה 2 לא מדפיסה")
	h.SetMessageID("CAF=abc123@mail.acme.example")
	h.SetDate(mailTestDate)
	var buf bytes.Buffer
	mw, err := mail.CreateWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := mw.CreateInline()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ typ, body string }{
		{"text/plain", "שלום,\r\nהמדפסת לא מדפיסה.\r\n.line starting with a dot\r\nFrom the second floor\r\n"},
		{"text/html", "<p dir=\"rtl\">שלום,</p><p>המדפסת לא מדפיסה.</p>"},
	} {
		var ph mail.InlineHeader
		ph.SetContentType(p.typ, map[string]string{"charset": "utf-8"})
		w, err := tw.CreatePart(ph)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, p.body)
		_ = w.Close()
	}
	_ = tw.Close()
	names := make([]string, 0, len(attachments))
	for name := range attachments {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		var ah mail.AttachmentHeader
		ah.SetContentType("application/octet-stream", nil)
		ah.SetFilename(name)
		w, err := mw.CreateAttachment(ah)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(attachments[name])
		_ = w.Close()
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mailTestForward(original io.Reader) ForwardMail {
	return ForwardMail{
		From:       domain.Address{Name: "דני כהן via Northwind IT", Addr: "support@northwind-it.example"},
		To:         "helpdesk@northwind-it.example",
		ReplyTo:    "support@northwind-it.example",
		Subject:    "[ACME-0042] המדפסת בקומה 2 לא מדפיסה",
		HeaderText: "Ticket ACME-0042 (fault, high)\nFrom: דני כהן <dani@acme.example>\nRespond by: Mon 30 Nov 2026 10:30\n",
		HeaderHTML: "<table><tr><td>Ticket</td><td>ACME-0042</td></tr></table>\n",
		Original:   original,
		MessageID:  "fwd.ACME-0042.p0q1@northwind-it.example",
		InReplyTo:  "CAF=abc123@mail.acme.example",
		References: []string{"CAF=abc123@mail.acme.example"},
		LoopMarker: "support@northwind-it.example",
		TicketID:   "ACME-0042",
		Date:       mailTestDate,
	}
}

func mailRandom(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestComposeForwardKeepsAttachments(t *testing.T) {
	atts := map[string][]byte{
		"report.bin":  mailRandom(1<<20, 1),
		"חשבונית.pdf": mailRandom(10_000, 2),
	}
	orig := mailTestOriginal(t, atts)
	f := mailTestForward(bytes.NewReader(orig))
	raw, env, err := ComposeForward(f)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "support@northwind-it.example" || fmt.Sprint(env.To) != "[helpdesk@northwind-it.example]" {
		t.Errorf("envelope = %+v", env)
	}
	mailCheckForward(t, raw, f, atts)
}

// mailCheckForward checks a forward as staff receive it.
func mailCheckForward(t testing.TB, raw []byte, f ForwardMail, atts map[string][]byte) {
	t.Helper()
	got := mailParse(t, raw)
	h := got.header
	for k, v := range map[string]string{
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		domain.LoopHeader:          f.LoopMarker,
		"X-Ticket-Id":              f.TicketID,
		"Reply-To":                 "<" + f.ReplyTo + ">",
		"To":                       "<" + f.To + ">",
		"Message-Id":               "<" + f.MessageID + ">",
	} {
		if g := h.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if subject, _ := h.Subject(); subject != f.Subject {
		t.Errorf("Subject = %q, want %q", subject, f.Subject)
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != f.From.Name {
		t.Errorf("From = %v (%v)", from, err)
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/mixed" {
		t.Errorf("Content-Type = %s", mt)
	}
	// The summary comes first, then the customer's own text, HTML and
	// attachments, as the customer's client wrote them.
	want := []string{"text/plain", "text/html", "text/plain", "text/html"}
	for range atts {
		want = append(want, "application/octet-stream")
	}
	if fmt.Sprint(got.leaves) != fmt.Sprint(want) {
		t.Errorf("leaf parts = %v, want %v", got.leaves, want)
	}
	if got.text != mailCRLFString(f.HeaderText) {
		t.Errorf("summary text = %q", got.text)
	}
	for name, want := range atts {
		if !bytes.Equal(got.attachments[name], want) {
			t.Errorf("attachment %q: %d bytes arrived, want %d identical bytes", name, len(got.attachments[name]), len(want))
		}
	}
	if !bytes.Contains(raw, []byte("המדפסת לא מדפיסה.")) && !bytes.Contains(raw, []byte("=D7=94=D7=9E=D7=93")) {
		t.Error("the customer's text is not in the forward")
	}
}

func TestComposeForwardGolden(t *testing.T) {
	orig := "From: Dani <dani@acme.example>\r\n" +
		"Subject: Printer\r\n" +
		"Message-ID: <CAF=abc123@mail.acme.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed;\r\n boundary=\"cust-b\"\r\n" +
		"Content-Length: 999\r\n" +
		"\r\n" +
		"--cust-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe printer is broken.\r\n" +
		"--cust-b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"a.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n" +
		"--cust-b--\r\n"
	f := mailTestForward(strings.NewReader(orig))
	raw, _, err := ComposeForward(f)
	if err != nil {
		t.Fatal(err)
	}
	mailGolden(t, "mail_forward.golden", raw)
	mailCheckLines(t, raw)
}

func TestComposeForwardOriginals(t *testing.T) {
	tests := []struct {
		name   string
		orig   string
		nilOrg bool
		leaves string
		check  func(t *testing.T, raw []byte, got mailParsed)
	}{
		{
			name: "plain RFC 822, LF line endings", orig: "From: a@b.example\nSubject: hi\n\nline 1\nline 2\n",
			leaves: "[text/plain text/html text/plain]",
			check: func(t *testing.T, raw []byte, _ mailParsed) {
				if !bytes.Contains(raw, []byte("\r\n\r\nline 1\r\nline 2\r\n")) {
					t.Error("body not copied with CRLF")
				}
			},
		},
		{
			name:   "single base64 part keeps its encoding",
			orig:   "Content-Type: application/pdf; name=\"x.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n",
			leaves: "[text/plain text/html application/pdf]",
			check: func(t *testing.T, _ []byte, got mailParsed) {
				if string(got.attachments["x.pdf"]) != "%PDF-1.4\n" {
					t.Errorf("attachments = %q", got.attachments)
				}
			},
		},
		{
			name:   "unparsable header goes as message/rfc822",
			orig:   "this is not a header\r\nFrom: x@y\r\n\r\nbody\r\n",
			leaves: "[text/plain text/html message/rfc822]",
			check: func(t *testing.T, raw []byte, _ mailParsed) {
				if !bytes.Contains(raw, []byte("this is not a header\r\nFrom: x@y\r\n\r\nbody\r\n")) {
					t.Error("original not copied whole")
				}
			},
		},
		{name: "empty original", orig: "", leaves: "[text/plain text/html]"},
		{name: "nil original", nilOrg: true, leaves: "[text/plain text/html]"},
		{
			name: "header only, no blank line", orig: "Subject: x\r\nContent-Type: text/plain",
			leaves: "[text/plain text/html text/plain]",
		},
		{
			name: "bare CR line endings", orig: "Subject: x\r\rbody\rmore",
			leaves: "[text/plain text/html text/plain]",
			check: func(t *testing.T, raw []byte, _ mailParsed) {
				if !bytes.Contains(raw, []byte("\r\n\r\nbody\r\nmore")) {
					t.Error("bare CRs not converted")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tt.orig)
			if tt.nilOrg {
				r = nil
			}
			raw, _, err := ComposeForward(mailTestForward(r))
			if err != nil {
				t.Fatal(err)
			}
			got := mailParse(t, raw)
			if fmt.Sprint(got.leaves) != tt.leaves {
				t.Errorf("leaves = %v, want %s", got.leaves, tt.leaves)
			}
			mailCheckLines(t, raw)
			if tt.check != nil {
				tt.check(t, raw, got)
			}
		})
	}
}

// TestComposeForwardLongHeaderLine puts a line break right after a read
// buffer's worth of header: it must not be taken for the blank line.
func TestComposeForwardLongHeaderLine(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 64<<10-len("X-Long: "))
	orig := long + "\r\nContent-Type: application/pdf\r\n\r\nbody\r\n"
	raw, _, err := ComposeForward(mailTestForward(strings.NewReader(orig)))
	if err != nil {
		t.Fatal(err)
	}
	if got := mailParse(t, raw); fmt.Sprint(got.leaves) != "[text/plain text/html application/pdf]" {
		t.Errorf("leaves = %v", got.leaves)
	}
}

func TestComposeForwardHugeHeader(t *testing.T) {
	orig := "X-Big: " + strings.Repeat("a", mailMaxOriginalHeader+10) + "\r\n\r\nbody\r\n"
	raw, _, err := ComposeForward(mailTestForward(strings.NewReader(orig)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("Content-Type: message/rfc822")) ||
		!bytes.Contains(raw, []byte("\r\n\r\nX-Big: aaaa")) || !bytes.Contains(raw, []byte("aaaa\r\n\r\nbody\r\n")) {
		t.Error("an oversized header was not forwarded whole as message/rfc822")
	}
}

func TestComposeForwardValidation(t *testing.T) {
	f := mailTestForward(nil)
	f.To, f.TicketID, f.HeaderText = "queue\r\n@x", "", ""
	f.Subject = "[ACME-1] x\r\nBcc: v@evil.example"
	_, _, err := ComposeForward(f)
	for _, want := range []string{"to: address", "ticket id is empty", "summary text is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
	f = mailTestForward(nil)
	f.Subject = "[ACME-1] x\r\nBcc: v@evil.example"
	f.From.Name = "Eve\r\nBcc: v@evil.example via Service"
	raw, _, err := ComposeForward(f)
	if err != nil {
		t.Fatal(err)
	}
	mailCheckNoInjection(t, raw)
}

// errReader fails after some bytes, like a connection to the IMAP server
// that drops while the original is streamed.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestWriteForwardReadError(t *testing.T) {
	boom := errors.New("connection reset")
	orig := &errReader{r: strings.NewReader("Subject: x\r\n\r\nbody"), err: boom}
	var buf bytes.Buffer
	if _, err := WriteForward(&buf, mailTestForward(orig)); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the read error", err)
	}
}

func BenchmarkComposeAck(b *testing.B) {
	a := mailHebrewAck()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ComposeAck(a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkComposeForward1MiB(b *testing.B) {
	orig := mailTestOriginal(b, map[string][]byte{"report.bin": mailRandom(1<<20, 1)})
	b.SetBytes(int64(len(orig)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WriteForward(io.Discard, mailTestForward(bytes.NewReader(orig))); err != nil {
			b.Fatal(err)
		}
	}
}
