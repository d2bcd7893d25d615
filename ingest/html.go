package ingest

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText renders an HTML body as readable plain text of at most max
// bytes: block elements and <br> become line breaks, paragraphs and headings
// are separated by a blank line, list items get "- " or "1. ", blockquotes
// get "> ", links read "text (url)" when the url differs from the text,
// script, style and head are skipped, entities are decoded and whitespace
// outside <pre> is collapsed.
func htmlToText(src string, max int) string {
	z := html.NewTokenizer(strings.NewReader(src))
	z.SetMaxBuf(0)
	r := &htmlRenderer{max: max}
	for !r.full() {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return r.finish()
		case html.TextToken:
			text := string(z.Text())
			if r.skip > 0 && r.skipTag == "head" && r.headChild == "" && strings.TrimSpace(text) != "" {
				// Text ends a <head> that is never closed, as in a browser.
				r.skip, r.skipTag = 0, ""
			}
			if r.skip == 0 {
				r.text(text)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			var href string
			if hasAttr {
				href = htmlAttr(z, "href")
			}
			r.start(atom.Lookup(name), string(name), href, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			name, _ := z.TagName()
			r.end(atom.Lookup(name), string(name))
		}
	}
	return r.finish()
}

// htmlAttr returns the value of the named attribute of the current tag.
func htmlAttr(z *html.Tokenizer, want string) string {
	for {
		key, val, more := z.TagAttr()
		if string(key) == want {
			return strings.TrimSpace(string(val))
		}
		if !more {
			return ""
		}
	}
}

// htmlRenderer accumulates the text of one document.
type htmlRenderer struct {
	out strings.Builder
	max int

	skip      int    // inside script/style/head/...: depth of such elements
	skipTag   string // the element being skipped
	headChild string // inside <head>: the title/style/... element being read
	pre       int    // inside <pre>
	quote     int    // blockquote depth
	lists     []htmlList
	links     []htmlLink
	newlines  int    // line breaks owed before the next text
	nlQuote   int    // shallowest quote depth while they were owed
	space     bool   // a space is owed before the next text
	prefix    string // list marker owed at the start of the next text
	cell      bool   // a table cell was written on this row
}

type htmlList struct {
	ordered bool
	n       int
}

type htmlLink struct {
	href  string
	start int // out.Len() when the link opened
}

func (r *htmlRenderer) full() bool { return r.out.Len() >= r.max }

// htmlSkipped are elements whose content is not text for a reader.
func htmlSkipped(a atom.Atom, name string) bool {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript,
		atom.Svg, atom.Object, atom.Iframe, atom.Select, atom.Math:
		return true
	}
	return name == "xml" || name == "o:smarttagtype"
}

// htmlHeadContent reports elements that belong in <head>.
func htmlHeadContent(a atom.Atom, name string) bool {
	switch a {
	case atom.Meta, atom.Link, atom.Title, atom.Style, atom.Script, atom.Base, atom.Noscript,
		atom.Template, atom.Head:
		return true
	}
	return name == "xml" || strings.Contains(name, ":")
}

