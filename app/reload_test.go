package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/demo"
	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/service"
)

// TestReloadKeepsOldConfigOnError runs the service, breaks its configuration
// file and asks for a reload (what SIGHUP does): the old configuration keeps
// working. A valid change is then picked up.
func TestReloadKeepsOldConfigOnError(t *testing.T) {
	_, prefix, url := testRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	w, err := demo.NewWorld(ctx, demo.WorldOptions{RedisURL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	imapHost, imapPort, _ := net.SplitHostPort(w.IMAP.Addr)
	smtpHost, smtpPort, _ := net.SplitHostPort(w.SMTP.Addr)
	vars := map[string]string{
		"IMAP_HOST": imapHost, "IMAP_PORT": imapPort, "IMAP_TLS": "none", "IMAP_USER": demo.SupportAddress,
		"IMAP_PASSWORD": "demo-password", "SMTP_HOST": smtpHost, "SMTP_PORT": smtpPort, "SMTP_TLS": "none",
		"SMTP_AUTH": "none", "REDIS_URL": url, "REDIS_PREFIX": prefix,
	}
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	// Serve /metrics on a free port: the example's 9464 may be taken. The
	// port is chosen here so that the test can scrape it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	good := []byte(strings.Replace(string(example), "http: 127.0.0.1:9464", "http: "+httpAddr, 1))
	if string(good) == string(example) {
		t.Fatal("the example configuration's http line changed; update this test")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr, logs syncBuffer
	env := Env{Stdout: &stderr, Stderr: &stderr, Getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, Now: time.Now}
	var mu sync.Mutex
	var reloads []bool
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runWithReload(ctx, path, env, slog.New(slog.NewTextHandler(&logs, nil)), reload, service.Options{
			OnReload: func(ok bool) { mu.Lock(); reloads = append(reloads, ok); mu.Unlock() },
		})
	}()

	deliver := func(n int) string {
		t.Helper()
		raw := []byte("From: Yossi <yossi@acme.co.il>\r\nTo: " + demo.SupportAddress + "\r\nSubject: printer " +
			string(rune('A'+n)) + "\r\nMessage-ID: <reload-" + string(rune('a'+n)) + "@acme.co.il>\r\n\r\nThe printer is not working.\r\n")
		if err := w.IMAP.Deliver("INBOX", raw, time.Date(2026, 11, 30, 7, 0, n, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		// The ack and the staff copy of this message.
		mails, err := w.SMTP.WaitFor(ctx, 2*(n+1))
		if err != nil {
			t.Fatalf("message %d not handled: %v\nlog:\n%s", n, err, logs.String())
		}
		for _, m := range mails {
			pm := ingest.Parse(bytes.NewReader(m.Raw), ingest.DefaultLimits())
			if v, _ := pm.Header("Auto-Submitted"); v == "auto-replied" && strings.Contains(pm.Subject, "printer "+string(rune('A'+n))) {
				return pm.From.Name
			}
		}
		t.Fatalf("no acknowledgement for message %d", n)
		return ""
	}
	if name := deliver(0); name != "Northwind IT Support" {
		t.Errorf("ack from %q", name)
	}

	// A broken file: the reload is refused, the old configuration goes on.
	if err := os.WriteFile(path, []byte("service: {address: [oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reloads) == 2 })
	if name := deliver(1); name != "Northwind IT Support" {
		t.Errorf("after a failed reload the ack came from %q", name)
	}
	if !strings.Contains(stderr.String(), "gateway.yaml:") {
		t.Errorf("the broken file's errors were not reported with a location:\n%s", stderr.String())
	}

	// A valid change is applied.
	changed := strings.Replace(string(good), "name: Northwind IT Support", "name: Northwind Helpdesk", 1)
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reloads) == 3 })
	if name := deliver(2); name != "Northwind Helpdesk" {
		t.Errorf("after a good reload the ack came from %q", name)
	}
	// Scraped from the new gateway's /metrics: the counters went on across
	// the reload (they used to start again at zero), and the IMAP
	// collector is the new gateway's, whose session handled only the last
	// message (the old one's would say 2).
	waitFor(t, func() bool { return scrapeSum(t, httpAddr, "ticketgw_imap_messages_handled_total") == 1 })
	if n := scrapeSum(t, httpAddr, "ticketgw_tickets_opened_total"); n != 3 {
		t.Errorf("tickets opened = %v after the reload, want the 3 of before and after", n)
	}
	if v := scrapeSum(t, httpAddr, "ticketgw_config_last_reload_success"); v != 1 {
		t.Errorf("config_last_reload_success = %v after a good reload, want 1", v)
	}

	// A good reload, then at once a broken one: the gauge says the last
	// one failed (review finding: the new gateway's start could set it
	// back to 1 after the failure was recorded).
	good2 := strings.Replace(changed, "name: Northwind Helpdesk", "name: Northwind Service Desk", 1)
	if err := os.WriteFile(path, []byte(good2), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reloads) == 4 })
	if err := os.WriteFile(path, []byte("service: {address: [oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reloads) == 5 })
	waitFor(t, func() bool { return deliverable(httpAddr) })
	time.Sleep(200 * time.Millisecond) // the new gateway has started by now
	if v := scrapeSum(t, httpAddr, "ticketgw_config_last_reload_success"); v != 0 {
		t.Errorf("config_last_reload_success = %v after a failed reload, want 0", v)
	}
	mu.Lock()
	if got, want := fmt.Sprint(reloads), "[true false true true false]"; got != want {
		t.Errorf("reload outcomes %s, want %s", got, want)
	}
	mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 15 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// deliverable reports whether the gateway at addr serves /metrics (the
// gateway a reload started is running).
func deliverable(addr string) bool {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrapeSum sums the samples of a metric family on the /metrics of the
// gateway serving at addr.
func scrapeSum(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", l, err)
		}
		sum += v
	}
	return sum
}
