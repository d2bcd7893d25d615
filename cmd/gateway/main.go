// Command gateway is the email ticketing gateway for managed IT service
// providers. See the README and `gateway help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/northwind-it/ticketgw/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.DefaultEnv())
	stop()
	os.Exit(code)
}
