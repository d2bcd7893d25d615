package notify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"

	"github.com/northwind-it/ticketgw/domain"
)

// Builders for staff messages as mail clients write them. An entity is its
// header lines (each ending in CRLF), a blank line and its body.

func relayEntityRaw(header, body string) string { return header + "\r\n" + body }

// relayMultipartRaw builds a multipart entity with the given boundary and
// preamble; extra is added to the Content-Type (e.g. `; type="text/html"`).
func relayMultipartRaw(mt, boundary, extra, preamble string, parts ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Content-Type: %s;%s\r\n boundary=\"%s\"\r\n\r\n%s", mt, extra, boundary, preamble)
	for _, p := range parts {
		fmt.Fprintf(&b, "--%s\r\n%s\r\n", boundary, p)
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.String()
}

func relayBase64(b []byte) string {
	var buf bytes.Buffer
	mailBase64Lines(&buf, b)
	return buf.String()
}

func relayQP(b []byte) string {
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.String()
}

// relayStaffHeader is the top of a staff reply as the support mailbox
// receives it: everything the relay must not copy, then the body's content
// fields follow.
const relayStaffHeader = "Return-Path: <dana@northwind-it.example>\r\n" +
	"Received: from mail.northwind-it.example (mail.northwind-it.example [192.0.2.10])\r\n" +
	"\tby mx.northwind-it.example with ESMTPS id 4XyZ\r\n" +
	"\tfor <support@northwind-it.example>; Mon, 30 Nov 2026 09:20:00 +0200\r\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=northwind-it.example;\r\n" +
	" s=sel1; h=from:to:subject; bh=c3RhZmZib2R5; b=c2lnbmF0dXJl\r\n" +
	"Authentication-Results: mx.northwind-it.example; dkim=pass header.d=northwind-it.example\r\n" +
	"Message-ID: <staff-msg-1@northwind-it.example>\r\n" +
	"Date: Mon, 30 Nov 2026 09:20:00 +0200\r\n" +
	"MIME-Version: 1.0\r\n" +
	"User-Agent: Mozilla Thunderbird\r\n" +
	"Subject: Re: [ACME-0042] Printer on floor 2\r\n" +
	"To: Northwind Support <support@northwind-it.example>\r\n" +
	"Cc: boss@northwind-it.example\r\n" +
	"References: <fwd.ACME-0042.p0q1@northwind-it.example>\r\n" +
	"In-Reply-To: <fwd.ACME-0042.p0q1@northwind-it.example>\r\n" +
	"From: Dana Cohen <dana@northwind-it.example>\r\n" +
	"X-Mozilla-Draft-Info: internal/draft; vcard=0; receipt=0\r\n" +
	"Content-Language: en-US\r\n"

const relayStaffText = "#resolve\r\nHi Dani,\r\n\r\nThe printer driver is reinstalled; please try again.\r\n\r\n" +
	"Dana\r\n\r\nOn 30/11/2026 09:00, Northwind IT wrote:\r\n> Ticket ACME-0042 (fault, high)\r\n"

const relayStaffHTML = "<!DOCTYPE html>\r\n<html><head>\r\n" +
	"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">\r\n</head>\r\n" +
	"<body><p>#resolve</p><p>Hi Dani,</p><p>The printer driver is reinstalled; please try again.</p>" +
	"<p><img src=\"cid:part1.sig@northwind-it.example\" alt=\"Northwind\"></p></body></html>\r\n"

// relayThunderbird is a Thunderbird reply: multipart/mixed of an
// alternative (text, HTML) and a PDF attachment.
func relayThunderbird(pdf []byte) []byte {
	alt := relayMultipartRaw("multipart/alternative", "------------altTB0123456789", "", "",
		relayEntityRaw("Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n", relayStaffText),
		relayEntityRaw("Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n", relayStaffHTML),
	)
	att := relayEntityRaw("Content-Type: application/pdf; name=\"invoice 2026-11.pdf\"\r\n"+
		"Content-Disposition: attachment; filename=\"invoice 2026-11.pdf\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n", relayBase64(pdf))
	body := relayMultipartRaw("multipart/mixed", "------------mixTB0123456789", "",
		"This is a multi-part message in MIME format.\r\n", alt, att)
	return []byte(relayStaffHeader + body)
}

func relayTestMail(orig []byte) RelayMail {
	return RelayMail{
		From:    domain.Address{Name: "Dana Cohen (Northwind IT Support)", Addr: "support@northwind-it.example"},
		To:      []domain.Address{{Name: "Dani Levi", Addr: "dani@acme.example"}},
		Cc:      []domain.Address{{Name: "Ruth", Addr: "ruth@acme.example"}, {Addr: "DANI@acme.example"}},
		ReplyTo: "support@northwind-it.example",
		Subject: "[ACME-0042] Re: Printer on floor 2",
		// As NewMessageID("relay", "ACME-0042", ...) makes it.
		MessageID:  "relay.ACME-0042.r7k2m4@northwind-it.example",
		InReplyTo:  "CAF=def456@mail.acme.example",
		References: []string{"CAF=abc123@mail.acme.example", "ack.ACME-0042.k3x9q2@northwind-it.example", "<CAF=def456@mail.acme.example>"},
		LoopMarker: "support@northwind-it.example",
		TicketID:   "ACME-0042",
		Date:       mailTestDate,
		Original:   bytes.NewReader(orig),
	}
}

// relayStripResolve is an EditText as the caller writes it, reduced to
// removing the "#resolve" command; it records the media types it was called
// with.
func relayStripResolve(calls *[]string) func(string, string) string {
	return func(mt, text string) string {
		*calls = append(*calls, mt)
		if mt == "text/html" {
			return strings.ReplaceAll(text, "<p>#resolve</p>", "")
		}
		var b strings.Builder
		for l := range strings.SplitAfterSeq(text, "\n") {
			if strings.TrimSpace(l) != "#resolve" {
				b.WriteString(l)
			}
		}
		return b.String()
	}
}

