package lmtp_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/ingest"
)

// The Postfix test runs a private Postfix instance (Debian's package; its
// own configuration in a temporary directory, `postfix -c DIR`) in front of
// the gateway, as an MSP would: smtpd on a free loopback port, every
// northwind-it.example mailbox delivered by `virtual_transport = lmtp:` to
// the gateway's LMTP port, and every other transport `error:` so that no
// mail can leave the machine. It is skipped when Postfix is not installed
// or the test does not run as root (Postfix's master must), unless CI=true.

// postfixInstance is a running private Postfix.
type postfixInstance struct {
	t    *testing.T
	dir  string
	smtp string // smtpd's host:port
}

func requirePostfix(t *testing.T) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := exec.LookPath("postfix"); err != nil {
		if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
			skip("postfix is not installed (apt-get install postfix)")
		}
	}
	if os.Geteuid() != 0 {
		skip("a private postfix instance needs root")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		skip("no postfix user: %v", err)
	}
}

// postfixCmd runs a Postfix command line tool with /usr/sbin on the path.
func postfixCmd(name string, args ...string) *exec.Cmd {
	path := name
	if p, err := exec.LookPath(name); err == nil {
		path = p
	} else {
		path = filepath.Join("/usr/sbin", name)
	}
	return exec.Command(path, args...)
}

