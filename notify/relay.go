package notify

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"

	"github.com/northwind-it/ticketgw/domain"
)

// Limits of relay composition. Attachments and other parts that are copied
// verbatim are streamed and never limited here (the caller caps the size of
// the message it fetches); only a text part that is to be edited is read into
// memory.
const (
	// relayMaxEditText caps the encoded size of one text part handed to
	// RelayMail.EditText.
	relayMaxEditText = 8 << 20
	// relayMaxDepth caps the nesting of multiparts the relay descends into.
	relayMaxDepth = 16
)

// ErrRelayTextTooLarge is returned (wrapped) by WriteRelay when a text part
// that EditText would have to edit exceeds the size the relay reads into
// memory. Relaying it unedited could show the customer command lines and the
// internal ticket summary, so the relay fails instead.
var ErrRelayTextTooLarge = errors.New("text part too large to edit")

// RelayMail is a staff member's reply relayed to the customer (SPEC §2 flow
// 3). Every string is untrusted and validated or reduced to one line like
// those of AckMail.
type RelayMail struct {
	// From is the support address; its display name shows the staff
	// member, e.g. "Dana Cohen (Northwind IT Support)".
	From domain.Address
	// To is the requester. At least one address is required.
	To []domain.Address
	// Cc are the people the customer copied. The caller leaves out the
	// gateway's own and the staff addresses; duplicates of To are dropped.
	Cc []domain.Address
	// ReplyTo is the support address (optional).
	ReplyTo string
	// Subject already carries the ticket tag, e.g. "[ACME-0042] Re: ...".
	Subject string
	// MessageID is the relay's own id (NewMessageID("relay", ticket, domain)),
	// without angle brackets. The multipart boundaries derive from it.
	MessageID string
	// InReplyTo is the customer's latest message id on the ticket.
	InReplyTo string
	// References is the ticket's chain as the customer's thread knows it:
	// the customer's original id, the acknowledgement's id, ...
	References []string
	LoopMarker string // value of domain.LoopHeader: the support address
	TicketID   string // X-Ticket-ID, required
	Date       time.Time
	// Original is the staff member's raw message (RFC 5322), read once.
	Original io.Reader
	// EditText transforms the staff message's text before it is relayed:
	// the caller strips command lines and the quoted copy of the ticket
	// summary. It is called once for each text/plain and each text/html
	// part of the message body (not for attachments, nor inside attached
	// messages), in document order, with the media type and the decoded
	// text (UTF-8, CRLF line endings as sent), and returns the new text.
	// A part whose text comes back unchanged is copied as it was. nil
	// relays the body unchanged. EditText must be deterministic when the
	// relay is composed again for a retry.
	EditText func(mediaType, text string) string
}

// ComposeRelay renders a staff reply relayed to the customer as raw bytes
// and its envelope. See WriteRelay for the format.
func ComposeRelay(r RelayMail) ([]byte, Envelope, error) {
	var buf bytes.Buffer
	env, err := WriteRelay(&buf, r)
	if err != nil {
		return nil, Envelope{}, err
	}
	return buf.Bytes(), env, nil
}

