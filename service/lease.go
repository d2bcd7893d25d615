package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Leaser is the mailbox lease of the store (implemented by *store.Store).
type Leaser interface {
	AcquireLease(ctx context.Context, mailbox, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, mailbox, owner string) error
}

// DefaultLeaseTTL is how long a mailbox lease lasts without renewal: a
// standby instance takes the mailbox over at most this long after the holder
// died.
const DefaultLeaseTTL = 15 * time.Second

// InstanceID names this process in leases: host, pid and a random suffix.
func InstanceID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// RunLeased runs run(ctx) only while this instance holds the mailbox's lease
// in Redis, so that exactly one of several instances reads a mailbox (SPEC
// §5, §9). It waits as a standby until the lease is free, renews it every
// ttl/3 while run works, and cancels run when a renewal fails (the lease may
// be lost: another instance may take over). It returns when ctx ends,
// releasing the lease so a standby takes over at once.
func RunLeased(ctx context.Context, l Leaser, mailbox, owner string, ttl time.Duration, log *slog.Logger, run func(context.Context) error) error {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	every := ttl / 3
	standbyLogged := false
	for {
		ok, err := l.AcquireLease(ctx, mailbox, owner, ttl)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn("mailbox lease: redis unreachable; waiting", "mailbox", mailbox, "err", err)
		} else if ok {
			log.Info("mailbox lease taken: reading the mailbox", "mailbox", mailbox, "owner", owner)
			standbyLogged = false
			if err := holdAndRun(ctx, l, mailbox, owner, ttl, every, log, run); err != nil {
				return err
			}
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				if err := l.ReleaseLease(rctx, mailbox, owner); err != nil {
					log.Warn("mailbox lease: release failed; it expires by itself", "mailbox", mailbox, "err", err)
				}
				cancel()
				return nil
			}
			continue
		} else if !standbyLogged {
			log.Info("mailbox lease held by another instance: standing by", "mailbox", mailbox)
			standbyLogged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// errLeaseLost stops a run whose lease could not be renewed.
var errLeaseLost = errors.New("mailbox lease lost")

func holdAndRun(ctx context.Context, l Leaser, mailbox, owner string, ttl, every time.Duration, log *slog.Logger, run func(context.Context) error) error {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- run(rctx) }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if context.Cause(rctx) == errLeaseLost {
				return nil // stand by again
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		case <-tick.C:
			actx, acancel := context.WithTimeout(ctx, every)
			ok, err := l.AcquireLease(actx, mailbox, owner, ttl)
			acancel()
			if ctx.Err() != nil {
				continue // shutting down: run ends with ctx
			}
			if err != nil || !ok {
				log.Warn("mailbox lease could not be renewed: stopping this mailbox", "mailbox", mailbox, "held_by_other", err == nil, "err", err)
				cancel(errLeaseLost)
			}
		}
	}
}
