package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tests use a real Redis: REDIS_ADDR (default 127.0.0.1:6379). Each test
// uses its own random key prefix and deletes its keys afterwards; the
// shared server is never flushed. Without Redis the tests are skipped,
// unless CI=true, where they fail.

func redisAddr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// redisProbe pings the test Redis once per test binary, quickly (no
// retries), so that a missing server costs one timeout, not one per test.
var redisProbe = sync.OnceValue(func() error {
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
})

func testClient(tb testing.TB) *redis.Client {
	tb.Helper()
	if err := redisProbe(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis at %s: %v", redisAddr(), err)
		}
		tb.Skipf("redis at %s not reachable: %v", redisAddr(), err)
	}
	return redis.NewClient(&redis.Options{Addr: redisAddr()})
}

func randomPrefix(tb testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return "tgtest:" + hex.EncodeToString(b[:]) + ":"
}

// newTestStore returns a Store on the shared Redis with a fresh prefix and
// the client, whose keys are deleted when the test ends.
func newTestStore(tb testing.TB, opts ...Option) (*Store, *redis.Client) {
	tb.Helper()
	rdb := testClient(tb)
	prefix := randomPrefix(tb)
	tb.Cleanup(func() {
		deleteKeys(tb, rdb, prefix)
		_ = rdb.Close()
	})
	return New(rdb, prefix, opts...), rdb
}

func deleteKeys(tb testing.TB, rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				tb.Errorf("delete test keys: %v", err)
			}
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			flush()
		}
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("scan test keys: %v", err)
	}
	flush()
}

// redisServer is a redis-server started by a test on a free port.
type redisServer struct {
	tb   testing.TB
	port int
	args []string
	cmd  *exec.Cmd
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedisServer runs redis-server (from PATH) without persistence;
// extra arguments are appended. It is killed when the test ends.
func startRedisServer(tb testing.TB, extra ...string) *redisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server not on PATH: %v", err)
		}
		tb.Skipf("redis-server not on PATH: %v", err)
	}
	port := freePort(tb)
	s := &redisServer{tb: tb, port: port, args: append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", tb.TempDir(),
	}, extra...)}
	s.start()
	tb.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *redisServer) start() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server", s.args...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on %s did not start: %v", s.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server (only the process this test started) and waits.
func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// clusterDir returns cluster arguments for a one-node Redis Cluster whose
// state lives in a temporary directory.
func clusterArgs(tb testing.TB) []string {
	return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(tb.TempDir(), "nodes.conf")}
}