// relayLeaf is a leaf part of a relay read back with go-message: header,
// and body decoded (transfer encoding and charset).
type relayLeaf struct {
	mt     string
	header message.Header
	body   []byte
}

func relayLeaves(t testing.TB, raw []byte) (mail.Header, []relayLeaf) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse relay: %v", err)
	}
	var leaves []relayLeaf
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
		leaves = append(leaves, relayLeaf{mt: mt, header: part.Header, body: body})
		return nil
	})
	if err != nil {
		t.Fatalf("walk relay: %v", err)
	}
	return mail.Header{Header: e.Header}, leaves
}

func relayLeafTypes(leaves []relayLeaf) string {
	var s []string
	for _, l := range leaves {
		s = append(s, l.mt)
	}
	return fmt.Sprint(s)
}

func TestComposeRelayThunderbird(t *testing.T) {
	pdf := mailRandom(1<<20, 7)
	orig := relayThunderbird(pdf)
	var calls []string
	r := relayTestMail(orig)
	r.EditText = relayStripResolve(&calls)
	raw, env, err := ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	mailCheckLines(t, raw)

	if env.From != "support@northwind-it.example" || fmt.Sprint(env.To) != "[dani@acme.example ruth@acme.example]" {
		t.Errorf("envelope = %+v", env)
	}
	if fmt.Sprint(calls) != "[text/plain text/html]" {
		t.Errorf("EditText called for %v", calls)
	}

	h, leaves := relayLeaves(t, raw)
	relayCheckHeader(t, h, r)
	if got := h.Get("Content-Language"); got != "en-US" {
		t.Errorf("Content-Language = %q, want the staff message's", got)
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/mixed" {
		t.Errorf("Content-Type = %s", mt)
	}
	if got := relayLeafTypes(leaves); got != "[text/plain text/html application/pdf]" {
		t.Fatalf("leaves = %s", got)
	}
	wantText := strings.Replace(relayStaffText, "#resolve\r\n", "", 1)
	if string(leaves[0].body) != wantText {
		t.Errorf("text = %q, want %q", leaves[0].body, wantText)
	}
	if _, p, _ := leaves[0].header.ContentType(); p["charset"] != "utf-8" || p["format"] != "flowed" {
		t.Errorf("edited text part's parameters = %v, want charset utf-8 and format=flowed kept", p)
	}
	// The edited HTML is UTF-8 and its <meta> says so, in lower case.
	wantHTML := strings.NewReplacer("<p>#resolve</p>", "", "charset=UTF-8", "charset=utf-8").Replace(relayStaffHTML)
	if string(leaves[1].body) != wantHTML {
		t.Errorf("html = %q, want %q", leaves[1].body, wantHTML)
	}
	if !bytes.Equal(leaves[2].body, pdf) {
		t.Errorf("attachment: %d bytes arrived, want %d identical bytes", len(leaves[2].body), len(pdf))
	}
	ah := mail.AttachmentHeader{Header: leaves[2].header}
	if name, _ := ah.Filename(); name != "invoice 2026-11.pdf" {
		t.Errorf("attachment file name = %q", name)
	}
	// The attachment travels as the client encoded it, header and body.
	if !bytes.Contains(raw, []byte("Content-Type: application/pdf; name=\"invoice 2026-11.pdf\"\r\n"+
		"Content-Disposition: attachment; filename=\"invoice 2026-11.pdf\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n"+relayBase64(pdf)+"\r\n--=_r1_")) {
		t.Error("attachment part not copied verbatim")
	}
	for _, gone := range []string{"------------mixTB", "------------altTB", "This is a multi-part message"} {
		if bytes.Contains(raw, []byte(gone)) {
			t.Errorf("relay contains %q: the staff message's boundaries and preamble are replaced", gone)
		}
	}
}

