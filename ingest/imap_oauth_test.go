package ingest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/oauth/oauthtest"
)

// imapOAuthBench is an IMAP server whose sessions authenticate with XOAUTH2
// and OAUTHBEARER against the tokens a test token endpoint issued.
type imapOAuthBench struct {
	*imapTestServer
	tokens *oauthtest.Server
	port   int

	mu       sync.Mutex
	attempts []imapOAuthAttempt
	conns    []*imapserver.Conn
	refuse   bool // refuse every token
}

type imapOAuthAttempt struct {
	mech, token string
	ok          bool
}

func newIMAPOAuthBench(t *testing.T, tokens *oauthtest.Server) *imapOAuthBench {
	b := &imapOAuthBench{tokens: tokens}
	b.imapTestServer = newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2,
		wrapSession: func(c *imapserver.Conn, s imapserver.Session) imapserver.Session {
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			return &imapOAuthSession{SessionIMAP4rev2: s.(imapserver.SessionIMAP4rev2), b: b}
		}})
	_, port, _ := net.SplitHostPort(b.addr)
	b.port, _ = strconv.Atoi(port)
	return b
}

// check decides about a bearer token and logs the session in.
func (b *imapOAuthBench) check(mech, user, token string, s imapserver.Session) error {
	b.mu.Lock()
	ok := !b.refuse && user == imapTestUser && b.tokens.Valid(token)
	b.attempts = append(b.attempts, imapOAuthAttempt{mech: mech, token: token, ok: ok})
	b.mu.Unlock()
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "invalid credentials"}
	}
	return s.Login(imapTestUser, imapTestPass)
}

func (b *imapOAuthBench) snapshot() []imapOAuthAttempt {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]imapOAuthAttempt(nil), b.attempts...)
}

func (b *imapOAuthBench) setRefuse(v bool) {
	b.mu.Lock()
	b.refuse = v
	b.mu.Unlock()
}

// dropAll closes every connection from the server side.
func (b *imapOAuthBench) dropAll() {
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for _, c := range conns {
		_ = c.NetConn().Close()
	}
}

type imapOAuthSession struct {
	imapserver.SessionIMAP4rev2
	b *imapOAuthBench
}

func (s *imapOAuthSession) AuthenticateMechanisms() []string {
	return []string{oauth.MechXOAuth2, oauth.MechOAuthBearer}
}

func (s *imapOAuthSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case oauth.MechXOAuth2:
		return oauthtest.NewXOAuth2Server(func(user, token string) error {
			return s.b.check(mech, user, token, s.SessionIMAP4rev2)
		}), nil
	case oauth.MechOAuthBearer:
		return oauthtest.NewOAuthBearerServer(func(o oauth.OAuthBearerOptions) error {
			if o.Host != "127.0.0.1" || o.Port != s.b.port {
				return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "wrong host or port"}
			}
			return s.b.check(mech, o.Username, o.Token, s.SessionIMAP4rev2)
		}), nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "unsupported mechanism"}
}

// imapObserver counts oauth.Observer calls.
type imapObserver struct {
	mu              sync.Mutex
	refreshed, fail int
	lastErr         error
}

func (o *imapObserver) TokenRefreshed(string, time.Time) {
	o.mu.Lock()
	o.refreshed++
	o.mu.Unlock()
}

func (o *imapObserver) TokenRefreshFailed(_ string, err error) {
	o.mu.Lock()
	o.fail++
	o.lastErr = err
	o.mu.Unlock()
}

func (o *imapObserver) counts() (int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refreshed, o.fail
}

