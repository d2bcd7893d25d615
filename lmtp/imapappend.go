package lmtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/oauth"
)

// IMAPAppender files messages into a mailbox's processed folder over a
// short-lived IMAP connection per call: dial, TLS, log in, APPEND (creating
// the folder when the server answers TRYCREATE), LOGOUT. Filing is rare
// enough (once per pushed message) that a connection per message costs
// little and leaves nothing to keep alive. It is safe for concurrent use.
type IMAPAppender struct {
	cfg     ingest.IMAPConfig
	dial    ingest.DialFunc
	tlsBase *tls.Config
	log     *slog.Logger
}

// AppenderOption adjusts an IMAPAppender.
type AppenderOption func(*IMAPAppender)

// WithIMAPDialer replaces the TCP dialer (tests, fault injection).
func WithIMAPDialer(d ingest.DialFunc) AppenderOption {
	return func(a *IMAPAppender) { a.dial = d }
}

// WithIMAPTLSConfig sets the base TLS configuration (e.g. RootCAs in tests).
func WithIMAPTLSConfig(c *tls.Config) AppenderOption {
	return func(a *IMAPAppender) { a.tlsBase = c }
}

// NewIMAPAppender files into cfg.ProcessedFolder of the account cfg
// describes: the same settings the IMAP source uses, including the OAuth
// token source (share the source's, so that one refresh token has one
// user); Folder, IDLE and the polling settings are not used.
// cfg.CommandTimeout, when set, bounds each call; otherwise the caller's
// context does.
func NewIMAPAppender(cfg ingest.IMAPConfig, log *slog.Logger, opts ...AppenderOption) (*IMAPAppender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TLS == "" {
		cfg.TLS = "implicit"
	}
	cfg.TLS, cfg.Auth = strings.ToLower(cfg.TLS), strings.ToLower(cfg.Auth)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &IMAPAppender{cfg: cfg, dial: (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext, log: log}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// Folder is the folder messages are filed into.
func (a *IMAPAppender) Folder() string { return a.cfg.ProcessedFolder }

// Append stores raw in the processed folder with internalDate as its
// INTERNALDATE. Nothing it waits for outlives ctx: the connection is closed
// when ctx is done.
func (a *IMAPAppender) Append(ctx context.Context, raw []byte, internalDate time.Time) (err error) {
	if a.cfg.CommandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.CommandTimeout)
		defer cancel()
	}
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("append to %s at %s: %w (%v)", a.cfg.ProcessedFolder, a.cfg.Addr, ctx.Err(), err)
		}
	}()
	conn, err := a.dial(ctx, "tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dial imap %s: %w", a.cfg.Addr, err)
	}
	// go-imap has no context and no deadline while it waits for a
	// response: closing the connection is what unblocks it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	c, err := a.open(ctx, conn)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := a.appendOnce(c, raw, internalDate); err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeTryCreate {
			return err
		}
		if err := c.Create(a.cfg.ProcessedFolder, nil).Wait(); err != nil {
			var ce *imap.Error
			if !errors.As(err, &ce) || ce.Code != imap.ResponseCodeAlreadyExists {
				return fmt.Errorf("create %s: %w", a.cfg.ProcessedFolder, err)
			}
		}
		a.log.Info("created processed folder", "folder", a.cfg.ProcessedFolder)
		if err := a.appendOnce(c, raw, internalDate); err != nil {
			return err
		}
	}
	if err := c.Logout().Wait(); err != nil {
		a.log.Debug("imap logout after append", "error", err) // the message is stored
	}
	return nil
}

// appendOnce sends one APPEND and waits for its completion.
func (a *IMAPAppender) appendOnce(c *imapclient.Client, raw []byte, internalDate time.Time) error {
	cmd := c.Append(a.cfg.ProcessedFolder, int64(len(raw)), &imap.AppendOptions{Time: internalDate})
	_, werr := cmd.Write(raw)
	cerr := cmd.Close()
	data, err := cmd.Wait()
	if err == nil {
		err = errors.Join(werr, cerr)
	}
	if err != nil {
		return fmt.Errorf("append to %s: %w", a.cfg.ProcessedFolder, err)
	}
	if data != nil && data.UID != 0 {
		a.log.Debug("filed into processed folder", "folder", a.cfg.ProcessedFolder, "uid", uint32(data.UID))
	}
	return nil
}