// relayCheckHeader checks the relay's own header fields against r and that
// nothing of the staff message's header came through.
func relayCheckHeader(t *testing.T, h mail.Header, r RelayMail) {
	t.Helper()
	for k, v := range map[string]string{
		"Date":                     r.Date.Format(time.RFC1123Z),
		"Reply-To":                 "<" + r.ReplyTo + ">",
		"Message-Id":               "<" + r.MessageID + ">",
		"In-Reply-To":              "<" + strings.Trim(r.InReplyTo, "<>") + ">",
		"X-Ticket-Id":              r.TicketID,
		domain.LoopHeader:          r.LoopMarker,
		"X-Auto-Response-Suppress": "OOF, AutoReply",
		"Mime-Version":             "1.0",
		"Auto-Submitted":           "",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if subject, err := h.Subject(); err != nil || subject != mailOneLine(r.Subject) {
		t.Errorf("Subject = %q (%v), want %q", subject, err, r.Subject)
	}
	if n := len(h.Values("References")); n != 1 {
		t.Errorf("%d References fields, want one", n)
	}
	if refs := h.Get("References"); refs != mailReferences(r.References) || strings.Contains(refs, ",") {
		t.Errorf("References = %q", refs)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != mailOneLine(r.From.Name) || from[0].Address != r.From.Addr {
		t.Errorf("From = %v (%v), want %+v", from, err, r.From)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != len(r.To) || to[0].Name != r.To[0].Name || to[0].Address != r.To[0].Addr {
		t.Errorf("To = %v (%v), want %+v", to, err, r.To)
	}
	for f := h.Fields(); f.Next(); {
		v := f.Value()
		for _, staff := range []string{"staff-msg-1", "dana@", "boss@", "mx.northwind-it.example", "Thunderbird", "draft"} {
			if strings.Contains(v, staff) {
				t.Errorf("header field %s: %q carries the staff message's %q", f.Key(), v, staff)
			}
		}
		switch f.Key() {
		case "Received", "Return-Path", "Dkim-Signature", "Authentication-Results", "User-Agent", "X-Mozilla-Draft-Info":
			t.Errorf("staff header field %s copied", f.Key())
		}
	}
}

func TestComposeRelayCc(t *testing.T) {
	r := relayTestMail([]byte("Content-Type: text/plain\r\n\r\nhello\r\n"))
	r.To = append(r.To, domain.Address{Addr: "Ruth@ACME.example"})
	r.Cc = []domain.Address{{Addr: "ruth@acme.example"}, {Name: "Moshe", Addr: "moshe@acme.example"}, {Addr: "MOSHE@acme.example"}}
	raw, env, err := ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(env.To); got != "[dani@acme.example Ruth@ACME.example moshe@acme.example]" {
		t.Errorf("envelope recipients = %s", got)
	}
	h, _ := relayLeaves(t, raw)
	if got := h.Get("Cc"); got != "Moshe <moshe@acme.example>" {
		t.Errorf("Cc = %q, want the copy of a To address and the duplicate dropped", got)
	}
	r.Cc, r.Original = nil, strings.NewReader("Content-Type: text/plain\r\n\r\nhello\r\n")
	raw, _, err = ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := relayLeaves(t, raw); h.Has("Cc") {
		t.Errorf("Cc = %q with no one copied", h.Get("Cc"))
	}
}

// TestComposeRelayRelatedInlineImage relays Outlook's shape: alternative
// of text and multipart/related (HTML with an inline image referenced by
// Content-ID).
func TestComposeRelayRelatedInlineImage(t *testing.T) {
	png := mailRandom(5000, 3)
	related := relayMultipartRaw("multipart/related", "rel_b", ` type="text/html";`, "",
		relayEntityRaw("Content-Type: text/html; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: quoted-printable\r\n",
			relayQP([]byte(relayStaffHTML))),
		relayEntityRaw("Content-Type: image/png; name=\"image001.png\"\r\n"+
			"Content-Description: image001.png\r\n"+
			"Content-Disposition: inline; filename=\"image001.png\"; size=5000\r\n"+
			"Content-ID: <part1.sig@northwind-it.example>\r\n"+
			"Content-Transfer-Encoding: base64\r\n", relayBase64(png)),
	)
	alt := relayMultipartRaw("multipart/alternative", "alt_b", "", "",
		relayEntityRaw("Content-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: quoted-printable\r\n",
			relayQP([]byte(relayStaffText))),
		related)
	orig := relayStaffHeader + relayMultipartRaw("multipart/related", "top_b", ` type="multipart/alternative";`, "", alt)
	var calls []string
	r := relayTestMail([]byte(orig))
	r.EditText = relayStripResolve(&calls)
	raw, _, err := ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	mailCheckLines(t, raw)
	h, leaves := relayLeaves(t, raw)
	if mt, p, _ := h.ContentType(); mt != "multipart/related" || p["type"] != "multipart/alternative" || !strings.HasPrefix(p["boundary"], "=_r1_") {
		t.Errorf("top Content-Type = %s %v", mt, p)
	}
	if got := relayLeafTypes(leaves); got != "[text/plain text/html image/png]" {
		t.Fatalf("leaves = %s", got)
	}
	img := leaves[2]
	if got := img.header.Get("Content-Id"); got != "<part1.sig@northwind-it.example>" {
		t.Errorf("Content-ID = %q", got)
	}
	if !bytes.Equal(img.body, png) {
		t.Error("inline image bytes differ")
	}
	unfolded := bytes.ReplaceAll(raw, []byte("\r\n "), []byte(" "))
	if !bytes.Contains(unfolded, []byte(`Content-Type: multipart/related; boundary="=_r3_`)) ||
		!bytes.Contains(unfolded, []byte(`"; type="text/html"`+"\r\n")) {
		t.Error("nested multipart/related lost its type parameter")
	}
	if strings.Contains(string(leaves[0].body), "#resolve") || strings.Contains(string(leaves[1].body), "#resolve") {
		t.Error("the command survived the edit")
	}
	if !strings.Contains(string(leaves[1].body), `src="cid:part1.sig@northwind-it.example"`) {
		t.Error("the HTML lost its cid: reference")
	}
}

// TestComposeRelayWindows1255 relays an Outlook reply in windows-1255: the
// edited parts are re-encoded as UTF-8, the HTML's meta charset follows.
func TestComposeRelayWindows1255(t *testing.T) {
	enc := charmap.Windows1255.NewEncoder()
	text := "#resolve\r\nשלום דני,\r\nהמדפסת תוקנה. נא לנסות שוב.\r\nדנה\r\n"
	html := "<html dir=\"rtl\"><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1255\"></head>" +
		"<body dir=\"rtl\"><p>#resolve</p><p>שלום דני,</p><p>המדפסת תוקנה.</p></body></html>\r\n"
	text1255, err := enc.String(text)
	if err != nil {
		t.Fatal(err)
	}
	html1255, err := enc.String(html)
	if err != nil {
		t.Fatal(err)
	}
	textPart := relayEntityRaw("Content-Type: text/plain; charset=\"windows-1255\"\r\nContent-Transfer-Encoding: quoted-printable\r\n", relayQP([]byte(text1255)))
	htmlPart := relayEntityRaw("Content-Type: text/html; charset=\"windows-1255\"\r\nContent-Transfer-Encoding: quoted-printable\r\n", relayQP([]byte(html1255)))
	orig := relayStaffHeader + relayMultipartRaw("multipart/alternative", "_000_outlook_", "", "", textPart, htmlPart)

	t.Run("edited", func(t *testing.T) {
		var calls []string
		var seen []string
		r := relayTestMail([]byte(orig))
		strip := relayStripResolve(&calls)
		r.EditText = func(mt, s string) string {
			seen = append(seen, s)
			return strip(mt, s)
		}
		raw, _, err := ComposeRelay(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || seen[0] != text || seen[1] != html {
			t.Fatalf("EditText saw %q, want the decoded UTF-8 text and HTML", seen)
		}
		_, leaves := relayLeaves(t, raw)
		if got := relayLeafTypes(leaves); got != "[text/plain text/html]" {
			t.Fatalf("leaves = %s", got)
		}
		for i, want := range []string{strings.Replace(text, "#resolve\r\n", "", 1),
			strings.NewReplacer("<p>#resolve</p>", "", "charset=windows-1255", "charset=utf-8").Replace(html)} {
			if _, p, _ := leaves[i].header.ContentType(); p["charset"] != "utf-8" {
				t.Errorf("part %d charset = %q, want utf-8", i, p["charset"])
			}
			if string(leaves[i].body) != want {
				t.Errorf("part %d = %q, want %q", i, leaves[i].body, want)
			}
		}
		if bytes.Contains(raw, []byte("windows-1255")) {
			t.Error("relay still declares windows-1255")
		}
	})
	t.Run("unchanged parts are copied as they were", func(t *testing.T) {
		r := relayTestMail([]byte(orig))
		n := 0
		r.EditText = func(_, s string) string { n++; return s }
		raw, _, err := ComposeRelay(r)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("EditText called %d times", n)
		}
		if !bytes.Contains(raw, []byte(textPart+"\r\n--=_r1_")) || !bytes.Contains(raw, []byte(htmlPart+"\r\n--=_r1_")) {
			t.Error("unedited windows-1255 parts were not copied byte for byte")
		}
	})
}

func TestComposeRelaySinglePart(t *testing.T) {
	body := "#resolve\r\nDone, the account is unlocked.\r\n-- \r\nDana\r\n"
	orig := relayStaffHeader + "Content-Type: text/plain; charset=us-ascii; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + body
	tests := []struct {
		name     string
		edit     bool
		wantBody string
		wantCT   string
		wantCTE  string
	}{
		{"edited", true, "Done, the account is unlocked.\r\n-- \r\nDana\r\n", `text/plain; charset=utf-8; format=flowed`, "quoted-printable"},
		{"no editor", false, body, "text/plain; charset=us-ascii; format=flowed", "7bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			r := relayTestMail([]byte(orig))
			if tt.edit {
				r.EditText = relayStripResolve(&calls)
			}
			raw, _, err := ComposeRelay(r)
			if err != nil {
				t.Fatal(err)
			}
			mailCheckLines(t, raw)
			mailCheckNoInjection(t, raw)
			h, leaves := relayLeaves(t, raw)
			relayCheckHeader(t, h, r)
			if got := relayLeafTypes(leaves); got != "[text/plain]" {
				t.Fatalf("leaves = %s", got)
			}
			if string(leaves[0].body) != tt.wantBody {
				t.Errorf("body = %q, want %q", leaves[0].body, tt.wantBody)
			}
			if got := h.Get("Content-Type"); got != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCT)
			}
			if got := h.Get("Content-Transfer-Encoding"); got != tt.wantCTE {
				t.Errorf("Content-Transfer-Encoding = %q, want %q", got, tt.wantCTE)
			}
		})
	}
}

