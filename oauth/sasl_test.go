package oauth_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"

	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/oauth/oauthtest"
)

func TestXOAuth2Client(t *testing.T) {
	c := oauth.NewXOAuth2Client("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
	mech, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	// The example of Google's XOAUTH2 documentation.
	want := "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
	if mech != "XOAUTH2" || string(ir) != want {
		t.Fatalf("Start() = %s %q, want XOAUTH2 %q", mech, ir, want)
	}
	if c.ServerError() != nil {
		t.Fatal("ServerError before any challenge")
	}
	resp, err := c.Next([]byte(`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`))
	if err != nil || resp == nil || len(resp) != 0 {
		t.Fatalf("Next(error challenge) = %q, %v; want an empty, non-nil response", resp, err)
	}
	se := c.ServerError()
	if se == nil || se.Status != "400" || se.Scope != "https://mail.google.com/" || se.Mechanism != "XOAUTH2" {
		t.Fatalf("ServerError() = %+v", se)
	}
	if got := se.Error(); got != `XOAUTH2 token refused by the server: status "400", scope "https://mail.google.com/"` {
		t.Errorf("Error() = %s", got)
	}
	if _, err := c.Next([]byte("again")); err == nil {
		t.Error("a second challenge was answered")
	}
}

func TestOAuthBearerClient(t *testing.T) {
	// RFC 7628 §4.1.
	c := oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{Username: "user@example.com", Token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
		Host: "server.example.com", Port: 143})
	mech, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	want := "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
	if mech != "OAUTHBEARER" || string(ir) != want {
		t.Fatalf("Start() = %s %q, want %q", mech, ir, want)
	}
	// RFC 7628 §4.3: the error challenge is answered with 0x01.
	resp, err := c.Next([]byte(`{"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"}`))
	if err != nil || !bytes.Equal(resp, []byte{1}) {
		t.Fatalf("Next(error challenge) = %q, %v; want 0x01", resp, err)
	}
	if se := c.ServerError(); se == nil || se.Status != "invalid_token" || se.Scope != "example_scope" {
		t.Fatalf("ServerError() = %+v", se)
	}
	// Start again resets the state.
	if _, _, err := c.Start(); err != nil || c.ServerError() != nil {
		t.Fatalf("restart: %v, %+v", err, c.ServerError())
	}
}

func TestOAuthBearerMinimalAndEscaped(t *testing.T) {
	c := oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{Username: "a,b=c", Token: "tok"})
	_, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	if want := "n,a=a=2Cb=3Dc,\x01auth=Bearer tok\x01\x01"; string(ir) != want {
		t.Errorf("Start() = %q, want %q", ir, want)
	}
	c = oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{Token: "tok"})
	if _, ir, _ := c.Start(); string(ir) != "n,,\x01auth=Bearer tok\x01\x01" {
		t.Errorf("no user: %q", ir)
	}
	if _, err := c.Next([]byte("not json")); err != nil || c.ServerError() == nil || c.ServerError().Status != "" {
		t.Errorf("malformed challenge: err %v, ServerError %+v; want a refusal without status", err, c.ServerError())
	}
}

func TestSASLClientsRefuseFramingBreakers(t *testing.T) {
	clients := []oauth.SASLClient{
		oauth.NewXOAuth2Client("u\x01auth=Bearer x", "tok"),
		oauth.NewXOAuth2Client("u", "tok\x01"),
		oauth.NewXOAuth2Client("u", ""),
		oauth.NewXOAuth2Client("u", "two words"),
		oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{Username: "u\r\n", Token: "tok"}),
		oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{Username: "u", Token: "tok", Host: "h\x01port=1"}),
		oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{Username: "u", Token: "tok", Port: 70000}),
	}
	for i, c := range clients {
		if _, ir, err := c.Start(); err == nil {
			t.Errorf("client %d: Start() = %q, want an error", i, ir)
		}
	}
}

func TestNewSASLClient(t *testing.T) {
	for _, mech := range []string{"xoauth2", "XOAUTH2", "OAuthBearer"} {
		c, err := oauth.NewSASLClient(mech, "u", "t", "h", 993)
		if err != nil {
			t.Fatal(err)
		}
		if m, _, _ := c.Start(); !strings.EqualFold(m, mech) {
			t.Errorf("NewSASLClient(%s) starts %s", mech, m)
		}
	}
	if _, err := oauth.NewSASLClient("PLAIN", "u", "t", "", 0); err == nil {
		t.Error("PLAIN accepted")
	}
}

// exchange runs a SASL exchange between c and srv in memory, the way
// go-imap and go-smtp do with an initial response.
func exchange(c sasl.Client, srv sasl.Server) error {
	_, resp, err := c.Start()
	if err != nil {
		return err
	}
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil || done {
			return err
		}
		if resp, err = c.Next(challenge); err != nil {
			return err
		}
	}
}

func TestSASLAgainstTestServers(t *testing.T) {
	refused := errors.New("refused")
	check := func(user, token string) error {
		if user == "u@example.com" && token == "good" {
			return nil
		}
		return refused
	}
	for _, tok := range []string{"good", "bad"} {
		xc := oauth.NewXOAuth2Client("u@example.com", tok)
		err := exchange(xc, oauthtest.NewXOAuth2Server(check))
		bc := oauth.NewOAuthBearerClient(oauth.OAuthBearerOptions{Username: "u@example.com", Token: tok, Host: "imap.example.com", Port: 993})
		berr := exchange(bc, oauthtest.NewOAuthBearerServer(func(o oauth.OAuthBearerOptions) error {
			if o.Host != "imap.example.com" || o.Port != 993 {
				return errors.New("wrong host or port")
			}
			return check(o.Username, o.Token)
		}))
		if tok == "good" {
			if err != nil || berr != nil || xc.ServerError() != nil || bc.ServerError() != nil {
				t.Errorf("good token: %v, %v", err, berr)
			}
			continue
		}
		// A refusal comes back as the server's own error after the
		// mechanism's error round trip (not ErrProtocol).
		if !errors.Is(err, refused) || xc.ServerError() == nil {
			t.Errorf("xoauth2 bad token: %v, %+v", err, xc.ServerError())
		}
		if !errors.Is(berr, refused) || bc.ServerError() == nil || bc.ServerError().Status != "invalid_token" {
			t.Errorf("oauthbearer bad token: %v, %+v", berr, bc.ServerError())
		}
	}
}
