package notify

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
)

// mailMaxOriginalHeader caps the header of a forwarded original that is read
// into memory (the same 1 MiB go-message applies). A bigger header is not
// parsed: the original then travels whole as a message/rfc822 part.
const mailMaxOriginalHeader = 1 << 20

// mailBoundary derives a multipart boundary from the message's own
// Message-ID, so that composing the same message twice gives the same bytes
// (a retry re-composing from the processed folder is byte-identical, and
// golden files need no normalisation). The "=_" prefix cannot occur in
// quoted-printable or base64 text, the only encodings used for the parts the
// gateway writes; the hash part is unknown to a customer before the message
// exists, so a forwarded original cannot contain it either.
func mailBoundary(messageID, label string) string {
	sum := sha256.Sum256([]byte(messageID + "\x00" + label))
	return "=_" + label + "_" + hex.EncodeToString(sum[:16])
}

// mailContentType formats a Content-Type value with its parameters quoted as
// needed.
func mailContentType(mediaType string, params map[string]string) string {
	return mime.FormatMediaType(mediaType, params)
}

// mailTextPart encodes text for a text/* part: line breaks become CRLF,
// invalid UTF-8 is replaced, and the body is quoted-printable, or base64
// when most bytes are non-ASCII (Hebrew quoted-printable is three times the
// size of base64's 4/3). It returns the part's header and encoded body.
func mailTextPart(mediaType, text string) (mailPartHeader, []byte) {
	h, text, b64 := mailTextPartHeader(mediaType, text)
	return h, mailAppendTextBody(make([]byte, 0, mailTextBodySize(text, b64)), text, b64)
}