// WriteRelay streams a staff reply relayed to the customer to w, reading
// r.Original once, and returns its envelope: From the support address, To
// the To and Cc addresses without duplicates (compared case-insensitively).
//
// The relay carries the staff member's body as it was written: the MIME
// structure (multipart/mixed, nested multipart/alternative,
// multipart/related with the Content-IDs of inline images), every
// attachment and every attached message copied verbatim with its own
// Content-Transfer-Encoding, so each decodes to the same bytes. Only the
// text parts that EditText changes are rewritten: decoded (transfer
// encoding, then charset to UTF-8), edited, and re-encoded as UTF-8
// quoted-printable or base64 (an HTML part's <meta> charset declaration is
// updated to match). Multipart boundaries are replaced by ones derived from
// the relay's Message-ID (see mailBoundary), so the output is deterministic
// and no edited text can contain one; preambles and epilogues are dropped.
// A multipart/signed body is unwrapped to its signed content (the
// signature, by a staff member's key over a message the gateway changes,
// could only fail). Line endings are made CRLF.
//
// Some bodies cannot be relayed and fail with an error: an encrypted or
// opaque-signed one (S/MIME, PGP), a multipart without a boundary or
// without any part, and, when EditText is set, multiparts nested more than
// relayMaxDepth deep (without an editor such a subtree is copied verbatim).
//
// Of the staff message's header only the MIME content fields of the body
// are kept (Content-Type, Content-Transfer-Encoding, Content-Disposition,
// Content-ID, Content-Description, Content-Language, Content-Location);
// its From, To, Cc, Subject, Message-ID, References, Received, DKIM,
// Authentication-Results, Return-Path and X-* fields are not copied. The
// relay's own header: Date, From, Reply-To, To, Cc, Subject, Message-ID,
// In-Reply-To, References (one field, space-separated), X-Ticket-ID, the
// loop marker and MIME-Version.
//
// A relay is a human's reply, so it has no Auto-Submitted field (RFC 3834
// §5 reserves it for automatic messages). It carries
// X-Auto-Response-Suppress: OOF, AutoReply, which asks Exchange not to send
// out-of-office and other automatic replies to it (they would be caught as
// automatic mail anyway, but need not be made), while delivery and
// non-delivery reports still come back: a relay the customer never got is
// something staff must hear of.
//
// A text part larger than relayMaxEditText that EditText would edit fails
// the relay with ErrRelayTextTooLarge; a read error of r.Original is
// returned wrapped (errors.Is finds it). Input that ends inside a multipart
// (no closing delimiter) is relayed as far as it goes, with the structure
// closed properly.
func WriteRelay(w io.Writer, r RelayMail) (Envelope, error) {
	return writeRelay(w, r, relayMaxEditText, relayMaxDepth)
}

// writeRelay is WriteRelay with its limits as parameters, for tests.
func writeRelay(w io.Writer, r RelayMail, maxText int64, maxDepth int) (Envelope, error) {
	h, env, err := relayHeader(r)
	if err != nil {
		return Envelope{}, fmt.Errorf("compose relay: %w", err)
	}
	src := &relaySource{r: r.Original}
	orig, err := mailSplitOriginal(src)
	switch {
	case src.err != nil:
		return Envelope{}, fmt.Errorf("compose relay: read staff message: %w", src.err)
	case err != nil:
		return Envelope{}, fmt.Errorf("compose relay: %w", err)
	case orig.empty:
		return Envelope{}, errors.New("compose relay: staff message is empty")
	case orig.asRFC822:
		return Envelope{}, errors.New("compose relay: staff message header cannot be parsed")
	}
	top, err := relayParseFields(orig.content)
	if err != nil {
		return Envelope{}, fmt.Errorf("compose relay: %w", err)
	}
	top.body = orig.body

	id, _ := mailOwnID(r.MessageID) // validated by relayHeader
	tw := &relayTailWriter{w: w}
	rw := &relayWriter{
		messageID: "<" + id + ">", // as mailCommonHeaders writes it, like ComposeAck
		edit:      r.EditText,
		maxText:   maxText,
		maxDepth:  maxDepth,
		src:       src,
	}
	emit := func(fields [][]byte) (io.Writer, error) {
		out := mailHeader{fields: append([][]byte(nil), h.fields...)}
		seen := map[string]bool{}
		for _, f := range fields {
			k := relayFieldKey(f)
			if !relayTopContent[k] || seen[k] {
				continue
			}
			seen[k] = true
			out.fields = append(out.fields, f)
		}
		if err := out.write(tw); err != nil {
			return nil, fmt.Errorf("write header: %w", err)
		}
		return tw, nil
	}
	if err := rw.entity(top, emit, 0, "text/plain"); err != nil {
		return Envelope{}, fmt.Errorf("compose relay: %w", err)
	}
	if !tw.endsWithCRLF() {
		if _, err := tw.Write([]byte("\r\n")); err != nil {
			return Envelope{}, fmt.Errorf("compose relay: write body: %w", err)
		}
	}
	return env, nil
}

