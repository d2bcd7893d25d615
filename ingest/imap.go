package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/northwind-it/ticketgw/internal/gopool"
)

// The IMAP source (SPEC §2 flow 1, §5, §6).
//
// The mail folder itself is the queue: every message in IMAPConfig.Folder that
// is not flagged \Deleted is handed to the Handler, in UID order, and is moved
// to IMAPConfig.ProcessedFolder only after the Handler returned nil (the
// message is stored durably). A crash, a dropped connection or a failed move
// therefore never loses a message; at worst the Handler sees the same message
// again, so it must be idempotent (the store dedupes by Message-ID and by
// (mailbox, UIDVALIDITY, UID)). A message whose Handler returned nil and whose
// move completed is never handed out again: it is no longer in the folder, or,
// on servers without MOVE and UIDPLUS, it stays there flagged \Deleted and is
// skipped.

// TLS modes of IMAPConfig.TLS.
const (
	imapTLSImplicit = "implicit"
	imapTLSStartTLS = "starttls"
	imapTLSNone     = "none"
)

// Authentication methods of IMAPConfig.Auth.
const (
	imapAuthPlain       = "plain"       // AUTHENTICATE PLAIN (SASL)
	imapAuthLogin       = "login"       // the IMAP LOGIN command
	imapAuthXOAuth2     = "xoauth2"     // AUTHENTICATE XOAUTH2 with an OAuth 2 access token
	imapAuthOAuthBearer = "oauthbearer" // AUTHENTICATE OAUTHBEARER (RFC 7628)
)

// TokenSource supplies OAuth 2 access tokens for the xoauth2 and
// oauthbearer methods (*oauth.Source implements it). Token is called before
// each login and should return a token valid for a while yet.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenInvalidator is implemented by token sources that cache tokens: when
// the server refuses a token, the source invalidates it once, so that the
// next reconnect logs in with a fresh one.
type TokenInvalidator interface {
	Invalidate(token string) bool
}

// Defaults for the zero values of IMAPConfig.
const (
	imapDefaultFolder         = "INBOX"
	imapDefaultPollInterval   = 30 * time.Second
	imapDefaultIdleRestart    = 9 * time.Minute
	imapDefaultCommandTimeout = 60 * time.Second
	imapDefaultBackoffMin     = time.Second
	imapDefaultBackoffMax     = 5 * time.Minute

	// imapHealthySession is how long a session must last (without handling
	// anything) before the reconnect backoff starts again from BackoffMin.
	imapHealthySession = time.Minute
	// imapPersistentFailure is the attempt count from which a message that
	// keeps failing is logged at error level.
	imapPersistentFailure = 5
	// imapMetaBatch bounds the number of UIDs per metadata FETCH command.
	imapMetaBatch = 256
)

// IMAPConfig configures a Source. The zero value of every optional field
// selects its documented default.
type IMAPConfig struct {
	// Addr is the server's host:port.
	Addr string
	// TLS is "implicit" (default; usually port 993), "starttls" or "none".
	TLS string
	// AllowPlaintext permits TLS "none" to a host that is not loopback.
	AllowPlaintext bool
	// InsecureSkipVerify disables certificate verification (SPEC §6: only
	// when explicitly configured).
	InsecureSkipVerify bool
	// Username and Password are the account's credentials. Password is never
	// logged (see LogValue).
	Username string
	Password string
	// Auth is "plain" (AUTHENTICATE PLAIN), "login" (the LOGIN command),
	// "xoauth2" or "oauthbearer" (an OAuth 2 access token from
	// TokenSource), or empty: PLAIN when the server advertises AUTH=PLAIN,
	// LOGIN otherwise.
	Auth string
	// TokenSource supplies the access token for xoauth2 and oauthbearer; a
	// fresh one is asked for before every login. Without it, Password is
	// sent as a static access token.
	TokenSource TokenSource
	// Folder is the mailbox watched for new mail (default INBOX).
	Folder string
	// ProcessedFolder receives every message once it is handled. Required;
	// created when missing.
	ProcessedFolder string
	// Name identifies this mailbox in checkpoints, logs and Fetched.Mailbox.
	// It must be unique among the gateway's mailboxes; default
	// Username + "/" + Folder.
	Name string
	// IDLE enables IMAP IDLE when the server supports it; otherwise the
	// folder is polled every PollInterval.
	IDLE bool
	// PollInterval is the polling period without IDLE (default 30s).
	PollInterval time.Duration
	// IdleRestart is how often IDLE is stopped and restarted (default 9m:
	// some servers and NATs drop idle connections after ~10 minutes). The
	// folder is also re-SELECTed at this period to catch a UIDVALIDITY
	// change, in both IDLE and polling mode.
	IdleRestart time.Duration
	// CommandTimeout bounds every wait for the server: dial, TLS handshake,
	// greeting, each command's response, draining a body (default 60s). On
	// expiry the connection is closed and re-established.
	CommandTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff between
	// reconnects (with jitter) and between retries of a message that failed
	// (defaults 1s and 5m).
	BackoffMin time.Duration
	BackoffMax time.Duration
}

