package notify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpWriteBuffer is the size of a session's write buffer: a typical
// acknowledgement or staff copy (10–40 KB) goes out in one or two writes.
const smtpWriteBuffer = 32 << 10

// smtpClient is the client side of one SMTP session (RFC 5321), with what
// the Sender needs and no more: greeting, EHLO (HELO as a fallback),
// STARTTLS, AUTH through a go-sasl client, and mail transactions. It exists
// instead of go-smtp's Client for two costs that showed in the profile of
// a backlog drain: go-smtp sends MAIL, each RCPT and DATA one round trip at
// a time even when the server offers PIPELINING (RFC 2920), and its data
// writer (net/textproto's) handles the message a byte at a time. Here the
// envelope and DATA go out in one write when the server pipelines, and the
// message is dot-stuffed a line at a time.
//
// Server replies that are not the expected ones are returned as go-smtp's
// *smtp.SMTPError, so that error classification (smtpTemporary,
// smtpReplyCode) is the same whichever client produced them. A session is
// used by one goroutine at a time; cancellation is by closing the
// connection (the Sender does that when its context ends).
type smtpClient struct {
	conn net.Conn
	br   *bufio.Reader
	text *textproto.Reader
	w    *bufio.Writer
	ext  map[string]string // EHLO keywords, upper case; nil after HELO
}

func newSMTPClient(conn net.Conn) *smtpClient {
	c := &smtpClient{}
	c.setConn(conn)
	return c
}

func (c *smtpClient) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReader(conn)
	c.text = textproto.NewReader(c.br)
	c.w = bufio.NewWriterSize(conn, smtpWriteBuffer)
}

// smtpReplyError turns a reply other than the expected one into the error
// go-smtp's client would return: *smtp.SMTPError with the enhanced status
// code (RFC 2034) split off the text.
func smtpReplyError(err error) error {
	var pe *textproto.Error
	if !errors.As(err, &pe) {
		return err
	}
	se := &smtp.SMTPError{Code: pe.Code, Message: pe.Msg}
	first, rest, ok := strings.Cut(pe.Msg, " ")
	if !ok {
		return se
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return se
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return se
		}
		ec[i] = n
	}
	se.EnhancedCode = ec
	se.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return se
}

// reply reads one reply; a code that does not start with expect (a full
// code, or its first one or two digits; 0 accepts any) is an error.
func (c *smtpClient) reply(expect int) (int, string, error) {
	code, msg, err := c.text.ReadResponse(expect)
	return code, msg, smtpReplyError(err)
}

// cmd sends one command line and reads its reply.
func (c *smtpClient) cmd(expect int, line string) (int, string, error) {
	if err := smtpCheckLine(line); err != nil {
		return 0, "", err
	}
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return 0, "", err
	}
	return c.reply(expect)
}

// smtpCheckLine refuses a command argument that would end the line early.
func smtpCheckLine(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("smtp: a line must not contain CR or LF")
	}
	return nil
}

// greet reads the server's greeting.
func (c *smtpClient) greet() error {
	_, _, err := c.reply(220)
	return err
}

// hello introduces the client (EHLO, or HELO when the server does not know
// EHLO) and records the server's extensions.
func (c *smtpClient) hello(name string) error {
	_, msg, err := c.cmd(250, "EHLO "+name)
	var se *smtp.SMTPError
	if errors.As(err, &se) && (se.Code == 500 || se.Code == 502) {
		c.ext = nil
		_, _, err = c.cmd(250, "HELO "+name)
		return err
	}
	if err != nil {
		return err
	}
	c.ext = make(map[string]string)
	lines := strings.Split(msg, "\n")
	for _, line := range lines[1:] {
		k, v, _ := strings.Cut(line, " ")
		c.ext[strings.ToUpper(k)] = v
	}
	return nil
}

// extension reports whether the server offered the EHLO keyword name, and
// its parameters.
func (c *smtpClient) extension(name string) (bool, string) {
	v, ok := c.ext[strings.ToUpper(name)]
	return ok, v
}

