package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			w.Write([]byte("ok\n"))
		case r.URL.Path == "/readyz" && ready.Load():
			w.Write([]byte("ready\n"))
		default:
			http.Error(w, "smtp: connection refused", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	cfg := strings.Replace(string(example), "http: 127.0.0.1:9464", "http: "+host, 1)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runMain(t, nil, "healthcheck", "-c", path); r.code != 0 || r.stdout != "/healthz: ok\n" {
		t.Errorf("healthz: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := runMain(t, nil, "healthcheck", "-c", path, "--ready"); r.code != 1 || !strings.Contains(r.stderr, "503") || !strings.Contains(r.stderr, "smtp: connection refused") {
		t.Errorf("readyz down: exit %d, %q", r.code, r.stderr)
	}
	ready.Store(true)
	if r := runMain(t, nil, "healthcheck", "-c", path, "--ready"); r.code != 0 {
		t.Errorf("readyz up: exit %d, %q", r.code, r.stderr)
	}
	srv.Close()
	if r := runMain(t, nil, "healthcheck", "-c", path); r.code != 1 {
		t.Errorf("gateway down: exit %d", r.code)
	}
}
