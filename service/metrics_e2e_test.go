package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// The observability tests run the real gateway on a demo.World (in-process
// IMAP and SMTP, a real Redis at REDIS_ADDR; skipped without one unless
// CI=true) with service.http on a free port, and read /metrics, /healthz and
// /readyz over HTTP as Prometheus and Kubernetes would.

// obsRedisAddr is the test Redis.
func obsRedisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

func obsRequireRedis(t *testing.T) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: obsRedisAddr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", obsRedisAddr(), err)
		}
		t.Skipf("redis at %s not reachable: %v", obsRedisAddr(), err)
	}
}

// obsLog collects the gateway's log, shown when the test fails.
type obsLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *obsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *obsLog) logger(t *testing.T) *slog.Logger {
	t.Cleanup(func() {
		if t.Failed() {
			l.mu.Lock()
			t.Logf("gateway log:\n%s", l.buf.String())
			l.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(l, nil))
}

// obsClock runs at real speed from Mon 30 Nov 2026 09:32 IST, after the
// sample mail arrived and before the first SLA warning (09:48), so that no
// timer fires during the test while arrival-to-send times are real.
func obsClock() func() time.Time {
	base, start := time.Date(2026, 11, 30, 7, 32, 0, 0, time.UTC), time.Now()
	return func() time.Time { return base.Add(time.Since(start)) }
}

// obsGateway is a running gateway and its HTTP address.
type obsGateway struct {
	g      *service.Gateway
	base   string // http://host:port
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func obsStart(ctx context.Context, t *testing.T, w *demo.World, opt service.Options) *obsGateway {
	t.Helper()
	tmpl, err := notify.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	w.Config.Service.HTTP = "127.0.0.1:0"
	log := (&obsLog{}).logger(t)
	g, err := service.New(ctx, w.Config, tmpl, log, opt)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	og := &obsGateway{g: g, cancel: cancel, done: make(chan error, 1)}
	go func() { og.done <- g.Run(runCtx) }()
	t.Cleanup(func() { og.stop(t); g.Close() })
	for g.HTTPAddr() == "" {
		select {
		case err := <-og.done:
			og.done <- err
			t.Fatalf("gateway stopped before serving http: %v", err)
		case <-ctx.Done():
			t.Fatal("gateway does not serve http")
		case <-time.After(5 * time.Millisecond):
		}
	}
	og.base = "http://" + g.HTTPAddr()
	return og
}

// stop cancels Run and waits for it; it may be called more than once.
func (og *obsGateway) stop(t *testing.T) {
	t.Helper()
	og.once.Do(func() {
		og.cancel()
		select {
		case err := <-og.done:
			if err != nil {
				t.Errorf("gateway run: %v", err)
			}
		case <-time.After(8 * time.Second):
			t.Error("gateway did not stop within 8s")
		}
	})
}

var obsClient = &http.Client{Timeout: 5 * time.Second}

func obsGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := obsClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// obsWait polls f every 20ms until it returns "" (done) or ctx ends, and
// then fails with f's last complaint.
func obsWait(ctx context.Context, t *testing.T, f func() string) {
	t.Helper()
	for {
		why := f()
		if why == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out: %s", why)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// obsScrape is one /metrics exposition: series (name{labels}) -> value.
type obsScrape map[string]float64

func obsParse(t *testing.T, text string) obsScrape {
	t.Helper()
	s := obsScrape{}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("malformed sample %q", line)
		}
		s[line[:i]] = v
	}
	return s
}

// has reports whether any series of the family name is exposed.
func (s obsScrape) has(name string) bool {
	for k := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}

func TestMetricsEndToEnd(t *testing.T) {
	obsRequireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := demo.NewWorld(ctx, demo.WorldOptions{RedisURL: "redis://" + obsRedisAddr()})
	if err != nil {
		t.Fatalf("start mail world: %v", err)
	}
	defer w.Close()
	const mailbox = demo.SupportAddress
	var mu sync.Mutex
	var outcomes []service.Outcome
	og := obsStart(ctx, t, w, service.Options{
		Redis: w.Redis, Now: obsClock(), OutboxIdle: 20 * time.Millisecond, SMTPCheckTTL: 200 * time.Millisecond,
		OnOutcome: func(o service.Outcome) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock() },
	})

	if code, body := obsGet(t, og.base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	// Ready once the mailbox is connected (Redis and SMTP are up).
	obsWait(ctx, t, func() string {
		if code, body := obsGet(t, og.base+"/readyz"); code != 200 {
			return fmt.Sprintf("/readyz %d %q", code, body)
		}
		return ""
	})

	samples, err := demo.Samples()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := w.IMAP.Deliver("INBOX", s.Raw, s.Received); err != nil {
			t.Fatal(err)
		}
	}
	// Three tickets, each with an acknowledgement and a staff copy; the
	// auto-reply gets nothing.
	if _, err := w.SMTP.WaitFor(ctx, 6); err != nil {
		t.Fatalf("wait for mail: %v", err)
	}
	var m obsScrape
	obsWait(ctx, t, func() string {
		_, body := obsGet(t, og.base+"/metrics")
		m = obsParse(t, body)
		if m[`ticketgw_mail_sent_total{kind="ack"}`] < 3 || m[`ticketgw_mail_sent_total{kind="forward"}`] < 3 {
			return "acks and staff copies not counted as sent yet"
		}
		// Messages are handled side by side: the auto-reply (which sends
		// nothing) may still be in hand when the others' mail is out.
		if m[`ticketgw_imap_messages_handled_total{mailbox="`+mailbox+`"}`] < float64(len(samples)) {
			return "not every message handled and moved yet"
		}
		return ""
	})
	mu.Lock()
	if len(outcomes) != len(samples) {
		t.Errorf("%d outcomes for %d samples", len(outcomes), len(samples))
	}
	mu.Unlock()

	mb := `mailbox="` + mailbox + `"`
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`ticketgw_messages_ingested_total{` + mb + `,outcome="ticket"}`, 3},
		{`ticketgw_messages_ingested_total{` + mb + `,outcome="automatic"}`, 1},
		{`ticketgw_messages_ingested_total{` + mb + `,outcome="duplicate"}`, 0},
		{`ticketgw_tickets_opened_total{category="fault",contract="acme"}`, 1},
		{`ticketgw_tickets_opened_total{category="imac",contract="acme"}`, 1},
		{`ticketgw_tickets_opened_total{category="request",contract="globex"}`, 1},
		{`ticketgw_tickets_opened_total{category="fault",contract="globex"}`, 0},
		{`ticketgw_mail_sent_total{kind="ack"}`, 3},
		{`ticketgw_mail_sent_total{kind="forward"}`, 3},
		{`ticketgw_mail_sent_total{kind="relay"}`, 0},
		{`ticketgw_mail_failed_total{class="temporary",kind="ack"}`, 0},
		{`ticketgw_mail_dropped_total{kind="ack"}`, 0},
		{`ticketgw_loops_suppressed_total{reason="auto-reply"}`, 1},
		{`ticketgw_loops_suppressed_total{reason="rate-limit"}`, 0},
		{`ticketgw_mail_latency_seconds_count{kind="ack"}`, 3},
		{`ticketgw_mail_latency_seconds_count{kind="forward"}`, 3},
		{`ticketgw_sla_warnings_total{contract="acme"}`, 0},
		{`ticketgw_sla_breaches_total{contract="globex"}`, 0},
		{`ticketgw_imap_connected{` + mb + `}`, 1},
		{`ticketgw_imap_mode{` + mb + `,mode="idle"}`, 1},
		{`ticketgw_imap_mode{` + mb + `,mode="poll"}`, 0},
		{`ticketgw_imap_reconnects_total{` + mb + `}`, 0},
		{`ticketgw_imap_messages_handled_total{` + mb + `}`, 4},
		{`ticketgw_mailbox_lease_held{` + mb + `}`, 1},
		{`ticketgw_config_last_reload_success`, 1},
	} {
		if got, ok := m[tt.series]; !ok || got != tt.want {
			t.Errorf("%s = %v (exposed %v), want %v", tt.series, got, ok, tt.want)
		}
	}
	// Arrival to acknowledgement: real time on a loopback relay, well
	// under the SPEC's second each, and never negative.
	if sum := m[`ticketgw_mail_latency_seconds_sum{kind="ack"}`]; sum <= 0 || sum > 3*5 {
		t.Errorf("arrival-to-ack seconds sum %v for 3 acks", sum)
	}
	if m[`ticketgw_mail_latency_seconds_bucket{kind="ack",le="+Inf"}`] != 3 {
		t.Error("histogram +Inf bucket is not 3")
	}
	if ts := m[`ticketgw_config_last_reload_success_timestamp_seconds`]; ts < float64(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).Unix()) {
		t.Errorf("config load timestamp %v", ts)
	}
	for _, family := range []string{"ticketgw_imap_notifications_total", "ticketgw_outbox_depth", "ticketgw_outbox_oldest_age_seconds", "go_goroutines"} {
		if !m.has(family) {
			t.Errorf("%s not exposed", family)
		}
	}
	if d := m["ticketgw_outbox_depth"]; d < 0 || d > 6 {
		t.Errorf("outbox depth %v", d)
	}
	// Pending SLA timers: what the store lists, per contract.
	st := store.New(w.Redis, w.Prefix)
	for _, c := range []string{"acme", "globex"} {
		pending, err := st.PendingTimers(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		got := m[`ticketgw_sla_timers_pending{contract="`+c+`"}`]
		if len(pending) == 0 || got != float64(len(pending)) {
			t.Errorf("sla_timers_pending{%s} = %v, store lists %d", c, got, len(pending))
		}
	}
	// The OAuth observer (called by the token sources).
	exp := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	og.g.Metrics.TokenRefreshed(mailbox, exp)
	og.g.Metrics.TokenRefreshFailed(mailbox, errors.New("invalid_grant"))
	_, body := obsGet(t, og.base+"/metrics")
	m = obsParse(t, body)
	if got := m[`ticketgw_token_expiry_timestamp_seconds{account="`+mailbox+`"}`]; got != float64(exp.Unix()) {
		t.Errorf("token expiry %v, want %d", got, exp.Unix())
	}
	if got := m[`ticketgw_token_refresh_failures_total{account="`+mailbox+`"}`]; got != 1 {
		t.Errorf("token refresh failures %v", got)
	}
	// No secret in any label or value line.
	for _, secret := range []string{"demo-password", "password"} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}

	// The relay goes away: not ready once the cached SMTP check expires;
	// still alive.
	w.SMTP.Close()
	obsWait(ctx, t, func() string {
		code, body := obsGet(t, og.base+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "smtp: ") {
			return fmt.Sprintf("/readyz %d %q", code, body)
		}
		if strings.Contains(body, "redis") || strings.Contains(body, "imap") {
			return fmt.Sprintf("/readyz names more than smtp: %q", body)
		}
		return ""
	})
	if code, _ := obsGet(t, og.base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d with the relay down", code)
	}

	// A graceful stop closes the HTTP server.
	og.stop(t)
	if a := og.g.HTTPAddr(); a != "" {
		t.Errorf("HTTPAddr %q after Run returned", a)
	}
	if _, err := obsClient.Get(og.base + "/healthz"); err == nil {
		t.Error("still serving after Run returned")
	}
}

