package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"path"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/northwind-it/ticketgw/domain"
	"golang.org/x/text/transform"
)

// Limits bounds the memory and work Parse spends on one message. A zero
// field means the default of DefaultLimits.
type Limits struct {
	// MaxMessageBytes is the most bytes read from the input; the rest of a
	// longer message is not read.
	MaxMessageBytes int64
	// MaxHeaderBytes is the most bytes kept of one header block (the
	// message's and each part's); the rest of the block is skipped.
	MaxHeaderBytes int
	// MaxParts is the most MIME entities walked, multipart containers and
	// attached messages included.
	MaxParts int
	// MaxPartBytes is the most decoded bytes counted per part; an
	// attachment's Size beyond it is a lower bound.
	MaxPartBytes int64
	// MaxTextBytes is the most bytes kept of Text and of HTML.
	MaxTextBytes int
	// MaxDepth is the deepest nesting of multiparts and attached messages
	// that is walked.
	MaxDepth int
}

// DefaultLimits returns limits fit for a support mailbox: 64 MiB messages,
// 1 MiB headers, 500 parts, 64 MiB per part, 1 MiB of text, depth 20.
func DefaultLimits() Limits {
	return Limits{
		MaxMessageBytes: 64 << 20,
		MaxHeaderBytes:  1 << 20,
		MaxParts:        500,
		MaxPartBytes:    64 << 20,
		MaxTextBytes:    1 << 20,
		MaxDepth:        20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = d.MaxMessageBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = d.MaxPartBytes
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = d.MaxTextBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// Parse reads one RFC 5322 message from r and returns what could be read of
// it. It never fails and never panics: malformed structure, unknown charsets
// and encodings, and limits that were hit are described in Warnings. It
// streams: attachments are counted, not kept; only text/plain and text/html
// bodies are held, up to lim.MaxTextBytes. Parse reads r up to the end of
// the message or lim.MaxMessageBytes, whichever comes first.
func Parse(r io.Reader, lim Limits) *domain.Message {
	p := &parseState{lim: lim.withDefaults(), msg: &domain.Message{}, sc: getParseScratch()}
	defer p.sc.put()
	p.safely("read message", func() { p.read(r) })
	p.safely("assemble text", p.finish)
	p.safely("detect automatic mail", p.detectAuto)
	return p.msg
}

// ParseHeader reads only the top-level header of a raw message and returns
// the fields that come from it (addresses, subject, Message-ID, In-Reply-To,
// References, Date, the header fields), as Parse would; body-derived fields
// stay empty, and raw 8-bit header bytes are read in the charset the
// Content-Type declares (Parse may also use the first text part's).
func ParseHeader(r io.Reader, lim Limits) *domain.Message { return parseTopHeader(r, lim, false) }

// ParseThreadHeader is ParseHeader for what orders and threads a message:
// From, Subject, Message-ID, In-Reply-To and References, each as ParseHeader
// returns it; the other fields stay empty. It skips decoding every other
// header field (Received lines and the like), which made ParseHeader, run
// for every message's ordering keys, a few per cent of a backlog drain.
func ParseThreadHeader(r io.Reader, lim Limits) *domain.Message {
	m := parseTopHeader(r, lim, true)
	m.Warnings = nil
	return m
}

// parseTopHeader reads the top-level header into a message's envelope
// (brief: the fields ParseThreadHeader returns).
func parseTopHeader(r io.Reader, lim Limits, brief bool) *domain.Message {
	p := &parseState{lim: lim.withDefaults(), msg: &domain.Message{}, sc: getParseScratch(), brief: brief}
	defer p.sc.put()
	p.safely("read header", func() {
		br := p.sc.reader(&mimeCRReader{r: r})
		defer p.sc.release(br)
		h, res := hdrRead(br, p.lim.MaxHeaderBytes)
		p.top = h
		p.headerProblems(parseWalkCtx{}, res)
		_, ctParams, _ := mimeMediaType(h.value("Content-Type"))
		p.topCharset = ctParams["charset"]
		p.envelope(&p.top)
	})
	return p.msg
}

// parserMaxWarnings bounds the warnings kept for one message.
const parserMaxWarnings = 50

// parserEvidenceBytes bounds the bytes kept of a delivery-status or similar
// report part for the automatic-mail checks.
const parserEvidenceBytes = 64 << 10

// parseState holds the state of one Parse call.
type parseState struct {
	lim Limits
	msg *domain.Message
	top hdrBlock
	hd  hdrDecoder // decoder for the top-level header

	topCharset  string // charset parameter of the message's Content-Type
	bodyCharset string // charset of the first text part of the message

	parts      int
	partsHit   bool
	warnSeen   map[string]bool
	suppressed bool

	plain   []string // text/plain bodies of the message itself, in order
	textLen int

	innerPlain []string // text of the first attached message with text
	innerHTML  string
	innerDone  bool

	auto autoEvidence
	sc   *parseScratch // buffers, from a pool
	// brief: the envelope of ParseThreadHeader (the fields that order and
	// thread a message).
	brief bool
}

// parseScratch is the memory a parse reads through: buffered readers and
// the buffers of text parts. Parsing a typical message allocated ~130 KB,
// most of it these buffers, freshly zeroed for every message; they now come
// from a pool. Nothing a parse returns refers to them (text and header
// values are copied out as strings).
type parseScratch struct {
	top  *bufio.Reader   // the message (16 KiB)
	free []*bufio.Reader // 4 KiB readers for parts and attached messages
	// decoders are transfer-decoding readers for attachments (decoder).
	decoders []*mimeDecodeReader
	copyBuf  []byte
	encBuf   bytes.Buffer // encoded bytes of the current text part
	decBuf   []byte       // decoded bytes of the current text part
}

// parseScratchMax is the largest text buffer a pooled scratch keeps: a
// message with a bigger text part does not pin its buffers after the parse.
const parseScratchMax = 1 << 20

var parseScratchPool = sync.Pool{New: func() any { return new(parseScratch) }}

func getParseScratch() *parseScratch { return parseScratchPool.Get().(*parseScratch) }

// put returns sc to the pool, dropping references to what was read.
func (sc *parseScratch) put() {
	if sc.top != nil {
		sc.top.Reset(nil)
	}
	if sc.encBuf.Cap() > parseScratchMax {
		sc.encBuf = bytes.Buffer{}
	}
	sc.encBuf.Reset()
	if cap(sc.decBuf) > parseScratchMax {
		sc.decBuf = nil
	}
	parseScratchPool.Put(sc)
}

// topReader returns the 16 KiB reader of the message, reading r.
func (sc *parseScratch) topReader(r io.Reader) *bufio.Reader {
	if sc.top == nil {
		sc.top = bufio.NewReaderSize(r, 16<<10)
	} else {
		sc.top.Reset(r)
	}
	return sc.top
}

// reader returns a 4 KiB reader of r; release gives it back.
func (sc *parseScratch) reader(r io.Reader) *bufio.Reader {
	if n := len(sc.free); n > 0 {
		br := sc.free[n-1]
		sc.free = sc.free[:n-1]
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, 4<<10)
}

func (sc *parseScratch) release(br *bufio.Reader) {
	br.Reset(nil)
	if len(sc.free) < 8 {
		sc.free = append(sc.free, br)
	}
}

// parseWalkCtx is where an entity sits in the MIME tree.
type parseWalkCtx struct {
	depth       int
	path        string // "1.2" for warnings; "" is the message itself
	inner       int    // 0: the message itself; >0: inside attached messages
	defaultType string
}

func (c parseWalkCtx) where() string {
	if c.path == "" {
		return "message"
	}
	return "part " + c.path
}

func (c parseWalkCtx) child(i int) string {
	if c.path == "" {
		return strconv.Itoa(i)
	}
	return c.path + "." + strconv.Itoa(i)
}

// safely runs f and turns a panic into a warning, so that a parser bug costs
// the rest of one message, never the process.
func (p *parseState) safely(what string, f func()) {
	defer func() {
		if v := recover(); v != nil {
			p.warnf("internal error: %s: %v", what, v)
		}
	}()
	f()
}

func (p *parseState) warnf(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if p.warnSeen == nil {
		p.warnSeen = map[string]bool{}
	}
	if p.warnSeen[w] {
		return
	}
	p.warnSeen[w] = true
	if len(p.msg.Warnings) >= parserMaxWarnings {
		if !p.suppressed {
			p.suppressed = true
			p.msg.Warnings = append(p.msg.Warnings, "further warnings suppressed")
		}
		return
	}
	p.msg.Warnings = append(p.msg.Warnings, w)
}

func (p *parseState) read(r io.Reader) {
	if r == nil {
		p.warnf("no input")
		return
	}
	lr := &mimeLimitReader{r: r, max: p.lim.MaxMessageBytes}
	defer func() {
		p.msg.Size = lr.n
		if lr.exceeded {
			p.warnf("message exceeds %d bytes; the rest was not read", p.lim.MaxMessageBytes)
		}
		if lr.err != nil {
			p.warnf("read message: %v; the message may be incomplete", lr.err)
		}
	}()
	br := p.sc.topReader(&mimeCRReader{r: lr})
	h, res := hdrRead(br, p.lim.MaxHeaderBytes)
	p.top = h
	p.headerProblems(parseWalkCtx{}, res)
	_, ctParams, _ := mimeMediaType(h.value("Content-Type"))
	p.topCharset = ctParams["charset"]
	// The header is decoded after the body has been walked, so that raw
	// 8-bit header bytes can be read in the charset of the first text part
	// when the message itself declares none.
	defer p.safely("decode header", func() { p.envelope(&p.top) })
	if len(h.fields) == 0 && !res.blankLine {
		if _, err := br.Peek(1); err != nil {
			p.warnf("empty message")
			return
		}
	}
	p.safely("walk body", func() { p.walk(&p.top, br, parseWalkCtx{defaultType: "text/plain"}) })
	p.drain(br)
}

func (p *parseState) headerProblems(ctx parseWalkCtx, res hdrReadResult) {
	for _, pr := range res.problems {
		p.warnf("%s: %s", ctx.where(), pr)
	}
}

// drain reads r to its end without keeping anything.
func (p *parseState) drain(r io.Reader) int64 {
	if p.sc.copyBuf == nil {
		p.sc.copyBuf = make([]byte, 8<<10)
	}
	n, _ := io.CopyBuffer(io.Discard, r, p.sc.copyBuf)
	return n
}

// count reads r to its end, or to max bytes, and returns how many bytes it
// read and whether there was more.
func (p *parseState) count(r io.Reader, max int64) (int64, bool) {
	if p.sc.copyBuf == nil {
		p.sc.copyBuf = make([]byte, 8<<10)
	}
	var c mimeCounter
	_, _ = io.CopyBuffer(&c, io.LimitReader(r, max), p.sc.copyBuf)
	if c.n < max {
		return c.n, false
	}
	var one [1]byte
	k, _ := io.ReadFull(r, one[:])
	return c.n, k > 0
}

// envelope fills the message fields that come from the top-level header.
func (p *parseState) envelope(h *hdrBlock) {
	m := p.msg
	fallback := p.topCharset
	if fallback == "" {
		fallback = p.bodyCharset
	}
	p.hd = hdrDecoder{fallback: fallback}
	d := &p.hd

	addrs := func(name string, bareOK bool) []domain.Address {
		var out []domain.Address
		for _, v := range h.values(name) {
			out = append(out, d.addresses(v, bareOK)...)
		}
		return out
	}
	if from := addrs("From", true); len(from) > 0 {
		m.From = from[0]
	}
	if sender := addrs("Sender", true); len(sender) > 0 {
		s := sender[0]
		m.Sender = &s
	}
	if !p.brief {
		m.ReplyTo = addrs("Reply-To", false)
		m.To = addrs("To", false)
		m.Cc = addrs("Cc", false)
	}
	if rp, ok := h.get("Return-Path"); ok {
		v := parseReturnPath(rp)
		m.ReturnPath = &v
	}
	if !strings.Contains(m.From.Addr, "@") {
		switch {
		case m.Sender != nil && strings.Contains(m.Sender.Addr, "@"):
			m.From = *m.Sender
			p.warnf("message: no usable From; using Sender")
		case m.ReturnPath != nil && *m.ReturnPath != "":
			m.From = domain.Address{Addr: *m.ReturnPath}
			p.warnf("message: no usable From; using Return-Path")
		case m.From.Addr == "":
			p.warnf("message: no usable From")
		}
	}

	m.Subject = parseCleanLine(d.text(h.value("Subject")))
	if ids := hdrMsgIDs(h.value("Message-Id")); len(ids) > 0 {
		m.MessageID = ids[0]
	}
	m.InReplyTo = hdrMsgIDs(strings.Join(h.values("In-Reply-To"), " "))
	m.References = hdrMsgIDs(strings.Join(h.values("References"), " "))
	if p.brief {
		return
	}
	if v, ok := h.get("Date"); ok {
		if t, ok := hdrDate(d.text(v)); ok {
			m.Date = t
		} else {
			p.warnf("message: unparseable Date %q", parseQuoteShort(v))
		}
	}

	m.Headers = make([]domain.HeaderField, 0, len(h.fields))
	for _, f := range h.fields {
		m.Headers = append(m.Headers, domain.HeaderField{Name: f.name, Value: parseCleanLine(d.text(f.value))})
	}
	p.flushHeaderProblems(d, parseWalkCtx{})
}

func (p *parseState) flushHeaderProblems(d *hdrDecoder, ctx parseWalkCtx) {
	for _, pr := range d.problems {
		p.warnf("%s: %s", ctx.where(), pr)
	}
	d.problems = d.problems[:0]
}

// parseReturnPath returns the address of a Return-Path value, "" for the
// null path "<>".
func parseReturnPath(v string) string {
	v, _ = hdrStripComments(v)
	v = strings.TrimSpace(v)
	if lt := strings.IndexByte(v, '<'); lt >= 0 {
		rest := v[lt+1:]
		if gt := strings.IndexByte(rest, '>'); gt >= 0 {
			rest = rest[:gt]
		}
		v = rest
	}
	if c := strings.LastIndexByte(v, ':'); c >= 0 && strings.HasPrefix(v, "@") {
		v = v[c+1:] // source route
	}
	return hdrNormAddr(strings.Trim(v, " \t\"'"))
}

// parseCleanLine turns a decoded header value into one line of text: tabs
// and other control characters become spaces, the ends are trimmed.
func parseCleanLine(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, s)
	}
	return strings.TrimSpace(csClean(s))
}

func parseQuoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}

// walk handles one entity whose header h has been read and whose body is br.
// It may leave br partly unread; the caller drains it.
func (p *parseState) walk(h *hdrBlock, br *bufio.Reader, ctx parseWalkCtx) {
	p.parts++
	if p.parts > p.lim.MaxParts {
		p.partLimitHit()
		return
	}
	ctRaw := h.value("Content-Type")
	mt, params, ok := mimeMediaType(ctRaw)
	if !ok {
		p.warnf("%s: malformed Content-Type %q; read leniently", ctx.where(), parseQuoteShort(ctRaw))
	}
	if fixed := mimeFixType(mt); fixed != mt {
		if mt != "" {
			p.warnf("%s: Content-Type %q has no subtype; taken as %s", ctx.where(), mt, fixed)
		}
		mt = fixed
	}
	if mt == "" {
		mt = ctx.defaultType
	}
	cte, known := mimeCTE(h.value("Content-Transfer-Encoding"))
	disp, dparams, _ := mimeMediaType(h.value("Content-Disposition"))
	e := parseEntity{mt: mt, params: params, cte: cte, cteKnown: known, disp: disp}
	e.filename = p.filename(dparams, params, ctx)

	switch {
	case strings.HasPrefix(mt, "multipart/"):
		p.multipart(e, br, ctx)
	case mt == "message/rfc822" || mt == "message/global" || mt == "message/news":
		p.attachedMessage(e, br, ctx)
	default:
		p.leaf(e, br, ctx)
	}
}

