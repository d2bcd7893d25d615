package notify

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func parseHTML(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

// checkNoActiveContent: no scripts, no external assets (images, style
// sheets, fonts), no event handlers, links only to mailto:.
func checkNoActiveContent(t *testing.T, s string) {
	t.Helper()
	walk(parseHTML(t, s), func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "img", "link", "style", "iframe", "object", "embed", "form", "input", "video", "audio", "base":
			t.Errorf("HTML has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			switch {
			case strings.HasPrefix(a.Key, "on"):
				t.Errorf("HTML has an event handler %s=%q on <%s>", a.Key, a.Val, n.Data)
			case a.Key == "src" || a.Key == "background":
				t.Errorf("HTML loads %s=%q on <%s>", a.Key, a.Val, n.Data)
			case a.Key == "href" && !strings.HasPrefix(a.Val, "mailto:"):
				t.Errorf("HTML links to %q", a.Val)
			case a.Key == "style" && strings.Contains(strings.ToLower(a.Val), "url("):
				t.Errorf("HTML style %q loads a resource", a.Val)
			}
		}
	})
}

func TestHTMLHasNoExternalAssets(t *testing.T) {
	tm := builtins(t)
	for _, kind := range Kinds() {
		for _, lang := range Languages() {
			for _, s := range samples(kind) {
				r, err := tm.Render(kind, lang, s.data)
				if err != nil {
					t.Fatal(err)
				}
				checkNoActiveContent(t, r.HTML)
			}
		}
	}
}

// TestHebrewHTMLIsRightToLeftAtEveryLevel follows LIBNOTES §7: dir="rtl" on
// html and body, a wrapper div carrying dir, lang and direction CSS, every
// table dir="rtl", and dir/align/style on every td, th and p; LTR islands
// around ticket ids and addresses.
func TestHebrewHTMLIsRightToLeftAtEveryLevel(t *testing.T) {
	tm := builtins(t)
	for _, kind := range Kinds() {
		for _, s := range samples(kind) {
			r, err := tm.Render(kind, LangHebrew, s.data)
			if err != nil {
				t.Fatal(err)
			}
			name := kind + "/" + s.name
			doc := parseHTML(t, r.HTML)
			fragment := kind == KindForward
			if !fragment {
				for _, tag := range []string{"html", "body"} {
					n := find(doc, tag)
					if v, _ := attr(n, "dir"); v != "rtl" {
						t.Errorf("%s: <%s dir=%q>, want rtl", name, tag, v)
					}
				}
				if v, _ := attr(find(doc, "html"), "lang"); v != "he" {
					t.Errorf("%s: <html lang=%q>, want he", name, v)
				}
			}
			wrapper := find(find(doc, "body"), "div")
			if wrapper == nil || find(doc, "body").FirstChild == nil {
				t.Fatalf("%s: no wrapper div", name)
			}
			if d, _ := attr(wrapper, "dir"); d != "rtl" {
				t.Errorf("%s: wrapper div dir=%q", name, d)
			}
			if l, _ := attr(wrapper, "lang"); l != "he" {
				t.Errorf("%s: wrapper div lang=%q", name, l)
			}
			if st, _ := attr(wrapper, "style"); !strings.Contains(st, "direction:rtl") || !strings.Contains(st, "text-align:right") {
				t.Errorf("%s: wrapper div style=%q", name, st)
			}
			walk(doc, func(n *html.Node) {
				if n.Type != html.ElementNode {
					return
				}
				switch n.Data {
				case "table":
					if d, _ := attr(n, "dir"); d != "rtl" {
						t.Errorf("%s: <table> without dir=rtl", name)
					}
				case "td", "th", "p":
					d, _ := attr(n, "dir")
					al, _ := attr(n, "align")
					st, _ := attr(n, "style")
					if d != "rtl" || !strings.Contains(st, "direction:rtl") {
						t.Errorf("%s: <%s dir=%q style=%q> is not right to left", name, n.Data, d, st)
					}
					// The one centred footer line is the exception to align=right.
					if !(al == "right" && strings.Contains(st, "text-align:right")) && !(al == "center" && strings.Contains(st, "text-align:center")) {
						t.Errorf("%s: <%s align=%q style=%q>", name, n.Data, al, st)
					}
				}
				if font := styleOf(n); strings.Contains(font, "font-family") && !strings.Contains(font, `Arial, 'Segoe UI', Tahoma`) && !strings.Contains(font, "monospace") {
					t.Errorf("%s: <%s> font %q", name, n.Data, font)
				}
			})
			// Every visible occurrence of an LTR token sits inside <span dir="ltr">.
			for _, tok := range ltrTokens(s.data) {
				walk(doc, func(n *html.Node) {
					if n.Type != html.TextNode || !strings.Contains(n.Data, tok) || inside(n, "title") {
						return
					}
					if !insideLTR(n) {
						t.Errorf("%s: %q in %q is not inside <span dir=\"ltr\">", name, tok, n.Data)
					}
				})
			}
		}
	}
}

func styleOf(n *html.Node) string {
	st, _ := attr(n, "style")
	return st
}

func find(n *html.Node, tag string) *html.Node {
	var found *html.Node
	walk(n, func(c *html.Node) {
		if found == nil && c.Type == html.ElementNode && c.Data == tag {
			found = c
		}
	})
	return found
}

func inside(n *html.Node, tag string) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && p.Data == tag {
			return true
		}
	}
	return false
}

func insideLTR(n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if d, ok := attr(p, "dir"); ok {
			return d == "ltr"
		}
	}
	return false
}

// ltrTokens are the strings of a sample that must be LTR islands in Hebrew
// HTML: ticket ids and tags, email addresses.
func ltrTokens(data any) []string {
	switch d := data.(type) {
	case AckData:
		return []string{d.TicketID, d.ServiceAddress}
	case ForwardData:
		return []string{d.TicketID, d.Requester.Addr}
	case ResolvedData:
		return []string{d.TicketID, d.ServiceAddress}
	case UnknownSenderData:
		return []string{d.SenderAddress, d.ServiceAddress}
	case CommandErrorData:
		if d.TicketID == "" {
			return nil
		}
		return []string{d.TicketID}
	case SLAData:
		return []string{d.TicketID, d.Requester.Addr}
	}
	return nil
}

func TestEnglishHTMLIsADocument(t *testing.T) {
	tm := builtins(t)
	for _, kind := range Kinds() {
		r, err := tm.Render(kind, LangEnglish, SampleData(kind))
		if err != nil {
			t.Fatal(err)
		}
		if kind == KindForward {
			if strings.Contains(r.HTML, "<html") || strings.Contains(r.HTML, "<body") {
				t.Errorf("forward HTML is not a fragment:\n%s", r.HTML)
			}
			continue
		}
		if !strings.HasPrefix(r.HTML, "<!DOCTYPE html>\n<html lang=\"en\"") {
			t.Errorf("%s: HTML does not start with a doctype and <html lang=en>", kind)
		}
		if !strings.Contains(r.HTML, `<meta charset="utf-8">`) || !strings.Contains(r.HTML, "<title>") {
			t.Errorf("%s: HTML lacks charset or title", kind)
		}
	}
}
