package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	_ "github.com/emersion/go-message/charset" // every charset a customer may write in
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"
)

// inject hands raw to Postfix over SMTP, as the customer's mail server
// would: envelope from and to as given, the message byte for byte (bare
// LF line ends become CRLF).
func (s *mailStack) inject(t testing.TB, from string, to []string, raw []byte) {
	t.Helper()
	if err := s.send(from, to, raw); err != nil {
		t.Fatalf("inject mail from %s to %v: %v", from, to, err)
	}
}

func (s *mailStack) send(from string, to []string, raw []byte) error {
	conn, err := net.DialTimeout("tcp", s.SMTPAddr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dial postfix: %w", err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("customer.e2e.test"); err != nil {
		return fmt.Errorf("ehlo: %w", err)
	}
	if err := c.SendMail(from, to, bytes.NewReader(crlf(raw))); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("quit: %w", err)
	}
	return nil
}

// crlf makes every line end CRLF.
func crlf(raw []byte) []byte {
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
}

// fetched is one message as Dovecot holds it.
type fetched struct {
	UID          imap.UID
	InternalDate time.Time
	Raw          []byte
	*parsedMail
}

// fetchAll reads every message of user's folder (none when the folder does
// not exist yet) without changing any flag.
func (s *mailStack) fetchAll(user, folder string) ([]fetched, error) {
	c, err := s.imapLogin(user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	guard := time.AfterFunc(20*time.Second, func() { c.Close() })
	defer guard.Stop()
	if ok, err := exists(c, folder); err != nil || !ok {
		return nil, err
	}
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return nil, fmt.Errorf("select %s/%s: %w", user, folder, err)
	}
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{body},
	}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch %s/%s: %w", user, folder, err)
	}
	out := make([]fetched, 0, len(msgs))
	for _, m := range msgs {
		raw := m.FindBodySection(body)
		pm, err := parseMail(raw)
		if err != nil {
			return nil, fmt.Errorf("parse %s/%s uid %d: %w", user, folder, m.UID, err)
		}
		out = append(out, fetched{UID: m.UID, InternalDate: m.InternalDate, Raw: raw, parsedMail: pm})
	}
	slices.SortFunc(out, func(a, b fetched) int { return int(a.UID) - int(b.UID) })
	c.Logout().Wait()
	return out, nil
}

// count returns the number of messages in user's folder (0 when it does not
// exist).
func (s *mailStack) count(user, folder string) (int, error) {
	c, err := s.imapLogin(user)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	guard := time.AfterFunc(20*time.Second, func() { c.Close() })
	defer guard.Stop()
	if ok, err := exists(c, folder); err != nil || !ok {
		return 0, err
	}
	st, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0, fmt.Errorf("status %s/%s: %w", user, folder, err)
	}
	c.Logout().Wait()
	return int(*st.NumMessages), nil
}

// exists reports whether folder exists (Dovecot answers STATUS on a
// missing folder with a plain NO, without the NONEXISTENT code).
func exists(c *imapclient.Client, folder string) (bool, error) {
	list, err := c.List("", folder, nil).Collect()
	if err != nil {
		return false, fmt.Errorf("list %s: %w", folder, err)
	}
	return len(list) > 0, nil
}

