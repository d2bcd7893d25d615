package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
)

// TLS modes of SMTPConfig.TLS.
const (
	SMTPTLSImplicit = "implicit" // TLS from the first byte (port 465)
	SMTPTLSStartTLS = "starttls" // STARTTLS required (port 587)
	SMTPTLSNone     = "none"     // plaintext: loopback, or AllowPlaintext
)

const (
	smtpDefaultConnections = 4
	smtpDefaultTimeout     = 2 * time.Minute
	// smtpIdleTimeout is how long an idle connection is kept for reuse.
	// Servers drop idle clients after 10 s (Postfix under stress) to 5 min;
	// a connection found dead on reuse is re-dialled anyway.
	smtpIdleTimeout = 30 * time.Second
	// smtpQuitTimeout bounds the polite QUIT when a connection is retired.
	smtpQuitTimeout = 2 * time.Second
)

// SMTPConfig says how to reach the submission server.
type SMTPConfig struct {
	Host string
	Port int    // default 465 for implicit TLS, 587 for STARTTLS, 25 for none
	TLS  string // implicit | starttls | none (default starttls)
	// AllowPlaintext permits TLS "none" to a host that is not loopback.
	// Credentials are still never sent over plaintext to such a host.
	AllowPlaintext     bool
	InsecureSkipVerify bool
	// RootCAs verifies the server's certificate instead of the system pool
	// (a private CA); nil uses the system pool.
	RootCAs  *x509.CertPool
	Username string
	Password string // password or, for xoauth2/oauthbearer without TokenSource, a static access token
	// Auth is plain | login | xoauth2 | oauthbearer | none; default plain
	// when Username is set, else none.
	Auth string
	// TokenSource supplies the access token for xoauth2 and oauthbearer: it
	// is asked for one at each new connection (pooled connections stay
	// authenticated).
	TokenSource TokenSource
	Connections int           // parallel SMTP sessions, default 4
	Timeout     time.Duration // per message, connecting included; default 2m
	HELO        string        // EHLO name; default the host name
}

// LogValue logs the configuration without its secret.
func (c SMTPConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("tls", c.TLS),
		slog.String("auth", c.Auth),
		slog.String("username", c.Username),
		slog.Bool("oauth", c.TokenSource != nil),
		slog.Bool("insecure_skip_verify", c.InsecureSkipVerify),
		slog.Int("connections", c.Connections),
		slog.Duration("timeout", c.Timeout),
	)
}

// withDefaults fills in what the configuration left out.
func (c SMTPConfig) withDefaults() SMTPConfig {
	c.TLS = strings.ToLower(strings.TrimSpace(c.TLS))
	if c.TLS == "" {
		c.TLS = SMTPTLSStartTLS
	}
	if c.Port == 0 {
		switch c.TLS {
		case SMTPTLSImplicit:
			c.Port = 465
		case SMTPTLSNone:
			c.Port = 25
		default:
			c.Port = 587
		}
	}
	c.Auth = strings.ToLower(strings.TrimSpace(c.Auth))
	if c.Auth == "" {
		c.Auth = SMTPAuthNone
		if c.Username != "" {
			c.Auth = SMTPAuthPlain
		}
	}
	if c.Connections == 0 {
		c.Connections = smtpDefaultConnections
	}
	if c.Timeout == 0 {
		c.Timeout = smtpDefaultTimeout
	}
	if c.HELO == "" {
		if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
			c.HELO = h
		} else {
			c.HELO = "localhost"
		}
	}
	return c
}

