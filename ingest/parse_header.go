package ingest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/northwind-it/ticketgw/domain"
	"golang.org/x/text/transform"
)

// hdrMaxFields bounds the number of header fields kept per header block.
const hdrMaxFields = 2000

// hdrField is one header field: the name as written and the unfolded raw
// value (which may still hold 8-bit bytes and RFC 2047 encoded-words).
type hdrField struct {
	name  string
	value string
}

// hdrBlock is a header block in message order.
type hdrBlock struct {
	fields []hdrField
}

// get returns the first value of the named field.
func (h *hdrBlock) get(name string) (string, bool) {
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// value returns the first value of the named field, or "".
func (h *hdrBlock) value(name string) string {
	v, _ := h.get(name)
	return v
}

// values returns every value of the named field.
func (h *hdrBlock) values(name string) []string {
	var out []string
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// hdrReadResult describes how a header block ended.
type hdrReadResult struct {
	blankLine bool     // ended at the blank line, as it should
	problems  []string // what was repaired or skipped
}

// hdrRead reads a header block from br, leniently: an mbox "From " line is
// skipped, a first line that starts with whitespace is taken as a field, a
// line without a colon continues the previous field when it looks like a
// wrapped parameter and otherwise starts the body (it is left unread), and at
// most budget bytes are stored (the rest of the block is skipped).
func hdrRead(br *bufio.Reader, budget int) (hdrBlock, hdrReadResult) {
	var h hdrBlock
	var res hdrReadResult
	used := 0
	over := false
	tooMany := false
	first := true
	var cur []byte // value of the field being read
	curName := ""
	haveCur := false
	flush := func() {
		if !haveCur {
			return
		}
		haveCur = false
		if len(h.fields) >= hdrMaxFields {
			if !tooMany {
				tooMany = true
				res.problems = append(res.problems, fmt.Sprintf("more than %d header fields; the rest were ignored", hdrMaxFields))
			}
			return
		}
		h.fields = append(h.fields, hdrField{name: curName, value: string(bytes.TrimSpace(cur))})
	}
	for {
		peek, err := hdrPeekLine(br)
		if len(peek) == 0 && err != nil {
			// End of input: a header without end (or an empty message).
			flush()
			return h, res
		}
		line := hdrTrimEOL(peek)
		if len(line) == 0 && hdrEndsLine(peek) {
			hdrDiscardLine(br, nil, 0)
			flush()
			res.blankLine = true
			return h, res
		}
		if over {
			hdrDiscardLine(br, nil, 0)
			continue
		}
		switch {
		case first && (bytes.HasPrefix(line, []byte("From ")) || bytes.HasPrefix(line, []byte(">From "))) &&
			hdrFieldName(line) == "":
			// mbox separator line.
			hdrDiscardLine(br, nil, 0)
			first = false
			continue
		case line[0] == ' ' || line[0] == '\t':
			if !haveCur {
				if len(h.fields) == 0 && hdrFieldName(bytes.TrimLeft(line, " \t")) != "" {
					res.problems = append(res.problems, "header starts with whitespace")
					var val []byte
					val, used, over = hdrTakeLine(br, used, budget)
					val = bytes.TrimLeft(val, " \t")
					name := hdrFieldName(val)
					curName, cur, haveCur = name, append([]byte(nil), hdrAfterColon(val)...), true
					break
				}
				// Continuation of a field we did not keep.
				hdrDiscardLine(br, nil, 0)
				break
			}
			var val []byte
			val, used, over = hdrTakeLine(br, used, budget)
			cur = append(cur, val...)
		default:
			name := hdrFieldName(line)
			if name == "" {
				if haveCur && hdrLooksWrapped(cur, line) {
					res.problems = append(res.problems, "folded header line without leading whitespace")
					var val []byte
					val, used, over = hdrTakeLine(br, used, budget)
					cur = append(append(cur, ' '), val...)
					break
				}
				// The body starts here; leave the line unread.
				flush()
				if len(h.fields) > 0 || !first {
					res.problems = append(res.problems, "no blank line between header and body")
				} else {
					res.problems = append(res.problems, "message starts without a header")
				}
				return h, res
			}
			flush()
			var val []byte
			val, used, over = hdrTakeLine(br, used, budget)
			curName, cur, haveCur = name, append([]byte(nil), hdrAfterColon(val)...), true
		}
		first = false
		if over {
			flush()
			res.problems = append(res.problems, fmt.Sprintf("header exceeds %d bytes; the rest of it was skipped", budget))
		}
	}
}

// hdrPeekLine returns the next line with its line break, or as much of it
// as the buffer holds. The bytes stay unread.
func hdrPeekLine(br *bufio.Reader) ([]byte, error) {
	size := 256
	for {
		if size > br.Size() {
			size = br.Size()
		}
		buf, err := br.Peek(size)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return buf[:i+1], nil
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return buf, nil
			}
			return buf, err
		}
		if size == br.Size() {
			return buf, nil
		}
		size *= 4
	}
}

