package notify

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
	"unicode"

	"github.com/northwind-it/ticketgw/domain"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/render")

// builtins loads the built-in templates once per test.
func builtins(t testing.TB) *Templates {
	t.Helper()
	tm, err := LoadTemplates("")
	if err != nil {
		t.Fatalf("LoadTemplates(\"\"): %v", err)
	}
	return tm
}

// writeOverrides creates a templates.dir with the given files.
func writeOverrides(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "templates")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestGolden renders every sample of every kind in every language and
// compares with testdata/render/<kind>.<lang>.<sample>.{txt,html}. The .txt
// file holds the subject line, a blank line and the text part.
func TestGolden(t *testing.T) {
	tm := builtins(t)
	for _, kind := range Kinds() {
		for _, lang := range Languages() {
			for _, s := range samples(kind) {
				name := fmt.Sprintf("%s.%s.%s", kind, lang, s.name)
				t.Run(name, func(t *testing.T) {
					r, err := tm.Render(kind, lang, s.data)
					if err != nil {
						t.Fatal(err)
					}
					golden(t, filepath.Join("testdata", "render", name+".txt"), "Subject: "+r.Subject+"\n\n"+r.Text)
					golden(t, filepath.Join("testdata", "render", name+".html"), r.HTML)
				})
			}
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the rendering (run go test -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestSpecAcknowledgement pins the wording SPEC §7 gives for the English
// acknowledgement, independent of the golden files.
func TestSpecAcknowledgement(t *testing.T) {
	tm := builtins(t)
	r, err := tm.Render(KindAck, LangEnglish, SampleData(KindAck))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[ACME-0042] Received: Server down - nobody can log in"; r.Subject != want {
		t.Errorf("subject = %q, want %q", r.Subject, want)
	}
	want := "Ticket ACME-0042 — we classified your message as a fault (priority high). " +
		"A technician will respond by Monday 30 November 2026, 10:30 and we aim to resolve it by Tuesday 1 December 2026, 09:30."
	if !strings.Contains(r.Text, want) {
		t.Errorf("text lacks %q:\n%s", want, r.Text)
	}
	wantHTML := "A technician will respond by <strong>Monday 30 November 2026, 10:30</strong> and we aim to resolve it by <strong>Tuesday 1 December 2026, 09:30</strong>."
	if !strings.Contains(r.HTML, wantHTML) {
		t.Errorf("HTML lacks %q", wantHTML)
	}

	imac := sampleNamed(t, KindAck, "imac").(AckData)
	r, err = tm.Render(KindAck, LangEnglish, imac)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"IMAC requests are handled on your service day. This one is scheduled for Tuesday 8 December 2026.",
		"It is IMAC 4 of the 10 included in your plan for December 2026.",
	} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("IMAC text lacks %q:\n%s", want, r.Text)
		}
	}
	// Received in the month it is scheduled in: SPEC's "this month".
	imac.Received = time.Date(2026, 12, 1, 9, 0, 0, 0, imac.Loc)
	r, err = tm.Render(KindAck, LangEnglish, imac)
	if err != nil {
		t.Fatal(err)
	}
	if want := "It is IMAC 4 of the 10 included in your plan this month."; !strings.Contains(r.Text, want) {
		t.Errorf("IMAC text lacks %q:\n%s", want, r.Text)
	}
}

func sampleNamed(t *testing.T, kind, name string) any {
	t.Helper()
	for _, s := range samples(kind) {
		if s.name == name {
			return s.data
		}
	}
	t.Fatalf("no sample %s/%s", kind, name)
	return nil
}

