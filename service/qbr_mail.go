package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/report"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/sla"
	"github.com/northwind-it/ticketgw/store"
)

// The quarterly review by mail (SPEC §8): `gateway report qbr --send` and
// the quarterly schedule (QBRScheduler) both render the review with
// RenderQBR and queue it with EnqueueQBR, so the two send the same mail and
// share its idempotency key.

// QBRKey is the outbox key of the quarterly review of a contract, and the
// scheduler's claim: "qbr:<contract>:<quarter>", e.g. "qbr:acme:2026-Q3".
// The review of a quarter is mailed once (within the outbox retention).
func QBRKey(contract, quarter string) string { return "qbr:" + contract + ":" + quarter }

// maxNoteFindings is how many findings the covering note repeats.
const maxNoteFindings = 5

// QBRFiles is a rendered quarterly review.
type QBRFiles struct {
	Report *report.QBR
	Lang   string // the language of the files and of the note: he | en
	HTML   []byte // the self-contained report page
	CSV    []byte // every figure
}

// BaseName is the files' name without extension: "qbr-acme-2026-Q3".
func (f QBRFiles) BaseName() string {
	return "qbr-" + f.Report.Contract.ID + "-" + f.Report.Quarter
}

// RenderQBR renders a built review as HTML and CSV in lang ("he" or "en";
// "" takes the contract's language, where "auto" means English).
func RenderQBR(r *report.QBR, lang string) (QBRFiles, error) {
	if lang == "" {
		lang = r.Contract.Language
	}
	if lang != notify.LangHebrew {
		lang = notify.LangEnglish
	}
	f := QBRFiles{Report: r, Lang: lang}
	var page, csv bytes.Buffer
	if err := report.RenderHTML(&page, r, lang); err != nil {
		return f, err
	}
	if err := report.RenderCSV(&csv, r); err != nil {
		return f, err
	}
	f.HTML, f.CSV = page.Bytes(), csv.Bytes()
	return f, nil
}

// QBRRecipients are who receives a contract's review: its customer_contacts
// (To) and its representative, the account manager (Cc, and To when the
// contract has no customer contacts). ok is false when it has neither.
func QBRRecipients(c *rules.Contract) (to, cc []domain.Address, ok bool) {
	for _, a := range c.CustomerContacts {
		to = append(to, domain.Address{Addr: a})
	}
	if rep := c.Representative; rep != "" {
		if len(to) == 0 {
			to = append(to, domain.Address{Addr: rep})
		} else if !containsAddr(to, rep) {
			cc = append(cc, domain.Address{Addr: rep})
		}
	}
	return to, cc, len(to) > 0
}

func containsAddr(as []domain.Address, addr string) bool {
	for _, a := range as {
		if strings.EqualFold(a.Addr, addr) {
			return true
		}
	}
	return false
}

// ErrNoRecipients is returned when a contract has no representative and no
// customer_contacts to mail its review to.
var ErrNoRecipients = errors.New("the contract has no representative or customer_contacts")

// ComposeQBR composes the mail that carries a contract's review: a short
// note in the files' language saying what is attached (with the quarter in
// brief and its first findings), the report page and the CSV attached.
// Replies go to the representative.
func ComposeQBR(cfg *rules.Config, c *rules.Contract, f QBRFiles, now time.Time) (store.OutboxEntry, error) {
	to, cc, ok := QBRRecipients(c)
	if !ok {
		return store.OutboxEntry{}, fmt.Errorf("compose review of %s: %w", c.ID, ErrNoRecipients)
	}
	subject, text, html, err := qbrNote(cfg, c, f)
	if err != nil {
		return store.OutboxEntry{}, fmt.Errorf("compose review of %s: %w", c.ID, err)
	}
	id, err := notify.NewMessageID("qbr", f.BaseName(), domainOf(cfg.Service.Address))
	if err != nil {
		return store.OutboxEntry{}, err
	}
	raw, env, err := notify.ComposeReport(notify.ReportMail{
		From: domain.Address{Name: cfg.Service.Name, Addr: cfg.Service.Address},
		To:   to, Cc: cc, ReplyTo: c.Representative,
		Subject: subject, Text: text, HTML: html,
		Attachments: []notify.Attachment{
			{Filename: f.BaseName() + ".html", ContentType: "text/html; charset=utf-8", Data: f.HTML},
			{Filename: f.BaseName() + ".csv", ContentType: "text/csv; charset=utf-8; header=present", Data: f.CSV},
		},
		MessageID: id, LoopMarker: cfg.Service.Address, Date: now, Lang: f.Lang,
	})
	if err != nil {
		return store.OutboxEntry{}, fmt.Errorf("compose review of %s: %w", c.ID, err)
	}
	return store.OutboxEntry{Key: QBRKey(c.ID, f.Report.Quarter), Kind: "qbr", From: env.From, To: env.To, Raw: raw}, nil
}

