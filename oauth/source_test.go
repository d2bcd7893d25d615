package oauth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/oauth/oauthtest"
)

// fakeClock is a settable clock shared by the source and the endpoint.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder is an Observer that remembers every call.
type recorder struct {
	mu        sync.Mutex
	refreshed []time.Time
	failed    []error
}

func (r *recorder) TokenRefreshed(name string, expiry time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshed = append(r.refreshed, expiry)
}

func (r *recorder) TokenRefreshFailed(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, err)
}

func (r *recorder) counts() (ok, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.refreshed), len(r.failed)
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testSecret = "client-secret-hunter2"

func newSource(t *testing.T, srv *oauthtest.Server, clock *fakeClock, edit func(*oauth.Config)) (*oauth.Source, *recorder, *syncBuffer) {
	t.Helper()
	rec := &recorder{}
	logs := &syncBuffer{}
	cfg := oauth.Config{
		Name:         "support@northwind-it.example",
		TokenURL:     srv.URL,
		ClientID:     "client-id",
		ClientSecret: testSecret,
		RefreshToken: "rt-0",
		Scopes:       []string{oauth.ScopeMicrosoftIMAP, oauth.ScopeOfflineAccess},
		Timeout:      5 * time.Second,
		Observer:     rec,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if clock != nil {
		cfg.Now = clock.Now
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := oauth.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, rec, logs
}

func mustToken(t *testing.T, s *oauth.Source) string {
	t.Helper()
	tok, err := s.Token(t.Context())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func TestSourceCachesAndRefreshesBeforeExpiry(t *testing.T) {
	tests := []struct {
		lifetime  time.Duration
		refreshAt time.Duration // first instant at which a new token is fetched
	}{
		{time.Hour, 55 * time.Minute},        // 5 min before expiry
		{25 * time.Minute, 20 * time.Minute}, // 80 % = 5 min before
		{10 * time.Minute, 8 * time.Minute},  // 80 %
		{10 * time.Second, 8 * time.Second},  // 80 %
	}
	for _, tt := range tests {
		t.Run(tt.lifetime.String(), func(t *testing.T) {
			clock := newFakeClock()
			srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret, Lifetime: tt.lifetime, Now: clock.Now})
			s, rec, _ := newSource(t, srv, clock, nil)
			first := mustToken(t, s)
			if !srv.Valid(first) {
				t.Fatalf("token %q was not issued by the endpoint", first)
			}
			if want := clock.Now().Add(tt.lifetime); !s.Expiry().Equal(want) {
				t.Errorf("Expiry() = %v, want %v", s.Expiry(), want)
			}
			clock.Advance(tt.refreshAt - time.Nanosecond)
			if got := mustToken(t, s); got != first || srv.Requests() != 1 {
				t.Fatalf("just before the refresh point: token changed=%v, requests=%d", got != first, srv.Requests())
			}
			clock.Advance(time.Nanosecond)
			second := mustToken(t, s)
			if second == first || srv.Requests() != 2 || !srv.Valid(second) {
				t.Fatalf("at the refresh point: token changed=%v, requests=%d", second != first, srv.Requests())
			}
			if ok, failed := rec.counts(); ok != 2 || failed != 0 {
				t.Errorf("observer: %d refreshed, %d failed; want 2, 0", ok, failed)
			}
		})
	}
}

func TestSourceConcurrentCallersShareOneRequest(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret})
	s, rec, _ := newSource(t, srv, nil, nil)
	srv.Hold()
	const n = 32
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = s.Token(t.Context()) })
	}
	waitFor(t, "the request to reach the endpoint", func() bool { return srv.InFlight() == 1 })
	time.Sleep(50 * time.Millisecond) // let every caller join the flight
	srv.Release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: token %q, err %v; want the shared token", i, toks[i], errs[i])
		}
	}
	if got := srv.Requests(); got != 1 {
		t.Errorf("endpoint saw %d requests from %d concurrent callers, want 1", got, n)
	}
	if ok, _ := rec.counts(); ok != 1 {
		t.Errorf("observer heard %d refreshes, want 1", ok)
	}
}

