// Package oauthtest provides test doubles for code that uses package oauth:
// a token endpoint on 127.0.0.1 that issues short-lived tokens and counts
// requests, and the server side of the XOAUTH2 and OAUTHBEARER mechanisms
// for go-imap's and go-smtp's test servers.
package oauthtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/northwind-it/ticketgw/oauth"
)

// Options configure a Server.
type Options struct {
	ClientID     string        // required client_id (default "client-id")
	ClientSecret string        // required client_secret when set
	RefreshToken string        // the refresh token issued beforehand (default "rt-0")
	Lifetime     time.Duration // expires_in of issued tokens (default 1h; whole seconds)
	// Rotate makes every refresh-token response carry a new refresh token;
	// with RevokeRotated the old one stops working (rotation with reuse
	// detection).
	Rotate        bool
	RevokeRotated bool
	Now           func() time.Time // the server's clock for token expiry; default time.Now
	// Delay holds every successful response this long after the request
	// took effect (a refresh token rotated, an access token issued): a
	// slow endpoint, or one whose answer the client may give up on.
	Delay time.Duration
}

// Server is a token endpoint. Its methods are safe for concurrent use.
type Server struct {
	// URL is the token endpoint.
	URL string

	opts Options
	hs   *httptest.Server

	mu       sync.Mutex
	requests int
	inFlight int
	seq      int
	issued   map[string]time.Time // access token -> expiry
	refresh  map[string]bool      // valid refresh tokens
	current  string               // newest refresh token
	used     []string             // refresh token of each refresh request
	forms    []map[string]string
	fail     *failure
	gate     chan struct{} // when set, requests wait for it to close
}

type failure struct {
	status      int
	code, descr string
}

// NewServer starts a token endpoint on 127.0.0.1; it stops at the end of
// the test.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = "client-id"
	}
	if opts.RefreshToken == "" {
		opts.RefreshToken = "rt-0"
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:    opts,
		issued:  map[string]time.Time{},
		refresh: map[string]bool{opts.RefreshToken: true},
		current: opts.RefreshToken,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oauthtest: listen: %v", err)
	}
	s.hs = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}}
	s.hs.Start()
	s.URL = s.hs.URL + "/token"
	t.Cleanup(func() {
		s.Release()
		s.hs.Close()
	})
	return s
}

// Requests returns the number of token requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// InFlight returns the number of requests being handled (held at the gate).
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// Hold makes requests wait until Release.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

// Release lets held requests proceed.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// Fail makes every following request fail with an OAuth error response;
// status 0 restores normal service.
func (s *Server) Fail(status int, code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		s.fail = nil
		return
	}
	s.fail = &failure{status: status, code: code, descr: description}
}

// Valid reports whether access was issued here and has not expired.
func (s *Server) Valid(access string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.issued[access]
	return ok && s.opts.Now().Before(exp)
}

// Expire makes every token issued so far invalid (the IdP revoked them, or
// their time passed on the server's clock).
func (s *Server) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.issued {
		s.issued[k] = time.Time{}
	}
}

// Issued returns the number of access tokens issued.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.issued)
}

// RefreshTokensUsed returns the refresh token presented by each
// refresh-token request, in order.
func (s *Server) RefreshTokensUsed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.used...)
}