// LogValue implements slog.LogValuer without the password.
func (c IMAPConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("addr", c.Addr),
		slog.String("tls", c.TLS),
		slog.String("username", c.Username),
		slog.String("auth", c.Auth),
		slog.Bool("oauth", c.TokenSource != nil),
		slog.String("folder", c.Folder),
		slog.String("processed_folder", c.ProcessedFolder),
		slog.Bool("idle", c.IDLE),
	)
}

// withDefaults returns c with every unset optional field defaulted.
func (c IMAPConfig) withDefaults() IMAPConfig {
	if c.TLS == "" {
		c.TLS = imapTLSImplicit
	}
	c.TLS = strings.ToLower(c.TLS)
	c.Auth = strings.ToLower(c.Auth)
	if c.Folder == "" {
		c.Folder = imapDefaultFolder
	}
	if c.Name == "" {
		c.Name = c.Username + "/" + c.Folder
	}
	if c.PollInterval <= 0 {
		c.PollInterval = imapDefaultPollInterval
	}
	if c.IdleRestart <= 0 {
		c.IdleRestart = imapDefaultIdleRestart
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = imapDefaultCommandTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = imapDefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = imapDefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	return c
}

// Validate reports every problem of the configuration at once (defaults
// applied first). Run calls it and refuses to start on error.
func (c IMAPConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("imap addr %q: want host:port: %w", c.Addr, err))
	}
	switch c.TLS {
	case imapTLSImplicit, imapTLSStartTLS:
	case imapTLSNone:
		if err == nil && !c.AllowPlaintext && !imapIsLoopback(host) {
			errs = append(errs, fmt.Errorf("imap tls none: refusing to send credentials in plaintext to non-loopback host %q (set allow_plaintext to override)", host))
		}
	default:
		errs = append(errs, fmt.Errorf("imap tls %q: want implicit, starttls or none", c.TLS))
	}
	switch c.Auth {
	case "", imapAuthPlain, imapAuthLogin:
	case imapAuthXOAuth2, imapAuthOAuthBearer:
		if c.TokenSource == nil && c.Password == "" {
			errs = append(errs, fmt.Errorf("imap auth %s: needs a token source (or a static access token as the password)", c.Auth))
		}
	default:
		errs = append(errs, fmt.Errorf("imap auth %q: want plain, login, xoauth2 or oauthbearer", c.Auth))
	}
	if c.Username == "" {
		errs = append(errs, errors.New("imap username: required"))
	}
	if c.ProcessedFolder == "" {
		errs = append(errs, errors.New("imap processed folder: required"))
	} else if strings.EqualFold(c.ProcessedFolder, c.Folder) {
		errs = append(errs, fmt.Errorf("imap processed folder %q: must differ from the watched folder", c.ProcessedFolder))
	}
	return errors.Join(errs...)
}