func (p *parseState) partLimitHit() {
	if !p.partsHit {
		p.partsHit = true
		p.warnf("message has more than %d MIME parts; the rest were skipped", p.lim.MaxParts)
	}
}

// parseEntity is the parsed MIME header of one part.
type parseEntity struct {
	mt       string
	params   map[string]string
	cte      string
	cteKnown bool
	disp     string
	filename string
}

// filename returns the attachment name from Content-Disposition's filename
// or Content-Type's name, decoded, without any directory part.
func (p *parseState) filename(dparams, params map[string]string, ctx parseWalkCtx) string {
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if name == "" {
		return ""
	}
	fallback := params["charset"]
	if fallback == "" {
		fallback = p.topCharset
	}
	d := hdrDecoder{fallback: fallback}
	name = parseCleanLine(d.text(name))
	p.flushHeaderProblems(&d, ctx)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 && i < len(name)-1 {
		name = name[i+1:]
	}
	return name
}

func (p *parseState) multipart(e parseEntity, br *bufio.Reader, ctx parseWalkCtx) {
	if ctx.inner == 0 && e.mt == "multipart/report" && p.auto.reportType == "" {
		p.auto.reportType = strings.ToLower(strings.TrimSpace(e.params["report-type"]))
		if p.auto.reportType == "" {
			p.auto.reportType = "unspecified"
		}
	}
	if ctx.depth >= p.lim.MaxDepth {
		p.warnf("%s: nesting deeper than %d levels; its parts were skipped", ctx.where(), p.lim.MaxDepth)
		return
	}
	boundary := e.params["boundary"]
	if boundary == "" {
		boundary = mimeGuessBoundary(br)
		if boundary == "" {
			p.warnf("%s: %s without boundary; body read as text", ctx.where(), e.mt)
			e.mt = "text/plain"
			p.leaf(e, br, ctx)
			return
		}
		p.warnf("%s: %s without boundary; guessed %q from the body", ctx.where(), e.mt, boundary)
	}
	sp := newMimeSplitter(br, boundary)
	sp.keepPreamble = p.lim.MaxTextBytes
	child := "text/plain"
	if e.mt == "multipart/digest" {
		child = "message/rfc822"
	}
	i := 0
	for sp.next() {
		i++
		if p.parts >= p.lim.MaxParts {
			p.partLimitHit()
			break
		}
		cctx := parseWalkCtx{depth: ctx.depth + 1, path: ctx.child(i), inner: ctx.inner, defaultType: child}
		pbr := p.sc.reader(sp)
		ph, res := hdrRead(pbr, p.lim.MaxHeaderBytes)
		p.headerProblems(cctx, res)
		p.walk(&ph, pbr, cctx)
		p.sc.release(pbr)
	}
	switch {
	case !sp.sawDelim:
		p.warnf("%s: no delimiter for boundary %q; body read as text", ctx.where(), boundary)
		if len(sp.preamble) > 0 {
			p.addBodyText(parseEntity{mt: "text/plain", params: map[string]string{"charset": e.params["charset"]}}, sp.preamble, false, ctx)
		}
	case !sp.closed && sp.eof:
		p.warnf("%s: multipart ends without its closing delimiter", ctx.where())
	}
}