// validate reports every problem of a defaulted configuration at once.
func (c SMTPConfig) validate() error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("host is empty"))
	} else if strings.ContainsAny(c.Host, " \t\r\n/") {
		errs = append(errs, fmt.Errorf("host %q is not a host name", c.Host))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", c.Port))
	}
	switch c.TLS {
	case SMTPTLSImplicit, SMTPTLSStartTLS:
	case SMTPTLSNone:
		if !smtpIsLoopback(c.Host) && !c.AllowPlaintext {
			errs = append(errs, fmt.Errorf("tls none to %s, which is not loopback, needs allow_plaintext", c.Host))
		}
		if !smtpIsLoopback(c.Host) && c.Auth != SMTPAuthNone {
			errs = append(errs, fmt.Errorf("auth %s over plaintext to %s: credentials are only sent unencrypted to loopback", c.Auth, c.Host))
		}
	default:
		errs = append(errs, fmt.Errorf("tls %q: want implicit, starttls or none", c.TLS))
	}
	switch c.Auth {
	case SMTPAuthNone:
	case SMTPAuthPlain, SMTPAuthLogin, SMTPAuthXOAUTH2, SMTPAuthOAuthBearer:
		if c.Username == "" {
			errs = append(errs, fmt.Errorf("auth %s needs a username", c.Auth))
		}
		if c.Password == "" && (c.TokenSource == nil || !smtpTokenAuth(c.Auth)) {
			errs = append(errs, fmt.Errorf("auth %s needs a password or token", c.Auth))
		}
	default:
		errs = append(errs, fmt.Errorf("auth %q: want plain, login, xoauth2, oauthbearer or none", c.Auth))
	}
	if c.Connections < 1 {
		errs = append(errs, fmt.Errorf("connections %d: want at least 1", c.Connections))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", c.Timeout))
	}
	if strings.ContainsAny(c.HELO, " \t\r\n") {
		errs = append(errs, fmt.Errorf("helo %q contains white space", c.HELO))
	}
	return errors.Join(errs...)
}

// smtpIsLoopback reports whether host names this machine: "localhost" or a
// loopback IP literal. Names are not resolved: a DNS answer must not decide
// whether credentials travel in clear.
func smtpIsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Sender delivers pre-composed messages over a small pool of reusable SMTP
// sessions. It is safe for concurrent use; at most Connections sessions are
// open at a time and each carries one message at a time.
type Sender struct {
	cfg  SMTPConfig
	log  *slog.Logger
	addr string
	tls  *tls.Config

	slots chan struct{} // one token per session in use

	// tokenInvalidated is set once a refused access token was invalidated
	// and cleared by the next successful authentication.
	tokenInvalidated atomic.Bool
	// pipelines: the last session opened could take whole transactions
	// in one write (Pipelines).
	pipelines atomic.Bool

	mu     sync.Mutex
	idle   []*smtpConn // most recently used last
	closed bool
}

// smtpConn is one SMTP session.
type smtpConn struct {
	c        *smtpClient
	nc       net.Conn // c's connection (TLS when TLS is on): closing it ends the session
	closed   bool     // the context of the last use ended and closed nc
	lastUsed time.Time
}

// NewSender validates cfg and returns a Sender. It does not connect: the
// first Send (or Ping) does.
func NewSender(cfg SMTPConfig, log *slog.Logger) (*Sender, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("smtp config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sender{
		cfg:   cfg,
		log:   log.With("smtp_host", cfg.Host),
		addr:  net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		slots: make(chan struct{}, cfg.Connections),
	}
	if cfg.TLS != SMTPTLSNone {
		s.tls = &tls.Config{
			ServerName:         strings.TrimSuffix(strings.TrimPrefix(cfg.Host, "["), "]"),
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // explicit operator choice, warned below
			RootCAs:            cfg.RootCAs,
		}
		if cfg.InsecureSkipVerify {
			s.log.Warn("smtp: TLS certificate verification is disabled")
		}
	}
	return s, nil
}

// Send delivers raw (a complete RFC 5322 message with CRLF line endings, as
// composed by ComposeAck/ComposeForward) to env. The bytes go out exactly as
// given. The whole attempt, connecting included, is bounded by the
// configured Timeout and by ctx; waiting for a free session is bounded by
// ctx only.
//
// A pooled session that the server has meanwhile closed is detected at MAIL
// and the message goes out on a fresh one. Errors are *SendError or
// *RecipientError; IsTemporary says whether to retry. After any error the
// session is discarded.
func (s *Sender) Send(ctx context.Context, env Envelope, raw []byte) error {
	if err := smtpCheckEnvelope(env, raw); err != nil {
		return &SendError{Op: "envelope", Err: err}
	}
	return s.send(ctx, env, int64(len(raw)), raw, func(w io.Writer) error {
		_, err := w.Write(raw)
		return err
	})
}

// SendStream delivers a message that write composes while it is sent: write
// is called once, during DATA, with the data writer (dot-stuffing is done
// by it; the message must have CRLF line endings), so the message is never
// held whole in memory. Bounds, pooling and errors are as for Send, except
// that a pooled session found stale is retried only while write has not
// been called. An error of write aborts the transaction without ending the
// data (the session is dropped, so the server discards the partial
// message); it is returned wrapped as a *ComposeError, not a *SendError.
func (s *Sender) SendStream(ctx context.Context, env Envelope, write func(io.Writer) error) error {
	if write == nil {
		return &SendError{Op: "envelope", Err: fmt.Errorf("%w: no message", ErrInvalidEnvelope)}
	}
	if err := smtpCheckEnvelope(env, []byte{0}); err != nil {
		return &SendError{Op: "envelope", Err: err}
	}
	return s.send(ctx, env, 0, nil, write)
}

