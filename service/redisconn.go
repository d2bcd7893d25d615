package service

import (
	"context"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisIdleCheck is how long a pooled Redis connection must have been idle
// before go-redis's health check looks at it.
const redisIdleCheck = time.Second

// withRedisDialer makes opt's plaintext connections skip go-redis's health
// check while they are busy. go-redis (v9.23) peeks at the socket
// (recvfrom with MSG_PEEK) every time it takes a connection from its pool,
// to notice one the server closed: one system call per round trip, which
// showed in the profile of a backlog drain (~13 µs each on the benchmark
// host, ~8 round trips per message). A connection that carried a command
// or a reply within the last second was not closed by an idle timeout, so
// the peek is left for connections idle longer; a connection that broke
// meanwhile fails its command with a network error, which go-redis retries
// on a new connection, as it must do anyway for one that breaks right
// after the check. TLS connections are left to go-redis's own dialer
// (its check does not look inside TLS either). opt.Dialer, when set, is
// kept.
func withRedisDialer(opt *redis.UniversalOptions) {
	if opt.Dialer != nil || opt.TLSConfig != nil {
		return
	}
	timeout := opt.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second // go-redis's default
	}
	dial := redis.NewDialer(&redis.Options{DialTimeout: timeout})
	opt.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		return &redisConn{TCPConn: tc, start: time.Now()}, nil
	}
}

// redisConn is a Redis TCP connection that remembers when it last carried
// data, and hides the socket from go-redis's health check until it has been
// idle for redisIdleCheck.
type redisConn struct {
	*net.TCPConn
	start time.Time    // when it was dialled (time.Since is monotonic)
	last  atomic.Int64 // when it last carried data, in nanoseconds since start
}

func (c *redisConn) touch() { c.last.Store(int64(time.Since(c.start))) }

func (c *redisConn) idle() time.Duration {
	return time.Since(c.start) - time.Duration(c.last.Load())
}

func (c *redisConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *redisConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// SyscallConn is what go-redis's health check asks for: while the
// connection is busy, a RawConn whose Read reports the socket healthy
// without a system call.
func (c *redisConn) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return nil, err
	}
	return redisRawConn{RawConn: rc, c: c}, nil
}

type redisRawConn struct {
	syscall.RawConn
	c *redisConn
}

func (r redisRawConn) Read(f func(fd uintptr) bool) error {
	if r.c.idle() < redisIdleCheck {
		return nil
	}
	return r.RawConn.Read(f)
}
