// Command gateway is the email ticketing gateway for managed IT service
// providers. See the README and `gateway help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/northwind-it/ticketgw/app"
)

func main() {
	// The gateway's live heap is small and short-lived per message; the
	// default GOGC=100 spent a third of its CPU in garbage collection
	// (BENCHMARKS.md). GOGC in the environment still wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.DefaultEnv())
	stop()
	os.Exit(code)
}