// relayHeader validates r and builds the relay's own header fields and its
// envelope. Every problem is reported, not only the first.
func relayHeader(r RelayMail) (mailHeader, Envelope, error) {
	var errs []error
	from, err := mailFormatAddress(r.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("from: %w", err))
	}
	if len(r.To) == 0 {
		errs = append(errs, errors.New("to: no recipient"))
	}
	seen := map[string]bool{}
	var toList, ccList []domain.Address
	for _, a := range r.To {
		if k := strings.ToLower(a.Addr); !seen[k] {
			seen[k] = true
			toList = append(toList, a)
		}
	}
	for _, a := range r.Cc {
		if k := strings.ToLower(a.Addr); !seen[k] {
			seen[k] = true
			ccList = append(ccList, a)
		}
	}
	to, err := mailFormatAddressList(toList)
	if err != nil {
		errs = append(errs, fmt.Errorf("to: %w", err))
	}
	cc, err := mailFormatAddressList(ccList)
	if err != nil {
		errs = append(errs, fmt.Errorf("cc: %w", err))
	}
	var replyTo string
	if r.ReplyTo != "" {
		if replyTo, err = mailFormatAddress(domain.Address{Addr: r.ReplyTo}); err != nil {
			errs = append(errs, fmt.Errorf("reply-to: %w", err))
		}
	}
	if r.TicketID == "" {
		errs = append(errs, errors.New("ticket id is empty"))
	}
	if r.Original == nil {
		errs = append(errs, errors.New("staff message is missing"))
	}
	common, err := mailCommonHeaders(r.MessageID, r.InReplyTo, r.References, r.LoopMarker, r.TicketID, r.Date)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return mailHeader{}, Envelope{}, err
	}

	var h mailHeader
	hdr := []struct{ k, v string }{
		{"Date", common.date},
		{"From", from},
		{"Reply-To", replyTo},
		{"To", to},
		{"Cc", cc},
		{"Subject", mailEncodeText(r.Subject)},
		{"Message-ID", common.messageID},
		{"In-Reply-To", common.inReplyTo},
		{"References", common.references},
		{"X-Auto-Response-Suppress", "OOF, AutoReply"},
		{"X-Ticket-ID", r.TicketID},
		{domain.LoopHeader, r.LoopMarker},
		{"MIME-Version", "1.0"},
	}
	for _, f := range hdr {
		if f.v == "" {
			continue
		}
		if err := h.add(f.k, f.v); err != nil {
			return mailHeader{}, Envelope{}, err
		}
	}
	env := Envelope{From: r.From.Addr}
	for _, a := range append(toList, ccList...) {
		env.To = append(env.To, a.Addr)
	}
	return h, env, nil
}

// relayTopContent lists the fields (lower-case) of the staff message's
// top-level header that are copied to the relay: those that describe its
// body.
var relayTopContent = map[string]bool{
	"content-type":              true,
	"content-transfer-encoding": true,
	"content-disposition":       true,
	"content-id":                true,
	"content-description":       true,
	"content-language":          true,
	"content-location":          true,
}

// relaySource wraps the staff message's reader and records how its reading
// ended: a clean EOF, or an error (which must reach the caller even where
// the multipart reader reports it as text).
type relaySource struct {
	r   io.Reader
	eof bool
	err error
}

func (s *relaySource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil && s.err == nil:
		s.err = err
	}
	return n, err
}

// relayTailWriter remembers the last two bytes written, so that a
// single-part relay can be ended with a line break.
type relayTailWriter struct {
	w    io.Writer
	tail [2]byte
	n    int
}

func (t *relayTailWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	for _, b := range p[:n] {
		t.tail[0], t.tail[1] = t.tail[1], b
		t.n++
	}
	return n, err
}

func (t *relayTailWriter) endsWithCRLF() bool {
	return t.n >= 2 && t.tail == [2]byte{'\r', '\n'}
}

// relayEntity is one MIME entity of the staff message: its header fields
// raw (CRLF-terminated, in order), the same parsed, and its body.
type relayEntity struct {
	fields [][]byte
	header textproto.Header
	body   io.Reader
}

// relayEmit writes the header of an entity with the given fields and
// returns the writer for its body.
type relayEmit func(fields [][]byte) (io.Writer, error)

// relayWriter walks the staff message's MIME tree and writes the relayed
// copy.
type relayWriter struct {
	messageID string
	edit      func(mediaType, text string) string
	maxText   int64
	maxDepth  int
	src       *relaySource

	boundaries int    // multipart boundaries issued so far
	ended      bool   // the input ended inside a multipart
	buf        []byte // copy buffer
}