// ComposeError is the error of the function that composed a streamed
// message (SendStream): the mail server is not at fault.
type ComposeError struct{ Err error }

func (e *ComposeError) Error() string { return "compose message: " + e.Err.Error() }
func (e *ComposeError) Unwrap() error { return e.Err }

// send runs one delivery: size is the message size for the SIZE parameter
// (0: unknown); replayable says whether write may be called again on a
// fresh session.
// raw, when not nil, is the whole message (write writes it): it can be
// sent again on a fresh session, and in one write with its envelope where
// the server allows (BDAT).
func (s *Sender) send(ctx context.Context, env Envelope, size int64, raw []byte, write func(io.Writer) error) error {
	replayable := raw != nil
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	for attempt := 0; ; attempt++ {
		conn, reused, err := s.get(ctx)
		if err != nil {
			return err
		}
		written, committed, err := s.transact(ctx, conn, env, size, raw, write)
		if err == nil {
			s.put(conn)
			s.log.Debug("smtp sent", "rcpts", len(env.To), "bytes", written,
				"reused", reused, "duration", time.Since(start))
			return nil
		}
		var re *RecipientError
		if errors.As(err, &re) && len(re.Delivered) > 0 {
			s.put(conn) // the transaction completed; the session is clean
			return err
		}
		s.discard(conn)
		var ce *ComposeError
		if reused && attempt == 0 && !committed && (replayable || written < 0) && ctx.Err() == nil && !errors.As(err, &ce) && smtpStaleSession(err) {
			s.log.Debug("smtp: pooled session is gone, redialling", "err", err)
			continue
		}
		return err
	}
}

// Ping checks that a session can be opened (or a pooled one still works):
// connect, TLS, EHLO and authentication, then NOOP.
func (s *Sender) Ping(ctx context.Context) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		conn, reused, err := s.get(ctx)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.nc.Close() })
		err = conn.c.noop()
		if !stop() {
			conn.closed = true
		}
		if err == nil {
			s.put(conn)
			return nil
		}
		s.discard(conn)
		if reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return s.wrap(ctx, "noop", "", err)
	}
}

// Close ends the idle sessions with QUIT and makes further Sends fail with
// ErrSenderClosed. Sessions busy in a Send are closed when it returns.
func (s *Sender) Close() error {
	s.mu.Lock()
	s.closed = true
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, smtpQuit(c))
	}
	return errors.Join(errs...)
}

func (s *Sender) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &SendError{Op: "dial", Temporary: true, Err: fmt.Errorf("wait for a free session: %w", ctx.Err())}
	}
}

func (s *Sender) release() { <-s.slots }

// get returns a live pooled session, or dials a new one.
func (s *Sender) get(ctx context.Context) (*smtpConn, bool, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, false, &SendError{Op: "dial", Temporary: true, Err: ErrSenderClosed}
	}
	var conn *smtpConn
	var stale []*smtpConn
	for len(s.idle) > 0 && conn == nil {
		c := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(c.lastUsed) > smtpIdleTimeout {
			stale = append(stale, c)
			continue
		}
		conn = c
	}
	s.mu.Unlock()
	for _, c := range stale {
		_ = c.nc.Close()
	}
	if conn != nil {
		return conn, true, nil
	}
	conn, err := s.dial(ctx)
	return conn, false, err
}

// put returns a healthy session to the pool (one whose socket a context
// closed after its last reply is dropped instead).
func (s *Sender) put(c *smtpConn) {
	if c.closed {
		s.discard(c)
		return
	}
	c.lastUsed = time.Now()
	s.mu.Lock()
	if !s.closed {
		s.idle = append(s.idle, c)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	_ = smtpQuit(c)
}

// discard drops a session whose state is unknown.
func (s *Sender) discard(c *smtpConn) { _ = c.nc.Close() }

// smtpQuit ends a session politely, without waiting long for the server.
func smtpQuit(c *smtpConn) error {
	if err := c.c.quit(smtpQuitTimeout); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("smtp quit: %w", err)
	}
	return nil
}