func hdrEndsLine(b []byte) bool { return len(b) > 0 && b[len(b)-1] == '\n' }

func hdrTrimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// hdrDiscardLine consumes one line. When keep is non-nil, up to max bytes
// of the line (without its line break) are appended to it.
func hdrDiscardLine(br *bufio.Reader, keep *[]byte, max int) (total int) {
	for {
		chunk, err := br.ReadSlice('\n')
		total += len(chunk)
		if keep != nil {
			c := hdrTrimEOL(chunk)
			if room := max - len(*keep); room > 0 {
				if len(c) > room {
					c = c[:room]
				}
				*keep = append(*keep, c...)
			}
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return total
		}
	}
}

// hdrTakeLine consumes a line and returns its bytes (without line break)
// while the header budget lasts.
func hdrTakeLine(br *bufio.Reader, used, budget int) (val []byte, newUsed int, over bool) {
	room := budget - used
	if room < 0 {
		room = 0
	}
	var keep []byte
	n := hdrDiscardLine(br, &keep, room)
	used += n
	return keep, used, used > budget
}

// hdrFieldName returns the field name of a "Name: value" line, or "" when
// the line is not a header field.
func hdrFieldName(line []byte) string {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return ""
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 || len(name) > 200 {
		return ""
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return ""
		}
	}
	return string(name)
}

func hdrAfterColon(line []byte) []byte {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return line
	}
	return line[i+1:]
}

// hdrLooksWrapped reports whether a line without a colon is probably the
// unindented continuation of the previous field (a wrapped parameter).
func hdrLooksWrapped(prev, line []byte) bool {
	p := bytes.TrimRight(prev, " \t")
	if len(p) > 0 && (p[len(p)-1] == ';' || p[len(p)-1] == ',') {
		return true
	}
	eq := bytes.IndexByte(line, '=')
	return eq > 0 && bytes.IndexAny(line[:eq], " \t") < 0
}

// hdrDecoder turns raw header values into text.
type hdrDecoder struct {
	// fallback is the charset for raw 8-bit bytes in headers: the charset
	// the message declares for its text, if any.
	fallback string
	problems []string
}

// text decodes a raw header value: RFC 2047 encoded-words (adjacent words in
// one charset are joined before decoding, so a character split between
// words survives), raw 8-bit bytes in the fallback charset, and line breaks.
func (d *hdrDecoder) text(raw string) string {
	s := d.words(raw)
	if strings.ContainsAny(s, "\r\n") {
		s = hdrLineBreaks.Replace(s)
	}
	return s
}

// hdrLineBreaks removes line breaks left in a decoded header value.
var hdrLineBreaks = strings.NewReplacer("\r\n", "", "\r", "", "\n", "")

// eightBit decodes a run of literal header bytes.
func (d *hdrDecoder) eightBit(s string) string {
	if utf8.ValidString(s) {
		if csClassify(csNormalize(d.fallback)) == csUTF7 && strings.Contains(s, "+") && csIsASCII([]byte(s)) {
			// Netscape wrote raw UTF-7 in headers of UTF-7 messages.
			if u, ok := csDecodeUTF7([]byte(s), false); ok {
				return u
			}
		}
		return s
	}
	label := d.fallback
	switch csClassify(csNormalize(label)) {
	case csUTF8, csUTF7:
		label = ""
	}
	t, problem := csDecode(label, []byte(s))
	if problem != "" {
		d.problems = append(d.problems, "header: "+problem)
	}
	return t
}

// hdrWordMaxLen bounds the length of an encoded-word's text (RFC 2047
// allows 75 characters for the whole word; mailers exceed that).
const hdrWordMaxLen = 4096

