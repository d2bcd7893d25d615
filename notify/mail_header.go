package notify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"

	"github.com/northwind-it/ticketgw/domain"
)

// Header lines are folded at whitespace to stay within mailFoldAt columns
// where the value allows it (RFC 5322 §2.1.1 "SHOULD 78"); no line may
// exceed mailMaxLine characters ("MUST 998").
const (
	mailFoldAt  = 78
	mailMaxLine = 998
	// mailMaxIDLen caps one msg-id: longer ones from a customer's header are
	// dropped rather than breaking the line limit.
	mailMaxIDLen = 250
	// mailMaxReferences caps the References chain (RFC 5322 §3.6.4 allows
	// trimming): the first (thread root) and the most recent ones are kept.
	mailMaxReferences = 20
	// mailEncodedWordMax is the length of the encoded-words the gateway
	// writes: well under the 75 RFC 2047 §2 allows, so that "Subject: " or
	// "Reply-To: " and one word still fit in a 76-column line (§2 asks that
	// lines holding encoded-words be no longer).
	mailEncodedWordMax = 60
)

// mailHeader collects the fields of a message header in order, each already
// formatted, folded and CRLF-terminated.
type mailHeader struct {
	fields [][]byte
}

// add appends the field name: value. value must be ASCII-safe for a header
// (already encoded); it is folded at spaces. A value containing CR or LF is
// refused: every caller sanitises first, so this is the last line of defence
// against header injection.
func (h *mailHeader) add(name, value string) error {
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("header %s: value contains a line break", name)
	}
	line, err := mailAppendFold(nil, name, value)
	if err != nil {
		return err
	}
	if h.fields == nil {
		h.fields = make([][]byte, 0, 16)
	}
	h.fields = append(h.fields, line)
	return nil
}