// mimeGuessBoundary looks for a "--boundary" line near the start of a
// multipart body whose header lacks the boundary parameter.
func mimeGuessBoundary(br *bufio.Reader) string {
	buf, _ := br.Peek(4096)
	for len(buf) > 0 {
		line := buf
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line, buf = buf[:i], buf[i+1:]
		} else {
			buf = nil
		}
		line = bytes.TrimRight(line, " \t\r")
		if len(line) > 2 && len(line) <= 200 && bytes.HasPrefix(line, []byte("--")) &&
			bytes.IndexAny(line, " \t") < 0 {
			return string(bytes.TrimSuffix(line[2:], []byte("--")))
		}
	}
	return ""
}

// parseIsReport reports the parts that carry machine-readable reports; their
// text is kept (bounded) as evidence for the automatic-mail checks.
func parseIsReport(mt string) bool {
	switch mt {
	case "message/delivery-status", "message/global-delivery-status",
		"message/disposition-notification", "message/global-disposition-notification",
		"message/feedback-report", "text/rfc822-headers", "message/rfc822-headers",
		"message/global-headers":
		return true
	}
	return false
}

func (p *parseState) leaf(e parseEntity, br io.Reader, ctx parseWalkCtx) {
	if br == nil {
		return
	}
	st := &mimeDecodeStats{}
	if !e.cteKnown {
		p.warnf("%s: unknown Content-Transfer-Encoding %q; body taken as is", ctx.where(), e.cte)
	}
	isText := (e.mt == "text/plain" || e.mt == "text/html") && e.disp != "attachment" &&
		(e.filename == "" || ctx.depth == 0)
	if isText {
		p.bodyText(e, br, ctx)
		return
	}
	dec := p.sc.decoder(e.cte, br, st)
	defer func() {
		p.sc.releaseDecoder(dec)
		if st.invalid > 0 {
			p.warnf("%s: %d invalid %s sequences kept or skipped", ctx.where(), st.invalid, e.cte)
		}
	}()
	switch {
	case parseIsReport(e.mt):
		p.reportPart(e, dec, ctx)
	default:
		n, more := p.count(dec, p.lim.MaxPartBytes)
		if more {
			p.warnf("%s: larger than %d bytes; its size is a lower bound", ctx.where(), p.lim.MaxPartBytes)
		}
		p.addAttachment(domain.Attachment{Name: e.filename, ContentType: e.mt, Size: n}, ctx)
	}
}

