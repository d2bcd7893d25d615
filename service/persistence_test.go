package service

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTestRedis runs redis-server (from PATH) on a free port with args and
// kills it when the test ends. Without redis-server the test is skipped,
// unless CI=true, where it fails.
func startTestRedis(t *testing.T, args ...string) string {
	t.Helper()
	return startTestRedisConf(t, "", args...)
}

// startTestRedisConf is startTestRedis with a configuration file (a
// Sentinel needs one it can rewrite); conf "" runs without.
func startTestRedisConf(t *testing.T, conf string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not on PATH: %v", err)
		}
		t.Skipf("redis-server not on PATH: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var argv []string
	if conf != "" {
		argv = append(argv, conf)
	}
	argv = append(argv, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir())
	cmd := exec.Command("redis-server", append(argv, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || strings.Contains(fmt.Sprint(err), "NOAUTH") {
			return addr // answering (a password may be required)
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCheckPersistence(t *testing.T) {
	noConfig := []string{"--rename-command", "CONFIG", ""}
	tests := []struct {
		name string
		args []string
		want string // substring of the warning; "" for none
	}{
		{"nothing", []string{"--appendonly", "no", "--save", ""}, `appendonly no, save ""`},
		{"aof", []string{"--appendonly", "yes", "--save", ""}, ""},
		{"rdb", []string{"--appendonly", "no", "--save", "900 1"}, ""},
		{"config disabled, nothing", append([]string{"--appendonly", "no", "--save", ""}, noConfig...), "INFO shows aof_enabled:0"},
		{"config disabled, aof", append([]string{"--appendonly", "yes", "--save", ""}, noConfig...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startTestRedis(t, tt.args...)
			rdb := redis.NewClient(&redis.Options{Addr: addr})
			defer rdb.Close()
			got := CheckPersistence(context.Background(), rdb)
			switch {
			case tt.want == "" && got != "":
				t.Errorf("warning %q, want none", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("warning %q, want it to contain %q", got, tt.want)
			case tt.want != "" && !strings.Contains(got, "gateway rebuild"):
				t.Errorf("warning %q does not say what to do", got)
			}
		})
	}

	t.Run("cluster names the master", func(t *testing.T) {
		addr := startTestRedis(t, "--appendonly", "no", "--save", "", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(t.TempDir(), "nodes.conf"))
		ctx := context.Background()
		setup := redis.NewClient(&redis.Options{Addr: addr})
		defer setup.Close()
		if err := setup.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
			t.Fatalf("assign slots: %v", err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if info, _ := setup.ClusterInfo(ctx).Result(); strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("cluster not ready")
			}
		}
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}, IsClusterMode: true})
		defer rdb.Close()
		// A one-node cluster announces its address without the host.
		_, port, _ := net.SplitHostPort(addr)
		if got := CheckPersistence(ctx, rdb); !strings.Contains(got, ":"+port+": appendonly no") {
			t.Errorf("warning %q, want it to name the node on port %s", got, port)
		}
	})

	t.Run("unreachable redis is not reported", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1})
		defer rdb.Close()
		start := time.Now()
		if got := CheckPersistence(context.Background(), rdb); got != "" {
			t.Errorf("warning %q for a Redis that does not answer", got)
		}
		if d := time.Since(start); d > persistenceCheckTimeout+time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestInfoFields(t *testing.T) {
	info := "# Persistence\r\nloading:0\r\nrdb_last_bgsave_time_sec:-1\r\naof_enabled:0\r\nweird line\r\n"
	f := infoFields(info)
	if f["aof_enabled"] != "0" || f["rdb_last_bgsave_time_sec"] != "-1" || f["loading"] != "0" || len(f) != 3 {
		t.Errorf("infoFields = %v", f)
	}
}