// TestAckVariants checks the sentence each acknowledgement variant must
// carry, in both languages.
func TestAckVariants(t *testing.T) {
	tm := builtins(t)
	tests := []struct {
		sample string
		lang   string
		want   []string
		not    []string
	}{
		{"imac-billable", LangEnglish, []string{"this is number 11 for December 2026, so it will be billed separately"}, []string{"of the 10 included"}},
		{"imac-billable", LangHebrew, []string{"וזוהי בקשה מספר 11 לחודש דצמבר 2026, ולכן היא תחויב בנפרד"}, nil},
		{"imac-deferred", LangEnglish, []string{"first service day of a month that still has room: Tuesday 5 January 2027", "IMAC 1 of the 10 included in your plan for January 2027"}, nil},
		{"imac-deferred", LangHebrew, []string{"נקבעה ליום השירות הראשון בחודש שיש בו עדיין מקום: יום שלישי, 5 בינואר 2027"}, nil},
		{"outside-hours", LangEnglish, []string{
			"A technician will respond by Sunday 29 November 2026, 09:00",
			"outside our business hours (Saturday 28 November 2026, 22:15), so these times count from when we open: Sunday 29 November 2026, 08:00.",
		}, nil},
		{"outside-hours", LangHebrew, []string{"פנייתך התקבלה בשבת, 28 בנובמבר 2026, 22:15, מחוץ לשעות הפעילות שלנו", "מפתיחת שעות הפעילות: יום ראשון, 29 בנובמבר 2026, 08:00."}, nil},
		{"no-targets", LangEnglish, []string{"our team will look at it during business hours, from Sunday 29 November 2026, 08:00."}, []string{"respond by", "outside our business hours"}},
		{"no-targets", LangHebrew, []string{"הצוות שלנו יטפל בה בשעות הפעילות, החל מיום ראשון, 29 בנובמבר 2026, 08:00."}, []string{"יחזור אליך"}},
		{"fault", LangHebrew, []string{"טכנאי יחזור אליך עד יום שני, 30 בנובמבר 2026, 10:30, ואנו שואפים לפתור את התקלה עד יום שלישי, 1 בדצמבר 2026, 09:30."}, nil},
		{"request", LangEnglish, []string{"a service request (priority normal). We will respond by Monday 30 November 2026, 16:00 and we aim to complete it by Thursday 3 December 2026, 11:00."}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.sample+"."+tc.lang, func(t *testing.T) {
			r, err := tm.Render(KindAck, tc.lang, sampleNamed(t, KindAck, tc.sample))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.NewReplacer(lrm, "", rlm, "").Replace(r.Text)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(text, w) {
					t.Errorf("text has %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestAckResponseOrResolutionOnly(t *testing.T) {
	tm := builtins(t)
	d := SampleData(KindAck).(AckData)
	d.ResolutionDue = time.Time{}
	r, err := tm.Render(KindAck, LangEnglish, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "A technician will respond by Monday 30 November 2026, 10:30.") || strings.Contains(r.Text, "resolve it") {
		t.Errorf("response only:\n%s", r.Text)
	}
	d = SampleData(KindAck).(AckData)
	d.ResponseDue = time.Time{}
	r, err = tm.Render(KindAck, LangEnglish, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "We aim to resolve it by Tuesday 1 December 2026, 09:30.") || strings.Contains(r.Text, "respond by") {
		t.Errorf("resolution only:\n%s", r.Text)
	}
	// An IMAC that could not be scheduled promises contact, not a date.
	d = sampleNamed(t, KindAck, "imac").(AckData)
	d.IMACDate = time.Time{}
	r, err = tm.Render(KindAck, LangEnglish, d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "We will contact you to agree a date.") || strings.Contains(r.Text, "scheduled for") {
		t.Errorf("unscheduled IMAC:\n%s", r.Text)
	}
}

func TestCheckBuiltins(t *testing.T) {
	if err := builtins(t).Check(); err != nil {
		t.Fatalf("Check of the built-in templates: %v", err)
	}
}

func TestEveryTemplateFileIsEmbedded(t *testing.T) {
	files := TemplateFiles()
	if want := len(Kinds()) * len(Languages()) * 3; len(files) != want {
		t.Fatalf("TemplateFiles() has %d names, want %d", len(files), want)
	}
	entries, err := os.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		onDisk = append(onDisk, e.Name())
	}
	if !reflect.DeepEqual(onDisk, files) {
		t.Errorf("templates/ holds %v, want exactly %v", onDisk, files)
	}
	missing := fstest.MapFS{"ack.en.txt.tmpl": {Data: []byte("x")}}
	if _, err := loadTemplates(missing, nil, ""); err == nil || !strings.Contains(err.Error(), "built-in ack.en.html.tmpl: missing") {
		t.Errorf("loading an incomplete built-in set: err = %v", err)
	}
}

func TestOverrideFromDir(t *testing.T) {
	dir := writeOverrides(t, map[string]string{
		"ack.en.subject.tmpl": "{{.Tag}} Got it: {{oneLine .Subject}}\n",
		".gitkeep":            "",
	})
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	r, err := tm.Render(KindAck, LangEnglish, SampleData(KindAck))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[ACME-0042] Got it: Server down - nobody can log in"; r.Subject != want {
		t.Errorf("overridden subject = %q, want %q", r.Subject, want)
	}
	// The other parts and the other language stay built-in.
	b, err := builtins(t).Render(KindAck, LangEnglish, SampleData(KindAck))
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != b.Text || r.HTML != b.HTML {
		t.Error("overriding the subject changed the text or HTML part")
	}
	he, err := tm.Render(KindAck, LangHebrew, SampleData(KindAck))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(he.Subject, "Got it") {
		t.Error("the English override leaked into the Hebrew subject")
	}
}

func TestOverrideErrors(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		subdir string
		want   []string // substrings of the joined error, in any order
	}{
		{
			name:  "unknown file",
			files: map[string]string{"ack.en.text.tmpl": "x", "README.md": "notes"},
			want: []string{
				filepath.Join("templates", "ack.en.text.tmpl") + ": unknown template file",
				"(did you mean ack.en.txt.tmpl?)",
				filepath.Join("templates", "README.md") + ": unknown template file",
			},
		},
		{
			name:  "missing suffix hinted",
			files: map[string]string{"ack.en.txt": "x"},
			want:  []string{"ack.en.txt: unknown template file", "did you mean ack.en.txt.tmpl?"},
		},
		{
			name:   "directory",
			subdir: "old",
			want:   []string{filepath.Join("templates", "old") + ": unexpected directory"},
		},
		{
			name:  "parse error with line",
			files: map[string]string{"ack.en.txt.tmpl": "Hello\n\n{{if .CustomerName}}\nno end\n", "warn.he.html.tmpl": "<p>{{nosuchfunc .TicketID}}</p>"},
			want: []string{
				filepath.Join("templates", "ack.en.txt.tmpl") + ":5: unexpected EOF",
				filepath.Join("templates", "warn.he.html.tmpl") + `:1: function "nosuchfunc" not defined`,
			},
		},
		{
			name:  "not utf-8",
			files: map[string]string{"ack.he.txt.tmpl": "\xff\xfe"},
			want:  []string{"ack.he.txt.tmpl: not valid UTF-8"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeOverrides(t, tc.files)
			if tc.subdir != "" {
				if err := os.Mkdir(filepath.Join(dir, tc.subdir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tm, err := LoadTemplates(dir)
			if err == nil {
				t.Fatalf("LoadTemplates succeeded (%v), want an error", tm != nil)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Errorf("error %v wraps no *TemplateError", err)
			}
		})
	}
	if _, err := LoadTemplates(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("LoadTemplates of a missing directory succeeded")
	}
}

func TestParseErrorLocation(t *testing.T) {
	dir := writeOverrides(t, map[string]string{"ack.en.txt.tmpl": "line one\nline two {{end}}\n"})
	_, err := LoadTemplates(dir)
	var te *TemplateError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a *TemplateError", err)
	}
	if te.File != filepath.Join(dir, "ack.en.txt.tmpl") || te.Line != 2 {
		t.Errorf("TemplateError = %+v, want file %s line 2", te, filepath.Join(dir, "ack.en.txt.tmpl"))
	}
	if !strings.HasPrefix(err.Error(), filepath.Join(dir, "ack.en.txt.tmpl")+":2: ") {
		t.Errorf("error %q does not start with file:line:", err)
	}
}

// TestCheckCatchesBrokenOverride: a template that parses but fails on data
// (a misspelt field, a branch only some data takes) is found by Check, with
// file, line and column.
func TestCheckCatchesBrokenOverride(t *testing.T) {
	dir := writeOverrides(t, map[string]string{
		"ack.en.txt.tmpl":        "Hello\n\nTicket {{.TicketId}}\n",
		"ack.he.txt.tmpl":        "שלום{{if .Deferred}} {{dateTime .ResponseDue}}{{end}}\n",
		"resolved.en.html.tmpl":  "<p>{{.Resolved.Nope}}</p>",
		"breach.en.subject.tmpl": "{{if false}}x{{end}}",
	})
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatalf("the overrides parse; LoadTemplates: %v", err)
	}
	err = tm.Check()
	if err == nil {
		t.Fatal("Check passed broken overrides")
	}
	msg := err.Error()
	for _, w := range []string{
		filepath.Join(dir, "ack.en.txt.tmpl") + ":3:10: ",
		"can't evaluate field TicketId",
		// Only the deferred IMAC takes the branch; its ResponseDue is zero.
		filepath.Join(dir, "ack.he.txt.tmpl") + ":1:",
		`format a zero time`,
		`(with sample data "imac-deferred")`,
		filepath.Join(dir, "resolved.en.html.tmpl") + ":1:",
		filepath.Join(dir, "breach.en.subject.tmpl") + ": renders an empty subject",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("Check error lacks %q:\n%s", w, msg)
		}
	}
	// Each failure is reported once, not once per sample.
	if n := strings.Count(msg, "can't evaluate field TicketId"); n != 1 {
		t.Errorf("the TicketId failure is reported %d times:\n%s", n, msg)
	}
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, dir) {
			t.Errorf("Check error line %q does not start with the override's path", line)
		}
	}
}