func (p *parseState) addAttachment(a domain.Attachment, ctx parseWalkCtx) {
	if ctx.inner > 0 {
		return // attachments of attached messages travel inside them
	}
	p.msg.Attachments = append(p.msg.Attachments, a)
}

// reportPart keeps the start of a delivery-status (or similar) part as
// evidence and lists it as an attachment.
func (p *parseState) reportPart(e parseEntity, r io.Reader, ctx parseWalkCtx) {
	var keep bytes.Buffer
	n, _ := io.Copy(&keep, io.LimitReader(r, parserEvidenceBytes))
	rest, more := p.count(r, p.lim.MaxPartBytes)
	if more {
		p.warnf("%s: larger than %d bytes; its size is a lower bound", ctx.where(), p.lim.MaxPartBytes)
	}
	if ctx.inner == 0 {
		p.auto.addReport(e.mt, keep.String())
	}
	p.addAttachment(domain.Attachment{Name: e.filename, ContentType: e.mt, Size: n + rest}, ctx)
}

// bodyText reads a text/plain or text/html body, bounded, and adds it. The
// encoded bytes are read first, so that a body declared base64 that is
// plainly not base64 can be taken as it is.
func (p *parseState) bodyText(e parseEntity, r io.Reader, ctx parseWalkCtx) {
	rawCap := int64(p.lim.MaxTextBytes) * 4
	enc := &p.sc.encBuf
	enc.Reset()
	_, _ = enc.ReadFrom(io.LimitReader(r, rawCap))
	truncated := false
	if _, more := p.count(r, p.lim.MaxPartBytes); more || int64(enc.Len()) == rawCap {
		truncated = true
	}
	st := &mimeDecodeStats{}
	raw := enc.Bytes()
	var t transform.Transformer
	switch e.cte {
	case "quoted-printable":
		t = &mimeQPDecoder{st: st}
	case "base64":
		t = &mimeB64Decoder{st: st}
	}
	if t != nil {
		// Both decoders never produce more bytes than they consume.
		if cap(p.sc.decBuf) < len(raw)+3 {
			p.sc.decBuf = make([]byte, len(raw)+3)
		}
		dst := p.sc.decBuf[:cap(p.sc.decBuf)]
		n, _, _ := t.Transform(dst, raw, true)
		raw = dst[:n]
	}
	switch {
	case e.cte == "base64" && st.spaces > 16:
		p.warnf("%s: declared base64 but the body is text; taken as is", ctx.where())
		raw = enc.Bytes()
	case st.invalid > 0:
		p.warnf("%s: %d invalid %s sequences kept or skipped", ctx.where(), st.invalid, e.cte)
	}
	p.addBodyText(e, raw, truncated, ctx)
}

