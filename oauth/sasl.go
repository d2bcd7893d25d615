package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// SASL mechanism names.
const (
	MechXOAuth2     = "XOAUTH2"
	MechOAuthBearer = "OAUTHBEARER"
)

// ServerError is the status a server sent in its error challenge when it
// refused a token: Google's XOAUTH2 {"status":"400",...}, or RFC 7628's
// {"status":"invalid_token",...}.
type ServerError struct {
	Mechanism string
	Status    string // "invalid_token", "400", ...; "" when the challenge was not JSON
	Schemes   string
	Scope     string
}

func (e *ServerError) Error() string {
	msg := e.Mechanism + " token refused by the server"
	if e.Status != "" {
		msg += ": status " + strconv.Quote(e.Status)
	} else {
		msg += " (malformed error challenge)"
	}
	if e.Scope != "" {
		msg += ", scope " + strconv.Quote(e.Scope)
	}
	return msg
}

// SASLClient is a token mechanism's client: a sasl.Client that also tells,
// after a failed exchange, what the server's error challenge said.
type SASLClient interface {
	sasl.Client
	// ServerError returns the server's error status, or nil if the server
	// sent no error challenge.
	ServerError() *ServerError
}

// NewSASLClient returns the client for mech (MechXOAuth2 or
// MechOAuthBearer, case-insensitive). host and port are used by
// OAUTHBEARER only.
func NewSASLClient(mech, username, token, host string, port int) (SASLClient, error) {
	switch {
	case strings.EqualFold(mech, MechXOAuth2):
		return NewXOAuth2Client(username, token), nil
	case strings.EqualFold(mech, MechOAuthBearer):
		return NewOAuthBearerClient(OAuthBearerOptions{Username: username, Token: token, Host: host, Port: port}), nil
	}
	return nil, fmt.Errorf("unknown oauth sasl mechanism %q: want %s or %s", mech, MechXOAuth2, MechOAuthBearer)
}

// XOAuth2Client is Google's and Microsoft's XOAUTH2 mechanism: the initial
// response "user=<u>\x01auth=Bearer <token>\x01\x01". A server refusing the
// token sends a JSON error challenge, which is answered with an empty
// response; the server then fails the command.
type XOAuth2Client struct {
	username, token string
	serverErr       *ServerError
}

// NewXOAuth2Client returns an XOAUTH2 client.
func NewXOAuth2Client(username, token string) *XOAuth2Client {
	return &XOAuth2Client{username: username, token: token}
}