func (r *htmlRenderer) start(a atom.Atom, name, href string, selfClosing bool) {
	if r.skip > 0 && r.skipTag == "head" {
		switch {
		case r.headChild != "":
		case htmlHeadContent(a, name):
			if !selfClosing && a != atom.Meta && a != atom.Link && a != atom.Base && a != atom.Head {
				r.headChild = name
			}
		default:
			// Body content: a <head> that is never closed ends here,
			// as in a browser.
			r.skip, r.skipTag = 0, ""
		}
	}
	if r.skip > 0 {
		if name == r.skipTag && !selfClosing {
			r.skip++
		}
		return
	}
	if htmlSkipped(a, name) {
		if !selfClosing {
			r.skip = 1
			r.skipTag = name
		}
		return
	}
	switch a {
	case atom.Br:
		r.noteQuote()
		r.newlines = min(r.newlines+1, 2)
		r.space = false
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Table:
		r.block(2)
	case atom.Blockquote:
		r.block(2)
		r.quote++
	case atom.Pre:
		r.block(1)
		r.pre++
	case atom.Ul, atom.Ol:
		r.block(1)
		r.lists = append(r.lists, htmlList{ordered: a == atom.Ol})
	case atom.Li:
		r.block(1)
		marker := "- "
		depth := len(r.lists)
		if depth > 0 {
			l := &r.lists[depth-1]
			l.n++
			if l.ordered {
				marker = strconv.Itoa(l.n) + ". "
			}
		} else {
			depth = 1
		}
		r.prefix = strings.Repeat("  ", depth-1) + marker
	case atom.Tr:
		r.block(1)
		r.cell = false
	case atom.Td, atom.Th:
		if r.cell {
			r.space = true
		}
		r.cell = true
	case atom.Hr:
		r.block(1)
		r.emit("---")
		r.block(1)
	case atom.A:
		if !selfClosing {
			r.links = append(r.links, htmlLink{href: href, start: r.out.Len()})
		}
	case atom.Div, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Nav, atom.Aside,
		atom.Main, atom.Address, atom.Center, atom.Dl, atom.Dt, atom.Dd, atom.Form,
		atom.Fieldset, atom.Figure, atom.Figcaption, atom.Caption, atom.Tbody, atom.Thead,
		atom.Tfoot, atom.Details, atom.Summary:
		r.block(1)
	}
}

func (r *htmlRenderer) end(a atom.Atom, name string) {
	if r.skip > 0 {
		switch {
		case r.headChild != "":
			if name == r.headChild {
				r.headChild = ""
			}
		case name == r.skipTag:
			r.skip--
		}
		return
	}
	switch a {
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Table:
		r.block(2)
	case atom.Blockquote:
		r.block(2)
		if r.quote > 0 {
			r.quote--
		}
	case atom.Pre:
		r.block(1)
		if r.pre > 0 {
			r.pre--
		}
	case atom.Ul, atom.Ol:
		r.block(1)
		if len(r.lists) > 0 {
			r.lists = r.lists[:len(r.lists)-1]
		}
	case atom.Li, atom.Tr, atom.Div, atom.Section, atom.Article, atom.Header, atom.Footer,
		atom.Nav, atom.Aside, atom.Main, atom.Address, atom.Center, atom.Dl, atom.Dt, atom.Dd,
		atom.Form, atom.Fieldset, atom.Figure, atom.Figcaption, atom.Caption, atom.Details,
		atom.Summary:
		r.block(1)
	case atom.A:
		if n := len(r.links); n > 0 {
			l := r.links[n-1]
			r.links = r.links[:n-1]
			r.linkEnd(l)
		}
	}
}

// linkEnd appends " (url)" after a link whose text is not its url.
func (r *htmlRenderer) linkEnd(l htmlLink) {
	href := l.href
	low := strings.ToLower(href)
	if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(low, "javascript:") ||
		strings.HasPrefix(low, "cid:") || l.start > r.out.Len() {
		return
	}
	text := strings.TrimSpace(r.out.String()[l.start:])
	if text == "" {
		return
	}
	if len(text) > 2*len(href)+16 {
		// Much longer than the url: it cannot be the url itself.
		r.space = true
		r.emit("(" + href + ")")
		return
	}
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		s = strings.TrimPrefix(s, "mailto:")
		s = strings.TrimPrefix(s, "https://")
		s = strings.TrimPrefix(s, "http://")
		return strings.TrimSuffix(s, "/")
	}
	if norm(text) == norm(href) {
		return
	}
	if strings.HasPrefix(low, "mailto:") {
		href = href[len("mailto:"):]
		if i := strings.IndexByte(href, '?'); i >= 0 {
			href = href[:i]
		}
		if norm(href) == norm(text) {
			return
		}
	}
	r.space = true
	r.emit("(" + href + ")")
}

// block asks for n line breaks (1: new line, 2: blank line) before the next
// text.
func (r *htmlRenderer) block(n int) {
	r.noteQuote()
	if n > r.newlines {
		r.newlines = n
	}
	r.space = false
}

