package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Check is one dependency that must be reachable for the gateway to be
// ready.
type Check struct {
	Name  string // e.g. "redis"; named in the /readyz body when it fails
	Probe func(ctx context.Context) error
	// TTL is how long a result (success or failure) is reused, so that
	// frequent readiness probes do not open a session each time (0: probe
	// on every request).
	TTL time.Duration
}

// Readiness runs the checks of /readyz: all of them at once, each bounded
// by a timeout, each result cached for its check's TTL.
type Readiness struct {
	timeout time.Duration
	checks  []*cachedCheck
}

type cachedCheck struct {
	Check
	// lock is held during a probe, so that concurrent requests share it (a
	// channel, so that a waiting request can give up).
	lock chan struct{}
	at   time.Time // when err was obtained; zero: never
	err  error
}

// DefaultCheckTimeout bounds one probe.
const DefaultCheckTimeout = 3 * time.Second

// NewReadiness returns a Readiness over checks; timeout bounds each probe
// (DefaultCheckTimeout when 0).
func NewReadiness(timeout time.Duration, checks ...Check) *Readiness {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	r := &Readiness{timeout: timeout}
	for _, c := range checks {
		r.checks = append(r.checks, &cachedCheck{Check: c, lock: make(chan struct{}, 1)})
	}
	return r
}

// Check runs every check (or reuses a fresh result) and returns nil when
// all pass, else the failures joined, each as "name: error", in the order
// the checks were given.
func (r *Readiness) Check(ctx context.Context) error {
	errs := make([]error, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() {
			if err := c.result(ctx, r.timeout); err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// result returns the cached result while fresh, else probes. The probe does
// not end when the request that started it is cancelled (its result is
// cached for the next one), only at the timeout; a request waiting for
// another's probe gives up when cancelled.
func (c *cachedCheck) result(ctx context.Context, timeout time.Duration) error {
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.lock }()
	if !c.at.IsZero() && time.Since(c.at) < c.TTL {
		return c.err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := c.Probe(pctx)
	if err == nil && pctx.Err() != nil {
		err = pctx.Err()
	}
	c.at, c.err = time.Now(), err
	return err
}

// IMAPCheck is the readiness check of the IMAP sources: every mailbox this
// instance reads has a session with its folder selected. A mailbox whose
// lease another instance holds is not this instance's to read and does not
// count against it.
func IMAPCheck(mailboxes []Mailbox) Check {
	return Check{Name: "imap", Probe: func(context.Context) error {
		var down []string
		for _, mb := range mailboxes {
			if mb.reading() && !mb.Source.Stats().Connected {
				down = append(down, mb.Name)
			}
		}
		if len(down) > 0 {
			return fmt.Errorf("not connected: %s", strings.Join(down, ", "))
		}
		return nil
	}}
}
