package ingest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// This file holds the in-process IMAP test bench: a real imapserver with
// imapmemserver on 127.0.0.1:0, fault-injecting connections, a recording
// handler and the in-memory Checkpoints test double.

const (
	imapTestUser      = "support@northwind-it.example"
	imapTestPass      = "s3cret-pass"
	imapTestProcessed = "Processed"
)

// Capability sets the test servers advertise.
var (
	imapCapsRev2   = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}} // MOVE, UIDPLUS, IDLE
	imapCapsRev1   = imap.CapSet{imap.CapIMAP4rev1: {}}                        // no MOVE, no UIDPLUS
	imapCapsRev1UP = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}   // no MOVE, UIDPLUS
)

type imapServerOpts struct {
	caps   imap.CapSet
	noIdle bool // hide IDLE from CAPABILITY and record any IDLE sent anyway
	// copyUIDStar sends COPYUID with a "*" range (go-imap #749)
	copyUIDStar bool
	// shrinkSize lists every message's RFC822.SIZE as 1000 bytes (a server
	// whose listing disagrees with the bodies it sends).
	shrinkSize bool
	// watch, when set, sees what the server reads (client commands).
	watch func([]byte)
	tls   string // "", "implicit" or "starttls"
	// wrapSession, when set, wraps each imapmemserver session (e.g. to add
	// SASL mechanisms).
	wrapSession func(*imapserver.Conn, imapserver.Session) imapserver.Session
}

type imapTestServer struct {
	t       *testing.T
	addr    string
	user    *imapmemserver.User
	srv     *imapserver.Server
	certPEM *x509.CertPool // trusts the server's certificate
	tls     string         // the server's TLS mode
	sawIdle atomic.Bool    // a client sent IDLE (noIdle servers)
}

// imapTestLogger forwards server errors to the test log while the test runs.
type imapTestLogger struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (l *imapTestLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("imapserver: "+format, args...)
	}
}

func newIMAPTestServer(t *testing.T, o imapServerOpts) *imapTestServer {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(imapTestUser, imapTestPass)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatalf("create INBOX: %v", err)
	}
	mem.AddUser(u)
	ts := &imapTestServer{t: t, user: u, tls: o.tls}
	logger := &imapTestLogger{t: t}
	opts := &imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if o.wrapSession != nil {
				return o.wrapSession(c, mem.NewSession()), nil, nil
			}
			return mem.NewSession(), nil, nil
		},
		Caps:         o.caps,
		InsecureAuth: true,
		Logger:       logger,
	}
	var cert tls.Certificate
	if o.tls != "" {
		cert, ts.certPEM = imapTestCert(t)
	}
	if o.tls == imapTLSStartTLS {
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ts.srv = imapserver.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts.addr = ln.Addr().String()
	switch {
	case o.noIdle:
		ln = &imapRewriteListener{Listener: ln, rewrite: imapHideIdle, onRead: func(p []byte) {
			if imapIdleCmdRE.Match(p) {
				ts.sawIdle.Store(true)
			}
		}}
	case o.copyUIDStar:
		ln = &imapRewriteListener{Listener: ln, rewrite: imapCopyUIDStar}
	case o.watch != nil:
		ln = &imapRewriteListener{Listener: ln, onRead: o.watch}
	case o.shrinkSize:
		ln = &imapRewriteListener{Listener: ln, rewrite: func(p []byte) []byte {
			return imapSizeRE.ReplaceAll(p, []byte("RFC822.SIZE 1000"))
		}}
	}
	if o.tls == imapTLSImplicit {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	go func() { _ = ts.srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = ts.srv.Close()
		logger.mu.Lock()
		logger.done = true
		logger.mu.Unlock()
	})
	return ts
}

// imapTestCert makes a self-signed certificate for 127.0.0.1.
func imapTestCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imap test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
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

// appendMsg delivers raw to folder with the given internal date.
func (ts *imapTestServer) appendMsg(folder string, raw []byte, when time.Time) {
	ts.t.Helper()
	if _, err := ts.user.Append(folder, bytes.NewReader(raw), &imap.AppendOptions{Time: when}); err != nil {
		ts.t.Fatalf("append to %s: %v", folder, err)
	}
}

