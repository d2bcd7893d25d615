package app

import (
	"context"
	"fmt"
	"log/slog"

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
	cfg, err := loadConfig(*cfgPath, env)
	if err != nil {
		return err
	}
	tmpl, err := loadTemplates(cfg, env)
	if err != nil {
		return err
	}
	g, err := service.New(ctx, cfg, tmpl, log, service.Options{Now: env.Now})
	if err != nil {
		return err
	}
	defer g.Close()
	return g.Run(ctx)
}

// openStore connects to the configured Redis for read-only commands.
func openStore(ctx context.Context, cfg *rules.Config) (*store.Store, func(), error) {
	rdb, err := service.OpenRedis(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return store.New(rdb, cfg.Redis.Prefix), func() { rdb.Close() }, nil
}