// startTLS upgrades the session: STARTTLS and the handshake (bounded by
// ctx). The caller then says EHLO again, as RFC 3207 requires; the
// extensions offered before TLS are forgotten.
func (c *smtpClient) startTLS(ctx context.Context, cfg *tls.Config) error {
	if ok, _ := c.extension("STARTTLS"); !ok {
		return errors.New("smtp: server does not offer STARTTLS")
	}
	if _, _, err := c.cmd(220, "STARTTLS"); err != nil {
		return err
	}
	if c.br.Buffered() > 0 {
		// Plaintext after the 220 would be read as if it came over TLS: a
		// man in the middle injecting replies (CVE-2011-0411's kind).
		return errors.New("smtp: server sent data after its STARTTLS reply")
	}
	tc := tls.Client(c.conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.setConn(tc)
	c.ext = nil
	return nil
}

// tlsState returns the session's TLS state, if it has one.
func (c *smtpClient) tlsState() (tls.ConnectionState, bool) {
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}

// auth runs the SASL exchange of a (RFC 4954). A mechanism that fails on a
// challenge is cancelled with "*", as go-smtp's client does, so that
// mechanisms that read the server's error challenge (XOAUTH2, OAUTHBEARER)
// get to see it.
func (c *smtpClient) auth(a sasl.Client) error {
	enc := base64.StdEncoding
	mech, resp, err := a.Start()
	if err != nil {
		return err
	}
	line := "AUTH " + mech
	if len(resp) > 0 {
		line += " " + enc.EncodeToString(resp)
	} else if resp != nil {
		line += " ="
	}
	code, msg64, err := c.cmd(0, line)
	for err == nil {
		var msg []byte
		switch code {
		case 334:
			msg, err = enc.DecodeString(msg64)
		case 235:
			msg = []byte(msg64) // the last reply is not a challenge
		default:
			err = smtpReplyError(&textproto.Error{Code: code, Msg: msg64})
		}
		if err == nil {
			if code == 334 {
				resp, err = a.Next(msg)
			} else {
				resp = nil
			}
		}
		if err != nil {
			_, _, _ = c.cmd(501, "*") // cancel the exchange
			break
		}
		if resp == nil {
			break
		}
		code, msg64, err = c.cmd(0, enc.EncodeToString(resp))
	}
	return err
}

func (c *smtpClient) noop() error {
	_, _, err := c.cmd(250, "NOOP")
	return err
}

// quit ends the session politely within timeout, then closes it.
func (c *smtpClient) quit(timeout time.Duration) error {
	_ = c.conn.SetDeadline(time.Now().Add(timeout))
	_, _, err := c.cmd(221, "QUIT")
	cerr := c.conn.Close()
	if err != nil {
		return err
	}
	return cerr
}

// smtpEnvelopeReplies are the server's answers to one transaction's
// envelope.
type smtpEnvelopeReplies struct {
	mail error   // nil: MAIL accepted
	rcpt []error // per recipient; nil: accepted
	data error   // nil: DATA answered 354, the server waits for the message
	// When the session failed, the command whose reply was awaited: mail,
	// rcpt (Rcpt says which) or data.
	Op, Rcpt string
}

// accepted is the recipients the server accepted.
func (r smtpEnvelopeReplies) accepted(to []string) []string {
	var out []string
	for i, err := range r.rcpt {
		if err == nil {
			out = append(out, to[i])
		}
	}
	return out
}

// mailLine is the MAIL command for a message from from of size bytes (0:
// unknown), with the parameters go-smtp's client would send: BODY=8BITMIME
// and SIZE when offered, SMTPUTF8 when an address needs it.
func (c *smtpClient) mailLine(from string, size int64, utf8 bool) (string, error) {
	var b strings.Builder
	b.Grow(len(from) + 64)
	b.WriteString("MAIL FROM:<")
	b.WriteString(from)
	b.WriteString(">")
	if ok, _ := c.extension("8BITMIME"); ok {
		b.WriteString(" BODY=8BITMIME")
	}
	if ok, _ := c.extension("SIZE"); ok && size > 0 {
		b.WriteString(" SIZE=")
		b.WriteString(strconv.FormatInt(size, 10))
	}
	if utf8 {
		if ok, _ := c.extension("SMTPUTF8"); !ok {
			return "", errors.New("smtp: server does not support SMTPUTF8")
		}
		b.WriteString(" SMTPUTF8")
	}
	line := b.String()
	return line, smtpCheckLine(line)
}

// smtpCheckRcpts checks that every recipient fits on a command line.
func smtpCheckRcpts(to []string) error {
	for _, rcpt := range to {
		if err := smtpCheckLine(rcpt); err != nil {
			return err
		}
	}
	return nil
}

// writeEnvelope buffers the MAIL line and a RCPT per recipient, for a
// pipelined write.
func (c *smtpClient) writeEnvelope(mail string, to []string) {
	c.w.WriteString(mail)
	c.w.WriteString("\r\n")
	for _, rcpt := range to {
		c.w.WriteString("RCPT TO:<")
		c.w.WriteString(rcpt)
		c.w.WriteString(">\r\n")
	}
}

// envelope sends MAIL, a RCPT per recipient and, when any recipient was
// accepted, DATA. When the server offers PIPELINING the commands go out in
// one write and the replies are read after it (RFC 2920); otherwise one at a
// time. err is a failure of the session itself (the network, a malformed
// reply); a refusal is in the replies. When the envelope failed but the
// server still answered DATA with 354 (possible when pipelining), the empty
// message is ended so that the session stays in step.
func (c *smtpClient) envelope(mail string, to []string) (r smtpEnvelopeReplies, err error) {
	if err := smtpCheckRcpts(to); err != nil {
		return r, err
	}
	r.rcpt = make([]error, len(to))
	if ok, _ := c.extension("PIPELINING"); !ok {
		return c.envelopeInTurn(mail, to, r)
	}
	c.writeEnvelope(mail, to)
	c.w.WriteString("DATA\r\n")
	r.Op = "mail"
	if err := c.w.Flush(); err != nil {
		return r, err
	}
	if r.mail, err = c.refusal(c.reply(250)); err != nil {
		return r, err
	}
	// A server that refuses and then hangs up (554 "closing connection")
	// leaves the later replies unread: the refusal is the outcome, not the
	// lost connection (review finding: it was reported as a temporary
	// network error, and a permanent refusal was retried).
	r.Op = "rcpt"
	for i := range to {
		r.Rcpt = to[i]
		if r.rcpt[i], err = c.refusal(c.reply(25)); err != nil {
			if r.mail != nil {
				return r, nil
			}
			return r, err
		}
	}
	r.Op, r.Rcpt = "data", ""
	if r.data, err = c.refusal(c.reply(354)); err != nil {
		if r.mail != nil || len(r.accepted(to)) == 0 {
			r.data = err // nothing was to be sent
			return r, nil
		}
		return r, err
	}
	if r.data == nil && (r.mail != nil || len(r.accepted(to)) == 0) {
		// Nothing to send, but the server waits for a message.
		if _, _, err := c.cmd(0, "."); err != nil {
			return r, err
		}
		r.data = errors.New("smtp: data refused for want of recipients")
	}
	return r, nil
}

func (c *smtpClient) envelopeInTurn(mail string, to []string, r smtpEnvelopeReplies) (smtpEnvelopeReplies, error) {
	var err error
	r.Op = "mail"
	if r.mail, err = c.refusal(c.cmd(250, mail)); err != nil || r.mail != nil {
		return r, err
	}
	r.Op = "rcpt"
	for i, rcpt := range to {
		r.Rcpt = rcpt
		if r.rcpt[i], err = c.refusal(c.cmd(25, "RCPT TO:<"+rcpt+">")); err != nil {
			return r, err
		}
	}
	r.Op, r.Rcpt = "data", ""
	if len(r.accepted(to)) == 0 {
		return r, nil
	}
	r.data, err = c.refusal(c.cmd(354, "DATA"))
	return r, err
}

// canChunk reports whether a message may go out in the same write as its
// envelope: the server offers CHUNKING (RFC 3030: BDAT, whose chunk follows
// the command without waiting for a go-ahead) and PIPELINING (RFC 2920),
// and the system lets chunk ask for quick ACKs (smtpQuickAck).
func (c *smtpClient) canChunk() bool {
	chunking, _ := c.extension("CHUNKING")
	pipelining, _ := c.extension("PIPELINING")
	return smtpQuickAckWorks && chunking && pipelining
}

// smtpChunkable reports whether msg reaches the server the same as one BDAT
// chunk as through DATA. DATA's writer (net/textproto's, smtpDotWriter)
// gives a bare LF a CR, pairs CRs up (an LF after two CRs gets a third) and
// ends the message with CRLF; BDAT sends the bytes as they are. So msg must
// end with CRLF and have every LF after exactly one CR: true of every
// message the gateway composes, whose originals are converted to CRLF.
func smtpChunkable(msg []byte) bool {
	if len(msg) < 2 || msg[len(msg)-2] != '\r' || msg[len(msg)-1] != '\n' {
		return false
	}
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			break
		}
		j += i
		if j == 0 || msg[j-1] != '\r' || (j >= 2 && msg[j-2] == '\r') {
			return false
		}
		i = j + 1
	}
	return true
}

