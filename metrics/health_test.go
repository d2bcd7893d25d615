package metrics_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/northwind-it/ticketgw/ingest"
	"github.com/northwind-it/ticketgw/metrics"
)

// synctestRun runs f in a synctest bubble: time moves only when every
// goroutine of the bubble waits, so TTLs and timeouts take no real time.
func synctestRun(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, f)
}

// probe is a check whose result the test sets; it counts its calls.
type probe struct {
	calls atomic.Int64
	err   atomic.Pointer[error]
	delay time.Duration
}

func (p *probe) fail(err error) {
	if err == nil {
		p.err.Store(nil)
		return
	}
	p.err.Store(&err)
}

func (p *probe) Probe(ctx context.Context) error {
	p.calls.Add(1)
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

func TestReadiness(t *testing.T) {
	for _, tt := range []struct {
		name  string
		errs  [3]error
		wants []string // substrings of the joined error; nil: ready
	}{
		{"all up", [3]error{}, nil},
		{"smtp down", [3]error{nil, nil, errors.New("dial tcp 127.0.0.1:25: connection refused")},
			[]string{"smtp: dial tcp 127.0.0.1:25: connection refused"}},
		{"redis and smtp down, in order", [3]error{nil, errors.New("ping redis: EOF"), errors.New("535 auth")},
			[]string{"redis: ping redis: EOF\nsmtp: 535 auth"}},
		{"imap down", [3]error{errors.New("x not connected"), nil, nil}, []string{"imap: x not connected"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ps [3]probe
			for i := range ps {
				ps[i].fail(tt.errs[i])
			}
			r := metrics.NewReadiness(time.Second,
				metrics.Check{Name: "imap", Probe: ps[0].Probe},
				metrics.Check{Name: "redis", Probe: ps[1].Probe},
				metrics.Check{Name: "smtp", Probe: ps[2].Probe})
			err := r.Check(context.Background())
			if tt.wants == nil {
				if err != nil {
					t.Fatalf("not ready: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ready, want not ready")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestReadinessCache: a result is reused for the check's TTL, failures
// included, and a hung probe ends at the timeout.
func TestReadinessCache(t *testing.T) {
	synctestRun(t, func(t *testing.T) {
		smtp, redis := &probe{}, &probe{}
		r := metrics.NewReadiness(2*time.Second,
			metrics.Check{Name: "redis", Probe: redis.Probe},
			metrics.Check{Name: "smtp", Probe: smtp.Probe, TTL: 15 * time.Second})
		ctx := context.Background()
		if err := r.Check(ctx); err != nil {
			t.Fatal(err)
		}
		smtp.fail(errors.New("connection refused"))
		time.Sleep(10 * time.Second)
		if err := r.Check(ctx); err != nil {
			t.Errorf("within the SMTP TTL: %v, want the cached success", err)
		}
		time.Sleep(6 * time.Second)
		if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "smtp: connection refused") {
			t.Errorf("past the TTL: %v, want smtp down", err)
		}
		smtp.fail(nil)
		time.Sleep(time.Second)
		if err := r.Check(ctx); err == nil {
			t.Error("a failure is cached for the TTL too")
		}
		if n := smtp.calls.Load(); n != 2 {
			t.Errorf("smtp probed %d times, want 2", n)
		}
		if n := redis.calls.Load(); n != 4 {
			t.Errorf("redis (no TTL) probed %d times, want 4", n)
		}

		// A probe that hangs is cut at the timeout, even when the request
		// that started it goes away earlier.
		hung := &probe{delay: time.Hour}
		r = metrics.NewReadiness(2*time.Second, metrics.Check{Name: "redis", Probe: hung.Probe})
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := r.Check(cctx)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hung probe: %v, want a deadline error", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("hung probe took %v, want the 2s timeout", d)
		}
	})
}

// TestReadinessConcurrent: simultaneous requests share one probe.
func TestReadinessConcurrent(t *testing.T) {
	synctestRun(t, func(t *testing.T) {
		p := &probe{delay: time.Second}
		r := metrics.NewReadiness(0, metrics.Check{Name: "smtp", Probe: p.Probe, TTL: time.Minute})
		done := make(chan error, 8)
		for range 8 {
			go func() { done <- r.Check(context.Background()) }()
		}
		for range 8 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		if n := p.calls.Load(); n != 1 {
			t.Errorf("%d probes for 8 concurrent checks, want 1", n)
		}
	})
}

func TestIMAPCheck(t *testing.T) {
	up := &fakeSource{st: ingest.SourceStats{Connected: true, Mode: "idle"}}
	down := &fakeSource{}
	readsC := false // another instance holds c@x's lease
	check := metrics.IMAPCheck([]metrics.Mailbox{
		{Name: "a@x", Source: up},
		{Name: "b@x", Source: down},
		{Name: "c@x", Source: down, Reading: func() bool { return readsC }},
	})
	if check.Name != "imap" {
		t.Errorf("name %q", check.Name)
	}
	err := check.Probe(context.Background())
	if err == nil || err.Error() != "not connected: b@x" {
		t.Errorf("err %v, want b@x named (c@x stands by)", err)
	}
	readsC = true // now this instance reads c@x too
	if err := check.Probe(context.Background()); err == nil || err.Error() != "not connected: b@x, c@x" {
		t.Errorf("err %v, want b@x, c@x", err)
	}
	down.set(ingest.SourceStats{Connected: true})
	if err := check.Probe(context.Background()); err != nil {
		t.Errorf("all connected: %v", err)
	}
}