// count returns the number of messages in folder (-1 if it doesn't exist).
func (ts *imapTestServer) count(folder string) int {
	st, err := ts.user.Status(folder, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return -1
	}
	return int(*st.NumMessages)
}

// imapTestMsg is a message as read back from the server.
type imapTestMsg struct {
	uid   imap.UID
	flags []imap.Flag
	body  []byte
	date  time.Time
}

func (m imapTestMsg) String() string {
	id := "?"
	if sm := imapTestIDRE.FindSubmatch(m.body); sm != nil {
		id = string(sm[1])
	}
	return fmt.Sprintf("{uid %d %s flags %v, %d bytes}", m.uid, id, m.flags, len(m.body))
}

func (m imapTestMsg) has(f imap.Flag) bool {
	for _, g := range m.flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// snapshot reads folder's messages over a separate plain connection.
func (ts *imapTestServer) snapshot(folder string) []imapTestMsg {
	ts.t.Helper()
	var c *imapclient.Client
	var err error
	if ts.tls == imapTLSImplicit {
		c, err = imapclient.DialTLS(ts.addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: ts.certPEM}})
	} else {
		c, err = imapclient.DialInsecure(ts.addr, nil)
	}
	if err != nil {
		ts.t.Fatalf("snapshot dial: %v", err)
	}
	defer c.Close()
	if err := c.Login(imapTestUser, imapTestPass).Wait(); err != nil {
		ts.t.Fatalf("snapshot login: %v", err)
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		ts.t.Fatalf("snapshot select %s: %v", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	bufs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		ts.t.Fatalf("snapshot fetch %s: %v", folder, err)
	}
	var out []imapTestMsg
	for _, b := range bufs {
		out = append(out, imapTestMsg{
			uid: b.UID, flags: b.Flags, date: b.InternalDate,
			body: b.FindBodySection(&imap.FetchItemBodySection{}),
		})
	}
	_ = c.Logout().Wait()
	return out
}

// imapRewriteListener edits what the server writes (one response per Write:
// the imapserver flushes each response at once) and watches what it reads.
type imapRewriteListener struct {
	net.Listener
	rewrite func([]byte) []byte // nil: unchanged
	onRead  func([]byte)        // nil: ignored
}

func (l *imapRewriteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &imapRewriteConn{Conn: c, l: l}, nil
}

type imapRewriteConn struct {
	net.Conn
	l *imapRewriteListener
}

func (c *imapRewriteConn) Write(p []byte) (int, error) {
	if c.l.rewrite == nil {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(c.l.rewrite(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *imapRewriteConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.l.onRead != nil {
		c.l.onRead(p[:n])
	}
	return n, err
}

var (
	imapIdleCapRE = regexp.MustCompile(`(CAPABILITY[^\r\n]*?) IDLE([ \]\r])`)
	imapIdleCmdRE = regexp.MustCompile(`(?m)^\S+ IDLE\r$`)
	imapCopyUIDRE = regexp.MustCompile(`\[COPYUID (\d+) (\d+) (\d+)\]`)
)

// imapHideIdle hides IDLE from the server's capability lists (the
// imapserver always advertises it after login).
func imapHideIdle(p []byte) []byte { return imapIdleCapRE.ReplaceAll(p, []byte("$1$2")) }

// imapCopyUIDStar makes COPYUID name its source UIDs as "n:*", which
// go-imap beta.8 rejects by closing the connection (#749).
var imapSizeRE = regexp.MustCompile(`RFC822\.SIZE \d+`)

func imapCopyUIDStar(p []byte) []byte {
	return imapCopyUIDRE.ReplaceAll(p, []byte("[COPYUID $1 $2:* $3]"))
}

// imapFaults injects connection faults on the client side through the
// Dialer option. Each marker fires once, on whichever connection meets it.
type imapFaults struct {
	mu sync.Mutex
	// cutOnRead: the connection dies right after the client read this
	// marker (e.g. in the middle of a message body).
	cutOnRead []string
	// cutOnWrite: the connection dies instead of sending a command
	// containing this marker.
	cutOnWrite []string
	// stallOnWrite: after sending a command containing this marker the
	// server seems to go silent (reads block until the connection closes).
	stallOnWrite []string
	fired        []string
	dials        int
}

func (f *imapFaults) take(list *[]string, data []byte) (string, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range *list {
		if idx := bytes.Index(data, []byte(m)); idx >= 0 {
			*list = append((*list)[:i], (*list)[i+1:]...)
			f.fired = append(f.fired, m)
			return m, idx, true
		}
	}
	return "", 0, false
}

func (f *imapFaults) firedMarkers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.fired...)
}

func (f *imapFaults) dialer() DialFunc {
	d := &net.Dialer{}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.dials++
		f.mu.Unlock()
		return &imapFaultConn{Conn: c, f: f, closed: make(chan struct{})}, nil
	}
}