// TestMissingKeyError: templates run with missingkey=error, so a map without
// the key fails instead of printing "<no value>".
func TestMissingKeyError(t *testing.T) {
	dir := writeOverrides(t, map[string]string{"ack.en.subject.tmpl": "{{.Tag}} {{.Missing}}"})
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tm.Render(KindAck, LangEnglish, map[string]any{"Tag": "[ACME-0001]"})
	if err == nil || !strings.Contains(err.Error(), `map has no entry for key "Missing"`) {
		t.Fatalf("Render with a missing map key: err = %v", err)
	}
	_, err = tm.Render(KindAck, LangEnglish, map[string]any{"Tag": "[ACME-0001]", "Missing": "x"})
	if err == nil || !strings.Contains(err.Error(), "ack.en.txt.tmpl") {
		t.Fatalf("the built-in text part with map data: err = %v, want a failure naming ack.en.txt.tmpl", err)
	}
}

func TestRenderErrors(t *testing.T) {
	tm := builtins(t)
	if _, err := tm.Render("nope", LangEnglish, SampleData(KindAck)); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("unknown kind: err = %v", err)
	}
	if _, err := tm.Render(KindAck, "fr", SampleData(KindAck)); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("unknown language: err = %v", err)
	}
	if _, err := tm.Render(KindAck, LangEnglish, nil); err == nil {
		t.Error("nil data rendered")
	}
	if _, err := tm.Render(KindAck, LangEnglish, (*AckData)(nil)); err == nil {
		t.Error("nil *AckData rendered")
	}
	d := SampleData(KindAck).(AckData)
	if _, err := tm.Render(KindAck, LangEnglish, &d); err != nil {
		t.Errorf("*AckData: %v", err)
	}
	d.Loc = nil
	_, err := tm.Render(KindAck, LangEnglish, d)
	if err == nil || !strings.Contains(err.Error(), "no time zone") {
		t.Errorf("data without a zone: err = %v", err)
	}
	var te *TemplateError
	if !errors.As(err, &te) || te.File != "built-in ack.en.txt.tmpl" || te.Line == 0 {
		t.Errorf("data without a zone: error %v does not locate the built-in template", err)
	}
	d = SampleData(KindAck).(AckData)
	d.Category = "outage"
	if _, err := tm.Render(KindAck, LangEnglish, d); err == nil || !strings.Contains(err.Error(), `unknown value "outage"`) {
		t.Errorf("unknown category: err = %v", err)
	}
	if _, err := (&Templates{}).Render(KindAck, LangEnglish, d); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("empty Templates: err = %v", err)
	}
}