// Forms returns the form of each request, in order.
func (s *Server) Forms() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.forms...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.inFlight++
	gate := s.gate
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "unparsable form")
		return
	}
	form := map[string]string{}
	for k := range r.PostForm {
		form[k] = r.PostForm.Get(k)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.forms = append(s.forms, form)
	if f := s.fail; f != nil {
		writeError(w, f.status, f.code, f.descr)
		return
	}
	if form["client_id"] != s.opts.ClientID || (s.opts.ClientSecret != "" && form["client_secret"] != s.opts.ClientSecret) {
		writeError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	resp := map[string]any{"token_type": "Bearer", "expires_in": int(s.opts.Lifetime / time.Second)}
	switch form["grant_type"] {
	case oauth.GrantRefreshToken:
		rt := form["refresh_token"]
		s.used = append(s.used, rt)
		if !s.refresh[rt] {
			writeError(w, http.StatusBadRequest, "invalid_grant", "AADSTS70000: The provided refresh token is invalid.\r\nTrace ID: 0000")
			return
		}
		if s.opts.Rotate {
			s.seq++
			next := "rt-" + strconv.Itoa(s.seq)
			if s.opts.RevokeRotated {
				delete(s.refresh, rt)
			}
			s.refresh[next] = true
			s.current = next
			resp["refresh_token"] = next
		}
	case oauth.GrantClientCredentials:
		if s.opts.ClientSecret == "" || form["scope"] == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "client credentials need a secret and a scope")
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "grant "+form["grant_type"])
		return
	}
	access := fmt.Sprintf("at-%d.%d", len(s.issued)+1, time.Now().UnixNano())
	s.issued[access] = s.opts.Now().Add(s.opts.Lifetime)
	resp["access_token"] = access
	if sc := form["scope"]; sc != "" {
		resp["scope"] = sc
	}
	if d := s.opts.Delay; d > 0 {
		s.mu.Unlock()
		time.Sleep(d)
		s.mu.Lock() // for the deferred Unlock
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func writeError(w http.ResponseWriter, status int, code, descr string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": descr})
}

// ErrProtocol is returned by the SASL servers when the client answered an
// error challenge other than as its mechanism requires.
var ErrProtocol = errors.New("oauthtest: client broke the mechanism's error exchange")

// NewXOAuth2Server returns the server side of XOAUTH2. check decides about
// the user and token; when it refuses, the server sends Google's JSON error
// challenge, expects the empty response, and then returns check's error.
func NewXOAuth2Server(check func(user, token string) error) sasl.Server {
	return &xoauth2Server{check: check}
}

type xoauth2Server struct {
	check  func(user, token string) error
	failed error
	step   int
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	x.step++
	switch {
	case x.step == 1 && resp == nil:
		x.step = 0
		return []byte{}, false, nil // ask for the initial response
	case x.step == 1:
		user, token, err := parseXOAuth2(resp)
		if err != nil {
			return nil, true, err
		}
		if err := x.check(user, token); err != nil {
			x.failed = err
			return []byte(`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`), false, nil
		}
		return nil, true, nil
	case x.step == 2 && x.failed != nil:
		if len(resp) != 0 {
			return nil, true, ErrProtocol
		}
		return nil, true, x.failed
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

func parseXOAuth2(resp []byte) (user, token string, err error) {
	if !bytes.HasSuffix(resp, []byte("\x01\x01")) {
		return "", "", errors.New("oauthtest: malformed XOAUTH2 response")
	}
	parts := strings.Split(string(bytes.TrimSuffix(resp, []byte("\x01\x01"))), "\x01")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "user=") || !strings.HasPrefix(parts[1], "auth=Bearer ") {
		return "", "", errors.New("oauthtest: malformed XOAUTH2 response")
	}
	return parts[0][len("user="):], parts[1][len("auth=Bearer "):], nil
}

// NewOAuthBearerServer returns the server side of OAUTHBEARER (RFC 7628).
// check decides about the options; when it refuses, the server sends the
// JSON error challenge, expects 0x01, and then returns check's error.
func NewOAuthBearerServer(check func(o oauth.OAuthBearerOptions) error) sasl.Server {
	return &oauthBearerServer{check: check}
}

type oauthBearerServer struct {
	check  func(o oauth.OAuthBearerOptions) error
	failed error
	step   int
}

func (b *oauthBearerServer) Next(resp []byte) ([]byte, bool, error) {
	b.step++
	switch {
	case b.step == 1 && resp == nil:
		b.step = 0
		return []byte{}, false, nil
	case b.step == 1:
		o, err := parseOAuthBearer(resp)
		if err != nil {
			return nil, true, err
		}
		if err := b.check(o); err != nil {
			b.failed = err
			return []byte(`{"status":"invalid_token","schemes":"bearer","scope":"mail"}`), false, nil
		}
		return nil, true, nil
	case b.step == 2 && b.failed != nil:
		if !bytes.Equal(resp, []byte{0x01}) {
			return nil, true, ErrProtocol
		}
		return nil, true, b.failed
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

func parseOAuthBearer(resp []byte) (oauth.OAuthBearerOptions, error) {
	var o oauth.OAuthBearerOptions
	bad := errors.New("oauthtest: malformed OAUTHBEARER response")
	gs2, rest, ok := strings.Cut(string(resp), "\x01")
	if !ok || !strings.HasSuffix(rest, "\x01\x01") {
		return o, bad
	}
	hdr := strings.Split(gs2, ",")
	if len(hdr) != 3 || hdr[0] != "n" || hdr[2] != "" {
		return o, bad
	}
	if hdr[1] != "" {
		if !strings.HasPrefix(hdr[1], "a=") {
			return o, bad
		}
		o.Username = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(hdr[1][2:])
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "\x01\x01"), "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return o, bad
		}
		switch k {
		case "host":
			o.Host = v
		case "port":
			p, err := strconv.Atoi(v)
			if err != nil {
				return o, bad
			}
			o.Port = p
		case "auth":
			if !strings.HasPrefix(v, "Bearer ") {
				return o, bad
			}
			o.Token = v[len("Bearer "):]
		default:
			return o, bad
		}
	}
	if o.Token == "" {
		return o, bad
	}
	return o, nil
}
