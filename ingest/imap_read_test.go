package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// imapCommandLog records the commands a client sends.
type imapCommandLog struct {
	mu   sync.Mutex
	sent bytes.Buffer
}

func (l *imapCommandLog) dialer(next DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &imapLoggedConn{Conn: c, l: l}, nil
	}
}

func (l *imapCommandLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent.String()
}

type imapLoggedConn struct {
	net.Conn
	l *imapCommandLog
}

func (c *imapLoggedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.sent.Write(p)
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// imapReadCall is one message handed to a ReadFolder callback.
type imapReadCall struct {
	id   string
	uid  uint32
	date time.Time
	body []byte
}

// imapReadAll reads the folder and returns what the callback saw.
func imapReadAll(t *testing.T, cfg IMAPConfig, folder string, opts ...SourceOption) ([]imapReadCall, error) {
	t.Helper()
	var calls []imapReadCall
	name := cfg.withDefaults().Name
	err := ReadFolder(context.Background(), cfg, folder, func(f *Fetched) error {
		b, err := io.ReadAll(f.Body)
		if err != nil {
			return err
		}
		if f.Mailbox != name || f.Folder != folder || f.UIDValidity == 0 || f.Size != int64(len(b)) {
			t.Errorf("fetched %+v with %d bytes", f, len(b))
		}
		id := "?"
		if m := imapTestIDRE.FindSubmatch(b); m != nil {
			id = string(m[1])
		}
		calls = append(calls, imapReadCall{id: id, uid: f.UID, date: f.InternalDate, body: b})
		return nil
	}, opts...)
	return calls, err
}

func imapReadIDs(calls []imapReadCall) string {
	var ids []string
	for _, c := range calls {
		ids = append(ids, c.id)
	}
	return strings.Join(ids, " ")
}

// TestReadFolder: messages come in INTERNALDATE order, then UID, whatever
// order they were appended in; \Deleted ones are left out; the folder is
// only EXAMINEd and bodies are PEEKed, so nothing changes on the server.
func TestReadFolder(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, m := range []struct {
		id  string
		at  time.Duration
		del bool
	}{
		{"c", 3 * time.Hour, false},
		{"a", time.Hour, false},
		{"gone", 2 * time.Hour, true},
		{"b1", 2 * time.Hour, false}, // same instant as b2: UID order
		{"b2", 2 * time.Hour, false},
		{"first", -48 * time.Hour, false},
	} {
		opt := &imap.AppendOptions{Time: base.Add(m.at)}
		if m.del {
			opt.Flags = []imap.Flag{imap.FlagDeleted}
		}
		raw := imapTestMessage(m.id, 2000, "")
		if _, err := ts.user.Append(imapTestProcessed, bytes.NewReader(raw), opt); err != nil {
			t.Fatal(err)
		}
	}
	ts.appendMsg("INBOX", imapTestMessage("inbox", 500, ""), base)
	before := ts.snapshot(imapTestProcessed)

	var cmds imapCommandLog
	cfg := imapTestConfig(ts)
	calls, err := imapReadAll(t, cfg, imapTestProcessed, WithDialer(cmds.dialer((&net.Dialer{}).DialContext)))
	if err != nil {
		t.Fatal(err)
	}
	if got := imapReadIDs(calls); got != "first a b1 b2 c" {
		t.Errorf("order %q, want %q", got, "first a b1 b2 c")
	}
	for _, c := range calls {
		for _, b := range before {
			if uint32(b.uid) == c.uid && (!bytes.Equal(b.body, c.body) || !b.date.Equal(c.date)) {
				t.Errorf("uid %d: body or date differs from the server's (%v, %v)", c.uid, c.date, b.date)
			}
		}
	}
	after := ts.snapshot(imapTestProcessed)
	if len(after) != len(before) {
		t.Fatalf("%d messages after reading, %d before", len(after), len(before))
	}
	for i := range after {
		if strings.Join(flagStrings(after[i].flags), ",") != strings.Join(flagStrings(before[i].flags), ",") {
			t.Errorf("uid %d flags %v, were %v", after[i].uid, after[i].flags, before[i].flags)
		}
	}
	if ts.count("INBOX") != 1 {
		t.Errorf("INBOX changed: %d messages", ts.count("INBOX"))
	}
	log := cmds.String()
	if !regexp.MustCompile(`(?m)^\S+ EXAMINE "?Processed"?\r$`).MatchString(log) {
		t.Errorf("no EXAMINE sent:\n%s", log)
	}
	for _, forbidden := range []string{" SELECT ", " STORE ", " MOVE ", " COPY ", " EXPUNGE", " APPEND ", " CREATE ", "BODY[]"} {
		if strings.Contains(log, forbidden) {
			t.Errorf("sent %q while reading:\n%s", forbidden, log)
		}
	}
}

func flagStrings(fs []imap.Flag) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f))
	}
	return out
}