// dial opens, secures, greets and authenticates a new session. ctx bounds
// every step: it closes the socket when it ends.
func (s *Sender) dial(ctx context.Context) (*smtpConn, error) {
	// The access token comes first: without one there is no point in
	// connecting.
	secret := s.cfg.Password
	if s.cfg.TokenSource != nil && smtpTokenAuth(s.cfg.Auth) {
		token, err := s.cfg.TokenSource.Token(ctx)
		if err != nil {
			return nil, s.wrap(ctx, "auth", "", fmt.Errorf("get access token: %w", err))
		}
		secret = token
	}
	d := net.Dialer{KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, s.wrap(ctx, "dial", "", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer stop()
	fail := func(op string, err error) (*smtpConn, error) {
		_ = nc.Close()
		return nil, s.wrap(ctx, op, "", err)
	}

	c := newSMTPClient(nc)
	switch s.cfg.TLS {
	case SMTPTLSImplicit:
		tc := tls.Client(nc, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("tls", err)
		}
		c = newSMTPClient(tc)
		if err := c.greet(); err != nil {
			return fail("hello", err)
		}
	case SMTPTLSStartTLS:
		if err := c.greet(); err != nil {
			return fail("starttls", err)
		}
		if err := c.hello(s.cfg.HELO); err != nil {
			return fail("starttls", err)
		}
		if err := c.startTLS(ctx, s.tls); err != nil {
			return fail("starttls", err)
		}
	default:
		if err := c.greet(); err != nil {
			return fail("hello", err)
		}
	}
	if err := c.hello(s.cfg.HELO); err != nil {
		return fail("hello", err)
	}
	auth, err := smtpSASL(s.cfg, secret)
	if err != nil {
		return fail("auth", err)
	}
	if auth != nil {
		if ok, _ := c.extension("AUTH"); !ok {
			return fail("auth", errors.New("server offers no AUTH"))
		}
		if err := c.auth(auth); err != nil {
			return fail("auth", s.authFailed(auth, secret, err))
		}
		if s.cfg.TokenSource != nil {
			s.tokenInvalidated.Store(false)
		}
	}
	if !stop() {
		// ctx ended while dialling and closed the socket.
		return fail("dial", ctx.Err())
	}
	s.log.Debug("smtp session opened", "tls", s.cfg.TLS)
	s.pipelines.Store(c.canChunk())
	return &smtpConn{c: c, nc: c.conn}, nil
}

// Pipelines reports whether the last session opened offered what SendMany
// needs to send several messages in one write (CHUNKING and PIPELINING);
// false before the first.
func (s *Sender) Pipelines() bool { return s.pipelines.Load() }

// transact runs MAIL, RCPT and DATA on c, the data written by write.
// written is the number of data bytes written, -1 when write was not
// called. committed reports whether the end of the data was sent, after
// which the server may have accepted the message even if the reply was
// lost.
func (s *Sender) transact(ctx context.Context, conn *smtpConn, env Envelope, size int64, raw []byte, write func(io.Writer) error) (written int64, committed bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = conn.nc.Close() })
	defer func() {
		if !stop() {
			conn.closed = true // ctx ended meanwhile and closed the socket
		}
	}()
	c := conn.c

	mail, err := c.mailLine(env.From, size, !smtpASCII(env.From) || !smtpAllASCII(env.To))
	if err != nil {
		return -1, false, s.wrap(ctx, "mail", "", err)
	}
	if raw != nil && c.canChunk() && smtpChunkable(raw) {
		return s.transactChunk(ctx, c, env, mail, raw)
	}
	r, err := c.envelope(mail, env.To)
	if err != nil {
		return -1, false, s.wrap(ctx, r.Op, r.Rcpt, err)
	}
	delivered, failed, err := s.envelopeOutcome(ctx, env, r)
	if err != nil {
		return -1, false, err
	}
	w := &smtpDotWriter{w: c.w}
	dw := &smtpDataWriter{w: w}
	if err := write(dw); err != nil {
		// The data is not ended: the caller drops the session, and the
		// server discards what it received.
		if dw.err != nil {
			return dw.n, false, s.wrap(ctx, "data", "", dw.err)
		}
		return dw.n, false, &ComposeError{Err: err}
	}
	if dw.err != nil { // write swallowed the writer's error
		return dw.n, false, s.wrap(ctx, "data", "", dw.err)
	}
	if err := w.end(c); err != nil {
		return dw.n, true, s.wrap(ctx, "data", "", err)
	}
	if len(failed) > 0 {
		return dw.n, true, &RecipientError{Delivered: delivered, Failed: failed}
	}
	return dw.n, true, nil
}