func TestEmptyHTMLOverrideMeansTextOnly(t *testing.T) {
	dir := writeOverrides(t, map[string]string{"unknown_sender.en.html.tmpl": "{{/* no HTML part */}}\n"})
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tm.Render(KindUnknownSender, LangEnglish, SampleData(KindUnknownSender))
	if err != nil {
		t.Fatal(err)
	}
	if r.HTML != "" || r.Text == "" {
		t.Errorf("HTML = %q, text %d bytes; want no HTML and a text part", r.HTML, len(r.Text))
	}
}

// hostile is what a customer might put in a subject or display name.
const hostile = "<script>alert(1)</script>\r\nBcc: x@y\u202e\x00<img src=x onerror=alert(2)>"

// customerControlled sets every field a customer (or a sender) controls to
// hostile: subjects, names, addresses, rule-visible strings.
func customerControlled(data any) any {
	evil := domain.Address{Name: hostile, Addr: "evil@example.com\r\nBcc: x@y"}
	switch d := data.(type) {
	case AckData:
		d.Subject, d.CustomerName, d.CustomerAddress = hostile, hostile, hostile
		return d
	case ForwardData:
		d.Subject, d.Requester, d.From, d.Cc = hostile, evil, evil, []domain.Address{evil, evil}
		d.Warnings, d.AckReason = []string{hostile}, hostile
		return d
	case ResolvedData:
		d.Subject, d.CustomerName = hostile, hostile
		return d
	case UnknownSenderData:
		d.Subject, d.SenderName, d.SenderAddress = hostile, hostile, hostile
		return d
	case CommandErrorData:
		d.Subject = hostile
		d.Problems = []CommandProblem{{Line: hostile, Problem: hostile}}
		return d
	case SLAData:
		d.Subject, d.Requester = hostile, evil
		return d
	}
	panic(fmt.Sprintf("no hostile variant for %T", data))
}