func TestSourceRefusedRefresh(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret})
	s, rec, logs := newSource(t, srv, nil, nil)
	srv.Fail(http.StatusBadRequest, "invalid_grant", "AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: 1234\r\nTimestamp: 2026-11-30")
	tok, err := s.Token(t.Context())
	if err == nil || tok != "" {
		t.Fatalf("Token() = %q, %v; want an error", tok, err)
	}
	var re *oauth.RefreshError
	if !errors.As(err, &re) {
		t.Fatalf("error %T is not a *RefreshError: %v", err, err)
	}
	if re.Code != "invalid_grant" || re.StatusCode != 400 || re.Temporary() || re.Grant != oauth.GrantRefreshToken {
		t.Errorf("RefreshError = %+v", re)
	}
	want := "refresh oauth token for support@northwind-it.example (refresh_token grant) at " + srv.URL +
		": invalid_grant: AADSTS700082: The refresh token has expired due to inactivity. Trace ID: 1234 Timestamp: 2026-11-30 (HTTP 400)"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if _, failed := rec.counts(); failed != 1 {
		t.Errorf("observer heard %d failures, want 1", failed)
	}
	for _, secret := range []string{testSecret, "rt-0"} {
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("a secret leaked into the error or the log:\n%v\n%s", err, logs)
		}
	}
	// The next call tries again (no valid token to fall back on).
	srv.Fail(0, "", "")
	if tok := mustToken(t, s); !srv.Valid(tok) || srv.Requests() != 2 {
		t.Errorf("after recovery: valid=%v requests=%d", srv.Valid(tok), srv.Requests())
	}
}

func TestSourceFailedRefreshFallsBackToValidToken(t *testing.T) {
	clock := newFakeClock()
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret, Lifetime: time.Hour, Now: clock.Now})
	s, rec, _ := newSource(t, srv, clock, nil)
	first := mustToken(t, s)
	clock.Advance(56 * time.Minute) // past the refresh point, 4 min left
	srv.Fail(http.StatusServiceUnavailable, "temporarily_unavailable", "try later")
	if got := mustToken(t, s); got != first {
		t.Fatalf("a failed refresh did not fall back to the still-valid token")
	}
	if _, failed := rec.counts(); failed != 1 {
		t.Errorf("observer heard %d failures, want 1", failed)
	}
	// Within the hold the endpoint is not asked again.
	clock.Advance(10 * time.Second)
	mustToken(t, s)
	if srv.Requests() != 2 {
		t.Errorf("requests = %d, want 2 (no retry within the hold)", srv.Requests())
	}
	// After the hold it is, and once the token is about to expire the
	// failure surfaces.
	clock.Advance(3*time.Minute + 40*time.Second)
	_, err := s.Token(t.Context())
	var re *oauth.RefreshError
	if !errors.As(err, &re) || !re.Temporary() {
		t.Fatalf("near expiry: err = %v, want a temporary *RefreshError", err)
	}
}

func TestSourceRotatedRefreshTokenIsUsedNextTime(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret, Rotate: true, RevokeRotated: true})
	s, _, logs := newSource(t, srv, nil, nil)
	for i := range 3 {
		tok := mustToken(t, s)
		if !s.Invalidate(tok) {
			t.Fatalf("round %d: Invalidate refused the current token", i)
		}
	}
	if got, want := fmt.Sprint(srv.RefreshTokensUsed()), "[rt-0 rt-1 rt-2]"; got != want {
		t.Errorf("refresh tokens presented: %s, want %s", got, want)
	}
	out := logs.String()
	if strings.Count(out, "refresh token rotated") != 3 {
		t.Errorf("want three rotation log lines:\n%s", out)
	}
	for _, secret := range []string{"rt-1", "rt-2", "rt-3", "at-", testSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("log reveals %q:\n%s", secret, out)
		}
	}
}

