package rules

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/northwind-it/ticketgw/oauth"
)

// Defaults (SPEC §3, §6).
const (
	DefaultServiceName     = "Support"
	DefaultHTTP            = "127.0.0.1:9464"
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
	DefaultRedisPrefix     = "tg:"
	DefaultFolder          = "INBOX"
	DefaultProcessedFolder = "Processed"
	DefaultPollInterval    = 30 * time.Second
	DefaultSMTPConnections = 4
	DefaultAcksPerHour     = 5
	DefaultReopenWindow    = 7 * 24 * time.Hour
	DefaultMaxMessageBytes = 64 << 20
	DefaultWarnAt          = 0.8
)

// Choices of enumerated keys.
var (
	tlsModes       = []string{"implicit", "starttls", "none"}
	imapAuths      = []string{"plain", "login", "xoauth2", "oauthbearer"}
	smtpAuths      = []string{"plain", "login", "xoauth2", "oauthbearer", "none"}
	unknownSenders = []string{"reply", "ticket", "ignore"}
)

var topKeys = keySet{noun: "top-level key", names: []string{
	"service", "mailbox", "mailboxes", "smtp", "redis", "staff", "calendars",
	"contracts", "unknown_senders", "rules", "templates", "limits",
	"reports",
	"lmtp", // rules/lmtp.go
}}

// config builds the whole Config from the root mapping.
func (l *loader) config(root *yaml.Node) *Config {
	top := l.mapping("", root, root, topKeys)
	cfg := &Config{File: l.file}
	for _, k := range []string{"service", "smtp", "staff", "contracts", "rules"} {
		top.require(k)
	}
	cfg.Service = l.service(l.section(top, "service", keys("name", "address", "http")))
	cfg.Mailboxes = l.mailboxes(top, cfg.Service.Address)
	cfg.SMTP = l.smtp(l.section(top, "smtp", keys("host", "port", "tls", "allow_plaintext",
		"insecure_skip_verify", "username", "password", "password_file", "auth", "oauth", "connections")))
	cfg.Redis = l.redis(l.section(top, "redis", keys("url", "password", "password_file", "prefix")))
	cfg.Staff = l.staff(l.section(top, "staff", keys("addresses", "queue", "escalation", "trusted_authserv_id")))
	var calNames []string
	cfg.Calendars, calNames = l.calendars(top)
	cfg.Contracts = l.contracts(top, cfg.Calendars, calNames)
	cfg.UnknownSenders = top.choice("unknown_senders", "reply", unknownSenders...)
	cfg.Rules = l.rules(top, cfg)
	cfg.Templates = l.templates(l.section(top, "templates", keys("dir")))
	cfg.Limits = l.limits(l.section(top, "limits", keys("acks_per_sender_per_hour", "reopen_window", "max_message_bytes")))
	cfg.Reports = l.reports(l.section(top, "reports", reportsKeys))
	cfg.LMTP = l.lmtp(top, cfg) // after mailboxes and limits
	l.ownAddresses(top, cfg)
	return cfg
}

// section returns the mapping under a top-level key (empty when absent).
func (l *loader) section(top *mapNode, name string, ks keySet) *mapNode {
	if e := top.get(name); e != nil {
		return l.mapping(name, e.val, e.key, ks)
	}
	return l.mapping(name, nil, top.n, ks)
}

func (l *loader) service(m *mapNode) Service {
	s := Service{
		Name:    m.nonEmpty("name", DefaultServiceName),
		Address: m.address("address"),
		HTTP:    m.nonEmpty("http", DefaultHTTP),
	}
	if m.present {
		m.require("address")
	}
	if e := m.get("http"); e != nil && s.HTTP != "" {
		if err := checkHostPort(s.HTTP); err != nil {
			l.errAt(e.val, e.path, "invalid listen address %q: %v", s.HTTP, err)
		}
	}
	return s
}

var mailboxKeys = keys("address", "host", "port", "tls", "allow_plaintext", "insecure_skip_verify",
	"username", "password", "password_file", "auth", "oauth", "folder", "processed_folder", "idle", "poll_interval")