// noteQuote remembers the shallowest quote depth seen while line breaks are
// owed: a blank line between a quote and the text around it is not quoted.
func (r *htmlRenderer) noteQuote() {
	if r.newlines == 0 || r.quote < r.nlQuote {
		r.nlQuote = r.quote
	}
}

// text renders a text node.
func (r *htmlRenderer) text(s string) {
	if r.pre > 0 {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				r.noteQuote()
				r.newlines = min(r.newlines+1, 2)
			}
			if line != "" {
				r.emitRaw(line)
			}
		}
		return
	}
	first := true
	for _, word := range strings.FieldsFunc(s, htmlIsSpace) {
		if first {
			if len(s) > 0 && htmlStartsWithSpace(s) {
				r.space = true
			}
			first = false
		} else {
			r.space = true
		}
		r.emit(word)
	}
	if first {
		// Only whitespace.
		if s != "" {
			r.space = true
		}
		return
	}
	if htmlEndsWithSpace(s) {
		r.space = true
	}
}

func htmlIsSpace(c rune) bool { return unicode.IsSpace(c) || c == '\u00a0' || c == '\u200b' }

func htmlStartsWithSpace(s string) bool {
	c, _ := utf8.DecodeRuneInString(s)
	return htmlIsSpace(c)
}

func htmlEndsWithSpace(s string) bool {
	c, _ := utf8.DecodeLastRuneInString(s)
	return htmlIsSpace(c)
}

// emit writes a word, paying owed line breaks, prefixes and spaces first.
func (r *htmlRenderer) emit(word string) {
	r.pay()
	if r.space && !r.atLineStart() {
		r.out.WriteByte(' ')
	}
	r.space = false
	r.out.WriteString(word)
}

// emitRaw writes preformatted text.
func (r *htmlRenderer) emitRaw(s string) {
	r.pay()
	r.space = false
	r.out.WriteString(s)
}

func (r *htmlRenderer) atLineStart() bool {
	s := r.out.String()
	if s == "" || strings.HasSuffix(s, "\n") {
		return true
	}
	p := strings.Repeat("> ", r.quote) + r.prefix
	return p != "" && strings.HasSuffix(s, "\n"+p)
}

// pay writes owed line breaks and the line prefix.
func (r *htmlRenderer) pay() {
	if r.out.Len() > 0 && r.newlines > 0 {
		for i := range r.newlines {
			if q := min(r.quote, r.nlQuote); i > 0 && q > 0 {
				// A blank line inside a quote keeps the quote marks.
				r.out.WriteString(strings.TrimSpace(strings.Repeat("> ", q)))
			}
			r.out.WriteByte('\n')
		}
		r.space = false
	}
	lineStart := r.out.Len() == 0 || r.newlines > 0 || strings.HasSuffix(r.out.String(), "\n")
	r.newlines = 0
	if lineStart {
		if r.quote > 0 {
			r.out.WriteString(strings.Repeat("> ", r.quote))
		}
		if r.prefix != "" {
			r.out.WriteString(r.prefix)
			r.prefix = ""
		}
		r.space = false
	}
}

var htmlBlankLines = regexp.MustCompile(`\n{3,}`)

// finish tidies the rendered text: no trailing spaces, at most one blank
// line in a row, no leading or trailing blank lines.
func (r *htmlRenderer) finish() string {
	s := parseTruncate(csClean(r.out.String()), r.max)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	s = strings.Join(lines, "\n")
	s = htmlBlankLines.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s)
}

var htmlMetaCharsetRE = regexp.MustCompile(`(?i)<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_:.\-]+)`)

// parseHTMLMetaCharset returns the charset an HTML document declares in a
// <meta> tag near its start, or "".
func parseHTMLMetaCharset(raw []byte) string {
	head := raw
	if len(head) > 4096 {
		head = head[:4096]
	}
	if m := htmlMetaCharsetRE.FindSubmatch(head); m != nil {
		return string(m[1])
	}
	return ""
}
