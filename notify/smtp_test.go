package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func smtpNewSender(t testing.TB, cfg SMTPConfig) *Sender {
	t.Helper()
	s, err := NewSender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// smtpTestMessage is a small composed message for transport tests.
func smtpTestMessage(t testing.TB, i int) ([]byte, Envelope) {
	t.Helper()
	a := mailEnglishAck()
	a.MessageID = fmt.Sprintf("ack.T-%d.x@northwind-it.example", i)
	raw, env, err := ComposeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	return raw, env
}

func TestSendAckArrivesIntact(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s := smtpNewSender(t, c.config())
	a := mailHebrewAck()
	raw, env, err := ComposeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatal(err)
	}
	_, msgs := c.stats()
	if len(msgs) != 1 {
		t.Fatalf("%d messages arrived", len(msgs))
	}
	m := msgs[0]
	if m.From != "support@northwind-it.example" || fmt.Sprint(m.To) != "[dani@acme.example]" {
		t.Errorf("envelope = %s -> %v", m.From, m.To)
	}
	if !bytes.Equal(m.Raw, raw) {
		t.Errorf("arrived bytes differ from the composed bytes:\n%q\n%q", m.Raw, raw)
	}
	got := mailParse(t, m.Raw)
	mailCheckAckHeaders(t, got, a)
	if got.text != mailCRLFString(a.Text) {
		t.Errorf("text = %q", got.text)
	}
}

func TestSendForwardKeepsAttachments(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s := smtpNewSender(t, c.config())
	atts := map[string][]byte{
		"report.bin":        mailRandom(1<<20, 7),
		"חשבונית מרץ.pdf":   mailRandom(50_000, 8),
		"dots-at-start.txt": []byte(".\r\n..\r\n.hidden\r\n"),
	}
	f := mailTestForward(bytes.NewReader(mailTestOriginal(t, atts)))
	raw, env, err := ComposeForward(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatal(err)
	}
	_, msgs := c.stats()
	if len(msgs) != 1 {
		t.Fatalf("%d messages arrived", len(msgs))
	}
	if !bytes.Equal(msgs[0].Raw, raw) {
		t.Error("arrived bytes differ from the composed bytes")
	}
	if fmt.Sprint(msgs[0].To) != "[helpdesk@northwind-it.example]" {
		t.Errorf("rcpt = %v", msgs[0].To)
	}
	mailCheckForward(t, msgs[0].Raw, f, atts)
}

func TestSendReusesSessions(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		s := smtpNewSender(t, c.config())
		for i := range 10 {
			raw, env := smtpTestMessage(t, i)
			if err := s.Send(t.Context(), env, raw); err != nil {
				t.Fatal(err)
			}
		}
		sessions, msgs := c.stats()
		if len(msgs) != 10 || sessions != 1 {
			t.Errorf("%d messages over %d sessions, want 10 over 1", len(msgs), sessions)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		cfg := c.config()
		cfg.Connections = 3
		s := smtpNewSender(t, cfg)
		const n, workers = 40, 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					raw, env := smtpTestMessage(t, i)
					errs <- s.Send(t.Context(), env, raw)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		sessions, msgs := c.stats()
		if len(msgs) != n || sessions > cfg.Connections {
			t.Errorf("%d messages over %d sessions, want %d over at most %d", len(msgs), sessions, n, cfg.Connections)
		}
	})
}

func TestSendTemporaryFailureThenSuccess(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	c.onData = func(n int, _ *smtp.Conn) error {
		if n < 3 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}
	s := smtpNewSender(t, c.config())
	raw, env := smtpTestMessage(t, 1)
	for i := range 3 {
		err := s.Send(t.Context(), env, raw)
		var se *SendError
		if !errors.As(err, &se) || se.Code != 451 || se.Op != "data" || !IsTemporary(err) {
			t.Fatalf("attempt %d: err = %#v, want a temporary 451 at data", i, err)
		}
	}
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatalf("after the server recovered: %v", err)
	}
	if _, msgs := c.stats(); len(msgs) != 1 {
		t.Errorf("%d messages stored, want 1", len(msgs))
	}
}

func TestSendRedialsWhenServerDroppedSession(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s := smtpNewSender(t, c.config())
	raw, env := smtpTestMessage(t, 1)
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatal(err)
	}
	c.dropAll() // the server times the idle client out
	time.Sleep(20 * time.Millisecond)
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatalf("send on a dropped pooled session: %v", err)
	}
	sessions, msgs := c.stats()
	if sessions != 2 || len(msgs) != 2 {
		t.Errorf("%d messages over %d sessions, want 2 over 2", len(msgs), sessions)
	}
}