// mailboxes reads `mailbox:` (one) or `mailboxes:` (a list); exactly one of
// them must be present.
func (l *loader) mailboxes(top *mapNode, serviceAddr string) []Mailbox {
	one, many := top.get("mailbox"), top.get("mailboxes")
	switch {
	case one != nil && many != nil:
		second := many
		if l.pos(one.key).compare(l.pos(many.key)) > 0 {
			second = one
		}
		l.errAt(second.key, "", "mailbox and mailboxes are mutually exclusive: use mailbox for one, mailboxes for several")
		return nil
	case one == nil && many == nil:
		l.errAt(top.n, "", "missing required key %q (or %q for several)", "mailbox", "mailboxes")
		return nil
	case one != nil:
		return []Mailbox{l.mailbox(l.mapping("mailbox", one.val, one.key, mailboxKeys), serviceAddr)}
	}
	items := l.seq("mailboxes", many.val)
	if v := l.resolve(many.val); isNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		l.errAt(v, "mailboxes", "expected at least one mailbox")
	}
	var out []Mailbox
	first := map[string]Pos{}
	for i, it := range items {
		def := ""
		if i == 0 {
			def = serviceAddr
		}
		m := l.mapping(index("mailboxes", i), it, it, mailboxKeys)
		if i > 0 && m.present {
			m.require("address")
		}
		mb := l.mailbox(m, def)
		if mb.Address != "" {
			k := strings.ToLower(mb.Address)
			if p, dup := first[k]; dup {
				at := m.n
				if e := m.get("address"); e != nil {
					at = e.val
				}
				l.errAt(at, join(m.path, "address"), "%s is already the address of the mailbox at %s", mb.Address, p)
			} else {
				first[k] = mb.Pos
			}
		}
		out = append(out, mb)
	}
	return out
}

func (l *loader) mailbox(m *mapNode, defAddr string) Mailbox {
	mb := Mailbox{
		Address:            m.address("address"),
		Host:               m.nonEmpty("host", ""),
		TLS:                m.choice("tls", "implicit", tlsModes...),
		AllowPlaintext:     m.boolean("allow_plaintext", false),
		InsecureSkipVerify: m.boolean("insecure_skip_verify", false),
		Password:           m.secret("password"),
		Auth:               m.choice("auth", "plain", imapAuths...),
		Folder:             m.nonEmpty("folder", DefaultFolder),
		ProcessedFolder:    m.nonEmpty("processed_folder", DefaultProcessedFolder),
		IDLE:               m.boolean("idle", true),
		PollInterval:       m.duration("poll_interval", DefaultPollInterval, time.Second, 24*time.Hour),
		Pos:                l.pos(m.n),
	}
	mb.OAuth = l.oauthFor(m, oauth.IMAP, &mb.Auth)
	if mb.Address == "" && !m.has("address") {
		mb.Address = defAddr
	}
	defPort := 993
	if mb.TLS != "implicit" {
		defPort = 143
	}
	mb.Port = m.integer("port", defPort, 1, 65535)
	mb.Username = m.nonEmpty("username", mb.Address)
	m.require("host")
	if mb.Folder != "" && mb.Folder == mb.ProcessedFolder {
		e := m.get("processed_folder")
		if e == nil {
			e = m.get("folder")
		}
		l.errAt(e.val, e.path, "folder and processed_folder are both %q: processed mail must go to another folder", mb.Folder)
	}
	l.checkPlaintext(m, mb.TLS, mb.Host, mb.AllowPlaintext)
	return mb
}