// entity relays one entity. defaultType is its media type when it has no
// Content-Type (text/plain, or message/rfc822 in a multipart/digest).
func (rw *relayWriter) entity(e relayEntity, emit relayEmit, depth int, defaultType string) error {
	mt, params := defaultType, map[string]string{}
	if v := e.header.Get("Content-Type"); v != "" {
		mt, params = relayParseValue(v)
	}
	attachment := relayIsAttachment(e.header, params)
	encrypted := mt == "multipart/encrypted" || mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime"
	switch {
	case encrypted && (depth == 0 || !attachment):
		// Outlook marks an S/MIME body as an attachment (smime.p7m): at
		// the top it is the body all the same.
		return fmt.Errorf("the body is encrypted or opaque-signed (%s) and cannot be relayed", mt)
	case attachment:
		return rw.verbatim(e, emit)
	case strings.HasPrefix(mt, "multipart/"):
		switch {
		case params["boundary"] == "":
			return fmt.Errorf("%s without a boundary cannot be read", mt)
		case depth >= rw.maxDepth && rw.edit != nil:
			return fmt.Errorf("multiparts nested more than %d deep: their text cannot be edited", rw.maxDepth)
		case depth >= rw.maxDepth:
			return rw.verbatim(e, emit)
		case mt == "multipart/signed":
			return rw.unwrapSigned(e, emit, depth, params["boundary"])
		}
		return rw.multipart(e, emit, depth, mt, params)
	case (mt == "text/plain" || mt == "text/html") && rw.edit != nil:
		return rw.text(e, emit, mt, params)
	}
	return rw.verbatim(e, emit)
}

// verbatim copies an entity's header fields and body unchanged.
func (rw *relayWriter) verbatim(e relayEntity, emit relayEmit) error {
	w, err := emit(e.fields)
	if err != nil {
		return err
	}
	return rw.copy(w, e.body)
}

// multipart relays a multipart entity part by part under a new boundary.
func (rw *relayWriter) multipart(e relayEntity, emit relayEmit, depth int, mt string, params map[string]string) error {
	rw.boundaries++
	boundary := mailBoundary(rw.messageID, fmt.Sprintf("r%d", rw.boundaries))
	np := maps.Clone(params)
	np["boundary"] = boundary
	ct := mime.FormatMediaType(mt, np)
	if ct == "" {
		// A parameter that cannot be written back: keep the type alone.
		ct = mime.FormatMediaType(mt, map[string]string{"boundary": boundary})
	}
	fields, err := relayReplaceFields(e.fields, map[string]string{"Content-Type": ct})
	if err != nil {
		return err
	}
	w, err := emit(fields)
	if err != nil {
		return err
	}
	mr := textproto.NewMultipartReader(e.body, params["boundary"])
	mw := textproto.NewMultipartWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return fmt.Errorf("set boundary: %w", err)
	}
	childType := "text/plain"
	if mt == "multipart/digest" {
		childType = "message/rfc822"
	}
	partEmit := func(fields [][]byte) (io.Writer, error) {
		pw, err := mw.CreatePart((&mailHeader{fields: fields}).textproto())
		if err != nil {
			return nil, fmt.Errorf("write part: %w", err)
		}
		return pw, nil
	}
	n := 0
	for !rw.ended {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case rw.src.err != nil:
				return fmt.Errorf("read staff message: %w", rw.src.err)
			case n == 0:
				// Before the first delimiter the reader skips lines: the
				// body ended without one.
				return fmt.Errorf("%s has no parts", mt)
			}
			return fmt.Errorf("read %s part %d: %w", mt, n+1, err)
		}
		n++
		pe := relayEntity{fields: relayFields(p.Header), header: p.Header, body: p}
		if err := rw.entity(pe, partEmit, depth+1, childType); err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("%s has no parts", mt)
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("close multipart: %w", err)
	}
	return nil
}

// unwrapSigned relays the signed content of a multipart/signed entity in
// its place and drops the signature.
func (rw *relayWriter) unwrapSigned(e relayEntity, emit relayEmit, depth int, boundary string) error {
	mr := textproto.NewMultipartReader(e.body, boundary)
	p, err := mr.NextPart()
	if err != nil {
		if rw.src.err != nil {
			return fmt.Errorf("read staff message: %w", rw.src.err)
		}
		return fmt.Errorf("read multipart/signed content: %w", err)
	}
	return rw.entity(relayEntity{fields: relayFields(p.Header), header: p.Header, body: p}, emit, depth+1, "text/plain")
}

