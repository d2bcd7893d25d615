package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/text/transform"
)

// This file holds the MIME building blocks of the parser: lenient parsing of
// Content-Type and Content-Disposition, transfer-encoding decoders that never
// give up, and a streaming multipart splitter.
//
// They are written here rather than taken from go-message because go-message
// gives up where real mail needs leniency (LIBNOTES §3): its header reader
// stops at the first malformed line, an unknown Content-Transfer-Encoding
// yields no reader at all, invalid quoted-printable aborts the read, a
// malformed Content-Type silently disables charset decoding, and part
// headers, nesting depth and part counts are unlimited.

// mimeMediaType parses a Content-Type or Content-Disposition value. It tries
// the standard parser first and falls back to a lenient scan of
// "name=value" pairs. ok is false when the fallback was needed. The returned
// type is lower case; params keys are lower case.
func mimeMediaType(v string) (mt string, params map[string]string, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", map[string]string{}, true
	}
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		if strings.Contains(v, "*=") || strings.Contains(v, "*0") {
			// The standard parser drops RFC 2231 values (or segments of
			// them) in charsets other than UTF-8 and ASCII; take those
			// from the lenient scan.
			_, lp, ext := mimeLenientParamsExt(v)
			for k, val := range lp {
				if _, have := params[k]; !have || ext[k] {
					params[k] = val
				}
			}
		}
		return strings.ToLower(mt), params, true
	}
	mt, params = mimeLenientParams(v)
	return mt, params, false
}

// mimeParamRE matches one parameter: a token name, "=", and a quoted string
// (possibly missing its closing quote) or a bare value.
var mimeParamRE = regexp.MustCompile(`([A-Za-z0-9!#$%&'*+.^_` + "`" + `|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;\s]*)`)

// mimeLenientParams parses a malformed media type value: the type is the first
// token, parameters are whatever name=value pairs follow.
func mimeLenientParams(v string) (string, map[string]string) {
	mt, params, _ := mimeLenientParamsExt(v)
	return mt, params
}