// checkPlaintext enforces "tls: none: loopback only" unless allow_plaintext.
func (l *loader) checkPlaintext(m *mapNode, tls, host string, allow bool) {
	if tls != "none" || allow || host == "" || isLoopback(host) {
		return
	}
	e := m.get("tls")
	l.errAt(e.val, e.path, "none would send credentials and mail unencrypted to %s: allowed only for a loopback host, unless allow_plaintext: true", host)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (l *loader) smtp(m *mapNode) SMTP {
	s := SMTP{
		Host:               m.nonEmpty("host", ""),
		TLS:                m.choice("tls", "starttls", tlsModes...),
		AllowPlaintext:     m.boolean("allow_plaintext", false),
		InsecureSkipVerify: m.boolean("insecure_skip_verify", false),
		Username:           m.nonEmpty("username", ""),
		Password:           m.secret("password"),
		Connections:        m.integer("connections", DefaultSMTPConnections, 1, 64),
	}
	if m.present {
		m.require("host")
	}
	defPort := 587
	if s.TLS == "implicit" {
		defPort = 465
	}
	s.Port = m.integer("port", defPort, 1, 65535)
	defAuth := "none"
	if s.Username != "" {
		defAuth = "plain"
	}
	s.Auth = m.choice("auth", defAuth, smtpAuths...)
	s.OAuth = l.oauthFor(m, oauth.SMTP, &s.Auth)
	if s.Auth != "none" && s.Username == "" && !m.has("username") {
		e := m.get("auth")
		if e == nil { // xoauth2 by default with oauth
			e = m.get("oauth")
		}
		l.errAt(e.val, e.path, "%s needs a username: add username, or write auth: none", s.Auth)
	}
	l.checkPlaintext(m, s.TLS, s.Host, s.AllowPlaintext)
	return s
}

func (l *loader) redis(m *mapNode) Redis {
	r := Redis{
		URL:      m.nonEmpty("url", DefaultRedisURL),
		Password: m.secret("password"),
		Prefix:   m.str("prefix", DefaultRedisPrefix),
	}
	if e := m.get("url"); e != nil && r.URL != "" {
		// The URL may carry a password: messages never quote it.
		if _, err := ParseRedisURL(r.URL); err != nil {
			l.errAt(e.val, e.path, "%v", err)
		} else if clean, pw, ok := redactRedisURL(r.URL); ok {
			// Move a password out of the URL into the Secret, so that the
			// URL can be printed; an explicit password: still wins.
			if r.Password.IsZero() {
				r.Password = NewSecret(pw)
			}
			r.URL = clean
		}
	}
	if e := m.get("prefix"); e != nil && strings.ContainsAny(r.Prefix, "{} \t\r\n") {
		l.errAt(e.val, e.path, "invalid prefix %q: must not contain braces (hash tags are added per key) or white space", r.Prefix)
	}
	return r
}

func (l *loader) staff(m *mapNode) Staff {
	l.staffMap = m
	s := Staff{
		Queue:             m.address("queue"),
		Escalation:        m.address("escalation"),
		TrustedAuthservID: m.str("trusted_authserv_id", ""),
	}
	if m.present {
		m.require("queue")
	}
	if e := m.get("addresses"); e != nil {
		nodes, pats := l.strList(e.path, e.val)
		seen := map[string]Pos{}
		for i, p := range pats {
			p = strings.ToLower(strings.TrimSpace(p))
			path := index(e.path, i)
			switch {
			case strings.HasPrefix(p, "*@"):
				if !validDomain(p[2:]) {
					l.errAt(nodes[i], path, "invalid pattern %q: expected an address or *@domain", pats[i])
					continue
				}
			case !validAddress(p):
				l.errAt(nodes[i], path, "invalid pattern %q: expected an address or *@domain", pats[i])
				continue
			}
			if first, dup := seen[p]; dup {
				l.errAt(nodes[i], path, "duplicate pattern %q (first at %s)", p, first)
				continue
			}
			seen[p] = l.pos(nodes[i])
			s.Addresses = append(s.Addresses, p)
		}
	}
	return s
}

func (l *loader) templates(m *mapNode) Templates {
	t := Templates{Dir: m.str("dir", "")}
	if t.Dir != "" {
		t.Dir = l.abs(t.Dir)
	}
	return t
}

func (l *loader) limits(m *mapNode) Limits {
	lim := Limits{
		AcksPerSenderPerHour: m.integer("acks_per_sender_per_hour", DefaultAcksPerHour, 1, 10000),
		ReopenWindow:         m.duration("reopen_window", DefaultReopenWindow, 0, 10*366*24*time.Hour),
		MaxMessageBytes:      DefaultMaxMessageBytes,
	}
	if e := m.get("max_message_bytes"); e != nil {
		if s, ok := l.scalar(e.path, e.val); ok {
			n, err := parseSize(s)
			switch {
			case err != nil:
				l.errAt(e.val, e.path, "invalid size %q: %v", s, err)
			case n < 64<<10 || n > 4<<30:
				l.errAt(e.val, e.path, "%s is out of range: expected 64KiB to 4GiB", s)
			default:
				lim.MaxMessageBytes = n
			}
		}
	}
	return lim
}

// ownAddresses checks that the gateway's own addresses are neither claimed
// by a contract nor a loop: the staff queue and the escalation address must
// not be mailboxes the gateway reads (SPEC §6).
func (l *loader) ownAddresses(top *mapNode, cfg *Config) {
	read := map[string]string{}
	if cfg.Service.Address != "" {
		read[strings.ToLower(cfg.Service.Address)] = "service.address"
	}
	for i, mb := range cfg.Mailboxes {
		if mb.Address != "" {
			what := "mailbox.address"
			if top.has("mailboxes") {
				what = index("mailboxes", i) + ".address"
			}
			read[strings.ToLower(mb.Address)] = what
		}
	}
	for _, own := range cfg.Addresses() {
		if c, ok := l.addrClaims[own]; ok {
			l.errAtPos(c.pos, c.path, "%s is one of the gateway's own addresses, which are never customers", own)
		}
	}
	for _, c := range []struct{ key, addr string }{
		{"queue", cfg.Staff.Queue},
		{"escalation", cfg.Staff.Escalation},
	} {
		e := l.staffMap.get(c.key)
		if e == nil || c.addr == "" {
			continue
		}
		if what, ok := read[strings.ToLower(c.addr)]; ok {
			l.errAt(e.val, e.path, "%s is also %s, which the gateway reads: mail sent to staff would come back in as new tickets", c.addr, what)
		}
	}
}

// address reads an optional email address (lower-casing nothing: it is
// used as written in outgoing mail; comparisons fold case).
func (m *mapNode) address(key string) string {
	e := m.get(key)
	if e == nil {
		return ""
	}
	s, ok := m.l.scalar(e.path, e.val)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	if !validAddress(s) {
		m.l.errAt(e.val, e.path, "invalid email address %q: expected local@domain", s)
		return ""
	}
	return s
}

// validAddress accepts a bare addr-spec (no display name, no brackets).
func validAddress(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n<>,;") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" {
		return false
	}
	local, domain, ok := strings.Cut(a.Address, "@")
	return ok && local != "" && validDomain(domain)
}

// validDomain accepts a host name (Unicode labels allowed), without a
// trailing dot or wildcard.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || strings.ContainsRune("@*/\\:;,<>()[]\"'`!?#$%&=+{}|~^", r) || r == 0x7f {
			return false
		}
	}
	return true
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("expected host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("expected a port number from 0 to 65535")
	}
	return nil
}

