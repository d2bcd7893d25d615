package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// cmdRebuild reconstructs the state (tickets, events, the Message-ID index,
// IMAC counters, rate limits, SLA timers) from every mailbox's processed
// folder after Redis lost its data. It sends nothing; see service.Rebuild.
func cmdRebuild(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("rebuild", env.Stderr, "-c FILE [--force] [--log-format text|json] [--log-level debug|info|warn|error]")
	cfgPath := fs.String("c", "gateway.yaml", "configuration `file`")
	force := fs.Bool("force", false, "rebuild into a key prefix that already holds tickets")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	rest, err := parseInterleaved(fs, args)
	if err != nil || len(rest) > 0 {
		if err == nil {
			fmt.Fprintf(env.Stderr, "gateway rebuild: unexpected argument %q\n", rest[0])
		}
		return errUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := newLogger(env.Stderr, level, *logFormat == "json")
	cur, err := build(*cfgPath, env)
	if err != nil {
		return err
	}
	rdb, err := service.OpenRedis(ctx, cur.cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if w := service.CheckPersistence(ctx, rdb); w != "" {
		log.Warn(w, "component", "redis")
	}
	st := store.New(rdb, cur.cfg.Redis.Prefix)
	stats, err := service.Rebuild(ctx, cur.cfg, cur.tmpl, st, service.RebuildOptions{Now: env.Now, Log: log, Force: *force})
	if errors.Is(err, service.ErrStateNotEmpty) {
		fmt.Fprintf(env.Stderr, "gateway rebuild: %v\n"+
			"  The rebuild is meant for a Redis that lost its data. If a gateway ran meanwhile and opened new tickets,\n"+
			"  their numbers collide with the rebuilt ones: stop it, remove the prefix's keys, and rebuild; or\n"+
			"  pass --force to replay the processed folders into the existing state (messages already there are skipped).\n", err)
		return errSilentFailure
	}
	if err != nil {
		return err
	}
	printRebuild(env, stats)
	return nil
}

func printRebuild(env Env, s service.RebuildStats) {
	w := env.Stdout
	fmt.Fprintf(w, "rebuilt from the processed folders: %d message(s)", s.Messages)
	if s.Deleted > 0 {
		fmt.Fprintf(w, " (%d flagged \\Deleted left out)", s.Deleted)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  tickets created        %d\n", s.Tickets)
	var acts []string
	for _, k := range slices.Sorted(maps.Keys(s.Actions)) {
		acts = append(acts, fmt.Sprintf("%s %d", k, s.Actions[k]))
	}
	fmt.Fprintf(w, "  messages by outcome    %s\n", strings.Join(acts, ", "))
	fmt.Fprintf(w, "  SLA timers scheduled   %d (all due from now on)\n", s.Timers)
	fmt.Fprintf(w, "  past deadlines         %d breach(es) recorded, %d warning(s) and %d void timer(s) skipped; nothing notified\n",
		s.Breaches, s.WarningsSkipped, s.TimersVoid)
	fmt.Fprintf(w, "  mail sent              none (%d composed and discarded)\n", s.MailNotSent)
	if s.ThreadMismatches > 0 {
		fmt.Fprintf(w, "  WARNING: %d repl(ies) joined another ticket than the one they answer: ticket numbers may differ from the original ones (see the log)\n", s.ThreadMismatches)
	}
}