func TestSourceInvalidate(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret})
	s, _, _ := newSource(t, srv, nil, nil)
	tok := mustToken(t, s)
	if s.Invalidate("some-other-token") || s.Invalidate("") {
		t.Fatal("Invalidate dropped the cache for a token it does not hold")
	}
	if got := mustToken(t, s); got != tok || srv.Requests() != 1 {
		t.Fatal("token changed without invalidation")
	}
	if !s.Invalidate(tok) || s.Invalidate(tok) {
		t.Fatal("Invalidate(current) must succeed exactly once")
	}
	if got := mustToken(t, s); got == tok || srv.Requests() != 2 {
		t.Fatalf("after Invalidate: same token=%v requests=%d", got == tok, srv.Requests())
	}
}

func TestSourceClientCredentials(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret})
	s, _, _ := newSource(t, srv, nil, func(c *oauth.Config) {
		c.RefreshToken = ""
		c.Scopes = oauth.DefaultScopes(oauth.ProviderMicrosoft, oauth.IMAP, oauth.GrantClientCredentials)
	})
	if s.Grant() != oauth.GrantClientCredentials {
		t.Fatalf("Grant() = %s", s.Grant())
	}
	mustToken(t, s)
	forms := srv.Forms()
	want := map[string]string{"grant_type": "client_credentials", "client_id": "client-id", "client_secret": testSecret,
		"scope": "https://outlook.office365.com/.default"}
	if fmt.Sprint(forms) != fmt.Sprint([]map[string]string{want}) {
		t.Errorf("form = %v, want %v", forms, want)
	}
}

func TestSourceRefreshForm(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{})
	s, _, _ := newSource(t, srv, nil, func(c *oauth.Config) { c.ClientSecret = "" }) // public client
	mustToken(t, s)
	want := map[string]string{"grant_type": "refresh_token", "client_id": "client-id", "refresh_token": "rt-0",
		"scope": "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access"}
	if got := srv.Forms(); fmt.Sprint(got) != fmt.Sprint([]map[string]string{want}) {
		t.Errorf("form = %v, want %v", got, want)
	}
}

func TestSourceWaitIsBoundedByContext(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret})
	s, _, _ := newSource(t, srv, nil, nil)
	srv.Hold()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// The request carries on for the next caller.
	srv.Release()
	mustToken(t, s)
	if srv.Requests() != 1 {
		t.Errorf("requests = %d, want 1 (the abandoned wait did not cancel the shared request)", srv.Requests())
	}
}

func TestSourceRequestTimeout(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: testSecret})
	s, rec, _ := newSource(t, srv, nil, func(c *oauth.Config) { c.Timeout = 100 * time.Millisecond })
	srv.Hold()
	start := time.Now()
	_, err := s.Token(t.Context())
	var re *oauth.RefreshError
	if !errors.As(err, &re) || !re.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a temporary *RefreshError wrapping DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timed out after %v, want about 100ms", d)
	}
	if _, failed := rec.counts(); failed != 1 {
		t.Errorf("observer heard %d failures, want 1", failed)
	}
}

