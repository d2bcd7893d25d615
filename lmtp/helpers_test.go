package lmtp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/lmtp"
)

// answer is what an LMTP server answered to one transaction: the code of
// MAIL FROM, of each RCPT TO, and after the data, of each accepted
// recipient (in the order sent).
type answer struct {
	mail int
	rcpt map[string]int
	data map[string]int
	text map[string]string
}

// code returns an SMTP reply code for err (250 for nil, -1 for an error
// that is not an SMTP reply).
func code(err error) int {
	if err == nil {
		return 250
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return -1
}

// send delivers raw over LMTP with go-smtp's LMTP client.
func send(t testing.TB, network, addr, from string, rcpts []string, raw []byte) answer {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial lmtp: %v", err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("client.test.localhost"); err != nil {
		t.Fatalf("lhlo: %v", err)
	}
	a := answer{rcpt: map[string]int{}, data: map[string]int{}, text: map[string]string{}}
	a.mail = code(c.Mail(from, &smtp.MailOptions{Size: int64(len(raw))}))
	if a.mail != 250 {
		return a
	}
	var accepted []string
	for _, r := range rcpts {
		a.rcpt[r] = code(c.Rcpt(r, nil))
		if a.rcpt[r] == 250 {
			accepted = append(accepted, r)
		}
	}
	if len(accepted) == 0 {
		return a
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("data: %v", err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatalf("write data: %v", err)
	}
	resp, err := w.CloseWithLMTPResponse()
	var le smtp.LMTPDataError
	if err != nil && !errors.As(err, &le) {
		t.Fatalf("end of data: %v", err)
	}
	for _, r := range accepted {
		switch {
		case resp[r] != nil:
			a.data[r], a.text[r] = 250, resp[r].StatusText
		case le[r] != nil:
			a.data[r], a.text[r] = le[r].Code, le[r].Message
		default:
			t.Fatalf("no answer for recipient %s", r)
		}
	}
	_ = c.Quit()
	return a
}

// testLogger writes the server's log to the test log when it fails (or
// always with LMTP_LOG set).
func testLogger(t testing.TB) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() || os.Getenv("LMTP_LOG") != "" {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// runServer starts s.Run and stops it at the end of the test (or when the
// returned stop is called), failing the test if Run fails.
func runServer(t testing.TB, s *lmtp.Server) (stop func()) {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("lmtp server did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// got is one message a recording handler saw.
type got struct {
	f    ingest.Fetched
	body []byte
}

// recorder is a handler that records what it is handed and answers with
// fail (nil: success).
type recorder struct {
	mu   sync.Mutex
	all  []got
	fail func(n int) error // n counts calls from 1
}

func (r *recorder) handle(_ context.Context, f *ingest.Fetched) error {
	body, err := io.ReadAll(f.Body)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, got{f: *f, body: body})
	if r.fail != nil {
		return r.fail(len(r.all))
	}
	return nil
}

func (r *recorder) messages() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.all...)
}

// appended is one call to a fakeAppender.
type appended struct {
	raw []byte
	at  time.Time
	ok  bool
}

// fakeAppender records APPENDs and fails while failing returns true.
type fakeAppender struct {
	mu      sync.Mutex
	calls   []appended
	failing func(call int) bool
	changed chan struct{}
}

func newFakeAppender(failing func(call int) bool) *fakeAppender {
	return &fakeAppender{failing: failing, changed: make(chan struct{}, 100)}
}

func (a *fakeAppender) Append(_ context.Context, raw []byte, at time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ok := a.failing == nil || !a.failing(len(a.calls)+1)
	a.calls = append(a.calls, appended{raw: raw, at: at, ok: ok})
	select {
	case a.changed <- struct{}{}:
	default:
	}
	if !ok {
		return errors.New("imap server unavailable")
	}
	return nil
}

func (a *fakeAppender) snapshot() []appended {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]appended(nil), a.calls...)
}

// stored returns the bodies successfully appended, in order.
func (a *fakeAppender) stored() [][]byte {
	var out [][]byte
	for _, c := range a.snapshot() {
		if c.ok {
			out = append(out, c.raw)
		}
	}
	return out
}

// waitFor polls cond every 10ms until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// folderMessage is one message of an IMAP folder.
type folderMessage struct {
	internalDate time.Time
	body         []byte
}

// readFolder fetches every message of folder (INTERNALDATE and BODY[]).
func readFolder(t testing.TB, addr, user, pass, folder string) []folderMessage {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatalf("dial imap: %v", err)
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("imap login: %v", err)
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", folder, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSetNum(seqRange(sel.NumMessages)...), &imap.FetchOptions{
		InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("fetch %s: %v", folder, err)
	}
	var out []folderMessage
	for _, m := range msgs {
		var body []byte
		for _, b := range m.BodySection {
			body = b.Bytes
		}
		out = append(out, folderMessage{internalDate: m.InternalDate, body: body})
	}
	return out
}

func seqRange(n uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}