// chunk sends MAIL, a RCPT per recipient and "BDAT <size> LAST" followed by
// the whole message, in one write (canChunk), and reads the replies: one
// round trip per message instead of DATA's two. r.data is BDAT's refusal:
// nil means the server took the message. A server refuses the chunk when
// MAIL or every RCPT was refused, and reads past it (RFC 3030 §2), so the
// session stays in step. replied reports that a reply was read: a session
// that failed before any may be a stale pooled one, to which nothing was
// delivered. err is a failure of the session itself.
func (c *smtpClient) chunk(mail string, to []string, msg []byte) (r smtpEnvelopeReplies, replied bool, err error) {
	if err := smtpCheckRcpts(to); err != nil {
		return r, false, err
	}
	c.writeChunk(mail, to, msg)
	r.Op = "mail"
	if err := c.w.Flush(); err != nil {
		return r, false, err
	}
	// Postfix sends the replies to MAIL and RCPT before it reads a chunk
	// and, with Nagle's algorithm on, holds the reply to BDAT until they
	// are acknowledged, while the client only waits: its kernel's delayed
	// ACK made every transaction 40 ms (the LMTP-to-acknowledgement median
	// on Dovecot + Postfix went from 7 to 21 ms). So the client asks for
	// quick ACKs (smtpQuickAck) before it reads the replies.
	smtpQuickAck(c.conn)
	return c.chunkReplies(to)
}

