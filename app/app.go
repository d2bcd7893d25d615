// Package app is the gateway's command line: it parses flags, loads the
// configuration with the same loader the service uses, and runs one of the
// subcommands of SPEC §4 (run, check, classify, demo, version). main stays a
// one-liner that calls Main.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	_ "time/tzdata" // every IANA zone, even in a scratch image
)

// Version is set at build time with -ldflags "-X .../app.Version=...".
var Version = "dev"

// Env is what a command may touch of the outside world. Tests pass their own.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) (string, bool)
	Now            func() time.Time
}

// DefaultEnv is the process's environment.
func DefaultEnv() Env {
	return Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.LookupEnv, Now: time.Now}
}

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

// Main runs the command line args (without the program name) and returns
// the process exit status.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		usage(env.Stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "check":
		err = cmdCheck(ctx, args[1:], env)
	case "classify":
		err = cmdClassify(ctx, args[1:], env)
	case "run":
		err = cmdRun(ctx, args[1:], env)
	case "demo":
		err = cmdDemo(ctx, args[1:], env)
	case "tickets":
		err = cmdTickets(ctx, args[1:], env)
	case "healthcheck":
		err = cmdHealthcheck(ctx, args[1:], env)
	case "rebuild":
		err = cmdRebuild(ctx, args[1:], env)
	case "report":
		err = cmdReport(ctx, args[1:], env)
	case "version", "--version", "-v":
		fmt.Fprintf(env.Stdout, "gateway %s\n", Version)
	case "help", "-h", "--help":
		usage(env.Stdout)
	default:
		fmt.Fprintf(env.Stderr, "gateway: unknown command %q\n", args[0])
		usage(env.Stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	case errors.Is(err, errSilentFailure):
		return 1
	default:
		fmt.Fprintf(env.Stderr, "gateway %s: %v\n", args[0], err)
		return 1
	}
}

// errSilentFailure is returned by commands that already printed why they
// failed.
var errSilentFailure = errors.New("failed")

func usage(w io.Writer) {
	fmt.Fprint(w, strings.TrimLeft(`
usage: gateway <command> [flags]

commands:
  demo                      run the whole pipeline on embedded servers and sample mail
  run      -c FILE          the service: IMAP in, tickets in Redis, mail out
  check    -c FILE          validate the configuration, rules and templates
  classify -c FILE [--at TIME] [--json] [--show-ack] [--redis] MESSAGE...
                            classify messages offline and print the promised dates
  report   qbr -c FILE --contract ID|--all --quarter YYYY-Qn [-o FILE|DIR] [--csv FILE] [--send]
                            the quarterly review (HTML with charts, CSV of the figures)
  tickets  list|show -c FILE read the state: open tickets, deadlines, timers, outbox
  rebuild  -c FILE [--force] rebuild the state from the processed folders after Redis lost it (sends nothing)
  healthcheck -c FILE [--ready]  ask the running gateway for /healthz (or /readyz)
  version                   print the version
`, "\n"))
}

func newLogger(w io.Writer, level slog.Level, json bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
