package notify

import (
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/oauth/oauthtest"
)

// smtpOAuthServer is a go-smtp server that authenticates XOAUTH2 and
// OAUTHBEARER against the tokens of a test token endpoint.
type smtpOAuthServer struct {
	tokens *oauthtest.Server
	host   string
	port   int

	mu       sync.Mutex
	attempts []smtpOAuthAttempt
	conns    []*smtp.Conn
	messages int
}

type smtpOAuthAttempt struct {
	mech, token string
	ok          bool
}

const smtpOAuthUser = "support@northwind-it.example"

func newSMTPOAuthServer(t *testing.T, tokens *oauthtest.Server) *smtpOAuthServer {
	t.Helper()
	s := &smtpOAuthServer{tokens: tokens}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		return &smtpOAuthSession{s: s}, nil
	}))
	srv.Domain = "oauth.test"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.host, s.port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = ln.Close()
		<-done
	})
	return s
}

func (s *smtpOAuthServer) check(mech, user, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := user == smtpOAuthUser && s.tokens.Valid(token)
	s.attempts = append(s.attempts, smtpOAuthAttempt{mech: mech, token: token, ok: ok})
	if !ok {
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted"}
	}
	return nil
}

func (s *smtpOAuthServer) snapshot() ([]smtpOAuthAttempt, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpOAuthAttempt(nil), s.attempts...), s.messages
}

func (s *smtpOAuthServer) dropAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn().Close()
	}
}

type smtpOAuthSession struct {
	s      *smtpOAuthServer
	authed bool
}

func (x *smtpOAuthSession) AuthMechanisms() []string {
	return []string{oauth.MechXOAuth2, oauth.MechOAuthBearer}
}

