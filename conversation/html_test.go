package conversation

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-it/ticketgw/notify"
)

// visibleText renders HTML as the lines a reader sees, "> " per quote level.
func visibleText(t testing.TB, src string) string {
	t.Helper()
	_, body := parseHTMLBody(src)
	if body == nil {
		t.Fatalf("no body in %q", src)
	}
	var out []string
	w := lineWalker{descend: true, emit: func(l htmlLine) bool {
		s := l.norm()
		switch {
		case l.content:
			s = "[content]"
		case l.rule != nil:
			s = "[hr]"
		}
		out = append(out, strings.TrimRight(strings.Repeat("> ", l.depth)+s, " "))
		return true
	}}
	w.walk(body)
	w.flush()
	return strings.Join(out, "\n")
}

const (
	outlookHead = `<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40"><head><meta http-equiv=Content-Type content="text/html; charset=utf-8"><meta name=Generator content="Microsoft Word 15 (filtered medium)"><style><!--
/* Font Definitions */
@font-face {font-family:"Cambria Math";}
p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0in;font-size:11.0pt;font-family:"Calibri",sans-serif;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--></head><body lang=EN-US link="#0563C1" vlink="#954F72" style='word-wrap:break-word'><div class=WordSection1>`
	outlookHeaderHTML = `<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'><p class=MsoNormal><b>From:</b> Dana Levi via Northwind IT Support &lt;support@northwind-it.example&gt; <br><b>Sent:</b> Monday, November 30, 2026 9:30 AM<br><b>To:</b> helpdesk@northwind-it.example<br><b>Subject:</b> [ACME-0042] New fault, high: Server down - nobody can log in<o:p></o:p></p></div><p class=MsoNormal><o:p>&nbsp;</o:p></p>`
	owaHeaderHTML     = `<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000"><b>From:</b> Dana Levi via Northwind IT Support &lt;support@northwind-it.example&gt;<br><b>Sent:</b> Monday, November 30, 2026 09:30<br><b>To:</b> helpdesk@northwind-it.example &lt;helpdesk@northwind-it.example&gt;<br><b>Subject:</b> [ACME-0042] New fault, high: Server down - nobody can log in</font><div>&nbsp;</div></div>`
	gmailQuoteOpen    = `<br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On Mon, 30 Nov 2026 at 09:30, Dana Levi via Northwind IT Support &lt;<a href="mailto:support@northwind-it.example">support@northwind-it.example</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">`
	gmailQuoteClose   = `</blockquote></div>`
	customerHTML      = `<div dir="ltr">The server is down since this morning, nobody can log in.<div><br></div><div>Dana Levi</div></div>`
)

