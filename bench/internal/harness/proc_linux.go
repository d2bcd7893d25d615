//go:build linux

package harness

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childProcAttr kills the child gateway when the benchmark process dies, so
// that an interrupted benchmark leaves nothing running.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// userHZ is the unit of the times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// procCPU reads utime+stime of pid from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu time of %d: %w", pid, err)
	}
	return parseStatCPU(string(data))
}

// parseStatCPU extracts utime+stime (fields 14 and 15) from the contents of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// hold spaces, so fields are counted after its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14 -> f[11], stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat utime %q: %w", f[11], err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat stime %q: %w", f[12], err)
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// LoadAvg returns the 1-minute load average from /proc/loadavg, to show
// with every measurement how busy the (shared) machine was.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// procMemory reads the resident set size now (VmRSS) and its peak so far
// (VmHWM) of pid from /proc/<pid>/status, in bytes.
func procMemory(pid int) (rss, peak int64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of %d: %w", pid, err)
	}
	return parseStatusMemory(string(data))
}

// Activity counts a process's system calls that read and write (read,
// write and their relatives: syscr and syscw of /proc/<pid>/io) and the
// context switches of its threads (voluntary and not, summed over
// /proc/<pid>/task). Unlike CPU time they do not depend on how fast the
// machine is at the moment, so they show a change in the I/O pattern that
// a noisy CPU figure hides.
type Activity struct {
	ReadCalls, WriteCalls int64
	Switches              int64
}

// Sub returns a minus b, field by field.
func (a Activity) Sub(b Activity) Activity {
	return Activity{a.ReadCalls - b.ReadCalls, a.WriteCalls - b.WriteCalls, a.Switches - b.Switches}
}

func procActivity(pid int) (Activity, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	data, err := os.ReadFile(dir + "/io")
	if err != nil {
		return Activity{}, fmt.Errorf("read i/o counts of %d: %w", pid, err)
	}
	var a Activity
	if a.ReadCalls, a.WriteCalls, err = parseProcIO(string(data)); err != nil {
		return Activity{}, err
	}
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return Activity{}, fmt.Errorf("list threads of %d: %w", pid, err)
	}
	for _, t := range tasks {
		st, err := os.ReadFile(dir + "/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread exited meanwhile
		}
		n, err := parseStatusSwitches(string(st))
		if err != nil {
			return Activity{}, err
		}
		a.Switches += n
	}
	return a, nil
}

// parseProcIO extracts syscr and syscw from the contents of /proc/<pid>/io.
func parseProcIO(s string) (reads, writes int64, err error) {
	var seen int
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "syscr" && k != "syscw") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc io %s %q: %w", k, v, err)
		}
		if k == "syscr" {
			reads = n
		} else {
			writes = n
		}
		seen++
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("parse /proc io: no syscr and syscw in %q", s)
	}
	return reads, writes, nil
}

// parseStatusSwitches sums voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches of a /proc status file.
func parseStatusSwitches(s string) (int64, error) {
	var sum int64
	var seen int
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc status %s %q: %w", k, v, err)
		}
		sum += n
		seen++
	}
	if seen != 2 {
		return 0, errors.New("parse /proc status: no context switch counts")
	}
	return sum, nil
}
