package lmtp_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/lmtp"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/oauth/oauthtest"
)

const (
	imapUser = "support@msp.example"
	imapPass = "secret-imap-pass"
)

func startIMAP(t *testing.T, caps imap.CapSet, folders ...string) *localmail.IMAPServer {
	t.Helper()
	srv, err := localmail.StartIMAP(imapUser, imapPass, localmail.IMAPOptions{Caps: caps, Folders: folders})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func imapConfig(addr, folder, auth string) ingest.IMAPConfig {
	return ingest.IMAPConfig{Addr: addr, TLS: "none", Username: imapUser, Password: imapPass, Auth: auth, ProcessedFolder: folder}
}

// TestIMAPAppender files into the in-process IMAP server with each login
// method, into an existing folder and into one created on TRYCREATE, and
// checks bytes and INTERNALDATE.
func TestIMAPAppender(t *testing.T) {
	when := time.Date(2026, 11, 29, 9, 0, 7, 0, time.FixedZone("IST", 2*3600))
	tests := []struct {
		name, folder, auth string
		caps               imap.CapSet
	}{
		{name: "existing folder, auto auth", folder: "Processed"},
		{name: "created on TRYCREATE, plain", folder: "Filed/LMTP", auth: "plain"},
		{name: "IMAP4rev1 server, login", folder: "Processed", auth: "login", caps: imap.CapSet{imap.CapIMAP4rev1: {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startIMAP(t, tc.caps, "Processed")
			app, err := lmtp.NewIMAPAppender(imapConfig(srv.Addr, tc.folder, tc.auth), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if app.Folder() != tc.folder {
				t.Errorf("folder %q", app.Folder())
			}
			raw := append([]byte("Return-Path: <c@acme.example>\r\n"), message("append@x", "שלום")...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for range 2 {
				if err := app.Append(ctx, raw, when); err != nil {
					t.Fatalf("append: %v", err)
				}
			}
			msgs := readFolder(t, srv.Addr, imapUser, imapPass, tc.folder)
			if len(msgs) != 2 {
				t.Fatalf("%d messages in %s, want 2", len(msgs), tc.folder)
			}
			for _, m := range msgs {
				if !m.internalDate.Equal(when) {
					t.Errorf("INTERNALDATE %v, want %v", m.internalDate, when)
				}
				if !bytes.Equal(m.body, raw) {
					t.Errorf("body %q, want %q", m.body, raw)
				}
			}
		})
	}
}

func TestIMAPAppenderErrors(t *testing.T) {
	srv := startIMAP(t, nil, "Processed")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cfg := imapConfig(srv.Addr, "Processed", "")
	cfg.Password = "wrong"
	app, err := lmtp.NewIMAPAppender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = app.Append(ctx, message("x@x", "x"), time.Now())
	if err == nil || !strings.Contains(err.Error(), "log in as") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v", err)
	}

	if _, err := lmtp.NewIMAPAppender(ingest.IMAPConfig{Addr: "imap.example:143", TLS: "none", Username: "u", ProcessedFolder: "P"}, nil); err == nil {
		t.Error("accepted plaintext to a remote host")
	}

	// Nothing listens: the dial fails at once.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	app, _ = lmtp.NewIMAPAppender(imapConfig(dead, "Processed", ""), nil)
	if err := app.Append(ctx, message("x@x", "x"), time.Now()); err == nil || !strings.Contains(err.Error(), "dial imap") {
		t.Errorf("dead server: %v", err)
	}
}

// TestIMAPAppenderSilentServer checks that a server that accepts the
// connection and never answers cannot hold an APPEND past its deadline.
func TestIMAPAppenderSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	for _, tc := range []struct {
		name    string
		timeout time.Duration // CommandTimeout
		ctx     time.Duration
	}{
		{name: "context deadline", ctx: 300 * time.Millisecond},
		{name: "command timeout", timeout: 300 * time.Millisecond, ctx: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := imapConfig(ln.Addr().String(), "Processed", "")
			cfg.CommandTimeout = tc.timeout
			app, err := lmtp.NewIMAPAppender(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctx)
			defer cancel()
			start := time.Now()
			err = app.Append(ctx, message("x@x", "x"), time.Now())
			if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
				t.Errorf("got %v, want a deadline error", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// tokens is a token source whose current token is replaced when it is
// invalidated.
type tokens struct {
	mu          sync.Mutex
	seq         []string
	invalidated []string
}

func (s *tokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq[0], nil
}

func (s *tokens) Invalidate(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, tok)
	if len(s.seq) > 1 && s.seq[0] == tok {
		s.seq = s.seq[1:]
		return true
	}
	return false
}

// oauthSession adds XOAUTH2 and OAUTHBEARER to imapmemserver's session;
// only the token "fresh" is valid.
type oauthSession struct {
	imapserver.SessionIMAP4rev2
}

func (s *oauthSession) AuthenticateMechanisms() []string {
	return []string{oauth.MechXOAuth2, oauth.MechOAuthBearer}
}

func (s *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	check := func(user, token string) error {
		if user != imapUser || token != "fresh" {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "invalid token"}
		}
		return s.Login(imapUser, imapPass)
	}
	if mech == oauth.MechXOAuth2 {
		return oauthtest.NewXOAuth2Server(check), nil
	}
	return oauthtest.NewOAuthBearerServer(func(o oauth.OAuthBearerOptions) error { return check(o.Username, o.Token) }), nil
}

// TestIMAPAppenderOAuth files with XOAUTH2 (a token source whose stale
// token is refused once, then replaced) and OAUTHBEARER (a static token).
func TestIMAPAppenderOAuth(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(imapUser, imapPass)
	u.Create("INBOX", nil)
	u.Create("Processed", nil)
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &oauthSession{SessionIMAP4rev2: mem.NewSession().(imapserver.SessionIMAP4rev2)}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	src := &tokens{seq: []string{"stale", "fresh"}}
	cfg := imapConfig(ln.Addr().String(), "Processed", "xoauth2")
	cfg.Password, cfg.TokenSource = "", src
	app, err := lmtp.NewIMAPAppender(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Append(ctx, message("o1@x", "x"), time.Now()); err == nil {
		t.Fatal("the stale token was accepted")
	}
	if len(src.invalidated) != 1 || src.invalidated[0] != "stale" {
		t.Fatalf("invalidated %v, want the stale token", src.invalidated)
	}
	if err := app.Append(ctx, message("o2@x", "x"), time.Now()); err != nil {
		t.Fatalf("with the fresh token: %v", err)
	}

	cfg = imapConfig(ln.Addr().String(), "Processed", "oauthbearer")
	cfg.Password = "fresh" // a static access token
	app, err = lmtp.NewIMAPAppender(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Append(ctx, message("o3@x", "x"), time.Now()); err != nil {
		t.Fatalf("oauthbearer: %v", err)
	}
	if n := len(readFolder(t, ln.Addr().String(), imapUser, imapPass, "Processed")); n != 2 {
		t.Errorf("Processed holds %d, want 2", n)
	}
}
