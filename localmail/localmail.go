// Package localmail runs a real IMAP server (go-imap's imapserver with the
// in-memory backend) and a real SMTP server that keeps what it receives (a
// catcher, on go-smtp), both on loopback. `gateway demo` and the end-to-end
// tests use them as the customer's mail world: no mail leaves the process.
package localmail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// IMAPServer is an in-process IMAP server with one user.
type IMAPServer struct {
	Addr string
	User *imapmemserver.User
	srv  *imapserver.Server
	ln   net.Listener
}

// IMAPOptions tune the server: Caps nil advertises IMAP4rev2 (MOVE, UIDPLUS,
// IDLE); an IMAP4rev1-only set exercises the COPY fallback.
type IMAPOptions struct {
	Caps    imap.CapSet
	Folders []string // created besides INBOX
	Logger  imapserver.Logger
}

// StartIMAP listens on 127.0.0.1:0 and serves username/password with an
// empty INBOX.
func StartIMAP(username, password string, opt IMAPOptions) (*IMAPServer, error) {
	u := imapmemserver.NewUser(username, password)
	for _, f := range append([]string{"INBOX"}, opt.Folders...) {
		if err := u.Create(f, nil); err != nil {
			return nil, fmt.Errorf("create folder %s: %w", f, err)
		}
	}
	caps := opt.Caps
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	logger := opt.Logger
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &flushingSession{imapmemserver.NewUserSession(u)}, nil, nil
		},
		Caps:         caps,
		Logger:       logger,
		InsecureAuth: true, // loopback only
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen imap: %w", err)
	}
	go srv.Serve(ln)
	return &IMAPServer{Addr: ln.Addr().String(), User: u, srv: srv, ln: ln}, nil
}

// flushingSession works around a race in imapserver beta.8's
// SessionTracker.Idle: updates queued after the previous command's poll but
// before IDLE registers its wake-up channel are only sent at the next change
// to the mailbox, so a message delivered just as a client starts IDLE stays
// unannounced. Flushing pending updates when IDLE starts narrows that window
// to the instant between this poll and the registration.
type flushingSession struct {
	*imapmemserver.UserSession
}

func (s *flushingSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if err := s.UserSession.Poll(w, true); err != nil {
		return err
	}
	return s.UserSession.Idle(w, stop)
}

// Deliver appends raw to folder with the given INTERNALDATE, as a mail server
// delivering a message would. IDLE clients are notified.
func (s *IMAPServer) Deliver(folder string, raw []byte, internalDate time.Time) error {
	_, err := s.User.Append(folder, bytes.NewReader(raw), &imap.AppendOptions{Time: internalDate})
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", folder, err)
	}
	return nil
}

// Count returns the number of messages in folder.
func (s *IMAPServer) Count(folder string) (int, error) {
	st, err := s.User.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return 0, err
	}
	if st.NumMessages == nil {
		return 0, nil
	}
	return int(*st.NumMessages), nil
}

// Close stops the server.
func (s *IMAPServer) Close() error { return s.srv.Close() }

// Mail is one message the catcher accepted.
type Mail struct {
	From string
	To   []string
	Raw  []byte
	At   time.Time
}

// Catcher is an SMTP server that accepts every message and keeps it.
type Catcher struct {
	Addr string
	srv  *smtp.Server

	mu       sync.Mutex
	mail     []Mail
	sessions int
	changed  chan struct{}
	// Refuse, when set, is called for every message before it is accepted; a
	// non-nil error is returned to the client (e.g. a 451 to simulate an
	// outage).
	refuse func(Mail) error
}

// StartCatcher listens on 127.0.0.1:0.
func StartCatcher() (*Catcher, error) {
	c := &Catcher{changed: make(chan struct{})}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		c.mu.Lock()
		c.sessions++
		c.mu.Unlock()
		return &catcherSession{c: c}, nil
	}))
	s.Domain = "catcher.localhost"
	s.ErrorLog = log.New(io.Discard, "", 0) // clients hanging up are normal here
	s.AllowInsecureAuth = true
	s.MaxMessageBytes = 256 << 20
	s.MaxRecipients = 20000
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen smtp: %w", err)
	}
	go s.Serve(ln)
	c.srv = s
	c.Addr = ln.Addr().String()
	return c, nil
}

// SetRefuse installs (or with nil removes) a refusal hook.
func (c *Catcher) SetRefuse(f func(Mail) error) {
	c.mu.Lock()
	c.refuse = f
	c.mu.Unlock()
}

// Mail returns a copy of everything accepted so far.
func (c *Catcher) Mail() []Mail {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Mail(nil), c.mail...)
}

// Sessions is the number of SMTP sessions opened so far.
func (c *Catcher) Sessions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions
}

// WaitFor waits until at least n messages were accepted or ctx ends.
func (c *Catcher) WaitFor(ctx context.Context, n int) ([]Mail, error) {
	for {
		c.mu.Lock()
		got, ch := len(c.mail), c.changed
		c.mu.Unlock()
		if got >= n {
			return c.Mail(), nil
		}
		select {
		case <-ctx.Done():
			return c.Mail(), fmt.Errorf("waited for %d messages, got %d: %w", n, got, ctx.Err())
		case <-ch:
		}
	}
}

// Close stops the server.
func (c *Catcher) Close() error { return c.srv.Close() }

type catcherSession struct {
	c    *Catcher
	from string
	to   []string
}

func (s *catcherSession) Reset()        { s.from, s.to = "", nil }
func (s *catcherSession) Logout() error { return nil }
func (s *catcherSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *catcherSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *catcherSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: s.from, To: append([]string(nil), s.to...), Raw: raw, At: time.Now()}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.refuse != nil {
		if err := s.c.refuse(m); err != nil {
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				return se
			}
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: err.Error()}
		}
	}
	s.c.mail = append(s.c.mail, m)
	close(s.c.changed)
	s.c.changed = make(chan struct{})
	return nil
}
