// Package harness is the shared machinery of the benchmark programs under
// bench/: the mail world the gateway runs against (the in-process go-imap
// server and go-smtp catcher of package localmail, and an external Redis on
// loopback under a fresh random key prefix), the synthetic customer mail, the
// gateway run either as a separate process (so that its CPU time is its own)
// or in-process (so that a callback sees each stored ticket), and the
// statistics. Everything listens on and dials 127.0.0.1 only.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/examples"
	"github.com/northwind-it/ticketgw/localmail"
	"github.com/northwind-it/ticketgw/rules"
)

// Mailbox identity of the support mailbox in the benchmark world.
const (
	SupportAddress = "support@northwind-it.example"
	QueueAddress   = "helpdesk@northwind-it.example" // staff.queue of examples/gateway.yaml
	imapPassword   = "bench-password"
	Inbox          = "INBOX"
	Processed      = "Processed"
)

// World is one benchmark run's mail world: fresh servers and a fresh Redis
// key prefix, and the example configuration pointed at them.
type World struct {
	IMAP   *localmail.IMAPServer
	SMTP   *localmail.Catcher
	Redis  *redis.Client
	Prefix string
	// Vars are the environment variables examples/gateway.yaml expands to
	// reach this world; a child gateway gets them in its environment.
	Vars map[string]string
	// ConfigPath is examples/gateway.yaml written into Dir, for a child
	// `gateway run -c`.
	ConfigPath string
	Dir        string
}

// WorldOptions choose the Redis and where temporary files go.
type WorldOptions struct {
	RedisAddr string // host:port on loopback; default 127.0.0.1:6379
	Dir       string // an existing directory for the config file
}