// QBRQueue is what EnqueueQBR needs of the store.
type QBRQueue interface {
	Enqueue(ctx context.Context, e store.OutboxEntry, now time.Time) (added bool, err error)
}

// EnqueueQBR composes a contract's review mail and queues it in the outbox
// under QBRKey; the running gateway's outbox sender delivers it. added is
// false when the review of that contract and quarter was already queued or
// sent (nothing is queued then).
func EnqueueQBR(ctx context.Context, q QBRQueue, cfg *rules.Config, c *rules.Contract, f QBRFiles, now time.Time) (store.OutboxEntry, bool, error) {
	e, err := ComposeQBR(cfg, c, f, now)
	if err != nil {
		return e, false, err
	}
	added, err := q.Enqueue(ctx, e, now)
	if err != nil {
		return e, false, fmt.Errorf("queue review of %s: %w", c.ID, err)
	}
	return e, added, nil
}

// qbrWords are the note's phrases in one language.
type qbrWords struct {
	subject, hello, intro, htmlFile, csvFile, brief, ticket1, ticketN string
	cats                                                              [3]string
	against, contact, noContact, regards                              string
	quarter                                                           func(q, year int) string
	span                                                              func(from, to sla.Date) string
}

var hebrewMonthNames = [12]string{"ינואר", "פברואר", "מרץ", "אפריל", "מאי", "יוני", "יולי", "אוגוסט", "ספטמבר", "אוקטובר", "נובמבר", "דצמבר"}

var qbrEnglish = qbrWords{
	subject:  "Quarterly service review %s: %s",
	hello:    "Hello,",
	intro:    "Attached is the quarterly service review of %s for %s (%s), from %s:",
	htmlFile: "the report with its charts, to open in a web browser (it prints, or saves as PDF, on A4).",
	csvFile:  "every figure of the report, for a spreadsheet.",
	brief:    "The quarter in brief: %s (%s)",
	ticket1:  "1 ticket", ticketN: "%d tickets",
	cats:      [3]string{"faults", "requests", "IMACs"},
	against:   ", %s against %s",
	contact:   "Your account manager, %s, will be glad to go through it with you: just reply to this message.",
	noContact: "For questions about it, please write to %s.",
	regards:   "Kind regards,",
	quarter:   func(q, year int) string { return fmt.Sprintf("Q%d %d", q, year) },
	span: func(from, to sla.Date) string {
		return fmt.Sprintf("%d %s to %d %s %d", from.Day, from.Month, to.Day, to.Month, to.Year)
	},
}

var qbrHebrew = qbrWords{
	subject:  "סקירת שירות רבעונית, %s: %s",
	hello:    "שלום,",
	intro:    "מצורפת הסקירה הרבעונית של השירות ל־%s עבור %s (%s), מאת %s:",
	htmlFile: "הדוח עם התרשימים, לפתיחה בדפדפן (אפשר להדפיס אותו או לשמור אותו כ־PDF בגודל A4).",
	csvFile:  "כל הנתונים של הדוח, לגיליון אלקטרוני.",
	brief:    "הרבעון בקצרה: %s (%s)",
	ticket1:  "פנייה אחת", ticketN: "%d פניות",
	cats:      [3]string{"תקלות", "בקשות", "קריאות IMAC\u200F"}, // the mark keeps ": n" right to left
	against:   ", %s לעומת %s",
	contact:   "מנהל הלקוח שלכם, %s, ישמח לעבור על הסקירה יחד איתכם: אפשר פשוט להשיב להודעה זו.",
	noContact: "לשאלות על הסקירה אפשר לכתוב אל %s.",
	regards:   "בברכה,",
	quarter:   func(q, year int) string { return fmt.Sprintf("רבעון %d של %d", q, year) },
	span: func(from, to sla.Date) string {
		return fmt.Sprintf("%d ב%s עד %d ב%s %d", from.Day, hebrewMonthNames[from.Month-1], to.Day, hebrewMonthNames[to.Month-1], to.Year)
	},
}

// qbrNoteView is what the note's HTML template shows.
type qbrNoteView struct {
	Lang, Subject, Hello, Intro, Brief, Contact, Regards, Service string
	RTL                                                           bool
	Files                                                         []qbrNoteFile
	Findings                                                      []string
}

type qbrNoteFile struct{ Name, What string }

