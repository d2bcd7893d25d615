package harness

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main is the end of a benchmark program's main, after flag.Parse: an
// invalid flag (validate's error) exits 2, a failed run exits 1, each with
// the program's name; run's context ends on SIGINT or SIGTERM.
func Main(name string, validate func() error, run func(context.Context) error) {
	if validate != nil {
		if err := validate(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Workspace returns the module root and a new temporary folder for a
// program's files, and the function that removes the folder; with keep it
// is kept (and named on standard output) instead.
func Workspace(name string, keep bool) (root, dir string, cleanup func(), err error) {
	if root, err = ModuleRoot(); err != nil {
		return "", "", nil, err
	}
	if dir, err = os.MkdirTemp("", "ticketgw-bench-"+name+"-"); err != nil {
		return "", "", nil, err
	}
	if keep {
		fmt.Printf("temporary files in %s\n", dir)
		return root, dir, func() {}, nil
	}
	return root, dir, func() { _ = os.RemoveAll(dir) }, nil
}
