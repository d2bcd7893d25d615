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

// Activity counts a process's read and write system calls and its context
// switches; reading it needs /proc.
type Activity struct {
	ReadCalls, WriteCalls int64
	Switches              int64
}

// Sub returns a minus b, field by field.
func (a Activity) Sub(b Activity) Activity {
	return Activity{a.ReadCalls - b.ReadCalls, a.WriteCalls - b.WriteCalls, a.Switches - b.Switches}
}

func procActivity(int) (Activity, error) {
	return Activity{}, errors.New("reading a running process's system calls needs linux /proc")
}
