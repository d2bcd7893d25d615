package notify

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/emersion/go-sasl"
)

// SMTP authentication mechanisms of SMTPConfig.Auth.
const (
	SMTPAuthNone        = "none"
	SMTPAuthPlain       = "plain"
	SMTPAuthLogin       = "login"
	SMTPAuthXOAUTH2     = "xoauth2"     // Password holds the OAuth 2 access token
	SMTPAuthOAuthBearer = "oauthbearer" // RFC 7628; Password holds the token
)

// smtpSASL returns the SASL client for the configured mechanism, or nil for
// none.
func smtpSASL(cfg SMTPConfig) (sasl.Client, error) {
	switch cfg.Auth {
	case SMTPAuthNone:
		return nil, nil
	case SMTPAuthPlain:
		return sasl.NewPlainClient("", cfg.Username, cfg.Password), nil
	case SMTPAuthLogin:
		return &smtpLoginClient{user: cfg.Username, pass: cfg.Password}, nil
	case SMTPAuthXOAUTH2:
		return &smtpXOAuth2Client{user: cfg.Username, token: cfg.Password}, nil
	case SMTPAuthOAuthBearer:
		return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: cfg.Username, Token: cfg.Password, Host: cfg.Host, Port: cfg.Port,
		}), nil
	}
	return nil, fmt.Errorf("unknown auth mechanism %q", cfg.Auth)
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

// smtpXOAuth2Client is Google's and Microsoft's XOAUTH2 mechanism, which
// go-sasl lacks.
type smtpXOAuth2Client struct {
	user, token string
}

func (c *smtpXOAuth2Client) Start() (string, []byte, error) {
	ir := "user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"
	return "XOAUTH2", []byte(ir), nil
}

// Next answers the server's error challenge (a JSON status) with an empty
// response, after which the server sends its final failure reply.
func (c *smtpXOAuth2Client) Next([]byte) ([]byte, error) {
	return []byte{}, nil
}