// TestComposeRelayAttachedMessage attaches a customer's mail to the reply:
// it travels whole, and its text is the customer's, never edited.
func TestComposeRelayAttachedMessage(t *testing.T) {
	inner := "From: Eve <eve@acme.example>\r\nSubject: old thread\r\nMessage-ID: <inner@acme.example>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n#resolve\r\nthis line belongs to the attached mail\r\n"
	orig := relayStaffHeader + relayMultipartRaw("multipart/mixed", "mix_b", "", "",
		relayEntityRaw("Content-Type: text/plain; charset=utf-8\r\n", relayStaffText),
		relayEntityRaw("Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"old thread.eml\"\r\n", inner),
		relayEntityRaw("Content-Type: message/rfc822\r\n", inner),
		relayEntityRaw("Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n", "#resolve\r\nnot a command\r\n"),
	)
	var calls []string
	r := relayTestMail([]byte(orig))
	r.EditText = relayStripResolve(&calls)
	raw, _, err := ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[text/plain]" {
		t.Errorf("EditText called for %v: only the body text is the staff member's", calls)
	}
	_, leaves := relayLeaves(t, raw)
	if got := relayLeafTypes(leaves); got != "[text/plain message/rfc822 message/rfc822 text/plain]" {
		t.Fatalf("leaves = %s", got)
	}
	if strings.Contains(string(leaves[0].body), "#resolve") {
		t.Error("the body text was not edited")
	}
	for i := 1; i <= 2; i++ {
		if string(leaves[i].body) != inner {
			t.Errorf("attached message %d = %q", i, leaves[i].body)
		}
	}
	if string(leaves[3].body) != "#resolve\r\nnot a command\r\n" {
		t.Errorf("text attachment = %q", leaves[3].body)
	}
}

func TestComposeRelayHebrewNames(t *testing.T) {
	r := relayTestMail([]byte("Content-Type: text/plain; charset=utf-8\r\n\r\nשלום\r\n"))
	r.From.Name = "דנה כהן (Northwind IT – תמיכה)"
	r.To = []domain.Address{{Name: "דני לוי", Addr: "dani@acme.example"}}
	r.Cc = []domain.Address{{Name: "כהן, רות", Addr: "ruth@acme.example"}}
	r.Subject = "\u200f[ACME-0042]\u200e Re: המדפסת בקומה 2 לא מדפיסה"
	raw, _, err := ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	mailCheckLines(t, raw)
	mailCheckNoInjection(t, raw)
	h, _ := relayLeaves(t, raw)
	relayCheckHeader(t, h, r)
	cc, err := h.AddressList("Cc")
	if err != nil || len(cc) != 1 || cc[0].Name != "כהן, רות" || cc[0].Address != "ruth@acme.example" {
		t.Errorf("Cc = %v (%v)", cc, err)
	}
}