// mimeLenientParamsExt is mimeLenientParams that also reports which
// parameters were assembled from RFC 2231 segments.
func mimeLenientParamsExt(v string) (string, map[string]string, map[string]bool) {
	head, rest := v, ""
	if i := strings.IndexAny(v, "; \t"); i >= 0 {
		head, rest = v[:i], v[i:]
	}
	if strings.Contains(head, "=") {
		// "charset=utf-8" with no type at all.
		head, rest = "", v
	}
	mt := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("/!#$&^_.+-", r) {
			return r
		}
		return -1
	}, strings.ToLower(head))
	params := map[string]string{}
	raw2231 := map[string]map[int]string{}
	ext2231 := map[string]map[int]bool{}
	for _, m := range mimeParamRE.FindAllStringSubmatch(rest, -1) {
		name := strings.ToLower(m[1])
		val := m[2]
		if strings.HasPrefix(val, `"`) {
			val = strings.TrimPrefix(val, `"`)
			val = strings.TrimSuffix(val, `"`)
			val = strings.ReplaceAll(val, `\"`, `"`)
			val = strings.ReplaceAll(val, `\\`, `\`)
		}
		base, idx, ext, is2231 := mimeSplit2231(name)
		if is2231 {
			if raw2231[base] == nil {
				raw2231[base] = map[int]string{}
				ext2231[base] = map[int]bool{}
			}
			if _, dup := raw2231[base][idx]; !dup {
				raw2231[base][idx] = val
				ext2231[base][idx] = ext
			}
			continue
		}
		if _, dup := params[name]; !dup {
			params[name] = val
		}
	}
	from2231 := map[string]bool{}
	for base, segs := range raw2231 {
		if _, have := params[base]; have {
			continue
		}
		params[base] = mimeJoin2231(segs, ext2231[base])
		from2231[base] = true
	}
	return mt, params, from2231
}

// mimeSplit2231 splits an RFC 2231 parameter name: "filename*0*" gives
// ("filename", 0, true, true); "filename*" gives ("filename", 0, true, true).
func mimeSplit2231(name string) (base string, idx int, ext bool, ok bool) {
	i := strings.IndexByte(name, '*')
	if i <= 0 {
		return name, 0, false, false
	}
	base, rest := name[:i], name[i+1:]
	if rest == "" {
		return base, 0, true, true
	}
	ext = strings.HasSuffix(rest, "*")
	rest = strings.TrimSuffix(rest, "*")
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > 1000 {
		return name, 0, false, false
	}
	return base, n, ext, true
}

// mimeJoin2231 joins RFC 2231 continuation segments in order and decodes the
// percent-encoded ones in the charset named by the first segment.
func mimeJoin2231(segs map[int]string, ext map[int]bool) string {
	idx := make([]int, 0, len(segs))
	for i := range segs {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var raw bytes.Buffer
	cs := ""
	for n, i := range idx {
		v := segs[i]
		if ext[i] {
			if n == 0 {
				// charset'language'value
				if a := strings.IndexByte(v, '\''); a >= 0 {
					if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
						cs = v[:a]
						v = v[a+1+b+1:]
					}
				}
			}
			raw.WriteString(mimePercentDecode(v))
			continue
		}
		raw.WriteString(v)
	}
	s, _ := csDecode(cs, raw.Bytes())
	return s
}

func mimePercentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if h, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(h))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mimeFixType turns a media type from a damaged header into one the walker
// understands: a type without subtype gets a default one.
func mimeFixType(mt string) string {
	if mt == "" {
		return ""
	}
	if strings.IndexByte(mt, '/') < 0 {
		switch mt {
		case "text":
			return "text/plain"
		case "multipart":
			return "multipart/mixed"
		case "message":
			return "message/rfc822"
		}
		return "application/octet-stream"
	}
	return mt
}

// mimeCTE normalises a Content-Transfer-Encoding value. known is false for
// encodings the parser cannot decode (the body is then taken as it is).
func mimeCTE(v string) (cte string, known bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	if i := strings.IndexAny(v, "; \t(,"); i >= 0 {
		v = v[:i]
	}
	v = strings.Trim(v, "\"'")
	switch v {
	case "", "7bit", "8bit", "binary", "quoted-printable", "base64":
		return v, true
	case "7-bit", "7bits", "7_bit", "ascii", "us-ascii":
		return "7bit", true
	case "8-bit", "8bits", "8_bit":
		return "8bit", true
	case "quoted_printable", "quotedprintable", "qp", "quoted-printible", "x-quoted-printable":
		return "quoted-printable", true
	case "base-64", "base_64", "x-base64":
		return "base64", true
	}
	return v, false
}

// mimeDecodeStats counts what a lenient transfer decoder had to repair.
type mimeDecodeStats struct {
	invalid int // invalid quoted-printable escapes or non-alphabet base64 bytes
	spaces  int // base64: spaces inside lines, a sign the body is not base64 at all
}

// decoder wraps r with the decoder for a normalised transfer encoding,
// reading through buffers kept in sc (a decoding reader per attachment
// allocated two 4 KiB buffers); releaseDecoder gives it back. Unknown
// encodings (and the identity ones) return r itself.
func (sc *parseScratch) decoder(cte string, r io.Reader, st *mimeDecodeStats) io.Reader {
	var t transform.Transformer
	switch cte {
	case "quoted-printable":
		t = &mimeQPDecoder{st: st}
	case "base64":
		t = &mimeB64Decoder{st: st}
	default:
		return r
	}
	var d *mimeDecodeReader
	if len(sc.decoders) > 0 {
		d = sc.decoders[len(sc.decoders)-1]
		sc.decoders = sc.decoders[:len(sc.decoders)-1]
	} else {
		d = &mimeDecodeReader{dst: make([]byte, mimeDecodeBuf), src: make([]byte, mimeDecodeBuf)}
	}
	d.reset(r, t)
	return d
}

// releaseDecoder gives back a reader decoder returned (r itself when it
// decoded nothing).
func (sc *parseScratch) releaseDecoder(r io.Reader) {
	if d, ok := r.(*mimeDecodeReader); ok && len(sc.decoders) < 4 {
		d.reset(nil, nil)
		sc.decoders = append(sc.decoders, d)
	}
}

// mimeDecodeBuf is the size of a decoding reader's two buffers (x/text's
// transform.Reader's).
const mimeDecodeBuf = 4096

// errDecodeByteCount is x/text's errInconsistentByteCount: a transformer
// reported success without consuming its input (the decoders never do).
var errDecodeByteCount = errors.New("transform: inconsistent byte count returned")

// mimeDecodeReader is x/text's transform.Reader (the same algorithm, read
// for read) with buffers that can be reused for the next part.
type mimeDecodeReader struct {
	r   io.Reader
	t   transform.Transformer
	err error

	dst        []byte
	dst0, dst1 int
	src        []byte
	src0, src1 int

	transformComplete bool
}

func (r *mimeDecodeReader) reset(rd io.Reader, t transform.Transformer) {
	if t != nil {
		t.Reset()
	}
	r.r, r.t, r.err = rd, t, nil
	r.dst0, r.dst1, r.src0, r.src1 = 0, 0, 0, 0
	r.transformComplete = false
}

func (r *mimeDecodeReader) Read(p []byte) (int, error) {
	n, err := 0, error(nil)
	for {
		// Copy out any transformed bytes and return the final error if we
		// are done.
		if r.dst0 != r.dst1 {
			n = copy(p, r.dst[r.dst0:r.dst1])
			r.dst0 += n
			if r.dst0 == r.dst1 && r.transformComplete {
				return n, r.err
			}
			return n, nil
		} else if r.transformComplete {
			return 0, r.err
		}
		// Transform some source bytes, or flush the transformer when out
		// of source bytes, even after the read error.
		if r.src0 != r.src1 || r.err != nil {
			r.dst0 = 0
			r.dst1, n, err = r.t.Transform(r.dst, r.src[r.src0:r.src1], r.err == io.EOF)
			r.src0 += n
			switch {
			case err == nil:
				if r.src0 != r.src1 {
					r.err = errDecodeByteCount
				}
				r.transformComplete = r.err != nil
				continue
			case err == transform.ErrShortDst && (r.dst1 != 0 || n != 0):
				continue
			case err == transform.ErrShortSrc && r.src1-r.src0 != len(r.src) && r.err == nil:
				// Read more bytes below and try again.
			default:
				r.transformComplete = true
				if r.err == nil || r.err == io.EOF {
					r.err = err
				}
				continue
			}
		}
		// Move untransformed source bytes to the front and read more.
		if r.src0 != 0 {
			r.src0, r.src1 = 0, copy(r.src, r.src[r.src0:r.src1])
		}
		n, r.err = r.r.Read(r.src[r.src1:])
		r.src1 += n
	}
}

// mimeQPDecoder decodes quoted-printable leniently: an invalid escape is kept
// literally and counted, trailing whitespace before a line break is removed,
// and soft line breaks ("=" at the end of a line, even with trailing
// whitespace) are joined.
type mimeQPDecoder struct {
	st *mimeDecodeStats
	// byteWise turns off the loop for runs of escapes (tests hold the
	// two ways to the same output).
	byteWise bool
}

func (d *mimeQPDecoder) Reset() {}

// mimeQPMaxSpaceRun bounds the whitespace the decoder holds back while it
// waits to see whether a line break follows.
const mimeQPMaxSpaceRun = 256

func (d *mimeQPDecoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		c := src[nSrc]
		switch {
		case c == '=':
			// A run of escapes (QP-encoded Hebrew is one every third byte)
			// is decoded in a tight loop; anything else below.
			for !d.byteWise && nSrc+2 < len(src) && src[nSrc] == '=' && nDst < len(dst) {
				h1, h2 := mimeHexValue[src[nSrc+1]], mimeHexValue[src[nSrc+2]]
				if h1 < 0 || h2 < 0 {
					break
				}
				dst[nDst] = byte(h1)<<4 | byte(h2)
				nDst++
				nSrc += 3
			}
			if nSrc == len(src) || src[nSrc] != '=' {
				continue
			}
			if nSrc+1 >= len(src) {
				if !atEOF {
					return nDst, nSrc, transform.ErrShortSrc
				}
				// A lone "=" at the very end: a soft break without a line.
				nSrc++
				continue
			}
			c1 := src[nSrc+1]
			switch {
			case c1 == '\n':
				nSrc += 2
				continue
			case c1 == '\r':
				if nSrc+2 >= len(src) && !atEOF {
					return nDst, nSrc, transform.ErrShortSrc
				}
				nSrc += 2
				if nSrc < len(src) && src[nSrc] == '\n' {
					nSrc++
				}
				continue
			case c1 == ' ' || c1 == '\t':
				j := nSrc + 1
				for j < len(src) && (src[j] == ' ' || src[j] == '\t') && j-nSrc < mimeQPMaxSpaceRun {
					j++
				}
				if j == len(src) && !atEOF && j-nSrc < mimeQPMaxSpaceRun {
					return nDst, nSrc, transform.ErrShortSrc
				}
				if j == len(src) || src[j] == '\n' || src[j] == '\r' {
					// "=" followed by trailing whitespace: a soft break.
					nSrc = j
					if nSrc < len(src) && src[nSrc] == '\r' {
						nSrc++
					}
					if nSrc < len(src) && src[nSrc] == '\n' {
						nSrc++
					}
					continue
				}
			case mimeUnhex(c1) >= 0:
				if nSrc+2 >= len(src) {
					if !atEOF {
						return nDst, nSrc, transform.ErrShortSrc
					}
					break
				}
				if h2 := mimeUnhex(src[nSrc+2]); h2 >= 0 {
					if nDst >= len(dst) {
						return nDst, nSrc, transform.ErrShortDst
					}
					dst[nDst] = byte(mimeUnhex(c1)<<4 | h2)
					nDst++
					nSrc += 3
					continue
				}
			}
			// Invalid escape: keep the "=" literally.
			if d.st != nil {
				d.st.invalid++
			}
			if nDst >= len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			dst[nDst] = '='
			nDst++
			nSrc++
		case c == ' ' || c == '\t':
			j := nSrc
			for j < len(src) && (src[j] == ' ' || src[j] == '\t') && j-nSrc < mimeQPMaxSpaceRun {
				j++
			}
			if j == len(src) && !atEOF && j-nSrc < mimeQPMaxSpaceRun {
				return nDst, nSrc, transform.ErrShortSrc
			}
			if j < len(src) && (src[j] == '\n' || src[j] == '\r') {
				nSrc = j // trailing whitespace is not part of the text
				continue
			}
			if j == len(src) && atEOF {
				nSrc = j
				continue
			}
			n := j - nSrc
			if nDst+n > len(dst) {
				return nDst, nSrc, transform.ErrShortDst
			}
			copy(dst[nDst:], src[nSrc:j])
			nDst += n
			nSrc = j
		default:
			// Copy the run of ordinary bytes up to the next "=" or blank.
			j := nSrc + 1
			for j < len(src) && src[j] != '=' && src[j] != ' ' && src[j] != '\t' {
				j++
			}
			n := copy(dst[nDst:], src[nSrc:j])
			if n == 0 {
				return nDst, nSrc, transform.ErrShortDst
			}
			nDst += n
			nSrc += n
		}
	}
	return nDst, nSrc, nil
}

// mimeHexValue is the value of each hex digit, -1 for any other byte.
var mimeHexValue = func() (t [256]int8) {
	for i := range t {
		t[i] = int8(mimeUnhex(byte(i)))
	}
	return t
}()

func mimeUnhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// mimeB64Decoder decodes base64 leniently: bytes outside the alphabet are
// skipped (and counted unless they are whitespace), padding ends a quantum
// wherever it appears (concatenated base64 blocks), and a final incomplete
// quantum is flushed.
type mimeB64Decoder struct {
	st     *mimeDecodeStats
	acc    uint32
	nacc   int
	inLine bool // a base64 character was seen on the current line
}

func (d *mimeB64Decoder) Reset() { d.acc, d.nacc, d.inLine = 0, 0, false }

func (d *mimeB64Decoder) Transform(dst, src []byte, atEOF bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		if len(dst)-nDst < 3 {
			return nDst, nSrc, transform.ErrShortDst
		}
		if d.nacc == 0 && len(src)-nSrc >= 4 {
			// Fast path: a whole quantum of alphabet bytes.
			a, b := csB64Values[src[nSrc]], csB64Values[src[nSrc+1]]
			c, e := csB64Values[src[nSrc+2]], csB64Values[src[nSrc+3]]
			if a|b|c|e >= 0 {
				v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(e)
				dst[nDst], dst[nDst+1], dst[nDst+2] = byte(v>>16), byte(v>>8), byte(v)
				nDst += 3
				nSrc += 4
				d.inLine = true
				continue
			}
		}
		c := src[nSrc]
		v := csB64Value(c)
		switch {
		case v >= 0:
			d.inLine = true
			d.acc = d.acc<<6 | uint32(v)
			d.nacc++
			if d.nacc == 4 {
				dst[nDst] = byte(d.acc >> 16)
				dst[nDst+1] = byte(d.acc >> 8)
				dst[nDst+2] = byte(d.acc)
				nDst += 3
				d.acc, d.nacc = 0, 0
			}
		case c == '=':
			nDst += d.flush(dst[nDst:])
		case c == '\r' || c == '\n':
			d.inLine = false
		case c == ' ' || c == '\t':
			if d.inLine && d.st != nil {
				d.st.spaces++
			}
		default:
			if d.st != nil {
				d.st.invalid++
			}
		}
		nSrc++
	}
	if atEOF {
		nDst += d.flush(dst[nDst:])
	}
	return nDst, nSrc, nil
}

// flush writes the bytes of an incomplete quantum (at padding or the end).
func (d *mimeB64Decoder) flush(dst []byte) int {
	n := 0
	switch d.nacc {
	case 2:
		dst[0] = byte(d.acc >> 4)
		n = 1
	case 3:
		dst[0] = byte(d.acc >> 10)
		dst[1] = byte(d.acc >> 2)
		n = 2
	}
	d.acc, d.nacc = 0, 0
	return n
}

// mimeCounter is an io.Writer that only counts what is written to it.
type mimeCounter struct{ n int64 }

func (c *mimeCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// mimeCountingReader counts the bytes read through it.
type mimeCountingReader struct {
	r io.Reader
	n int64
}

func (c *mimeCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// mimeLimitReader reads at most max bytes of the message and notes whether
// the message was longer (it probes for one more byte at the limit).
type mimeLimitReader struct {
	r        io.Reader
	n, max   int64
	exceeded bool
	eof      bool
	err      error // the first read error other than io.EOF
}

func (l *mimeLimitReader) Read(p []byte) (int, error) {
	if l.eof {
		return 0, io.EOF
	}
	if l.n >= l.max {
		var probe [1]byte
		for range 8 { // tolerate a few (0, nil) reads
			k, err := l.r.Read(probe[:])
			if k > 0 {
				l.exceeded = true
				break
			}
			if err != nil {
				break
			}
		}
		l.eof = true
		return 0, io.EOF
	}
	if rem := l.max - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if err != nil {
		l.eof = true
		if err != io.EOF && l.err == nil {
			l.err = err
		}
	}
	return n, err
}

// mimeCRReader turns a lone CR (old Macintosh line ends) into CRLF, so the
// line-based readers downstream see line breaks. CRLF passes unchanged, and
// input without lone CRs is passed through without copying.
type mimeCRReader struct {
	r      io.Reader
	carry  []byte // converted bytes that did not fit into the caller's buffer
	lastCR bool   // the last byte read was a CR whose successor is unknown
	err    error
}

func (c *mimeCRReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.carry) > 0 {
		n := copy(p, c.carry)
		c.carry = c.carry[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	in := p[:n]
	if err != nil {
		c.err = err
	}
	if !c.needsFix(in) {
		if n > 0 {
			c.lastCR = in[n-1] == '\r'
		}
		if err != nil && c.lastCR {
			c.lastCR = false
			c.carry = append(c.carry[:0], '\n')
		}
		if n == 0 && len(c.carry) > 0 {
			return c.Read(p)
		}
		if n == 0 {
			return 0, err
		}
		return n, nil
	}
	out := make([]byte, 0, 2*n+1)
	for len(in) > 0 {
		if c.lastCR {
			if in[0] != '\n' {
				out = append(out, '\n')
			}
			c.lastCR = false
		}
		i := bytes.IndexByte(in, '\r')
		if i < 0 {
			out = append(out, in...)
			break
		}
		out = append(out, in[:i+1]...)
		in = in[i+1:]
		c.lastCR = true
	}
	if err != nil && c.lastCR {
		out = append(out, '\n')
		c.lastCR = false
	}
	k := copy(p, out)
	c.carry = append(c.carry[:0], out[k:]...)
	return k, nil
}

// needsFix reports whether in holds a lone CR (or starts after one).
func (c *mimeCRReader) needsFix(in []byte) bool {
	if c.lastCR && len(in) > 0 && in[0] != '\n' {
		return true
	}
	for i := 0; ; {
		j := bytes.IndexByte(in[i:], '\r')
		if j < 0 {
			return false
		}
		i += j + 1
		if i < len(in) && in[i] != '\n' {
			return true
		}
		if i >= len(in) {
			return false // decided by the next read
		}
	}
}

// mimeSplitter reads the parts of a multipart body from src. It begins in
// the preamble; next moves to the following part, and the splitter itself is
// the reader for the current part's bytes (header and body). A part ends at
// a line consisting of "--boundary" (plus whitespace); the line break before
// it belongs to the delimiter. "--boundary--" ends the multipart. Missing
// closing delimiters simply end at the end of src.
type mimeSplitter struct {
	src  *bufio.Reader
	dash []byte // "--" + boundary

	inPart      bool // reading a part (or the preamble)
	atLineStart bool
	pendNL      []byte // line break held back until the next line is known
	closed      bool   // saw the close delimiter
	eof         bool   // src is exhausted
	sawDelim    bool   // at least one delimiter seen
	started     bool   // next has been called

	keepPreamble int    // bytes of the preamble to keep
	preamble     []byte // kept in case no delimiter is ever found
}

func newMimeSplitter(src *bufio.Reader, boundary string) *mimeSplitter {
	return &mimeSplitter{
		src:         src,
		dash:        []byte("--" + boundary),
		inPart:      true, // the preamble
		atLineStart: true,
	}
}

// next skips the rest of the current part (or the preamble) and reports
// whether another part follows.
func (s *mimeSplitter) next() bool {
	if s.inPart {
		if !s.started && s.keepPreamble > 0 {
			var b bytes.Buffer
			if _, err := io.Copy(&b, io.LimitReader(s, int64(s.keepPreamble))); err != nil {
				s.eof = true
			}
			s.preamble = b.Bytes()
		}
		if _, err := io.Copy(io.Discard, s); err != nil {
			s.eof = true
		}
	}
	s.started = true
	if s.closed || s.eof {
		return false
	}
	s.inPart = true
	s.atLineStart = true
	s.pendNL = s.pendNL[:0]
	return true
}

// delimiter examines the line at the read position. It returns the line's
// length (with its line break) when it is a delimiter, and whether it is the
// close delimiter.
func (s *mimeSplitter) delimiter() (n int, isDelim, isClose bool) {
	peek, _ := s.src.Peek(len(s.dash) + 2)
	if !bytes.HasPrefix(peek, s.dash) {
		return 0, false, false
	}
	rest := peek[len(s.dash):]
	if len(rest) >= 2 && rest[0] == '-' && rest[1] == '-' {
		isClose = true
	}
	// Find the end of the line within what bufio can hold.
	size := len(s.dash) + 2
	for {
		peek, err := s.src.Peek(size)
		if i := bytes.IndexByte(peek, '\n'); i >= 0 {
			line := peek[:i]
			if !isClose && !mimeOnlySpace(line[len(s.dash):]) {
				return 0, false, false
			}
			return i + 1, true, isClose
		}
		if err != nil {
			// End of input (or a line longer than the buffer).
			if errors.Is(err, bufio.ErrBufferFull) {
				if isClose {
					return len(peek), true, true
				}
				return 0, false, false
			}
			if !isClose && !mimeOnlySpace(peek[len(s.dash):]) {
				return 0, false, false
			}
			return len(peek), true, isClose
		}
		size *= 2
		if size > s.src.Size() {
			size = s.src.Size()
		}
	}
}

func mimeOnlySpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// Read returns bytes of the current part.
func (s *mimeSplitter) Read(p []byte) (int, error) {
	if !s.inPart {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		if s.atLineStart {
			if _, err := s.src.Peek(1); err != nil {
				// End of input inside a part: no closing delimiter.
				s.eof = true
				s.inPart = false
				if len(s.pendNL) > 0 && n < len(p) {
					n += copy(p[n:], s.pendNL)
					s.pendNL = s.pendNL[:0]
				}
				if n > 0 {
					return n, nil
				}
				return 0, io.EOF
			}
			if dn, isDelim, isClose := s.delimiter(); isDelim {
				if _, err := s.src.Discard(dn); err != nil {
					s.eof = true
				}
				s.sawDelim = true
				s.inPart = false
				s.pendNL = s.pendNL[:0]
				if isClose {
					s.closed = true
				}
				if n > 0 {
					return n, nil
				}
				return 0, io.EOF
			}
			if len(s.pendNL) > 0 {
				if len(p)-n < len(s.pendNL) {
					return n, nil
				}
				n += copy(p[n:], s.pendNL)
				s.pendNL = s.pendNL[:0]
			}
			s.atLineStart = false
			continue
		}
		// Inside a line: copy up to its line break, which is held back.
		buffered := s.src.Buffered()
		if buffered == 0 {
			if _, err := s.src.Peek(1); err != nil {
				s.atLineStart = true // let the line-start logic end the part
				continue
			}
			buffered = s.src.Buffered()
		}
		buf, _ := s.src.Peek(buffered)
		i := bytes.IndexByte(buf, '\n')
		content := buf
		if i >= 0 {
			content = buf[:i]
			if len(content) > 0 && content[len(content)-1] == '\r' {
				content = content[:len(content)-1]
			}
		} else if len(content) > 0 && content[len(content)-1] == '\r' {
			// A CR at the end of the buffer may start a CRLF: leave it
			// buffered until the byte after it is known.
			if len(content) > 1 {
				content = content[:len(content)-1]
			} else if more, err := s.src.Peek(2); err == nil && len(more) == 2 {
				continue
			}
		}
		k := copy(p[n:], content)
		n += k
		consumed := k
		if k == len(content) && i >= 0 {
			// The whole line is out: hold its line break back.
			s.pendNL = append(s.pendNL[:0], buf[len(content):i+1]...)
			consumed = i + 1
			s.atLineStart = true
		}
		if _, err := s.src.Discard(consumed); err != nil {
			s.eof = true
		}
		if k < len(content) {
			return n, nil // p is full
		}
	}
	return n, nil
}