// words decodes RFC 2047 encoded-words in s.
func (d *hdrDecoder) words(s string) string {
	if !strings.Contains(s, "=?") {
		return d.eightBit(s)
	}
	var out strings.Builder
	var pendCS string
	var pend []byte
	havePend := false
	flushPend := func() {
		if !havePend {
			return
		}
		t, problem := csDecode(pendCS, pend)
		if problem != "" {
			d.problems = append(d.problems, "encoded-word: "+problem)
		}
		out.WriteString(t)
		pend = pend[:0]
		havePend = false
	}
	i := 0
	ends := hdrWordEnds{s: s}
	for i < len(s) {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			break
		}
		start := i + j
		n, cs, data, ok := hdrParseWord(s[start:], start, &ends)
		if !ok {
			flushPend()
			out.WriteString(d.eightBit(s[i : start+2]))
			i = start + 2
			continue
		}
		between := s[i:start]
		if havePend && strings.TrimLeft(between, " \t\r\n") == "" {
			if !strings.EqualFold(cs, pendCS) {
				flushPend()
			}
		} else {
			flushPend()
			out.WriteString(d.eightBit(between))
		}
		if !havePend {
			pendCS = cs
			havePend = true
		}
		pend = append(pend, data...)
		i = start + n
	}
	flushPend()
	out.WriteString(d.eightBit(s[i:]))
	return out.String()
}

// hdrWordEnds finds the "?=" that ends an encoded-word. Its cursor only
// moves forward, so that a value full of "=?" is scanned about once, not
// once per "=?". Queries come in nearly increasing order (word starts
// increase; the charset length varies), so a query before the cursor only
// searches the short gap up to it.
type hdrWordEnds struct {
	s    string
	last int // the greatest position asked for so far
	next int // index of the first "?=" at or after last, or -1
	init bool
}

// after returns the index of the first "?=" at or after pos, or -1.
func (e *hdrWordEnds) after(pos int) int {
	if e.init && pos < e.last {
		if k := strings.Index(e.s[pos:min(e.last+1, len(e.s))], "?="); k >= 0 {
			return pos + k
		}
		return e.next
	}
	if !e.init || (e.next >= 0 && e.next < pos) {
		e.next = -1
		if k := strings.Index(e.s[pos:], "?="); k >= 0 {
			e.next = pos + k
		}
	}
	e.init = true
	e.last = pos
	return e.next
}

// hdrParseWord parses an encoded-word at the start of s, which begins at
// offset base of the value ends searches: it returns its length, charset
// (without RFC 2231 language) and decoded bytes.
func hdrParseWord(s string, base int, ends *hdrWordEnds) (n int, cs string, data []byte, ok bool) {
	if !strings.HasPrefix(s, "=?") {
		return 0, "", nil, false
	}
	rest := s[2:]
	q := strings.IndexByte(rest, '?')
	if q <= 0 || q > 64 {
		return 0, "", nil, false
	}
	cs = rest[:q]
	if strings.ContainsAny(cs, " \t\r\n=") {
		return 0, "", nil, false
	}
	if k := strings.IndexByte(cs, '*'); k >= 0 {
		cs = cs[:k]
	}
	rest = rest[q+1:]
	if len(rest) < 2 || rest[1] != '?' {
		return 0, "", nil, false
	}
	enc := rest[0] | 0x20
	if enc != 'b' && enc != 'q' {
		return 0, "", nil, false
	}
	rest = rest[2:]
	textStart := 2 + q + 1 + 2
	abs := ends.after(base + textStart)
	if abs < 0 || abs-(base+textStart) > hdrWordMaxLen {
		return 0, "", nil, false
	}
	end := abs - (base + textStart)
	text := rest[:end]
	n = 2 + q + 1 + 2 + end + 2
	if enc == 'b' {
		data, ok = hdrBase64(text)
	} else {
		data, ok = hdrQ(text), true
	}
	return n, cs, data, ok
}

func hdrBase64(text string) ([]byte, bool) {
	text = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, text)
	if b, err := base64.StdEncoding.DecodeString(text); err == nil {
		return b, true
	}
	if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(text, "=")); err == nil {
		return b, true
	}
	// Junk inside: decode what can be decoded.
	out, _, err := transform.Bytes(&mimeB64Decoder{}, []byte(text))
	if err != nil || len(out) == 0 {
		return nil, false
	}
	return out, true
}

func hdrQ(text string) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(text) && mimeUnhex(text[i+1]) >= 0 && mimeUnhex(text[i+2]) >= 0:
			out = append(out, byte(mimeUnhex(text[i+1])<<4|mimeUnhex(text[i+2])))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