// TestSourceEndpointResponses covers what real endpoints send besides a
// clean answer.
func TestSourceEndpointResponses(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		ctype     string
		body      string
		wantErr   string // substring; "" = success
		temporary bool
		lifetime  time.Duration
	}{
		{name: "expires_in as a string", status: 200, ctype: "application/json",
			body: `{"access_token":"abc.def","token_type":"bearer","expires_in":"3599"}`, lifetime: 3599 * time.Second},
		{name: "no expires_in", status: 200, ctype: "application/json; charset=utf-8",
			body: `{"access_token":"abc","token_type":"Bearer"}`, lifetime: 10 * time.Minute},
		{name: "huge expires_in is capped", status: 200, ctype: "application/json",
			body: `{"access_token":"abc","expires_in":1e300}`, lifetime: 24 * time.Hour},
		{name: "no access token", status: 200, ctype: "application/json",
			body: `{"token_type":"Bearer","expires_in":3600}`, wantErr: "no access_token"},
		{name: "MAC token", status: 200, ctype: "application/json",
			body: `{"access_token":"abc","token_type":"mac"}`, wantErr: `token_type "mac": want Bearer`},
		{name: "control character in token", status: 200, ctype: "application/json",
			body: `{"access_token":"abc\u0001user=evil","expires_in":3600}`, wantErr: "outside printable ASCII"},
		{name: "negative expires_in", status: 200, ctype: "application/json",
			body: `{"access_token":"abc","expires_in":-5}`, wantErr: "expires_in is negative"},
		{name: "garbage expires_in", status: 200, ctype: "application/json",
			body: `{"access_token":"abc","expires_in":"soon"}`, wantErr: "expires_in is not a number"},
		{name: "HTML from a proxy", status: 200, ctype: "text/html",
			body: `<html>login</html>`, wantErr: "response is text/html, not JSON"},
		{name: "truncated JSON", status: 200, ctype: "application/json",
			body: `{"access_token":"secret-abc`, wantErr: "decode token response"},
		{name: "gateway error", status: 502, ctype: "text/html",
			body: `<html>bad gateway</html>`, wantErr: "HTTP 502 Bad Gateway (text/html)", temporary: true},
		{name: "rate limited", status: 429, ctype: "application/json",
			body: `{"error":"","error_description":"slow"}`, wantErr: "HTTP 429", temporary: true},
		{name: "invalid client", status: 401, ctype: "application/json",
			body:    `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`,
			wantErr: "invalid_client: AADSTS7000215: Invalid client secret provided. (HTTP 401)"},
		{name: "server_error code", status: 500, ctype: "application/json",
			body: `{"error":"server_error"}`, wantErr: "server_error (HTTP 500)", temporary: true},
		{name: "redirect is not followed", status: 307, ctype: "text/plain",
			body: ``, wantErr: "HTTP 307", temporary: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var elsewhere atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
			defer other.Close()
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 307 {
					w.Header().Set("Location", other.URL+"/steal")
				}
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer hs.Close()
			s, err := oauth.NewSource(oauth.Config{Name: "mb", TokenURL: hs.URL, ClientID: "c", RefreshToken: "r"})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Token(t.Context())
			if elsewhere.Load() != 0 {
				t.Errorf("the redirect was followed: credentials went to another server")
			}
			if tt.wantErr == "" {
				if err != nil || tok == "" {
					t.Fatalf("Token() = %q, %v", tok, err)
				}
				if got := time.Until(s.Expiry()); got > tt.lifetime || got < tt.lifetime-time.Minute {
					t.Errorf("lifetime %v, want %v", got, tt.lifetime)
				}
				return
			}
			var re *oauth.RefreshError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want a *RefreshError containing %q", err, tt.wantErr)
			}
			if re.Temporary() != tt.temporary {
				t.Errorf("Temporary() = %v, want %v", re.Temporary(), tt.temporary)
			}
			if strings.Contains(err.Error(), "secret-abc") {
				t.Errorf("error quotes the response body: %v", err)
			}
		})
	}
}

