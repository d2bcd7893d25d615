package notify

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
)

// mailTestReport is a Hebrew quarterly review mail with a report page and
// its figures attached.
func mailTestReport() ReportMail {
	page := "<!DOCTYPE html>\n<html dir=\"rtl\" lang=\"he\"><body><h1>סקירה רבעונית — ACME Ltd</h1>\n" +
		strings.Repeat("<p>תקלות היו מעל הטווח הנורמלי</p>\n", 8) + "</body></html>\n"
	return ReportMail{
		From:    domain.Address{Name: "Northwind IT Support", Addr: "support@northwind-it.example"},
		To:      []domain.Address{{Addr: "it-manager@acme.co.il"}, {Name: "יוסי", Addr: "yossi.acme@gmail.com"}},
		Cc:      []domain.Address{{Addr: "dana@northwind-it.example"}},
		ReplyTo: "dana@northwind-it.example",
		Subject: "\u200fסקירת שירות רבעונית: ACME Ltd, רבעון 3 2026",
		Text:    "\u200fשלום,\n\u200fמצורפת הסקירה הרבעונית.\n",
		HTML:    "<div dir=\"rtl\"><p>שלום,</p><p>מצורפת הסקירה הרבעונית.</p></div>\n",
		Attachments: []Attachment{
			{Filename: "qbr-acme-2026-Q3.html", ContentType: "text/html; charset=utf-8", Data: []byte(page)},
			{Filename: "qbr-acme-2026-Q3.csv", ContentType: "text/csv; charset=utf-8", Data: []byte("section,label,metric,value\nreport,acme,quarter,2026-Q3\n")},
		},
		MessageID:  "qbr.acme-2026-Q3.k3x9q2@northwind-it.example",
		LoopMarker: "support@northwind-it.example",
		Date:       mailTestDate,
		Lang:       "he",
	}
}

