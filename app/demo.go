package app

import (
	"context"
	"log/slog"

	"github.com/northwind-it/ticketgw/demo"
)

func cmdDemo(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("demo", env.Stderr, "[-v]")
	verbose := fs.Bool("v", false, "show the gateway's log")
	if _, err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	var log *slog.Logger
	if *verbose {
		log = newLogger(env.Stderr, slog.LevelDebug, false)
	}
	url, _ := env.Getenv("REDIS_URL")
	return demo.Run(ctx, env.Stdout, demo.Options{RedisURL: url, Log: log})
}