func (p *parseState) addBodyText(e parseEntity, raw []byte, truncated bool, ctx parseWalkCtx) {
	label := e.params["charset"]
	if ctx.inner == 0 && p.bodyCharset == "" {
		p.bodyCharset = label
	}
	if label == "" && e.mt == "text/html" {
		label = parseHTMLMetaCharset(raw)
	}
	text, problem := csDecode(label, raw)
	if problem != "" {
		p.warnf("%s: %s", ctx.where(), problem)
	}
	if truncated {
		p.warnf("%s: text longer than the limit; truncated", ctx.where())
	}
	text = parseNormalizeNewlines(text)
	if e.mt == "text/html" {
		text = parseTruncate(text, p.lim.MaxTextBytes)
		switch {
		case ctx.inner == 0 && p.msg.HTML == "":
			p.msg.HTML = text
		case ctx.inner > 0 && !p.innerDone && p.innerHTML == "":
			p.innerHTML = text
		}
		return
	}
	if strings.EqualFold(e.params["format"], "flowed") {
		text = parseUnflow(text, strings.EqualFold(e.params["delsp"], "yes"))
	}
	text, uu := parseExtractUU(text)
	for _, a := range uu {
		p.addAttachment(a, ctx)
	}
	if ctx.inner > 0 {
		if !p.innerDone {
			p.innerPlain = append(p.innerPlain, text)
		}
		return
	}
	if p.textLen >= p.lim.MaxTextBytes {
		p.warnf("message: text longer than %d bytes; truncated", p.lim.MaxTextBytes)
		return
	}
	if room := p.lim.MaxTextBytes - p.textLen; len(text) > room {
		text = parseTruncate(text, room)
		p.warnf("message: text longer than %d bytes; truncated", p.lim.MaxTextBytes)
	}
	p.plain = append(p.plain, text)
	p.textLen += len(text) + 1
}