func TestCustomerTextIsEscapedAndStripped(t *testing.T) {
	tm := builtins(t)
	for _, kind := range Kinds() {
		for _, lang := range Languages() {
			for _, s := range samples(kind) {
				t.Run(kind+"."+lang+"."+s.name, func(t *testing.T) {
					r, err := tm.Render(kind, lang, customerControlled(s.data))
					if err != nil {
						t.Fatal(err)
					}
					checkSafe(t, r)
				})
			}
		}
	}
}

func checkSafe(t *testing.T, r Rendered) {
	t.Helper()
	for _, c := range r.Subject {
		if unicode.IsControl(c) || c == '\u2028' || c == '\u2029' || isStripped(c) {
			t.Errorf("subject %q contains %U", r.Subject, c)
		}
	}
	if n := len([]rune(r.Subject)); n > MaxSubjectRunes {
		t.Errorf("subject has %d runes, more than %d", n, MaxSubjectRunes)
	}
	for _, line := range strings.Split(r.Text, "\n") {
		trimmed := strings.TrimLeft(line, " \t"+lrm+rlm)
		if strings.HasPrefix(trimmed, "Bcc:") {
			t.Errorf("text has an injected line %q", line)
		}
	}
	for _, c := range r.Text {
		if (unicode.IsControl(c) && c != '\n' && c != '\t') || isStripped(c) {
			t.Errorf("text contains %U", c)
		}
	}
	if strings.Contains(strings.ToLower(r.HTML), "<script") || strings.Contains(strings.ToLower(r.HTML), "<img") {
		t.Errorf("HTML contains unescaped markup from the customer:\n%s", r.HTML)
	}
	if r.HTML != "" {
		checkNoActiveContent(t, r.HTML)
	}
}