// TestReadyzRedisDown: a gateway whose Redis does not answer is alive and
// not ready, and says why.
func TestReadyzRedisDown(t *testing.T) {
	obsRequireRedis(t) // for the world; the gateway gets a dead one
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	w, err := demo.NewWorld(ctx, demo.WorldOptions{RedisURL: "redis://" + obsRedisAddr()})
	if err != nil {
		t.Fatalf("start mail world: %v", err)
	}
	defer w.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	rdb := redis.NewClient(&redis.Options{Addr: dead, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	og := obsStart(ctx, t, w, service.Options{Redis: rdb, Now: obsClock(), SMTPCheckTTL: 200 * time.Millisecond})

	if code, _ := obsGet(t, og.base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	code, body := obsGet(t, og.base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "redis: ping redis: dial tcp "+dead) {
		t.Errorf("/readyz %d %q, want 503 naming redis", code, body)
	}
	if strings.Contains(body, "smtp") {
		t.Errorf("/readyz blames smtp: %q", body)
	}
	// The state read from Redis is left out rather than shown stale or 0;
	// everything else is there.
	code, body = obsGet(t, og.base+"/metrics")
	m := obsParse(t, body)
	if code != 200 || m.has("ticketgw_outbox_depth") || !m.has("ticketgw_imap_connected") || !m.has("ticketgw_messages_ingested_total") {
		t.Errorf("/metrics with redis down: %d, outbox_depth %v, imap_connected %v", code, m.has("ticketgw_outbox_depth"), m.has("ticketgw_imap_connected"))
	}
}