// writeChunk buffers a whole transaction for chunk: the envelope and
// "BDAT <size> LAST" followed by the message (recipients checked).
func (c *smtpClient) writeChunk(mail string, to []string, msg []byte) {
	c.writeEnvelope(mail, to)
	c.w.WriteString("BDAT ")
	c.w.WriteString(strconv.Itoa(len(msg)))
	c.w.WriteString(" LAST\r\n")
	c.w.Write(msg)
}

// chunkReplies reads the replies to a transaction writeChunk wrote, as
// chunk describes.
func (c *smtpClient) chunkReplies(to []string) (r smtpEnvelopeReplies, replied bool, err error) {
	r.rcpt = make([]error, len(to))
	r.Op = "mail"
	if r.mail, err = c.refusal(c.reply(250)); err != nil {
		return r, false, err
	}
	replied = true
	// As in envelope: a refusal followed by a hang-up is the outcome.
	r.Op = "rcpt"
	for i := range to {
		r.Rcpt = to[i]
		if r.rcpt[i], err = c.refusal(c.reply(25)); err != nil {
			if r.mail != nil {
				return r, true, nil
			}
			return r, true, err
		}
	}
	r.Op, r.Rcpt = "data", ""
	if r.data, err = c.refusal(c.reply(250)); err != nil {
		if r.mail != nil || len(r.accepted(to)) == 0 {
			r.data = err // nothing was to be taken
			return r, true, nil
		}
		return r, true, err
	}
	if r.data == nil && (r.mail != nil || len(r.accepted(to)) == 0) {
		// A server that took a message nobody was to receive.
		r.data = errors.New("smtp: BDAT accepted without an accepted sender and recipient")
	}
	return r, true, nil
}

// refusal splits a command's outcome: a server refusal (an *smtp.SMTPError)
// is returned as the first value, anything else as the second.
func (c *smtpClient) refusal(_ int, _ string, err error) (error, error) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se, nil
	}
	return nil, err
}

// smtpDotWriter writes a message as DATA content, byte for byte what
// net/textproto's DotWriter (go-smtp's data writer) writes: a line starting
// with "." gets another (RFC 5321 §4.5.2), an LF not preceded by CR gets one,
// and the end adds the final CRLF when missing and the ending ".". It works
// a line at a time instead of a byte at a time; FuzzSMTPDotWriter holds it
// to the same output.
type smtpDotWriter struct {
	w       *bufio.Writer
	started bool // a byte was written
	midLine bool // the last byte written was not an LF
	// cr is textproto's "CR seen" state: the line ends in an odd run of CRs
	// (textproto pairs CRs up: the second of two is taken as data, so an LF
	// after it gets a CR of its own).
	cr bool
}

func (d *smtpDotWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if !d.midLine && p[0] == '.' {
			d.w.WriteByte('.')
		}
		d.started = true
		seg := p
		i := bytes.IndexByte(p, '\n')
		if i >= 0 {
			seg = p[:i]
		}
		if len(seg) > 0 {
			k := 0
			for k < len(seg) && seg[len(seg)-1-k] == '\r' {
				k++
			}
			odd := k%2 == 1
			if k == len(seg) {
				d.cr = d.cr != odd // the run goes on from the last write
			} else {
				d.cr = odd
			}
			d.midLine = true
			d.w.Write(seg)
		}
		if i < 0 {
			n += len(p)
			break
		}
		if !d.cr {
			d.w.WriteByte('\r')
		}
		d.w.WriteByte('\n')
		d.midLine, d.cr = false, false
		p = p[i+1:]
		n += i + 1
	}
	// bufio.Writer keeps its first error and returns it from every later
	// call: a flush that failed on the way shows here.
	if _, err := d.w.Write(nil); err != nil {
		return n, err
	}
	return n, nil
}

// finish writes the end of the data into the buffer.
func (d *smtpDotWriter) finish() {
	switch {
	case !d.started:
		d.w.WriteString("\r\n.\r\n")
	case !d.midLine:
		d.w.WriteString(".\r\n")
	case d.cr:
		d.w.WriteString("\n.\r\n")
	default:
		d.w.WriteString("\r\n.\r\n")
	}
}

// end ends the data, sends it and reads the server's verdict.
func (d *smtpDotWriter) end(c *smtpClient) error {
	d.finish()
	if err := d.w.Flush(); err != nil {
		return err
	}
	_, _, err := c.reply(250)
	return err
}

var _ io.Writer = (*smtpDotWriter)(nil)
