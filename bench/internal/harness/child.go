package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildGateway compiles ./cmd/gateway of the module at root into dir and
// returns the binary's path.
func BuildGateway(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "gateway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gateway")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gateway: %w\n%s", err, out)
	}
	return bin, nil
}

// readyLine is what `gateway run` logs (at info level) once the mailbox is
// selected, right before it starts handing out messages.
const readyLine = "imap session ready"

// Child is `gateway run` as a separate process.
type Child struct {
	cmd     *exec.Cmd
	Started time.Time
	// Ready is closed when the child logged readyLine; ReadyAt is then set.
	Ready   chan struct{}
	ReadyAt time.Time

	logDone chan struct{}
	mu      sync.Mutex
	errs    []string // error-level log lines, for the report
	gc      GCStats
	exited  chan struct{}
	waitErr error
}

// ChildOptions configure StartChild.
type ChildOptions struct {
	Bin, Config string
	Env         []string // added to the bench's environment
	LogLevel    string   // --log-level; readiness is only seen at info or debug
	LogPath     string   // the child's stderr is copied here
}

// StartChild runs `gateway run -c Config` with stderr copied to LogPath.
// The child is killed if the benchmark process dies.
func StartChild(opt ChildOptions) (*Child, error) {
	logf, err := os.Create(opt.LogPath)
	if err != nil {
		return nil, fmt.Errorf("create child log: %w", err)
	}
	level := opt.LogLevel
	if level == "" {
		level = "info"
	}
	cmd := exec.Command(opt.Bin, "run", "-c", opt.Config, "--log-level", level)
	cmd.Env = append(os.Environ(), opt.Env...)
	cmd.SysProcAttr = childProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("child stderr: %w", err)
	}
	c := &Child{cmd: cmd, Ready: make(chan struct{}), logDone: make(chan struct{}), exited: make(chan struct{})}
	c.Started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", opt.Bin, err)
	}
	go c.copyLog(stderr, logf)
	go func() {
		<-c.logDone // Wait closes the pipe: read it to the end first
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *Child) copyLog(r io.Reader, w *os.File) {
	defer close(c.logDone)
	defer w.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	ready := false
	for sc.Scan() {
		line := sc.Text()
		if !ready && strings.Contains(line, readyLine) {
			c.ReadyAt = time.Now()
			ready = true
			close(c.Ready)
		}
		if cpu, ok := parseGCTrace(line); ok {
			c.mu.Lock()
			c.gc.Cycles++
			c.gc.CPU += cpu
			c.mu.Unlock()
		}
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			c.mu.Lock()
			if len(c.errs) < 20 {
				c.errs = append(c.errs, line)
			}
			c.mu.Unlock()
		}
		fmt.Fprintln(w, line)
	}
	_, _ = io.Copy(io.Discard, r)
}

// GCStats sums the garbage collections a child reported with
// GODEBUG=gctrace=1.
type GCStats struct {
	Cycles int
	CPU    time.Duration // stop-the-world, assist, background and idle marking
}

// GC returns the collections reported so far (none without gctrace).
func (c *Child) GC() GCStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gc
}

// parseGCTrace reads the CPU time of one gctrace line:
//
//	gc 7 @0.5s 2%: 0.02+1.2+0.01 ms clock, 0.04+0.3/1.1/0.2+0.02 ms cpu, 4->4->2 MB, ...
//
// The cpu field is sweep termination + assist/background/idle mark + mark
// termination.
func parseGCTrace(line string) (time.Duration, bool) {
	if !strings.HasPrefix(line, "gc ") {
		return 0, false
	}
	_, rest, ok := strings.Cut(line, "ms clock, ")
	if !ok {
		return 0, false
	}
	field, _, ok := strings.Cut(rest, " ms cpu")
	if !ok {
		return 0, false
	}
	var total float64
	for _, part := range strings.FieldsFunc(field, func(r rune) bool { return r == '+' || r == '/' }) {
		v, err := strconv.ParseFloat(part, 64)
		if err != nil || v < 0 {
			return 0, false
		}
		total += v
	}
	return time.Duration(total * float64(time.Millisecond)), true
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Problems returns the first warning and error log lines of the child.
func (c *Child) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// WaitReady waits for the ready log line, the child's exit or ctx.
func (c *Child) WaitReady(ctx context.Context) error {
	select {
	case <-c.Ready:
		return nil
	case <-c.exited:
		return fmt.Errorf("gateway exited before it was ready: %v (problems: %s)", c.waitErr, strings.Join(c.Problems(), " | "))
	case <-ctx.Done():
		return fmt.Errorf("wait for the gateway to select the mailbox: %w", ctx.Err())
	}
}

// Exited is closed when the child has exited.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// CPU is the child's user+system CPU time so far, from /proc (10 ms
// resolution).
func (c *Child) CPU() (time.Duration, error) { return procCPU(c.Pid()) }

// Activity is the child's read and write system calls and context
// switches so far, from /proc.
func (c *Child) Activity() (Activity, error) { return procActivity(c.Pid()) }

// Stop sends SIGTERM (a graceful stop), waits up to timeout (then kills),
// and returns the child's total user and system CPU time from its rusage.
func (c *Child) Stop(timeout time.Duration) (user, sys time.Duration, err error) {
	select {
	case <-c.exited:
	default:
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return 0, 0, fmt.Errorf("signal gateway: %w", err)
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-c.exited:
		case <-t.C:
			_ = c.cmd.Process.Kill()
			<-c.exited
			return 0, 0, fmt.Errorf("gateway did not stop within %s after SIGTERM: killed", timeout)
		}
	}
	ps := c.cmd.ProcessState
	if ps == nil {
		return 0, 0, fmt.Errorf("gateway: no process state: %v", c.waitErr)
	}
	if !ps.Success() {
		err = fmt.Errorf("gateway exited with %s (problems: %s)", ps, strings.Join(c.Problems(), " | "))
	}
	return ps.UserTime(), ps.SystemTime(), err
}

// EnvFlag collects repeated -gateway-env KEY=VALUE flags.
type EnvFlag []string

func (e *EnvFlag) String() string { return strings.Join(*e, " ") }

// Set implements flag.Value.
func (e *EnvFlag) Set(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// Memory is the child's resident set size now (VmRSS) and its peak since it
// started (VmHWM), in bytes, from /proc. Read it before Stop: the figures
// are gone once the process has exited.
func (c *Child) Memory() (rss, peak int64, err error) { return procMemory(c.Pid()) }

// parseStatusMemory extracts VmRSS and VmHWM (in kB) from the contents of
// /proc/<pid>/status and returns them in bytes.
func parseStatusMemory(status string) (rss, peak int64, err error) {
	found := 0
	for line := range strings.SplitSeq(status, "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(val), " ")
		if unit != "kB" {
			return 0, 0, fmt.Errorf("parse /proc status %s: unit %q, want kB", name, unit)
		}
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil || kb < 0 {
			return 0, 0, fmt.Errorf("parse /proc status %s %q: bad number", name, num)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("parse /proc status: VmRSS or VmHWM missing")
	}
	return rss, peak, nil
}

// MiB formats a byte count in mebibytes with one decimal.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