// text relays a text/plain or text/html body part through EditText.
func (rw *relayWriter) text(e relayEntity, emit relayEmit, mt string, params map[string]string) error {
	raw, err := io.ReadAll(io.LimitReader(e.body, rw.maxText+1))
	if err := rw.readError(err); err != nil {
		return err
	}
	if int64(len(raw)) > rw.maxText {
		return fmt.Errorf("%s part of more than %d bytes: %w", mt, rw.maxText, ErrRelayTextTooLarge)
	}
	decoded, err := relayDecodeTransfer(e.header.Get("Content-Transfer-Encoding"), raw)
	if err != nil {
		return fmt.Errorf("decode %s part: %w", mt, err)
	}
	text := relayDecodeCharset(params["charset"], decoded)
	edited := rw.edit(mt, text)
	if edited == text {
		w, err := emit(e.fields)
		if err != nil {
			return err
		}
		return rw.write(w, raw)
	}
	if mt == "text/html" {
		edited = relayMetaCharset.ReplaceAllString(edited, "${1}utf-8")
	}
	ph, body := mailTextPart(mt, edited)
	np := maps.Clone(params)
	np["charset"] = "utf-8"
	ct := mime.FormatMediaType(mt, np)
	if ct == "" {
		ct = ph.Get("Content-Type")
	}
	fields, err := relayReplaceFields(e.fields, map[string]string{
		"Content-Type":              ct,
		"Content-Transfer-Encoding": ph.Get("Content-Transfer-Encoding"),
		"Content-Length":            "",
	})
	if err != nil {
		return err
	}
	w, err := emit(fields)
	if err != nil {
		return err
	}
	return rw.write(w, body)
}

// copy streams src to dst through one reused buffer, telling read errors
// (see readError) from write errors.
func (rw *relayWriter) copy(dst io.Writer, src io.Reader) error {
	if rw.buf == nil {
		rw.buf = make([]byte, 32<<10)
	}
	for {
		n, rerr := src.Read(rw.buf)
		if n > 0 {
			if err := rw.write(dst, rw.buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rw.readError(rerr)
		}
	}
}

func (rw *relayWriter) write(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write relay: %w", err)
	}
	return nil
}

// readError classifies an error from reading a body. The staff message's
// own read error is returned as such. io.ErrUnexpectedEOF after a clean
// end of the input is the multipart reader saying the input ended before a
// closing delimiter: the part is complete as far as it goes, and the relay
// closes every open multipart without reading further.
func (rw *relayWriter) readError(err error) error {
	switch {
	case err == nil:
		return nil
	case rw.src.err != nil:
		return fmt.Errorf("read staff message: %w", rw.src.err)
	case errors.Is(err, io.ErrUnexpectedEOF) && rw.src.eof:
		rw.ended = true
		return nil
	}
	return fmt.Errorf("read staff message: %w", err)
}

// relayFields returns the raw fields of h in order.
func relayFields(h textproto.Header) [][]byte {
	var out [][]byte
	for f := h.Fields(); f.Next(); {
		raw, err := f.Raw()
		if err != nil {
			continue // not reproducible; parsed fields always are
		}
		out = append(out, raw)
	}
	return out
}

// relayParseFields turns raw fields (as mailSplitOriginal returns them)
// into an entity without a body.
func relayParseFields(fields [][]byte) (relayEntity, error) {
	block := bytes.Join(fields, nil)
	block = append(block, '\r', '\n')
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(block)))
	if err != nil {
		return relayEntity{}, fmt.Errorf("parse staff message content fields: %w", err)
	}
	return relayEntity{fields: fields, header: h}, nil
}

// relayFieldKey returns the lower-case name of a raw header field.
func relayFieldKey(f []byte) string {
	k, _, _ := bytes.Cut(f, []byte(":"))
	return strings.ToLower(string(bytes.TrimSpace(k)))
}

