package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/emersion/go-smtp"
)

// ErrSenderClosed is returned by Send after Close. It is temporary: the
// message is fine, this process is just shutting down.
var ErrSenderClosed = errors.New("smtp sender closed")

// ErrInvalidEnvelope marks an envelope that can never be sent (no
// recipients, an address with a line break). It is permanent.
var ErrInvalidEnvelope = errors.New("invalid envelope")

// SendError is a failed SMTP delivery attempt: the step that failed, the
// server's reply code when there was one, and whether trying again later can
// succeed.
//
// Temporary is decided here, in one place, for the whole gateway's outbox:
// a 4xx reply, any network or TLS failure, a timeout, and any failure while
// setting up the session (connect, TLS, EHLO, AUTH, even with a 5xx reply:
// the message is not at fault, the link or the configuration is) are
// temporary; a 5xx reply to MAIL, RCPT or DATA is permanent.
type SendError struct {
	Op        string // envelope, dial, tls, starttls, hello, auth, noop, mail, rcpt, data
	Rcpt      string // the recipient, for Op "rcpt"
	Code      int    // SMTP reply code; 0 when the server gave none
	Temporary bool
	Err       error
}

func (e *SendError) Error() string {
	if e.Rcpt != "" {
		return fmt.Sprintf("smtp %s <%s>: %v", e.Op, e.Rcpt, e.Err)
	}
	return fmt.Sprintf("smtp %s: %v", e.Op, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// RecipientError reports recipients the server refused at RCPT. When
// Delivered is not empty the message was accepted for those recipients, so
// a retry must go only to Retry(): resending to everyone would duplicate it.
type RecipientError struct {
	Delivered []string
	Failed    []*SendError // one per refused recipient, Op "rcpt"
}

func (e *RecipientError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = f.Error()
	}
	return fmt.Sprintf("smtp: %d of %d recipients refused: %s",
		len(e.Failed), len(e.Failed)+len(e.Delivered), strings.Join(parts, "; "))
}

// Unwrap returns the per-recipient errors.
func (e *RecipientError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f
	}
	return out
}

// Retry returns the recipients refused with a temporary error: the
// envelope's To for the next attempt.
func (e *RecipientError) Retry() []string {
	var out []string
	for _, f := range e.Failed {
		if f.Temporary {
			out = append(out, f.Rcpt)
		}
	}
	return out
}

// IsTemporary reports whether sending again later may succeed. It is the
// retry policy for outgoing mail: true for 4xx replies, network and TLS
// errors, timeouts, cancellation and a closed Sender; false for 5xx replies
// to the message, invalid envelopes and composition errors. For a
// RecipientError it is true when any refused recipient may be retried.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var re *RecipientError
	if errors.As(err, &re) {
		return len(re.Retry()) > 0
	}
	var se *SendError
	if errors.As(err, &se) {
		return se.Temporary
	}
	return smtpTemporary(err)
}

// smtpTemporary classifies an error from the SMTP client or the network.
func smtpTemporary(err error) bool {
	var reply *smtp.SMTPError
	if errors.As(err, &reply) {
		return reply.Code/100 == 4
	}
	var netErr net.Error
	switch {
	case errors.Is(err, ErrInvalidEnvelope):
		return false
	case errors.Is(err, ErrSenderClosed),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE),
		errors.As(err, &netErr):
		return true
	}
	return false
}

// smtpReplyCode returns the server's reply code in err, or 0.
func smtpReplyCode(err error) int {
	var reply *smtp.SMTPError
	if errors.As(err, &reply) {
		return reply.Code
	}
	return 0
}
