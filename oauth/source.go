package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultTimeout bounds one request to the token endpoint.
	DefaultTimeout = 30 * time.Second
	// refreshShare is the share of a token's lifetime after which it is
	// refreshed ...
	refreshShare = 0.8
	// ... unless that is earlier than refreshMargin before expiry.
	refreshMargin = 5 * time.Minute
	// expirySkew is how close to its expiry a cached token is still handed
	// out when a refresh fails: it must survive the trip to the server.
	expirySkew = 30 * time.Second
	// failedRefreshHold is how long a still-valid token is used without
	// asking the endpoint again after a failed refresh.
	failedRefreshHold = 30 * time.Second
)

// Observer hears about refreshes, for metrics. Its methods are called
// synchronously after each request to the token endpoint and must not
// block. name is Config.Name.
type Observer interface {
	TokenRefreshed(name string, expiry time.Time)
	TokenRefreshFailed(name string, err error)
}

// Config configures a Source.
type Config struct {
	// Name identifies the credential in logs, errors and Observer calls
	// (typically the mailbox address).
	Name string
	// TokenURL is the token endpoint: https, or http to a loopback host.
	TokenURL string
	// ClientID is the application (client) id; required.
	ClientID string
	// ClientSecret is sent as client_secret when set; required for the
	// client-credentials grant, optional for public clients.
	ClientSecret string
	// RefreshToken selects the refresh-token grant; without it the source
	// uses the client-credentials grant.
	RefreshToken string
	// Scopes are requested space-separated (see DefaultScopes); none are
	// sent when empty.
	Scopes []string
	// HTTPClient sends the requests. The default one uses the
	// environment's proxy settings and follows no redirects.
	HTTPClient *http.Client
	// Timeout bounds one request (default 30s); the caller's context
	// bounds how long Token waits.
	Timeout time.Duration
	// Observer, if set, hears about every refresh.
	Observer Observer
	// Logger receives refresh, rotation and failure events; never a
	// token. Nil discards.
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Tokens, if set, keeps the refresh token the endpoint rotates across
	// restarts (see RefreshTokenStore). Only the refresh-token grant uses
	// it.
	Tokens RefreshTokenStore
}

// RefreshTokenStore keeps rotated refresh tokens, so that a restart uses
// the latest one rather than the configured one, which an endpoint that
// rotates tokens may have revoked (reuse detection) or let expire (Entra
// ID: 90 days), and so that several instances sharing the store (the
// gateway's, on one Redis) refresh one credential in turn, each presenting
// the token the last one received. Keys are opaque: a hash of the client id
// and the configured refresh token, so that a new token in the
// configuration starts afresh.
type RefreshTokenStore interface {
	// LoadRefreshToken returns the token saved under key, "" when none.
	LoadRefreshToken(ctx context.Context, key string) (string, error)
	// SaveRefreshToken saves token under key if what is saved there is
	// still old ("" for nothing), and reports whether it did.
	SaveRefreshToken(ctx context.Context, key, old, token string) (bool, error)
	// LockRefreshToken waits, as long as ctx allows, until it holds key's
	// lock, which lapses after ttl unless unlock releases it sooner: one
	// refresh of a credential at a time, across instances.
	LockRefreshToken(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
}

// storeKey is the RefreshTokenStore key of c's credential.
func (c Config) storeKey() string {
	h := sha256.New()
	for _, part := range []string{c.ClientID, c.RefreshToken} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LogValue implements slog.LogValuer without the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("token_url", c.TokenURL),
		slog.String("client_id", c.ClientID),
		slog.String("grant", c.grant()),
		slog.String("scopes", strings.Join(c.Scopes, " ")),
	)
}

func (c Config) grant() string {
	if c.RefreshToken != "" {
		return GrantRefreshToken
	}
	return GrantClientCredentials
}

// validate reports every problem at once.
func (c Config) validate() error {
	var errs []error
	if err := CheckTokenURL(c.TokenURL); err != nil {
		errs = append(errs, fmt.Errorf("token url: %w", err))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client id: required"))
	}
	if c.RefreshToken == "" && c.ClientSecret == "" {
		errs = append(errs, errors.New("no refresh token: the client-credentials grant needs a client secret"))
	}
	if c.RefreshToken != "" && !validToken(c.RefreshToken) {
		errs = append(errs, errors.New("refresh token: has characters outside printable ASCII"))
	}
	for _, sc := range c.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n") {
			errs = append(errs, fmt.Errorf("scope %q: must be one non-empty word", sc))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// CheckTokenURL accepts an absolute https URL, or http to a loopback host
// (tests, local proxies), without user info or fragment. Its messages never
// quote the URL, which might carry a password.
func CheckTokenURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a valid URL: expected https://host/path")
	case u.User != nil:
		return errors.New("must not carry user info")
	case !u.IsAbs() || u.Host == "":
		return errors.New("not an absolute URL: expected https://host/path")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return errors.New("http would send the credentials unencrypted: expected https (http only to a loopback host)")
	}
	return fmt.Errorf("unsupported scheme %q: expected https", clip(u.Scheme, 16))
}