// addresses parses an address list leniently: net/mail first, and when it
// refuses the list, a tolerant scan that extracts addr-specs item by item.
// bareOK accepts an item without "@" (a bare local part such as
// "mailer-daemon") as an address.
func (d *hdrDecoder) addresses(raw string, bareOK bool) []domain.Address {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	if !utf8.ValidString(raw) {
		raw = d.eightBit(raw)
	}
	ap := mail.AddressParser{WordDecoder: &mime.WordDecoder{CharsetReader: hdrCharsetReader}}
	if list, err := ap.ParseList(raw); err == nil {
		out := make([]domain.Address, 0, len(list))
		for _, a := range list {
			name := strings.TrimSpace(a.Name)
			if strings.Contains(name, "=?") {
				// Encoded-words inside a quoted display name: not allowed
				// by RFC 2047, written by real mailers anyway.
				name = strings.TrimSpace(d.text(name))
			}
			out = append(out, domain.Address{Name: name, Addr: hdrNormAddr(a.Address)})
		}
		return out
	}
	var out []domain.Address
	pendingName := ""
	for _, item := range hdrSplitList(raw) {
		got := d.tolerantAddresses(item, bareOK)
		if len(got) == 0 {
			// "Levi, Dana <dana@x>": an unquoted comma split the name.
			if t := strings.TrimSpace(item); t != "" && !strings.ContainsAny(t, "@<>:;") {
				pendingName = t
			}
			continue
		}
		if pendingName != "" && strings.Contains(item, "<") {
			got[0].Name = strings.TrimSpace(d.text(hdrUnquote(pendingName)) + ", " + got[0].Name)
		}
		pendingName = ""
		out = append(out, got...)
	}
	return out
}

// hdrCharsetReader lets net/mail decode encoded-words in display names with
// the parser's charset handling (aliases and fallbacks).
func hdrCharsetReader(label string, r io.Reader) (io.Reader, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("read encoded-word: %w", err)
	}
	s, _ := csDecode(label, b)
	return strings.NewReader(s), nil
}

// hdrNormAddr lower-cases the domain of an address and removes whitespace.
func hdrNormAddr(a string) string {
	a = strings.Join(strings.Fields(a), "")
	if at := strings.LastIndexByte(a, '@'); at >= 0 {
		return a[:at+1] + strings.ToLower(a[at+1:])
	}
	return a
}

// hdrSplitList splits an address list at commas and group delimiters that
// are outside quotes, comments and angle brackets.
func hdrSplitList(s string) []string {
	var items []string
	depth, angle := 0, false
	quoted := false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case angle:
		case c == ',' || c == ';':
			items = append(items, s[start:i])
			start = i + 1
		case c == ':':
			// "group name:" starts a group; the name is not an address.
			if !strings.Contains(s[start:i], "@") {
				start = i + 1
			}
		}
	}
	items = append(items, s[start:])
	return items
}

// tolerantAddresses extracts the addresses of a damaged list item: every
// <angle-addr> with the text before it as its name, or else the word with
// an "@" in it.
func (d *hdrDecoder) tolerantAddresses(item string, bareOK bool) []domain.Address {
	item, comment := hdrStripComments(item)
	item = strings.TrimSpace(item)
	var out []domain.Address
	add := func(name, addr string) {
		addr = strings.Trim(strings.TrimSpace(addr), "\"'<>,;")
		name = strings.TrimSpace(name)
		if name == "" {
			name = strings.TrimSpace(comment)
		}
		name = strings.TrimSpace(d.text(hdrUnquote(name)))
		switch {
		case addr == "" && bareOK && name != "":
			// "MAILER-DAEMON <>": a name with the null address.
			out = append(out, domain.Address{Name: name})
		case addr == "" || (!strings.Contains(addr, "@") && !(bareOK && hdrBareLocal(addr))):
		default:
			out = append(out, domain.Address{Name: name, Addr: hdrNormAddr(addr)})
		}
	}
	rest := item
	for {
		lt := strings.IndexByte(rest, '<')
		if lt < 0 {
			break
		}
		name := rest[:lt]
		addr := rest[lt+1:]
		if gt := strings.IndexByte(addr, '>'); gt >= 0 {
			rest = addr[gt+1:]
			addr = addr[:gt]
		} else {
			rest = ""
		}
		if c := strings.LastIndexByte(addr, ':'); c >= 0 {
			addr = addr[c+1:] // source route
		}
		add(name, addr)
	}
	if len(out) > 0 || strings.Contains(item, "<") {
		return out
	}
	fields := strings.Fields(item)
	for k, f := range fields {
		if strings.Contains(f, "@") {
			add(strings.Join(append(append([]string{}, fields[:k]...), fields[k+1:]...), " "), f)
			return out
		}
	}
	if bareOK && len(fields) == 1 && hdrBareLocal(fields[0]) {
		add("", fields[0])
	}
	return out
}

