package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/northwind-it/ticketgw/oauth"
)

// errIMAPTimeout reports a server that did not answer within
// IMAPConfig.CommandTimeout; the connection is then closed.
var errIMAPTimeout = errors.New("no response from imap server")

// imapCloseWait bounds how long closing a client may take before the session
// gives up on it (the client waits for its reader goroutine).
const imapCloseWait = 5 * time.Second

// imapSession is one connection to the server, from dial to close. It is used
// by one goroutine (Run's) only.
type imapSession struct {
	s    *Source
	log  *slog.Logger
	conn net.Conn // the dialled TCP connection; closing it unblocks everything
	c    *imapclient.Client
	// token is the OAuth access token for this login (xoauth2,
	// oauthbearer); never logged.
	token string
	caps  imap.CapSet // cached right after authentication

	stopAfterFunc func() bool // undoes the ctx watcher
	idle          bool

	uidValidity uint32
	lastUID     uint32
	savedUID    uint32 // lastUID as last written to the checkpoint
	lastSelect  time.Time
	needCreate  bool // a move failed with TRYCREATE
	handled     int
}

// imapSessionResult summarises a finished session for the reconnect policy.
type imapSessionResult struct {
	ready   bool // the folder was selected
	handled int  // messages handled and moved
}

// session runs one connection until it fails or ctx is done.
func (s *Source) session(ctx context.Context, h Handler) (imapSessionResult, error) {
	var res imapSessionResult
	ss, err := s.connect(ctx)
	if err != nil {
		return res, err
	}
	defer ss.close()

	if err := ss.ensureProcessedFolder(); err != nil {
		return res, err
	}
	if err := ss.selectFolder(ctx); err != nil {
		return res, err
	}
	res.ready = true
	s.sessions.Add(1)

	ss.idle = s.cfg.IDLE && ss.caps.Has(imap.CapIdle)
	mode := "poll"
	if ss.idle {
		mode = "idle"
	} else if s.cfg.IDLE {
		ss.log.Info("imap server lacks IDLE; polling", slog.Duration("poll_interval", s.cfg.PollInterval))
	}
	s.mu.Lock()
	s.connected = true
	s.mode = mode
	s.mu.Unlock()
	ss.log.Info("imap session ready",
		slog.String("mode", mode),
		slog.Bool("move", ss.caps.Has(imap.CapMove)),
		slog.Bool("uidplus", ss.caps.Has(imap.CapUIDPlus)),
		slog.Uint64("uidvalidity", uint64(ss.uidValidity)),
		slog.Uint64("last_uid", uint64(ss.lastUID)))

	for {
		err := ss.pass(ctx, h)
		res.handled = ss.handled
		if err != nil {
			return res, err
		}
		resync, err := ss.wait(ctx)
		if err != nil {
			return res, err
		}
		if resync {
			if err := ss.selectFolder(ctx); err != nil {
				return res, err
			}
		}
	}
}

// connect dials, sets up TLS, reads the greeting, authenticates and caches
// the capabilities.
func (s *Source) connect(ctx context.Context) (*imapSession, error) {
	// The access token comes first: without one there is no point in
	// connecting, and fetching it must not eat into the server's login
	// timer.
	token, err := s.accessToken(ctx)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
	conn, err := s.dial(dctx, "tcp", s.cfg.Addr)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.cfg.Addr, err)
	}
	ss := &imapSession{s: s, log: s.log, conn: conn, token: token}
	ss.stopAfterFunc = context.AfterFunc(ctx, func() { conn.Close() })
	if err := ss.open(ctx); err != nil {
		ss.close()
		return nil, err
	}
	return ss, nil
}