// mailTextPartHeader is mailTextPart's header, the text to encode (valid
// UTF-8) and whether it goes as base64.
func mailTextPartHeader(mediaType, text string) (mailPartHeader, string, bool) {
	if !utf8.ValidString(text) { // ToValidUTF8 copies even valid text
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	b64 := !mailMostlyASCII(text)
	cte := "quoted-printable"
	if b64 {
		cte = "base64"
	}
	ct := mediaType + "; charset=utf-8"
	if mediaType != "text/plain" && mediaType != "text/html" {
		ct = mailContentType(mediaType, map[string]string{"charset": "utf-8"})
	}
	return mailPartHeader{{"Content-Type", ct}, {"Content-Transfer-Encoding", cte}}, text, b64
}

// mailTextBodySize is about the size of text's encoded body.
func mailTextBodySize(text string, b64 bool) int {
	if b64 {
		return (len(text)+len(text)/16)*4/3 + len(text)/38 + 64
	}
	return len(text) + len(text)/8 + 64
}

// mailAppendTextBody appends the encoded body of a text part to dst.
func mailAppendTextBody(dst []byte, text string, b64 bool) []byte {
	if b64 {
		return mailAppendBase64Lines(dst, mailCRLF([]byte(text)))
	}
	return mailQuotedPrintable(dst, text)
}

// mailWriteTextPart writes the text part's header to mw and its body after
// it, encoded straight into the output when that is a buffer.
func mailWriteTextPart(mw *mailMultipart, mediaType, text string) error {
	h, text, b64 := mailTextPartHeader(mediaType, text)
	if err := mw.part(h); err != nil {
		return err
	}
	if buf, ok := mw.w.(*bytes.Buffer); ok {
		buf.Grow(mailTextBodySize(text, b64))
		_, err := buf.Write(mailAppendTextBody(buf.AvailableBuffer(), text, b64))
		return err
	}
	_, err := mw.w.Write(mailAppendTextBody(make([]byte, 0, mailTextBodySize(text, b64)), text, b64))
	return err
}

// mailPartHeader is the header of a MIME part, its fields in the order
// they are written.
type mailPartHeader [][2]string

// Get returns the value of the first field named k.
func (h mailPartHeader) Get(k string) string {
	for _, f := range h {
		if f[0] == k {
			return f[1]
		}
	}
	return ""
}

// write writes the fields and the blank line that ends a header, formatted
// as go-message's textproto.WriteHeader formats a field added with
// Header.Add: a field that fits a 76-column line as it is, a longer one
// folded by go-message itself.
func (h mailPartHeader) write(b *bytes.Buffer) {
	for _, f := range h {
		k, v := f[0], f[1]
		if v != "" && len(k)+2+len(v) <= 76 && !strings.ContainsAny(v, "\r\n") {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
			continue
		}
		var th textproto.Header
		th.Add(k, v)
		var one bytes.Buffer
		if err := textproto.WriteHeader(&one, th); err != nil {
			// A value with a line break: go-message writes nothing more
			// of the header (and MultipartWriter ignores the error).
			b.Write(one.Bytes())
			return
		}
		b.Write(bytes.TrimSuffix(one.Bytes(), []byte("\r\n")))
	}
	b.WriteString("\r\n")
}

// mailMultipart writes a multipart body byte for byte as go-message's
// textproto.MultipartWriter does, without its per-part header maps and
// buffers: delimiter lines, part headers, the parts' bytes as written.
type mailMultipart struct {
	w        io.Writer
	boundary string
	parts    int
	buf      bytes.Buffer
}

// part starts the next part with header h; its body is written to m.w
// after it.
func (m *mailMultipart) part(h mailPartHeader) error {
	m.delimiter()
	h.write(&m.buf)
	_, err := m.w.Write(m.buf.Bytes())
	return err
}

// rawPart starts the next part with a header of raw, CRLF-terminated
// fields, written as they are.
func (m *mailMultipart) rawPart(fields [][]byte) error {
	m.delimiter()
	for _, f := range fields {
		m.buf.Write(f)
	}
	m.buf.WriteString("\r\n")
	_, err := m.w.Write(m.buf.Bytes())
	return err
}

// delimiter puts the next part's delimiter line in m.buf.
func (m *mailMultipart) delimiter() {
	m.buf.Reset()
	if m.parts > 0 {
		m.buf.WriteString("\r\n")
	}
	m.parts++
	m.buf.WriteString("--")
	m.buf.WriteString(m.boundary)
	m.buf.WriteString("\r\n")
}

// close writes the closing delimiter.
func (m *mailMultipart) close() error {
	_, err := io.WriteString(m.w, "\r\n--"+m.boundary+"--\r\n")
	return err
}

// mailQPPlain marks the bytes quoted-printable leaves as they are (besides
// line breaks): printable ASCII other than "=", space and tab.
var mailQPPlain = func() (t [256]bool) {
	for b := '!'; b <= '~'; b++ {
		t[b] = b != '='
	}
	t[' '], t['\t'] = true, true
	return t
}()

// mailQP is the state of one quoted-printable encoding.
type mailQP struct {
	dst []byte
	col int  // bytes on the current line
	cr  bool // the last line break was a CR (an LF after it is part of it)
}

func (q *mailQP) softBreak() {
	q.dst = append(q.dst, '=', '\r', '\n')
	q.col = 0
}

func (q *mailQP) encode(b byte) {
	const hex = "0123456789ABCDEF"
	if 75-q.col < 3 {
		q.softBreak()
	}
	q.dst = append(q.dst, '=', hex[b>>4], hex[b&0x0f])
	q.col += 3
}

// trailingSpace encodes a space or tab that ends the line.
func (q *mailQP) trailingSpace() {
	if q.col == 0 {
		return
	}
	if b := q.dst[len(q.dst)-1]; b == ' ' || b == '\t' {
		q.dst = q.dst[:len(q.dst)-1]
		q.col--
		q.encode(b)
	}
}

// mailQuotedPrintable appends the quoted-printable encoding of text to dst:
// byte for byte what mime/quotedprintable's Writer (text mode) writes, line
// breaks as CRLF, lines of at most 76 characters, but copying runs of plain
// characters instead of a byte at a time (the encoding of acknowledgement
// and forward parts showed in the profile of a backlog drain).
// FuzzMailQuotedPrintable holds it to the standard library's output.
func mailQuotedPrintable(dst []byte, text string) []byte {
	q := mailQP{dst: dst}
	for i := 0; i < len(text); {
		b := text[i]
		switch {
		case b == '\r' || b == '\n':
			i++
			if q.cr && b == '\n' {
				q.cr = false
				continue
			}
			q.cr = b == '\r'
			q.trailingSpace()
			q.dst = append(q.dst, '\r', '\n')
			q.col = 0
		case mailQPPlain[b]:
			j := i + 1
			for j < len(text) && mailQPPlain[text[j]] {
				j++
			}
			for run := text[i:j]; len(run) > 0; {
				if q.col == 75 {
					q.softBreak()
				}
				k := min(75-q.col, len(run))
				q.dst = append(q.dst, run[:k]...)
				q.col += k
				run = run[k:]
			}
			q.cr = false
			i = j
		default:
			q.encode(b)
			i++
		}
	}
	q.trailingSpace()
	return q.dst
}

// mailBase64Lines writes the base64 encoding of b in lines of 76 characters
// separated by CRLF, without a final line break.
func mailBase64Lines(w *bytes.Buffer, b []byte) {
	w.Grow(len(b)*4/3 + len(b)/38 + 8)
	w.Write(mailAppendBase64Lines(w.AvailableBuffer(), b))
}

// mailAppendBase64Lines appends mailBase64Lines's output to dst: 57 bytes
// encode to one line of 76 characters without padding, so the lines are
// the whole encoding cut every 76 characters.
func mailAppendBase64Lines(dst, b []byte) []byte {
	for len(b) > 57 {
		dst = base64.StdEncoding.AppendEncode(dst, b[:57])
		dst = append(dst, '\r', '\n')
		b = b[57:]
	}
	return base64.StdEncoding.AppendEncode(dst, b)
}

// mailCRLF returns b with every line ending (LF, CR or CRLF) as CRLF.
func mailCRLF(b []byte) []byte {
	c := mailCRLFConverter{}
	out, _ := c.convert(make([]byte, 0, len(b)+len(b)/32), b, true)
	return out
}

// mailCRLFConverter rewrites bare LF and bare CR to CRLF, as SMTP requires
// (RFC 5321 §2.3.8), across successive chunks. CRLF passes unchanged, so
// canonical input is copied as is; no decoded byte of a base64 or
// quoted-printable part changes.
type mailCRLFConverter struct {
	lastCR bool
}

// convert appends the converted chunk to dst. final completes a trailing
// bare CR. It copies a line at a time: a byte-at-a-time loop showed in the
// profile of a backlog drain (a forward copies the whole original).
func (c *mailCRLFConverter) convert(dst, chunk []byte, final bool) ([]byte, bool) {
	for len(chunk) > 0 {
		if c.lastCR {
			c.lastCR = false
			dst = append(dst, '\n')
			if chunk[0] == '\n' { // CRLF
				chunk = chunk[1:]
				continue
			}
		}
		seg := chunk
		lf := bytes.IndexByte(chunk, '\n')
		if lf >= 0 {
			seg = chunk[:lf]
		}
		// Bare CRs inside the line, each made CRLF. The line end is found
		// once per line, not once per CR (review finding: a line of many
		// bare CRs was quadratic).
		for {
			cr := bytes.IndexByte(seg, '\r')
			if cr < 0 || cr == len(seg)-1 {
				break
			}
			dst = append(dst, seg[:cr+1]...)
			dst = append(dst, '\n')
			seg = seg[cr+1:]
		}
		endsCR := len(seg) > 0 && seg[len(seg)-1] == '\r'
		switch {
		case endsCR && lf >= 0: // CRLF
			dst = append(dst, seg...)
			dst = append(dst, '\n')
		case endsCR: // a CR ends the chunk: the next byte decides
			dst = append(dst, seg...)
			c.lastCR = true
		case lf >= 0: // a bare LF
			dst = append(dst, seg...)
			dst = append(dst, '\r', '\n')
		default:
			dst = append(dst, seg...)
		}
		if lf < 0 {
			break
		}
		chunk = chunk[lf+1:]
	}
	if final && c.lastCR {
		dst = append(dst, '\n')
		c.lastCR = false
	}
	return dst, final
}

// mailCRLFReader reads r with line endings made CRLF.
type mailCRLFReader struct {
	r       io.Reader
	conv    mailCRLFConverter
	in, out []byte
	off     int
	err     error
}

func (c *mailCRLFReader) Read(p []byte) (int, error) {
	for c.off == len(c.out) {
		if c.err != nil {
			return 0, c.err
		}
		if c.in == nil {
			// 32 KiB for a stream; no more than an in-memory original.
			size := 32 << 10
			if l, ok := c.r.(interface{ Len() int }); ok {
				size = min(size, max(l.Len()+1, 512))
			}
			c.in = make([]byte, size)
			c.out = make([]byte, 0, size+size/16)
		}
		n, err := c.r.Read(c.in)
		c.out, _ = c.conv.convert(c.out[:0], c.in[:n], err != nil)
		c.off, c.err = 0, err
	}
	n := copy(p, c.out[c.off:])
	c.off += n
	return n, nil
}

// mailSplitInMemory is mailSplitOriginal for an original already in
// memory (a reader with a Bytes method, as the pipeline passes): the header
// and body are found in place, and line endings are converted in one pass,
// or not at all when they are CRLF already (as IMAP servers deliver them),
// instead of through a converting reader and a buffered one, which cost
// three copies of every forwarded message. ok is false for an original
// whose header does not end (within mailMaxOriginalHeader): the streaming
// path handles those.
func mailSplitInMemory(b []byte) (*mailOriginal, bool) {
	if !mailIsCRLF(b) {
		b = mailCRLF(b)
	}
	if len(b) == 0 {
		return &mailOriginal{empty: true}, true
	}
	end := 0 // the header's length, its blank line included
	if bytes.HasPrefix(b, []byte("\r\n")) {
		end = 2
	} else if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
	}
	if end == 0 || end > mailMaxOriginalHeader {
		return nil, false
	}
	o := &mailOriginal{body: bytes.NewReader(b[end:])}
	h, err := textproto.ReadHeader(bufio.NewReaderSize(bytes.NewReader(b[:end]), max(16, min(end, 4096))))
	if err != nil {
		o.asRFC822, o.header = true, b[:end]
		return o, true
	}
	o.content = mailContentFields(h)
	return o, true
}