// open sets up TLS, reads the greeting and logs in.
func (a *IMAPAppender) open(ctx context.Context, conn net.Conn) (*imapclient.Client, error) {
	var c *imapclient.Client
	switch a.cfg.TLS {
	case "implicit":
		tc := a.tlsConfig()
		if tc.NextProtos == nil {
			tc.NextProtos = []string{"imap"}
		}
		tlsConn := tls.Client(conn, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("tls handshake with %s: %w", a.cfg.Addr, err)
		}
		c = imapclient.New(tlsConn, nil)
	case "starttls":
		var err error
		c, err = imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: a.tlsConfig()})
		if err != nil {
			return nil, fmt.Errorf("starttls with %s: %w", a.cfg.Addr, err)
		}
	default: // "none", allowed by Validate
		c = imapclient.New(conn, nil)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("read imap greeting: %w", err)
	}
	if c.State() == imap.ConnStateNotAuthenticated {
		if err := a.login(ctx, c); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// login authenticates as the IMAP source does: the configured method, or
// without one AUTHENTICATE PLAIN when advertised, else LOGIN.
func (a *IMAPAppender) login(ctx context.Context, c *imapclient.Client) error {
	method := a.cfg.Auth
	if method == "" {
		method = "login"
		if slices.ContainsFunc(c.Caps().AuthMechanisms(), func(m string) bool { return strings.EqualFold(m, "PLAIN") }) {
			method = "plain"
		}
	}
	var err error
	switch method {
	case "xoauth2", "oauthbearer":
		err = a.authenticateToken(ctx, c, method)
	case "plain":
		err = c.Authenticate(sasl.NewPlainClient("", a.cfg.Username, a.cfg.Password))
	default:
		err = c.Login(a.cfg.Username, a.cfg.Password).Wait()
	}
	if err != nil {
		return fmt.Errorf("log in as %q: %w", a.cfg.Username, err)
	}
	return nil
}

// authenticateToken runs AUTHENTICATE XOAUTH2 or OAUTHBEARER with a token
// from the token source (or the static token in Password). A refused token
// is invalidated, so that the next attempt gets a fresh one.
func (a *IMAPAppender) authenticateToken(ctx context.Context, c *imapclient.Client, method string) error {
	token := a.cfg.Password
	if a.cfg.TokenSource != nil {
		var err error
		if token, err = a.cfg.TokenSource.Token(ctx); err != nil {
			return fmt.Errorf("get access token: %w", err)
		}
	}
	host, portStr, _ := net.SplitHostPort(a.cfg.Addr)
	port, _ := strconv.Atoi(portStr)
	cl, err := oauth.NewSASLClient(method, a.cfg.Username, token, host, port)
	if err != nil {
		return err
	}
	err = c.Authenticate(cl)
	if err == nil {
		return nil
	}
	if se := cl.ServerError(); se != nil {
		err = fmt.Errorf("%w (%w)", err, se)
	}
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo && ie.Code != imap.ResponseCodeUnavailable || cl.ServerError() != nil {
		if inv, ok := a.cfg.TokenSource.(ingest.TokenInvalidator); ok {
			inv.Invalidate(token)
		}
	}
	return err
}

// tlsConfig builds the client TLS configuration (certificates verified
// unless InsecureSkipVerify, SPEC §6).
func (a *IMAPAppender) tlsConfig() *tls.Config {
	c := &tls.Config{}
	if a.tlsBase != nil {
		c = a.tlsBase.Clone()
	}
	if c.ServerName == "" {
		if host, _, err := net.SplitHostPort(a.cfg.Addr); err == nil {
			c.ServerName = host
		}
	}
	if a.cfg.InsecureSkipVerify {
		c.InsecureSkipVerify = true
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}