// open does everything connect does after the dial.
func (ss *imapSession) open(ctx context.Context) error {
	cfg := ss.s.cfg
	opts := &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) { ss.s.onMailbox(d.NumMessages) },
		},
	}
	switch cfg.TLS {
	case imapTLSImplicit:
		tc := ss.s.tlsConfig()
		if tc.NextProtos == nil {
			tc.NextProtos = []string{"imap"}
		}
		tlsConn := tls.Client(ss.conn, tc)
		if err := ss.guard("tls handshake", func() error { return tlsConn.HandshakeContext(ctx) }); err != nil {
			return err
		}
		ss.c = imapclient.New(tlsConn, opts)
	case imapTLSStartTLS:
		opts.TLSConfig = ss.s.tlsConfig()
		err := ss.guard("starttls", func() error {
			c, err := imapclient.NewStartTLS(ss.conn, opts)
			ss.c = c
			return err
		})
		if err != nil {
			return err
		}
	default: // imapTLSNone, allowed by Validate
		ss.c = imapclient.New(ss.conn, opts)
	}
	if err := ss.guard("read greeting", ss.c.WaitGreeting); err != nil {
		return err
	}
	if ss.c.State() == imap.ConnStateNotAuthenticated {
		if err := ss.login(); err != nil {
			return err
		}
	}
	// go-imap clears the capabilities after authentication and Caps() may
	// block; fetch and cache them now, before anything depends on them.
	return ss.guard("read capabilities", func() error {
		caps, err := ss.c.Capability().Wait()
		ss.caps = caps
		return err
	})
}