func hdrBareLocal(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
			return false
		}
	}
	return true
}

// hdrStripComments removes parenthesised comments outside quotes and returns
// the first comment's text.
func hdrStripComments(s string) (string, string) {
	if !strings.Contains(s, "(") {
		return s, ""
	}
	var out, comment strings.Builder
	depth := 0
	quoted := false
	first := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth == 0 && c == '"':
			quoted = !quoted
			out.WriteByte(c)
		case quoted:
			out.WriteByte(c)
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
			if depth == 0 && comment.Len() > 0 {
				first = false
			}
		case depth > 0:
			if first {
				comment.WriteByte(c)
			}
		default:
			out.WriteByte(c)
		}
	}
	return out.String(), comment.String()
}

func hdrUnquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		s = strings.ReplaceAll(s, `\"`, `"`)
		s = strings.ReplaceAll(s, `\\`, `\`)
	} else {
		s = strings.Trim(s, `"`)
	}
	return strings.TrimSpace(s)
}

// hdrMaxIDs bounds the number of message ids kept from one header.
const hdrMaxIDs = 500

// hdrMsgIDs extracts message ids without angle brackets from a Message-ID,
// In-Reply-To or References value: every <...> token, or when there are
// none, every whitespace-separated token that looks like an id. Duplicates
// are dropped.
func hdrMsgIDs(v string) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		id = strings.Join(strings.Fields(id), "")
		id = strings.Trim(id, "<>\"',;")
		if id == "" || seen[id] || len(ids) >= hdrMaxIDs {
			return
		}
		seen[id] = true
		ids = append(ids, id)
	}
	rest := v
	found := false
	for {
		lt := strings.IndexByte(rest, '<')
		if lt < 0 {
			break
		}
		gt := strings.IndexByte(rest[lt+1:], '>')
		if gt < 0 {
			if found {
				break
			}
			add(rest[lt+1:])
			found = true
			break
		}
		add(rest[lt+1 : lt+1+gt])
		found = true
		rest = rest[lt+1+gt+1:]
	}
	if found {
		return ids
	}
	stripped, _ := hdrStripComments(v)
	tokens := strings.FieldsFunc(stripped, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == '\r' || r == '\n' })
	for _, f := range tokens {
		if strings.Contains(f, "@") || len(tokens) == 1 {
			add(f)
		}
	}
	return ids
}

// hdrDateLayouts are tried, in order, after net/mail.ParseDate fails.
var hdrDateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
	"Mon, 2-Jan-2006 15:04:05 -0700",
	"Mon, 02-Jan-2006 15:04:05 -0700",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Monday, January 2, 2006 15:04:05 -0700",
	"Monday, January 2, 2006 3:04 PM",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"01/02/2006 15:04:05",
}

// hdrDate parses a Date value leniently.
func hdrDate(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	// The common form first: net/mail.ParseDate tries 24 layouts without
	// the day of the week before this one, each failure an allocated
	// error. Where this layout parses v, ParseDate returns the same (its
	// first layout that can match a value starting with a day name).
	if len(v) > 0 && (v[0] < '0' || v[0] > '9') {
		if t, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", v); err == nil {
			return t, true
		}
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t, true
	}
	clean, _ := hdrStripComments(v)
	clean = strings.Join(strings.Fields(strings.ReplaceAll(clean, ",", ", ")), " ")
	clean = strings.ReplaceAll(clean, " ,", ",")
	clean = strings.TrimRight(clean, " ,.")
	if t, err := mail.ParseDate(clean); err == nil {
		return t, true
	}
	for _, layout := range hdrDateLayouts {
		if t, err := time.Parse(layout, clean); err == nil {
			return t, true
		}
	}
	// A trailing zone name that time.Parse does not know ("CEST", "IST").
	if i := strings.LastIndexByte(clean, ' '); i > 0 {
		if t, err := mail.ParseDate(clean[:i]); err == nil {
			return t, true
		}
		for _, layout := range hdrDateLayouts {
			if t, err := time.Parse(layout, clean[:i]); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}