func TestStripCommandLinesHTML(t *testing.T) {
	tests := []struct {
		name    string
		html    string
		n       int
		removed int
		first   string // first visible line after the removal
	}{
		{
			name: "gmail",
			html: `<div dir="ltr">#resolve<div>#priority high</div><div><br></div><div>Hi Dana,</div><div><br></div><div>we restarted the server.</div></div>` +
				gmailQuoteOpen + customerHTML + gmailQuoteClose,
			n: 2, removed: 2, first: "Hi Dana,",
		},
		{
			name: "outlook",
			html: outlookHead + `<p class=MsoNormal>#resolve<o:p></o:p></p><p class=MsoNormal>#change new firewall installed<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>` +
				`<p class=MsoNormal>Hi Dana,<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>The firewall was replaced.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>` +
				outlookHeaderHTML + `<p class=MsoNormal>The server is down.<o:p></o:p></p></div></body></html>`,
			n: 2, removed: 2, first: "Hi Dana,",
		},
		{
			name: "outlook-hebrew",
			html: outlookHead + `<p class=MsoNormal dir=RTL><span lang=EN-US dir=LTR>#pending</span><span dir=RTL><o:p></o:p></span></p>` +
				`<p class=MsoNormal dir=RTL><span lang=HE>&#8207;שלום דנה, אפשר לשלוח צילום מסך?<o:p></o:p></span></p></div></body></html>`,
			n: 1, removed: 1, first: "שלום דנה, אפשר לשלוח צילום מסך?",
		},
		{
			name:    "apple-mail",
			html:    `<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;"><div>#close</div><div><br></div>Thanks Dana, closing this.<div><br></div><div><div><blockquote type="cite"><div>On 30 Nov 2026, at 09:30, Dana Levi wrote:</div></blockquote></div></div></body></html>`,
			n:       1,
			removed: 1,
			first:   "Thanks Dana, closing this.",
		},
		{
			name: "thunderbird",
			html: "<html>\n  <head>\n    <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">\n  </head>\n  <body>\n    <p>#pending<br>\n      #priority low<br>\n    </p>\n    <p>Waiting for the new disk.</p>\n    <div class=\"moz-cite-prefix\">On 30/11/2026 09:30, Dana wrote:<br>\n    </div>\n    <blockquote type=\"cite\">x</blockquote>\n  </body>\n</html>\n",
			n:    2, removed: 2, first: "Waiting for the new disk.",
		},
		{
			name: "fragment", html: "#resolve<br><br>Hi", n: 1, removed: 1, first: "Hi",
		},
		{
			name: "inline formatting", html: `<div><b>#priority</b> <i>high</i></div><div>Hi</div>`, n: 1, removed: 1, first: "Hi",
		},
		{
			name: "pre", html: "<pre>#pending\n#priority low\n\nWaiting.\n</pre>", n: 2, removed: 2, first: "Waiting.",
		},
		{
			name: "fewer commands than the text part", html: `<div>#resolve</div><div>Hi</div>`, n: 2, removed: 1, first: "Hi",
		},
		{
			name: "no more than n", html: `<div>#resolve</div><div>#priority high</div><div>Hi</div>`, n: 1, removed: 1, first: "#priority high",
		},
		{
			name: "invalid command stops", html: `<div>#resolve now</div><div>Hi</div>`, n: 1, removed: 0, first: "#resolve now",
		},
		{
			name: "image first", html: `<div><img src="cid:logo"></div><div>#resolve</div>`, n: 1, removed: 0, first: "[content]",
		},
		{
			name: "quoted command", html: `<blockquote><div>#resolve</div></blockquote>`, n: 1, removed: 0, first: "> #resolve",
		},
		{
			name: "text first", html: `<div>Hi</div><div>#resolve</div>`, n: 1, removed: 0, first: "Hi",
		},
		{
			name: "n is zero", html: `<div>#resolve</div>`, n: 0, removed: 0, first: "#resolve",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, removed := StripCommandLinesHTML(tc.html, tc.n)
			if removed != tc.removed {
				t.Errorf("removed %d, want %d", removed, tc.removed)
			}
			if removed == 0 && out != tc.html {
				t.Errorf("changed without removing anything:\n%s", out)
			}
			text := visibleText(t, out)
			first := strings.Split(strings.TrimLeft(text, "\n"), "\n")[0]
			if first != tc.first {
				t.Errorf("first line %q, want %q; text:\n%s", first, tc.first, text)
			}
			if removed > 0 {
				golden(t, filepath.Join("testdata", "html-commands", strings.ReplaceAll(tc.name, " ", "-")+".golden"),
					"----- text -----\n"+text+"\n----- html -----\n"+out+"\n")
			}
		})
	}
}