// TestComposeRelayHeaderInjection feeds CR/LF through every field of the
// relay and through the staff message's own header.
func TestComposeRelayHeaderInjection(t *testing.T) {
	const evil = "\r\nBcc: victim@evil.example\r\nX-Injected: yes"
	plain := "Content-Type: text/plain\r\n\r\nhello\r\n"
	tests := []struct {
		name    string
		orig    string
		mutate  func(*RelayMail)
		wantErr string
	}{
		{name: "subject", mutate: func(r *RelayMail) { r.Subject = "[ACME-0042] x" + evil }},
		{name: "subject LF and unicode separators", mutate: func(r *RelayMail) { r.Subject = "x\nBcc: v@evil.example\u2028y\u0085z" }},
		{name: "from name", mutate: func(r *RelayMail) { r.From.Name = "Dana" + evil }},
		{name: "to name", mutate: func(r *RelayMail) { r.To[0].Name = `=?utf-8?q?X?= "q" \ <a@b>` + evil }},
		{name: "cc name", mutate: func(r *RelayMail) { r.Cc[0].Name = "Ruth\u202e" + evil }},
		{name: "in-reply-to", mutate: func(r *RelayMail) { r.InReplyTo = "a@b" + evil }},
		{name: "references", mutate: func(r *RelayMail) { r.References = []string{"ok@acme.example", "a@b" + evil} }},
		{
			name: "staff header fields",
			orig: "Bcc: victim@evil.example\r\nX-Injected: yes\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n" +
				"Content-Foo: bar\r\nContent-Length: 3\r\nContent-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n\r\nhello\r\n",
		},
		{name: "to address", mutate: func(r *RelayMail) { r.To[0].Addr = "dani@acme.example" + evil }, wantErr: "to: address"},
		{name: "cc address", mutate: func(r *RelayMail) { r.Cc[0].Addr = "x@acme.example>, <v@evil.example" }, wantErr: "cc: address"},
		{name: "reply-to", mutate: func(r *RelayMail) { r.ReplyTo = "s@x.example\nBcc: v@evil.example" }, wantErr: "reply-to: address"},
		{name: "message-id", mutate: func(r *RelayMail) { r.MessageID = "relay.1@x.example" + evil }, wantErr: "message-id"},
		{name: "loop marker", mutate: func(r *RelayMail) { r.LoopMarker = "s@x.example" + evil }, wantErr: "loop marker"},
		{name: "ticket id", mutate: func(r *RelayMail) { r.TicketID = "ACME-1" + evil }, wantErr: "ticket id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.orig
			if orig == "" {
				orig = plain
			}
			r := relayTestMail([]byte(orig))
			if tt.mutate != nil {
				tt.mutate(&r)
			}
			raw, _, err := ComposeRelay(r)
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
			if bytes.Contains(raw, []byte("\r\nBcc:")) || bytes.Contains(raw, []byte("\r\nX-Injected:")) {
				t.Error("an injected field reached the relay")
			}
		})
	}
}

