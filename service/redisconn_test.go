package service

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisConnHealthCheckOnlyWhenIdle: the socket is handed to go-redis's
// health check only once the connection has been idle for redisIdleCheck.
func TestRedisConnHealthCheckOnlyWhenIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			buf := make([]byte, 16)
			_, _ = c.Read(buf)
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &redisConn{TCPConn: nc.(*net.TCPConn), start: time.Now()}
	defer c.Close()
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	checked := func() bool {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		called := false
		if err := rc.Read(func(uintptr) bool { called = true; return true }); err != nil {
			t.Fatal(err)
		}
		return called
	}
	if checked() {
		t.Error("a connection used just now was checked")
	}
	c.last.Store(int64(time.Since(c.start) - redisIdleCheck)) // as if idle for a second
	if !checked() {
		t.Error("a connection idle for a second was not checked")
	}
	c.touch()
	if checked() {
		t.Error("checked again right after a write")
	}
}

// TestRedisDialerSurvivesKilledConnections: with the dialer, commands still
// succeed when the server closed the pooled connections, both when they
// were busy a moment ago (no check: go-redis retries on a new connection)
// and when they had been idle (the check drops them first). Real Redis.
func TestRedisDialerSurvivesKilledConnections(t *testing.T) {
	addr := testRedisAddr(t)
	opt := &redis.UniversalOptions{Addrs: []string{addr}, ClientName: "dialer-test-" + t.Name()}
	withRedisDialer(opt)
	if opt.Dialer == nil {
		t.Fatal("no dialer set for a plaintext connection")
	}
	rdb := redis.NewUniversalClient(opt)
	defer rdb.Close()
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kill := func() {
		t.Helper()
		list, err := admin.ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		killed := 0
		for _, line := range strings.Split(list, "\n") {
			if id, name := clientField(line, "id"), clientField(line, "name"); name == opt.ClientName {
				if n, err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Int(); err == nil {
					killed += n
				}
			}
		}
		if killed == 0 {
			t.Fatal("no connection of the client to kill")
		}
	}
	for _, idle := range []time.Duration{0, redisIdleCheck + 200*time.Millisecond} {
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		kill()
		time.Sleep(idle)
		if err := rdb.Set(ctx, "dialer-test:"+t.Name(), "x", time.Minute).Err(); err != nil {
			t.Fatalf("after the server closed the connection (idle %v): %v", idle, err)
		}
	}
}

// clientField returns field k of a CLIENT LIST line.
func clientField(line, k string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, k+"="); ok {
			return v
		}
	}
	return ""
}

// testRedisAddr is the Redis the tests use (REDIS_ADDR, as .ci/run sets).
func testRedisAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis at %s: %v", addr, err)
		}
		t.Skipf("redis at %s not reachable: %v", addr, err)
	}
	return addr
}
