package conversation

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/notify"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// forwardSummary renders the built-in forward summary text, so that these
// tests follow the templates: a change to their shape that StripQuotedSummary
// no longer recognises fails here.
func forwardSummary(t testing.TB, lang, variant string) (text, html string) {
	t.Helper()
	tpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := notify.SampleData(notify.KindForward).(notify.ForwardData)
	if !ok {
		t.Fatalf("forward sample data is %T", notify.SampleData(notify.KindForward))
	}
	switch variant {
	case "new":
	case "follow-up":
		d.FollowUp = true
	case "reopened":
		d.FollowUp, d.Reopened = true, true
	case "unauthenticated":
		d.Unauthenticated = true
		d.From = domain.Address{Name: "Avi (Northwind)", Addr: "avi@northwind-it.example"}
	default:
		t.Fatalf("unknown variant %q", variant)
	}
	r, err := tpl.Render(notify.KindForward, lang, d)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(r.Text, "\n"), r.HTML
}

// quote quotes text as Gmail does: "> " before each line, ">" alone on
// blank lines (Apple Mail writes "> "; pass blank to choose).
func quote(text, blank string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = blank
		} else {
			lines[i] = "> " + l
		}
	}
	return strings.Join(lines, "\n")
}

// hardWrap wraps lines longer than width at the last space before it (or
// anywhere, for long runs without space), repeating the line's quote
// markers, as some clients do when they quote.
func hardWrap(text string, width int) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		marker := ""
		for strings.HasPrefix(l[len(marker):], "> ") {
			marker += "> "
		}
		for len(l) > width {
			cut := strings.LastIndexByte(l[:width], ' ')
			if cut <= len(marker) {
				cut = width
			}
			out = append(out, l[:cut])
			l = marker + strings.TrimLeft(l[cut:], " ")
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// renderedHTML is the HTML summary (inside a blockquote or not) as a mail
// client renders it to text: here, ingest's own HTML-to-text renderer.
func renderedHTML(t testing.TB, html string, quoted bool, customer string) string {
	t.Helper()
	body := html + "<div>" + strings.ReplaceAll(customer, "\n", "<br>") + "</div>"
	if quoted {
		body = "<blockquote>" + body + "</blockquote>"
	}
	raw := "From: a@b.example\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>" + body + "</body></html>"
	m := ingest.Parse(strings.NewReader(raw), ingest.Limits{})
	if !m.TextFromHTML {
		t.Fatal("ingest did not render the HTML")
	}
	return m.Text
}

const (
	staffEN    = "Hi Dana,\n\nwe restarted the server, please try again.\n\nAvi"
	customerEN = "The server is down since this morning, nobody can log in.\n\nDana Levi\nACME Ltd"
	staffHE    = "שלום דנה,\n\nהפעלנו מחדש את השרת, אפשר לנסות שוב.\n\nאבי"
	customerHE = "השרת לא עובד מהבוקר, אף אחד לא מצליח להתחבר.\n\nדנה לוי"

	gmailAttrEN  = "On Mon, 30 Nov 2026 at 09:30, Dana Levi via Northwind IT Support <support@northwind-it.example> wrote:"
	gmailAttrHE  = "\u202bבתאריך יום ב׳, 30 בנוב׳ 2026 ב-9:30 מאת \u202aDana Levi via Northwind IT Support\u202c\u200f <\u202asupport@northwind-it.example\u202c\u200f>:\u202c"
	appleAttrEN  = "On 30 Nov 2026, at 09:30, Dana Levi via Northwind IT Support <support@northwind-it.example> wrote:"
	tbirdAttrEN  = "On 30/11/2026 09:30, Dana Levi via Northwind IT Support wrote:"
	outlookHdrEN = "-----Original Message-----\nFrom: Dana Levi via Northwind IT Support <support@northwind-it.example> \nSent: Monday, November 30, 2026 9:30 AM\nTo: helpdesk@northwind-it.example\nSubject: [ACME-0042] New fault, high: Server down - nobody can log in"
	outlookNewEN = "________________________________\nFrom: Dana Levi via Northwind IT Support <support@northwind-it.example>\nSent: Monday, November 30, 2026 09:30\nTo: helpdesk@northwind-it.example <helpdesk@northwind-it.example>\nCc: IT Manager <it-manager@acme.co.il>; ops@acme.co.il\nSubject: [ACME-0042] New fault, high: Server down - nobody can log in"
	outlookHdrHE = "________________________________\nמאת: Dana Levi via Northwind IT Support <support@northwind-it.example>\nנשלח: יום שני 30 נובמבר 2026 09:30\nאל: helpdesk@northwind-it.example\nנושא: [ACME-0042] תקלה חדשה, עדיפות גבוהה: Server down"
)

func TestStripQuotedSummary(t *testing.T) {
	sumEN, htmlEN := forwardSummary(t, notify.LangEnglish, "new")
	sumHE, htmlHE := forwardSummary(t, notify.LangHebrew, "new")
	followEN, _ := forwardSummary(t, notify.LangEnglish, "follow-up")
	reopenHE, _ := forwardSummary(t, notify.LangHebrew, "reopened")
	unauthEN, _ := forwardSummary(t, notify.LangEnglish, "unauthenticated")

	tests := []struct {
		name  string
		in    string
		keep  []string // must survive
		empty bool     // the quote held only the summary: attribution goes too
	}{
		{name: "gmail-en", in: staffEN + "\n\n" + gmailAttrEN + "\n\n" + quote(sumEN+"\n\n"+customerEN, ">") + "\n", keep: []string{staffEN, gmailAttrEN, "> The server is down", "> Dana Levi"}},
		{name: "gmail-en-summary-only", in: staffEN + "\n\n" + gmailAttrEN + "\n\n" + quote(sumEN, ">") + "\n", keep: []string{staffEN}, empty: true},
		{name: "gmail-he", in: staffHE + "\n\n" + gmailAttrHE + "\n\n" + quote(sumHE+"\n\n"+customerHE, ">") + "\n", keep: []string{staffHE, gmailAttrHE, "> השרת לא עובד"}},
		{name: "gmail-he-summary-only", in: staffHE + "\n\n" + gmailAttrHE + "\n\n" + quote(sumHE, ">") + "\n", keep: []string{staffHE}, empty: true},
		{name: "gmail-en-follow-up", in: staffEN + "\n\n" + gmailAttrEN + "\n\n" + quote(followEN+"\n\n"+customerEN, ">") + "\n", keep: []string{staffEN, "> The server is down"}},
		{name: "gmail-he-reopened", in: staffHE + "\n\n" + gmailAttrHE + "\n\n" + quote(reopenHE+"\n\n"+customerHE, ">") + "\n", keep: []string{staffHE, "> השרת לא עובד"}},
		{name: "gmail-en-unauthenticated", in: staffEN + "\n\n" + gmailAttrEN + "\n\n" + quote(unauthEN+"\n\n"+customerEN, ">") + "\n", keep: []string{staffEN, "> The server is down"}},
		{name: "apple-mail-en", in: staffEN + "\n\n" + quote(appleAttrEN+"\n\n"+sumEN+"\n\n"+customerEN, "> ") + "\n", keep: []string{staffEN, "> " + appleAttrEN, "> The server is down"}},
		{name: "apple-mail-en-summary-only", in: staffEN + "\n\n" + quote(appleAttrEN+"\n\n"+sumEN, "> ") + "\n\n", keep: []string{staffEN}, empty: true},
		{name: "thunderbird-en-bottom-post", in: tbirdAttrEN + "\n" + quote(sumEN+"\n\n"+customerEN, ">") + "\n\n" + staffEN + "\n\n-- \nAvi Cohen\nNorthwind IT\n", keep: []string{tbirdAttrEN, "> The server is down", staffEN, "-- \nAvi Cohen"}},
		{name: "thunderbird-en-bottom-post-summary-only", in: tbirdAttrEN + "\n" + quote(sumEN, ">") + "\n\n" + staffEN + "\n", keep: []string{staffEN}, empty: true},
		{name: "thunderbird-he-wrapped", in: hardWrap(staffHE+"\n\n"+tbirdAttrEN+"\n"+quote(sumHE+"\n\n"+customerHE, ">"), 72) + "\n", keep: []string{staffHE, "> השרת לא עובד"}},
		{name: "outlook-en", in: staffEN + "\n\n" + outlookHdrEN + "\n\n" + sumEN + "\n\n" + customerEN + "\n", keep: []string{staffEN, "-----Original Message-----", "Sent: Monday", "\nThe server is down"}},
		{name: "outlook-en-summary-only", in: staffEN + "\n\n" + outlookHdrEN + "\n\n" + sumEN + "\n", keep: []string{staffEN}, empty: true},
		{name: "outlook-he-crlf", in: strings.ReplaceAll(staffHE+"\n\n"+outlookHdrHE+"\n\n"+sumHE+"\n\n"+customerHE+"\n", "\n", "\r\n"), keep: []string{"שלום דנה,\r\n", "מאת: Dana Levi", "\r\nהשרת לא עובד"}},
		{name: "outlook-he-summary-only", in: staffHE + "\n\n" + outlookHdrHE + "\n\n" + sumHE + "\n", keep: []string{staffHE}, empty: true},
		{name: "outlook-en-html-rendered", in: staffEN + "\n\n" + outlookNewEN + "\n\n" + renderedHTML(t, htmlEN, false, customerEN), keep: []string{staffEN, "Sent: Monday", "The server is down"}},
		{name: "gmail-en-html-rendered", in: staffEN + "\n\n" + gmailAttrEN + "\n" + renderedHTML(t, htmlEN, true, customerEN), keep: []string{staffEN, gmailAttrEN, "> The server is down"}},
		{name: "gmail-he-html-rendered-summary-only", in: staffHE + "\n\n" + gmailAttrHE + "\n" + renderedHTML(t, htmlHE, true, ""), keep: []string{staffHE}, empty: true},
		{name: "nested-depth-2-wrapped", in: hardWrap(staffEN+"\n\n"+gmailAttrEN+"\n"+quote("Thanks!\n\n"+tbirdAttrEN+"\n"+quote(sumEN+"\n\n"+customerEN, ">"), ">"), 72) + "\n", keep: []string{staffEN, "> Thanks!", "> > The server is down"}},
		{name: "two-summaries", in: staffEN + "\n\n" + gmailAttrEN + "\n" + quote(sumEN+"\n\n"+customerEN+"\n\n"+tbirdAttrEN+"\n"+quote(followEN+"\n\nStill down.", ">"), ">") + "\n", keep: []string{staffEN, "> The server is down", "> > Still down."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := StripQuotedSummary(tc.in)
			for _, k := range tc.keep {
				if !strings.Contains(got, k) {
					t.Errorf("lost %q", k)
				}
			}
			for _, gone := range []string{"Ticket:", "קריאה:", "Reply to this message", "כדי לענות ללקוח", "=====", "-------------------", "Resolution by", "Rules"} {
				if strings.Contains(got, gone) {
					t.Errorf("summary line %q is still there", gone)
				}
			}
			if tc.empty {
				for _, gone := range []string{"wrote:", "מאת", "Sent:", "נשלח:", "Original Message", "____"} {
					if strings.Contains(got, gone) {
						t.Errorf("attribution %q of an empty quote is still there", gone)
					}
				}
				if strings.HasSuffix(got, "\n\n") || strings.TrimRight(got, "\r\n") != strings.TrimRight(got, " \t\r\n") {
					t.Errorf("trailing blank lines left: %q", got[max(0, len(got)-20):])
				}
			}
			if StripQuotedSummary(got) != got {
				t.Errorf("not idempotent")
			}
			golden(t, filepath.Join("testdata", "quoted", tc.name+".golden"), "----- input -----\n"+tc.in+"\n----- output -----\n"+got)
		})
	}
}

// TestStripQuotedSummaryKeeps lists texts that must come back unchanged:
// nothing in them is exactly our summary.
func TestStripQuotedSummaryKeeps(t *testing.T) {
	sumEN, _ := forwardSummary(t, notify.LangEnglish, "new")
	lines := strings.Split(sumEN, "\n")
	without := func(pred func(string) bool) string {
		var out []string
		for _, l := range lines {
			if !pred(l) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	tests := map[string]string{
		"empty":       "",
		"plain":       staffEN,
		"no newline":  "ok",
		"staff rules": "Results:\n----------------------------------------\nTicket: ACME-0042 done\n========================================\n",
		"edited quote": gmailAttrEN + "\n" + quote(without(func(l string) bool {
			return strings.HasPrefix(l, "=====") || strings.HasPrefix(l, "Reply to")
		})+"\n\n"+customerEN, ">"),
		"mixed depths":                  gmailAttrEN + "\n" + quote(lines[0]+"\n"+lines[1], ">") + "\n" + strings.Join(lines[2:5], "\n") + "\n" + quote(strings.Join(lines[5:], "\n"), ">"),
		"ticket line":                   "> Ticket: ACME-0042 (open)\n> Subject: printer\n",
		"headline only":                 "> New ticket ACME-0042 for ACME Ltd.\n> The printer is broken.\n",
		"rendered without instructions": "> New ticket ACME-0042 for ACME Ltd.\n>\n> Ticket ACME-0042 (open)\n> Subject printer\n>\n> The printer is broken.\n",
		"customer wrote a rule":         "> Hello\n> ------------------------------\n> Ticket: ACME-0042\n> more\n> ------------------------------\n> bye\n",
	}
	for name, in := range tests {
		if got := StripQuotedSummary(in); got != in {
			t.Errorf("%s: changed:\n%s\n--- to ---\n%s", name, in, got)
		}
	}
}

// golden compares got with the golden file at path, or rewrites it with
// -update.
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
		t.Errorf("%s differs (run go test -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func FuzzStripQuotedSummary(f *testing.F) {
	sumEN, htmlEN := forwardSummary(f, notify.LangEnglish, "new")
	sumHE, _ := forwardSummary(f, notify.LangHebrew, "new")
	f.Add(staffEN + "\n\n" + gmailAttrEN + "\n" + quote(sumEN+"\n\n"+customerEN, ">"))
	f.Add(staffHE + "\n\n" + outlookHdrHE + "\n\n" + sumHE)
	f.Add(gmailAttrEN + "\n" + renderedHTML(f, htmlEN, true, ""))
	f.Add("> > >\n>>>> x\r\n\u200f> y")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		got := StripQuotedSummary(text)
		if len(got) > len(text)+2 {
			t.Fatalf("output grew: %q -> %q", text, got)
		}
		// Only whole lines are removed: the output's lines are, in order,
		// lines of the input (the last one possibly without trailing space).
		if got == "" {
			return
		}
		in := strings.Split(text, "\n")
		j := 0
		for _, l := range strings.Split(got, "\n") {
			for j < len(in) && in[j] != l && strings.TrimRightFunc(in[j], unicode.IsSpace) != l {
				j++
			}
			if j == len(in) {
				t.Fatalf("output line %q is not an input line of %q", l, text)
			}
			j++
		}
	})
}