// attachedMessage walks a message/rfc822 part: its text is a fallback for a
// message without text of its own, and it is listed as an attachment.
func (p *parseState) attachedMessage(e parseEntity, br io.Reader, ctx parseWalkCtx) {
	st := &mimeDecodeStats{}
	if !e.cteKnown {
		p.warnf("%s: unknown Content-Transfer-Encoding %q; body taken as is", ctx.where(), e.cte)
	}
	dec := p.sc.decoder(e.cte, br, st)
	defer p.sc.releaseDecoder(dec)
	cr := &mimeCountingReader{r: io.LimitReader(dec, p.lim.MaxPartBytes)}
	name := e.filename
	if ctx.depth >= p.lim.MaxDepth {
		p.warnf("%s: nesting deeper than %d levels; attached message not read", ctx.where(), p.lim.MaxDepth)
	} else {
		ibr := p.sc.reader(cr)
		defer p.sc.release(ibr)
		ih, res := hdrRead(ibr, p.lim.MaxHeaderBytes)
		ictx := parseWalkCtx{depth: ctx.depth + 1, path: ctx.path, inner: ctx.inner + 1, defaultType: "text/plain"}
		if ictx.path == "" {
			ictx.path = "1"
		}
		p.headerProblems(ictx, res)
		if name == "" {
			_, ip, _ := mimeMediaType(ih.value("Content-Type"))
			d := hdrDecoder{fallback: ip["charset"]}
			if subj := parseCleanLine(d.text(ih.value("Subject"))); subj != "" {
				name = parseSafeName(subj) + ".eml"
			}
		}
		p.walk(&ih, ibr, ictx)
		p.drain(ibr)
	}
	p.drain(cr)
	if cr.n == p.lim.MaxPartBytes {
		p.warnf("%s: larger than %d bytes; its size is a lower bound", ctx.where(), p.lim.MaxPartBytes)
	}
	if st.invalid > 0 {
		p.warnf("%s: %d invalid %s sequences kept or skipped", ctx.where(), st.invalid, e.cte)
	}
	if ctx.inner == 0 {
		p.auto.attachedMessage = true
	}
	if ctx.inner == 0 && (len(p.innerPlain) > 0 || p.innerHTML != "") {
		p.innerDone = true
	}
	p.addAttachment(domain.Attachment{Name: name, ContentType: e.mt, Size: cr.n}, ctx)
}

// parseSafeName makes a subject usable as a file name.
func parseSafeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '/', '\\', ':', '*', '?', '"', '<', '>', '|':
			return '_'
		}
		return r
	}, s)
	return parseTruncate(strings.TrimSpace(s), 120)
}

