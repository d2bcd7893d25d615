package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// maxResponseBytes bounds what is read from the token endpoint.
	maxResponseBytes = 1 << 20
	// maxLifetime caps an announced token lifetime, so that a bogus
	// expires_in cannot pin a token in the cache for years.
	maxLifetime = 24 * time.Hour
	// defaultLifetime is assumed when the endpoint sends no expires_in
	// (RFC 6749 only recommends it); a short guess costs a refresh, a long
	// one a refused login.
	defaultLifetime = 10 * time.Minute
	// maxDescription bounds the error_description quoted in errors.
	maxDescription = 300
)

// RefreshError is a failed request to the token endpoint.
type RefreshError struct {
	Name     string // Config.Name: which mailbox's credential
	Endpoint string // the token URL
	Grant    string // GrantRefreshToken or GrantClientCredentials
	// StatusCode is the HTTP status; 0 when no response arrived.
	StatusCode int
	// Code and Description are the endpoint's "error" (invalid_grant,
	// invalid_client, invalid_scope, ...) and "error_description" (one
	// line, truncated). Empty when the response was not an OAuth error.
	Code        string
	Description string
	// Err is the transport or decoding error, if any.
	Err error
}

func (e *RefreshError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refresh oauth token")
	if e.Name != "" {
		fmt.Fprintf(&b, " for %s", e.Name)
	}
	fmt.Fprintf(&b, " (%s grant) at %s: ", e.Grant, e.Endpoint)
	switch {
	case e.Code != "":
		b.WriteString(e.Code)
		if e.Description != "" {
			b.WriteString(": " + e.Description)
		}
		if e.StatusCode != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	}
	return b.String()
}

func (e *RefreshError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed: no response, a
// server error, rate limiting, or an endpoint saying so. invalid_grant,
// invalid_client and the like need a person.
func (e *RefreshError) Temporary() bool {
	switch e.Code {
	case "":
	case "temporarily_unavailable", "server_error", "slow_down":
		return true
	default:
		return false
	}
	return e.StatusCode == 0 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// tokenResponse is a successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    expiresIn `json:"expires_in"`
	RefreshToken string    `json:"refresh_token"`
	Scope        string    `json:"scope"`
}

// expiresIn is a lifetime in seconds, sent as a number or, by some
// endpoints, as a string of digits. set reports whether it was present.
type expiresIn struct {
	seconds float64
	set     bool
}

func (e *expiresIn) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return errBadExpiresIn
	}
	e.seconds, e.set = f, true
	return nil
}

var errBadExpiresIn = errors.New("expires_in is not a number")

// errorResponse is an error response (RFC 6749 §5.2).
type errorResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// grantResult is a parsed successful response.
type grantResult struct {
	access   string
	lifetime time.Duration
	refresh  string // a rotated refresh token, or ""
}

// parseTokenResponse decodes a 200 response body. Its errors never quote
// the body, which holds secrets.
func parseTokenResponse(body []byte) (grantResult, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return grantResult{}, fmt.Errorf("decode token response: field %s has the wrong type", ute.Field)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return grantResult{}, fmt.Errorf("decode token response: invalid JSON at offset %d", se.Offset)
		}
		if errors.Is(err, errBadExpiresIn) {
			return grantResult{}, fmt.Errorf("decode token response: %w", err)
		}
		return grantResult{}, errors.New("decode token response: not a JSON object")
	}
	if tr.AccessToken == "" {
		return grantResult{}, errors.New("token response has no access_token")
	}
	if !validToken(tr.AccessToken) {
		// A control character or a space would break the SASL framing.
		return grantResult{}, errors.New("token response: access_token has characters outside printable ASCII")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return grantResult{}, fmt.Errorf("token response: token_type %q: want Bearer", clip(tr.TokenType, 32))
	}
	if tr.RefreshToken != "" && !validToken(tr.RefreshToken) {
		return grantResult{}, errors.New("token response: refresh_token has characters outside printable ASCII")
	}
	res := grantResult{access: tr.AccessToken, refresh: tr.RefreshToken, lifetime: defaultLifetime}
	if tr.ExpiresIn.set {
		s := tr.ExpiresIn.seconds
		switch {
		case s != s || s < 0: // NaN or negative
			return grantResult{}, errors.New("token response: expires_in is negative")
		case s >= maxLifetime.Seconds():
			res.lifetime = maxLifetime
		default:
			res.lifetime = time.Duration(s * float64(time.Second))
		}
	}
	return res, nil
}

// validToken accepts printable ASCII without spaces: a superset of RFC
// 6750's b64token and of every JWT.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// parseErrorResponse reads an error body; ok is false unless it is an OAuth
// error object.
func parseErrorResponse(body []byte) (code, desc string, ok bool) {
	var er errorResponse
	if json.Unmarshal(body, &er) != nil || er.Error == "" {
		return "", "", false
	}
	return clip(oneLine(er.Error), 64), clip(oneLine(er.Description), maxDescription), true
}

// oneLine collapses white space (Microsoft's descriptions carry "\r\nTrace
// ID: ..." lines) and drops control characters.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// clip shortens s to n bytes at a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// request performs one grant against the endpoint. refresh is the refresh
// token for GrantRefreshToken.
func (s *Source) request(ctx context.Context, refresh string) (grantResult, error) {
	form := url.Values{}
	form.Set("grant_type", s.grant)
	form.Set("client_id", s.cfg.ClientID)
	if s.cfg.ClientSecret != "" {
		form.Set("client_secret", s.cfg.ClientSecret)
	}
	if s.grant == GrantRefreshToken {
		form.Set("refresh_token", refresh)
	}
	if len(s.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(s.cfg.Scopes, " "))
	}
	fail := func(status int, code, desc string, err error) (grantResult, error) {
		return grantResult{}, &RefreshError{Name: s.cfg.Name, Endpoint: s.cfg.TokenURL, Grant: s.grant,
			StatusCode: status, Code: code, Description: desc, Err: err}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fail(0, "", "", fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ticketgw-oauth/1")
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error names the URL, which holds no secret (the form is in
		// the body).
		return fail(0, "", "", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fail(resp.StatusCode, "", "", fmt.Errorf("read response: %w", err))
	}
	if len(body) > maxResponseBytes {
		return fail(resp.StatusCode, "", "", fmt.Errorf("response larger than %d bytes", maxResponseBytes))
	}
	if resp.StatusCode != http.StatusOK {
		if code, desc, ok := parseErrorResponse(body); ok {
			return fail(resp.StatusCode, code, desc, nil)
		}
		return fail(resp.StatusCode, "", "", fmt.Errorf("HTTP %s (%s)", resp.Status, describeType(resp.Header.Get("Content-Type"))))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return fail(resp.StatusCode, "", "", fmt.Errorf("response is %s, not JSON", describeType(mt)))
	}
	res, err := parseTokenResponse(body)
	if err != nil {
		return fail(resp.StatusCode, "", "", err)
	}
	return res, nil
}

// describeType names a Content-Type for an error message.
func describeType(ct string) string {
	if ct == "" {
		return "no content type"
	}
	return clip(oneLine(ct), 64)
}
