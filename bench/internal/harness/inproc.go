package harness

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"

	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/service"
)

// ProfileLabel is the pprof label set on every goroutine of an in-process
// gateway (and inherited by the goroutines it starts: IMAP client, SMTP
// sends, Redis dials), so that `go tool pprof -tagfocus side=gateway`
// separates the gateway's CPU from the servers sharing the process.
const ProfileLabel = "side"

// InProcess is `gateway run` inside the benchmark process.
type InProcess struct {
	G    *service.Gateway
	stop context.CancelFunc
	done chan error
}

// StartInProcess builds the gateway exactly as `gateway run` does (same
// configuration, built-in templates) but on the world's Redis client and with
// onOutcome called after each message is stored, and runs it under the
// pprof label side=gateway.
func StartInProcess(ctx context.Context, w *World, log *slog.Logger, onOutcome func(service.Outcome)) (*InProcess, error) {
	cfg, err := w.Config()
	if err != nil {
		return nil, err
	}
	tmpl, err := notify.LoadTemplates(cfg.Templates.Dir)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	if err := tmpl.Check(); err != nil {
		return nil, fmt.Errorf("check templates: %w", err)
	}
	g, err := service.New(ctx, cfg, tmpl, log, service.Options{Redis: w.Redis, OnOutcome: onOutcome})
	if err != nil {
		return nil, fmt.Errorf("build gateway: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	p := &InProcess{G: g, stop: stop, done: make(chan error, 1)}
	go pprof.Do(runCtx, pprof.Labels(ProfileLabel, "gateway"), func(ctx context.Context) {
		p.done <- g.Run(ctx)
	})
	return p, nil
}

// Stop stops the gateway gracefully and waits for it.
func (p *InProcess) Stop() error {
	p.stop()
	err := <-p.done
	p.G.Close()
	if err != nil {
		return fmt.Errorf("gateway run: %w", err)
	}
	return nil
}