// duration reads a duration: Go syntax (30s, 4h, 1h30m) plus a leading
// whole number of days (7d = 168h, 1d12h). Outside SLA targets a day is 24
// hours of elapsed time.
func (m *mapNode) duration(key string, def, lo, hi time.Duration) time.Duration {
	e := m.get(key)
	if e == nil || isNull(m.l.resolve(e.val)) {
		return def
	}
	s, ok := m.l.scalar(e.path, e.val)
	if !ok {
		return def
	}
	d, err := parseDuration(s)
	if err != nil {
		m.l.errAt(e.val, e.path, "invalid duration %q: expected a number with a unit such as 30s, 15m, 4h or 7d", s)
		return def
	}
	if d < lo || d > hi {
		m.l.errAt(e.val, e.path, "%s is out of range: expected %s to %s", s, fmtDuration(lo), fmtDuration(hi))
		return def
	}
	return d
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 32)
		if err != nil || n < 0 {
			return 0, errors.New("bad day count")
		}
		days, s = n, s[i+1:]
		if s == "" {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("negative")
	}
	return time.Duration(days)*24*time.Hour + d, nil
}

func fmtDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	s = strings.TrimSuffix(s, "0m")
	if s == "" {
		return "0s"
	}
	return s
}

// parseSize reads a byte count: 67108864, 64MiB, 64 MB, 512KiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("expected a number of bytes, optionally with a unit (KB, MB, GB, KiB, MiB, GiB)")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errors.New("number too large")
	}
	units := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
	mult, ok := units[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q: expected KB, MB, GB, KiB, MiB or GiB", strings.TrimSpace(s[i:]))
	}
	if n > (1<<62)/mult {
		return 0, errors.New("number too large")
	}
	return n * mult, nil
}
