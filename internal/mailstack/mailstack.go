// Package mailstack runs a private Dovecot (IMAP and LMTP) and Postfix
// (SMTP) on free loopback ports, with their configuration, queue, mail and
// logs in one temporary folder: the real mail stack of the black-box suite
// (e2e) and of the benchmarks (bench/mailstack). Postfix accepts mail for
// Domains from 127.0.0.0/8 and hands it to Dovecot over LMTP, or to the
// destination a Transport entry names (an address or a domain: another LMTP
// server such as the gateway's, or an SMTP catcher); everything else
// bounces, so nothing leaves the machine. It needs root, Debian's
// dovecot-imapd, dovecot-lmtpd and postfix, and a vmail or mail user.
package mailstack

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
	"time"
)

// Options choose the accounts, domains and routes of a stack.
type Options struct {
	// Users can log in over IMAP with the stack's password; mail for any
	// address of Domains is delivered to Dovecot (all users exist).
	Users   []string
	Domains []string
	// Transport routes an address or a domain elsewhere than Dovecot, as a
	// Postfix transport: "lmtp:inet:127.0.0.1:2424", "smtp:[127.0.0.1]:2525".
	Transport map[string]string
}

// Stack is a running private Dovecot and Postfix.
type Stack struct {
	dir      string
	tools    tools
	Password string // every account's password

	IMAPAddr, LMTPAddr, SMTPAddr string

	dovecot     *exec.Cmd
	dovecotDone chan struct{}
}

type tools struct {
	dovecot, postfix string
	mailUID, mailGID int
}

// Missing lists what the machine lacks to run a stack (with how to get
// it); nil when nothing is missing.
func Missing() []string {
	_, missing := findTools()
	return missing
}

// findTools finds the daemons and the account that owns the mail folders,
// and lists what is missing.
func findTools() (ts tools, missing []string) {
	look := func(name, fallback string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if _, err := os.Stat(fallback); err == nil {
			return fallback
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
			ts.mailUID, ts.mailGID = uid, gid
			break
		}
	}
	if ts.mailUID == 0 {
		missing = append(missing, "a system user vmail or mail to own the mail folders")
	}
	return ts, missing
}

// Start starts Dovecot and Postfix. A port taken between choosing and
// binding it makes a daemon fail to start: the whole stack is then retried
// on new ports, up to three times. Stop undoes everything.
func Start(opt Options) (*Stack, error) {
	ts, missing := findTools()
	if len(missing) > 0 {
		return nil, errors.New("the mail stack needs: " + strings.Join(missing, "; "))
	}
	var errs []error
	for attempt := 1; attempt <= 3; attempt++ {
		s, err := tryStart(ts, opt)
		if err == nil {
			return s, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
	}
	return nil, fmt.Errorf("start the mail stack: %w", errors.Join(errs...))
}

func tryStart(ts tools, opt Options) (s *Stack, err error) {
	// A short path, as Dovecot's and Postfix's unix sockets live below it
	// (108 bytes at most), searchable by the postfix, dovecot and mail users.
	dir, err := os.MkdirTemp("", "tgw-mail-")
	if err != nil {
		return nil, fmt.Errorf("create stack folder: %w", err)
	}
	s = &Stack{tools: ts, dir: dir, Password: randomHex(8)}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, s.Logs())
			err = errors.Join(err, s.Stop())
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
	if err := os.Chown(filepath.Join(dir, "mail"), ts.mailUID, ts.mailGID); err != nil {
		return s, fmt.Errorf("give the mail folder to uid %d: %w", ts.mailUID, err)
	}
	ports, err := FreePorts(3)
	if err != nil {
		return s, err
	}
	s.IMAPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	s.LMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	s.SMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
	if err := s.writeUsers(opt.Users); err != nil {
		return s, err
	}
	if err := s.startDovecot(ports[0], ports[1]); err != nil {
		return s, err
	}
	if err := s.startPostfix(opt, ports[1], ports[2]); err != nil {
		return s, err
	}
	return s, nil
}

