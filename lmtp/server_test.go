package lmtp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/lmtp"
)

const (
	support = "support@msp.example"
	billing = "billing@msp.example"
)

// arrival is the fixed clock of these tests, with a fraction of a second
// that the server must drop.
var arrival = time.Date(2026, 11, 30, 7, 30, 15, 750_000_000, time.UTC)

func testConfig() lmtp.Config {
	return lmtp.Config{
		Network: "tcp", Address: "127.0.0.1:0", Mailbox: support,
		Recipients:      []string{"Support@MSP.example", billing},
		MaxMessageBytes: 64 << 10, RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
	}
}

func message(id, body string) []byte {
	return []byte("From: Customer <c@acme.example>\r\nTo: support@msp.example\r\nSubject: printer\r\nMessage-ID: <" +
		id + ">\r\n\r\n" + body + "\r\n")
}

// TestAnswers checks the answer to each kind of delivery and what the
// handler and the processed folder get.
func TestAnswers(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 64<<10)
	// The client ends a message with CRLF when it does not: exact ends with
	// one, so the server receives exactly 64 KiB.
	exact := append(message("exact@x", ""), big...)
	exact = append(exact[:64<<10-2], "\r\n"...)
	tests := []struct {
		name      string
		from      string
		rcpts     []string
		raw       []byte
		fail      error
		panics    bool
		wantRcpt  map[string]int
		wantData  int // for every accepted recipient; 0: no data phase
		wantCalls int // handler calls
		wantFiled int
	}{
		{name: "two support addresses, one ticket", from: "c@acme.example", rcpts: []string{support, "BILLING@msp.example"},
			raw: message("a@x", "hello"), wantRcpt: map[string]int{support: 250, "BILLING@msp.example": 250}, wantData: 250, wantCalls: 1, wantFiled: 1},
		{name: "foreign recipient refused", from: "c@acme.example", rcpts: []string{"helpdesk@msp.example", support},
			raw: message("b@x", "hello"), wantRcpt: map[string]int{"helpdesk@msp.example": 550, support: 250}, wantData: 250, wantCalls: 1, wantFiled: 1},
		{name: "only foreign recipients", from: "c@acme.example", rcpts: []string{"root@localhost"},
			raw: message("c@x", "hello"), wantRcpt: map[string]int{"root@localhost": 550}},
		{name: "handler fails: 451, nothing filed", from: "c@acme.example", rcpts: []string{support, billing},
			raw: message("d@x", "hello"), fail: errors.New("redis: connection refused"),
			wantRcpt: map[string]int{support: 250, billing: 250}, wantData: 451, wantCalls: 1},
		{name: "handler panics: 451", from: "c@acme.example", rcpts: []string{support},
			raw: message("e@x", "hello"), panics: true, wantRcpt: map[string]int{support: 250}, wantData: 451, wantCalls: 1},
		{name: "one byte too large: 552", from: "c@acme.example", rcpts: []string{support},
			raw: append(exact, 'y'), wantRcpt: map[string]int{support: 250}, wantData: 552},
		{name: "exactly the limit", from: "c@acme.example", rcpts: []string{support},
			raw: exact, wantRcpt: map[string]int{support: 250}, wantData: 250, wantCalls: 1, wantFiled: 1},
		{name: "null sender", from: "", rcpts: []string{support},
			raw: message("f@x", "undeliverable"), wantRcpt: map[string]int{support: 250}, wantData: 250, wantCalls: 1, wantFiled: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{fail: func(int) error {
				if tc.panics {
					panic("boom")
				}
				return tc.fail
			}}
			app := newFakeAppender(nil)
			s, err := lmtp.New(testConfig(), rec.handle, app, testLogger(t), lmtp.WithClock(func() time.Time { return arrival }))
			if err != nil {
				t.Fatal(err)
			}
			runServer(t, s)
			a := send(t, "tcp", s.Addr().String(), tc.from, tc.rcpts, tc.raw)
			for r, want := range tc.wantRcpt {
				if a.rcpt[r] != want {
					t.Errorf("RCPT %s: %d, want %d", r, a.rcpt[r], want)
				}
			}
			for r, c := range a.data {
				if c != tc.wantData {
					t.Errorf("data for %s: %d %q, want %d", r, c, a.text[r], tc.wantData)
				}
			}
			if tc.wantData != 0 && len(a.data) == 0 {
				t.Errorf("no data phase")
			}
			msgs := rec.messages()
			if len(msgs) != tc.wantCalls {
				t.Fatalf("handler called %d times, want %d", len(msgs), tc.wantCalls)
			}
			wantRaw := append([]byte("Return-Path: <"+tc.from+">\r\n"), tc.raw...)
			for _, m := range msgs {
				f := m.f
				if f.Mailbox != support || f.Folder != lmtp.Folder || f.UID != 0 || f.UIDValidity != 0 {
					t.Errorf("fetched %+v", f)
				}
				if !f.InternalDate.Equal(arrival.Truncate(time.Second)) {
					t.Errorf("internal date %v, want %v", f.InternalDate, arrival.Truncate(time.Second))
				}
				if !bytes.Equal(m.body, wantRaw) || f.Size != int64(len(wantRaw)) {
					t.Errorf("body %q (size %d), want %q", m.body, f.Size, wantRaw)
				}
			}
			filed := app.stored()
			if len(filed) != tc.wantFiled {
				t.Fatalf("filed %d copies, want %d", len(filed), tc.wantFiled)
			}
			for i, c := range app.snapshot() {
				if !bytes.Equal(c.raw, wantRaw) || !c.at.Equal(arrival.Truncate(time.Second)) {
					t.Errorf("copy %d: %q at %v", i, c.raw, c.at)
				}
			}
			st := s.Stats()
			if tc.wantData == 250 && st.Delivered != 1 || tc.wantData == 451 && st.TemporaryFailures != 1 || tc.wantData == 552 && st.TooLarge != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestSizeAnnounced checks that a client announcing a message larger than
// the limit is refused at MAIL FROM, before sending it.
func TestSizeAnnounced(t *testing.T) {
	rec := &recorder{}
	s, err := lmtp.New(testConfig(), rec.handle, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	a := send(t, "tcp", s.Addr().String(), "c@acme.example", []string{support}, bytes.Repeat([]byte("x"), 65<<10))
	if a.mail != 552 {
		t.Fatalf("MAIL FROM with SIZE over the limit: %d, want 552", a.mail)
	}
}

// TestBDAT speaks CHUNKING (which go-smtp announces and Postfix uses) by
// hand: the answer per recipient comes after BDAT LAST.
func TestBDAT(t *testing.T) {
	rec := &recorder{}
	app := newFakeAppender(nil)
	s, err := lmtp.New(testConfig(), rec.handle, app, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	expect := func(code int) string {
		t.Helper()
		_, msg, err := tp.ReadResponse(code)
		if err != nil {
			t.Fatalf("want %d: %v", code, err)
		}
		return msg
	}
	expect(220)
	tp.PrintfLine("LHLO client.test")
	if caps := expect(250); !strings.Contains(caps, "CHUNKING") {
		t.Fatalf("no CHUNKING in %q", caps)
	}
	raw := message("bdat@x", strings.Repeat("line\r\n", 1000))
	tp.PrintfLine("MAIL FROM:<c@acme.example>")
	expect(250)
	tp.PrintfLine("RCPT TO:<%s>", support)
	expect(250)
	tp.PrintfLine("RCPT TO:<%s>", billing)
	expect(250)
	half := len(raw) / 2
	fmt.Fprintf(tp.W, "BDAT %d\r\n%s", half, raw[:half])
	tp.W.Flush()
	expect(250)
	fmt.Fprintf(tp.W, "BDAT %d LAST\r\n%s", len(raw)-half, raw[half:])
	tp.W.Flush()
	for _, r := range []string{support, billing} {
		if msg := expect(250); !strings.Contains(msg, r) {
			t.Errorf("answer %q does not name %s", msg, r)
		}
	}
	tp.PrintfLine("QUIT")
	msgs := rec.messages()
	if len(msgs) != 1 || !bytes.HasSuffix(msgs[0].body, raw) {
		t.Fatalf("handler got %d messages", len(msgs))
	}
	if len(app.stored()) != 1 {
		t.Errorf("filed %d", len(app.stored()))
	}
}

// TestLongLines checks that a line far beyond RFC 5322's 998 bytes (HTML
// mail often has them) is taken, not refused by the command line limit.
func TestLongLines(t *testing.T) {
	rec := &recorder{}
	s, err := lmtp.New(testConfig(), rec.handle, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	raw := message("long@x", "<p>"+strings.Repeat("a", 20000)+"</p>")
	a := send(t, "tcp", s.Addr().String(), "c@acme.example", []string{support}, raw)
	if a.data[support] != 250 {
		t.Fatalf("long line: %d %q", a.data[support], a.text[support])
	}
}

// TestFilingRetry checks that a failed APPEND still answers 250, that the
// copy is filed later, and that later copies queue behind it in order
// rather than each waiting on the failing server.
func TestFilingRetry(t *testing.T) {
	var healthy atomic.Bool
	app := newFakeAppender(func(int) bool { return !healthy.Load() })
	rec := &recorder{}
	s, err := lmtp.New(testConfig(), rec.handle, app, testLogger(t), lmtp.WithClock(func() time.Time { return time.Now() }))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	for i := range 3 {
		a := send(t, "tcp", s.Addr().String(), "c@acme.example", []string{support}, message(fmt.Sprintf("r%d@x", i), "x"))
		if a.data[support] != 250 {
			t.Fatalf("message %d: %d, want 250 although filing failed", i, a.data[support])
		}
	}
	if st := s.Stats(); st.FilingPending != 3 || st.Delivered != 3 {
		t.Fatalf("stats %+v, want 3 pending", st)
	}
	// Only the first message tried to file before answering; the retry
	// loop retries the head only.
	waitFor(t, "a few retries", func() bool { return len(app.snapshot()) >= 3 })
	healthy.Store(true)
	waitFor(t, "all copies filed", func() bool { return len(app.stored()) == 3 })
	for i, raw := range app.stored() {
		if !bytes.Contains(raw, []byte(fmt.Sprintf("<r%d@x>", i))) {
			t.Errorf("copy %d out of order: %q", i, raw)
		}
	}
	waitFor(t, "empty queue", func() bool { st := s.Stats(); return st.FilingPending == 0 && st.Filed == 3 })
	if st := s.Stats(); st.FilingFailures == 0 || st.FilingPendingBytes != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFilingBacklog checks that when too many copies wait, the message is
// answered 451 (the mail server keeps it) and that the retry is accepted
// once the mailbox is back.
func TestFilingBacklog(t *testing.T) {
	var healthy atomic.Bool
	app := newFakeAppender(func(int) bool { return !healthy.Load() })
	rec := &recorder{}
	cfg := testConfig()
	cfg.FilingQueueBytes = 1 // the queue takes one copy, whatever its size
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	s, err := lmtp.New(cfg, rec.handle, app, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	addr := s.Addr().String()
	if a := send(t, "tcp", addr, "c@acme.example", []string{support}, message("q1@x", "x")); a.data[support] != 250 {
		t.Fatalf("first: %d", a.data[support])
	}
	a := send(t, "tcp", addr, "c@acme.example", []string{support}, message("q2@x", "x"))
	if a.data[support] != 451 {
		t.Fatalf("second, with the filing queue full: %d, want 451", a.data[support])
	}
	if n := len(rec.messages()); n != 2 {
		t.Fatalf("handler saw %d messages, want 2 (the 451 comes after storing)", n)
	}
	if st := s.Stats(); st.FilingPending != 1 || st.TemporaryFailures != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestShutdown checks that stopping lets a delivery in progress finish and
// be answered, refuses new connections, and makes a last attempt to file
// the waiting copies.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := func(ctx context.Context, f *ingest.Fetched) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	app := newFakeAppender(nil)
	s, err := lmtp.New(testConfig(), h, app, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := runServer(t, s)
	addr := s.Addr().String()
	res := make(chan answer, 1)
	go func() { res <- send(t, "tcp", addr, "c@acme.example", []string{support}, message("s@x", "x")) }()
	<-entered
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("Run returned while a delivery was in progress")
	default:
	}
	close(release)
	if a := <-res; a.data[support] != 250 {
		t.Fatalf("delivery in progress at shutdown: %d, want 250", a.data[support])
	}
	<-stopped
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting connections after Run returned")
	}
	if len(app.stored()) != 1 {
		t.Errorf("filed %d", len(app.stored()))
	}
}

// TestShutdownDropsUnfiled checks that a copy the mailbox never took is
// counted and logged as dropped when the server stops.
func TestShutdownDropsUnfiled(t *testing.T) {
	app := newFakeAppender(func(int) bool { return true })
	cfg := testConfig()
	cfg.ShutdownGrace = 100 * time.Millisecond
	s, err := lmtp.New(cfg, (&recorder{}).handle, app, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := runServer(t, s)
	if a := send(t, "tcp", s.Addr().String(), "c@acme.example", []string{support}, message("d@x", "x")); a.data[support] != 250 {
		t.Fatalf("got %d", a.data[support])
	}
	stop()
	if st := s.Stats(); st.FilingDropped != 1 || st.FilingPending != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestUnixSocket serves on a unix socket: a stale socket file is replaced,
// the mode applied, and the file removed at the end.
func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lmtp.sock")
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	cfg := testConfig()
	cfg.Network, cfg.Address, cfg.SocketMode = "unix", path, 0o600
	rec := &recorder{}
	s, err := lmtp.New(cfg, rec.handle, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := runServer(t, s)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v", fi, err)
	}
	if a := send(t, "unix", path, "c@acme.example", []string{support}, message("u@x", "x")); a.data[support] != 250 {
		t.Fatalf("got %d", a.data[support])
	}
	stop()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left behind: %v", err)
	}
}

// TestUnixSocketInUse refuses to take over a socket another process serves
// or a file that is not a socket.
func TestUnixSocketInUse(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
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
			c.Close()
		}
	}()
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o600)
	for _, path := range []string{live, plain} {
		cfg := testConfig()
		cfg.Network, cfg.Address = "unix", path
		s, err := lmtp.New(cfg, (&recorder{}).handle, nil, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Listen(); err == nil {
			t.Errorf("%s: listened", path)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := lmtp.Config{Network: "udp"}.Validate()
	for _, want := range []string{"lmtp network", "lmtp mailbox", "lmtp recipients"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, err := lmtp.New(lmtp.Config{Address: "nohost"}, (&recorder{}).handle, nil, nil); err == nil {
		t.Error("New accepted an invalid configuration")
	}
	if _, err := lmtp.New(testConfig(), nil, nil, nil); err == nil {
		t.Error("New accepted a nil handler")
	}
}

// TestPipelining sends two transactions on one connection back to back, as
// Postfix does with a cached connection.
func TestPipelining(t *testing.T) {
	rec := &recorder{}
	s, err := lmtp.New(testConfig(), rec.handle, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	b.WriteString("LHLO c\r\n")
	for i := range 2 {
		fmt.Fprintf(&b, "MAIL FROM:<c@acme.example>\r\nRCPT TO:<%s>\r\nDATA\r\n", support)
		b.Write(message(fmt.Sprintf("p%d@x", i), "..leading dot")) // dot-stuffed on the wire
		b.WriteString(".\r\n")
	}
	b.WriteString("QUIT\r\n")
	conn.Write([]byte(b.String()))
	r := bufio.NewReader(conn)
	var codes []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		if len(line) > 3 && line[3] == ' ' {
			codes = append(codes, line[:3])
		}
	}
	want := "220 250 250 250 354 250 250 250 354 250 221"
	if got := strings.Join(codes, " "); got != want {
		t.Fatalf("answers %s, want %s", got, want)
	}
	msgs := rec.messages()
	if len(msgs) != 2 || !bytes.Contains(msgs[1].body, []byte("\r\n\r\n.leading dot\r\n")) {
		t.Fatalf("messages %d", len(msgs))
	}
}

// TestWithListener serves a listener the caller opened (socket activation,
// tests): no address is needed.
func TestWithListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s, err := lmtp.New(lmtp.Config{Mailbox: support, Recipients: []string{support}}, rec.handle, nil, nil, lmtp.WithListener(ln))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	if s.Addr().String() != ln.Addr().String() {
		t.Fatalf("addr %v", s.Addr())
	}
	if a := send(t, "tcp", ln.Addr().String(), "c@acme.example", []string{support}, message("l@x", "x")); a.data[support] != 250 {
		t.Fatalf("got %d", a.data[support])
	}
}