func TestComposeRelayValidation(t *testing.T) {
	_, _, err := ComposeRelay(RelayMail{From: domain.Address{Addr: "not an address"}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"from:", "to: no recipient", "ticket id is empty", "staff message is missing", "message-id", "loop marker", "date is zero"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestComposeRelayGolden(t *testing.T) {
	orig := relayStaffHeader + relayMultipartRaw("multipart/mixed", "mix_b", "", "preamble\r\n",
		relayMultipartRaw("multipart/alternative", "alt_b", "", "",
			relayEntityRaw("Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n", "#resolve\r\nשלום דני,\r\nהמדפסת תוקנה.\r\n"),
			relayEntityRaw("Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n", "<p>#resolve</p><p>Printer fixed.</p>\r\n"),
		),
		relayEntityRaw("Content-Type: image/png; name=\"a.png\"\r\nContent-Disposition: attachment; filename=\"a.png\"\r\nContent-Transfer-Encoding: base64\r\nX-Attachment-Id: f_abc\r\n", "iVBORw0KGgo="),
	)
	var calls []string
	r := relayTestMail([]byte(orig))
	r.EditText = relayStripResolve(&calls)
	raw, _, err := ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	mailGolden(t, "relay_small.golden", raw)
	mailCheckLines(t, raw)
	mailCheckNoInjection(t, raw)

	// Composing again gives the same bytes; another Message-ID other
	// boundaries.
	r.Original, r.EditText = strings.NewReader(orig), relayStripResolve(&calls)
	again, _, err := ComposeRelay(r)
	if err != nil || !bytes.Equal(raw, again) {
		t.Errorf("second composition differs (%v)", err)
	}
	r.Original, r.MessageID = strings.NewReader(orig), "relay.ACME-0042.other@northwind-it.example"
	other, _, err := ComposeRelay(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(other, raw[bytes.Index(raw, []byte("=_r1_")):][:37]) {
		t.Error("another Message-ID gave the same boundary")
	}
}

func TestComposeRelayStructures(t *testing.T) {
	text := relayEntityRaw("Content-Type: text/plain; charset=utf-8\r\n", "#resolve\r\nfixed\r\n")
	html := relayEntityRaw("Content-Type: text/html; charset=utf-8\r\n", "<p>#resolve</p><p>fixed</p>")
	alt := relayMultipartRaw("multipart/alternative", "alt", "", "", text, html)
	nested := text
	for i := range 20 {
		nested = relayMultipartRaw("multipart/mixed", fmt.Sprintf("n%d", i), "", "", nested)
	}
	tests := []struct {
		name    string
		orig    string
		noEdit  bool
		leaves  string // "" when an error is wanted
		wantErr string
		calls   string // EditText's calls, when they are not [text/plain ...] of the leaves
		check   func(t *testing.T, raw []byte, leaves []relayLeaf)
	}{
		{
			name: "LF line endings", orig: "Subject: x\nContent-Type: multipart/alternative; boundary=alt\n\n--alt\nContent-Type: text/plain\n\n#resolve\nfixed\n--alt--\n",
			leaves: "[text/plain]",
			check: func(t *testing.T, _ []byte, l []relayLeaf) {
				// The line break before a delimiter belongs to it.
				if string(l[0].body) != "fixed" {
					t.Errorf("text = %q", l[0].body)
				}
			},
		},
		{
			name: "signed reply is unwrapped",
			orig: relayMultipartRaw("multipart/signed", "sig", ` protocol="application/pkcs7-signature"; micalg=sha-256;`, "", alt,
				relayEntityRaw("Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n", "MIIB")),
			leaves: "[text/plain text/html]",
			check: func(t *testing.T, raw []byte, _ []relayLeaf) {
				if bytes.Contains(raw, []byte("pkcs7")) || bytes.Contains(raw, []byte("multipart/signed")) {
					t.Error("signature not dropped")
				}
			},
		},
		{
			name: "truncated: no closing delimiters",
			orig: "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n" + strings.TrimSuffix(alt, "--alt--\r\n") +
				"--alt\r\nContent-Type: text/plain\r\n\r\n#resolve\r\ncut he",
			leaves: "[text/plain text/html text/plain]",
			check: func(t *testing.T, raw []byte, l []relayLeaf) {
				if string(l[2].body) != "cut he" || !bytes.HasSuffix(raw, []byte("--\r\n")) {
					t.Errorf("last part = %q; relay ends %q", l[2].body, raw[len(raw)-20:])
				}
			},
		},
		{
			name:    "multipart without parts",
			orig:    "Content-Type: multipart/mixed; boundary=m\r\n\r\n#resolve\r\nthe client forgot the parts\r\n",
			wantErr: "multipart/mixed has no parts",
		},
		{
			name:    "multipart without boundary",
			orig:    "Content-Type: multipart/mixed\r\n\r\n#resolve\r\n",
			wantErr: "without a boundary",
		},
		{
			name:   "multipart without boundary, no editor",
			orig:   "Content-Type: multipart/mixed\r\n\r\n#resolve\r\n",
			noEdit: true, wantErr: "without a boundary",
		},
		{
			name:    "encrypted",
			orig:    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIB\r\n",
			wantErr: "encrypted",
		},
		{
			name: "Outlook S/MIME encrypted",
			orig: "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n" +
				"Content-Disposition: attachment; filename=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIB\r\n",
			noEdit: true, wantErr: "encrypted",
		},
		{
			name: "PGP encrypted part",
			orig: relayMultipartRaw("multipart/mixed", "m", "", "", text, relayMultipartRaw("multipart/encrypted", "e", ` protocol="application/pgp-encrypted";`, "",
				relayEntityRaw("Content-Type: application/pgp-encrypted\r\n", "Version: 1\r\n"))),
			wantErr: "encrypted",
		},
		{
			name: "attached .p7m file",
			orig: relayMultipartRaw("multipart/mixed", "m", "", "", text,
				relayEntityRaw("Content-Type: application/pkcs7-mime; name=contract.p7m\r\nContent-Disposition: attachment; filename=contract.p7m\r\n", "MIIB")),
			leaves: "[text/plain application/pkcs7-mime]",
		},
		{
			name:    "nested too deep",
			orig:    nested,
			wantErr: "nested more than",
		},
		{
			name: "nested too deep, no editor", orig: nested, noEdit: true,
			leaves: "[text/plain]",
		},
		{
			name:   "malformed Content-Type read leniently",
			orig:   "Content-Type: multipart/alternative boundary=\"alt\"\r\n\r\n" + strings.SplitN(alt, "\r\n\r\n", 2)[1],
			leaves: "[text/plain text/html]",
		},
		{
			name:   "base64 text with a broken line",
			orig:   "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nI3Jlc29sdmUN\r\n CmZpeGVkDQo=\r\n",
			leaves: "[text/plain]",
			check: func(t *testing.T, _ []byte, l []relayLeaf) {
				if string(l[0].body) != "fixed\r\n" {
					t.Errorf("text = %q", l[0].body)
				}
			},
		},
		{
			name:   "header only",
			orig:   "Subject: x\r\nContent-Type: text/plain",
			leaves: "[text/plain]",
		},
		{
			// go-message reads the part as text/plain: it does not apply
			// the digest default. The relay does and leaves it alone.
			name:   "digest parts default to message/rfc822",
			orig:   relayMultipartRaw("multipart/digest", "d", "", "", relayEntityRaw("", "Subject: x\r\n\r\n#resolve\r\n")),
			leaves: "[text/plain]", calls: "[]",
		},
		{name: "empty", orig: "", wantErr: "staff message is empty"},
		{name: "unparsable header", orig: " folded first line\r\n\r\nbody", wantErr: "cannot be parsed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			r := relayTestMail([]byte(tt.orig))
			if !tt.noEdit {
				r.EditText = relayStripResolve(&calls)
			}
			raw, _, err := ComposeRelay(r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mailCheckLines(t, raw)
			_, leaves := relayLeaves(t, raw)
			if got := relayLeafTypes(leaves); got != tt.leaves {
				t.Errorf("leaves = %s, want %s", got, tt.leaves)
			}
			if tt.calls != "" {
				if got := fmt.Sprint(calls); got != tt.calls {
					t.Errorf("EditText called for %s, want %s", got, tt.calls)
				}
			} else if !tt.noEdit {
				for _, l := range leaves {
					if strings.HasPrefix(l.mt, "text/") && bytes.Contains(l.body, []byte("#resolve")) {
						t.Errorf("%s part still has the command: %q", l.mt, l.body)
					}
				}
			}
			if tt.check != nil {
				tt.check(t, raw, leaves)
			}
		})
	}
}

func TestWriteRelayTextTooLarge(t *testing.T) {
	orig := relayStaffHeader + relayMultipartRaw("multipart/mixed", "m", "", "",
		relayEntityRaw("Content-Type: text/plain\r\n", strings.Repeat("x", 2000)),
		relayEntityRaw("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n", strings.Repeat("y", 5000)))
	r := relayTestMail([]byte(orig))
	r.EditText = func(_, s string) string { return s }
	if _, err := writeRelay(io.Discard, r, 1000, relayMaxDepth); !errors.Is(err, ErrRelayTextTooLarge) {
		t.Errorf("err = %v, want ErrRelayTextTooLarge", err)
	}
	// Attachments are not limited, and without an editor nothing is read
	// into memory.
	for _, edit := range []func(string, string) string{nil, func(_, s string) string { return s }} {
		r = relayTestMail([]byte(orig))
		r.EditText = edit
		if _, err := writeRelay(io.Discard, r, 3000, relayMaxDepth); err != nil {
			t.Errorf("err = %v", err)
		}
	}
}

func TestWriteRelayReadError(t *testing.T) {
	boom := errors.New("connection reset")
	orig := relayThunderbird(mailRandom(100_000, 4))
	for _, cut := range []int{100, len(relayStaffHeader) + 300, len(orig) / 2, len(orig) - 10} {
		r := relayTestMail(nil)
		r.Original = &errReader{r: bytes.NewReader(orig[:cut]), err: boom}
		var calls []string
		r.EditText = relayStripResolve(&calls)
		if _, err := WriteRelay(io.Discard, r); !errors.Is(err, boom) {
			t.Errorf("cut at %d: err = %v, want the read error", cut, err)
		}
	}
}

type relayFailWriter struct{ n int }

func (w *relayFailWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("smtp: connection lost")
	}
	return len(p), nil
}

func TestWriteRelayWriteError(t *testing.T) {
	orig := relayThunderbird(mailRandom(100_000, 5))
	for _, limit := range []int{10, 2000, 50_000} {
		r := relayTestMail(orig)
		if _, err := WriteRelay(&relayFailWriter{n: limit}, r); err == nil || !strings.Contains(err.Error(), "connection lost") {
			t.Errorf("limit %d: err = %v", limit, err)
		}
	}
}

// relayCountingWriter counts the bytes written and keeps the first ones.
type relayCountingWriter struct {
	n    int64
	head []byte
}

func (w *relayCountingWriter) Write(p []byte) (int, error) {
	if len(w.head) < 4096 {
		w.head = append(w.head, p[:min(len(p), 4096-len(w.head))]...)
	}
	w.n += int64(len(p))
	return len(p), nil
}

// TestWriteRelayStreams relays a 20 MiB attachment and measures the heap
// allocated meanwhile: it must not depend on the attachment's size.
func TestWriteRelayStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 27 MiB message")
	}
	const size = 20 << 20
	att := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{6}).Read(att) // mailRandom's byte loop is slow under -race
	orig := relayThunderbird(att)
	r := relayTestMail(orig)
	var calls []string
	r.EditText = relayStripResolve(&calls)
	var out relayCountingWriter

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := WriteRelay(&out, r)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("relayed %d bytes (input %d) with %d KiB allocated", out.n, len(orig), alloc>>10)
	if alloc > 2<<20 {
		t.Errorf("relaying a %d MiB attachment allocated %d KiB: not streamed", size>>20, alloc>>10)
	}
	if d := out.n - int64(len(orig)); d < -2000 || d > 2000 {
		t.Errorf("relay is %d bytes for an input of %d", out.n, len(orig))
	}
	if fmt.Sprint(calls) != "[text/plain text/html]" || !bytes.Contains(out.head, []byte("X-Ticket-ID: ACME-0042")) {
		t.Errorf("calls %v; head %q", calls, out.head)
	}
}