// writeUsers writes Dovecot's passwd-file: every user logs in with the
// stack's password.
func (s *Stack) writeUsers(users []string) error {
	var b strings.Builder
	for _, u := range slices.Compact(slices.Sorted(slices.Values(users))) {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", u, s.Password)
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

const dovecotConf = `# A private Dovecot for the gateway's black-box suite and benchmarks.
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

func (s *Stack) startDovecot(imapPort, lmtpPort int) error {
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
	go func() { _ = cmd.Wait(); close(s.dovecotDone) }()
	if err := s.awaitGreeting(s.IMAPAddr, "* OK"); err != nil {
		return fmt.Errorf("dovecot imap: %w", err)
	}
	if err := s.awaitGreeting(s.LMTPAddr, "220 "); err != nil {
		return fmt.Errorf("dovecot lmtp: %w", err)
	}
	return nil
}

const postfixMain = `# A private Postfix for the gateway's black-box suite and benchmarks: it
# accepts mail on loopback and delivers its domains to Dovecot over LMTP, or
# where the transport map says; everything else bounces.
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
transport_maps = texthash:{{dir}}/postfix/etc/transport
default_transport = error:5.7.1 the private mail stack delivers only to its own domains
relay_transport = error:5.7.1 the private mail stack relays nothing
local_transport = error:5.7.1 the private mail stack has no local delivery
alias_maps =
alias_database =
biff = no
minimal_backoff_time = 1s
maximal_backoff_time = 5s
queue_run_delay = 1s
maillog_file = {{dir}}/log/postfix.log
maillog_file_prefixes = {{dir}}/log
`

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

func (s *Stack) startPostfix(opt Options, lmtpPort, smtpPort int) error {
	r := strings.NewReplacer("{{dir}}", s.dir, "{{domains}}", strings.Join(opt.Domains, " "),
		"{{lmtp}}", strconv.Itoa(lmtpPort), "{{smtp}}", strconv.Itoa(smtpPort))
	etc := filepath.Join(s.dir, "postfix", "etc")
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(r.Replace(postfixMain)), 0o644); err != nil {
		return fmt.Errorf("write main.cf: %w", err)
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), []byte(r.Replace(postfixMaster)), 0o644); err != nil {
		return fmt.Errorf("write master.cf: %w", err)
	}
	var tr strings.Builder
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range opt.Transport {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&tr, "%s %s\n", k, opt.Transport[k])
	}
	if err := os.WriteFile(filepath.Join(etc, "transport"), []byte(tr.String()), 0o644); err != nil {
		return fmt.Errorf("write transport map: %w", err)
	}
	// `postfix start` runs its integrity checks (seconds on a busy machine)
	// unless the queue has a quick-start file; an empty queue needs only
	// its folders, made here as postfix-files describes them.
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
func (s *Stack) makePostfixQueue() error {
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
func (s *Stack) postfixCmd(verb string) error {
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
func (s *Stack) awaitGreeting(addr, want string) error {
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
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
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

// Stop stops Postfix and Dovecot (together: each takes about a second)
// and removes the folder.
func (s *Stack) Stop() error {
	var (
		wg         sync.WaitGroup
		pErr, dErr error
	)
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
			pErr = fmt.Errorf("postfix master.pid %q: %v", raw, err)
			return
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !awaitExit(pid, 10*time.Second) {
			pErr = fmt.Errorf("postfix master %d still running 10s after SIGTERM: killed its process group", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}()
	go func() {
		defer wg.Done()
		if s.dovecot == nil || s.dovecot.Process == nil {
			return
		}
		_ = s.dovecot.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.dovecotDone:
		case <-time.After(10 * time.Second):
			dErr = errors.New("dovecot still running 10s after SIGTERM: killed it")
			_ = s.dovecot.Process.Kill()
			<-s.dovecotDone
		}
	}()
	wg.Wait()
	if err := os.RemoveAll(s.dir); err != nil {
		return errors.Join(pErr, dErr, fmt.Errorf("remove %s: %w", s.dir, err))
	}
	return errors.Join(pErr, dErr)
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

// Logs returns the tails of the daemons' logs, for failure reports.
func (s *Stack) Logs() string {
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

// FreePorts returns n distinct loopback ports that were free a moment ago.
func FreePorts(n int) ([]int, error) {
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
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
