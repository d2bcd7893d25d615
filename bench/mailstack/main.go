// Command mailstack measures arrival-to-acknowledgement latency against a
// real mail stack: a private Dovecot and Postfix on loopback (package
// internal/mailstack) and the built `gateway run` as a child process.
// Customer messages are submitted one at a time over SMTP to Postfix; the
// gateway reads them either from Dovecot with IMAP IDLE (-mode idle:
// Postfix delivers the support address to Dovecot over LMTP) or straight
// from Postfix over LMTP (-mode lmtp: Postfix's transport for the support
// address is the gateway's LMTP listener). The gateway's mail goes back
// through Postfix, which routes the customers' domains and the staff queue
// to an in-process SMTP catcher: the latency is from Postfix answering 250
// to the submission (the message is queued) to the catcher accepting the
// acknowledgement from Postfix, i.e. the whole path through both daemons.
// The gateway's own share is the mean of its ticketgw_mail_latency_seconds
// histogram for kind="ack" (arrival at the gateway to Postfix accepting the
// acknowledgement) over the measured messages.
//
// Needs root, dovecot-imapd, dovecot-lmtpd, postfix and Redis on loopback.
//
//	go run ./bench/mailstack -mode both -n 200
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/bench/internal/harness"
	"github.com/northwind-it/ticketgw/examples"
	"github.com/northwind-it/ticketgw/internal/mailstack"
	"github.com/northwind-it/ticketgw/localmail"
)

type options struct {
	mode     string
	n        int
	warmup   int
	gap      time.Duration
	redis    string
	bin      string
	timeout  time.Duration
	keep     bool
	logLevel string
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "both", "idle (IMAP IDLE on Dovecot), lmtp (Postfix delivers to the gateway) or both")
	flag.IntVar(&o.n, "n", 200, "measured messages per mode (1..10000)")
	flag.IntVar(&o.warmup, "warmup", 10, "messages sent first and not measured")
	flag.DurationVar(&o.gap, "gap", 20*time.Millisecond, "pause after each acknowledgement")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (loopback only)")
	flag.StringVar(&o.bin, "gateway", "", "gateway binary (default: build ./cmd/gateway)")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Second, "give up waiting for one acknowledgement after this long")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, gateway log)")
	flag.StringVar(&o.logLevel, "log-level", "info", "the gateway's log level: info or debug")
	flag.Parse()
	harness.Main("mailstack", o.validate, func(ctx context.Context) error { return run(ctx, o) })
}

func (o options) validate() error {
	switch {
	case o.mode != "idle" && o.mode != "lmtp" && o.mode != "both":
		return fmt.Errorf("-mode %q: want idle, lmtp or both", o.mode)
	case o.n < 1 || o.n > 10000:
		return fmt.Errorf("-n %d: want 1..10000", o.n)
	case o.warmup < 0 || o.warmup > 1000:
		return fmt.Errorf("-warmup %d: want 0..1000", o.warmup)
	case o.gap < 0 || o.gap > 10*time.Second:
		return fmt.Errorf("-gap %s: want 0..10s", o.gap)
	case o.timeout <= 0 || o.timeout > 5*time.Minute:
		return fmt.Errorf("-timeout %s: want up to 5m", o.timeout)
	case o.logLevel != "info" && o.logLevel != "debug":
		return fmt.Errorf("-log-level %q: want info or debug", o.logLevel)
	}
	return nil
}

