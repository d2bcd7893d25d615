package conversation

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxHTMLBytes bounds the HTML the functions below parse; a larger body is
// returned unchanged.
const maxHTMLBytes = 8 << 20

// StripCommandLinesHTML removes the command block from the HTML part of a
// staff reply, so that the relayed HTML does not show it: at most n leading
// lines that are valid command lines (as ParseCommands reads them from the
// text part; n is len(cmds) when there was no problem), the blank lines
// before and between them, and the blank lines after them. It returns the
// HTML and the number of command lines removed.
//
// Lines are what a reader sees: text separated by <br> and block elements
// (p, div, li, headings, ...; Outlook's <o:p> is inline). The block ends at
// the first line that is not blank and not a valid command, and at an image,
// table, rule or quote. Elements left empty by the removal (the <p> or <div>
// of a command line) are removed as well; nothing else changes, but the
// document is re-serialised by golang.org/x/net/html (so a fragment gains
// <html><head><body>).
//
// It is best effort: when removed < n the HTML does not show the commands as
// the text part does (edited separately, or laid out unusually), and the
// caller should relay the text part alone. With n <= 0, or HTML that
// cannot be parsed or is larger than 8 MiB, src is returned unchanged.
func StripCommandLinesHTML(src string, n int) (string, int) {
	if n <= 0 || src == "" || len(src) > maxHTMLBytes {
		return src, 0
	}
	doc, body := parseHTMLBody(src)
	if body == nil {
		return src, 0
	}
	var remove, pending []htmlLine
	found := 0
	w := lineWalker{emit: func(l htmlLine) bool {
		t := trimLine(l.text())
		switch {
		case l.content:
			return false
		case t == "":
			pending = append(pending, l)
			return true
		case found < n && isCommandLine(t):
			if _, p := parseCommandLine(t, 0); p != nil {
				return false
			}
			remove = append(remove, pending...)
			remove = append(remove, l)
			pending = nil
			found++
			return true
		}
		return false
	}}
	w.walk(body)
	w.flush()
	if found == 0 {
		return src, 0
	}
	remove = append(remove, pending...)
	removeHTMLLines(remove)
	return renderHTML(doc, src), found
}

// StripQuotedSummaryHTML is StripQuotedSummary for the HTML part of a staff
// reply: it removes the gateway's summary block, as the forward's HTML
// summary table or as its text rendered in HTML, from a quote (Gmail's and
// Apple Mail's <blockquote>, or below Outlook's header block), and the
// attribution or header block above it when nothing else is left of that
// quote. The quote depth of a line is the number of <blockquote> elements
// around it. Elements left empty are removed; the rest is unchanged, though
// re-serialised. HTML without a recognised summary, larger than 8 MiB, or
// that cannot be parsed is returned unchanged.
func StripQuotedSummaryHTML(src string) string {
	if src == "" || len(src) > maxHTMLBytes {
		return src
	}
	doc, body := parseHTMLBody(src)
	if body == nil {
		return src
	}
	var hl []htmlLine
	w := lineWalker{descend: true, emit: func(l htmlLine) bool {
		hl = append(hl, l)
		return len(hl) < 100000
	}}
	w.walk(body)
	w.flush()

	lines := make([]qline, len(hl))
	for i, l := range hl {
		lines[i] = qline{depth: l.depth, norm: l.norm(), content: l.content}
	}
	removed := make([]bool, len(lines))
	var blocks [][3]int
	for i := 0; i < len(lines); i++ {
		s, e, ok := matchRuledSummary(lines, i)
		if !ok {
			s, e, ok = matchRenderedSummary(lines, i)
		}
		if !ok {
			continue
		}
		for x := s; x <= e; x++ {
			removed[x] = true
		}
		blocks = append(blocks, [3]int{s, e, lines[s].depth})
		i = e
	}
	if len(blocks) == 0 {
		return src
	}
	for _, b := range blocks {
		dropEmptyQuote(lines, removed, b[0], b[1], b[2])
	}
	// Blank lines that the removal left at the start or the end go too.
	firstKept, firstRemoved := len(lines), len(lines)
	lastKept, lastRemoved := -1, -1
	for i, l := range lines {
		switch {
		case removed[i]:
			firstRemoved = min(firstRemoved, i)
			lastRemoved = i
		case !l.blank():
			firstKept = min(firstKept, i)
			lastKept = i
		}
	}
	var remove []htmlLine
	for i, l := range hl {
		if removed[i] || firstRemoved < firstKept && i < firstKept || lastRemoved > lastKept && i > lastKept {
			remove = append(remove, l)
		}
	}
	removeHTMLLines(remove)
	return renderHTML(doc, src)
}

