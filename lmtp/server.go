// Package lmtp takes mail pushed by the MSP's own mail server over LMTP (RFC
// 2033; a Postfix `lmtp:` transport or a Dovecot/Exim LMTP client) and hands
// each message to the same handler the IMAP source feeds (SPEC §2 flow 1):
// no polling and no IDLE notification delay.
//
// Delivery contract. A message is answered 250 (for each of its recipients)
// only once the handler returned nil, i.e. once the ticket, its events,
// timers and outgoing mail are stored durably. Anything else is answered 451
// 4.3.0, so the mail server keeps the message in its queue and retries: a
// Redis outage, a crash or a restart of the gateway loses nothing. Because
// the mail server may deliver a message again (after a lost 250, or after a
// 451 given once the ticket was already stored), the handler must be
// idempotent; the pipeline is (it deduplicates by Message-ID, or by a hash of
// the bytes).
//
// Arrival instant. Fetched.InternalDate is the instant the gateway received
// the end of the message, truncated to whole seconds (IMAP INTERNALDATE has
// no finer resolution, so that the filed copy carries exactly the same
// instant). For pushed mail it is the SPEC §3a clock start: what INTERNALDATE
// is for mail read over IMAP. Mail that waited in the mail server's queue
// while the gateway was down therefore starts its SLA clock when the gateway
// takes it, not when the mail server first received it.
//
// The mailbox stays the system of record (SPEC §5). After the handler
// succeeds, the message (as received, with the Return-Path line the final
// delivery agent adds, RFC 5321 §4.4) is filed into the processed folder of
// the configured mailbox with IMAP APPEND, its INTERNALDATE set to the
// arrival instant. If that APPEND fails, the message is still answered 250
// (the ticket is stored) and the copy waits in memory for another attempt,
// with exponential backoff, while the following copies queue up behind it
// (and are not tried one by one against a server known to be failing). The
// trade-off: a copy waiting in memory is lost if the process dies before the
// mailbox is back (it is logged at error level with its Message-ID; the
// ticket itself is in Redis). When the waiting copies exceed
// Config.FilingQueueBytes, new messages are answered 451 instead, so that a
// long mailbox outage pushes back onto the mail server's durable queue rather
// than into memory; the handler sees those messages again on the retry and
// recognises them as already stored.
package lmtp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/northwind-it/ticketgw/ingest"
)

// Folder is Fetched.Folder of every message pushed over LMTP.
const Folder = "LMTP"

// Defaults for the zero values of Config.
const (
	DefaultMaxMessageBytes  = 64 << 20
	DefaultHandlerTimeout   = 2 * time.Minute
	DefaultFilingTimeout    = 30 * time.Second
	DefaultShutdownGrace    = 30 * time.Second
	DefaultRetryMin         = time.Second
	DefaultRetryMax         = 5 * time.Minute
	DefaultFilingQueueBytes = 256 << 20
	DefaultMaxRecipients    = 100
	DefaultSocketMode       = 0o660
	// defaultReadTimeout bounds a command line and a whole message body
	// (go-smtp sets the read deadline once, when the DATA line is read):
	// RFC 5321 §4.5.3.2 suggests 5 and 10 minutes.
	defaultReadTimeout  = 10 * time.Minute
	defaultWriteTimeout = time.Minute
)

// Config configures a Server. The zero value of every optional field selects
// its documented default.
type Config struct {
	// Network is "tcp" (default) or "unix"; Address is host:port or the
	// socket's path. A stale socket file (nothing listening) is replaced.
	Network, Address string
	// SocketMode is the unix socket's permission bits (default 0660).
	SocketMode os.FileMode
	// Mailbox is Fetched.Mailbox: the identity of the mailbox the messages
	// belong to (its address).
	Mailbox string
	// Recipients are the addresses accepted in RCPT TO (compared without
	// case); any other recipient is refused with 550 5.1.1. Required.
	Recipients []string
	// MaxMessageBytes is the largest message accepted (default 64 MiB);
	// larger ones are refused with 552 5.3.4 (at MAIL FROM when the client
	// announces SIZE, else at the end of the data).
	MaxMessageBytes int64
	// MaxRecipients bounds RCPT TO commands per message (default 100).
	MaxRecipients int
	// Hostname is announced in the greeting (default os.Hostname).
	Hostname string
	// HandlerTimeout bounds one handler call (default 2m; Postfix waits up
	// to lmtp_data_done_timeout, 600s, for the answer).
	HandlerTimeout time.Duration
	// FilingTimeout bounds one APPEND attempt made before the answer
	// (default 30s); the Appender may extend it for large messages.
	FilingTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts to file a
	// copy that could not be filed (defaults 1s and 5m).
	RetryMin, RetryMax time.Duration
	// FilingQueueBytes bounds the copies waiting to be filed (default 256
	// MiB); beyond it messages are answered 451.
	FilingQueueBytes int64
	// ShutdownGrace is how long Run, once its context is done, lets
	// deliveries in progress finish and waiting copies be filed (default
	// 30s).
	ShutdownGrace time.Duration
}