func run(ctx context.Context, o options) error {
	root, dir, cleanup, err := harness.Workspace("mailstack", o.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	if o.bin == "" {
		if o.bin, err = harness.BuildGateway(ctx, root, dir); err != nil {
			return err
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: o.redis, DialTimeout: 2 * time.Second})
	defer rdb.Close()
	fmt.Printf("mailstack: mode=%s n=%d warmup=%d gap=%s\nmachine: %s; code %s\n",
		o.mode, o.n, o.warmup, o.gap, harness.Machine(ctx, rdb), harness.Revision(ctx, root))
	modes := []string{o.mode}
	if o.mode == "both" {
		modes = []string{"idle", "lmtp"}
	}
	for _, m := range modes {
		load := harness.LoadAvg()
		res, err := oneMode(ctx, o, root, filepath.Join(dir, m), m, rdb)
		if err != nil {
			return fmt.Errorf("mode %s: %w", m, err)
		}
		fmt.Printf("\n%s (load average %s -> %s)\n", m, load, harness.LoadAvg())
		fmt.Printf("  Postfix queued -> acknowledgement accepted from Postfix: %s\n", res.queued)
		fmt.Printf("  SMTP submission started -> acknowledgement accepted:      %s\n", res.submitted)
		fmt.Printf("  gateway's own share (mean of ticketgw_mail_latency_seconds{kind=\"ack\"}): %s over %d acknowledgements\n",
			harness.Ms(res.gatewayMean), res.gatewayCount)
		fmt.Printf("  gateway CPU per message %s\n", harness.Ms(res.cpu/time.Duration(o.n)))
	}
	return nil
}

type result struct {
	queued, submitted harness.Summary
	gatewayMean       time.Duration
	gatewayCount      int
	cpu               time.Duration
}

func oneMode(ctx context.Context, o options, root, dir, mode string, rdb *redis.Client) (res result, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	catcher, err := localmail.StartCatcher()
	if err != nil {
		return res, fmt.Errorf("start smtp catcher: %w", err)
	}
	defer catcher.Close()
	ports, err := mailstack.FreePorts(2)
	if err != nil {
		return res, err
	}
	httpPort, lmtpPort := ports[0], ports[1]
	catchHost, catchPort, err := net.SplitHostPort(catcher.Addr)
	if err != nil {
		return res, fmt.Errorf("catcher address: %w", err)
	}
	relay := "smtp:[" + catchHost + "]:" + catchPort
	transport := map[string]string{
		"acme.co.il": relay, "globex.example": relay, harness.QueueAddress: relay,
	}
	if mode == "lmtp" {
		transport[harness.SupportAddress] = "lmtp:inet:127.0.0.1:" + strconv.Itoa(lmtpPort)
	}
	stack, err := mailstack.Start(mailstack.Options{
		Users:     []string{harness.SupportAddress, harness.QueueAddress, "noc-lead@northwind-it.example"},
		Domains:   []string{"northwind-it.example", "acme.co.il", "globex.example"},
		Transport: transport,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, stack.Logs())
		}
		err = errors.Join(err, stack.Stop())
	}()

	cfg, err := config(httpPort, mode, lmtpPort)
	if err != nil {
		return res, err
	}
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return res, fmt.Errorf("write configuration: %w", err)
	}
	var tok [6]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return res, err
	}
	w := &harness.World{Redis: rdb, Prefix: "tg-bench-" + hex.EncodeToString(tok[:]) + ":"}
	defer func() {
		if _, derr := w.DeleteKeys(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, fmt.Errorf("clean up redis prefix %s: %w", w.Prefix, derr))
		}
	}()
	imapHost, imapPort, _ := net.SplitHostPort(stack.IMAPAddr)
	smtpHost, smtpPort, _ := net.SplitHostPort(stack.SMTPAddr)
	env := []string{
		"IMAP_HOST=" + imapHost, "IMAP_PORT=" + imapPort, "IMAP_TLS=none",
		"IMAP_USER=" + harness.SupportAddress, "IMAP_PASSWORD=" + stack.Password,
		"SMTP_HOST=" + smtpHost, "SMTP_PORT=" + smtpPort, "SMTP_TLS=none", "SMTP_AUTH=none",
		"SMTP_USER=", "SMTP_PASSWORD=",
		"REDIS_URL=redis://" + o.redis + "/0", "REDIS_PREFIX=" + w.Prefix,
	}
	child, err := harness.StartChild(harness.ChildOptions{Bin: o.bin, Config: cfgPath, Env: env,
		LogLevel: o.logLevel, LogPath: filepath.Join(dir, "gateway.log")})
	if err != nil {
		return res, err
	}
	defer func() {
		if _, _, serr := child.Stop(30 * time.Second); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = child.WaitReady(rctx)
	if err == nil && mode == "lmtp" {
		err = awaitListener(rctx, "127.0.0.1:"+strconv.Itoa(lmtpPort))
	}
	cancel()
	if err != nil {
		return res, err
	}

	gen, err := harness.NewGenerator(root, hex.EncodeToString(tok[:3]))
	if err != nil {
		return res, err
	}
	tr := harness.NewTracker(catcher)
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics"
	var (
		queued, submitted []time.Duration
		sum0              float64
		count0            int
		cpu0              time.Duration
	)
	for i := range o.warmup + o.n {
		if i == o.warmup {
			if sum0, count0, err = ackLatency(ctx, metricsURL); err != nil {
				return res, err
			}
			if cpu0, err = child.CPU(); err != nil {
				return res, err
			}
		}
		m, err := gen.Mail(i, time.Now())
		if err != nil {
			return res, err
		}
		t0 := time.Now()
		tq, err := submit(stack.SMTPAddr, m)
		if err != nil {
			return res, fmt.Errorf("submit message %d to postfix: %w", i, err)
		}
		wctx, cancel := context.WithTimeout(ctx, o.timeout)
		ack, _, err := tr.Wait(wctx, m.MessageID)
		cancel()
		if err != nil {
			return res, fmt.Errorf("message %d: %w (gateway problems: %s)", i, err, strings.Join(child.Problems(), " | "))
		}
		if i >= o.warmup {
			queued = append(queued, ack.At.Sub(tq))
			submitted = append(submitted, ack.At.Sub(t0))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(o.gap):
		}
	}
	cpu1, err := child.CPU()
	if err != nil {
		return res, err
	}
	sum1, count1, err := ackLatency(ctx, metricsURL)
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	res.queued, res.submitted = harness.Summarize(queued), harness.Summarize(submitted)
	res.gatewayCount = count1 - count0
	if res.gatewayCount > 0 {
		res.gatewayMean = time.Duration((sum1 - sum0) / float64(res.gatewayCount) * float64(time.Second))
	}
	return res, nil
}