func TestStripQuotedSummaryHTML(t *testing.T) {
	sumEN, htmlEN := forwardSummary(t, notify.LangEnglish, "new")
	_, htmlHE := forwardSummary(t, notify.LangHebrew, "new")
	appleText := func(text string) string {
		var b strings.Builder
		for _, l := range strings.Split(text, "\n") {
			b.WriteString("<div>" + strings.ReplaceAll(strings.ReplaceAll(l, "&", "&amp;"), "<", "&lt;") + "</div>")
		}
		return b.String()
	}
	outlookBody := outlookHead + `<p class=MsoNormal>Hi Dana,<o:p></o:p></p><p class=MsoNormal>we restarted the server.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>`
	tests := []struct {
		name  string
		html  string
		keep  []string
		empty bool
	}{
		{
			name: "gmail",
			html: `<div dir="ltr">Hi Dana,<div><br></div><div>we restarted the server.</div></div>` + gmailQuoteOpen + htmlEN + customerHTML + gmailQuoteClose,
			keep: []string{"Hi Dana,", "wrote:", "> The server is down"},
		},
		{
			name:  "gmail-summary-only",
			html:  `<div dir="ltr">Hi Dana,<div><br></div><div>we restarted the server.</div></div>` + gmailQuoteOpen + htmlEN + gmailQuoteClose,
			keep:  []string{"Hi Dana,", "we restarted the server."},
			empty: true,
		},
		{
			name: "gmail-hebrew",
			html: `<div dir="rtl">שלום דנה,<div><br></div><div>הפעלנו מחדש את השרת.</div></div>` + gmailQuoteOpen + htmlHE + `<div dir="rtl">השרת לא עובד.</div>` + gmailQuoteClose,
			keep: []string{"שלום דנה,", "> השרת לא עובד."},
		},
		{
			name: "outlook",
			html: outlookBody + outlookHeaderHTML + htmlEN + `<p class=MsoNormal>The server is down.<o:p></o:p></p></div></body></html>`,
			keep: []string{"Hi Dana,", "From: Dana Levi", "Sent: Monday", "The server is down."},
		},
		{
			name:  "outlook-summary-only",
			html:  outlookBody + outlookHeaderHTML + htmlEN + `</div></body></html>`,
			keep:  []string{"Hi Dana,", "we restarted the server."},
			empty: true,
		},
		{
			name:  "outlook-web-summary-only",
			html:  `<div dir="ltr">Hi Dana, fixed.</div><div id="appendonsend"></div>` + owaHeaderHTML + htmlEN,
			keep:  []string{"Hi Dana, fixed."},
			empty: true,
		},
		{
			name: "apple-mail-text-summary",
			html: `<html><body><div>Fixed.</div><div><br><blockquote type="cite"><div>On 30 Nov 2026, at 09:30, Dana Levi via Northwind IT Support &lt;support@northwind-it.example&gt; wrote:</div><br class="Apple-interchange-newline">` +
				appleText(sumEN) + `<div><br></div><div>The printer is broken.</div></blockquote></div></body></html>`,
			keep: []string{"Fixed.", "> On 30 Nov 2026", "> The printer is broken."},
		},
		{
			name: "apple-mail-text-summary-only",
			html: `<html><body><div>Fixed.</div><div><br><blockquote type="cite"><div>On 30 Nov 2026, at 09:30, Dana Levi via Northwind IT Support &lt;support@northwind-it.example&gt; wrote:</div><br class="Apple-interchange-newline">` +
				appleText(sumEN) + `</blockquote></div></body></html>`,
			keep:  []string{"Fixed."},
			empty: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := StripQuotedSummaryHTML(tc.html)
			text := visibleText(t, out)
			for _, k := range tc.keep {
				if !strings.Contains(text, k) {
					t.Errorf("lost %q in:\n%s", k, text)
				}
			}
			for _, gone := range []string{"Ticket", "קריאה", "Reply to this message", "Resolution by", "======"} {
				if strings.Contains(text, gone) {
					t.Errorf("summary text %q is still there:\n%s", gone, text)
				}
			}
			if tc.empty {
				for _, gone := range []string{"wrote:", "From:", "Sent:", "[hr]", "> "} {
					if strings.Contains(text, gone) {
						t.Errorf("%q of an empty quote is still there:\n%s", gone, text)
					}
				}
			}
			golden(t, filepath.Join("testdata", "html-quoted", tc.name+".golden"), "----- text -----\n"+text+"\n----- html -----\n"+out+"\n")
		})
	}
}

func TestStripQuotedSummaryHTMLKeeps(t *testing.T) {
	for _, in := range []string{
		"",
		`<div>Hi</div><blockquote><div>Ticket: ACME-0042</div></blockquote>`,
		outlookHead + `<p class=MsoNormal>Hi<o:p></o:p></p></div></body></html>`,
	} {
		if got := StripQuotedSummaryHTML(in); got != in {
			t.Errorf("changed %q to %q", in, got)
		}
	}
}

func FuzzStripCommandLinesHTML(f *testing.F) {
	f.Add(`<div dir="ltr">#resolve<div>#priority high</div><div><br></div><div>Hi</div></div>`, 2)
	f.Add("<pre>#pending\n#priority low\n\nx</pre>", 2)
	f.Add(outlookHead+`<p class=MsoNormal>#resolve<o:p></o:p></p></div></body></html>`, 1)
	f.Add(`<p>#close<br><img src=x></p><table><tr><td>#open</td></tr></table>`, 3)
	f.Fuzz(func(t *testing.T, src string, n int) {
		out, removed := StripCommandLinesHTML(src, n)
		if removed < 0 || removed > max(n, 0) {
			t.Fatalf("removed %d of at most %d", removed, n)
		}
		if removed == 0 && out != src {
			t.Fatalf("changed without removing")
		}
	})
}

func FuzzStripQuotedSummaryHTML(f *testing.F) {
	_, htmlEN := forwardSummary(f, notify.LangEnglish, "new")
	f.Add(gmailQuoteOpen + htmlEN + customerHTML + gmailQuoteClose)
	f.Add(owaHeaderHTML + htmlEN)
	f.Add("<blockquote><blockquote><pre>x\n> y</pre></blockquote>")
	f.Fuzz(func(t *testing.T, src string) {
		_ = StripQuotedSummaryHTML(src)
	})
}