// imapIsLoopback reports whether host names the local machine.
func imapIsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Fetched is one message handed to a Handler.
type Fetched struct {
	// Mailbox is IMAPConfig.Name: the identity under which the store keeps
	// the (UIDValidity, UID) of this message.
	Mailbox string
	// Folder is the IMAP folder the message was read from.
	Folder      string
	UIDValidity uint32
	UID         uint32
	// InternalDate is when the server received the message (SPEC §3a: the
	// SLA clock starts here).
	InternalDate time.Time
	// Size is the server's RFC822.SIZE.
	Size int64
	// Body streams the raw message (BODY.PEEK[], so \Seen is not set) straight
	// from the connection. It is valid only during the Handler call and must
	// not be read after the Handler returns. A body cut short by a dropped
	// connection yields an error wrapping io.ErrUnexpectedEOF, never a silent
	// io.EOF. Read it promptly: the server connection waits on it.
	Body io.Reader
	// Raw, when set, is the whole message, already in memory (a concurrent
	// Source reads bodies whole; LMTP receives them so): the bytes Body
	// reads, which the handler may use instead of copying them. Valid only
	// during the Handler call.
	Raw []byte
	// Turn and Release, when set (a concurrent Source), order the
	// handler's order-sensitive work (WithConcurrency, OrderKey): Turn
	// waits until every earlier message that shares an AtTurn key with
	// this one is done with it, Release tells that this one is done with
	// its Released keys. The handler calls them from its own goroutine,
	// Turn before that work (and before anything it writes) and Release
	// after it; calling either again is harmless, and returning does both.
	// Turn returns ErrTurnLost when an earlier message was left for the
	// next run (shutdown): the handler then returns that error at once.
	Turn    func() error
	Release func()
	// Unprocessed is set when the source asked its processed lookup
	// (WithProcessedLookup) about this message's UID just before fetching
	// it, and it had no processed marker: the handler need not ask again.
	Unprocessed bool
}

// Handler processes one message. Returning nil means "stored durably": the
// source then moves the message to the processed folder. Returning an error
// leaves it in the folder; it is retried later with exponential backoff while
// the following messages go on. The handler may see a message again (after a
// crash, a dropped connection or a failed move), so it must be idempotent.
// Returning nil after a read error on Body is not trusted (the message is
// retried); returning nil without reading Body to the end is.
type Handler func(ctx context.Context, m *Fetched) error

