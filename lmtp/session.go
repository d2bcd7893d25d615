package lmtp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/textproto"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/northwind-it/ticketgw/ingest"
)

// The answers the server gives besides 250. Every failure that is not the
// message's own fault is temporary (4xx), so the mail server keeps the
// message and retries; go-smtp would turn any other error into a permanent
// 554.
var (
	errNotStored = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Message not stored, try again later"}
	errFilingBacklog = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Mailbox unavailable, try again later"}
	errShuttingDown = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message: "Shutting down, try again later"}
	errReadFailed = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Could not read the message, try again later"}
	errNoSuchMailbox = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
		Message: "No such mailbox here"}
)

// session is one LMTP connection's state.
type session struct {
	s    *Server
	log  *slog.Logger
	from string

	mu      sync.Mutex
	pending func() // ends the delivery registered with Server.enter
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.sessions.Add(1)
	remote := ""
	if nc := c.Conn(); nc != nil && nc.RemoteAddr() != nil {
		remote = nc.RemoteAddr().String()
	}
	return &session{s: s, log: s.log.With("remote", remote)}, nil
}

// Reset forgets the envelope (RSET, or the end of a transaction). go-smtp
// calls it once the answers to a message are written, which ends the
// delivery for the graceful shutdown.
func (ss *session) Reset() {
	ss.from = ""
	ss.finish()
}

// Logout ends the session (the connection is closed).
func (ss *session) Logout() error {
	ss.finish()
	return nil
}

// begin registers a delivery in progress until its answer is written; it
// fails once the server is stopping.
func (ss *session) begin() (context.Context, bool) {
	ctx, ok := ss.s.enter()
	if !ok {
		return nil, false
	}
	var once sync.Once
	ss.mu.Lock()
	prev := ss.pending
	ss.pending = func() { once.Do(ss.s.leave) }
	ss.mu.Unlock()
	if prev != nil {
		prev()
	}
	return ctx, true
}

// finish ends the registered delivery, if any.
func (ss *session) finish() {
	ss.mu.Lock()
	f := ss.pending
	ss.pending = nil
	ss.mu.Unlock()
	if f != nil {
		f()
	}
}

// Mail records the envelope sender ("" is the null sender <>).
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

// Rcpt accepts the gateway's own addresses only.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.s.rcpts[normAddr(to)] {
		ss.s.rejected.Add(1)
		ss.log.Info("lmtp recipient refused: not a gateway address", "rcpt", to)
		return errNoSuchMailbox
	}
	return nil
}

// LMTPData takes the message for every recipient at once: all of them name
// the same support mailbox, so they share one ticket and one answer. The
// returned error is go-smtp's status for each recipient that got none from
// the StatusCollector, i.e. for all of them.
func (ss *session) LMTPData(r io.Reader, _ smtp.StatusCollector) error {
	return ss.deliver(r)
}

// Data is the plain-SMTP variant; go-smtp calls LMTPData in LMTP mode.
func (ss *session) Data(r io.Reader) error { return ss.deliver(r) }

// deliver reads, hands over and files one message, and returns its answer.
func (ss *session) deliver(r io.Reader) error {
	s := ss.s
	// The delivery ends when go-smtp has written the answer and resets the
	// session (or the connection closes), so that a graceful stop does not
	// close the connection between the handler's success and the 250.
	ctx, ok := ss.begin()
	if !ok {
		s.tempFails.Add(1)
		return errShuttingDown
	}
	raw, err := readMessage(r, ss.from, s.cfg.MaxMessageBytes)
	if err != nil {
		if !errors.Is(err, smtp.ErrDataTooLarge) {
			// The transfer broke off (a closed connection, an aborted
			// BDAT): there is nobody to answer.
			ss.finish()
		}
		if errors.Is(err, smtp.ErrDataTooLarge) {
			s.tooLarge.Add(1)
			ss.log.Warn("lmtp message refused: too large", "max_message_bytes", s.cfg.MaxMessageBytes, "from", ss.from)
			return smtp.ErrDataTooLarge
		}
		s.tempFails.Add(1)
		ss.log.Warn("lmtp message not read", "error", err)
		return errReadFailed
	}
	// The arrival instant, in whole seconds as IMAP INTERNALDATE keeps it.
	arrival := s.now().Truncate(time.Second)
	mid := headerMessageID(raw)
	log := ss.log.With("message_id", mid, "size", len(raw))
	if err := s.handle(ctx, raw, arrival); err != nil {
		s.tempFails.Add(1)
		log.Warn("lmtp message not stored: answered 451, the mail server will retry", "error", err)
		return errNotStored
	}
	if s.app != nil && !s.file(ctx, raw, arrival, mid, log) {
		s.tempFails.Add(1)
		return errFilingBacklog
	}
	s.delivered.Add(1)
	log.Debug("lmtp message delivered", "received", arrival)
	return nil
}

// readMessage reads the message, at most max bytes, behind the Return-Path
// line a final delivery agent adds (RFC 5321 §4.4): the parser recognises
// bounces by the null return path <>. It is deterministic (no date, no
// queue id), so a message without Message-ID delivered twice hashes the
// same and is deduplicated.
func readMessage(r io.Reader, from string, max int64) ([]byte, error) {
	prefix := "Return-Path: <" + from + ">\r\n"
	var buf bytes.Buffer
	buf.WriteString(prefix)
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	if n > max {
		return nil, smtp.ErrDataTooLarge
	}
	return buf.Bytes(), nil
}

// handle calls the handler with the message; a panic is an error.
func (s *Server) handle(ctx context.Context, raw []byte, arrival time.Time) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HandlerTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("lmtp handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	f := &ingest.Fetched{
		Mailbox:      s.cfg.Mailbox,
		Folder:       Folder,
		InternalDate: arrival,
		Size:         int64(len(raw)),
		Body:         bytes.NewReader(raw),
		Raw:          raw,
	}
	return s.h(ctx, f)
}

// headerMessageID returns the Message-ID of raw's header, for logs ("" when
// there is none or the header cannot be read).
func headerMessageID(raw []byte) string {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	h, _ := tp.ReadMIMEHeader() // a partial header is good enough for a log
	v := strings.TrimSpace(h.Get("Message-Id"))
	if len(v) > 256 {
		v = v[:256]
	}
	return v
}