func TestSendRedialsAfter421OnPooledSession(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	var mails int
	c.onMail = func(string) error {
		mails++ // the catcher serialises sessions here: one client at a time
		if mails == 2 {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "too many messages in this session"}
		}
		return nil
	}
	s := smtpNewSender(t, c.config())
	raw, env := smtpTestMessage(t, 1)
	for i := range 2 {
		if err := s.Send(t.Context(), env, raw); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	sessions, msgs := c.stats()
	if sessions != 2 || len(msgs) != 2 || mails != 3 {
		t.Errorf("%d messages over %d sessions after %d MAIL commands, want 2 over 2 after 3", len(msgs), sessions, mails)
	}
}

func TestSendServerDropsDuringData(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	c.onData = func(n int, conn *smtp.Conn) error {
		if n == 0 {
			_ = conn.Conn().Close() // no reply to the final dot
			return errors.New("dropped")
		}
		return nil
	}
	s := smtpNewSender(t, c.config())
	raw, env := smtpTestMessage(t, 1)
	err := s.Send(t.Context(), env, raw)
	if err == nil || !IsTemporary(err) {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	var se *SendError
	if !errors.As(err, &se) || se.Op != "data" {
		t.Errorf("err = %#v, want Op data", err)
	}
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatalf("next send: %v", err)
	}
}

func TestSendRecipientErrors(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	c.onRcpt = func(to string) error {
		switch {
		case strings.HasPrefix(to, "gone@"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		case strings.HasPrefix(to, "full@"):
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	}
	s := smtpNewSender(t, c.config())
	raw, _ := smtpTestMessage(t, 1)

	t.Run("only recipient refused: permanent", func(t *testing.T) {
		err := s.Send(t.Context(), Envelope{From: "support@x.example", To: []string{"gone@acme.example"}}, raw)
		var re *RecipientError
		if !errors.As(err, &re) || len(re.Delivered) != 0 || len(re.Failed) != 1 || re.Failed[0].Code != 550 {
			t.Fatalf("err = %v", err)
		}
		if IsTemporary(err) {
			t.Error("550 classified temporary")
		}
	})
	t.Run("partial", func(t *testing.T) {
		before := len(func() []smtpCaught { _, m := c.stats(); return m }())
		env := Envelope{From: "support@x.example", To: []string{"dani@acme.example", "gone@acme.example", "full@acme.example"}}
		err := s.Send(t.Context(), env, raw)
		var re *RecipientError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want a RecipientError", err)
		}
		if fmt.Sprint(re.Delivered) != "[dani@acme.example]" || fmt.Sprint(re.Retry()) != "[full@acme.example]" || !IsTemporary(err) {
			t.Errorf("delivered %v, retry %v, temporary %v", re.Delivered, re.Retry(), IsTemporary(err))
		}
		_, msgs := c.stats()
		if len(msgs) != before+1 || fmt.Sprint(msgs[len(msgs)-1].To) != "[dani@acme.example]" {
			t.Errorf("the accepted recipient did not get the message")
		}
	})
	t.Run("permanent at mail", func(t *testing.T) {
		c.onMail = func(string) error {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender not owned"}
		}
		defer func() { c.onMail = nil }()
		err := s.Send(t.Context(), Envelope{From: "x@x.example", To: []string{"dani@acme.example"}}, raw)
		var se *SendError
		if !errors.As(err, &se) || se.Op != "mail" || se.Code != 553 || IsTemporary(err) {
			t.Fatalf("err = %#v", err)
		}
	})
}

func TestSendNullReversePath(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s := smtpNewSender(t, c.config())
	raw, env := smtpTestMessage(t, 1)
	env.From = ""
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatal(err)
	}
	if _, msgs := c.stats(); len(msgs) != 1 || msgs[0].From != "" {
		t.Errorf("messages = %+v", msgs)
	}
}

func TestSendRejectsBadEnvelope(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s := smtpNewSender(t, c.config())
	raw, _ := smtpTestMessage(t, 1)
	for _, env := range []Envelope{
		{From: "a@x.example"},
		{From: "a@x.example", To: []string{"b@x.example\r\nRCPT TO:<c@evil.example>"}},
		{From: "a@x.example>\r\nRSET", To: []string{"b@x.example"}},
		{From: "a@x.example", To: []string{"b@x.example> NOTIFY=NEVER"}},
	} {
		err := s.Send(t.Context(), env, raw)
		if !errors.Is(err, ErrInvalidEnvelope) || IsTemporary(err) {
			t.Errorf("envelope %q: err = %v, want a permanent ErrInvalidEnvelope", env, err)
		}
	}
	if sessions, _ := c.stats(); sessions != 0 {
		t.Errorf("%d sessions opened for invalid envelopes", sessions)
	}
}

