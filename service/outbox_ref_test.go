package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/store"
)

// hashCatcher is an SMTP server that keeps only the SHA-256 of each
// message, so that the receiving side adds nothing to the heap.
type hashCatcher struct {
	mu   sync.Mutex
	sums [][32]byte
	size []int64
}

func (h *hashCatcher) NewSession(*smtp.Conn) (smtp.Session, error) { return &hashSession{h: h}, nil }

type hashSession struct{ h *hashCatcher }

func (s *hashSession) Reset()                               {}
func (s *hashSession) Logout() error                        { return nil }
func (s *hashSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *hashSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *hashSession) Data(r io.Reader) error {
	d := sha256.New()
	n, err := io.Copy(d, r)
	if err != nil {
		return err
	}
	s.h.mu.Lock()
	s.h.sums = append(s.h.sums, [32]byte(d.Sum(nil)))
	s.h.size = append(s.h.size, n)
	s.h.mu.Unlock()
	return nil
}

// refWorld is an IMAP server whose Processed folder holds originals, a
// hashing SMTP server and a sender wired to both as the gateway wires them.
type refWorld struct {
	imap    *localmail.IMAPServer
	catcher *hashCatcher
	sender  *OutboxSender
	out     *refOutbox
}

// refOutbox is an outbox that records what happened to each entry.
type refOutbox struct {
	mu      sync.Mutex
	acked   []string
	retried []string
	errs    []string
}

func (o *refOutbox) ClaimOutbox(context.Context, time.Time, time.Duration, int) ([]store.OutboxEntry, error) {
	return nil, nil
}

func (o *refOutbox) AckOutbox(_ context.Context, key string, _ time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acked = append(o.acked, key)
	return nil
}

func (o *refOutbox) ExtendOutbox(context.Context, time.Time, ...string) (int, error) { return 0, nil }

func (o *refOutbox) RetryOutbox(_ context.Context, key string, _ time.Time, errText string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retried = append(o.retried, key)
	o.errs = append(o.errs, errText)
	return nil
}