// ValidToken reports whether s can travel as a token: printable ASCII
// without white space (a superset of RFC 6750's b64token and of every
// JWT), so that it cannot break the SASL framing.
func ValidToken(s string) bool { return s != "" && validToken(s) }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Source hands out access tokens for one credential. It is safe for
// concurrent use.
type Source struct {
	cfg    Config
	grant  string
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	// closing ends when Close is called: a refresh that has not yet sent
	// its request gives up (see Close).
	closing context.Context
	close   context.CancelFunc

	mu      sync.Mutex
	refresh string   // current refresh token; replaced when rotated
	synced  string   // with Config.Tokens: what the store held when last read or written ("": nothing)
	retired []string // with Config.Tokens: the last tokens this Source presented and saw rotated away
	tok     token    // cached access token; zero when none
	flight  *flight  // the request in progress, shared by all callers
}

// maxRetired is how many rotated-away tokens a Source remembers.
const maxRetired = 8

// token is a cached access token.
type token struct {
	access    string
	expiry    time.Time // as announced, from the moment the request was sent
	refreshAt time.Time // when to ask for a new one
}

// flight is one request to the endpoint and its outcome.
type flight struct {
	done   chan struct{}
	access string
	err    error
}

// NewSource checks cfg and returns a Source. It does not contact the
// endpoint: the first Token call does.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("oauth config for %s: %w", cfg.Name, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.Scopes = append([]string(nil), cfg.Scopes...)
	s := &Source{cfg: cfg, grant: cfg.grant(), client: cfg.HTTPClient, log: cfg.Logger, now: cfg.Now, refresh: cfg.RefreshToken}
	s.closing, s.close = context.WithCancel(context.Background())
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		s.client = &http.Client{
			Transport: tr, // the request's context carries the timeout
			// A redirect could carry the credentials (307/308 resend the
			// body) to another host: token endpoints do not redirect.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With(slog.String("oauth", cfg.Name))
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// LogValue implements slog.LogValuer: the configuration without secrets.
func (s *Source) LogValue() slog.Value { return s.cfg.LogValue() }

// Name returns Config.Name.
func (s *Source) Name() string { return s.cfg.Name }

// Grant returns GrantRefreshToken or GrantClientCredentials.
func (s *Source) Grant() string { return s.grant }

// Token returns an access token valid for a while yet: the cached one until
// 80 % of its lifetime (at most until 5 minutes before expiry), then a new
// one from the endpoint. Concurrent callers share one request, which ctx
// does not cancel (other callers may be waiting for it); ctx bounds only
// this caller's wait.
//
// When a refresh fails, a cached token that has not yet expired is
// returned (and the failure reported to the Observer and the log);
// otherwise the error is a *RefreshError, or ctx's error.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.tok.access != "" && s.now().Before(s.tok.refreshAt) {
		access := s.tok.access
		s.mu.Unlock()
		return access, nil
	}
	f := s.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.flight = f
		go s.run(context.WithoutCancel(ctx), f, s.refresh)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.access, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("wait for oauth token for %s: %w", s.cfg.Name, ctx.Err())
	}
}

// run performs the request of f and publishes its outcome.
func (s *Source) run(ctx context.Context, f *flight, refresh string) {
	var (
		res  grantResult
		err  error
		sent time.Time
	)
	if s.cfg.Tokens != nil && s.grant == GrantRefreshToken {
		res, sent, err = s.refreshShared(ctx)
	} else {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		sent = s.now()
		res, err = s.request(rctx, refresh)
		cancel()
	}

	var (
		expiry   time.Time
		rotated  bool
		fallback time.Time // expiry of the cached token used despite err
	)
	s.mu.Lock()
	if err == nil {
		expiry = sent.Add(res.lifetime)
		s.tok = token{access: res.access, expiry: expiry, refreshAt: refreshAt(sent, res.lifetime)}
		if res.refresh != "" && res.refresh != s.refresh {
			s.refresh, rotated = res.refresh, true
		}
		f.access = res.access
	} else if now := s.now(); s.tok.access != "" && now.Add(expirySkew).Before(s.tok.expiry) {
		f.access, fallback = s.tok.access, s.tok.expiry
		s.tok.refreshAt = now.Add(min(failedRefreshHold, s.tok.expiry.Sub(now)/2))
	} else {
		f.err = err
	}
	s.flight = nil
	s.mu.Unlock()

	obs := s.cfg.Observer
	if s.closing.Err() != nil {
		// Closed (a stop or a reload): the successor reports from now on,
		// and a refresh given up is no failure.
		obs = nil
	}
	switch {
	case errors.Is(err, ErrClosed):
		s.log.Debug("oauth token refresh given up: the source is closed")
	case err == nil:
		s.log.Debug("oauth token refreshed", slog.String("grant", s.grant),
			slog.Duration("lifetime", res.lifetime), slog.Time("expiry", expiry))
		if rotated {
			s.log.Info("oauth refresh token rotated by the endpoint; using the new one (kept in memory only)")
		}
		if obs != nil {
			obs.TokenRefreshed(s.cfg.Name, expiry)
		}
	default:
		if fallback.IsZero() {
			s.log.Error("oauth token refresh failed", slog.Any("err", err))
		} else {
			s.log.Warn("oauth token refresh failed; using the cached token until it expires",
				slog.Any("err", err), slog.Time("expiry", fallback))
		}
		if obs != nil {
			obs.TokenRefreshFailed(s.cfg.Name, err)
		}
	}
	close(f.done)
}

