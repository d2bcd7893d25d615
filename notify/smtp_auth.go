package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"

	"github.com/northwind-it/ticketgw/oauth"
)

// SMTP authentication mechanisms of SMTPConfig.Auth.
const (
	SMTPAuthNone        = "none"
	SMTPAuthPlain       = "plain"
	SMTPAuthLogin       = "login"
	SMTPAuthXOAUTH2     = "xoauth2"     // OAuth 2 access token from TokenSource (or Password)
	SMTPAuthOAuthBearer = "oauthbearer" // RFC 7628; the token as for xoauth2
)

// TokenSource supplies OAuth 2 access tokens for xoauth2 and oauthbearer
// (*oauth.Source implements it).
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenInvalidator is implemented by token sources that cache tokens: a
// token the server refused is invalidated (once per streak of refusals), so
// that the next connection gets a fresh one.
type TokenInvalidator interface {
	Invalidate(token string) bool
}

// smtpTokenAuth reports whether auth carries an OAuth access token.
func smtpTokenAuth(auth string) bool {
	return auth == SMTPAuthXOAUTH2 || auth == SMTPAuthOAuthBearer
}

// smtpSASL returns the SASL client for the configured mechanism, or nil for
// none. secret is the password or the access token.
func smtpSASL(cfg SMTPConfig, secret string) (sasl.Client, error) {
	switch cfg.Auth {
	case SMTPAuthNone:
		return nil, nil
	case SMTPAuthPlain:
		return sasl.NewPlainClient("", cfg.Username, secret), nil
	case SMTPAuthLogin:
		return &smtpLoginClient{user: cfg.Username, pass: secret}, nil
	case SMTPAuthXOAUTH2:
		return oauth.NewXOAuth2Client(cfg.Username, secret), nil
	case SMTPAuthOAuthBearer:
		return oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{
			Username: cfg.Username, Token: secret, Host: cfg.Host, Port: cfg.Port,
		}), nil
	}
	return nil, fmt.Errorf("unknown auth mechanism %q", cfg.Auth)
}

// authFailed adds the server's token status to a failed AUTH and, when the
// server refused an access token (535, or an error challenge), invalidates
// it once so that the next connection fetches a fresh one.
func (s *Sender) authFailed(auth sasl.Client, token string, err error) error {
	var refused bool
	if oc, ok := auth.(oauth.SASLClient); ok {
		if se := oc.ServerError(); se != nil {
			err = fmt.Errorf("%w (%w)", err, se)
			refused = true
		}
	}
	if smtpReplyCode(err) == 535 {
		refused = true
	}
	inv, ok := s.cfg.TokenSource.(TokenInvalidator)
	if !refused || !ok || !smtpTokenAuth(s.cfg.Auth) {
		return err
	}
	if s.tokenInvalidated.Swap(true) {
		s.log.Warn("smtp server refused a fresh access token too; check the application's permissions and SMTP AUTH for the mailbox")
	} else if inv.Invalidate(token) {
		s.log.Info("smtp server refused the access token; the next connection gets a fresh one")
	}
	return err
}

// smtpLoginClient is the LOGIN mechanism. go-sasl's client sends the user
// name as an initial response and then insists on the exact challenge
// "Password:"; servers differ ("Username:", "password:", localised text), so
// this one answers the challenges in order and only uses their text to tell
// a password prompt from a user-name prompt.
type smtpLoginClient struct {
	user, pass string
	step       int
}

func (c *smtpLoginClient) Start() (string, []byte, error) {
	c.step = 0
	return "LOGIN", nil, nil
}

func (c *smtpLoginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	lower := bytes.ToLower(challenge)
	switch {
	case c.step > 2:
		return nil, errors.New("login: unexpected third challenge")
	case bytes.Contains(lower, []byte("pass")):
		return []byte(c.pass), nil
	case bytes.Contains(lower, []byte("user")), c.step == 1:
		return []byte(c.user), nil
	default:
		return []byte(c.pass), nil
	}
}