func TestSubjectIsCapped(t *testing.T) {
	tm := builtins(t)
	d := SampleData(KindAck).(AckData)
	d.Subject = strings.Repeat("very long subject ", 100)
	for _, lang := range Languages() {
		r, err := tm.Render(KindAck, lang, d)
		if err != nil {
			t.Fatal(err)
		}
		if n := len([]rune(r.Subject)); n != MaxSubjectRunes {
			t.Errorf("%s: subject has %d runes, want %d", lang, n, MaxSubjectRunes)
		}
		if !strings.Contains(r.Subject, "[ACME-0042]") || !strings.HasSuffix(r.Subject, "…") {
			t.Errorf("%s: capped subject %q lost the tag or the ellipsis", lang, r.Subject)
		}
	}
}

// TestHebrewLinesStartRightToLeft: LIBNOTES §7, the subject and every line
// of the text part start with a Hebrew letter or U+200F, and the ticket tag
// is an LTR island.
func TestHebrewLinesStartRightToLeft(t *testing.T) {
	tm := builtins(t)
	for _, kind := range Kinds() {
		for _, s := range samples(kind) {
			r, err := tm.Render(kind, LangHebrew, s.data)
			if err != nil {
				t.Fatal(err)
			}
			if !startsRTL(r.Subject) {
				t.Errorf("%s/%s: subject %q does not start right to left", kind, s.name, r.Subject)
			}
			for i, line := range strings.Split(strings.TrimSuffix(r.Text, "\n"), "\n") {
				if line != "" && !startsRTL(line) {
					t.Errorf("%s/%s: text line %d %q does not start right to left", kind, s.name, i+1, line)
				}
			}
			if tag := tagOf(s.data); tag != "" {
				island := lrm + tag + lrm
				if strings.Contains(r.Subject, tag) && !strings.Contains(r.Subject, island) {
					t.Errorf("%s/%s: subject %q has the tag outside an LTR island", kind, s.name, r.Subject)
				}
				if strings.Count(r.Text, tag) != strings.Count(r.Text, island) {
					t.Errorf("%s/%s: a tag in the text is not an LTR island:\n%s", kind, s.name, r.Text)
				}
			}
		}
	}
}

func tagOf(data any) string {
	switch d := data.(type) {
	case AckData:
		return d.Tag
	case ForwardData:
		return d.Tag
	case ResolvedData:
		return d.Tag
	}
	return ""
}

// TestAckSubjectCarriesTag: a customer's reply must thread (SPEC §4).
func TestAckSubjectCarriesTag(t *testing.T) {
	tm := builtins(t)
	for _, kind := range []string{KindAck, KindResolved, KindForward} {
		for _, lang := range Languages() {
			for _, s := range samples(kind) {
				r, err := tm.Render(kind, lang, s.data)
				if err != nil {
					t.Fatal(err)
				}
				if tag := tagOf(s.data); !strings.Contains(r.Subject, tag) {
					t.Errorf("%s.%s/%s: subject %q lacks the tag %s", kind, lang, s.name, r.Subject, tag)
				}
			}
		}
	}
	// Staff notices name the ticket without the tag, so that a reply to them
	// is not taken for a reply on the ticket.
	for _, kind := range []string{KindWarn, KindBreach, KindCommandError} {
		for _, lang := range Languages() {
			for _, s := range samples(kind) {
				r, err := tm.Render(kind, lang, s.data)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(r.Subject, "[") {
					t.Errorf("%s.%s/%s: staff notice subject %q carries a tag", kind, lang, s.name, r.Subject)
				}
			}
		}
	}
}