// saveTimeout bounds one read or save of the store; saveAttempts saves
// are tried, saveRetry apart, before a rotated token is left unsaved.
const (
	saveTimeout  = 5 * time.Second
	saveAttempts = 3
	saveRetry    = 200 * time.Millisecond
)

// lockTTL is how long a credential's lock lasts unless released: the
// longest refreshShared holds it (two requests, a read, and the saves) and
// a margin. A waiter waits that long and a margin more, so that it outlasts
// a holder that died, and each request then has its full Config.Timeout.
func (s *Source) lockTTL() time.Duration {
	return 2*s.cfg.Timeout + (2*saveAttempts+2)*saveTimeout + 10*time.Second
}

// refreshShared is the refresh-token grant with Config.Tokens. Under the
// credential's lock, it reads the store: a token there that differs from
// what this Source last saw was rotated by another instance (or before a
// restart) and is the one to present; a rotation of this Source's that
// could not be saved is saved now. It presents the token, saves the one
// the endpoint rotates it to (compare-and-set against what the store
// held), and when the endpoint refuses it (invalid_grant) and the store has
// received another since it was read (the lock lapsed), tries that once. A
// store that cannot be read is a temporary error: presenting a token that
// may have been rotated away could make an endpoint with reuse detection
// revoke them all.
func (s *Source) refreshShared(ctx context.Context) (grantResult, time.Time, error) {
	if s.closing.Err() != nil {
		return grantResult{}, s.now(), s.storeError("refresh", ErrClosed)
	}
	key := s.cfg.storeKey()
	ttl := s.lockTTL()
	lctx, cancel := context.WithTimeout(ctx, ttl+10*time.Second)
	stop := context.AfterFunc(s.closing, cancel) // Close ends the wait
	unlock, err := s.cfg.Tokens.LockRefreshToken(lctx, key, ttl)
	stop()
	cancel()
	if err != nil {
		if s.closing.Err() != nil {
			err = ErrClosed
		}
		return grantResult{}, s.now(), s.storeError("wait for the refresh token's lock", err)
	}
	defer unlock()
	stored, err := s.load(ctx, key)
	if err != nil {
		return grantResult{}, s.now(), s.storeError("read the saved refresh token", err)
	}
	s.mu.Lock()
	// A token this Source rotated away from is stale wherever it turns up
	// (a save repeated by the client after a lost reply can leave one):
	// the Source's own newer token is saved over it instead.
	if stored != "" && stored != s.synced && !slices.Contains(s.retired, stored) && validToken(stored) {
		if s.synced == "" {
			s.log.Info("oauth: using the refresh token saved when the endpoint last rotated it")
		} else {
			s.log.Info("oauth: using the refresh token another instance saved")
		}
		s.refresh = stored
	}
	s.synced = stored
	present := s.refresh
	s.mu.Unlock()
	known := stored // what the store holds, as far as this Source knows
	if present != stored && present != s.cfg.RefreshToken {
		if s.save(ctx, key, stored, present) { // a rotation whose save failed
			known = present
		}
	}

	if s.closing.Err() != nil {
		return grantResult{}, s.now(), s.storeError("refresh", ErrClosed)
	}
	sent := s.now()
	res, err := s.requestWithin(ctx, present)
	var re *RefreshError
	if errors.As(err, &re) && re.Code == "invalid_grant" {
		// Another token saved since the read: the lock lapsed and another
		// instance refreshed meanwhile. Not the store's old value, which
		// this Source may have rotated away from (a save that failed).
		if again, lerr := s.load(ctx, key); lerr == nil && again != "" && again != known && again != present &&
			!s.isRetired(again) && validToken(again) && s.closing.Err() == nil {
			s.log.Info("oauth: the endpoint refused the refresh token; trying the one another instance saved since")
			s.mu.Lock()
			s.refresh, s.synced = again, again
			s.mu.Unlock()
			known, present = again, again
			first := err
			sent = s.now()
			if res, err = s.requestWithin(ctx, again); err != nil {
				err = fmt.Errorf("%w; then the refresh token saved since: %w", first, err)
			}
		}
		if err != nil && present != s.cfg.RefreshToken {
			err = fmt.Errorf("%w (this was the refresh token saved in Redis when the endpoint last rotated it: give the configuration a new refresh token, which starts afresh)", err)
		}
	}
	if err == nil && res.refresh != "" && res.refresh != present {
		s.mu.Lock()
		s.refresh = res.refresh
		s.retired = append(s.retired, present)
		if len(s.retired) > maxRetired {
			s.retired = s.retired[1:]
		}
		s.mu.Unlock()
		s.save(ctx, key, known, res.refresh)
	}
	return res, sent, err
}