type imapFaultConn struct {
	net.Conn
	f         *imapFaults
	tail      []byte // the last bytes read, to find markers across reads
	cut       atomic.Bool
	stalled   atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *imapFaultConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *imapFaultConn) Read(p []byte) (int, error) {
	if c.stalled.Load() {
		<-c.closed
		return 0, net.ErrClosed
	}
	if c.cut.Load() {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	window := append(c.tail, p[:n]...)
	if m, idx, ok := c.f.take(&c.f.cutOnRead, window); ok {
		c.cut.Store(true)
		_ = c.Conn.Close()
		keep := max(idx+len(m)-len(c.tail), 0)
		return keep, nil
	}
	if len(window) > 64 {
		window = window[len(window)-64:]
	}
	c.tail = append(c.tail[:0], window...)
	return n, err
}

func (c *imapFaultConn) Write(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, net.ErrClosed
	}
	if _, _, ok := c.f.take(&c.f.cutOnWrite, p); ok {
		c.cut.Store(true)
		_ = c.Conn.Close()
		return 0, errors.New("injected fault: connection cut")
	}
	if _, _, ok := c.f.take(&c.f.stallOnWrite, p); ok {
		n, err := c.Conn.Write(p)
		c.stalled.Store(true)
		return n, err
	}
	return c.Conn.Write(p)
}

// imapCheckpoints is the in-memory Checkpoints test double.
type imapCheckpoints struct {
	mu sync.Mutex
	m  map[string][2]uint32
}

func newIMAPCheckpoints() *imapCheckpoints {
	return &imapCheckpoints{m: make(map[string][2]uint32)}
}

func (c *imapCheckpoints) Checkpoint(_ context.Context, mailbox string) (uint32, uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.m[mailbox]
	return v[0], v[1], nil
}

func (c *imapCheckpoints) SetCheckpoint(_ context.Context, mailbox string, uidValidity, lastUID uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[mailbox] = [2]uint32{uidValidity, lastUID}
	return nil
}

func (c *imapCheckpoints) get(mailbox string) (uint32, uint32) {
	v, l, _ := c.Checkpoint(context.Background(), mailbox)
	return v, l
}

// imapFakeClock is a settable clock for WithClock.
type imapFakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *imapFakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *imapFakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// imapCall is one handler invocation as the recorder saw it.
type imapCall struct {
	id      string
	meta    Fetched // without Body
	body    []byte
	readErr error
	result  error
	at      time.Time
}

// imapRecorder is a Handler that reads the whole body, identifies the
// message by its X-Test-Id header and records everything. fail, when set,
// decides the handler's result (after reading).
type imapRecorder struct {
	mu    sync.Mutex
	calls []imapCall
	// fail returns the error to return for the n-th call (1-based) of id.
	fail func(id string, n int) error
	// ignoreReadErrors makes the handler return nil even if the body read
	// failed (a buggy handler).
	ignoreReadErrors bool
	// block, when set, makes the handler wait for ctx to end.
	block   bool
	entered chan string
}

var imapTestIDRE = regexp.MustCompile(`(?m)^X-Test-Id: (\S+)\r$`)