// withDefaults returns c with every unset optional field defaulted.
func (c Config) withDefaults() Config {
	if c.Network == "" {
		c.Network = "tcp"
	}
	if c.SocketMode == 0 {
		c.SocketMode = DefaultSocketMode
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = DefaultMaxRecipients
	}
	if c.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Hostname = h
		} else {
			c.Hostname = "ticketgw"
		}
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = DefaultHandlerTimeout
	}
	if c.FilingTimeout <= 0 {
		c.FilingTimeout = DefaultFilingTimeout
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.FilingQueueBytes <= 0 {
		c.FilingQueueBytes = DefaultFilingQueueBytes
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	return c
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error { return c.validate(false) }

// validate is Validate; with a listener given (WithListener) the address is
// not needed.
func (c Config) validate(haveListener bool) error {
	c = c.withDefaults()
	var errs []error
	switch {
	case haveListener:
	case c.Network == "tcp":
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			errs = append(errs, fmt.Errorf("lmtp address %q: want host:port: %w", c.Address, err))
		}
	case c.Network == "unix":
		if c.Address == "" {
			errs = append(errs, errors.New("lmtp socket path: required"))
		}
	default:
		errs = append(errs, fmt.Errorf("lmtp network %q: want tcp or unix", c.Network))
	}
	if c.Mailbox == "" {
		errs = append(errs, errors.New("lmtp mailbox: required"))
	}
	if len(c.Recipients) == 0 {
		errs = append(errs, errors.New("lmtp recipients: at least one address required"))
	}
	return errors.Join(errs...)
}

// Appender files a handled message into the mailbox's processed folder.
// IMAPAppender is the implementation.
type Appender interface {
	// Append stores raw with the given INTERNALDATE. It must give up when
	// ctx is done.
	Append(ctx context.Context, raw []byte, internalDate time.Time) error
}

// Option adjusts a Server.
type Option func(*Server)

// WithClock replaces time.Now (the arrival instant, retry times).
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithListener makes the server serve ln instead of listening on
// Config.Network/Address (which then need not be set).
func WithListener(ln net.Listener) Option {
	return func(s *Server) { s.ln = ln }
}

// Stats are the server's counters.
type Stats struct {
	Sessions           uint64 // LMTP sessions opened
	Delivered          uint64 // messages stored and answered 250
	TemporaryFailures  uint64 // messages answered 451 (handler failed, shutting down, filing queue full)
	TooLarge           uint64 // messages refused with 552
	RejectedRecipients uint64 // RCPT TO refused with 550
	Filed              uint64 // copies filed into the processed folder
	FilingFailures     uint64 // failed filing attempts
	FilingDropped      uint64 // copies given up (still waiting at shutdown)
	FilingPending      int    // copies waiting for another attempt
	FilingPendingBytes int64
}

// Server is the LMTP server.
type Server struct {
	cfg    Config
	h      ingest.Handler
	app    Appender
	log    *slog.Logger
	now    func() time.Time
	rcpts  map[string]bool
	ln     net.Listener
	socket string // the unix socket file Listen created, removed by Run
	srv    *smtp.Server
	queue  *fileQueue
	runCtx context.Context // handler calls; cancelled once the grace period is over

	mu       sync.Mutex
	inflight int
	draining bool
	idle     chan struct{} // closed when draining and inflight reaches 0

	sessions, delivered, tempFails, tooLarge, rejected atomic.Uint64
}

// New builds a server that hands every accepted message to h and files it
// with app (nil: no filing, for tests and setups whose mailbox is filled
// otherwise).
func New(cfg Config, h ingest.Handler, app Appender, log *slog.Logger, opts ...Option) (*Server, error) {
	s := &Server{cfg: cfg.withDefaults(), h: h, app: app, log: log, now: time.Now, rcpts: map[string]bool{}, idle: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	if err := cfg.validate(s.ln != nil); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("lmtp: nil handler")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, r := range s.cfg.Recipients {
		s.rcpts[normAddr(r)] = true
	}
	s.queue = newFileQueue(s.cfg.FilingQueueBytes)
	s.runCtx = context.Background()

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.LMTP = true
	srv.Domain = s.cfg.Hostname
	// One byte over the limit, so that go-smtp lets a message of exactly
	// MaxMessageBytes through (it refuses the read that reaches its limit)
	// and readMessage decides.
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes + 1
	srv.MaxRecipients = s.cfg.MaxRecipients
	// go-smtp also applies the line limit inside DATA (not BDAT); real mail
	// has lines far longer than RFC 5322's 998 bytes, and no line can be
	// longer than the largest message accepted.
	srv.MaxLineLength = int(min(s.cfg.MaxMessageBytes+1024, 1<<31-1))
	srv.ReadTimeout = defaultReadTimeout
	srv.WriteTimeout = defaultWriteTimeout
	srv.EnableSMTPUTF8 = true // the bytes are passed on untouched
	srv.ErrorLog = slogPrinter{s.log}
	s.srv = srv
	return s, nil
}

// Listen opens the listening socket (Run calls it when it was not called).
// Calling it first lets the caller learn Addr before Run.
func (s *Server) Listen() error {
	if s.ln != nil {
		return nil
	}
	if s.cfg.Network == "unix" {
		if err := removeStaleSocket(s.cfg.Address); err != nil {
			return err
		}
	}
	ln, err := net.Listen(s.cfg.Network, s.cfg.Address)
	if err != nil {
		return fmt.Errorf("listen lmtp on %s %s: %w", s.cfg.Network, s.cfg.Address, err)
	}
	if s.cfg.Network == "unix" {
		if err := os.Chmod(s.cfg.Address, s.cfg.SocketMode); err != nil {
			ln.Close()
			return fmt.Errorf("chmod lmtp socket %s: %w", s.cfg.Address, err)
		}
	}
	s.ln = ln
	if s.cfg.Network == "unix" {
		s.socket = s.cfg.Address
	}
	return nil
}

// removeStaleSocket removes a socket file nothing listens on; it refuses to
// touch a file that is not a socket or a socket in use.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat lmtp socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("lmtp socket %s: exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("lmtp socket %s: another process is listening on it", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale lmtp socket %s: %w", path, err)
	}
	return nil
}