// Start implements sasl.Client.
func (c *XOAuth2Client) Start() (string, []byte, error) {
	c.serverErr = nil
	if err := checkFields(c.username, c.token); err != nil {
		return "", nil, fmt.Errorf("xoauth2: %w", err)
	}
	return MechXOAuth2, []byte("user=" + c.username + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next implements sasl.Client: any challenge after the initial response is
// an error status; it is recorded and answered with the empty response the
// mechanism requires.
func (c *XOAuth2Client) Next(challenge []byte) ([]byte, error) {
	if c.serverErr != nil {
		return nil, errors.New("xoauth2: unexpected challenge after the error challenge")
	}
	c.serverErr = parseServerError(MechXOAuth2, challenge)
	return []byte{}, nil
}

// ServerError implements SASLClient.
func (c *XOAuth2Client) ServerError() *ServerError { return c.serverErr }

// OAuthBearerOptions are the fields of an OAUTHBEARER initial response.
type OAuthBearerOptions struct {
	Username string // sent as the authorization identity (a=)
	Token    string
	Host     string // the server's host name, optional
	Port     int    // the server's port, optional
}

// OAuthBearerClient is the OAUTHBEARER mechanism (RFC 7628): the initial
// response "n,a=<u>,\x01host=<h>\x01port=<p>\x01auth=Bearer <token>\x01\x01".
// A server refusing the token sends a JSON error challenge; the client
// answers with the single byte 0x01 (RFC 7628 §3.2.3) and the server fails
// the command.
type OAuthBearerClient struct {
	opts      OAuthBearerOptions
	serverErr *ServerError
}

// NewOAuthBearerClient returns an OAUTHBEARER client.
func NewOAuthBearerClient(opts OAuthBearerOptions) *OAuthBearerClient {
	return &OAuthBearerClient{opts: opts}
}

// Start implements sasl.Client.
func (c *OAuthBearerClient) Start() (string, []byte, error) {
	c.serverErr = nil
	o := c.opts
	if err := checkFields(o.Username, o.Token); err != nil {
		return "", nil, fmt.Errorf("oauthbearer: %w", err)
	}
	if err := checkField("host", o.Host); err != nil {
		return "", nil, fmt.Errorf("oauthbearer: %w", err)
	}
	if o.Port < 0 || o.Port > 65535 {
		return "", nil, fmt.Errorf("oauthbearer: port %d out of range", o.Port)
	}
	ir := "n,"
	if o.Username != "" {
		ir += "a=" + gs2Escape(o.Username)
	}
	ir += ","
	if o.Host != "" {
		ir += "\x01host=" + o.Host
	}
	if o.Port != 0 {
		ir += "\x01port=" + strconv.Itoa(o.Port)
	}
	ir += "\x01auth=Bearer " + o.Token + "\x01\x01"
	return MechOAuthBearer, []byte(ir), nil
}

// Next implements sasl.Client: the only challenge OAUTHBEARER has is the
// error status. It is recorded (see ServerError) and answered with 0x01.
// Next does not return it as an error: go-imap would then abandon the
// command without an answer and go-smtp would cancel it with "*", while the
// mechanism requires the 0x01 reply.
func (c *OAuthBearerClient) Next(challenge []byte) ([]byte, error) {
	if c.serverErr != nil {
		return nil, errors.New("oauthbearer: unexpected challenge after the error challenge")
	}
	c.serverErr = parseServerError(MechOAuthBearer, challenge)
	return []byte{0x01}, nil
}

// ServerError implements SASLClient.
func (c *OAuthBearerClient) ServerError() *ServerError { return c.serverErr }

// parseServerError decodes an error challenge; a challenge that is not the
// expected JSON object still counts as a refusal.
func parseServerError(mech string, challenge []byte) *ServerError {
	var v struct {
		Status  json.RawMessage `json:"status"`
		Schemes string          `json:"schemes"`
		Scope   string          `json:"scope"`
	}
	se := &ServerError{Mechanism: mech}
	if json.Unmarshal(challenge, &v) != nil {
		return se
	}
	// Google sends "status":"400"; some servers a bare number.
	var status string
	if json.Unmarshal(v.Status, &status) != nil {
		var n json.Number
		if json.Unmarshal(v.Status, &n) == nil {
			status = n.String()
		}
	}
	se.Status = clip(oneLine(status), 64)
	se.Schemes = clip(oneLine(v.Schemes), 64)
	se.Scope = clip(oneLine(v.Scope), 256)
	return se
}

// checkFields refuses values that would break the \x01-separated framing.
func checkFields(username, token string) error {
	if err := checkField("user name", username); err != nil {
		return err
	}
	if token == "" {
		return errors.New("empty token")
	}
	if !validToken(token) {
		return errors.New("token has characters outside printable ASCII")
	}
	return nil
}

func checkField(what, v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] == 0x7f {
			return fmt.Errorf("%s contains a control character", what)
		}
	}
	return nil
}

// gs2Escape encodes "," and "=" in a GS2 authzid (RFC 5801 §4).
func gs2Escape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',':
			out = append(out, "=2C"...)
		case '=':
			out = append(out, "=3D"...)
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

var (
	_ SASLClient = (*XOAuth2Client)(nil)
	_ SASLClient = (*OAuthBearerClient)(nil)
)
