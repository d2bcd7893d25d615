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

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT is set.
const defaultMemoryLimit = 40 << 20

func main() {
	// The gateway's live heap is small and short-lived per message; the
	// default GOGC=100 spent a third of its CPU in garbage collection
	// (BENCHMARKS.md). GOGC in the environment still wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	// GOGC=400 lets the heap grow to five times what is live: with four
	// handlers overlapping in a backlog that took the peak RSS to ~62 MiB.
	// A soft limit makes the collector work harder only near it (~54 MiB
	// RSS at the same speed, BENCHMARKS.md); a heap that truly needs more
	// still gets it. GOMEMLIMIT in the environment still wins.
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.DefaultEnv())
	stop()
	os.Exit(code)
}
