package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/metrics"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/oauth"
	"github.com/northwind-it/ticketgw/oauth/oauthtest"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/store"
)

// TestTokenSourceFromConfig goes from the YAML `oauth:` blocks to tokens
// from a token endpoint, the way New wires them.
func TestTokenSourceFromConfig(t *testing.T) {
	tokens := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: "s3cret"})
	cfg := oauthConfig(t, tokens.URL, "", "")
	log := slog.New(slog.DiscardHandler)
	mb := cfg.Mailboxes[0]
	if imapAuth(mb.Auth) != "xoauth2" || imapAuth(cfg.SMTP.Auth) != "oauthbearer" {
		t.Fatalf("auth: mailbox %s, smtp %s", mb.Auth, cfg.SMTP.Auth)
	}
	imapTS, err := newTokenSource(mb.OAuth, mb.Address, log, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	smtpTS, err := newTokenSource(cfg.SMTP.OAuth, cfg.SMTP.Username, log, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range []tokenSource{imapTS, smtpTS} {
		if tok, err := ts.Token(t.Context()); err != nil || !tokens.Valid(tok) {
			t.Fatalf("Token() = %q, %v", tok, err)
		}
	}
	forms := tokens.Forms()
	if len(forms) != 2 || forms[0]["grant_type"] != "refresh_token" || forms[0]["scope"] != "imap" ||
		forms[1]["grant_type"] != "client_credentials" || forms[1]["scope"] != "smtp" {
		t.Errorf("requests: %v", forms)
	}

	// Without an oauth block the source is a nil interface, not a typed
	// nil that would pass the senders' nil checks.
	if ts, err := newTokenSource(nil, "x", log, nil, nil); ts != nil || err != nil {
		t.Errorf("newTokenSource(nil) = %v, %v", ts, err)
	}
	bad := *mb.OAuth
	bad.ClientID = ""
	if _, err := newTokenSource(&bad, "mb@x", log, nil, nil); err == nil || !strings.Contains(err.Error(), "client id: required") {
		t.Errorf("invalid block: %v", err)
	}
}

// An endpoint that rotates refresh tokens and revokes the one it replaced:
// the gateway restarted (a new token source on the same Redis) logs in with
// the token saved at the rotation, where the configured one is refused.
func TestRotatedRefreshTokenIsKeptInRedisAcrossRestarts(t *testing.T) {
	rdb, prefix := oauthTestRedis(t)
	srv := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: "s3cret", Rotate: true, RevokeRotated: true})
	block := &rules.OAuth{TokenURL: srv.URL, ClientID: "client-id", ClientSecret: rules.NewSecret("s3cret"), RefreshToken: rules.NewSecret("rt-0"), Scopes: []string{"imap"}}
	log := slog.New(slog.DiscardHandler)
	start := func(tokens oauth.RefreshTokenStore) (string, error) {
		ts, err := newTokenSource(block, "support@msp.example", log, nil, tokens)
		if err != nil {
			t.Fatal(err)
		}
		return ts.Token(t.Context())
	}
	for i := range 3 { // the first start, then two restarts
		if tok, err := start(store.New(rdb, prefix)); err != nil || !srv.Valid(tok) {
			t.Fatalf("start %d: Token() = %q, %v", i+1, tok, err)
		}
	}
	// One process whose mailbox and SMTP use one account (two sources of
	// one credential), next to a second instance: they refresh in turn and
	// never present a token the endpoint has rotated away.
	var sources []tokenSource
	for _, name := range []string{"imap", "smtp", "other instance"} {
		ts, err := newTokenSource(block, name, log, nil, store.New(rdb, prefix))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, ts)
	}
	for range 3 {
		for i, ts := range sources {
			tok, err := ts.Token(t.Context())
			if err != nil || !srv.Valid(tok) {
				t.Fatalf("source %d: Token() = %q, %v", i, tok, err)
			}
			ts.Invalidate(tok)
		}
	}
	seen := map[string]bool{}
	for _, u := range srv.RefreshTokensUsed() {
		if seen[u] {
			t.Fatalf("refresh token %s presented twice: %v", u, srv.RefreshTokensUsed())
		}
		seen[u] = true
	}
	// The same restart without the store presents the configured token.
	_, err := start(nil)
	var re *oauth.RefreshError
	if !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Fatalf("restart without the saved token: err = %v, want invalid_grant", err)
	}
}