// transactChunk is transact's one round trip: the envelope and the whole
// message in one write (smtpClient.chunk). Once the server answered
// anything the message may have been taken, so a failure from then on is
// committed: it is not sent again on a fresh session.
func (s *Sender) transactChunk(ctx context.Context, c *smtpClient, env Envelope, mail string, raw []byte) (written int64, committed bool, err error) {
	r, replied, err := c.chunk(mail, env.To, raw)
	if err != nil {
		if !replied {
			return -1, false, s.wrap(ctx, r.Op, r.Rcpt, err)
		}
		return int64(len(raw)), true, s.wrap(ctx, r.Op, r.Rcpt, err)
	}
	delivered, failed, err := s.envelopeOutcome(ctx, env, r)
	if err != nil {
		return -1, false, err
	}
	if len(failed) > 0 {
		return int64(len(raw)), true, &RecipientError{Delivered: delivered, Failed: failed}
	}
	return int64(len(raw)), true, nil
}

// envelopeOutcome reads a transaction's replies: err is the refusal that
// ends it (of MAIL, of every recipient, or of the message); otherwise the
// recipients the server accepted and the refusals of the others.
func (s *Sender) envelopeOutcome(ctx context.Context, env Envelope, r smtpEnvelopeReplies) (delivered []string, failed []*SendError, err error) {
	if r.mail != nil {
		return nil, nil, s.wrap(ctx, "mail", "", r.mail)
	}
	for i, to := range env.To {
		if r.rcpt[i] != nil {
			failed = append(failed, s.wrap(ctx, "rcpt", to, r.rcpt[i]))
			continue
		}
		delivered = append(delivered, to)
	}
	if len(delivered) == 0 {
		return nil, nil, &RecipientError{Failed: failed}
	}
	if r.data != nil {
		return nil, nil, s.wrap(ctx, "data", "", r.data)
	}
	return delivered, failed, nil
}

// smtpDataWriter counts the bytes written to the DATA writer and keeps its
// first error, to tell a failing connection from a failing composer.
type smtpDataWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (d *smtpDataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.w.Write(p)
	d.n += int64(n)
	if err != nil {
		d.err = err
	}
	return n, err
}

// wrap turns a client or network error into a *SendError, classified. When
// ctx ended, the error is the timeout or cancellation that closed the socket,
// not the "use of closed connection" it caused.
func (s *Sender) wrap(ctx context.Context, op, rcpt string, err error) *SendError {
	if ctxErr := ctx.Err(); ctxErr != nil && smtpReplyCode(err) == 0 {
		err = fmt.Errorf("%w (%v)", ctxErr, err)
	}
	e := &SendError{Op: op, Rcpt: rcpt, Code: smtpReplyCode(err), Err: err}
	switch op {
	case "mail", "rcpt", "data":
		e.Temporary = smtpTemporary(err)
	default:
		// Setting up the session failed: the message is not at fault.
		e.Temporary = true
	}
	return e
}

// smtpStaleSession reports whether err, met on a pooled session before the
// message was committed, means the server had dropped the session: a
// network error or 421 (service closing channel).
func smtpStaleSession(err error) bool {
	var re *RecipientError
	if errors.As(err, &re) {
		return false
	}
	code := smtpReplyCode(err)
	return code == 0 || code == 421
}

// smtpCheckEnvelope refuses envelopes that can never be sent.
func smtpCheckEnvelope(env Envelope, raw []byte) error {
	var errs []error
	if env.From != "" {
		if err := mailCheckAddr(env.From); err != nil {
			errs = append(errs, fmt.Errorf("from: %w", err))
		}
	}
	if len(env.To) == 0 {
		errs = append(errs, errors.New("no recipients"))
	}
	for _, to := range env.To {
		if err := mailCheckAddr(to); err != nil {
			errs = append(errs, fmt.Errorf("to: %w", err))
		}
	}
	if len(raw) == 0 {
		errs = append(errs, errors.New("empty message"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)
	}
	return nil
}

func smtpASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func smtpAllASCII(ss []string) bool {
	for _, s := range ss {
		if !smtpASCII(s) {
			return false
		}
	}
	return true
}

// compile-time check that the mechanism satisfies go-sasl's interface.
var _ sasl.Client = (*smtpLoginClient)(nil)