func newRefWorld(t *testing.T) *refWorld {
	t.Helper()
	const user, pass = "support@northwind-it.example", "pw"
	im, err := localmail.StartIMAP(user, pass, localmail.IMAPOptions{Folders: []string{"Processed"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = im.Close() })
	hc := &hashCatcher{}
	srv := smtp.NewServer(hc)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 256 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	snd, err := notify.NewSender(notify.SMTPConfig{Host: host, Port: p, TLS: "none", Auth: "none"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = snd.Close() })
	ic := ingest.IMAPConfig{Addr: im.Addr, TLS: "none", AllowPlaintext: true, Username: user, Password: pass,
		Folder: "INBOX", ProcessedFolder: "Processed", Name: user}
	if err := ic.Validate(); err != nil {
		t.Fatal(err)
	}
	out := &refOutbox{}
	o := &OutboxSender{Outbox: out, Sender: snd, Fetch: ProcessedFetcher(map[string]ingest.IMAPConfig{user: ic}),
		Log: slog.New(slog.DiscardHandler), MaxAttempts: 5}
	o.init()
	return &refWorld{imap: im, catcher: hc, sender: o, out: out}
}

// refStaffReply is a staff reply with an attachment of n pseudo-random
// bytes, base64 in 76-character lines.
func refStaffReply(id string, n int) []byte {
	var b bytes.Buffer
	b.Grow(n*4/3 + n/38 + 1024)
	fmt.Fprintf(&b, "From: Dana Cohen <dana@northwind-it.example>\r\nTo: support@northwind-it.example\r\n"+
		"Subject: Re: [ACME-0042] Logs\r\nMessage-ID: <%s>\r\nDate: Tue, 01 Dec 2026 09:40:00 +0200\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"+
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Yossi,\r\nthe new firmware is attached.\r\n\r\nDana\r\n"+
		"--b1\r\nContent-Type: application/octet-stream; name=\"fw.bin\"\r\nContent-Disposition: attachment; filename=\"fw.bin\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n", id)
	chunk := make([]byte, 57)
	line := make([]byte, 76)
	x := uint32(2463534242)
	for left := n; left > 0; left -= 57 {
		k := min(57, left)
		for i := range k {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			chunk[i] = byte(x)
		}
		m := base64.StdEncoding.EncodedLen(k)
		base64.StdEncoding.Encode(line, chunk[:k])
		b.Write(line[:m])
		b.WriteString("\r\n")
	}
	b.WriteString("--b1--\r\n")
	return b.Bytes()
}

func refRelayEntry(t *testing.T, key, msgID string) (store.OutboxEntry, outboxRecipe) {
	t.Helper()
	rc := relayRecipe(notify.RelayMail{
		From:    domain.Address{Name: "Dana Cohen (Northwind IT Support)", Addr: "support@northwind-it.example"},
		To:      []domain.Address{{Name: "Yossi Levi", Addr: "yossi@acme.co.il"}},
		ReplyTo: "support@northwind-it.example", Subject: "Re: [ACME-0042] Logs",
		MessageID: "relay.ACME-0042.1@northwind-it.example", InReplyTo: "cust-1@acme.co.il",
		References: []string{"cust-1@acme.co.il"}, LoopMarker: "support@northwind-it.example", TicketID: "ACME-0042",
		Date: time.Date(2026, 12, 1, 9, 41, 0, 0, time.FixedZone("", 2*3600)),
	})
	e, err := referenceEntry(store.OutboxEntry{Key: key, Kind: "relay", Ticket: "ACME-0042",
		From: "support@northwind-it.example", To: []string{"yossi@acme.co.il"}},
		&store.SourceRef{Mailbox: "support@northwind-it.example", MessageID: msgID}, rc)
	if err != nil {
		t.Fatal(err)
	}
	return e, rc
}

// TestOutboxReferenceNotYetProcessed: an entry whose original is not in the
// processed folder is retried (temporary, and soon); once the original is
// there, the relay is sent with exactly the bytes WriteRelay composes.
func TestOutboxReferenceNotYetProcessed(t *testing.T) {
	w := newRefWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw := refStaffReply("late-1@northwind-it.example", 200<<10)
	e, rc := refRelayEntry(t, "relay:ACME-0042:late", "late-1@northwind-it.example")
	if len(e.Raw) != 0 || len(e.Recipe) > 4<<10 {
		t.Fatalf("entry carries %d raw bytes and a %d-byte recipe", len(e.Raw), len(e.Recipe))
	}

	e.Attempts = 1
	sendOne(ctx, w.sender, e)
	if len(w.out.retried) != 1 || len(w.out.acked) != 0 || len(w.catcher.sums) != 0 {
		t.Fatalf("before the move: retried %v acked %v sent %d, want one retry", w.out.retried, w.out.acked, len(w.catcher.sums))
	}
	err := w.sender.sendByReference(ctx, e)
	if !errors.Is(err, ingest.ErrMessageNotFound) || !notify.IsTemporary(err) {
		t.Fatalf("before the move: %v, want a temporary not-found error", err)
	}

	// Another message in the folder is not taken for it.
	if err := w.imap.Deliver("Processed", refStaffReply("other@northwind-it.example", 1000), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := w.imap.Deliver("Processed", raw, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.Attempts = 2
	sendOne(ctx, w.sender, e)
	if len(w.out.acked) != 1 || len(w.catcher.sums) != 1 {
		t.Fatalf("after the move: acked %v sent %d, errors %v", w.out.acked, len(w.catcher.sums), w.out.errs)
	}
	want := sha256.New()
	if err := rc.write(want, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	inline, _, err := notify.ComposeRelay(notify.RelayMail{From: rc.From, To: rc.To, ReplyTo: rc.ReplyTo,
		Subject: rc.Subject, MessageID: rc.MessageID, InReplyTo: rc.InReplyTo, References: rc.References,
		LoopMarker: rc.LoopMarker, TicketID: rc.TicketID, Date: rc.Date, Original: bytes.NewReader(raw), EditText: editStaffText})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.catcher.sums[0]; got != [32]byte(want.Sum(nil)) || got != sha256.Sum256(inline) {
		t.Errorf("sent %d bytes that differ from the inline composition (%d bytes)", w.catcher.size[0], len(inline))
	}
}

// TestOutboxReferenceMemory relays a 50 MiB attachment from the processed
// folder to SMTP and measures what the gateway's side allocates meanwhile:
// every allocation whose stack does not pass through the in-process IMAP
// server (whose FETCH copies the whole message, as a real server in
// another process would do in its own memory) nor the test's SMTP server.
// The message is streamed, so the gateway allocates far less than the
// message; the heap in use, servers included, is logged.
func TestOutboxReferenceMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("50 MiB relay: a measurement, run without -short and -race")
	}
	w := newRefWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw := refStaffReply("big-50@northwind-it.example", 50<<20)
	size := len(raw)
	if err := w.imap.Deliver("Processed", raw, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	e, rc := refRelayEntry(t, "relay:ACME-0042:big", "big-50@northwind-it.example")
	if err := rc.write(want, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	raw = nil

	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1024
	defer func() { runtime.MemProfileRate = rate }()
	before := ownAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	err := w.sender.sendByReference(ctx, e)
	took := time.Since(start)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	own := ownAllocs() - before
	grew := int64(peak.Load()) - int64(base)
	t.Logf("relayed a %.1f MiB message (50 MiB attachment) in %v: the gateway's side allocated %.2f MiB; "+
		"heap in use, both servers included, grew by at most %.1f MiB",
		float64(size)/(1<<20), took.Round(time.Millisecond), float64(own)/(1<<20), float64(grew)/(1<<20))
	if len(w.catcher.sums) != 1 || w.catcher.sums[0] != [32]byte(want.Sum(nil)) {
		t.Fatalf("the relay sent differs from its composition")
	}
	if own > 20<<20 {
		t.Errorf("the gateway allocated %.1f MiB relaying a %.0f MiB message, want < 20 MiB", float64(own)/(1<<20), float64(size)/(1<<20))
	}
}

// ownAllocs sums the bytes allocated so far (as the memory profile sampled
// them) by stacks that pass through neither the IMAP server nor the SMTP
// server of the test.
func ownAllocs() int64 {
	runtime.GC()
	runtime.GC() // the profile is published a cycle late
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+64)
	}
	var sum int64
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		server := false
		for {
			f, more := frames.Next()
			if strings.Contains(f.Function, "go-imap/v2/imapserver") || strings.Contains(f.Function, "go-smtp.(*Conn)") ||
				strings.Contains(f.Function, "hashSession") {
				server = true
				break
			}
			if !more {
				break
			}
		}
		if !server {
			sum += r.AllocBytes
		}
	}
	return sum
}

// sendOne sends e alone and records the result, as a drain does.
func sendOne(ctx context.Context, o *OutboxSender, e store.OutboxEntry) {
	o.record(ctx, e, o.send(ctx, []store.OutboxEntry{e})[0], nil)
}