// oauthTestRedis is the test Redis and a key prefix of the test's own,
// deleted at the end.
func oauthTestRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "tg-oauth-test-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

// The token sources the gateway and the rebuild build save rotated tokens
// in the gateway's Redis (review finding: passing nil instead of the store
// went unnoticed by every other test).
func TestGatewayTokenSourcesSaveRotatedTokens(t *testing.T) {
	rdb, prefix := oauthTestRedis(t)
	tokens := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: "s3cret", Rotate: true, RevokeRotated: true})
	cfg := oauthConfig(t, tokens.URL, prefix, "rt-0")
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	g, err := New(t.Context(), cfg, tmpl, log, Options{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if len(g.tokens) != 2 {
		t.Fatalf("%d token sources, want the mailbox's and the SMTP account's", len(g.tokens))
	}
	ic, err := MailboxIMAPConfig(cfg.Mailboxes[0], log, g.Store)
	if err != nil {
		t.Fatal(err)
	}
	sources := append([]tokenSource{}, g.tokens...)
	sources = append(sources, ic.TokenSource.(tokenSource))
	for i, ts := range sources {
		if _, err := ts.Token(t.Context()); err != nil {
			t.Fatalf("source %d: %v", i, err)
		}
	}
	// One account for IMAP and SMTP: one credential, one saved token, and
	// each source presented the one the previous had saved (a source
	// without the store would have presented the revoked rt-0 and failed).
	keys, err := rdb.Keys(t.Context(), prefix+"{oauth:*}").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("saved tokens %v, %v; want one", keys, err)
	}
	if got, want := fmt.Sprint(tokens.RefreshTokensUsed()), "[rt-0 rt-1 rt-2]"; got != want {
		t.Fatalf("presented %s, want %s", got, want)
	}
}

// oauthConfig is a configuration whose mailbox and SMTP authenticate with
// OAuth at tokenURL: the mailbox with the refresh token rt-0, SMTP with
// smtpRefresh ("" for the client-credentials grant). redisPrefix, if set,
// is redis.prefix.
func oauthConfig(t *testing.T, tokenURL, redisPrefix, smtpRefresh string) *rules.Config {
	t.Helper()
	redisLine, smtpToken := "", ""
	if redisPrefix != "" {
		redisLine = "redis: {prefix: \"" + redisPrefix + "\"}\n"
	}
	if smtpRefresh != "" {
		smtpToken = ", refresh_token: " + smtpRefresh
	}
	yaml := `service: {address: support@msp.example}
` + redisLine + `mailbox:
  host: 127.0.0.1
  tls: none
  oauth: {provider: custom, token_url: "` + tokenURL + `", client_id: client-id, client_secret: s3cret, refresh_token: rt-0, scopes: [imap]}
smtp:
  host: 127.0.0.1
  tls: none
  username: support@msp.example
  auth: oauthbearer
  oauth: {provider: custom, token_url: "` + tokenURL + `", client_id: client-id, client_secret: s3cret` + smtpToken + `, scopes: [smtp]}
staff: {addresses: ["*@msp.example"], queue: helpdesk@msp.example}
calendars: {office: {timezone: UTC, week: {mon: "09:00-17:00"}}}
contracts: [{id: acme, match: {domains: [acme.example]}}]
rules: [{name: default, set: {category: request}}]
`
	cfg, err := rules.Parse("gateway.yaml", []byte(yaml), rules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// With metrics shared across reloads, starting a gateway does not record
// its configuration as loaded: a reload refused between the previous
// swap and this start would otherwise read as a success (review finding).
func TestRunLeavesASharedConfigGaugeAlone(t *testing.T) {
	rdb, prefix := oauthTestRedis(t)
	tokens := oauthtest.NewServer(t, oauthtest.Options{ClientSecret: "s3cret"})
	cfg := oauthConfig(t, tokens.URL, prefix, "")
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	g, err := New(t.Context(), cfg, tmpl, slog.New(slog.DiscardHandler), Options{Redis: rdb, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.ConfigReloaded(false) // a reload refused before this gateway started
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_ = g.Run(ctx) // no IMAP server: it retries until ctx ends
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ticketgw_config_last_reload_success" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Fatalf("config_last_reload_success = %v after a refused reload and a start, want 0", v)
			}
			return
		}
	}
	t.Fatal("no ticketgw_config_last_reload_success")
}