// login authenticates with the configured method.
func (ss *imapSession) login() error {
	cfg := ss.s.cfg
	method := cfg.Auth
	if method == "" {
		method = imapAuthLogin
		err := ss.guard("read capabilities", func() error {
			if slices.ContainsFunc(ss.c.Caps().AuthMechanisms(), func(m string) bool { return strings.EqualFold(m, "PLAIN") }) {
				method = imapAuthPlain
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	var err error
	switch method {
	case imapAuthXOAuth2, imapAuthOAuthBearer:
		err = ss.authenticateToken(method)
	case imapAuthPlain:
		err = ss.guard("authenticate plain", func() error {
			return ss.c.Authenticate(sasl.NewPlainClient("", cfg.Username, cfg.Password))
		})
	default:
		err = ss.guard("login", func() error { return ss.c.Login(cfg.Username, cfg.Password).Wait() })
	}
	if err != nil {
		return fmt.Errorf("log in as %q: %w", cfg.Username, err)
	}
	return nil
}

// accessToken returns the OAuth access token for the next login, or "" for
// the password methods.
func (s *Source) accessToken(ctx context.Context) (string, error) {
	if s.cfg.Auth != imapAuthXOAuth2 && s.cfg.Auth != imapAuthOAuthBearer {
		return "", nil
	}
	if s.cfg.TokenSource == nil {
		return s.cfg.Password, nil // a static token (Validate requires one)
	}
	tctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
	defer cancel()
	token, err := s.cfg.TokenSource.Token(tctx)
	if err != nil {
		return "", fmt.Errorf("log in as %q: get access token: %w", s.cfg.Username, err)
	}
	return token, nil
}

// authenticateToken runs AUTHENTICATE XOAUTH2 or OAUTHBEARER with the
// session's access token. When the server refuses the token, the token
// source is told once (see Source.tokenRefused).
func (ss *imapSession) authenticateToken(method string) error {
	cfg := ss.s.cfg
	mech := strings.ToUpper(method)
	var offered []string
	err := ss.guard("read capabilities", func() error {
		offered = ss.c.Caps().AuthMechanisms()
		return nil
	})
	if err != nil {
		return err
	}
	if len(offered) > 0 && !slices.ContainsFunc(offered, func(m string) bool { return strings.EqualFold(m, mech) }) {
		return fmt.Errorf("server offers AUTH=%s, not %s", strings.Join(offered, " AUTH="), mech)
	}
	host, portStr, _ := net.SplitHostPort(cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	cl, err := oauth.NewSASLClient(mech, cfg.Username, ss.token, host, port)
	if err != nil {
		return err
	}
	err = ss.guard("authenticate "+method, func() error { return ss.c.Authenticate(cl) })
	if err == nil {
		ss.s.tokenInvalidated.Store(false)
		return nil
	}
	se := cl.ServerError()
	if se != nil {
		err = fmt.Errorf("%w (%w)", err, se)
	}
	if ie, ok := imapCommandFailed(err); se != nil || ok && ie.Type == imap.StatusResponseTypeNo && ie.Code != imap.ResponseCodeUnavailable {
		ss.s.tokenRefused(ss.token)
	}
	return err
}

// tokenRefused invalidates a token the server refused, once: if the fresh
// token of the next login is refused too, the problem is not the token's
// age (permissions, a disabled mailbox, IMAP switched off) and asking the
// endpoint at every reconnect would not help.
func (s *Source) tokenRefused(token string) {
	inv, ok := s.cfg.TokenSource.(TokenInvalidator)
	if !ok {
		return
	}
	if s.tokenInvalidated.Swap(true) {
		s.log.Warn("imap server refused a fresh access token too; check the application's permissions and the mailbox's IMAP access")
		return
	}
	if inv.Invalidate(token) {
		s.log.Info("imap server refused the access token; the next login gets a fresh one")
	}
}

// tlsConfig builds the client TLS configuration.
func (s *Source) tlsConfig() *tls.Config {
	c := &tls.Config{}
	if s.tlsBase != nil {
		c = s.tlsBase.Clone()
	}
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(s.cfg.Addr); err == nil {
			c.ServerName = host
		}
	}
	if s.cfg.InsecureSkipVerify {
		c.InsecureSkipVerify = true
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// close tears the connection down. It never blocks for long.
func (ss *imapSession) close() {
	ss.stopAfterFunc()
	if ss.c == nil {
		ss.conn.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		ss.c.Close()
		close(done)
	}()
	t := time.NewTimer(imapCloseWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		ss.log.Error("imap client did not shut down in time")
	}
}

// guard runs f, which waits on the server, with IMAPConfig.CommandTimeout:
// go-imap has no deadline while waiting for a response, so on expiry the
// connection is closed, which makes f return. Run's ctx closes it the same
// way.
func (ss *imapSession) guard(what string, f func() error) error {
	timeout := ss.s.cfg.CommandTimeout
	var fired atomic.Bool
	t := time.AfterFunc(timeout, func() {
		fired.Store(true)
		ss.conn.Close()
	})
	err := f()
	t.Stop()
	if fired.Load() {
		return fmt.Errorf("%s: %w within %s", what, errIMAPTimeout, timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// imapCommandFailed reports whether err is a NO or BAD answer to a command,
// as opposed to a broken connection.
func imapCommandFailed(err error) (*imap.Error, bool) {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie, true
	}
	return nil, false
}

// ensureProcessedFolder creates the processed folder unless it exists.
func (ss *imapSession) ensureProcessedFolder() error {
	name := ss.s.cfg.ProcessedFolder
	err := ss.guard("create "+name, func() error { return ss.c.Create(name, nil).Wait() })
	if err == nil {
		ss.log.Info("created processed folder", slog.String("folder", name))
		return nil
	}
	ie, ok := imapCommandFailed(err)
	if !ok {
		return err
	}
	if ie.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	// Not every server sends ALREADYEXISTS: see whether the folder is there.
	serr := ss.guard("status "+name, func() error {
		_, err := ss.c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		return err
	})
	if serr != nil {
		return fmt.Errorf("create processed folder: %w", err)
	}
	return nil
}

// selectFolder (re-)selects the watched folder and reconciles its
// UIDVALIDITY with the checkpoint.
func (ss *imapSession) selectFolder(ctx context.Context) error {
	s := ss.s
	var data *imap.SelectData
	err := ss.guard("select "+s.cfg.Folder, func() error {
		d, err := ss.c.Select(s.cfg.Folder, nil).Wait()
		data = d
		return err
	})
	if err != nil {
		return err
	}
	ss.lastSelect = time.Now()
	uv := data.UIDValidity
	if uv == 0 {
		ss.log.Warn("imap server sent no UIDVALIDITY")
	}
	if ss.uidValidity != 0 && ss.uidValidity == uv {
		return nil
	}
	cpUV, last, err := s.cp.Checkpoint(ctx, s.cfg.Name)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if cpUV != uv {
		if cpUV != 0 {
			s.uidValidityChanges.Add(1)
			ss.log.Warn("UIDVALIDITY changed: UIDs restart; the folder is rescanned and the store dedupes",
				slog.Uint64("old_uidvalidity", uint64(cpUV)),
				slog.Uint64("uidvalidity", uint64(uv)),
				slog.Uint64("old_last_uid", uint64(last)))
		}
		last = 0
		if err := s.cp.SetCheckpoint(ctx, s.cfg.Name, uv, 0); err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
	}
	ss.uidValidity, ss.lastUID, ss.savedUID = uv, last, last
	s.mu.Lock()
	s.uidValidity, s.lastUID = uv, last
	s.mu.Unlock()
	return nil
}

// imapMeta is what the first, cheap FETCH tells about a message.
type imapMeta struct {
	uid          imap.UID
	internalDate time.Time
	size         int64
	deleted      bool
	unprocessed  bool      // the processed lookup found no marker (Fetched.Unprocessed)
	lookedUp     time.Time // when
}

// processedLookupFresh is how long a processed lookup's answer is taken
// for true: a message whose handler starts later (a long batch) is checked
// again by its handler, so that the window in which another instance (one
// that took the mailbox over meanwhile) could have stored it stays short.
const processedLookupFresh = 2 * time.Second

// fetchedUnprocessed is Fetched.Unprocessed for m: the lookup found no
// marker, and not long ago.
func (ss *imapSession) fetchedUnprocessed(m imapMeta) bool {
	return m.unprocessed && ss.s.now().Sub(m.lookedUp) < processedLookupFresh
}

// pass hands every due message of the folder to h, in UID order. It returns
// an error only when the session can't go on; a failing message is recorded
// for a later retry and the pass goes on with the next one.
func (ss *imapSession) pass(ctx context.Context, h Handler) error {
	if ss.needCreate {
		if err := ss.ensureProcessedFolder(); err != nil {
			return err
		}
		ss.needCreate = false
	}
	var uids []imap.UID
	err := ss.guard("search", func() error {
		data, err := ss.c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
		if err != nil {
			return err
		}
		set, _ := data.All.(imap.UIDSet)
		nums, ok := set.Nums()
		if !ok {
			return fmt.Errorf("server answered with a dynamic UID set %q", set)
		}
		uids = nums
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(uids)
	present := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		present[uint32(u)] = true
	}
	ss.s.pruneRetries(ss.uidValidity, present)

	var run *imapRunner
	if ss.s.workers > 1 {
		run = newIMAPRunner(ss, h)
	}
	for batch := range slices.Chunk(uids, imapMetaBatch) {
		if err := ss.batch(ctx, h, run, batch); err != nil {
			return err
		}
	}
	return nil
}

// batch handles the messages of one chunk of UIDs that are due, with run
// when handlers overlap (nil: one at a time).
func (ss *imapSession) batch(ctx context.Context, h Handler, run *imapRunner, batch []imap.UID) (err error) {
	defer ss.flushCheckpoint(ctx)
	if run != nil {
		defer func() {
			if err != nil && run.connErr == nil {
				// The session ends: what is still in flight is only
				// recorded (a handled message's move is left for the next
				// session), no command is tried on the connection.
				run.connErr = err
			}
			if werr := run.wait(ctx); err == nil {
				err = werr
			}
		}()
	}
	var due []imap.UID
	for _, u := range batch {
		if _, ok := ss.s.retryState(imapMsgKey{ss.uidValidity, uint32(u)}); ok {
			due = append(due, u)
		}
	}
	if len(due) == 0 {
		return nil
	}
	metas, err := ss.fetchMeta(due)
	if err != nil {
		return err
	}
	ss.lookUpProcessed(ctx, metas)
	// group collects new messages to be read with one UID FETCH
	// (handlers overlap): runs of batchable ones, in UID order.
	var group []imapMeta
	var groupBytes int64
	flush := func() error {
		g := group
		group, groupBytes = nil, 0
		if len(g) == 0 {
			return nil
		}
		return run.submitGroup(ctx, g)
	}
	for _, u := range due {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, ok := metas[u]
		if !ok || m.deleted {
			continue // expunged or deleted by another client meanwhile
		}
		k := imapMsgKey{ss.uidValidity, uint32(m.uid)}
		stage, _ := ss.s.retryState(k)
		switch {
		case run != nil && stage == imapStageNew && run.batchable(m, k):
			if len(group) == imapBodyBatch || groupBytes+m.size > imapBodyBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			group = append(group, m)
			groupBytes += m.size
			continue
		case run != nil && stage == imapStageNew:
			if err = flush(); err == nil {
				err = run.submit(ctx, m, k)
			}
		default:
			if err = flush(); err == nil {
				err = ss.process(ctx, h, m)
			}
		}
		if err != nil {
			return err
		}
	}
	return flush()
}

// lookUpProcessed asks the Source's processed lookup about the new
// messages of metas and marks those without a marker unprocessed.
func (ss *imapSession) lookUpProcessed(ctx context.Context, metas map[imap.UID]imapMeta) {
	if ss.s.processedLookup == nil {
		return
	}
	var uids []uint32
	for u, m := range metas {
		if stage, _ := ss.s.retryState(imapMsgKey{ss.uidValidity, uint32(u)}); stage == imapStageNew && !m.deleted {
			uids = append(uids, uint32(u))
		}
	}
	if len(uids) == 0 {
		return
	}
	at := ss.s.now()
	done, err := ss.s.processedLookup(ctx, ss.s.cfg.Name, ss.uidValidity, uids)
	if err != nil || len(done) != len(uids) {
		ss.log.Debug("processed lookup failed; each message is checked by its handler", "err", err)
		return
	}
	for i, u := range uids {
		if !done[i] {
			m := metas[imap.UID(u)]
			m.unprocessed, m.lookedUp = true, at
			metas[imap.UID(u)] = m
		}
	}
}

// fetchMeta reads UID, FLAGS, INTERNALDATE and RFC822.SIZE of uids.
func (ss *imapSession) fetchMeta(uids []imap.UID) (map[imap.UID]imapMeta, error) {
	metas := make(map[imap.UID]imapMeta, len(uids))
	err := ss.guard("fetch metadata", func() error {
		bufs, err := ss.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		}).Collect()
		if err != nil {
			return err
		}
		for _, b := range bufs {
			if b.UID == 0 {
				continue
			}
			metas[b.UID] = imapMeta{
				uid:          b.UID,
				internalDate: b.InternalDate,
				size:         b.RFC822Size,
				deleted:      slices.Contains(b.Flags, imap.FlagDeleted),
			}
		}
		return nil
	})
	return metas, err
}

// process takes one message through handler and move.
func (ss *imapSession) process(ctx context.Context, h Handler, m imapMeta) error {
	k := imapMsgKey{ss.uidValidity, uint32(m.uid)}
	stage, _ := ss.s.retryState(k)
	if stage == imapStageNew {
		ok, err := ss.fetchAndHandle(ctx, h, m, k)
		if !ok || err != nil {
			return err
		}
		stage = imapStageHandled
	}
	return ss.move(ctx, k, stage)
}

// openBody starts fetching the message's body. It returns the literal to
// read (nil, with the failure recorded, when there is none: err is then
// non-nil only when the session can't go on); the caller must read it and
// then finish cmd (msg.Next until nil, cmd.Close).
func (ss *imapSession) openBody(ctx context.Context, m imapMeta, k imapMsgKey) (cmd *imapclient.FetchCommand, msg *imapclient.FetchMessageData, lit imap.LiteralReader, err error) {
	log := ss.log.With(slog.Uint64("uid", uint64(k.uid)))
	err = ss.guard("fetch body", func() error {
		cmd = ss.c.Fetch(imap.UIDSetNum(m.uid), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		msg = cmd.Next()
		if msg == nil {
			return nil
		}
		for {
			item := msg.Next()
			if item == nil {
				return nil
			}
			// The literal must be consumed before the next Next() (#667).
			if b, isBody := item.(imapclient.FetchItemDataBodySection); isBody && b.Literal != nil {
				lit = b.Literal
				return nil
			}
		}
	})
	if err != nil {
		if lit != nil {
			_, _ = io.Copy(io.Discard, lit) // the connection is closed: fails fast
		}
		ss.s.recordFailure(k, imapStageNew)
		return nil, nil, nil, err
	}
	if lit == nil {
		// Expunged meanwhile, a NIL body, or UID sent after the literal (the
		// response then went to the unilateral handler): retry later.
		cerr := ss.guard("fetch body", func() error {
			if msg != nil {
				for msg.Next() != nil {
				}
			}
			return cmd.Close()
		})
		attempts, d := ss.s.recordFailure(k, imapStageNew)
		lvl := slog.LevelWarn
		if attempts >= imapPersistentFailure {
			lvl = slog.LevelError
		}
		log.Log(ctx, lvl, "imap server returned no body; will retry",
			slog.Int("attempt", attempts), slog.Duration("retry_in", d), slog.Any("err", cerr))
		if _, failed := imapCommandFailed(cerr); failed {
			cerr = nil
		}
		return nil, nil, nil, cerr
	}
	return cmd, msg, lit, nil
}

// fetchAndHandle streams the message's body to h. ok reports that h returned
// nil after reading without error, i.e. that the message is stored. err is
// non-nil only when the session can't go on; failures are recorded.
func (ss *imapSession) fetchAndHandle(ctx context.Context, h Handler, m imapMeta, k imapMsgKey) (ok bool, err error) {
	log := ss.log.With(slog.Uint64("uid", uint64(k.uid)))
	cmd, msg, lit, err := ss.openBody(ctx, m, k)
	if lit == nil || err != nil {
		return false, err
	}

	body := &imapBody{r: lit, size: lit.Size()}
	size := m.size
	if size == 0 {
		size = lit.Size()
	}
	f := &Fetched{
		Mailbox:      ss.s.cfg.Name,
		Folder:       ss.s.cfg.Folder,
		UIDValidity:  k.uidValidity,
		UID:          k.uid,
		InternalDate: m.internalDate,
		Size:         size,
		Body:         body,
		Unprocessed:  ss.fetchedUnprocessed(m),
	}
	herr := ss.callHandler(ctx, h, f)
	readErr := body.err // an error the handler saw while reading
	// Drain what the handler left unread before touching the command again
	// (#667). go-imap bounds a literal's reading time (5 min from its
	// start) and Run's ctx closes the connection, so this can't hang.
	_, cerr := io.Copy(io.Discard, body)
	if cerr != nil {
		cerr = fmt.Errorf("drain message body: %w", cerr)
	} else {
		cerr = ss.finishFetch(k, cmd, msg)
	}

	switch {
	case herr != nil:
		ss.handlerFailed(ctx, k, herr)
		return false, cerr
	case readErr != nil:
		ss.s.handlerErrors.Add(1)
		attempts, d := ss.s.recordFailure(k, imapStageNew)
		log.Error("handler returned nil after a body read error; message not moved",
			slog.Any("err", readErr), slog.Int("attempt", attempts), slog.Duration("retry_in", d))
		return false, cerr
	case cerr != nil:
		// Stored, but the connection broke: after reconnecting only the
		// move is left to do.
		ss.s.recordFailure(k, imapStageHandled)
		return false, cerr
	}
	return true, nil
}

// finishFetch ends a FETCH whose body was read in full. A NO answer is
// only logged (the body arrived); any other error ends the session.
func (ss *imapSession) finishFetch(k imapMsgKey, cmd *imapclient.FetchCommand, msg *imapclient.FetchMessageData) error {
	err := ss.guard("finish fetch", func() error {
		for msg.Next() != nil {
		}
		return cmd.Close()
	})
	if _, failed := imapCommandFailed(err); failed {
		ss.log.Warn("imap fetch completed with an error", slog.Uint64("uid", uint64(k.uid)), slog.Any("err", err))
		return nil
	}
	return err
}

// handlerFailed records that the handler failed on message k: it stays in
// the folder and is retried with backoff (logged at error level once the
// failure looks persistent).
func (ss *imapSession) handlerFailed(ctx context.Context, k imapMsgKey, err error) {
	ss.s.handlerErrors.Add(1)
	attempts, d := ss.s.recordFailure(k, imapStageNew)
	lvl := slog.LevelWarn
	if attempts >= imapPersistentFailure {
		lvl = slog.LevelError
	}
	ss.log.Log(ctx, lvl, "handler failed; message stays in the folder", slog.Uint64("uid", uint64(k.uid)),
		slog.Any("err", err), slog.Int("attempt", attempts), slog.Duration("retry_in", d))
}

// callHandler runs h, turning a panic into an error so that one bad message
// can't take the gateway down.
func (ss *imapSession) callHandler(ctx context.Context, h Handler, f *Fetched) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
			ss.log.Error("handler panicked", slog.Uint64("uid", uint64(f.UID)),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		}
	}()
	return h(ctx, f)
}

// callBatch calls the batch handler on fs. ok is false when it panicked
// or answered with the wrong number of errors (logged): the batch's
// outcome is then unknown.
func (ss *imapSession) callBatch(ctx context.Context, bh BatchHandler, fs []*Fetched) (errs []error, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ss.log.Error("batch handler panicked; its messages are handled one by one", slog.Int("messages", len(fs)),
				slog.Uint64("first_uid", uint64(fs[0].UID)), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			errs, ok = nil, false
		}
	}()
	errs = bh(ctx, fs)
	if len(errs) != len(fs) {
		ss.log.Error("batch handler answered the wrong number of errors; its messages are handled one by one",
			slog.Int("errors", len(errs)), slog.Int("messages", len(fs)))
		return nil, false
	}
	return errs, true
}

// move moves a handled message to the processed folder without ever
// risking its loss: MOVE when the server has it; otherwise COPY, and only
// after the COPY succeeded STORE \Deleted, then UID EXPUNGE with UIDPLUS
// (never a plain EXPUNGE, which would remove other clients' deleted mail).
// Client.Move's own fallback is not used: it pipelines STORE and EXPUNGE
// without waiting for the COPY, and loses the message when the COPY fails.
func (ss *imapSession) move(ctx context.Context, k imapMsgKey, stage imapStage) error {
	dest := ss.s.cfg.ProcessedFolder
	set := imap.UIDSetNum(imap.UID(k.uid))
	var connErr error
	if ss.caps.Has(imap.CapMove) {
		err := ss.guard("move to "+dest, func() error {
			// Client.Move decides on its own between MOVE and the unsafe
			// fallback: make sure it will send MOVE.
			if !ss.c.Caps().Has(imap.CapMove) {
				return errors.New("capabilities lost")
			}
			_, err := ss.c.Move(set, dest).Wait()
			return err
		})
		switch {
		case imapCopyUIDBug(err):
			// The server moved it (COPYUID comes once the move is done);
			// only the client gave up on the connection.
			connErr = err
		case err != nil:
			return ss.moveFailed(k, imapStageHandled, err)
		}
	} else {
		if stage < imapStageCopied {
			err := ss.guard("copy to "+dest, func() error {
				_, err := ss.c.Copy(set, dest).Wait()
				return err
			})
			if imapCopyUIDBug(err) {
				// The COPY succeeded (COPYUID only comes with OK) but the
				// client dropped the connection: after reconnecting, set
				// \Deleted without copying a second time.
				return ss.moveFailed(k, imapStageCopied, err)
			}
			if err != nil {
				return ss.moveFailed(k, imapStageHandled, err)
			}
		}
		err := ss.guard(`store \Deleted`, func() error {
			return ss.c.Store(set, &imap.StoreFlags{
				Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted},
			}, nil).Close()
		})
		if err != nil {
			return ss.moveFailed(k, imapStageCopied, err)
		}
		if ss.caps.Has(imap.CapUIDPlus) {
			err := ss.guard("uid expunge", func() error { return ss.c.UIDExpunge(set).Close() })
			if err != nil {
				// Flagged \Deleted and copied: done as far as we are
				// concerned, the pass skips \Deleted messages.
				ss.log.Warn("uid expunge failed; message stays flagged \\Deleted",
					slog.Uint64("uid", uint64(k.uid)), slog.Any("err", err))
				if _, failed := imapCommandFailed(err); !failed {
					connErr = err
				}
			}
		}
	}

	ss.moved(k)
	return connErr
}

// moved does the bookkeeping of a message now in the processed folder.
func (ss *imapSession) moved(k imapMsgKey) {
	ss.s.forgetRetry(k)
	ss.s.handled.Add(1)
	ss.handled++
	if k.uid > ss.lastUID {
		ss.lastUID = k.uid
		ss.s.mu.Lock()
		ss.s.lastUID = k.uid
		ss.s.mu.Unlock()
	}
}

// moveMany moves handled messages to the processed folder with one UID
// MOVE (the server has MOVE). When the server refuses it (NO), each is
// moved on its own, so that the refusal is recorded against the message
// it concerns; any other failure is recorded against them all and ends
// the session, as for one message.
func (ss *imapSession) moveMany(ctx context.Context, ks []imapMsgKey) error {
	dest := ss.s.cfg.ProcessedFolder
	var set imap.UIDSet
	for _, k := range ks {
		set.AddNum(imap.UID(k.uid))
	}
	err := ss.guard("move to "+dest, func() error {
		if !ss.c.Caps().Has(imap.CapMove) {
			return errors.New("capabilities lost")
		}
		_, err := ss.c.Move(set, dest).Wait()
		return err
	})
	if err == nil || imapCopyUIDBug(err) {
		// (COPYUID comes once the move is done: only the client gave up
		// on the connection.)
		for _, k := range ks {
			ss.moved(k)
		}
		return err
	}
	if _, failed := imapCommandFailed(err); failed {
		for _, k := range ks {
			if err := ss.move(ctx, k, imapStageHandled); err != nil {
				return err
			}
		}
		return nil
	}
	for _, k := range ks {
		_ = ss.moveFailed(k, imapStageHandled, err)
	}
	return err
}

// flushCheckpoint writes the highest UID moved so far, once per batch
// rather than per message (a round trip each). Progress is not gated by the
// checkpoint (the folder is the queue), so a later write only delays it.
func (ss *imapSession) flushCheckpoint(ctx context.Context) {
	if ss.lastUID == ss.savedUID {
		return
	}
	if err := ss.s.cp.SetCheckpoint(context.WithoutCancel(ctx), ss.s.cfg.Name, ss.uidValidity, ss.lastUID); err != nil {
		ss.log.Warn("write checkpoint failed", slog.Uint64("uid", uint64(ss.lastUID)), slog.Any("err", err))
		return
	}
	ss.savedUID = ss.lastUID
}

// imapCopyUIDBug recognises go-imap beta.8 closing the connection on a
// COPYUID response code holding "*" (#749, fixed after beta.8 by #755).
func imapCopyUIDBug(err error) bool {
	return err != nil && strings.Contains(err.Error(), "dynamic number set in COPYUID")
}

// moveFailed records a failed move. A NO answer leaves the session usable;
// anything else ends it.
func (ss *imapSession) moveFailed(k imapMsgKey, stage imapStage, err error) error {
	ss.s.moveErrors.Add(1)
	attempts, d := ss.s.recordFailure(k, stage)
	ie, failed := imapCommandFailed(err)
	if !failed {
		return err
	}
	if ie.Code == imap.ResponseCodeTryCreate {
		ss.needCreate = true
	}
	ss.log.Warn("move to processed folder failed; message stays in the folder",
		slog.Uint64("uid", uint64(k.uid)), slog.Any("err", err),
		slog.Int("attempt", attempts), slog.Duration("retry_in", d))
	return nil
}

// wait blocks until there may be something to do: new mail, a retry that
// is due, or the periodic resync (resync is then true).
func (ss *imapSession) wait(ctx context.Context) (resync bool, err error) {
	s := ss.s
	untilResync := s.cfg.IdleRestart - time.Since(ss.lastSelect)
	if untilResync <= 0 {
		return true, nil
	}
	var retryC <-chan time.Time
	if d, ok := s.nextRetry(); ok {
		rt := time.NewTimer(max(d, 10*time.Millisecond))
		defer rt.Stop()
		retryC = rt.C
	}
	if !ss.idle {
		d := min(s.cfg.PollInterval, untilResync)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-s.notify:
		case <-retryC:
		case <-t.C:
			s.polls.Add(1)
		}
		return time.Since(ss.lastSelect) >= s.cfg.IdleRestart, nil
	}

	var idle *imapclient.IdleCommand
	if err := ss.guard("idle", func() error {
		var err error
		idle, err = ss.c.Idle()
		return err
	}); err != nil {
		return false, err
	}
	s.idleCycles.Add(1)
	idleDone := make(chan error, 1)
	go func() { idleDone <- idle.Wait() }()
	t := time.NewTimer(untilResync)
	defer t.Stop()
	select {
	case <-ctx.Done():
		// Run's ctx watcher closes the connection, which ends the IDLE.
		return false, ctx.Err()
	case err := <-idleDone:
		if err == nil {
			err = errors.New("server ended IDLE")
		}
		return false, fmt.Errorf("idle: %w", err)
	case <-s.notify:
	case <-retryC:
	case <-t.C:
		resync = true
	}
	err = ss.guard("stop idle", func() error {
		if err := idle.Close(); err != nil {
			return err
		}
		return <-idleDone
	})
	return resync, err
}

// imapBody is Fetched.Body: it turns a literal cut short by a dropped
// connection into io.ErrUnexpectedEOF, and remembers the first error so that
// a handler ignoring it is not trusted.
type imapBody struct {
	r    io.Reader
	size int64
	n    int64
	err  error
}

func (b *imapBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err == io.EOF && b.n < b.size {
		err = fmt.Errorf("read message body: %d of %d bytes: %w", b.n, b.size, io.ErrUnexpectedEOF)
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
