package rules

import (
	"io/fs"
	"net"
	"strconv"
	"strings"
)

// LMTP is the optional `lmtp:` section (SPEC §2 flow 1): the gateway takes
// mail pushed by the MSP's own mail server (a Postfix or Dovecot LMTP
// transport) instead of, or besides, reading the mailbox over IMAP. Config.LMTP
// is nil when the section is absent.
//
//	lmtp:
//	  listen: 127.0.0.1:2424          # or unix:/run/ticketgw/lmtp.sock
//	  mailbox: support@msp.example    # its processed folder receives a copy of each message
//	  max_message_bytes: 64MiB        # larger messages are refused with 552
type LMTP struct {
	// Listen is the address as written (after ${ENV} expansion): host:port,
	// or unix: followed by a socket path.
	Listen string
	// Network is "tcp" or "unix"; Address is host:port, or the socket's
	// path (a relative path is resolved against the configuration file's
	// directory).
	Network, Address string
	// SocketMode is the unix socket's permission bits (socket_mode, default
	// 0660: the mail server's user must be in the gateway's group, or write
	// 0666 and guard the socket's directory); zero for tcp.
	SocketMode fs.FileMode
	// AllowRemote permits a TCP address that is not loopback. LMTP has no
	// authentication: whoever reaches the port can open tickets.
	AllowRemote bool
	// Mailbox is the address of the configured mailbox whose processed
	// folder receives each handled message (default the first mailbox); it
	// is also the mailbox identity handed to the pipeline.
	Mailbox string
	// MaxMessageBytes is the largest message accepted (default and maximum
	// limits.max_message_bytes); larger ones are refused with 552 5.3.4.
	MaxMessageBytes int64
	Pos             Pos
}

// Defaults of the lmtp section.
const (
	DefaultLMTPListen     = "127.0.0.1:2424"
	DefaultLMTPSocketMode = fs.FileMode(0o660)
	// maxUnixSocketPath is the longest path a Linux sockaddr_un holds.
	maxUnixSocketPath = 107
)

var lmtpKeys = keys("listen", "mailbox", "max_message_bytes", "allow_remote", "socket_mode")

// lmtp reads the optional lmtp section. It runs after mailboxes and limits,
// which it refers to.
func (l *loader) lmtp(top *mapNode, cfg *Config) *LMTP {
	e := top.get("lmtp")
	if e == nil {
		return nil
	}
	m := l.mapping("lmtp", e.val, e.key, lmtpKeys)
	x := &LMTP{
		Listen:      m.nonEmpty("listen", DefaultLMTPListen),
		AllowRemote: m.boolean("allow_remote", false),
		Pos:         l.pos(m.n),
	}
	l.lmtpListen(m, x)
	l.lmtpSocketMode(m, x)

	x.Mailbox = m.address("mailbox")
	if me := m.get("mailbox"); me == nil {
		if len(cfg.Mailboxes) > 0 {
			x.Mailbox = cfg.Mailboxes[0].Address
		}
	} else if x.Mailbox != "" {
		var known []string
		found := false
		for _, mb := range cfg.Mailboxes {
			known = append(known, mb.Address)
			if strings.EqualFold(mb.Address, x.Mailbox) {
				x.Mailbox, found = mb.Address, true
			}
		}
		if !found && len(known) > 0 {
			l.errAt(me.val, me.path, "%s is not a configured mailbox%s: expected %s", x.Mailbox, suggest(x.Mailbox, known), oneOf(known))
		}
	}

	x.MaxMessageBytes = cfg.Limits.MaxMessageBytes
	if se := m.get("max_message_bytes"); se != nil {
		if s, ok := l.scalar(se.path, se.val); ok {
			n, err := parseSize(s)
			switch {
			case err != nil:
				l.errAt(se.val, se.path, "invalid size %q: %v", s, err)
			case n < 64<<10:
				l.errAt(se.val, se.path, "%s is out of range: expected at least 64KiB", s)
			case n > cfg.Limits.MaxMessageBytes:
				l.errAt(se.val, se.path, "%s exceeds limits.max_message_bytes (%d bytes), beyond which the pipeline would truncate the message", s, cfg.Limits.MaxMessageBytes)
			default:
				x.MaxMessageBytes = n
			}
		}
	}
	return x
}

// lmtpListen splits and checks listen.
func (l *loader) lmtpListen(m *mapNode, x *LMTP) {
	e := m.get("listen")
	bad := func(format string, args ...any) {
		if e != nil {
			l.errAt(e.val, e.path, format, args...)
		}
	}
	if x.Listen == "" {
		return // reported by nonEmpty
	}
	if path, ok := strings.CutPrefix(x.Listen, "unix:"); ok {
		x.Network = "unix"
		if path == "" || strings.ContainsAny(path, "\x00\r\n") {
			bad("invalid socket path %q: expected unix:/path/to/socket", path)
			return
		}
		x.Address = l.abs(path)
		if len(x.Address) > maxUnixSocketPath {
			bad("socket path %s is %d bytes long: a unix socket path holds at most %d", x.Address, len(x.Address), maxUnixSocketPath)
		}
		return
	}
	x.Network = "tcp"
	host, port, err := net.SplitHostPort(x.Listen)
	if err != nil {
		bad("invalid listen address %q: expected host:port (such as 127.0.0.1:2424) or unix:/path/to/socket", x.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		bad("invalid listen address %q: expected a port from 1 to 65535", x.Listen)
		return
	}
	x.Address = x.Listen
	if !x.AllowRemote && !isLoopback(host) {
		what := host
		if host == "" {
			what = "every interface"
		}
		bad("LMTP has no authentication: listening on %s would let anyone who reaches it open tickets; use a loopback address or a unix socket, or set allow_remote: true", what)
	}
}

// lmtpSocketMode reads socket_mode (octal, unix sockets only).
func (l *loader) lmtpSocketMode(m *mapNode, x *LMTP) {
	e := m.get("socket_mode")
	if x.Network == "unix" {
		x.SocketMode = DefaultLMTPSocketMode
	}
	if e == nil || isNull(l.resolve(e.val)) {
		return
	}
	s, ok := l.scalar(e.path, e.val)
	if !ok {
		return
	}
	if x.Network != "unix" {
		l.errAt(e.key, e.path, "applies only to a unix socket (listen: unix:/path)")
		return
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(s), "0o"), 8, 32)
	if err != nil || v > 0o777 {
		l.errAt(e.val, e.path, "invalid mode %q: expected octal permission bits such as 0660", s)
		return
	}
	x.SocketMode = fs.FileMode(v)
}