func (s *Source) isRetired(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.retired, tok)
}

// ErrClosed is the cause of a refresh given up because the Source was
// closed (Close): not reported to the Observer, and logged at debug level.
var ErrClosed = errors.New("the oauth token source is closed")

// Close makes a refresh that has not yet sent its request give up (a
// temporary error wrapping ErrClosed; a cached token still serves), so
// that Wait returns once a request already sent is answered and its
// rotated token saved. Call it, then Wait, before closing what
// Config.Tokens uses. With Config.Tokens, Token calls after Close that
// need the endpoint fail the same way.
func (s *Source) Close() { s.close() }

// requestWithin is request with Config.Timeout of its own.
func (s *Source) requestWithin(ctx context.Context, refresh string) (grantResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.request(ctx, refresh)
}

// load reads the store with saveTimeout of its own.
func (s *Source) load(ctx context.Context, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, saveTimeout)
	defer cancel()
	return s.cfg.Tokens.LoadRefreshToken(ctx, key)
}

// save stores token under key in place of old (compare-and-set), trying
// saveAttempts times, each with saveTimeout of its own: a response that
// came late must still be saved. It reports whether it did.
func (s *Source) save(ctx context.Context, key, old, token string) bool {
	ctx = context.WithoutCancel(ctx)
	var (
		ok  bool
		err error
	)
	for i := range saveAttempts {
		if i > 0 {
			time.Sleep(saveRetry)
		}
		sctx, cancel := context.WithTimeout(ctx, saveTimeout)
		ok, err = s.cfg.Tokens.SaveRefreshToken(sctx, key, old, token)
		cancel()
		if err == nil {
			break
		}
	}
	switch {
	case err != nil:
		// Until a save succeeds (at this Source's next refresh), a
		// restart, or another instance or Source of the credential,
		// presents the saved token, which the endpoint has replaced.
		s.log.Error("oauth refresh token rotated by the endpoint, but it could not be saved: until it is (tried again at the next refresh), a restart or another instance presents a replaced token",
			slog.Any("err", err))
		return false
	case !ok:
		// Only when the lock lapsed: another instance saved a token in
		// between. It stays; this Source adopts it at its next refresh.
		s.log.Warn("oauth refresh token rotated by the endpoint, but another instance saved one meanwhile: leaving that one saved")
		return false
	}
	s.mu.Lock()
	s.synced = token
	s.mu.Unlock()
	s.log.Info("oauth refresh token rotated by the endpoint; using and saving the new one")
	return true
}

// storeError is a temporary *RefreshError for a RefreshTokenStore failure.
func (s *Source) storeError(op string, err error) error {
	return &RefreshError{Name: s.cfg.Name, Endpoint: s.cfg.TokenURL, Grant: s.grant, Err: fmt.Errorf("%s: %w", op, err)}
}

// Wait returns once no refresh is in progress, or when ctx ends. Call it
// before closing what Config.Tokens uses: a refresh still running would
// not be able to save the token the endpoint rotated to.
func (s *Source) Wait(ctx context.Context) error {
	s.mu.Lock()
	f := s.flight
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the oauth refresh of %s: %w", s.cfg.Name, ctx.Err())
	}
}

// refreshAt is when a token obtained at sent with lifetime d is refreshed:
// at 80 % of d, but no earlier than 5 minutes before it expires.
func refreshAt(sent time.Time, d time.Duration) time.Time {
	margin := min(time.Duration(float64(d)*(1-refreshShare)), refreshMargin)
	return sent.Add(d - margin)
}

// Invalidate drops the cached token if it is access (a server refused it),
// so that the next Token call asks the endpoint. It reports whether it did;
// a token already replaced is left alone.
func (s *Source) Invalidate(access string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if access == "" || s.tok.access != access {
		return false
	}
	s.tok = token{}
	s.log.Info("oauth access token invalidated after the server refused it")
	return true
}

// Expiry returns the expiry of the cached token (zero when none).
func (s *Source) Expiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok.expiry
}
