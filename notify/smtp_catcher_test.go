package notify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpCatcher is an in-process SMTP server on 127.0.0.1:0 that records every
// session and message, with hooks to make it misbehave.
type smtpCatcher struct {
	srv  *smtp.Server
	host string
	port int

	mu       sync.Mutex
	sessions int
	logouts  int
	conns    []*smtp.Conn
	msgs     []smtpCaught
	datas    int

	// Hooks, set before use. Each may return an *smtp.SMTPError.
	onMail func(from string) error
	onRcpt func(to string) error
	onData func(n int, conn *smtp.Conn) error // n counts Data calls from 0
	// user and pass, when set, are required (PLAIN, LOGIN or XOAUTH2).
	user, pass string
	// discard drops accepted messages instead of recording them.
	discard bool
}

type smtpCaught struct {
	From    string
	To      []string
	Raw     []byte
	Session int
}

type smtpCatcherOpts struct {
	implicitTLS *tls.Config // serve TLS from the first byte
	startTLS    *tls.Config // offer STARTTLS
}

func newSMTPCatcher(t testing.TB, opts smtpCatcherOpts) *smtpCatcher {
	t.Helper()
	c := &smtpCatcher{}
	srv := smtp.NewServer(smtp.BackendFunc(c.newSession))
	srv.Domain = "catcher.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 64 << 20
	srv.TLSConfig = opts.startTLS
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.implicitTLS != nil {
		ln = tls.NewListener(ln, opts.implicitTLS)
	}
	c.srv = srv
	addr := ln.Addr().(*net.TCPAddr)
	c.host, c.port = "127.0.0.1", addr.Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = ln.Close() // Close may run before Serve has registered ln
		<-done
	})
	return c
}

// config returns a plaintext loopback SMTPConfig for the catcher.
func (c *smtpCatcher) config() SMTPConfig {
	return SMTPConfig{Host: c.host, Port: c.port, TLS: SMTPTLSNone, Timeout: 5 * time.Second, HELO: "gateway.test"}
}

func (c *smtpCatcher) newSession(conn *smtp.Conn) (smtp.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions++
	c.conns = append(c.conns, conn)
	return &smtpCatcherSession{c: c, id: c.sessions, conn: conn}, nil
}

func (c *smtpCatcher) stats() (sessions int, msgs []smtpCaught) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions, append([]smtpCaught(nil), c.msgs...)
}

// dropAll closes every client connection from the server side, as a server
// does when it times out idle clients.
func (c *smtpCatcher) dropAll() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, conn := range conns {
		_ = conn.Conn().Close()
	}
}

type smtpCatcherSession struct {
	c      *smtpCatcher
	id     int
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *smtpCatcherSession) Reset() { s.from, s.to = "", nil }
func (s *smtpCatcherSession) Logout() error {
	s.c.mu.Lock()
	s.c.logouts++
	s.c.mu.Unlock()
	return nil
}

func (s *smtpCatcherSession) AuthMechanisms() []string {
	if s.c.user == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login, "XOAUTH2"}
}

func (s *smtpCatcherSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.c.user || pass != s.c.pass {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &smtpTestLoginServer{check: check}, nil
	case "XOAUTH2":
		return &smtpTestXOAuth2Server{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *smtpCatcherSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.c.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	if s.c.onMail != nil {
		if err := s.c.onMail(from); err != nil {
			return err
		}
	}
	s.from = from
	return nil
}

func (s *smtpCatcherSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.c.onRcpt != nil {
		if err := s.c.onRcpt(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *smtpCatcherSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.c.mu.Lock()
	n := s.c.datas
	s.c.datas++
	s.c.mu.Unlock()
	if s.c.onData != nil {
		if err := s.c.onData(n, s.conn); err != nil {
			return err
		}
	}
	if s.c.discard {
		return nil
	}
	s.c.mu.Lock()
	s.c.msgs = append(s.c.msgs, smtpCaught{From: s.from, To: append([]string(nil), s.to...), Raw: raw, Session: s.id})
	s.c.mu.Unlock()
	return nil
}

// smtpTestLoginServer is the server side of LOGIN, prompting as most
// servers do.
type smtpTestLoginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *smtpTestLoginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if resp != nil {
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// smtpTestXOAuth2Server accepts "user=U\x01auth=Bearer T\x01\x01".
type smtpTestXOAuth2Server struct {
	check func(user, pass string) error
}

func (x *smtpTestXOAuth2Server) Next(resp []byte) ([]byte, bool, error) {
	parts := bytes.Split(bytes.TrimSuffix(resp, []byte("\x01\x01")), []byte("\x01"))
	if len(parts) != 2 || !bytes.HasPrefix(parts[0], []byte("user=")) || !bytes.HasPrefix(parts[1], []byte("auth=Bearer ")) {
		return nil, true, errors.New("malformed XOAUTH2 response")
	}
	return nil, true, x.check(string(parts[0][5:]), string(parts[1][12:]))
}

// smtpTestCert returns a self-signed certificate for 127.0.0.1 and
// localhost, and a pool that trusts it.
func smtpTestCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "catcher.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// smtpSilentServer accepts connections and never says anything: a server
// that hangs. It returns its port.
func smtpSilentServer(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func smtpItoa(i int) string { return strconv.Itoa(i) }