// submit sends m to the support address through the SMTP server at addr
// and returns when the server answered 250 to the message's data (it is
// queued).
func submit(addr string, m harness.Mail) (queued time.Time, err error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return queued, fmt.Errorf("dial: %w", err)
	}
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		conn.Close()
		return queued, err
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("customer.bench.test"); err != nil {
		return queued, fmt.Errorf("ehlo: %w", err)
	}
	if err := c.SendMail(m.From, []string{harness.SupportAddress}, bytes.NewReader(m.Raw)); err != nil {
		return queued, fmt.Errorf("send: %w", err)
	}
	queued = time.Now()
	if err := c.Quit(); err != nil {
		return queued, fmt.Errorf("quit: %w", err)
	}
	return queued, nil
}

// config is examples/gateway.yaml with the metrics listener on httpPort and,
// in lmtp mode, an lmtp section listening on lmtpPort.
func config(httpPort int, mode string, lmtpPort int) ([]byte, error) {
	data, err := fs.ReadFile(examples.FS, "gateway.yaml")
	if err != nil {
		return nil, fmt.Errorf("read example configuration: %w", err)
	}
	const httpLine = "http: 127.0.0.1:9464"
	if bytes.Count(data, []byte(httpLine)) != 1 {
		return nil, fmt.Errorf("examples/gateway.yaml: no single %q to move", httpLine)
	}
	data = bytes.Replace(data, []byte(httpLine), []byte("http: 127.0.0.1:"+strconv.Itoa(httpPort)), 1)
	if mode == "lmtp" {
		if bytes.Contains(data, []byte("\nlmtp:")) {
			return nil, errors.New("examples/gateway.yaml already has an lmtp section")
		}
		data = fmt.Appendf(data, "\nlmtp:\n  listen: 127.0.0.1:%d\n", lmtpPort)
	}
	return data, nil
}

// awaitListener waits until addr accepts connections.
func awaitListener(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the gateway's lmtp listener %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ackLatency reads the sum (seconds) and count of the gateway's
// arrival-to-acknowledgement histogram from its /metrics.
func ackLatency(ctx context.Context, url string) (sum float64, count int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("read gateway metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("read gateway metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(name, `kind="ack"`) {
			continue
		}
		switch {
		case strings.HasPrefix(name, "ticketgw_mail_latency_seconds_sum{"):
			if sum, err = strconv.ParseFloat(val, 64); err != nil {
				return 0, 0, fmt.Errorf("parse %q: %w", line, err)
			}
		case strings.HasPrefix(name, "ticketgw_mail_latency_seconds_count{"):
			c, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("parse %q: %w", line, err)
			}
			count = int(c)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read gateway metrics: %w", err)
	}
	return sum, count, nil
}