// relayReplaceFields returns fields with each field named in repl replaced:
// the first occurrence by the new value (folded), later ones dropped; a
// name not present is appended. An empty value removes the field.
func relayReplaceFields(fields [][]byte, repl map[string]string) ([][]byte, error) {
	lower := make(map[string]string, len(repl))
	for k := range repl {
		lower[strings.ToLower(k)] = k
	}
	done := map[string]bool{}
	out := make([][]byte, 0, len(fields)+len(repl))
	add := func(name string) error {
		done[strings.ToLower(name)] = true
		if repl[name] == "" {
			return nil
		}
		line, err := mailFold(name, repl[name])
		if err != nil {
			return err
		}
		out = append(out, []byte(line))
		return nil
	}
	for _, f := range fields {
		name, ok := lower[relayFieldKey(f)]
		switch {
		case !ok:
			out = append(out, f)
		case !done[strings.ToLower(name)]:
			if err := add(name); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(repl)) {
		if !done[strings.ToLower(name)] {
			if err := add(name); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// relayIsAttachment reports whether an entity is a file rather than body
// text: disposition attachment, or a file name.
func relayIsAttachment(h textproto.Header, ctParams map[string]string) bool {
	if ctParams["name"] != "" {
		return true
	}
	v := h.Get("Content-Disposition")
	if v == "" {
		return false
	}
	disp, params := relayParseValue(v)
	return disp == "attachment" || params["filename"] != ""
}

// relayParseValue parses a Content-Type or Content-Disposition value
// leniently: mime.ParseMediaType when it accepts the value, else the
// leading token and whatever name=value pairs can be read.
func relayParseValue(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return mt, params
	}
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && (v[i] >= 'a' && v[i] <= 'z' || v[i] >= 'A' && v[i] <= 'Z' || v[i] >= '0' && v[i] <= '9' || strings.IndexByte("/.+-_!#$&^", v[i]) >= 0) {
		i++
	}
	return strings.ToLower(v[:i]), relayLooseParams(v[i:])
}

// relayLooseParams reads name=value pairs separated by semicolons or
// spaces, values plain or quoted; the first occurrence of a name wins.
func relayLooseParams(s string) map[string]string {
	params := map[string]string{}
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t;")
		eq := strings.IndexAny(s, "=; \t")
		if eq < 0 {
			break
		}
		if s[eq] != '=' {
			s = s[eq:]
			continue
		}
		name := strings.ToLower(s[:eq])
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			val, s = b.String(), s[min(j+1, len(s)):]
		} else {
			end := strings.IndexAny(s, "; \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		if _, dup := params[name]; !dup && name != "" {
			params[name] = val
		}
	}
	return params
}

// relayDecodeTransfer undoes a Content-Transfer-Encoding. An unknown
// encoding (e.g. "8-bit") is read as the raw bytes it almost always is.
func relayDecodeTransfer(cte string, raw []byte) ([]byte, error) {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(bytes.NewReader(raw))
	case "base64":
		clean := make([]byte, 0, len(raw))
		for _, c := range raw {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' {
				clean = append(clean, c)
			}
		}
		if i := bytes.IndexByte(clean, '='); i >= 0 {
			clean = clean[:i] // padding, or junk after it
		}
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, err := base64.RawStdEncoding.Decode(out, clean[:len(clean)/4*4+relayB64Tail(len(clean)%4)])
		return out[:n], err
	default:
		return raw, nil
	}
	return io.ReadAll(r)
}

// relayB64Tail is how many characters of a final incomplete base64 quantum
// carry data: a single leftover character cannot and is dropped.
func relayB64Tail(rem int) int {
	if rem == 1 {
		return 0
	}
	return rem
}

// relayDecodeCharset converts text declared in charset label to UTF-8
// with go-message's charset table. Undeclared, US-ASCII or UTF-8 text that
// is not valid UTF-8, and text in an unknown charset, is read as
// windows-1255: the legacy charset of the Hebrew Outlook installations the
// gateway's staff and customers use. Invalid sequences become U+FFFD.
func relayDecodeCharset(label string, b []byte) string {
	l := strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`))
	switch l {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if utf8.Valid(b) {
			return string(b)
		}
	default:
		if r, err := charset.Reader(l, bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				return strings.ToValidUTF8(string(out), "\uFFFD")
			}
		}
		if utf8.Valid(b) {
			return string(b)
		}
	}
	out, err := charmap.Windows1255.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// relayMetaCharset finds the charset declared by an HTML <meta> element
// (<meta charset=...> or the http-equiv Content-Type form); an edited HTML
// part is re-encoded as UTF-8 and must not claim otherwise.
var relayMetaCharset = regexp.MustCompile(`(?i)(<meta\b[^>]*?\bcharset\s*=\s*["']?)[a-z0-9_:.\-]+`)