// TestConcurrentRender renders in parallel with data in different zones:
// each Render binds its own zone and language (run with -race).
func TestConcurrentRender(t *testing.T) {
	tm := builtins(t)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	base := SampleData(KindAck).(AckData)
	other := base
	other.Loc = ny
	wantBase, err := tm.Render(KindAck, LangHebrew, base)
	if err != nil {
		t.Fatal(err)
	}
	wantOther, err := tm.Render(KindAck, LangEnglish, other)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(wantOther.Text, "Monday 30 November 2026, 03:30") {
		t.Fatalf("New York rendering lacks the response time in its zone:\n%s", wantOther.Text)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			d, lang, want := base, LangHebrew, wantBase
			if i%2 == 1 {
				d, lang, want = other, LangEnglish, wantOther
			}
			got, err := tm.Render(KindAck, lang, d)
			switch {
			case err != nil:
				errs <- err
			case got != want:
				errs <- fmt.Errorf("render %d differs from the sequential one", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSampleData(t *testing.T) {
	for _, kind := range Kinds() {
		if SampleData(kind) == nil {
			t.Errorf("SampleData(%q) = nil", kind)
		}
	}
	if SampleData("nope") != nil {
		t.Error("SampleData of an unknown kind is not nil")
	}
	want := map[string]reflect.Type{
		KindAck: reflect.TypeFor[AckData](), KindForward: reflect.TypeFor[ForwardData](),
		KindResolved: reflect.TypeFor[ResolvedData](), KindUnknownSender: reflect.TypeFor[UnknownSenderData](),
		KindCommandError: reflect.TypeFor[CommandErrorData](), KindWarn: reflect.TypeFor[SLAData](), KindBreach: reflect.TypeFor[SLAData](),
	}
	for kind, typ := range want {
		for _, s := range samples(kind) {
			if reflect.TypeOf(s.data) != typ {
				t.Errorf("sample %s/%s is a %T, want %v", kind, s.name, s.data, typ)
			}
		}
	}
}

func TestBuiltinFS(t *testing.T) {
	fsys := Builtin()
	for _, n := range TemplateFiles() {
		b, err := fs.ReadFile(fsys, n)
		if err != nil || len(b) == 0 {
			t.Errorf("Builtin() %s: %d bytes, %v", n, len(b), err)
		}
	}
}

func BenchmarkRenderAck(b *testing.B) {
	tm := builtins(b)
	for _, lang := range Languages() {
		b.Run(lang, func(b *testing.B) {
			d := SampleData(KindAck)
			for b.Loop() {
				if _, err := tm.Render(KindAck, lang, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenderNewTicket renders what a new ticket costs: the
// acknowledgement and the staff forward, six templates, in each language.
func BenchmarkRenderNewTicket(b *testing.B) {
	tm := builtins(b)
	ack, fwd := SampleData(KindAck), SampleData(KindForward)
	for _, lang := range Languages() {
		b.Run(lang, func(b *testing.B) {
			for b.Loop() {
				if _, err := tm.Render(KindAck, lang, ack); err != nil {
					b.Fatal(err)
				}
				if _, err := tm.Render(KindForward, lang, fwd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoadTemplates(b *testing.B) {
	for b.Loop() {
		if _, err := LoadTemplates(""); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzRenderAck(f *testing.F) {
	f.Add("Server down - nobody can log in", "Dana Levi")
	f.Add(hostile, hostile)
	f.Add("עובד חדש\r\nBcc: a@b", "יוסי \u202eכהן")
	f.Add("\xff\xfe invalid", "")
	f.Add(strings.Repeat("x", 5000), "\u2028\u2029\u0085")
	tm := builtins(f)
	base := SampleData(KindAck).(AckData)
	f.Fuzz(func(t *testing.T, subject, name string) {
		d := base
		d.Subject, d.CustomerName = subject, name
		for _, lang := range Languages() {
			r, err := tm.Render(KindAck, lang, d)
			if err != nil {
				t.Fatalf("%s: %v", lang, err)
			}
			checkSafe(t, r)
			if !strings.Contains(r.Subject, "[ACME-0042]") {
				t.Fatalf("%s: subject %q lost the tag", lang, r.Subject)
			}
		}
	})
}