func imapTokenSource(t *testing.T, tokens *oauthtest.Server, clock *imapFakeClock, obs oauth.Observer) *oauth.Source {
	t.Helper()
	src, err := oauth.NewSource(oauth.Config{
		Name: imapTestUser, TokenURL: tokens.URL, ClientID: "client-id", RefreshToken: "rt-0",
		Scopes:  oauth.DefaultScopes(oauth.ProviderMicrosoft, oauth.IMAP, oauth.GrantRefreshToken),
		Timeout: 3 * time.Second, Observer: obs, Logger: imapTestLog(t), Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestIMAPSourceOAuthRefreshAcrossExpiry logs in with a token, lets it
// pass its refresh point (and expire on the server), and checks that the
// next login uses a second token from a second request to the endpoint.
func TestIMAPSourceOAuthRefreshAcrossExpiry(t *testing.T) {
	for _, method := range []string{imapAuthXOAuth2, imapAuthOAuthBearer} {
		t.Run(method, func(t *testing.T) {
			clock := &imapFakeClock{now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
			tokens := oauthtest.NewServer(t, oauthtest.Options{Lifetime: time.Hour, Now: clock.Now})
			ts := newIMAPOAuthBench(t, tokens)
			obs := &imapObserver{}
			cfg := imapTestConfig(ts.imapTestServer)
			cfg.Auth, cfg.Password, cfg.TokenSource = method, "", imapTokenSource(t, tokens, clock, obs)
			raw1 := imapTestMessage("o1", 500, "")
			ts.appendMsg("INBOX", raw1, time.Now())

			rec := &imapRecorder{}
			src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
			imapRunSource(t, src, rec.handle)
			imapWaitFor(t, 5*time.Second, "o1 handled", func() bool { return src.Stats().Handled == 1 })

			clock.Advance(56 * time.Minute) // past the refresh point (55 min)
			tokens.Expire()                 // and the server no longer takes the old token
			ts.dropAll()
			raw2 := imapTestMessage("o2", 500, "")
			ts.appendMsg("INBOX", raw2, time.Now())
			imapWaitFor(t, 5*time.Second, "o2 handled", func() bool { return src.Stats().Handled == 2 })

			got := ts.snapshot()
			if len(got) != 2 || !got[0].ok || !got[1].ok || got[0].token == got[1].token {
				t.Fatalf("logins = %+v, want two successful logins with two different tokens", got)
			}
			if got[0].mech != strings.ToUpper(method) {
				t.Errorf("mechanism %s, want %s", got[0].mech, strings.ToUpper(method))
			}
			if n := tokens.Requests(); n != 2 {
				t.Errorf("token endpoint saw %d requests, want 2", n)
			}
			if ok, failed := obs.counts(); ok != 2 || failed != 0 {
				t.Errorf("observer: %d refreshed, %d failed; want 2, 0", ok, failed)
			}
			imapCheckProcessedOnce(t, ts.imapTestServer, rec, map[string][]byte{"o1": raw1, "o2": raw2})
		})
	}
}

// TestIMAPSourceOAuthRefusedTokenInvalidatedOnce: a token the server
// refuses before its time is invalidated and replaced at the next
// reconnect, but only once per streak of refusals.
func TestIMAPSourceOAuthRefusedTokenInvalidatedOnce(t *testing.T) {
	clock := &imapFakeClock{now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	tokens := oauthtest.NewServer(t, oauthtest.Options{Lifetime: time.Hour, Now: clock.Now})
	ts := newIMAPOAuthBench(t, tokens)
	cfg := imapTestConfig(ts.imapTestServer)
	cfg.Auth, cfg.TokenSource = imapAuthXOAuth2, imapTokenSource(t, tokens, clock, nil)
	src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
	imapRunSource(t, src, (&imapRecorder{}).handle)
	imapWaitFor(t, 5*time.Second, "session", func() bool { return src.Stats().Sessions == 1 })

	tokens.Expire() // revoked early: the source still thinks the token is fresh
	ts.dropAll()
	imapWaitFor(t, 5*time.Second, "second session", func() bool { return src.Stats().Sessions == 2 })
	got := ts.snapshot()
	if len(got) != 3 || !got[0].ok || got[1].ok || got[1].token != got[0].token || !got[2].ok || got[2].token == got[0].token {
		t.Fatalf("logins = %+v, want ok(t1), refused(t1), ok(t2)", got)
	}
	if n := tokens.Requests(); n != 2 {
		t.Errorf("token endpoint saw %d requests, want 2", n)
	}

	// Now the server refuses every token: one more refresh, then the
	// source keeps its token instead of asking at every reconnect.
	ts.setRefuse(true)
	ts.dropAll()
	imapWaitFor(t, 5*time.Second, "four refused logins", func() bool { return len(ts.snapshot()) >= 7 })
	if n := tokens.Requests(); n != 3 {
		t.Errorf("token endpoint saw %d requests, want 3 (one invalidation per streak)", n)
	}
	ts.setRefuse(false)
	imapWaitFor(t, 5*time.Second, "third session", func() bool { return src.Stats().Sessions == 3 })
}

// TestIMAPOAuthLoginErrors checks what a failed login says.
func TestIMAPOAuthLoginErrors(t *testing.T) {
	t.Run("refused refresh", func(t *testing.T) {
		clock := &imapFakeClock{now: time.Now()}
		tokens := oauthtest.NewServer(t, oauthtest.Options{})
		tokens.Fail(400, "invalid_grant", "AADSTS700082: The refresh token has expired due to inactivity.")
		ts := newIMAPOAuthBench(t, tokens)
		obs := &imapObserver{}
		cfg := imapTestConfig(ts.imapTestServer)
		cfg.Auth, cfg.TokenSource = imapAuthOAuthBearer, imapTokenSource(t, tokens, clock, obs)
		faults := &imapFaults{}
		src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t), WithDialer(faults.dialer()))
		_, err := src.connect(t.Context())
		var re *oauth.RefreshError
		if !errors.As(err, &re) || re.Code != "invalid_grant" {
			t.Fatalf("connect: %v, want a *oauth.RefreshError invalid_grant", err)
		}
		want := `log in as "support@northwind-it.example": get access token: refresh oauth token for support@northwind-it.example (refresh_token grant) at ` +
			tokens.URL + `: invalid_grant: AADSTS700082: The refresh token has expired due to inactivity. (HTTP 400)`
		if err.Error() != want {
			t.Errorf("error:\n got %v\nwant %s", err, want)
		}
		if _, failed := obs.counts(); failed != 1 {
			t.Errorf("observer heard %d failures, want 1", failed)
		}
		faults.mu.Lock()
		dials := faults.dials
		faults.mu.Unlock()
		if dials != 0 {
			t.Errorf("dialled the server %d times without a token", dials)
		}
	})
	for _, tc := range []struct{ method, status string }{
		{imapAuthXOAuth2, `XOAUTH2 token refused by the server: status "401"`},
		{imapAuthOAuthBearer, `OAUTHBEARER token refused by the server: status "invalid_token"`},
	} {
		t.Run("refused token "+tc.method, func(t *testing.T) {
			tokens := oauthtest.NewServer(t, oauthtest.Options{})
			ts := newIMAPOAuthBench(t, tokens)
			cfg := imapTestConfig(ts.imapTestServer)
			cfg.Auth, cfg.Password = tc.method, "static-but-unknown-token"
			src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
			_, err := src.connect(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.status) || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
				t.Fatalf("connect: %v, want the server's status %q and the NO response", err, tc.status)
			}
			if strings.Contains(err.Error(), "static-but-unknown-token") {
				t.Errorf("error reveals the token: %v", err)
			}
			if got := ts.snapshot(); len(got) != 1 || got[0].token != "static-but-unknown-token" {
				t.Errorf("attempts = %+v", got)
			}
		})
	}
	t.Run("mechanism not offered", func(t *testing.T) {
		ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2}) // AUTH=PLAIN only
		cfg := imapTestConfig(ts)
		cfg.Auth, cfg.Password = imapAuthOAuthBearer, "tok"
		src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
		_, err := src.connect(t.Context())
		if err == nil || !strings.Contains(err.Error(), "server offers AUTH=PLAIN, not OAUTHBEARER") {
			t.Fatalf("connect: %v", err)
		}
	})
	t.Run("token wait bounded by context", func(t *testing.T) {
		tokens := oauthtest.NewServer(t, oauthtest.Options{})
		tokens.Hold()
		ts := newIMAPOAuthBench(t, tokens)
		cfg := imapTestConfig(ts.imapTestServer)
		tsrc := imapTokenSource(t, tokens, &imapFakeClock{now: time.Now()}, nil)
		cfg.Auth, cfg.TokenSource = imapAuthXOAuth2, tsrc
		src := NewSource(cfg, newIMAPCheckpoints(), imapTestLog(t))
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := src.connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("connect: %v, want DeadlineExceeded", err)
		}
		// The abandoned request completes for the next caller (and logs
		// before the test ends).
		tokens.Release()
		if _, err := tsrc.Token(t.Context()); err != nil || tokens.Requests() != 1 {
			t.Fatalf("after release: %v, %d requests", err, tokens.Requests())
		}
	})
}

func TestIMAPConfigValidateOAuth(t *testing.T) {
	base := IMAPConfig{Addr: "outlook.office365.com:993", Username: "u@example.com", ProcessedFolder: "Processed"}
	for _, tc := range []struct {
		name string
		edit func(*IMAPConfig)
		want string
	}{
		{"token source", func(c *IMAPConfig) { c.Auth, c.TokenSource = "XOAUTH2", &oauth.Source{} }, ""},
		{"static token", func(c *IMAPConfig) { c.Auth, c.Password = "oauthbearer", "tok" }, ""},
		{"nothing", func(c *IMAPConfig) { c.Auth = "xoauth2" }, "imap auth xoauth2: needs a token source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