// Checkpoints remembers a mailbox's progress: its UIDVALIDITY and the highest
// UID handled and moved. The Redis store implements it.
type Checkpoints interface {
	Checkpoint(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error)
	SetCheckpoint(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error
}

// DialFunc opens the TCP connection to the server (before TLS).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// SourceOption customises a Source.
type SourceOption func(*Source)

// ProcessedLookup reports, for UIDs of a mailbox's folder generation, which
// carry a processed marker (store.ProcessedMany).
type ProcessedLookup func(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32) ([]bool, error)

// WithProcessedLookup has the Source ask lookup, once for each batch of
// new messages, which of them were already processed (handled, and then not
// moved: a crash or a failed move), and mark the others Fetched.Unprocessed,
// so that the handler's own per-message check, a round trip each, is saved.
// A failed lookup only leaves the messages unmarked.
func WithProcessedLookup(lookup ProcessedLookup) SourceOption {
	return func(s *Source) { s.processedLookup = lookup }
}

// WithDialer replaces the network dialer (tests use it to inject faults).
func WithDialer(d DialFunc) SourceOption {
	return func(s *Source) {
		if d != nil {
			s.dial = d
		}
	}
}

// WithConcurrency lets the Source handle up to workers messages at once.
// keys names, for a message's raw bytes (at most ConcurrentMaxBytes; larger
// messages are handled alone, streamed), what it may share with other
// messages; messages that share a key are handled one after another in UID
// (arrival) order, and all others side by side. With AtTurn and Released
// keys that order covers only the handlers' order-sensitive work, between
// Fetched.Turn and Fetched.Release: the rest of one overlaps the next.
// Reading from and moving in the folder stays on one connection, in order;
// handlers overlap. A message is moved only after its own handler
// succeeded, so a crash loses nothing; the checkpoint is written after each
// batch. workers <= 1 (the default) handles one message at a time.
func WithConcurrency(workers int, keys func(raw []byte) []OrderKey) SourceOption {
	return func(s *Source) {
		if workers > 1 && keys != nil {
			s.workers, s.keys = workers, keys
		}
	}
}

// An OrderKey is something a message may share with other messages of a
// backlog (WithConcurrency): messages that share one are handled in
// arrival order.
type OrderKey struct {
	Name string
	// AtTurn: the message waits for the earlier messages that share the
	// key in Fetched.Turn, which its handler calls before its
	// order-sensitive work, rather than before its handler begins.
	AtTurn bool
	// Released: the message holds the key until its handler calls
	// Fetched.Release, rather than until it returns.
	Released bool
}

// String is the key's name followed by its flags, if any.
func (k OrderKey) String() string {
	switch {
	case k.AtTurn && k.Released:
		return k.Name + " (at turn, until released)"
	case k.AtTurn:
		return k.Name + " (at turn)"
	case k.Released:
		return k.Name + " (until released)"
	}
	return k.Name
}

// ConcurrentMaxBytes is the largest message a concurrent Source reads
// into memory and hands to a worker; a larger one waits for the others and
// is streamed to the handler alone.
const ConcurrentMaxBytes = 1 << 20

// WithClock replaces time.Now for deciding when a failed message is due for
// another attempt. Waiting itself always uses real timers.
func WithClock(now func() time.Time) SourceOption {
	return func(s *Source) {
		if now != nil {
			s.now = now
		}
	}
}

// WithTLSConfig sets the base TLS configuration (e.g. RootCAs for a private
// CA). ServerName defaults to the host of IMAPConfig.Addr and
// IMAPConfig.InsecureSkipVerify still applies.
func WithTLSConfig(c *tls.Config) SourceOption {
	return func(s *Source) {
		if c != nil {
			s.tlsBase = c.Clone()
		}
	}
}

// SourceStats is a snapshot of a Source's counters, for metrics.
type SourceStats struct {
	Handled            uint64 // handler returned nil and the message was moved
	HandlerErrors      uint64 // handler returned an error (or panicked)
	MoveErrors         uint64 // moving a handled message failed
	Sessions           uint64 // connections that reached the selected folder
	Reconnects         uint64 // sessions that ended and were retried
	IdleCycles         uint64 // IDLE commands issued
	Polls              uint64 // polling passes without IDLE
	Notifications      uint64 // EXISTS updates received from the server
	UIDValidityChanges uint64
	PendingRetry       int    // messages waiting for another attempt
	Connected          bool   // a session currently has the folder selected
	Mode               string // "idle" or "poll" while connected
	UIDValidity        uint32 // of the folder, from the last SELECT
	LastUID            uint32 // highest UID handled and moved
}

// Source reads one IMAP folder and hands its messages to a Handler. Create it
// with NewSource; it is safe to call Stats while Run is running.
type Source struct {
	cfg     IMAPConfig
	cp      Checkpoints
	log     *slog.Logger
	dial    DialFunc
	now     func() time.Time
	tlsBase *tls.Config
	workers int                         // handlers at once (WithConcurrency); <= 1: one
	keys    func(raw []byte) []OrderKey // ordering keys (WithConcurrency)
	// processedLookup marks new messages Fetched.Unprocessed
	// (WithProcessedLookup); nil: no lookup.
	processedLookup ProcessedLookup
	// batchHandler handles runs of messages read together (RunBatches);
	// nil: each is handled alone. Set by RunBatches while running.
	batchHandler BatchHandler
	// pool runs the handlers (WithConcurrency) on goroutines whose stacks
	// stay grown from one message to the next.
	pool gopool.Pool

	running atomic.Bool
	// notify receives a token when the server reports new messages; the
	// unilateral-data handler only does a non-blocking send (LIBNOTES §1).
	notify chan struct{}

	handled, handlerErrors, moveErrors      atomic.Uint64
	sessions, reconnects, idleCycles, polls atomic.Uint64
	notifications, uidValidityChanges       atomic.Uint64

	// tokenInvalidated is set once a refused access token was invalidated
	// and cleared by the next successful login, so that a server refusing
	// every token does not cost a token request per reconnect.
	tokenInvalidated atomic.Bool

	mu          sync.Mutex
	retries     map[imapMsgKey]*imapRetry // guarded by mu
	connected   bool
	mode        string
	uidValidity uint32
	lastUID     uint32
}

// imapMsgKey names a message for the lifetime of a UIDVALIDITY.
type imapMsgKey struct{ uidValidity, uid uint32 }

// imapStage is how far a message got when its processing was interrupted.
type imapStage int

const (
	imapStageNew     imapStage = iota // handler not yet successful
	imapStageHandled                  // handler returned nil: only the move is left
	imapStageCopied                   // COPY fallback: copied, \Deleted not yet set
)

// imapRetry tracks a message whose processing failed.
type imapRetry struct {
	attempts int
	next     time.Time
	stage    imapStage
	// stream: the body turned out larger than ConcurrentMaxBytes although
	// the server listed it smaller; the next attempt streams it.
	stream bool
}

// NewSource returns a Source for cfg. cp keeps the checkpoints; log may be
// nil (logging is then discarded).
func NewSource(cfg IMAPConfig, cp Checkpoints, log *slog.Logger, opts ...SourceOption) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	d := &net.Dialer{KeepAlive: 15 * time.Second}
	s := &Source{
		cfg:     cfg,
		cp:      cp,
		log:     log.With(slog.String("mailbox", cfg.Name)),
		dial:    d.DialContext,
		now:     time.Now,
		notify:  make(chan struct{}, 1),
		retries: make(map[imapMsgKey]*imapRetry),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Stats returns a snapshot of the counters.
func (s *Source) Stats() SourceStats {
	st := SourceStats{
		Handled:            s.handled.Load(),
		HandlerErrors:      s.handlerErrors.Load(),
		MoveErrors:         s.moveErrors.Load(),
		Sessions:           s.sessions.Load(),
		Reconnects:         s.reconnects.Load(),
		IdleCycles:         s.idleCycles.Load(),
		Polls:              s.polls.Load(),
		Notifications:      s.notifications.Load(),
		UIDValidityChanges: s.uidValidityChanges.Load(),
	}
	s.mu.Lock()
	st.PendingRetry = len(s.retries)
	st.Connected = s.connected
	st.Mode = s.mode
	st.UIDValidity = s.uidValidity
	st.LastUID = s.lastUID
	s.mu.Unlock()
	return st
}

// Run processes the folder until ctx is cancelled, reconnecting with
// exponential backoff and jitter after any failure. It returns nil once ctx is
// done, and an error at once only for an invalid configuration or a second
// concurrent call.
func (s *Source) Run(ctx context.Context, h Handler) error {
	return s.RunBatches(ctx, h, nil)
}

// BatchHandler handles several messages of the folder at once, read whole
// (Fetched.Raw), in arrival (UID) order, and returns one error per message,
// each as a Handler's. It must give every message the outcome it would
// have had handled alone after the ones before it. The source orders the
// batch as a whole: it begins once every earlier message is done with its
// ordered work (WithConcurrency), every later one waits until it is done,
// and its Fetched have no Turn or Release (nor are their ordering keys
// computed).
type BatchHandler func(ctx context.Context, fs []*Fetched) []error

// RunBatches is Run, with bh (when not nil, and handlers overlap:
// WithConcurrency) handling each run of small messages that one UID FETCH
// reads (up to 32 messages, 1 MiB) in one call: a handler may then store
// what they cause together, in fewer round trips. Messages read alone (a
// large one, one the server left out of a batch's answer) go to h, and so
// does every message of a batch whose handler panicked or answered the
// wrong number of errors, one after another.
func (s *Source) RunBatches(ctx context.Context, h Handler, bh BatchHandler) error {
	if h == nil {
		return errors.New("run imap source: nil handler")
	}
	if s.cp == nil {
		return errors.New("run imap source: nil checkpoints")
	}
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("run imap source: %w", err)
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("run imap source: already running")
	}
	defer s.running.Store(false)
	s.batchHandler = bh
	s.log.Info("imap source starting", slog.Any("config", s.cfg))

	failures := 0
	for {
		start := time.Now()
		res, err := s.session(ctx, h)
		s.setDisconnected()
		if ctx.Err() != nil {
			return nil
		}
		if res.handled > 0 || time.Since(start) >= imapHealthySession {
			failures = 0
		}
		failures++
		delay := s.reconnectDelay(failures)
		s.reconnects.Add(1)
		s.log.Warn("imap session ended; reconnecting",
			slog.Any("err", err), slog.Bool("was_ready", res.ready), slog.Duration("retry_in", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// reconnectDelay is the backoff before reconnect attempt n (1-based): doubling
// from BackoffMin up to BackoffMax, jittered uniformly over its upper half.
func (s *Source) reconnectDelay(n int) time.Duration {
	d := imapBackoff(s.cfg.BackoffMin, s.cfg.BackoffMax, n)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// imapBackoff doubles min n-1 times, capped at max.
func imapBackoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

func (s *Source) setDisconnected() {
	s.mu.Lock()
	s.connected = false
	s.mode = ""
	s.mu.Unlock()
}

// onMailbox is the client's unilateral-data handler. It runs on the client's
// reader goroutine, so it must never block or issue commands.
func (s *Source) onMailbox(numMessages *uint32) {
	if numMessages == nil {
		return
	}
	s.notifications.Add(1)
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// retryState returns the stage a message reached and whether it is due for
// an attempt now.
func (s *Source) retryState(k imapMsgKey) (imapStage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.retries[k]
	if !ok {
		return imapStageNew, true
	}
	return r.stage, !s.now().Before(r.next)
}

// recordFailure schedules the next attempt for k and returns the attempt
// count. stage is how far the message got.
func (s *Source) recordFailure(k imapMsgKey, stage imapStage) (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.retries[k]
	if !ok {
		r = &imapRetry{}
		s.retries[k] = r
	}
	r.attempts++
	if stage > r.stage {
		r.stage = stage
	}
	d := imapBackoff(s.cfg.BackoffMin, s.cfg.BackoffMax, r.attempts)
	r.next = s.now().Add(d)
	return r.attempts, d
}

// streamNext records that k must be streamed, not read whole, on its next
// attempts.
func (s *Source) streamNext(k imapMsgKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.retries[k]; ok {
		r.stream = true
	}
}

// mustStream reports whether k is to be streamed whatever its listed size.
func (s *Source) mustStream(k imapMsgKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.retries[k]
	return ok && r.stream
}

// forgetRetry drops the retry state of k once it has been moved.
func (s *Source) forgetRetry(k imapMsgKey) {
	s.mu.Lock()
	delete(s.retries, k)
	s.mu.Unlock()
}

// pruneRetries drops the retry state of messages that are no longer in the
// folder (moved by someone else, expunged, or from an old UIDVALIDITY).
func (s *Source) pruneRetries(uidValidity uint32, present map[uint32]bool) {
	s.mu.Lock()
	for k := range s.retries {
		if k.uidValidity != uidValidity || !present[k.uid] {
			delete(s.retries, k)
		}
	}
	s.mu.Unlock()
}

// nextRetry returns when the earliest pending retry is due, if any.
func (s *Source) nextRetry() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first time.Time
	for _, r := range s.retries {
		if first.IsZero() || r.next.Before(first) {
			first = r.next
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(first.Sub(s.now()), 0), true
}
