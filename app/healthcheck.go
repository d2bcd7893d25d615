package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealthcheck asks a running gateway whether it is alive (/healthz) or
// ready (/readyz), for container health checks where no curl exists (the
// image is distroless). The address is the configuration's service.http.
func cmdHealthcheck(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("healthcheck", env.Stderr, "-c FILE [--ready]")
	cfgPath := fs.String("c", "gateway.yaml", "configuration `file`")
	ready := fs.Bool("ready", false, "check /readyz (IMAP, Redis and SMTP reachable) instead of /healthz")
	if _, err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	addr := cfg.Service.HTTP
	if addr == "" {
		return fmt.Errorf("service.http is empty: the gateway serves no health endpoint")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("service.http %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(env.Stdout, "%s: ok\n", path)
	return nil
}