// NewWorld starts the servers, checks that Redis answers and writes the
// configuration. Close undoes all of it.
func NewWorld(ctx context.Context, opt WorldOptions) (*World, error) {
	if opt.RedisAddr == "" {
		opt.RedisAddr = "127.0.0.1:6379"
	}
	if err := requireLoopback(opt.RedisAddr); err != nil {
		return nil, fmt.Errorf("redis address: %w", err)
	}
	w := &World{Dir: opt.Dir}
	var err error
	if w.IMAP, err = localmail.StartIMAP(SupportAddress, imapPassword, localmail.IMAPOptions{Folders: []string{Processed}}); err != nil {
		return nil, fmt.Errorf("start imap server: %w", err)
	}
	if w.SMTP, err = localmail.StartCatcher(); err != nil {
		w.Close(ctx)
		return nil, fmt.Errorf("start smtp catcher: %w", err)
	}
	w.Redis = redis.NewClient(&redis.Options{Addr: opt.RedisAddr, DialTimeout: 2 * time.Second})
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = w.Redis.Ping(pctx).Err()
	cancel()
	if err != nil {
		w.Close(ctx)
		return nil, fmt.Errorf("redis at %s (the benchmarks need a real Redis): %w", opt.RedisAddr, err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		w.Close(ctx)
		return nil, fmt.Errorf("random key prefix: %w", err)
	}
	w.Prefix = "tg-bench-" + hex.EncodeToString(rnd[:]) + ":"

	imapHost, imapPort, _ := net.SplitHostPort(w.IMAP.Addr)
	smtpHost, smtpPort, _ := net.SplitHostPort(w.SMTP.Addr)
	w.Vars = map[string]string{
		"IMAP_HOST": imapHost, "IMAP_PORT": imapPort, "IMAP_TLS": "none",
		"IMAP_USER": SupportAddress, "IMAP_PASSWORD": imapPassword,
		"SMTP_HOST": smtpHost, "SMTP_PORT": smtpPort, "SMTP_TLS": "none", "SMTP_AUTH": "none",
		"SMTP_USER": SupportAddress, "SMTP_PASSWORD": "",
		"REDIS_URL": "redis://" + opt.RedisAddr + "/0", "REDIS_PREFIX": w.Prefix,
	}
	if opt.Dir != "" {
		data, err := exampleConfig()
		if err != nil {
			w.Close(ctx)
			return nil, err
		}
		w.ConfigPath = filepath.Join(opt.Dir, "gateway.yaml")
		if err := os.WriteFile(w.ConfigPath, data, 0o600); err != nil {
			w.Close(ctx)
			return nil, fmt.Errorf("write configuration: %w", err)
		}
	}
	return w, nil
}

// Config loads examples/gateway.yaml pointed at the world, as the gateway
// itself would (for the in-process mode).
func (w *World) Config() (*rules.Config, error) {
	data, err := exampleConfig()
	if err != nil {
		return nil, err
	}
	cfg, err := rules.Parse("examples/gateway.yaml", data, rules.LoadOptions{
		Getenv: func(k string) (string, bool) { v, ok := w.Vars[k]; return v, ok },
	})
	if err != nil {
		return nil, fmt.Errorf("load example configuration: %w", err)
	}
	return cfg, nil
}

// exampleHTTP is the metrics address of examples/gateway.yaml. The
// benchmarks serve it on an ephemeral port instead, so that they never
// collide with another gateway on the machine.
const exampleHTTP = "http: 127.0.0.1:9464"

// exampleConfig is examples/gateway.yaml with service.http on
// 127.0.0.1:0.
func exampleConfig() ([]byte, error) {
	data, err := fs.ReadFile(examples.FS, "gateway.yaml")
	if err != nil {
		return nil, fmt.Errorf("read example configuration: %w", err)
	}
	if bytes.Count(data, []byte(exampleHTTP)) != 1 {
		return nil, fmt.Errorf("examples/gateway.yaml: no single %q to move to an ephemeral port", exampleHTTP)
	}
	return bytes.Replace(data, []byte(exampleHTTP), []byte("http: 127.0.0.1:0"), 1), nil
}

// Env returns Vars as KEY=value strings.
func (w *World) Env() []string {
	out := make([]string, 0, len(w.Vars))
	for k, v := range w.Vars {
		out = append(out, k+"="+v)
	}
	return out
}

// DeleteKeys removes every Redis key under the world's prefix and returns
// how many it removed.
func (w *World) DeleteKeys(ctx context.Context) (int, error) {
	if w.Redis == nil || w.Prefix == "" {
		return 0, nil
	}
	n := 0
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.Redis.Del(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("delete keys: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	iter := w.Redis.Scan(ctx, 0, w.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("scan keys %s*: %w", w.Prefix, err)
	}
	return n, flush()
}

// Close deletes the world's Redis keys and stops the servers. It reports
// the number of keys deleted and any error doing so.
func (w *World) Close(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	n, err := w.DeleteKeys(ctx)
	if w.Redis != nil {
		w.Redis.Close()
	}
	if w.IMAP != nil {
		w.IMAP.Close()
	}
	if w.SMTP != nil {
		w.SMTP.Close()
	}
	return n, err
}

// requireLoopback refuses an address that is not on the local machine.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New(addr + ": the benchmarks only use loopback addresses")
}

// ModuleRoot finds the ticketgw module's root directory from the working
// directory upwards.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/northwind-it/ticketgw\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmarks inside the ticketgw module (no go.mod of github.com/northwind-it/ticketgw above the working directory)")
		}
		dir = parent
	}
}

// RedisCPU is the Redis server's user+system CPU time so far (INFO cpu).
// The server may be shared with other clients, so a difference of two
// readings is an upper bound of what the benchmark caused.
func (w *World) RedisCPU(ctx context.Context) (time.Duration, error) {
	info, err := w.Redis.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info cpu: %w", err)
	}
	return parseRedisCPU(info)
}

// parseRedisCPU adds used_cpu_user and used_cpu_sys of an INFO cpu reply.
func parseRedisCPU(info string) (time.Duration, error) {
	var total time.Duration
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		sec, err := strconv.ParseFloat(v, 64)
		if err != nil || sec < 0 {
			return 0, fmt.Errorf("redis info cpu: %s %q: not a number of seconds", k, v)
		}
		total += time.Duration(sec * float64(time.Second))
		found++
	}
	if found != 2 {
		return 0, errors.New("redis info cpu: used_cpu_user or used_cpu_sys missing")
	}
	return total, nil
}

// Machine describes where a benchmark ran: CPU model and count, Go
// version and, when rdb is not nil, the Redis server's version.
func Machine(ctx context.Context, rdb *redis.Client) string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	s := fmt.Sprintf("%s, %d CPUs, %s %s/%s", model, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if rdb != nil {
		if info, err := rdb.Info(ctx, "server").Result(); err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					s += ", Redis " + v
				}
			}
		}
	}
	return s
}

// Revision names the code measured: the module's git commit, marked
// "+changes" when the working tree differs from it ("unknown" without git).
func Revision(ctx context.Context, root string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "+changes"
	}
	return rev
}