// finish assembles Text from the collected bodies.
func (p *parseState) finish() {
	m := p.msg
	text := strings.Join(p.plain, "\n")
	if strings.TrimSpace(text) == "" && m.HTML != "" {
		text = htmlToText(m.HTML, p.lim.MaxTextBytes)
		m.TextFromHTML = true
	}
	if strings.TrimSpace(text) == "" {
		switch {
		case strings.TrimSpace(strings.Join(p.innerPlain, "")) != "":
			text = strings.Join(p.innerPlain, "\n")
			m.TextFromHTML = false
		case p.innerHTML != "":
			text = htmlToText(p.innerHTML, p.lim.MaxTextBytes)
			m.TextFromHTML = true
		}
	}
	text = strings.TrimSpace(text)
	if text == "" {
		m.TextFromHTML = false
	}
	m.Text = parseTruncate(csClean(text), p.lim.MaxTextBytes)
}

// parseTruncate cuts s to at most n bytes at a rune boundary.
func parseTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// parseNormalizeNewlines turns CRLF and lone CR into LF.
func parseNormalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// parseUnflow joins the soft line breaks of format=flowed text (RFC 3676).
func parseUnflow(s string, delsp bool) string {
	lines := strings.Split(s, "\n")
	var out strings.Builder
	out.Grow(len(s))
	var para strings.Builder
	paraDepth := -1
	flushPara := func() {
		if paraDepth < 0 {
			return
		}
		out.WriteString(parseQuotePrefix(paraDepth))
		out.WriteString(para.String())
		out.WriteByte('\n')
		para.Reset()
		paraDepth = -1
	}
	for _, line := range lines {
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		content := strings.TrimPrefix(line[depth:], " ")
		if content == "-- " {
			flushPara()
			out.WriteString(parseQuotePrefix(depth) + content + "\n")
			continue
		}
		if paraDepth >= 0 && depth != paraDepth {
			flushPara()
		}
		if strings.HasSuffix(content, " ") {
			if delsp {
				content = content[:len(content)-1]
			}
			para.WriteString(content)
			paraDepth = depth
			continue
		}
		if paraDepth >= 0 {
			para.WriteString(content)
			flushPara()
			continue
		}
		out.WriteString(parseQuotePrefix(depth) + content + "\n")
	}
	flushPara()
	return strings.TrimSuffix(out.String(), "\n")
}

func parseQuotePrefix(depth int) string {
	if depth == 0 {
		return ""
	}
	return strings.Repeat(">", depth) + " "
}

// parseExtractUU removes uuencoded blocks ("begin 644 name" ... "end") from
// a text body and returns them as attachments with their decoded sizes.
func parseExtractUU(s string) (string, []domain.Attachment) {
	if !strings.Contains(s, "begin ") {
		return s, nil
	}
	lines := strings.Split(s, "\n")
	var out []string
	var atts []domain.Attachment
	for i := 0; i < len(lines); i++ {
		name, ok := parseUUBegin(lines[i])
		if !ok || i+1 >= len(lines) || !parseUULine(lines[i+1]) {
			out = append(out, lines[i])
			continue
		}
		var size int64
		j := i + 1
		for ; j < len(lines); j++ {
			l := strings.TrimRight(lines[j], " \t")
			if l == "end" {
				break
			}
			if l == "" || l == "`" {
				continue
			}
			size += int64((l[0] - ' ') & 63)
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		if k := strings.IndexByte(ct, ';'); k >= 0 {
			ct = ct[:k]
		}
		atts = append(atts, domain.Attachment{Name: name, ContentType: ct, Size: size})
		i = j
	}
	return strings.Join(out, "\n"), atts
}

func parseUUBegin(line string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, " \t"), "begin ")
	if !ok {
		return "", false
	}
	mode, name, ok := strings.Cut(rest, " ")
	if !ok || len(mode) < 3 || len(mode) > 4 || strings.Trim(mode, "01234567") != "" || strings.TrimSpace(name) == "" {
		return "", false
	}
	return strings.TrimSpace(name), true
}

// parseUULine reports whether line is a uuencoded data line: its length
// matches the count in its first character.
func parseUULine(line string) bool {
	line = strings.TrimRight(line, " \t")
	if line == "" {
		return false
	}
	n := int((line[0] - ' ') & 63)
	least := 1 + (n*4+2)/3 // without the padding of the last group
	most := 2 + (n+2)/3*4  // with padding and a check character
	return n > 0 && len(line) >= least && len(line) <= most
}