func TestReadFolderEmptyAndMissing(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	cfg := imapTestConfig(ts)
	if calls, err := imapReadAll(t, cfg, imapTestProcessed); err != nil || len(calls) != 0 {
		t.Errorf("empty folder: %d calls, %v", len(calls), err)
	}
	if _, err := imapReadAll(t, cfg, "NoSuchFolder"); err == nil || !strings.Contains(err.Error(), "NoSuchFolder") {
		t.Errorf("missing folder: %v", err)
	}
	bad := cfg
	bad.Password = "wrong"
	if _, err := imapReadAll(t, bad, imapTestProcessed); err == nil {
		t.Error("wrong password: no error")
	}
}

// TestReadFolderHandlerError: the first error of the callback stops the
// read and is returned, wrapped with the UID.
func TestReadFolderHandlerError(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev1})
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"m1", "m2", "m3"} {
		ts.appendMsg(imapTestProcessed, imapTestMessage(id, 300, ""), base.Add(time.Duration(i)*time.Minute))
	}
	boom := errors.New("store unavailable")
	var seen []uint32
	err := ReadFolder(context.Background(), imapTestConfig(ts), imapTestProcessed, func(f *Fetched) error {
		seen = append(seen, f.UID)
		if f.UID == 2 {
			return boom // without reading the body: ReadFolder drains it
		}
		_, err := io.Copy(io.Discard, f.Body)
		return err
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "uid 2") {
		t.Errorf("err = %v, want %v for uid 2", err, boom)
	}
	if len(seen) != 2 {
		t.Errorf("callback saw uids %v, want 1 and 2 only", seen)
	}
}

// TestReadFolderReconnect: a connection cut in the middle of a body is
// re-established and the message read again from the start; the callback
// that saw the broken body is not trusted.
func TestReadFolderReconnect(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ts.appendMsg(imapTestProcessed, imapTestMessage("m1", 20000, ""), base)
	ts.appendMsg(imapTestProcessed, imapTestMessage("m2", 60000, "CUT-HERE-42"), base.Add(time.Minute))
	ts.appendMsg(imapTestProcessed, imapTestMessage("m3", 500, ""), base.Add(2*time.Minute))
	faults := &imapFaults{cutOnRead: []string{"CUT-HERE-42"}}
	cfg := imapTestConfig(ts)

	var ok []string
	attempts := map[uint32]int{}
	err := ReadFolder(context.Background(), cfg, imapTestProcessed, func(f *Fetched) error {
		attempts[f.UID]++
		b, err := io.ReadAll(f.Body)
		if err != nil {
			return err
		}
		ok = append(ok, string(imapTestIDRE.FindSubmatch(b)[1]))
		return nil
	}, WithDialer(faults.dialer()))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ok, " "); got != "m1 m2 m3" {
		t.Errorf("read %q, want m1 m2 m3", got)
	}
	if attempts[2] != 2 || faults.dials != 2 {
		t.Errorf("uid 2 attempts %d, dials %d; want 2 and 2 (fired %v)", attempts[2], faults.dials, faults.firedMarkers())
	}
}

// TestReadFolderUIDValidityChange: a reconnect that finds the folder
// recreated (another UIDVALIDITY) stops the read: the listed UIDs would
// name other messages.
func TestReadFolderUIDValidityChange(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ts.appendMsg(imapTestProcessed, imapTestMessage("m1", 300, ""), base)
	faults := &imapFaults{cutOnWrite: []string{"BODY.PEEK[]"}}
	ctx := context.Background()
	f, err := OpenFolder(ctx, imapTestConfig(ts), imapTestProcessed, imapTestLog(t), WithDialer(faults.dialer()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ts.user.Delete(imapTestProcessed); err != nil {
		t.Fatal(err)
	}
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	ts.appendMsg(imapTestProcessed, imapTestMessage("other", 300, ""), base)
	called := false
	err = f.Fetch(ctx, f.Messages()[0], func(*Fetched) error { called = true; return nil })
	if !errors.Is(err, errUIDValidityChanged) || called {
		t.Errorf("Fetch = %v (callback called: %v), want %v", err, called, errUIDValidityChanged)
	}
}

func TestReadFolderCancelled(t *testing.T) {
	ts := newIMAPTestServer(t, imapServerOpts{caps: imapCapsRev2})
	if err := ts.user.Create(imapTestProcessed, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ts.appendMsg(imapTestProcessed, imapTestMessage("m", 300, ""), time.Date(2026, 11, 30, 9, i, 0, 0, time.UTC))
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := ReadFolder(ctx, imapTestConfig(ts), imapTestProcessed, func(f *Fetched) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 1 {
		t.Errorf("err %v after %d calls, want context.Canceled after 1", err, n)
	}
}