func (s *mailStack) imapLogin(user string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(s.IMAPAddr, &imapclient.Options{Dialer: &net.Dialer{Timeout: 5 * time.Second}})
	if err != nil {
		return nil, fmt.Errorf("dial dovecot: %w", err)
	}
	if err := c.Login(user, s.Password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return c, nil
}

// mustFetch is fetchAll for a test.
func (s *mailStack) mustFetch(t testing.TB, user, folder string) []fetched {
	t.Helper()
	msgs, err := s.fetchAll(user, folder)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// awaitMail polls user's folder until ok accepts its messages, and returns
// them; it fails the test after timeout, showing what was there.
func (s *mailStack) awaitMail(t testing.TB, user, folder string, timeout time.Duration, what string, ok func([]fetched) bool) []fetched {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.fetchAll(user, folder)
		if err == nil && ok(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("waiting %v for %s: %v", timeout, what, err)
			}
			t.Fatalf("waiting %v for %s: %s/%s has %s", timeout, what, user, folder, describe(msgs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// awaitCount polls until user's folder holds at least n messages.
func (s *mailStack) awaitCount(t testing.TB, user, folder string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := s.count(user, folder)
		if err == nil && got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %d messages in %s/%s: have %d (%v)", timeout, n, user, folder, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// describe lists messages by subject, for failure messages.
func describe(msgs []fetched) string {
	if len(msgs) == 0 {
		return "no messages"
	}
	var parts []string
	for _, m := range msgs {
		parts = append(parts, fmt.Sprintf("uid %d %q", m.UID, m.Subject))
	}
	return fmt.Sprintf("%d messages: %s", len(msgs), strings.Join(parts, ", "))
}

// withSubject keeps the messages whose subject contains every fragment.
func withSubject(msgs []fetched, fragments ...string) []fetched {
	var out []fetched
	for _, m := range msgs {
		if containsAll(m.Subject, fragments...) {
			out = append(out, m)
		}
	}
	return out
}

func containsAll(s string, fragments ...string) bool {
	for _, f := range fragments {
		if !strings.Contains(s, f) {
			return false
		}
	}
	return true
}

// parsedMail is what a test reads of a message.
type parsedMail struct {
	Header                mail.Header
	Subject, MessageID    string
	InReplyTo, References []string
	From, To, Cc          []*mail.Address
	Text, HTML            string // the first text/plain and text/html parts, decoded
}

// parseMail reads raw with go-message, as a mail client would.
func parseMail(raw []byte) (*parsedMail, error) {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	pm := &parsedMail{Header: r.Header}
	pm.Subject, _ = r.Header.Subject()
	pm.MessageID, _ = r.Header.MessageID()
	pm.InReplyTo, _ = r.Header.MsgIDList("In-Reply-To")
	pm.References, _ = r.Header.MsgIDList("References")
	pm.From, _ = r.Header.AddressList("From")
	pm.To, _ = r.Header.AddressList("To")
	pm.Cc, _ = r.Header.AddressList("Cc")
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read part: %w", err)
		}
		h, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			continue
		}
		ct, _, _ := h.ContentType()
		body, err := io.ReadAll(p.Body)
		if err != nil {
			return nil, fmt.Errorf("read %s part: %w", ct, err)
		}
		switch {
		case ct == "text/plain" && pm.Text == "":
			pm.Text = strings.ReplaceAll(string(body), "\r\n", "\n")
		case ct == "text/html" && pm.HTML == "":
			pm.HTML = string(body)
		}
	}
	return pm, nil
}

// addrs returns the bare addresses of list.
func addrs(list []*mail.Address) []string {
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, strings.ToLower(a.Address))
	}
	return out
}

// composed is a message the test writes as a customer or staff member.
type composed struct {
	From, To, Cc, Subject, MessageID string
	InReplyTo                        string
	References                       []string
	Date                             time.Time
	Extra                            []string // raw header lines, e.g. Authentication-Results
	Body                             string
}

// bytes renders m as a plain-text UTF-8 message.
func (m composed) bytes() []byte {
	var b strings.Builder
	for _, h := range m.Extra {
		b.WriteString(h + "\n")
	}
	hdr := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	hdr("From", m.From)
	hdr("To", m.To)
	hdr("Cc", m.Cc)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+m.MessageID+">")
	if m.InReplyTo != "" {
		hdr("In-Reply-To", "<"+m.InReplyTo+">")
	}
	if len(m.References) > 0 {
		hdr("References", "<"+strings.Join(m.References, "> <")+">")
	}
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\n" + m.Body)
	return []byte(b.String())
}

// pingRedis checks that a Redis answers PING at addr (by hand: go-redis
// logs its dial retries).
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// dropRedisPrefix deletes every key under prefix.
func dropRedisPrefix(t testing.TB, addr, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan redis keys %s*: %v", prefix, err)
		return
	}
	for chunk := range slices.Chunk(keys, 500) {
		if err := rdb.Unlink(ctx, chunk...).Err(); err != nil {
			t.Errorf("delete redis keys %s*: %v", prefix, err)
			return
		}
	}
}
