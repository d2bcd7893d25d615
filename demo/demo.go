// Package demo runs the real gateway pipeline against an embedded mail world:
// an in-process IMAP server holding the support mailbox, an SMTP catcher
// standing in for the mail relay, and Redis (the one at REDIS_URL when it
// answers, otherwise an embedded Redis-compatible server). It feeds the
// sample customer mail of examples/ and shows what the customers and staff
// receive. `gateway demo` and the end-to-end tests both build on World.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/examples"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/rules"
)

// Mailbox credentials of the embedded IMAP server.
const (
	SupportAddress = "support@northwind-it.example"
	imapPassword   = "demo-password"
)

// World is the embedded mail world and the configuration that points the
// gateway at it.
type World struct {
	IMAP      *localmail.IMAPServer
	SMTP      *localmail.Catcher
	Redis     redis.UniversalClient
	RedisDesc string // where Redis is, for the demo's output
	Embedded  bool   // the embedded Redis-compatible server is in use
	Prefix    string
	Config    *rules.Config

	mini *miniredis.Miniredis
	once sync.Once
}

// WorldOptions choose the Redis and the IMAP server's capabilities.
type WorldOptions struct {
	RedisURL      string // default redis://127.0.0.1:6379/0
	AllowEmbedded bool   // fall back to an embedded Redis-compatible server (the demo only)
	IMAP          localmail.IMAPOptions
	// Env adds or overrides variables for the example configuration.
	Env map[string]string
}

// NewWorld starts the servers and loads examples/gateway.yaml pointed at
// them, with a fresh random Redis key prefix.
func NewWorld(ctx context.Context, opt WorldOptions) (*World, error) {
	w := &World{}
	var err error
	opt.IMAP.Folders = append(opt.IMAP.Folders, "Processed")
	if w.IMAP, err = localmail.StartIMAP(SupportAddress, imapPassword, opt.IMAP); err != nil {
		return nil, err
	}
	if w.SMTP, err = localmail.StartCatcher(); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.openRedis(ctx, opt); err != nil {
		w.Close()
		return nil, err
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	w.Prefix = "tg-demo-" + hex.EncodeToString(rnd[:]) + ":"

	imapHost, imapPort, _ := net.SplitHostPort(w.IMAP.Addr)
	smtpHost, smtpPort, _ := net.SplitHostPort(w.SMTP.Addr)
	env := map[string]string{
		"IMAP_HOST": imapHost, "IMAP_PORT": imapPort, "IMAP_TLS": "none", "IMAP_USER": SupportAddress, "IMAP_PASSWORD": imapPassword,
		"SMTP_HOST": smtpHost, "SMTP_PORT": smtpPort, "SMTP_TLS": "none", "SMTP_AUTH": "none", "SMTP_PASSWORD": "",
		"REDIS_PREFIX": w.Prefix, "REDIS_URL": "redis://127.0.0.1:6379/0",
	}
	for k, v := range opt.Env {
		env[k] = v
	}
	data, err := fs.ReadFile(examples.FS, "gateway.yaml")
	if err != nil {
		w.Close()
		return nil, err
	}
	cfg, err := rules.Parse("examples/gateway.yaml", data, rules.LoadOptions{
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("load example configuration: %w", err)
	}
	// The staff copies and notices are easier to read in a demo when the
	// mailbox is polled often even without IDLE.
	for i := range cfg.Mailboxes {
		cfg.Mailboxes[i].PollInterval = time.Second
	}
	// /metrics, /healthz and /readyz on a free port: demos and tests run
	// side by side, and next to a gateway that uses the configured one.
	cfg.Service.HTTP = "127.0.0.1:0"
	w.Config = cfg
	return w, nil
}

func (w *World) openRedis(ctx context.Context, opt WorldOptions) error {
	url := opt.RedisURL
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("parse REDIS_URL: %w", err)
	}
	ro.DialTimeout = time.Second
	rdb := redis.NewClient(ro)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	perr := rdb.Ping(pctx).Err()
	cancel()
	if perr == nil {
		w.Redis, w.RedisDesc = rdb, "Redis at "+ro.Addr
		return nil
	}
	rdb.Close()
	if !opt.AllowEmbedded {
		return fmt.Errorf("redis at %s: %w", ro.Addr, perr)
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return fmt.Errorf("start embedded redis: %w", err)
	}
	w.mini, w.Embedded = m, true
	w.Redis = redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2})
	w.RedisDesc = fmt.Sprintf("embedded Redis-compatible server at %s (no Redis answered at %s)", m.Addr(), ro.Addr)
	return nil
}

// Close removes the demo's keys and stops everything.
func (w *World) Close() {
	w.once.Do(func() {
		if w.Redis != nil && w.Prefix != "" && !w.Embedded {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			iter := w.Redis.Scan(ctx, 0, w.Prefix+"*", 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
				if len(keys) == 500 {
					w.Redis.Del(ctx, keys...)
					keys = keys[:0]
				}
			}
			if len(keys) > 0 {
				w.Redis.Del(ctx, keys...)
			}
			cancel()
		}
		if w.Redis != nil {
			w.Redis.Close()
		}
		if w.mini != nil {
			w.mini.Close()
		}
		if w.IMAP != nil {
			w.IMAP.Close()
		}
		if w.SMTP != nil {
			w.SMTP.Close()
		}
	})
}

// Sample is one embedded customer message.
type Sample struct {
	Name string
	Raw  []byte
	// Received is when the mail server received it: the message's own Date,
	// so the dates the demo prints are the ones SPEC §7 works out by hand.
	Received time.Time
}

// Samples returns the example messages, in the order they arrive.
func Samples() ([]Sample, error) {
	names, err := fs.Glob(examples.FS, "messages/*.eml")
	if err != nil {
		return nil, err
	}
	var out []Sample
	for _, n := range names {
		raw, err := fs.ReadFile(examples.FS, n)
		if err != nil {
			return nil, err
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		d, err := m.Header.Date()
		if err != nil {
			return nil, fmt.Errorf("%s: date: %w", n, err)
		}
		out = append(out, Sample{Name: strings.TrimPrefix(n, "messages/"), Raw: raw, Received: d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Received.Before(out[j].Received) })
	return out, nil
}

// discardLogger is used unless the demo is verbose.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