// write writes the fields in the order they were added and the blank line
// that ends the header, as textproto.WriteHeader writes h.textproto().
func (h *mailHeader) write(w io.Writer) error {
	n := 2
	for _, f := range h.fields {
		n += len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range h.fields {
		b = append(b, f...)
	}
	_, err := w.Write(append(b, '\r', '\n'))
	return err
}

// textproto converts the collected fields to a go-message header that writes
// them byte for byte in the order they were added.
func (h *mailHeader) textproto() textproto.Header {
	var th textproto.Header
	// go-message stores fields in reverse order (AddRaw puts a field on top).
	for i := len(h.fields) - 1; i >= 0; i-- {
		th.AddRaw(h.fields[i])
	}
	return th
}

// mailFold formats "name: value\r\n", breaking the value at spaces so that
// lines stay within mailFoldAt columns when possible. A single token longer
// than a line allows is an error.
func mailFold(name, value string) (string, error) {
	b, err := mailAppendFold(nil, name, value)
	return string(b), err
}

// mailAppendFold appends mailFold's line to dst (allocated at its size
// when dst is nil).
func mailAppendFold(dst []byte, name, value string) ([]byte, error) {
	if dst == nil {
		// Every fold adds at most 2 bytes ("\r\n " for " ").
		dst = make([]byte, 0, len(name)+len(value)+4+2*(len(value)/(mailFoldAt/2)))
	}
	dst = append(dst, name...)
	dst = append(dst, ':')
	col := len(name) + 1
	first := true
	for tok := range strings.SplitSeq(value, " ") {
		if tok == "" {
			continue
		}
		switch {
		case first || col+1+len(tok) <= mailFoldAt:
			dst = append(dst, ' ')
			col++
		default:
			dst = append(dst, "\r\n "...)
			col = 1
		}
		if col+len(tok) > mailMaxLine {
			return nil, fmt.Errorf("header %s: a word of %d characters does not fit in a line", name, len(tok))
		}
		dst = append(dst, tok...)
		col += len(tok)
		first = false
	}
	return append(dst, '\r', '\n'), nil
}

// mailOneLine makes customer-influenced text safe for a header: every control
// character (C0 including CR and LF, DEL, C1) and every line or paragraph
// separator becomes a space, runs of spaces collapse, and invalid UTF-8 is
// replaced. The result never contains a line break.
func mailOneLine(s string) string {
	if !utf8.ValidString(s) { // ToValidUTF8 copies even valid text
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == '\t' || r == ' ' || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// mailStripBidiControls removes the embedding, override and isolate
// controls (U+202A–U+202E, U+2066–U+2069) from a display name, so that a
// customer's name cannot reorder the rest of the From line. The marks
// U+200E/U+200F stay: they only hint direction.
func mailStripBidiControls(s string) string {
	return strings.Map(func(r rune) rune {
		if (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') {
			return -1
		}
		return r
	}, s)
}

// mailEncodeText encodes unstructured header text (Subject) per RFC 2047
// when it needs it: non-ASCII, text that would read as an encoded-word, or a
// word too long to fold. B encoding is used throughout: for Hebrew it is a
// third of the size of Q, and it is safe in every header context.
func mailEncodeText(s string) string {
	s = mailOneLine(s)
	if !mailNeedsEncoding(s) && !strings.Contains(s, "=?") && !mailHasLongWord(s) {
		return s
	}
	return mailBEncode(s)
}

// mailEncodePhrase encodes a display name (an RFC 5322 phrase). Non-ASCII
// names become B encoded-words, which are safe in a phrase whatever they
// contain; ASCII names are written as atoms when they can be, otherwise as a
// quoted-string.
func mailEncodePhrase(s string) string {
	s = mailOneLine(mailStripBidiControls(s))
	if s == "" {
		return ""
	}
	if mailNeedsEncoding(s) || mailHasLongWord(s) {
		return mailBEncode(s)
	}
	atoms := !strings.Contains(s, "=?")
	for i := 0; i < len(s) && atoms; i++ {
		atoms = s[i] == ' ' || mailIsAtext(s[i])
	}
	if atoms {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// mailNeedsEncoding reports whether s has anything but printable ASCII and
// spaces.
func mailNeedsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return true
		}
	}
	return false
}

func mailMostlyASCII(s string) bool {
	non := 0
	for i := 0; i < len(s); i++ {
		if s[i] > '~' {
			non++
		}
	}
	return non*5 < len(s) // under 20 % of the bytes
}

// mailHasLongWord reports whether s has a space-free run too long to fold
// into a line together with a header name.
func mailHasLongWord(s string) bool {
	for w := range strings.SplitSeq(s, " ") {
		if len(w) > mailFoldAt-len("Subject: ") {
			return true
		}
	}
	return false
}

func mailIsAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// mailBEncode encodes s as a space-separated sequence of UTF-8 B
// encoded-words, each at most 75 characters and each holding whole runes
// (RFC 2047 §5). Unlike mime.BEncoding it also encodes plain ASCII, which is
// what text that looks like an encoded-word or has an overlong word needs.
func mailBEncode(s string) string {
	const prefix, suffix = "=?utf-8?b?", "?="
	maxRaw := (mailEncodedWordMax - len(prefix) - len(suffix)) / 4 * 3
	var words []string
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			if n+size > maxRaw {
				break
			}
			n += size
		}
		words = append(words, prefix+base64.StdEncoding.EncodeToString([]byte(s[:n]))+suffix)
		s = s[n:]
	}
	return strings.Join(words, " ")
}

// mailCheckAddr validates a bare address (no display name, no angle
// brackets) for use in a header and in the SMTP envelope.
func mailCheckAddr(addr string) error {
	if addr == "" {
		return errors.New("empty address")
	}
	for _, r := range addr {
		if r <= ' ' || r == 0x7f || unicode.IsControl(r) || unicode.IsSpace(r) || r == '<' || r == '>' {
			return fmt.Errorf("address %q: contains %q", addr, r)
		}
	}
	parsed, err := netmail.ParseAddress("<" + addr + ">")
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if parsed.Address != addr {
		return fmt.Errorf("address %q: not a plain addr-spec", addr)
	}
	return nil
}