// mailContentFields returns the raw Content-* fields of h (but
// Content-Length), in order.
func mailContentFields(h textproto.Header) [][]byte {
	var content [][]byte
	for f := h.Fields(); f.Next(); {
		key := strings.ToLower(f.Key())
		if !strings.HasPrefix(key, "content-") || key == "content-length" {
			continue
		}
		raw, err := f.Raw()
		if err != nil {
			continue // a field go-message cannot reproduce is dropped
		}
		content = append(content, append([]byte(nil), raw...))
	}
	return content
}

// mailIsCRLF reports whether every line ending in b is CRLF (no bare LF or
// CR).
func mailIsCRLF(b []byte) bool {
	// Every LF follows a CR, and there are as many CRs as LFs: no bare CR.
	// (IndexByte and Count are vectorized; IndexAny per line was a tenth of
	// composing a forward.)
	lfs := 0
	for rest, at := b, 0; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if at+i == 0 || b[at+i-1] != '\r' {
			return false
		}
		lfs++
		rest, at = rest[i+1:], at+i+1
	}
	return bytes.Count(b, []byte{'\r'}) == lfs
}

// mailOriginal is a customer's message split for forwarding: the Content-*
// fields of its top-level header (raw, as the customer's client wrote them)
// and the rest of its bytes, all with CRLF line endings. asRFC822 is set
// when the header could not be parsed; then header holds the raw header
// bytes and the whole message is forwarded as an attached message/rfc822.
type mailOriginal struct {
	content  [][]byte // Content-* fields, CRLF-terminated, in order
	header   []byte   // the raw header block when asRFC822
	body     io.Reader
	asRFC822 bool
	empty    bool
}