func TestComposeReportGolden(t *testing.T) {
	r := mailTestReport()
	raw, env, err := ComposeReport(r)
	if err != nil {
		t.Fatal(err)
	}
	mailGolden(t, "mail_report_he.golden", raw)
	mailCheckLines(t, raw)
	mailCheckNoInjection(t, raw)
	if env.From != "support@northwind-it.example" ||
		fmt.Sprint(env.To) != "[it-manager@acme.co.il yossi.acme@gmail.com dana@northwind-it.example]" {
		t.Errorf("envelope = %+v", env)
	}

	got := mailParse(t, raw)
	h := got.header
	for k, v := range map[string]string{
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		domain.LoopHeader:          r.LoopMarker,
		"Reply-To":                 "<dana@northwind-it.example>",
		"Cc":                       "<dana@northwind-it.example>",
		"Message-Id":               "<" + r.MessageID + ">",
		"Content-Language":         "he",
		"X-Ticket-Id":              "",
	} {
		if g := h.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if subject, _ := h.Subject(); subject != r.Subject {
		t.Errorf("Subject = %q, want %q", subject, r.Subject)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 2 || to[1].Name != "יוסי" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/mixed" {
		t.Errorf("Content-Type = %s", mt)
	}
	if want := "[text/plain text/html text/html text/csv]"; fmt.Sprint(got.leaves) != want {
		t.Errorf("leaf parts = %v, want %v", got.leaves, want)
	}
	if got.text != mailCRLFString(r.Text) {
		t.Errorf("note text = %q", got.text)
	}
	for _, a := range r.Attachments {
		if !bytes.Equal(got.attachments[a.Filename], a.Data) {
			t.Errorf("attachment %s: got %d bytes, want the %d attached", a.Filename, len(got.attachments[a.Filename]), len(a.Data))
		}
	}

	// Deterministic: the same mail gives the same bytes; another id, other
	// boundaries.
	again, _, _ := ComposeReport(r)
	if !bytes.Equal(raw, again) {
		t.Error("the same ReportMail composed to different bytes")
	}
	r.MessageID = "qbr.acme-2026-Q3.other@northwind-it.example"
	other, _, _ := ComposeReport(r)
	if bytes.Equal(raw[bytes.Index(raw, []byte("Content-Type")):], other[bytes.Index(other, []byte("Content-Type")):]) {
		t.Error("different Message-IDs gave the same boundaries")
	}
}

// TestComposeReportPlainNote: without HTML the note is one text/plain part;
// a non-ASCII file name is written per RFC 2231 and read back.
func TestComposeReportPlainNote(t *testing.T) {
	r := mailTestReport()
	r.HTML, r.Cc, r.ReplyTo, r.Lang = "", nil, "", ""
	r.Attachments = []Attachment{{Filename: "סקירה 2026-Q3.csv", ContentType: "text/csv", Data: []byte("a,b\n")}}
	raw, env, err := ComposeReport(r)
	if err != nil {
		t.Fatal(err)
	}
	mailCheckNoInjection(t, raw)
	got := mailParse(t, raw)
	if want := "[text/plain text/csv]"; fmt.Sprint(got.leaves) != want {
		t.Errorf("leaf parts = %v, want %v", got.leaves, want)
	}
	if string(got.attachments["סקירה 2026-Q3.csv"]) != "a,b\n" {
		t.Errorf("attachments = %q", got.attachments)
	}
	if got.header.Get("Reply-To") != "" || got.header.Get("Cc") != "" || len(env.To) != 2 {
		t.Errorf("reply-to %q, cc %q, envelope %v", got.header.Get("Reply-To"), got.header.Get("Cc"), env.To)
	}
}

func TestComposeReportRejects(t *testing.T) {
	const evil = "\r\nBcc: victim@evil.example"
	tests := []struct {
		name   string
		mutate func(*ReportMail)
		want   string // "" : composed, without the injection
	}{
		{"subject injection", func(r *ReportMail) { r.Subject += evil }, ""},
		{"name injection", func(r *ReportMail) { r.To[1].Name += evil }, ""},
		{"no recipient", func(r *ReportMail) { r.To = nil }, "no recipient"},
		{"bad to", func(r *ReportMail) { r.To[0].Addr = "it@acme.co.il" + evil }, "to: address"},
		{"bad cc", func(r *ReportMail) { r.Cc[0].Addr = "not an address" }, "cc: address"},
		{"bad reply-to", func(r *ReportMail) { r.ReplyTo = "dana@x.example>, <v@evil.example" }, "reply-to"},
		{"no text", func(r *ReportMail) { r.Text = "" }, "text part is empty"},
		{"no attachment", func(r *ReportMail) { r.Attachments = nil }, "no attachment"},
		{"file name with a path", func(r *ReportMail) { r.Attachments[0].Filename = "../etc/passwd" }, "attachment 1: file name"},
		{"file name with a line break", func(r *ReportMail) { r.Attachments[1].Filename = "a.csv" + evil }, "attachment 2: file name"},
		{"empty file name", func(r *ReportMail) { r.Attachments[1].Filename = "" }, "attachment 2: file name"},
		{"bad content type", func(r *ReportMail) { r.Attachments[0].ContentType = "text/html; charset" }, "attachment 1: content type"},
		{"message-id", func(r *ReportMail) { r.MessageID = "no-at-sign" }, "message-id"},
		{"language", func(r *ReportMail) { r.Lang = "he" + evil }, "language"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mailTestReport()
			r.To = append([]domain.Address{}, r.To...)
			r.Cc = append([]domain.Address{}, r.Cc...)
			r.Attachments = append([]Attachment{}, r.Attachments...)
			tt.mutate(&r)
			raw, _, err := ComposeReport(r)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mailCheckNoInjection(t, raw)
		})
	}
	// Every problem at once.
	_, _, err := ComposeReport(ReportMail{})
	for _, want := range []string{"from:", "no recipient", "text part is empty", "no attachment", "message-id", "loop marker", "date is zero"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if errors.Unwrap(err) == nil {
		t.Errorf("error %v wraps nothing", err)
	}
}