// parseHTMLBody parses src and returns the document and its body.
func parseHTMLBody(src string) (doc, body *html.Node) {
	doc, err := html.Parse(strings.NewReader(src))
	if err != nil {
		return nil, nil
	}
	var find func(n *html.Node) *html.Node
	find = func(n *html.Node) *html.Node {
		if n.Type == html.ElementNode && n.DataAtom == atom.Body {
			return n
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if b := find(c); b != nil {
				return b
			}
		}
		return nil
	}
	return doc, find(doc)
}

func renderHTML(doc *html.Node, fallback string) string {
	var b strings.Builder
	if err := html.Render(&b, doc); err != nil {
		return fallback
	}
	return b.String()
}

// htmlPiece is the part data[start:end] of a text node that belongs to a
// line.
type htmlPiece struct {
	node       *html.Node
	start, end int
}

// htmlLine is one visible line of an HTML body: its text pieces, the <br>
// that ends it, and what else it holds.
type htmlLine struct {
	pieces  []htmlPiece
	br      *html.Node // the <br> ending the line, if any
	rule    *html.Node // an <hr>: the line is a separator
	content bool       // an image, table or other non-text content
	pre     bool       // text from <pre>, where white space shows
	depth   int        // <blockquote> elements around the line
}

// invisible reports whether the line is only the white space between tags,
// which a browser does not show.
func (l htmlLine) invisible() bool {
	return l.br == nil && l.rule == nil && !l.content && !l.pre && strings.Trim(l.text(), " \t\r\n\f") == ""
}

func (l htmlLine) text() string {
	var b strings.Builder
	for _, p := range l.pieces {
		b.WriteString(p.node.Data[p.start:p.end])
	}
	return b.String()
}

// norm is the line's text as the line matchers of quote.go read it: white
// space collapsed, invisible marks removed, trimmed. An <hr> reads as a rule
// of underscores, which is how Outlook's separator reads in text.
func (l htmlLine) norm() string {
	if l.rule != nil {
		return strings.Repeat("_", 32)
	}
	return normQuoted(strings.Join(strings.Fields(l.text()), " "))
}

// lineWalker splits an HTML tree into lines in document order. In the
// default mode a table, quote or rule is one content line (the command block
// never reaches into them); with descend set, the walker enters tables and
// quotes, counting quote depth.
type lineWalker struct {
	emit    func(htmlLine) bool // false stops the walk
	descend bool
	cur     htmlLine
	depth   int
	stopped bool
}

func (w *lineWalker) flush() {
	if w.stopped {
		return
	}
	if len(w.cur.pieces) == 0 && w.cur.br == nil && w.cur.rule == nil && !w.cur.content {
		w.cur = htmlLine{}
		return
	}
	l := w.cur
	l.depth = w.depth
	w.cur = htmlLine{}
	if l.invisible() {
		return
	}
	if !w.emit(l) {
		w.stopped = true
	}
}

func (w *lineWalker) walk(n *html.Node) { w.walkIn(n, false) }

func (w *lineWalker) walkIn(n *html.Node, pre bool) {
	for c := n.FirstChild; c != nil && !w.stopped; c = c.NextSibling {
		switch c.Type {
		case html.TextNode:
			w.text(c, pre)
		case html.ElementNode:
			w.element(c, pre)
		}
	}
}

func (w *lineWalker) text(c *html.Node, pre bool) {
	if !pre {
		w.cur.pieces = append(w.cur.pieces, htmlPiece{c, 0, len(c.Data)})
		return
	}
	w.cur.pre = true
	start := 0
	for start < len(c.Data) && !w.stopped {
		i := strings.IndexByte(c.Data[start:], '\n')
		if i < 0 {
			w.cur.pieces = append(w.cur.pieces, htmlPiece{c, start, len(c.Data)})
			return
		}
		w.cur.pieces = append(w.cur.pieces, htmlPiece{c, start, start + i + 1})
		w.flush()
		w.cur.pre = true
		start += i + 1
	}
}

func (w *lineWalker) element(c *html.Node, pre bool) {
	a := c.DataAtom
	switch {
	case htmlSkipped(a):
	case a == atom.Br:
		w.cur.br = c
		w.flush()
	case a == atom.Hr:
		w.flush()
		if w.descend {
			w.cur.rule = c
		} else {
			w.cur.content = true
		}
		w.flush()
	case !w.descend && (a == atom.Table || a == atom.Blockquote):
		w.flush()
		w.cur.content = true
		w.flush()
	case a == atom.Blockquote:
		w.flush()
		w.depth++
		w.walkIn(c, pre)
		w.flush()
		w.depth--
	case htmlContent(a):
		w.cur.content = true
	case htmlBlock(a):
		w.flush()
		w.walkIn(c, pre || a == atom.Pre || a == atom.Textarea)
		w.flush()
	default:
		w.walkIn(c, pre)
	}
}

