package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/northwind-it/ticketgw/metrics"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/rules"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

func cmdRun(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("run", env.Stderr, "-c FILE [--log-format text|json] [--log-level debug|info|warn|error]")
	cfgPath := fs.String("c", "gateway.yaml", "configuration `file`")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if _, err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := newLogger(env.Stderr, level, *logFormat == "json")
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return runWithReload(ctx, *cfgPath, env, log, reload, service.Options{Now: env.Now})
}

// loaded is a configuration with everything built from it that can fail.
type loaded struct {
	cfg  *rules.Config
	tmpl *notify.Templates
}

// build loads and validates the configuration and templates, printing every
// error as file:line:col: message.
func build(path string, env Env) (loaded, error) {
	cfg, err := loadConfig(path, env)
	if err != nil {
		return loaded{}, err
	}
	tmpl, err := loadTemplates(cfg, env)
	if err != nil {
		return loaded{}, err
	}
	return loaded{cfg, tmpl}, nil
}

// runWithReload runs the gateway until ctx ends. On every value from reload
// it builds and validates the configuration and templates again; only when
// that succeeds is the running gateway stopped gracefully and a new one
// started (the mailbox keeps whatever arrives in between). A broken
// configuration is reported and the old one keeps running.
func runWithReload(ctx context.Context, path string, env Env, log *slog.Logger, reload <-chan struct{}, opt service.Options) error {
	if opt.Metrics == nil {
		// One set of metrics for every gateway a reload builds: the
		// counters go on across reloads.
		opt.Metrics = metrics.New()
	}
	cur, err := build(path, env)
	if err != nil {
		return err
	}
	g, err := service.New(ctx, cur.cfg, cur.tmpl, log, opt)
	if err != nil {
		return err
	}
	g.ConfigReloaded(true)
	for {
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- g.Run(runCtx) }()
		var next *service.Gateway
		for next == nil {
			select {
			case err := <-done:
				stop()
				g.Close()
				return err
			case <-reload:
				nc, err := build(path, env)
				if err != nil {
					log.Error("reload failed: keeping the running configuration", "err", err)
					g.ConfigReloaded(false)
					continue
				}
				// Everything that can fail is built before the running
				// gateway is stopped (Redis unreachable at this moment
				// must not end the process).
				ng, err := service.New(ctx, nc.cfg, nc.tmpl, log, opt)
				if err != nil {
					log.Error("reload failed: keeping the running configuration", "err", err)
					g.ConfigReloaded(false)
					continue
				}
				cur, next = nc, ng
			}
		}
		log.Info("configuration reloaded: restarting the pipeline", "file", path)
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("gateway stopped with an error during reload", "err", err)
		}
		g.Close()
		g = next
		g.ConfigReloaded(true)
	}
}

// openStore connects to the configured Redis for read-only commands.
func openStore(ctx context.Context, cfg *rules.Config) (*store.Store, func(), error) {
	rdb, err := service.OpenRedis(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return store.New(rdb, cfg.Redis.Prefix), func() { rdb.Close() }, nil
}
