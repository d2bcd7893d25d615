//go:build !linux

package harness

import (
	"errors"
	"syscall"
	"time"
)

func childProcAttr() *syscall.SysProcAttr { return nil }

// procCPU needs /proc; elsewhere only the total at exit (Child.Stop) is
// available.
func procCPU(int) (time.Duration, error) {
	return 0, errors.New("reading a running process's cpu time needs linux /proc")
}

// LoadAvg is unknown without /proc.
func LoadAvg() string { return "?" }

// procMemory needs /proc.
func procMemory(int) (rss, peak int64, err error) {
	return 0, 0, errors.New("reading a running process's memory needs linux /proc")
}