func TestSourceLargeResponse(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"`+strings.Repeat("a", 2<<20)+`"}`)
	}))
	defer hs.Close()
	s, err := oauth.NewSource(oauth.Config{Name: "mb", TokenURL: hs.URL, ClientID: "c", RefreshToken: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(t.Context()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}

func TestNewSourceValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  oauth.Config
		want []string
	}{
		{"ok refresh", oauth.Config{TokenURL: "https://login.example/token", ClientID: "c", RefreshToken: "r"}, nil},
		{"ok loopback http", oauth.Config{TokenURL: "http://127.0.0.1:8080/token", ClientID: "c", ClientSecret: "s"}, nil},
		{"everything wrong", oauth.Config{TokenURL: "http://login.example/token", Scopes: []string{"a b", ""}, Timeout: -1},
			[]string{"http would send the credentials unencrypted", "client id: required", "client-credentials grant needs a client secret",
				`scope "a b"`, `scope ""`, "timeout"}},
		{"relative url", oauth.Config{TokenURL: "/token", ClientID: "c", RefreshToken: "r"}, []string{"token url: not an absolute URL"}},
		{"user info", oauth.Config{TokenURL: "https://u:pw@login.example/token", ClientID: "c", RefreshToken: "r"}, []string{"user info"}},
		{"ftp", oauth.Config{TokenURL: "ftp://login.example/token", ClientID: "c", RefreshToken: "r"}, []string{`unsupported scheme "ftp"`}},
		{"refresh token with newline", oauth.Config{TokenURL: "https://l.example/t", ClientID: "c", RefreshToken: "r\n"}, []string{"printable ASCII"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oauth.NewSource(tt.cfg)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error reveals the URL password: %v", err)
			}
		})
	}
}

func TestPresets(t *testing.T) {
	if got, _ := oauth.ProviderTokenURL(oauth.ProviderMicrosoft, "contoso.onmicrosoft.com"); got != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" {
		t.Errorf("microsoft url = %s", got)
	}
	if got, _ := oauth.ProviderTokenURL(oauth.ProviderMicrosoft, ""); got != "https://login.microsoftonline.com/organizations/oauth2/v2.0/token" {
		t.Errorf("microsoft default url = %s", got)
	}
	if got, _ := oauth.ProviderTokenURL(oauth.ProviderGoogle, ""); got != "https://oauth2.googleapis.com/token" {
		t.Errorf("google url = %s", got)
	}
	if _, err := oauth.ProviderTokenURL(oauth.ProviderCustom, ""); err == nil {
		t.Error("custom has a preset url")
	}
	if _, err := oauth.ProviderTokenURL("yahoo", ""); err == nil {
		t.Error("unknown provider accepted")
	}
	scopes := []struct {
		provider string
		proto    oauth.Protocol
		grant    string
		want     string
	}{
		{oauth.ProviderMicrosoft, oauth.IMAP, oauth.GrantRefreshToken, "[https://outlook.office365.com/IMAP.AccessAsUser.All offline_access]"},
		{oauth.ProviderMicrosoft, oauth.SMTP, oauth.GrantRefreshToken, "[https://outlook.office365.com/SMTP.Send offline_access]"},
		{oauth.ProviderMicrosoft, oauth.SMTP, oauth.GrantClientCredentials, "[https://outlook.office365.com/.default]"},
		{oauth.ProviderGoogle, oauth.IMAP, oauth.GrantRefreshToken, "[https://mail.google.com/]"},
		{oauth.ProviderCustom, oauth.IMAP, oauth.GrantRefreshToken, "[]"},
	}
	for _, s := range scopes {
		if got := fmt.Sprint(oauth.DefaultScopes(s.provider, s.proto, s.grant)); got != s.want {
			t.Errorf("DefaultScopes(%s, %s, %s) = %s, want %s", s.provider, s.proto, s.grant, got, s.want)
		}
	}
	if oauth.GrantSupported(oauth.ProviderGoogle, oauth.GrantClientCredentials) || !oauth.GrantSupported(oauth.ProviderMicrosoft, oauth.GrantClientCredentials) {
		t.Error("GrantSupported is wrong")
	}
	if !oauth.MicrosoftMultiTenant("Common") || oauth.MicrosoftMultiTenant("contoso.com") {
		t.Error("MicrosoftMultiTenant is wrong")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