func (r *imapRecorder) handle(ctx context.Context, f *Fetched) error {
	body, readErr := io.ReadAll(f.Body)
	id := "?"
	if m := imapTestIDRE.FindSubmatch(body); m != nil {
		id = string(m[1])
	}
	r.mu.Lock()
	n := 1
	for _, c := range r.calls {
		if c.id == id {
			n++
		}
	}
	fail, block, entered := r.fail, r.block, r.entered
	r.mu.Unlock()
	if entered != nil {
		select {
		case entered <- id:
		default:
		}
	}
	var result error
	switch {
	case readErr != nil && !r.ignoreReadErrors:
		result = readErr
	case block:
		<-ctx.Done()
		result = ctx.Err()
	case fail != nil:
		result = fail(id, n)
	}
	meta := *f
	meta.Body = nil
	r.mu.Lock()
	r.calls = append(r.calls, imapCall{id: id, meta: meta, body: body, readErr: readErr, result: result, at: time.Now()})
	r.mu.Unlock()
	if result != nil && strings.HasPrefix(result.Error(), "panic:") {
		panic(result.Error())
	}
	return result
}

func (r *imapRecorder) snapshot() []imapCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]imapCall(nil), r.calls...)
}

// succeeded returns, per message id, the number of calls that returned nil.
func (r *imapRecorder) succeeded() map[string]int {
	out := make(map[string]int)
	for _, c := range r.snapshot() {
		if c.result == nil {
			out[c.id]++
		}
	}
	return out
}

// callsFor returns the calls for id.
func (r *imapRecorder) callsFor(id string) []imapCall {
	var out []imapCall
	for _, c := range r.snapshot() {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

// imapTestMessage builds a message identified by id whose body is about
// size bytes of 8-bit text; marker, if set, sits in the middle of the body.
func imapTestMessage(id string, size int, marker string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Dana Levi <dana@acme.co.il>\r\nTo: %s\r\nSubject: test %s\r\n", imapTestUser, id)
	fmt.Fprintf(&b, "Message-ID: <%s@acme.co.il>\r\nX-Test-Id: %s\r\nMIME-Version: 1.0\r\n", id, id)
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.WriteString("שלום, המדפסת לא עובדת\r\n")
	line := 0
	for b.Len() < size {
		if marker != "" && b.Len() >= size/2 {
			b.WriteString(marker + "\r\n")
			marker = ""
		}
		fmt.Fprintf(&b, "%s line %05d: the quick brown fox, עובד חדש, café\r\n", id, line)
		line++
	}
	if marker != "" {
		b.WriteString(marker + "\r\n")
	}
	return b.Bytes()
}

// imapTestConfig is a fast configuration against ts.
func imapTestConfig(ts *imapTestServer) IMAPConfig {
	return IMAPConfig{
		Addr:            ts.addr,
		TLS:             imapTLSNone,
		Username:        imapTestUser,
		Password:        imapTestPass,
		Folder:          "INBOX",
		ProcessedFolder: imapTestProcessed,
		IDLE:            true,
		PollInterval:    50 * time.Millisecond,
		IdleRestart:     time.Second,
		CommandTimeout:  3 * time.Second,
		BackoffMin:      20 * time.Millisecond,
		BackoffMax:      200 * time.Millisecond,
	}
}

// imapTestLog returns a logger writing to the test log.
func imapTestLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(imapTestWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type imapTestWriter struct{ t *testing.T }

func (w imapTestWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runSource starts src.Run and returns a stop function that cancels it and
// fails the test unless Run returns within 2 s. It is also registered as a
// cleanup.
func imapRunSource(t *testing.T, src *Source, h Handler) (stop func() time.Duration) {
	t.Helper()
	return imapRunSourceBatches(t, src, h, nil)
}

// imapRunSourceBatches is imapRunSource with a batch handler (RunBatches).
func imapRunSourceBatches(t *testing.T, src *Source, h Handler, bh BatchHandler) (stop func() time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.RunBatches(ctx, h, bh) }()
	var once sync.Once
	var took time.Duration
	stop = func() time.Duration {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case err := <-done:
				took = time.Since(start)
				if err != nil {
					t.Errorf("Run returned %v, want nil after cancel", err)
				}
			case <-time.After(2 * time.Second):
				t.Errorf("Run did not return within 2s of cancel")
			}
		})
		return took
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitFor polls cond until it holds or the timeout passes.
func imapWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
