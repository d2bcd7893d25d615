package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testDomains are the domains the private Postfix accepts and hands to
// Dovecot: the MSP's own and the two customers' of examples/gateway.yaml.
// Mail for any other domain bounces (default_transport = error), so
// nothing can leave the machine.
var testDomains = []string{"northwind-it.example", "acme.co.il", "globex.example"}

// Fixed addresses of examples/gateway.yaml.
const (
	supportAddr    = "support@northwind-it.example"
	helpdeskAddr   = "helpdesk@northwind-it.example"
	escalationAddr = "noc-lead@northwind-it.example"
	trustedAuthID  = "mx.northwind-it.example"
)

// toolset is what the suite needs from the machine, found once.
type toolset struct {
	dovecot, postfix, goTool string
	mailUID, mailGID         int
	mailUser                 string
	redisAddr                string
}

// requireTools finds the daemons, the account that owns the mail folders
// and Redis. A missing piece fails the test under CI=true and skips it
// otherwise, saying what is missing and how to get it.
func requireTools(t *testing.T) *toolset {
	t.Helper()
	var missing []string
	ts := &toolset{}
	look := func(name string, fallbacks ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, f := range fallbacks {
			if _, err := os.Stat(f); err == nil {
				return f
			}
		}
		return ""
	}
	if ts.dovecot = look("dovecot", "/usr/sbin/dovecot"); ts.dovecot == "" {
		missing = append(missing, "dovecot (apt-get install dovecot-imapd dovecot-lmtpd)")
	}
	for _, bin := range []string{"imap", "lmtp"} {
		if _, err := os.Stat("/usr/lib/dovecot/" + bin); err != nil {
			missing = append(missing, "dovecot's "+bin+" service (apt-get install dovecot-"+bin+"d)")
		}
	}
	if ts.postfix = look("postfix", "/usr/sbin/postfix"); ts.postfix == "" {
		missing = append(missing, "postfix (apt-get install postfix)")
	}
	if ts.goTool = look("go", filepath.Join(os.Getenv("GOROOT"), "bin", "go")); ts.goTool == "" {
		missing = append(missing, "the go command")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root privileges (Postfix's master runs only as root)")
	}
	for _, name := range []string{"vmail", "mail"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil && uid != 0 {
			ts.mailUser, ts.mailUID, ts.mailGID = name, uid, gid
			break
		}
	}
	if ts.mailUser == "" {
		missing = append(missing, "a system user vmail or mail to own the mail folders")
	}
	ts.redisAddr = os.Getenv("REDIS_ADDR")
	if ts.redisAddr == "" {
		ts.redisAddr = "127.0.0.1:6379"
	}
	if err := pingRedis(ts.redisAddr); err != nil {
		missing = append(missing, fmt.Sprintf("redis at %s ($REDIS_ADDR): %v", ts.redisAddr, err))
	}
	if len(missing) > 0 {
		msg := "the real mail stack suite needs: " + strings.Join(missing, "; ") + " — `bash .ci/run` installs and starts them"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return ts
}

// mailStack is a private Dovecot and Postfix on free loopback ports, with
// their configuration, queue, mail and logs in one temporary folder.
type mailStack struct {
	t        *testing.T
	tools    *toolset
	dir      string
	password string // every account's password (tests only)

	IMAPAddr, LMTPAddr, SMTPAddr string

	dovecot     *exec.Cmd
	dovecotDone chan struct{}
}

// startMailStack starts Dovecot and Postfix with accounts for users (the
// gateway's own addresses are always there) and stops them, removing every
// file, when the test ends. A port taken between choosing and binding it
// makes a daemon fail to start: the whole stack is then retried on new
// ports.
func startMailStack(t *testing.T, tools *toolset, users ...string) *mailStack {
	t.Helper()
	base := []string{supportAddr, helpdeskAddr, escalationAddr, "dana@northwind-it.example", "sam@northwind-it.example"}
	var errs []error
	start := time.Now()
	for attempt := 1; attempt <= 3; attempt++ {
		s, err := tryStartMailStack(t, tools, append(base, users...))
		if err == nil {
			t.Logf("mail stack up in %v: imap %s, lmtp %s, smtp %s", time.Since(start).Round(time.Millisecond), s.IMAPAddr, s.LMTPAddr, s.SMTPAddr)
			t.Cleanup(s.stop)
			return s
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
	}
	t.Fatalf("start the mail stack: %v", errors.Join(errs...))
	return nil
}

func tryStartMailStack(t *testing.T, tools *toolset, users []string) (s *mailStack, err error) {
	// A short path of its own, not t.TempDir(): Dovecot's and Postfix's unix
	// sockets live below it (108 bytes at most), and every component must be
	// searchable by the postfix, dovecot and mail users.
	dir, err := os.MkdirTemp("", "tgw-e2e-")
	if err != nil {
		return nil, fmt.Errorf("create stack folder: %w", err)
	}
	s = &mailStack{t: t, tools: tools, dir: dir, password: randomHex(8)}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, s.logs())
			s.stop()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return s, fmt.Errorf("open stack folder: %w", err)
	}
	for _, sub := range []string{"log", "dovecot/run", "dovecot/state", "mail", "postfix/etc", "postfix/queue"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return s, fmt.Errorf("create %s: %w", sub, err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "mail"), tools.mailUID, tools.mailGID); err != nil {
		return s, fmt.Errorf("give the mail folder to %s: %w", tools.mailUser, err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return s, err
	}
	s.IMAPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	s.LMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	s.SMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	if err := s.writeUsers(users); err != nil {
		return s, err
	}
	if err := s.startDovecot(ports[0], ports[1]); err != nil {
		return s, err
	}
	if err := s.startPostfix(ports[1], ports[2]); err != nil {
		return s, err
	}
	return s, nil
}

// writeUsers writes Dovecot's passwd-file: every user logs in with the
// stack's password. (Mail for any address of the test domains is
// delivered: the static userdb allows all users.)
func (s *mailStack) writeUsers(users []string) error {
	var b strings.Builder
	for _, u := range slices.Compact(slices.Sorted(slices.Values(users))) {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", u, s.password)
	}
	path := filepath.Join(s.dir, "dovecot", "users")
	if err := os.WriteFile(path+".new", []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write dovecot users: %w", err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		return fmt.Errorf("write dovecot users: %w", err)
	}
	return nil
}

const dovecotConf = `# A private Dovecot for the gateway's black-box suite.
base_dir = {{dir}}/dovecot/run
state_dir = {{dir}}/dovecot/state
log_path = {{dir}}/log/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {{uid}}
mail_location = maildir:{{dir}}/mail/%d/%n/Maildir
mail_fsync = never
postmaster_address = postmaster@northwind-it.example
namespace inbox {
  inbox = yes
  separator = /
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{dir}}/dovecot/users
}
userdb {
  driver = static
  args = uid={{uid}} gid={{gid}} home={{dir}}/mail/%d/%n allow_all_users=yes
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{imap}}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{lmtp}}
  }
}
`

func (s *mailStack) startDovecot(imapPort, lmtpPort int) error {
	conf := strings.NewReplacer("{{dir}}", s.dir, "{{uid}}", strconv.Itoa(s.tools.mailUID),
		"{{gid}}", strconv.Itoa(s.tools.mailGID), "{{imap}}", strconv.Itoa(imapPort),
		"{{lmtp}}", strconv.Itoa(lmtpPort)).Replace(dovecotConf)
	path := filepath.Join(s.dir, "dovecot", "dovecot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("write dovecot.conf: %w", err)
	}
	// In the foreground (-F) so that this process owns it; its output goes
	// to a file, never to a pipe that would keep Wait from returning.
	out, err := os.Create(filepath.Join(s.dir, "log", "dovecot.out"))
	if err != nil {
		return fmt.Errorf("create dovecot output: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(s.tools.dovecot, "-F", "-c", path)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	s.dovecot, s.dovecotDone = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.dovecotDone) }()
	if err := s.awaitGreeting(s.IMAPAddr, "* OK"); err != nil {
		return fmt.Errorf("dovecot imap: %w", err)
	}
	if err := s.awaitGreeting(s.LMTPAddr, "220 "); err != nil {
		return fmt.Errorf("dovecot lmtp: %w", err)
	}
	return nil
}

const postfixMain = `# A private Postfix for the gateway's black-box suite: it accepts mail on
# loopback and delivers the test domains to Dovecot over LMTP; everything
# else bounces.
compatibility_level = 3.6
queue_directory = {{dir}}/postfix/queue
data_directory = {{dir}}/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.northwind-it.example
mydomain = northwind-it.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {{domains}}
virtual_transport = lmtp:inet:127.0.0.1:{{lmtp}}
default_transport = error:5.7.1 the test mail stack delivers only to its own domains
relay_transport = error:5.7.1 the test mail stack relays nothing
local_transport = error:5.7.1 the test mail stack has no local delivery
alias_maps =
alias_database =
biff = no
minimal_backoff_time = 1s
maximal_backoff_time = 5s
queue_run_delay = 1s
maillog_file = {{dir}}/log/postfix.log
maillog_file_prefixes = {{dir}}/log
`

// postfixMaster has only the services this Postfix uses, none chrooted.
const postfixMaster = `127.0.0.1:{{smtp}} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
smtp      unix  - - n - - smtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`

func (s *mailStack) startPostfix(lmtpPort, smtpPort int) error {
	r := strings.NewReplacer("{{dir}}", s.dir, "{{domains}}", strings.Join(testDomains, " "),
		"{{lmtp}}", strconv.Itoa(lmtpPort), "{{smtp}}", strconv.Itoa(smtpPort))
	etc := filepath.Join(s.dir, "postfix", "etc")
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(r.Replace(postfixMain)), 0o644); err != nil {
		return fmt.Errorf("write main.cf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), []byte(r.Replace(postfixMaster)), 0o644); err != nil {
		return fmt.Errorf("write master.cf: %w", err)
	}
	// `postfix start` runs Postfix's integrity checks (seconds on a busy
	// machine: they create the queue folders and scan them) unless the
	// queue has a quick-start file; an empty queue needs only its folders,
	// made here as postfix-files describes them. Should a quick start
	// fail, the full start says why in the log.
	if err := s.makePostfixQueue(); err != nil {
		return err
	}
	if err := s.postfixCmd("start"); err != nil {
		if err := s.postfixCmd("start"); err != nil {
			return err
		}
	}
	if err := s.awaitGreeting(s.SMTPAddr, "220 "); err != nil {
		return fmt.Errorf("postfix smtpd: %w", err)
	}
	return nil
}

// makePostfixQueue creates the queue and data folders with the owners and
// modes of Debian's /etc/postfix/postfix-files, and the quick-start mark.
func (s *mailStack) makePostfixQueue() error {
	owner, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("look up the postfix user: %w", err)
	}
	drop, err := user.LookupGroup("postdrop")
	if err != nil {
		return fmt.Errorf("look up the postdrop group: %w", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	dropGID, _ := strconv.Atoi(drop.Gid)
	queue := filepath.Join(s.dir, "postfix", "queue")
	for _, d := range []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{"pid", 0, 0, 0o755},
		{"active", uid, 0, 0o700}, {"bounce", uid, 0, 0o700}, {"corrupt", uid, 0, 0o700},
		{"defer", uid, 0, 0o700}, {"deferred", uid, 0, 0o700}, {"flush", uid, 0, 0o700},
		{"hold", uid, 0, 0o700}, {"incoming", uid, 0, 0o700}, {"private", uid, 0, 0o700},
		{"saved", uid, 0, 0o700}, {"trace", uid, 0, 0o700},
		{"maildrop", uid, dropGID, 0o730}, {"public", uid, dropGID, 0o710},
		{"../data", uid, gid, 0o700},
	} {
		p := filepath.Join(queue, d.path)
		if err := os.Mkdir(p, d.mode); err != nil {
			return fmt.Errorf("create postfix folder: %w", err)
		}
		if err := os.Chown(p, d.uid, d.gid); err != nil {
			return fmt.Errorf("create postfix folder: %w", err)
		}
		if err := os.Chmod(p, d.mode); err != nil { // past the umask
			return fmt.Errorf("create postfix folder: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(queue, "quick-start"), nil, 0o644); err != nil {
		return fmt.Errorf("mark the postfix queue for a quick start: %w", err)
	}
	return nil
}

// postfixCmd runs `postfix -c DIR verb` with its output in a log file.
func (s *mailStack) postfixCmd(verb string) error {
	out, err := os.OpenFile(filepath.Join(s.dir, "log", "postfix.out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open postfix output: %w", err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.tools.postfix, "-c", filepath.Join(s.dir, "postfix", "etc"), verb)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("postfix %s: %w", verb, err)
	}
	return nil
}

// awaitGreeting waits until addr answers with a line starting with want.
func (s *mailStack) awaitGreeting(addr, want string) error {
	deadline := time.Now().Add(10 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if s.dovecotDone != nil {
			select {
			case <-s.dovecotDone:
				return errors.New("dovecot exited")
			default:
			}
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, want) {
				return nil
			}
			err = fmt.Errorf("greeting %q: %v", line, rerr)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no greeting from %s within 10s: %w", addr, last)
}

// stop stops Postfix and Dovecot (together: each takes about a second)
// and removes the folder.
func (s *mailStack) stop() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// What `postfix abort` does, without `postfix stop`'s one-second
		// polling: the master passes SIGTERM on to its children and exits.
		raw, err := os.ReadFile(filepath.Join(s.dir, "postfix", "queue", "pid", "master.pid"))
		if err != nil {
			return // never started
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || pid <= 1 {
			s.t.Errorf("postfix master.pid %q: %v", raw, err)
			return
		}
		syscall.Kill(pid, syscall.SIGTERM)
		if !awaitExit(pid, 10*time.Second) {
			s.t.Errorf("postfix master %d still running 10s after SIGTERM: killing its process group", pid)
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	go func() {
		defer wg.Done()
		if s.dovecot == nil || s.dovecot.Process == nil {
			return
		}
		s.dovecot.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.dovecotDone:
		case <-time.After(10 * time.Second):
			s.t.Errorf("dovecot still running 10s after SIGTERM: killing it")
			s.dovecot.Process.Kill()
			<-s.dovecotDone
		}
	}()
	wg.Wait()
	if s.t.Failed() || *showLogs {
		s.t.Log(s.logs())
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.t.Logf("remove %s: %v", s.dir, err)
	}
}

// awaitExit waits until process pid (not a child of ours: Postfix's master
// runs in the background) is gone or a zombie.
func awaitExit(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// logs returns the tails of the daemons' logs, for failure reports.
func (s *mailStack) logs() string {
	var b strings.Builder
	for _, name := range []string{"dovecot.out", "dovecot.log", "postfix.out", "postfix.log"} {
		raw, err := os.ReadFile(filepath.Join(s.dir, "log", name))
		if err != nil || len(raw) == 0 {
			continue
		}
		fmt.Fprintf(&b, "---- %s (tail)\n%s\n", name, tail(string(raw), 40))
	}
	return b.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