// mailSplitOriginal reads the top-level header of r (at most
// mailMaxOriginalHeader bytes) and leaves the body to be streamed. Line
// endings of the whole original are made CRLF on the way.
func mailSplitOriginal(r io.Reader) (*mailOriginal, error) {
	if m, ok := r.(interface{ Bytes() []byte }); ok {
		if o, ok := mailSplitInMemory(m.Bytes()); ok {
			return o, nil
		}
		r = bytes.NewReader(m.Bytes())
	}
	// A 64 KiB buffer for a stream; an original already in memory gets one
	// no larger than itself (most are a few KB: the buffer was most of a
	// forward's allocation).
	size := 64 << 10
	if l, ok := r.(interface{ Len() int }); ok {
		size = min(size, max(l.Len()+512, 4096))
	}
	br := bufio.NewReaderSize(&mailCRLFReader{r: r}, size)
	var hdr []byte
	complete := false
	lineStart := true // the next read starts a line (not the rest of a long one)
	for len(hdr) <= mailMaxOriginalHeader {
		line, err := br.ReadSlice('\n')
		hdr = append(hdr, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			lineStart = false
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read original header: %w", err)
		}
		if lineStart && bytes.Equal(line, []byte("\r\n")) {
			complete = true
			break
		}
		lineStart = true
	}
	if len(hdr) == 0 {
		return &mailOriginal{empty: true}, nil
	}
	o := &mailOriginal{body: br}
	if !complete && len(hdr) > mailMaxOriginalHeader {
		o.asRFC822, o.header = true, hdr
		return o, nil
	}
	parse := hdr
	if !complete {
		// The original ended inside its header: terminate it for parsing.
		parse = append([]byte(nil), hdr...)
		if !bytes.HasSuffix(parse, []byte("\r\n")) {
			parse = append(parse, '\r', '\n')
		}
		parse = append(parse, '\r', '\n')
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(parse)))
	if err != nil {
		o.asRFC822, o.header = true, hdr
		return o, nil
	}
	o.content = mailContentFields(h)
	if !complete {
		// Headers only, no body: nothing but the header was there.
		o.body = bytes.NewReader(nil)
	}
	return o, nil
}