func (x *smtpOAuthSession) Auth(mech string) (sasl.Server, error) {
	done := func(err error) error {
		x.authed = err == nil
		return err
	}
	switch mech {
	case oauth.MechXOAuth2:
		return oauthtest.NewXOAuth2Server(func(user, token string) error {
			return done(x.s.check(mech, user, token))
		}), nil
	case oauth.MechOAuthBearer:
		return oauthtest.NewOAuthBearerServer(func(o oauth.OAuthBearerOptions) error {
			if o.Host != x.s.host || o.Port != x.s.port {
				return errors.New("wrong host or port")
			}
			return done(x.s.check(mech, o.Username, o.Token))
		}), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (x *smtpOAuthSession) Mail(string, *smtp.MailOptions) error {
	if !x.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (x *smtpOAuthSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (x *smtpOAuthSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.messages++
	x.s.mu.Unlock()
	return nil
}

func (x *smtpOAuthSession) Reset()        {}
func (x *smtpOAuthSession) Logout() error { return nil }

// smtpClock is a settable clock.
type smtpClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *smtpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *smtpClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type smtpObserver struct {
	mu              sync.Mutex
	refreshed, fail int
}

func (o *smtpObserver) TokenRefreshed(string, time.Time) {
	o.mu.Lock()
	o.refreshed++
	o.mu.Unlock()
}

func (o *smtpObserver) TokenRefreshFailed(string, error) {
	o.mu.Lock()
	o.fail++
	o.mu.Unlock()
}

func (o *smtpObserver) counts() (int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refreshed, o.fail
}

// smtpOAuthSender returns a Sender with one connection authenticating with
// a token source of the endpoint.
func smtpOAuthSender(t *testing.T, srv *smtpOAuthServer, tokens *oauthtest.Server, clock *smtpClock, mech string, obs oauth.Observer) *Sender {
	t.Helper()
	ts, err := oauth.NewSource(oauth.Config{
		Name: smtpOAuthUser, TokenURL: tokens.URL, ClientID: "client-id", RefreshToken: "rt-0",
		Scopes:  oauth.DefaultScopes(oauth.ProviderMicrosoft, oauth.SMTP, oauth.GrantRefreshToken),
		Timeout: 3 * time.Second, Observer: obs, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSender(SMTPConfig{Host: srv.host, Port: srv.port, TLS: SMTPTLSNone, Auth: mech, Username: smtpOAuthUser,
		TokenSource: ts, Connections: 1, Timeout: 5 * time.Second, HELO: "gateway.test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSenderOAuthTokenPerConnection(t *testing.T) {
	for _, mech := range []string{SMTPAuthXOAUTH2, SMTPAuthOAuthBearer} {
		t.Run(mech, func(t *testing.T) {
			clock := &smtpClock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
			tokens := oauthtest.NewServer(t, oauthtest.Options{Lifetime: time.Hour, Now: clock.Now})
			srv := newSMTPOAuthServer(t, tokens)
			obs := &smtpObserver{}
			s := smtpOAuthSender(t, srv, tokens, clock, mech, obs)
			raw, env := smtpTestMessage(t, 1)
			for range 2 { // the second message reuses the authenticated session
				if err := s.Send(t.Context(), env, raw); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(56 * time.Minute)
			tokens.Expire()
			srv.dropAll()
			if err := s.Send(t.Context(), env, raw); err != nil {
				t.Fatalf("send after the token's refresh point: %v", err)
			}
			got, msgs := srv.snapshot()
			if len(got) != 2 || !got[0].ok || !got[1].ok || got[0].token == got[1].token || msgs != 3 {
				t.Fatalf("auths = %+v, %d messages; want two successful auths with two tokens, 3 messages", got, msgs)
			}
			if got[0].mech != strings.ToUpper(mech) {
				t.Errorf("mechanism %s, want %s", got[0].mech, strings.ToUpper(mech))
			}
			if n := tokens.Requests(); n != 2 {
				t.Errorf("token endpoint saw %d requests, want 2", n)
			}
			if ok, failed := obs.counts(); ok != 2 || failed != 0 {
				t.Errorf("observer: %d refreshed, %d failed", ok, failed)
			}
		})
	}
}

func TestSenderOAuthRefusedRefresh(t *testing.T) {
	clock := &smtpClock{t: time.Now()}
	tokens := oauthtest.NewServer(t, oauthtest.Options{})
	tokens.Fail(400, "invalid_grant", "Token has been expired or revoked.")
	srv := newSMTPOAuthServer(t, tokens)
	obs := &smtpObserver{}
	s := smtpOAuthSender(t, srv, tokens, clock, SMTPAuthXOAUTH2, obs)
	raw, env := smtpTestMessage(t, 1)
	err := s.Send(t.Context(), env, raw)
	var se *SendError
	var re *oauth.RefreshError
	if !errors.As(err, &se) || se.Op != "auth" || !IsTemporary(err) || !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Fatalf("err = %v, want a temporary auth SendError wrapping the invalid_grant RefreshError", err)
	}
	if !strings.Contains(err.Error(), "get access token: refresh oauth token for support@northwind-it.example (refresh_token grant) at "+tokens.URL+": invalid_grant: Token has been expired or revoked. (HTTP 400)") {
		t.Errorf("error = %v", err)
	}
	if got, _ := srv.snapshot(); len(got) != 0 {
		t.Errorf("authenticated %d times without a token", len(got))
	}
	if _, failed := obs.counts(); failed != 1 {
		t.Errorf("observer heard %d failures, want 1", failed)
	}
}

func TestSenderOAuthRefusedTokenInvalidated(t *testing.T) {
	for _, tc := range []struct{ mech, status string }{
		{SMTPAuthXOAUTH2, `XOAUTH2 token refused by the server: status "401"`},
		{SMTPAuthOAuthBearer, `OAUTHBEARER token refused by the server: status "invalid_token"`},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			clock := &smtpClock{t: time.Now()}
			tokens := oauthtest.NewServer(t, oauthtest.Options{Lifetime: time.Hour, Now: clock.Now})
			srv := newSMTPOAuthServer(t, tokens)
			s := smtpOAuthSender(t, srv, tokens, clock, tc.mech, nil)
			raw, env := smtpTestMessage(t, 1)
			if err := s.Send(t.Context(), env, raw); err != nil {
				t.Fatal(err)
			}
			tokens.Expire() // revoked early: the source still thinks it fresh
			srv.dropAll()
			err := s.Send(t.Context(), env, raw)
			var se *SendError
			if !errors.As(err, &se) || se.Op != "auth" || se.Code != 535 || !strings.Contains(err.Error(), tc.status) {
				t.Fatalf("err = %v, want a 535 auth error with the server's status", err)
			}
			if err := s.Send(t.Context(), env, raw); err != nil {
				t.Fatalf("send with a fresh token: %v", err)
			}
			got, msgs := srv.snapshot()
			if len(got) != 3 || got[1].ok || got[1].token != got[0].token || !got[2].ok || got[2].token == got[0].token || msgs != 2 {
				t.Fatalf("auths = %+v, %d messages; want ok(t1), refused(t1), ok(t2)", got, msgs)
			}
			if n := tokens.Requests(); n != 2 {
				t.Errorf("token endpoint saw %d requests, want 2", n)
			}
		})
	}
}

func TestSMTPConfigOAuthValidate(t *testing.T) {
	base := SMTPConfig{Host: "smtp.office365.com", Username: "u@example.com", Auth: SMTPAuthXOAUTH2}
	if err := base.withDefaults().validate(); err == nil || !strings.Contains(err.Error(), "needs a password or token") {
		t.Errorf("xoauth2 without token: %v", err)
	}
	withSource := base
	withSource.TokenSource = &oauth.Source{}
	if err := withSource.withDefaults().validate(); err != nil {
		t.Errorf("xoauth2 with a token source: %v", err)
	}
	plain := withSource
	plain.Auth = SMTPAuthPlain
	if err := plain.withDefaults().validate(); err == nil {
		t.Error("plain with only a token source accepted")
	}
}