// Addr is the listening address (nil before Listen).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Run serves until ctx is done, then stops gracefully: it stops accepting,
// lets the deliveries in progress finish (up to Config.ShutdownGrace; a
// delivery cut short is answered by nobody, so the mail server retries it),
// makes a last attempt to file the waiting copies, and returns nil. It
// returns an error only when the server could not run.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	s.mu.Lock()
	s.runCtx = hardCtx
	s.mu.Unlock()

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.srv.Serve(s.ln) }()
	retryCtx, stopRetry := context.WithCancel(ctx)
	retryDone := make(chan struct{})
	go func() {
		defer close(retryDone)
		s.retryLoop(retryCtx)
	}()
	s.log.Info("lmtp listening", "addr", s.ln.Addr().String(), "mailbox", s.cfg.Mailbox,
		"recipients", len(s.rcpts), "max_message_bytes", s.cfg.MaxMessageBytes)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serve lmtp: %w", err)
	}

	// Stop accepting, let deliveries in progress finish, then close what is
	// left (idle connections the mail server keeps cached).
	deadline := s.now().Add(s.cfg.ShutdownGrace)
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	s.mu.Lock()
	s.draining = true
	if s.inflight == 0 {
		close(s.idle)
	}
	n := s.inflight
	s.mu.Unlock()
	s.ln.Close()
	if n > 0 {
		s.log.Info("lmtp stopping: waiting for deliveries in progress", "deliveries", n)
	}
	select {
	case <-s.idle:
	case <-grace.C:
		s.log.Warn("lmtp stopping: deliveries still in progress after the grace period; the mail server will retry them")
	}
	s.srv.Close()
	hardCancel()
	stopRetry()
	<-retryDone
	s.flushQueue(deadline)
	if runErr == nil {
		<-serveErr // Serve returns once the listener is closed
	}
	if s.socket != "" {
		os.Remove(s.socket)
	}
	s.log.Info("lmtp stopped")
	return runErr
}

// enter registers a delivery in progress; it fails once Run is stopping.
func (s *Server) enter() (context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil, false
	}
	s.inflight++
	return s.runCtx, true
}

// leave ends a delivery registered with enter.
func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.draining && s.inflight == 0 {
		close(s.idle)
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Sessions:           s.sessions.Load(),
		Delivered:          s.delivered.Load(),
		TemporaryFailures:  s.tempFails.Load(),
		TooLarge:           s.tooLarge.Load(),
		RejectedRecipients: s.rejected.Load(),
	}
	s.queue.stats(&st)
	return st
}

// normAddr lower-cases an address and strips white space and angle
// brackets.
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimPrefix(a, "<")
	a = strings.TrimSuffix(a, ">")
	return strings.ToLower(strings.TrimSpace(a))
}

// slogPrinter routes go-smtp's internal error log to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("lmtp connection", "error", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("lmtp connection", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}