// freePort returns a loopback port nothing listens on (at the time).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPostfix configures and starts a private instance that delivers the
// domain's mail to lmtpPort.
func startPostfix(t *testing.T, domain string, mailboxes []string, lmtpPort int) *postfixInstance {
	t.Helper()
	dir, err := os.MkdirTemp("", "ticketgw-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons run as the postfix user and must reach the queue.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pf := &postfixInstance{t: t, dir: dir, smtp: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}
	for _, d := range []string{"queue", "data", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, -1); err != nil {
		t.Fatal(err)
	}
	var vmailbox strings.Builder
	for _, m := range mailboxes {
		fmt.Fprintf(&vmailbox, "%s ok\n", m)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vmailbox", vmailbox.String())
	const never = "error:5.7.1 this test instance delivers nothing but to the gateway"
	write("main.cf", strings.Join([]string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(dir, "queue"),
		"data_directory = " + filepath.Join(dir, "data"),
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"myhostname = mx.ticketgw-test.localhost",
		"mydomain = ticketgw-test.localhost",
		"myorigin = $mydomain",
		"mydestination =",
		"mynetworks = 127.0.0.0/8",
		"alias_maps =",
		"alias_database =",
		"smtputf8_enable = yes",
		"biff = no",
		"virtual_mailbox_domains = " + domain,
		"virtual_mailbox_maps = texthash:" + filepath.Join(dir, "vmailbox"),
		"virtual_transport = lmtp:inet:127.0.0.1:" + strconv.Itoa(lmtpPort),
		// Nothing else is ever delivered: no relay, no local mail, no
		// fallback.
		"default_transport = " + never,
		"relay_transport = " + never,
		"local_transport = " + never,
		"fallback_transport =",
		// Retries only when the test flushes the queue.
		"minimal_backoff_time = 1h",
		"maximal_backoff_time = 2h",
		"queue_run_delay = 1h",
		// Without /dev/log Postfix logs nowhere; keep its log in the
		// instance directory (shown when the test fails).
		"maillog_file = " + filepath.Join(dir, "log", "postfix.log"),
		"maillog_file_prefixes = " + filepath.Join(dir, "log"),
	}, "\n")+"\n")
	write("master.cf", pf.smtp+` inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`)
	t.Cleanup(func() {
		if t.Failed() {
			if data, err := os.ReadFile(filepath.Join(dir, "log", "postfix.log")); err == nil {
				t.Logf("postfix log:\n%s", data)
			}
		}
		// Stop waits for the master to exit (at most ~5s).
		if out, err := postfixCmd("postfix", "-c", dir, "stop").CombinedOutput(); err != nil {
			t.Logf("postfix stop: %v %s", err, out)
		}
		os.RemoveAll(dir)
	})
	// Standard streams stay /dev/null: the daemons inherit them. Start's
	// own complaints go to the log only; `postfix check` prints them.
	if err := postfixCmd("postfix", "-c", dir, "start").Run(); err != nil {
		out, _ := postfixCmd("postfix", "-c", dir, "check").CombinedOutput()
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	waitFor(t, "postfix smtpd", func() bool {
		c, err := net.DialTimeout("tcp", pf.smtp, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return pf
}

// queue returns `postqueue -p`'s listing.
func (pf *postfixInstance) queue() string {
	out, err := postfixCmd("postqueue", "-c", pf.dir, "-p").CombinedOutput()
	if err != nil {
		pf.t.Fatalf("postqueue -p: %v\n%s", err, out)
	}
	return string(out)
}

// flush asks Postfix to deliver everything queued now.
func (pf *postfixInstance) flush() {
	if out, err := postfixCmd("postqueue", "-c", pf.dir, "-f").CombinedOutput(); err != nil {
		pf.t.Fatalf("postqueue -f: %v\n%s", err, out)
	}
}

// files counts the queue files under queue/<name>.
func (pf *postfixInstance) files(name string) int {
	n := 0
	filepath.WalkDir(filepath.Join(pf.dir, "queue", name), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// waitDeferred waits until n messages sit in the deferred queue and none
// in the active one: qmgr has finished the failed attempt, so a flush now
// is not lost in a race with it.
func (pf *postfixInstance) waitDeferred(n int) {
	pf.t.Helper()
	waitFor(pf.t, "messages in postfix's deferred queue", func() bool {
		return pf.files("deferred") == n && pf.files("active") == 0 && pf.files("incoming") == 0
	})
}

// flushUntil flushes the queue and waits for cond, flushing again every few
// seconds (a flush request qmgr receives while it is busy with the queue
// can be absorbed without a delivery).
func (pf *postfixInstance) flushUntil(what string, cond func() bool) {
	pf.t.Helper()
	last := time.Now()
	pf.flush()
	waitFor(pf.t, what, func() bool {
		if cond() {
			return true
		}
		if time.Since(last) > 3*time.Second {
			pf.flush()
			last = time.Now()
		}
		return false
	})
}

// submit sends raw to Postfix's smtpd and returns RCPT TO's reply code for
// each recipient.
func (pf *postfixInstance) submit(from string, rcpts []string, raw []byte) map[string]int {
	pf.t.Helper()
	c, err := smtp.Dial(pf.smtp)
	if err != nil {
		pf.t.Fatalf("dial postfix smtpd: %v", err)
	}
	defer c.Close()
	if err := c.Hello("customer.test.localhost"); err != nil {
		pf.t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		pf.t.Fatalf("MAIL FROM: %v", err)
	}
	codes := map[string]int{}
	accepted := 0
	for _, r := range rcpts {
		codes[r] = code(c.Rcpt(r, nil))
		if codes[r] == 250 {
			accepted++
		}
	}
	if accepted > 0 {
		w, err := c.Data()
		if err != nil {
			pf.t.Fatal(err)
		}
		w.Write(raw)
		if err := w.Close(); err != nil {
			pf.t.Fatalf("end of data: %v", err)
		}
	}
	c.Quit()
	return codes
}

// TestPostfixDelivers queues a customer's mail in a real Postfix while the
// gateway is down, starts the gateway's LMTP server, flushes the queue, and
// checks that the message was delivered exactly once: one ticket, one
// acknowledgement, one filed copy, an empty queue.
func TestPostfixDelivers(t *testing.T) {
	requirePostfix(t)
	wd := newWorld(t)
	lmtpPort := freePort(t)
	wd.w.Config.LMTP.Address = net.JoinHostPort("127.0.0.1", strconv.Itoa(lmtpPort))
	wd.w.Config.LMTP.Listen = wd.w.Config.LMTP.Address
	start := time.Now()
	pf := startPostfix(t, "northwind-it.example", []string{demo.SupportAddress}, lmtpPort)
	started := time.Since(start)

	const customer = "maria.lopez@globex.example"
	raw := sample(t, "request-english")
	injected := time.Now()
	codes := pf.submit(customer, []string{demo.SupportAddress, "someone@elsewhere.example"}, raw)
	if codes[demo.SupportAddress] != 250 {
		t.Fatalf("postfix refused the support address: %v", codes)
	}
	if codes["someone@elsewhere.example"] == 250 {
		t.Fatalf("postfix accepted mail for another domain: it must not be able to leave")
	}
	// The gateway is down: Postfix tries once, fails and defers.
	var listing string
	waitFor(t, "the message deferred in postfix's queue", func() bool {
		listing = pf.queue()
		return strings.Contains(listing, "Connection refused")
	})
	pf.waitDeferred(1)
	deferredAfter := time.Since(injected)
	// Listed while the queue manager moved it from active to deferred, the
	// message can show twice ("2 Requests", one queue ID): list it again
	// now that it has settled.
	listing = pf.queue()
	if !strings.Contains(listing, "1 Request") {
		t.Fatalf("queue:\n%s", listing)
	}

	s := wd.lmtpServer(wd.g.Pipeline.Handle, time.Now())
	flushed := time.Now()
	pf.flushUntil("the ticket", func() bool { return len(wd.snapshot()) > 0 })
	toTicket := time.Since(flushed)
	waitFor(t, "an empty postfix queue", func() bool { return strings.Contains(pf.queue(), "Mail queue is empty") })

	// Nothing more arrives, even when the queue is flushed again.
	pf.flush()
	time.Sleep(500 * time.Millisecond)
	outs := wd.snapshot()
	if len(outs) != 1 || outs[0].Action != "ticket" || !outs[0].Created {
		t.Fatalf("outcomes %+v, want one new ticket", outs)
	}
	if st := s.Stats(); st.Delivered != 1 || st.Filed != 1 || st.TemporaryFailures != 0 {
		t.Errorf("lmtp stats %+v", st)
	}
	if all, err := wd.st.TicketsByContract(wd.ctx, "globex"); err != nil || len(all) != 1 {
		t.Fatalf("globex tickets %d (%v)", len(all), err)
	}
	mail, err := wd.w.SMTP.WaitFor(wd.ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(mailTo(mail, customer)); n != 1 {
		t.Errorf("acknowledgements %d, want 1", n)
	}
	filed := readFolder(t, wd.w.IMAP.Addr, demo.SupportAddress, "demo-password", "Processed")
	if len(filed) != 1 {
		t.Fatalf("Processed holds %d copies, want 1", len(filed))
	}
	body := filed[0].body
	if !bytes.HasPrefix(body, []byte("Return-Path: <"+customer+">\r\n")) ||
		!bytes.Contains(body, []byte("by mx.ticketgw-test.localhost (Postfix)")) ||
		!bytes.Contains(body, []byte("Message-ID: <20261130141000.4711@globex.example>")) {
		t.Errorf("filed copy:\n%s", body[:min(len(body), 800)])
	}
	if d := filed[0].internalDate; d.Before(flushed.Truncate(time.Second)) || d.After(time.Now()) {
		t.Errorf("INTERNALDATE %v: not the arrival at the gateway (flushed at %v)", d, flushed)
	}
	t.Logf("postfix start %v; injected → deferred %v; flush → ticket stored %v",
		started.Round(time.Millisecond), deferredAfter.Round(time.Millisecond), toTicket.Round(time.Millisecond))
}

// TestPostfixRetriesAfter451 lets Postfix meet a gateway whose store fails:
// the 451 keeps the message in Postfix's queue, and the next flush, with
// the store back, delivers it once.
func TestPostfixRetriesAfter451(t *testing.T) {
	requirePostfix(t)
	wd := newWorld(t)
	lmtpPort := freePort(t)
	wd.w.Config.LMTP.Address = net.JoinHostPort("127.0.0.1", strconv.Itoa(lmtpPort))
	pf := startPostfix(t, "northwind-it.example", []string{demo.SupportAddress}, lmtpPort)

	down := make(chan struct{})
	failing := func(ctx context.Context, f *ingest.Fetched) error {
		select {
		case <-down:
			return wd.g.Pipeline.Handle(ctx, f)
		default:
			return fmt.Errorf("redis: connection refused")
		}
	}
	s := wd.lmtpServer(failing, time.Now())
	raw := sample(t, "fault-hebrew")
	if codes := pf.submit("yossi@acme.co.il", []string{demo.SupportAddress}, raw); codes[demo.SupportAddress] != 250 {
		t.Fatalf("postfix refused: %v", codes)
	}
	waitFor(t, "the 451 in postfix's queue", func() bool {
		return strings.Contains(pf.queue(), "451 4.3.0")
	})
	if n := len(wd.snapshot()); n != 0 {
		t.Fatalf("%d outcomes while the store failed", n)
	}
	pf.waitDeferred(1)
	close(down)
	pf.flushUntil("an empty postfix queue", func() bool { return strings.Contains(pf.queue(), "Mail queue is empty") })
	outs := wd.snapshot()
	if len(outs) != 1 || outs[0].Action != "ticket" {
		t.Fatalf("outcomes %+v", outs)
	}
	if st := s.Stats(); st.TemporaryFailures != 1 || st.Delivered != 1 {
		t.Errorf("stats %+v", st)
	}
}