// mailFormatAddress renders a mailbox for a header: `name <addr>` or `<addr>`.
func mailFormatAddress(a domain.Address) (string, error) {
	if err := mailCheckAddr(a.Addr); err != nil {
		return "", err
	}
	if name := mailEncodePhrase(a.Name); name != "" {
		return name + " <" + a.Addr + ">", nil
	}
	return "<" + a.Addr + ">", nil
}

// mailFormatAddressList renders mailboxes separated by ", ".
func mailFormatAddressList(as []domain.Address) (string, error) {
	parts := make([]string, 0, len(as))
	var errs []error
	for _, a := range as {
		s, err := mailFormatAddress(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", "), errors.Join(errs...)
}

// mailCleanID returns the msg-id without angle brackets and whether it is
// usable in a header: printable ASCII without whitespace, brackets, or the
// specials that would end it early, at most mailMaxIDLen long.
func mailCleanID(id string) (string, bool) {
	id = strings.TrimSpace(id)
	if strings.HasPrefix(id, "<") && strings.HasSuffix(id, ">") {
		id = id[1 : len(id)-1]
	}
	if id == "" || len(id) > mailMaxIDLen {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c > '~' || strings.IndexByte(`<>()\",;`, c) >= 0 {
			return "", false
		}
	}
	return id, true
}

// mailOwnID validates a Message-ID the gateway generated: a clean id with
// exactly one "@" that has something on both sides.
func mailOwnID(id string) (string, error) {
	clean, ok := mailCleanID(id)
	if !ok {
		return "", fmt.Errorf("message-id %q: not a valid msg-id", id)
	}
	left, right, found := strings.Cut(clean, "@")
	if !found || left == "" || right == "" || strings.Contains(right, "@") {
		return "", fmt.Errorf("message-id %q: want local@domain", id)
	}
	return clean, nil
}

// mailReferences cleans a References chain: invalid ids are dropped (they
// come from customers' headers and are only threading hints), duplicates
// removed keeping the first occurrence, and a long chain trimmed to its root
// plus the most recent ids. It returns the header value ("<a> <b>"): one
// field, ids separated by spaces (not go-mail's ", ").
func mailReferences(refs []string) string {
	seen := make(map[string]bool, len(refs))
	var ids []string
	for _, r := range refs {
		id, ok := mailCleanID(r)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if len(ids) > mailMaxReferences {
		ids = append(ids[:1], ids[len(ids)-(mailMaxReferences-1):]...)
	}
	for i, id := range ids {
		ids[i] = "<" + id + ">"
	}
	return strings.Join(ids, " ")
}

// mailCheckToken validates a header value that must be one printable ASCII
// word (loop marker, ticket id).
func mailCheckToken(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(v) > mailMaxIDLen {
		return fmt.Errorf("%s is %d characters long", what, len(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return fmt.Errorf("%s %q: want printable ASCII without spaces", what, v)
		}
	}
	return nil
}

// mailCheckLang validates a Content-Language value (a BCP 47 tag's shape:
// letters, then hyphen-separated alphanumeric subtags of at most 8).
func mailCheckLang(tag string) error {
	if tag == "" {
		return nil
	}
	for i, sub := range strings.Split(tag, "-") {
		if sub == "" || len(sub) > 8 {
			return fmt.Errorf("language %q: bad subtag", tag)
		}
		for j := 0; j < len(sub); j++ {
			c := sub[j]
			letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return fmt.Errorf("language %q: bad character %q", tag, c)
			}
		}
	}
	return nil
}

// ValidAddress reports whether addr is a plain addr-spec the composers
// accept (no display name, no angle brackets, no control characters). The
// pipeline checks addresses with it before they reach a ticket, so that a
// malformed address a customer wrote can never make composition fail later.
func ValidAddress(addr string) bool { return mailCheckAddr(addr) == nil }