var qbrNoteTemplate = template.Must(template.New("qbr-note").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"{{if .RTL}} dir="rtl"{{end}}><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body{{if .RTL}} dir="rtl"{{end}} style="font-family:Arial,'Segoe UI',Tahoma,sans-serif;font-size:14px">
{{if .RTL}}<div dir="rtl" lang="he" style="direction:rtl;text-align:right">{{else}}<div>{{end}}
<p{{if .RTL}} dir="rtl" align="right"{{end}}>{{.Hello}}</p>
<p{{if .RTL}} dir="rtl" align="right"{{end}}>{{.Intro}}</p>
<ul>
{{range .Files}}<li><b><span dir="ltr">{{.Name}}</span></b>{{if $.RTL}}&lrm;{{end}}: {{.What}}</li>
{{end}}</ul>
<p{{if .RTL}} dir="rtl" align="right"{{end}}>{{.Brief}}</p>
{{if .Findings}}<ul>
{{range .Findings}}<li>{{.}}</li>
{{end}}</ul>
{{end}}<p{{if .RTL}} dir="rtl" align="right"{{end}}>{{.Contact}}</p>
<p{{if .RTL}} dir="rtl" align="right"{{end}}>{{.Regards}}<br>{{.Service}}</p>
</div>
</body></html>
`))

// qbrNote writes the covering note of a review: subject, text and HTML.
func qbrNote(cfg *rules.Config, c *rules.Contract, f QBRFiles) (subject, text, html string, err error) {
	r := f.Report
	w, rtl := qbrEnglish, f.Lang == notify.LangHebrew
	island := func(s string) string { return s }
	if rtl {
		w = qbrHebrew
		island = func(s string) string { return "\u200E" + s + "\u200E" }
	}
	q, err := report.ParseQuarter(r.Quarter)
	if err != nil {
		return "", "", "", err
	}
	first, err1 := sla.ParseDate(r.Start)
	end, err2 := sla.ParseDate(r.End)
	if err := errors.Join(err1, err2); err != nil {
		return "", "", "", fmt.Errorf("report period: %w", err)
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	quarter := w.quarter(q.Q, q.Year)
	subject = fmt.Sprintf(w.subject, quarter, name)
	intro := fmt.Sprintf(w.intro, island(name), quarter, w.span(first, end.AddDays(-1)), island(cfg.Service.Name))

	tickets := w.ticket1
	if r.Total.Count != 1 {
		tickets = fmt.Sprintf(w.ticketN, r.Total.Count)
	}
	var cats []string
	for i, cnt := range r.ByCategory {
		if i < len(w.cats) {
			cats = append(cats, w.cats[i]+": "+strconv.Itoa(cnt.Count))
		}
	}
	brief := fmt.Sprintf(w.brief, tickets, strings.Join(cats, ", "))
	if p := r.Total.Pct; p != nil {
		prev, err := report.ParseQuarter(r.Previous)
		if err == nil {
			brief += fmt.Sprintf(w.against, island(signedPct(*p)), w.quarter(prev.Q, prev.Year))
		}
	}
	brief += "."
	var findings []string
	for i, fd := range r.Findings {
		if i == maxNoteFindings {
			break
		}
		findings = append(findings, fd.Message(f.Lang, r))
	}
	contact := fmt.Sprintf(w.noContact, island(cfg.Service.Address))
	if c.Representative != "" {
		contact = fmt.Sprintf(w.contact, island(c.Representative))
	}
	files := []qbrNoteFile{{f.BaseName() + ".html", w.htmlFile}, {f.BaseName() + ".csv", w.csvFile}}

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n%s\n\n", w.hello, intro)
	for _, fl := range files {
		fmt.Fprintf(&b, "  • %s: %s\n", island(fl.Name), fl.What)
	}
	fmt.Fprintf(&b, "\n%s\n", brief)
	for _, fd := range findings {
		fmt.Fprintf(&b, "  • %s\n", fd)
	}
	fmt.Fprintf(&b, "\n%s\n\n%s\n%s\n", contact, w.regards, cfg.Service.Name)
	text = b.String()
	if rtl {
		text, subject = rtlLines(text), rtlLines(subject)
	}

	var hb strings.Builder
	err = qbrNoteTemplate.Execute(&hb, qbrNoteView{Lang: f.Lang, RTL: rtl, Subject: subject, Hello: w.hello, Intro: intro,
		Files: files, Brief: brief, Findings: findings, Contact: contact, Regards: w.regards, Service: cfg.Service.Name})
	if err != nil {
		return "", "", "", fmt.Errorf("render note: %w", err)
	}
	return subject, text, hb.String(), nil
}

// signedPct writes a change in percent: "+18.2 %", "-5 %".
func signedPct(v float64) string {
	s := strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " %"
	if v > 0 {
		s = "+" + s
	}
	return s
}

// rtlLines starts every non-empty line that does not begin with a Hebrew
// letter with U+200F RIGHT-TO-LEFT MARK, so that mail clients, which guess
// a plain-text line's direction from its first strong character, show it
// right to left (LIBNOTES §7).
func rtlLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" {
			continue
		}
		first := []rune(strings.TrimLeft(l, " "))
		if len(first) == 0 || !unicode.Is(unicode.Hebrew, first[0]) {
			lines[i] = "\u200F" + l
		}
	}
	return strings.Join(lines, "\n")
}
