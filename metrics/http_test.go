package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/metrics"
)

func get(t *testing.T, h http.Handler, method, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestHandler(t *testing.T) {
	m := metrics.New()
	m.MessageIngested("a@x", "ticket")
	smtp := &probe{}
	h := m.Handler(metrics.NewReadiness(time.Second, metrics.Check{Name: "smtp", Probe: smtp.Probe}), nil)

	for _, tt := range []struct {
		name, method, path string
		code               int
		body               string // substring
	}{
		{"metrics", "GET", "/metrics", 200, `ticketgw_messages_ingested_total{mailbox="a@x",outcome="ticket"} 1`},
		{"runtime metrics too", "GET", "/metrics", 200, "go_goroutines "},
		{"liveness", "GET", "/healthz", 200, "ok\n"},
		{"readiness", "GET", "/readyz", 200, "ready\n"},
		{"HEAD works like GET", "HEAD", "/healthz", 200, ""},
		{"no POST", "POST", "/metrics", 405, ""},
		{"unknown path", "GET", "/debug/pprof/", 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := get(t, h, tt.method, tt.path)
			if code != tt.code || !strings.Contains(body, tt.body) {
				t.Errorf("%s %s: %d %q, want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.body)
			}
		})
	}

	smtp.fail(errors.New("dial tcp 127.0.0.1:25: connect: connection refused"))
	code, body, hdr := get(t, h, "GET", "/readyz")
	if code != http.StatusServiceUnavailable || body != "not ready\nsmtp: dial tcp 127.0.0.1:25: connect: connection refused\n" {
		t.Errorf("smtp down: %d %q", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	smtp.fail(errors.New(strings.Repeat("x", 1000)))
	if _, body, _ := get(t, h, "GET", "/readyz"); len(body) > 400 {
		t.Errorf("long error not cut: %d bytes", len(body))
	}
	if code, body, _ := get(t, m.Handler(nil, nil), "GET", "/readyz"); code != 200 {
		t.Errorf("no checks: %d %q", code, body)
	}
}

// TestServe serves on a real socket and stops with the context: the
// listener is closed and Serve returns nil.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, ln, m.Handler(nil, nil), nil) }()
	url := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ticketgw_config_last_reload_success") {
		t.Errorf("GET /metrics: %d\n%.300s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if _, err := client.Get(url + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// TestServeListenerFails reports the error that stops the server.
func TestServeListenerFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = metrics.Serve(context.Background(), ln, http.NotFoundHandler(), nil)
	if err == nil || !strings.Contains(err.Error(), "serve http on 127.0.0.1:") {
		t.Errorf("err %v, want the serve error", err)
	}
}