func TestSendTimesOut(t *testing.T) {
	port := smtpSilentServer(t)
	s := smtpNewSender(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: SMTPTLSNone, Timeout: 300 * time.Millisecond})
	raw, env := smtpTestMessage(t, 1)
	start := time.Now()
	err := s.Send(t.Context(), env, raw)
	// Whichever fires first, the context or the client's per-command
	// deadline (both set to Timeout), the error is a temporary timeout.
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) || !IsTemporary(err) {
		t.Errorf("err = %v, want a temporary timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v with a 300ms timeout", d)
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	s2 := smtpNewSender(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: SMTPTLSNone, Timeout: time.Minute})
	if err := s2.Send(ctx, env, raw); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled send: err = %v", err)
	}
}

func TestSendWaitsForAFreeSession(t *testing.T) {
	port := smtpSilentServer(t)
	s := smtpNewSender(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: SMTPTLSNone, Timeout: 2 * time.Second, Connections: 1})
	raw, env := smtpTestMessage(t, 1)
	go func() { _ = s.Send(context.Background(), env, raw) }() // holds the only session
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := s.Send(ctx, env, raw)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "free session") {
		t.Errorf("err = %v", err)
	}
}

func TestSenderAuth(t *testing.T) {
	for _, mech := range []string{SMTPAuthPlain, SMTPAuthLogin, SMTPAuthXOAUTH2} {
		t.Run(mech, func(t *testing.T) {
			c := newSMTPCatcher(t, smtpCatcherOpts{})
			c.user, c.pass = "support@northwind-it.example", "s3cret"
			cfg := c.config()
			cfg.Auth, cfg.Username, cfg.Password = mech, c.user, c.pass
			s := smtpNewSender(t, cfg)
			raw, env := smtpTestMessage(t, 1)
			if err := s.Send(t.Context(), env, raw); err != nil {
				t.Fatal(err)
			}

			cfg.Password = "wrong"
			bad := smtpNewSender(t, cfg)
			err := bad.Send(t.Context(), env, raw)
			var se *SendError
			if !errors.As(err, &se) || se.Op != "auth" || !IsTemporary(err) {
				t.Errorf("wrong password: err = %#v, want a temporary auth error", err)
			}
		})
	}
	t.Run("server without AUTH", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		cfg := c.config()
		cfg.Username, cfg.Password = "u", "p"
		s := smtpNewSender(t, cfg)
		raw, env := smtpTestMessage(t, 1)
		if err := s.Send(t.Context(), env, raw); err == nil || !strings.Contains(err.Error(), "offers no AUTH") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSenderTLS(t *testing.T) {
	cert, pool := smtpTestCert(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	raw, env := smtpTestMessage(t, 1)
	tests := []struct {
		name    string
		opts    smtpCatcherOpts
		mode    string
		trust   bool
		skip    bool
		wantErr string // SendError.Op, "" for success
	}{
		{"implicit verified", smtpCatcherOpts{implicitTLS: serverTLS}, SMTPTLSImplicit, true, false, ""},
		{"starttls verified", smtpCatcherOpts{startTLS: serverTLS}, SMTPTLSStartTLS, true, false, ""},
		{"implicit unknown CA", smtpCatcherOpts{implicitTLS: serverTLS}, SMTPTLSImplicit, false, false, "tls"},
		{"starttls unknown CA", smtpCatcherOpts{startTLS: serverTLS}, SMTPTLSStartTLS, false, false, "starttls"},
		{"starttls verification disabled", smtpCatcherOpts{startTLS: serverTLS}, SMTPTLSStartTLS, false, true, ""},
		{"starttls not offered", smtpCatcherOpts{}, SMTPTLSStartTLS, true, false, "starttls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSMTPCatcher(t, tt.opts)
			cfg := c.config()
			cfg.TLS, cfg.InsecureSkipVerify = tt.mode, tt.skip
			if tt.trust {
				cfg.RootCAs = pool
			}
			s := smtpNewSender(t, cfg)
			err := s.Send(t.Context(), env, raw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *SendError
			if !errors.As(err, &se) || se.Op != tt.wantErr {
				t.Fatalf("err = %v, want a failure at %s", err, tt.wantErr)
			}
			if _, msgs := c.stats(); len(msgs) != 0 {
				t.Error("a message went out over an unverified connection")
			}
		})
	}
}

func TestSMTPConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  SMTPConfig
		want []string // substrings of the error; none means valid
	}{
		{"loopback plaintext", SMTPConfig{Host: "127.0.0.1", TLS: "none"}, nil},
		{"localhost plaintext with auth", SMTPConfig{Host: "localhost", TLS: "none", Username: "u", Password: "p"}, nil},
		{"ipv6 loopback", SMTPConfig{Host: "::1", TLS: "none"}, nil},
		{"default starttls", SMTPConfig{Host: "smtp.example.com", Username: "u", Password: "p"}, nil},
		{"remote plaintext", SMTPConfig{Host: "smtp.example.com", TLS: "none"}, []string{"needs allow_plaintext"}},
		{"remote plaintext allowed", SMTPConfig{Host: "smtp.example.com", TLS: "none", AllowPlaintext: true}, nil},
		{"remote plaintext with password", SMTPConfig{Host: "smtp.example.com", TLS: "none", AllowPlaintext: true, Username: "u", Password: "p"},
			[]string{"credentials are only sent unencrypted to loopback"}},
		{"everything wrong", SMTPConfig{Host: "", TLS: "ssl", Auth: "cram-md5", Port: 70000, Connections: -1, HELO: "a b"},
			[]string{"host is empty", "port 70000", `tls "ssl"`, `auth "cram-md5"`, "connections -1", "helo"}},
		{"auth without credentials", SMTPConfig{Host: "smtp.example.com", Auth: "login"}, []string{"needs a username", "needs a password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSender(tt.cfg, nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSMTPConfigDefaults(t *testing.T) {
	for _, tt := range []struct {
		cfg        SMTPConfig
		port       int
		auth       string
		connection int
	}{
		{SMTPConfig{Host: "h", TLS: "implicit"}, 465, "none", 4},
		{SMTPConfig{Host: "h", Username: "u", Password: "p"}, 587, "plain", 4},
		{SMTPConfig{Host: "localhost", TLS: "NONE", Connections: 2}, 25, "none", 2},
	} {
		got := tt.cfg.withDefaults()
		if got.Port != tt.port || got.Auth != tt.auth || got.Connections != tt.connection || got.Timeout != smtpDefaultTimeout || got.HELO == "" {
			t.Errorf("%+v defaults to %+v", tt.cfg, got)
		}
	}
}

func TestSMTPConfigLogValueHidesPassword(t *testing.T) {
	cfg := SMTPConfig{Host: "h", Username: "u", Password: "hunter2"}
	if s := cfg.LogValue().String(); strings.Contains(s, "hunter2") {
		t.Errorf("LogValue shows the password: %s", s)
	}
}

func TestIsTemporary(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&smtp.SMTPError{Code: 421}, true},
		{&smtp.SMTPError{Code: 451}, true},
		{&smtp.SMTPError{Code: 550}, false},
		{&smtp.SMTPError{Code: 552}, false},
		{fmt.Errorf("send: %w", &smtp.SMTPError{Code: 454}), true},
		{&SendError{Op: "auth", Code: 535, Temporary: true, Err: &smtp.SMTPError{Code: 535}}, true},
		{&SendError{Op: "rcpt", Code: 550, Err: &smtp.SMTPError{Code: 550}}, false},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{syscall.ECONNRESET, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, true},
		{ErrSenderClosed, true},
		{fmt.Errorf("x: %w", ErrInvalidEnvelope), false},
		{errors.New("compose ack: date is zero"), false},
		{&RecipientError{Failed: []*SendError{{Rcpt: "a", Code: 550}}}, false},
		{&RecipientError{Failed: []*SendError{{Rcpt: "a", Code: 550}, {Rcpt: "b", Code: 452, Temporary: true}}}, true},
	}
	for _, tt := range tests {
		if got := IsTemporary(tt.err); got != tt.want {
			t.Errorf("IsTemporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestSenderClose(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s, err := NewSender(c.config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, env := smtpTestMessage(t, 1)
	if err := s.Send(t.Context(), env, raw); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = s.Send(t.Context(), env, raw)
	if !errors.Is(err, ErrSenderClosed) || !IsTemporary(err) {
		t.Errorf("send after close: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		c.mu.Lock()
		logouts := c.logouts
		c.mu.Unlock()
		if logouts == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pooled session was not ended (%d logouts)", logouts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSenderPing(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s := smtpNewSender(t, c.config())
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.dropAll()
	time.Sleep(20 * time.Millisecond)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("ping after the server dropped the session: %v", err)
	}
	bad := smtpNewSender(t, SMTPConfig{Host: "127.0.0.1", Port: smtpClosedPort(t), TLS: SMTPTLSNone, Timeout: time.Second})
	err := bad.Ping(t.Context())
	var se *SendError
	if !errors.As(err, &se) || se.Op != "dial" || !IsTemporary(err) {
		t.Errorf("ping to a closed port: %v", err)
	}
}

// smtpClosedPort returns a loopback port nobody listens on.
func smtpClosedPort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

func BenchmarkSend(b *testing.B) {
	c := newSMTPCatcher(b, smtpCatcherOpts{})
	c.discard = true
	raw, env := smtpTestMessage(b, 1)
	for _, conns := range []int{1, 4} {
		b.Run("connections="+smtpItoa(conns), func(b *testing.B) {
			cfg := c.config()
			cfg.Connections = conns
			s := smtpNewSender(b, cfg)
			b.SetBytes(int64(len(raw)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Send(context.Background(), env, raw); err != nil {
						b.Error(err)
					}
				}
			})
		})
	}
}
