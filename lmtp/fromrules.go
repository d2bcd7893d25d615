package lmtp

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/rules"
)

// ConfigFromRules returns the server configuration cfg.LMTP describes
// (cfg.LMTP must not be nil): its listen address, its mailbox, and as
// recipients the gateway's support addresses (service.address and every
// mailbox address; never the staff queue or the escalation address, whose
// mail must not come back in as tickets).
func ConfigFromRules(cfg *rules.Config) Config {
	l := cfg.LMTP
	c := Config{
		Network:         l.Network,
		Address:         l.Address,
		SocketMode:      l.SocketMode,
		Mailbox:         l.Mailbox,
		MaxMessageBytes: l.MaxMessageBytes,
	}
	seen := map[string]bool{}
	add := func(a string) {
		if k := normAddr(a); k != "" && !seen[k] {
			seen[k] = true
			c.Recipients = append(c.Recipients, a)
		}
	}
	add(cfg.Service.Address)
	for _, mb := range cfg.Mailboxes {
		add(mb.Address)
	}
	return c
}

// IMAPConfigFromRules returns the IMAP settings of the mailbox cfg.LMTP
// names (whose processed folder receives the filed copies) for a password
// login. A mailbox with OAuth needs the gateway's token source: pass the
// IMAPConfig the gateway builds for its IMAP source to FromRules instead.
func IMAPConfigFromRules(cfg *rules.Config) (ingest.IMAPConfig, error) {
	for _, mb := range cfg.Mailboxes {
		if !strings.EqualFold(mb.Address, cfg.LMTP.Mailbox) {
			continue
		}
		auth := "plain"
		switch mb.Auth {
		case "plain", "login":
			auth = mb.Auth
		case "xoauth2", "oauthbearer":
			return ingest.IMAPConfig{}, fmt.Errorf("lmtp mailbox %s: auth %s needs the gateway's token source", mb.Address, mb.Auth)
		}
		return ingest.IMAPConfig{
			Addr: net.JoinHostPort(mb.Host, strconv.Itoa(mb.Port)), TLS: mb.TLS,
			AllowPlaintext: mb.AllowPlaintext, InsecureSkipVerify: mb.InsecureSkipVerify,
			Username: mb.Username, Password: mb.Password.Reveal(), Auth: auth,
			Folder: mb.Folder, ProcessedFolder: mb.ProcessedFolder, Name: mb.Address,
		}, nil
	}
	return ingest.IMAPConfig{}, fmt.Errorf("lmtp mailbox %s: not a configured mailbox", cfg.LMTP.Mailbox)
}

// FromRules builds the LMTP server of cfg.LMTP (nil, nil when cfg has no
// lmtp section). It hands messages to h and files them with an
// IMAPAppender into the processed folder of mailbox: the IMAP settings of
// the mailbox cfg.LMTP names, as the gateway builds them for its IMAP
// source (or IMAPConfigFromRules builds them for a password login).
func FromRules(cfg *rules.Config, mailbox ingest.IMAPConfig, h ingest.Handler, log *slog.Logger, opts []Option, appOpts ...AppenderOption) (*Server, error) {
	if cfg.LMTP == nil {
		return nil, nil
	}
	if !strings.EqualFold(mailbox.Name, cfg.LMTP.Mailbox) {
		return nil, fmt.Errorf("lmtp: filing settings are for mailbox %q, not %q", mailbox.Name, cfg.LMTP.Mailbox)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	app, err := NewIMAPAppender(mailbox, log.With("component", "lmtp-filing"), appOpts...)
	if err != nil {
		return nil, fmt.Errorf("lmtp filing: %w", err)
	}
	return New(ConfigFromRules(cfg), h, app, log, opts...)
}