// relayCheckTree walks the multiparts the relay wrote (those with the
// relay's boundaries) and fails on any structural error.
func relayCheckTree(t *testing.T, h textproto.Header, body io.Reader, depth int) {
	t.Helper()
	mt, params := relayParseValue(h.Get("Content-Type"))
	if !strings.HasPrefix(mt, "multipart/") || !strings.HasPrefix(params["boundary"], "=_r") || depth > relayMaxDepth+1 {
		_, _ = io.Copy(io.Discard, body)
		return
	}
	mr := textproto.NewMultipartReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("relay multipart at depth %d: %v", depth, err)
		}
		relayCheckTree(t, p.Header, p, depth+1)
	}
}

// FuzzComposeRelay feeds arbitrary staff messages and subjects: no panic;
// when composition succeeds, the top-level header holds only the relay's
// fields and the body's content fields, each once, the subject reads back,
// lines end in CRLF, and the multiparts the relay wrote are well formed.
func FuzzComposeRelay(f *testing.F) {
	f.Add([]byte(relayThunderbird(mailRandom(300, 1))), "[ACME-0042] Re: printer")
	f.Add([]byte("Content-Type: text/plain\r\n\r\n#resolve\r\nhi\r\n"), "x\r\nBcc: v@evil.example")
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html; charset=windows-1255\nContent-Transfer-Encoding: quoted-printable\n\n<p>#resolve</p>=E0=E1\n--b--\n"), "שלום")
	f.Add([]byte("Content-Type: multipart/signed; boundary=s\r\n\r\n--s\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n\r\n#x\r\n--a--\r\n--s\r\n"), "")
	f.Add([]byte("Content-Type: multipart/related; boundary=\"=_r1_00\"\r\n\r\n--=_r1_00\r\nContent-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n//4jAA==\r\n--=_r1_00--"), "=?utf-8?q?x?=")
	f.Add([]byte("Content-Type: text/plain\r\nContent-Type: text/html\r\nBcc: x@y\r\nContent-Transfer-Encoding: 8-bit\r\n\r\n\xff\xfe\r\r\n.\r\n"), "a\x00b")
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\nContent-Type: text/plain\r\n\r\n--b--"), "")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, orig []byte, subject string) {
		r := relayTestMail(orig)
		r.Subject = subject
		r.EditText = func(mt, s string) string {
			var b strings.Builder
			for l := range strings.SplitAfterSeq(s, "\n") {
				if !strings.HasPrefix(l, "#") {
					b.WriteString(l)
				}
			}
			return b.String()
		}
		var buf bytes.Buffer
		if _, err := writeRelay(&buf, r, 1<<16, 6); err != nil {
			return // refusing bad input is fine; panicking is not
		}
		out := buf.Bytes()
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) ||
			bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\r")) {
			t.Error("bare CR or LF in output")
		}
		br := bufio.NewReader(bytes.NewReader(out))
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatalf("read relay header: %v", err)
		}
		allowed := map[string]bool{
			"Date": true, "From": true, "To": true, "Cc": true, "Reply-To": true, "Subject": true,
			"Message-Id": true, "In-Reply-To": true, "References": true, "X-Auto-Response-Suppress": true,
			"X-Ticket-Id": true, "X-Ticket-Gateway-Loop": true, "Mime-Version": true,
		}
		seen := map[string]int{}
		for fl := h.Fields(); fl.Next(); {
			k := fl.Key()
			if seen[k]++; seen[k] > 1 {
				t.Errorf("header field %s appears twice", k)
			}
			if !allowed[k] && !relayTopContent[strings.ToLower(k)] {
				t.Errorf("unexpected top-level field %s: %q", k, fl.Value())
			}
		}
		if h.Get("X-Ticket-Id") != r.TicketID || h.Get("X-Ticket-Gateway-Loop") != r.LoopMarker {
			t.Errorf("relay header damaged: %v", h.Map())
		}
		mh := mail.Header{Header: message.Header{Header: h}}
		if got, err := mh.Subject(); err != nil || got != mailOneLine(subject) {
			t.Errorf("subject %q reads back as %q (%v)", subject, got, err)
		}
		relayCheckTree(t, h, br, 0)
	})
}