// htmlSkipped elements show no text.
func htmlSkipped(a atom.Atom) bool {
	switch a {
	case atom.Head, atom.Style, atom.Script, atom.Title, atom.Template, atom.Noscript, atom.Meta, atom.Link:
		return true
	}
	return false
}

// htmlContent elements show something other than text.
func htmlContent(a atom.Atom) bool {
	switch a {
	case atom.Img, atom.Svg, atom.Video, atom.Audio, atom.Iframe, atom.Object, atom.Embed, atom.Canvas,
		atom.Picture, atom.Input, atom.Button, atom.Select, atom.Textarea, atom.Math:
		return true
	}
	return false
}

// htmlBlock elements start and end a line.
func htmlBlock(a atom.Atom) bool {
	switch a {
	case atom.Address, atom.Article, atom.Aside, atom.Blockquote, atom.Center, atom.Dd, atom.Details, atom.Dialog,
		atom.Dir, atom.Div, atom.Dl, atom.Dt, atom.Fieldset, atom.Figcaption, atom.Figure, atom.Footer, atom.Form,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Header, atom.Hgroup, atom.Hr, atom.Li, atom.Main,
		atom.Menu, atom.Nav, atom.Ol, atom.P, atom.Pre, atom.Section, atom.Summary, atom.Table, atom.Tbody,
		atom.Thead, atom.Tfoot, atom.Tr, atom.Td, atom.Th, atom.Caption, atom.Ul, atom.Body, atom.Html:
		return true
	}
	return false
}

// htmlPrunable elements go when the removal leaves them without text or
// content: wrappers and formatting, table structure, quotes.
func htmlPrunable(n *html.Node) bool {
	if n.Type != html.ElementNode {
		return false
	}
	switch n.DataAtom {
	case atom.P, atom.Div, atom.Span, atom.Font, atom.B, atom.I, atom.U, atom.S, atom.Strong, atom.Em, atom.Small,
		atom.Big, atom.Sub, atom.Sup, atom.Center, atom.A, atom.Br, atom.Table, atom.Tbody, atom.Thead, atom.Tfoot,
		atom.Tr, atom.Td, atom.Th, atom.Blockquote, atom.Pre, atom.Tt, atom.Code, atom.Li, atom.Ul, atom.Ol,
		atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Section, atom.Article, atom.Header, atom.Footer:
		return true
	case 0:
		return n.Data == "o:p" // Outlook's paragraph marker
	}
	return false
}

// htmlEmpty reports whether n shows nothing: no text but white space and
// invisible marks, and no element that is not prunable.
func htmlEmpty(n *html.Node) bool {
	switch n.Type {
	case html.TextNode:
		return trimLine(n.Data) == ""
	case html.CommentNode:
		return true
	case html.ElementNode:
		if !htmlPrunable(n) {
			return false
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if !htmlEmpty(c) {
				return false
			}
		}
		return true
	}
	return false
}

// removeHTMLLines removes the text, <br> and <hr> of lines from their tree,
// then the elements the removal left empty.
func removeHTMLLines(lines []htmlLine) {
	edits := map[*html.Node][][2]int{}
	var order []*html.Node
	var parents []*html.Node
	detach := func(n *html.Node) {
		if n != nil && n.Parent != nil {
			parents = append(parents, n.Parent)
			n.Parent.RemoveChild(n)
		}
	}
	for _, l := range lines {
		for _, p := range l.pieces {
			if _, ok := edits[p.node]; !ok {
				order = append(order, p.node)
			}
			edits[p.node] = append(edits[p.node], [2]int{p.start, p.end})
		}
		detach(l.br)
		detach(l.rule)
	}
	for _, n := range order {
		rs := edits[n]
		slices.SortFunc(rs, func(a, b [2]int) int { return b[0] - a[0] })
		data := n.Data
		for _, r := range rs {
			data = data[:r[0]] + data[r[1]:]
		}
		n.Data = data
		if strings.TrimFunc(data, unicode.IsSpace) == "" {
			detach(n)
		}
	}
	for _, p := range parents {
		for p != nil && p.Parent != nil && htmlEmpty(p) {
			up := p.Parent
			up.RemoveChild(p)
			p = up
		}
	}
}