func TestRelayParseValue(t *testing.T) {
	tests := []struct {
		in, mt string
		params map[string]string
	}{
		{`text/plain; charset="windows-1255"; format=flowed`, "text/plain", map[string]string{"charset": "windows-1255", "format": "flowed"}},
		{`multipart/mixed boundary="a b"`, "multipart/mixed", map[string]string{"boundary": "a b"}},
		{`Multipart/Related; boundary=x; boundary=y; type=text/html`, "multipart/related", map[string]string{"boundary": "x", "type": "text/html"}},
		{`text/plain; charset=utf-8;; name="a\"b.txt"`, "text/plain", map[string]string{"charset": "utf-8", "name": `a"b.txt`}},
		{`attachment; filename=report.pdf`, "attachment", map[string]string{"filename": "report.pdf"}},
		{`;;;`, "", map[string]string{}},
		{`text/plain; charset`, "text/plain", map[string]string{}},
	}
	for _, tt := range tests {
		mt, params := relayParseValue(tt.in)
		if mt != tt.mt || fmt.Sprint(params) != fmt.Sprint(tt.params) {
			t.Errorf("relayParseValue(%q) = %q %v, want %q %v", tt.in, mt, params, tt.mt, tt.params)
		}
	}
}

func TestRelayDecode(t *testing.T) {
	hebrew1255, _ := charmap.Windows1255.NewEncoder().String("שלום")
	tests := []struct {
		name, cte, charset, raw, want string
	}{
		{"qp utf-8", "quoted-printable", "utf-8", "=D7=A9=D7=9C=D7=95=D7=9D soft=\r\nbreak", "שלום softbreak"},
		{"qp literal equals", "Quoted-Printable", "", "a=b c=3D", "a=b c="},
		{"base64 with junk", "base64", "utf-8", "16nXnNeV\r\n\t15*0=\r\n", "שלום"},
		{"base64 without padding", "base64", "", "aGk", "hi"},
		{"windows-1255", "8bit", "windows-1255", hebrew1255, "שלום"},
		{"undeclared legacy", "", "", hebrew1255, "שלום"},
		{"invalid utf-8 declared", "", "utf-8", hebrew1255, "שלום"},
		{"unknown charset, valid utf-8", "8-bit", "x-klingon", "שלום", "שלום"},
		{"iso-8859-8-i", "", `"ISO-8859-8-I"`, hebrew1255, "שלום"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := relayDecodeTransfer(tt.cte, []byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := relayDecodeCharset(tt.charset, b); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkComposeRelay1MiB(b *testing.B) {
	orig := relayThunderbird(mailRandom(1<<20, 1))
	var calls []string
	edit := relayStripResolve(&calls)
	b.SetBytes(int64(len(orig)))
	b.ReportAllocs()
	for b.Loop() {
		calls = calls[:0]
		r := relayTestMail(orig)
		r.EditText = edit
		if _, err := WriteRelay(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
