// Command backlog measures how fast the gateway drains a backlog: N customer
// messages (default 2,000) are already in the support folder when the
// gateway starts; the program reports messages per second until every
// acknowledgement and staff forward was accepted by the SMTP catcher, the
// gateway's CPU time per message, and checks exactly-once: N tickets, N
// acknowledgements, N forwards, nothing twice, the folder moved to Processed
// and the outbox empty. The servers are the in-process go-imap server and
// go-smtp catcher, and the real Redis at 127.0.0.1:6379 under a random key
// prefix that is deleted at the end.
//
// In -mode process (the default) the gateway is the built `gateway run`
// binary in a separate process, so its CPU time is its own: it is read from
// /proc/<pid>/stat at "ready" and when the last mail arrived, and the
// process's total (rusage at exit) is shown next to that of an idle start
// with an empty folder. In -mode inproc the gateway runs inside this program
// under the pprof label side=gateway; -profile writes a CPU profile of the
// drain for `go tool pprof -tagfocus side=gateway`.
//
//	go run ./bench/backlog                          # 3 runs of 2,000
//	go run ./bench/backlog -mode inproc -runs 1 -profile /tmp/drain.pprof
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/bench/internal/harness"
	"github.com/northwind-it/ticketgw/service"
)

type options struct {
	mode     string
	n        int
	runs     int
	redis    string
	bin      string
	logLevel string
	timeout  time.Duration
	profile  string
	trace    string
	memprof  string
	gctrace  bool
	env      harness.EnvFlag
	keep     bool
	jsonOut  string
	// attachment, when set, replaces the generated mix with messages that
	// carry one attachment of this many bytes (and raises
	// limits.max_message_bytes to fit).
	attachment byteSize
}

// result is one run's measurements.
type result struct {
	deliver      time.Duration    // appending the backlog to the folder (not the gateway)
	startup      time.Duration    // process start to "ready" (process mode)
	stored       time.Duration    // ready to the folder being empty (every message stored and moved)
	sent         time.Duration    // ready to the last mail accepted
	cpuWindow    time.Duration    // gateway CPU from ready to the last mail (process mode)
	cpuTotal     time.Duration    // gateway CPU of the whole process, rusage at exit
	user, sys    time.Duration    // its user and system parts
	gc           harness.GCStats  // the gateway's garbage collections in the drain window (-gctrace)
	activity     harness.Activity // the gateway's read/write system calls and context switches in the drain window (process mode)
	processSelf  time.Duration    // this process's CPU during the drain (inproc: gateway + servers)
	redisCPU     time.Duration    // Redis server CPU during the drain (upper bound: shared server)
	rss, peakRSS int64            // the gateway's VmRSS and VmHWM a second after the drain (process mode)
	mailAccepted int
	tally        harness.Tally
}

func (r result) rate() float64              { return float64(r.tally.Messages) / r.sent.Seconds() }
func (r result) storedRate() float64        { return float64(r.tally.Messages) / r.stored.Seconds() }
func (r result) perMessage(n int64) float64 { return float64(n) / float64(r.tally.Messages) }

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "process", "process: gateway binary as a child process; inproc: in this process")
	flag.IntVar(&o.n, "n", 2000, "messages in the backlog (1..100000)")
	flag.IntVar(&o.runs, "runs", 3, "independent runs (fresh servers, Redis prefix and gateway each); the median is reported")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (loopback only)")
	flag.StringVar(&o.bin, "gateway", "", "gateway binary (default: build ./cmd/gateway)")
	flag.StringVar(&o.logLevel, "log-level", "info", "the gateway's log level: info or debug")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a run after this long")
	flag.StringVar(&o.profile, "profile", "", "inproc: write a CPU profile of the drain to this file (of the last run)")
	flag.StringVar(&o.trace, "trace", "", "inproc: write an execution trace (runtime/trace) of the drain to this file (of the last run)")
	flag.StringVar(&o.memprof, "memprofile", "", "inproc: write an allocation profile (alloc_space) at the end to this file (of the last run)")
	flag.BoolVar(&o.gctrace, "gctrace", false, "process: run the gateway with GODEBUG=gctrace=1 and report its garbage collection CPU")
	flag.Var(&o.env, "gateway-env", "KEY=VALUE added to the gateway process's environment, e.g. GOGC=400 (repeatable)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, gateway logs)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the medians to this file as JSON (read by bench/ab)")
	flag.Var(&o.attachment, "attachment", "instead of the usual mix, messages with one attachment of this size (e.g. 50MiB); limits.max_message_bytes is raised to fit")
	flag.Parse()
	harness.Main("backlog", o.validate, func(ctx context.Context) error { return run(ctx, o) })
}

func (o options) validate() error {
	switch {
	case o.mode != "process" && o.mode != "inproc":
		return fmt.Errorf("-mode %q: want process or inproc", o.mode)
	case o.n < 1 || o.n > 100000:
		return fmt.Errorf("-n %d: want 1..100000", o.n)
	case o.logLevel != "info" && o.logLevel != "debug":
		return fmt.Errorf("-log-level %q: want info or debug (the gateway's readiness is read from its info log)", o.logLevel)
	case o.runs < 1 || o.runs > 50:
		return fmt.Errorf("-runs %d: want 1..50", o.runs)
	case o.timeout <= 0 || o.timeout > time.Hour:
		return fmt.Errorf("-timeout %s: want up to 1h", o.timeout)
	case (o.profile != "" || o.memprof != "" || o.trace != "") && o.mode != "inproc":
		return errors.New("-profile, -memprofile and -trace need -mode inproc (the gateway binary has no profiling endpoint)")
	case (len(o.env) > 0 || o.gctrace) && o.mode != "process":
		return errors.New("-gateway-env and -gctrace need -mode process")
	case o.attachment < 0 || o.attachment > 1<<30:
		return fmt.Errorf("-attachment %d: want up to 1GiB", o.attachment)
	case o.attachment > 0 && o.mode != "process":
		return errors.New("-attachment needs -mode process (the peak RSS is the gateway process's)")
	case o.attachment > 0 && o.n > 10:
		return fmt.Errorf("-attachment with -n %d: at most 10 messages (each is held in memory by the in-process IMAP server)", o.n)
	}
	return nil
}

func run(ctx context.Context, o options) error {
	root, dir, cleanup, err := harness.Workspace("backlog", o.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	if o.mode == "process" && o.bin == "" {
		if o.bin, err = harness.BuildGateway(ctx, root, dir); err != nil {
			return err
		}
	}
	if o.gctrace {
		o.env = append(o.env, "GODEBUG=gctrace=1")
	}
	fmt.Printf("backlog: mode=%s runs=%d messages=%d gateway log level=%s gateway env=%q attachment=%d bytes\n",
		o.mode, o.runs, o.n, o.logLevel, o.env.String(), o.attachment)
	printMachine(ctx, o.redis, root)

	var (
		idle                 time.Duration
		idleRSS, idlePeakRSS int64
	)
	if o.mode == "process" {
		if idle, idleRSS, idlePeakRSS, err = idleCost(ctx, o, filepath.Join(dir, "idle")); err != nil {
			return fmt.Errorf("idle start: %w", err)
		}
		fmt.Printf("idle start (empty folder, ready, 1 s, SIGTERM): gateway CPU %s, RSS %s, peak RSS %s\n",
			harness.Ms(idle), harness.MiB(idleRSS), harness.MiB(idlePeakRSS))
	}
	var results []result
	for r := 1; r <= o.runs; r++ {
		load := harness.LoadAvg()
		res, err := oneRun(ctx, o, root, filepath.Join(dir, fmt.Sprintf("run%d", r)), r == o.runs)
		if err != nil {
			return fmt.Errorf("run %d: %w", r, err)
		}
		n := time.Duration(o.n)
		fmt.Printf("run %d  (load average %s -> %s; backlog appended in %s)\n", r, load, harness.LoadAvg(), res.deliver.Round(time.Millisecond))
		fmt.Printf("       %.0f msg/s to the last mail accepted (%s), %.0f msg/s to the folder empty (%s)\n",
			res.rate(), res.sent.Round(time.Millisecond), res.storedRate(), res.stored.Round(time.Millisecond))
		if o.mode == "process" {
			fmt.Printf("       gateway CPU per message %s in the drain window; whole process %s (user %s + system %s) = %s per message net of the idle start\n",
				harness.Ms(res.cpuWindow/n), harness.Ms(res.cpuTotal), harness.Ms(res.user), harness.Ms(res.sys), harness.Ms((res.cpuTotal-idle)/n))
			fmt.Printf("       per message in the drain window: %.1f read and %.1f write system calls, %.1f context switches\n",
				res.perMessage(res.activity.ReadCalls), res.perMessage(res.activity.WriteCalls), res.perMessage(res.activity.Switches))
			fmt.Printf("       start-up to ready %s\n", res.startup.Round(time.Millisecond))
			fmt.Printf("       gateway memory a second after the drain: RSS %s, peak RSS (VmHWM) %s = %s above the idle start's peak\n",
				harness.MiB(res.rss), harness.MiB(res.peakRSS), harness.MiB(res.peakRSS-idlePeakRSS))
			if o.gctrace {
				fmt.Printf("       garbage collection in the drain window: %d cycles, %s CPU = %s per message (%.0f%% of the gateway's CPU)\n",
					res.gc.Cycles, harness.Ms(res.gc.CPU), harness.Ms(res.gc.CPU/n), 100*res.gc.CPU.Seconds()/res.cpuWindow.Seconds())
			}
		} else {
			fmt.Printf("       whole-process CPU per message %s (gateway, IMAP server, SMTP catcher and harness together)\n", harness.Ms(res.processSelf/n))
		}
		fmt.Printf("       Redis server CPU per message %s (upper bound: the server is shared)\n", harness.Ms(res.redisCPU/n))
		fmt.Printf("       %d mails accepted; %s\n", res.mailAccepted, res.tally)
		if !res.tally.ExactlyOnce() {
			return fmt.Errorf("run %d: not exactly once: %s", r, res.tally)
		}
		results = append(results, res)
	}
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(results))
		for i, r := range results {
			v[i] = f(r)
		}
		return harness.Median(v)
	}
	fmt.Printf("\nmedian of %d runs (%d messages each):\n", len(results), o.n)
	fmt.Printf("  drain rate, to the last mail accepted  %.0f msg/s\n", med(func(r result) float64 { return r.rate() }))
	fmt.Printf("  drain rate, to the folder empty        %.0f msg/s\n", med(func(r result) float64 { return r.storedRate() }))
	fmt.Printf("  Redis server CPU per message           %s (upper bound)\n", harness.Ms(time.Duration(med(func(r result) float64 { return float64(r.redisCPU) / float64(o.n) }))))
	if o.mode == "process" {
		fmt.Printf("  gateway CPU per message (window)       %s\n", harness.Ms(time.Duration(med(func(r result) float64 { return float64(r.cpuWindow) / float64(o.n) }))))
		fmt.Printf("  gateway CPU per message (net total)    %s\n", harness.Ms(time.Duration(med(func(r result) float64 { return float64(r.cpuTotal-idle) / float64(o.n) }))))
		fmt.Printf("  gateway CPU per 1,000 messages (window) %.2f s\n", med(func(r result) float64 { return r.cpuWindow.Seconds() * 1000 / float64(o.n) }))
		fmt.Printf("  read / write system calls per message  %.1f / %.1f\n", med(func(r result) float64 { return r.perMessage(r.activity.ReadCalls) }), med(func(r result) float64 { return r.perMessage(r.activity.WriteCalls) }))
		fmt.Printf("  context switches per message           %.1f\n", med(func(r result) float64 { return r.perMessage(r.activity.Switches) }))
		fmt.Printf("  gateway peak RSS (VmHWM)               %s (idle start: %s)\n", harness.MiB(int64(med(func(r result) float64 { return float64(r.peakRSS) }))), harness.MiB(idlePeakRSS))
		if o.gctrace {
			fmt.Printf("  of which garbage collection            %s\n", harness.Ms(time.Duration(med(func(r result) float64 { return float64(r.gc.CPU) / float64(o.n) }))))
		}
	}
	if o.jsonOut != "" {
		sum := harness.BacklogSummary{
			Messages: o.n, Runs: len(results),
			Rate:       med(func(r result) float64 { return r.rate() }),
			StoredRate: med(func(r result) float64 { return r.storedRate() }),
			RedisCPUMs: med(func(r result) float64 { return r.redisCPU.Seconds() * 1000 / float64(o.n) }),
		}
		if o.mode == "process" {
			sum.CPUMs = med(func(r result) float64 { return r.cpuWindow.Seconds() * 1000 / float64(o.n) })
			sum.ReadCalls = med(func(r result) float64 { return r.perMessage(r.activity.ReadCalls) })
			sum.WriteCalls = med(func(r result) float64 { return r.perMessage(r.activity.WriteCalls) })
			sum.Switches = med(func(r result) float64 { return r.perMessage(r.activity.Switches) })
			sum.PeakRSSMiB = med(func(r result) float64 { return float64(r.peakRSS) / (1 << 20) })
		}
		if err := sum.Write(o.jsonOut); err != nil {
			return err
		}
	}
	return nil
}

// idleCost is the CPU of a gateway process that starts on an empty folder,
// becomes ready, idles for a second and stops: the fixed cost that the
// per-message figure of the whole process is net of.
func idleCost(ctx context.Context, o options, dir string) (cpu time.Duration, rss, peak int64, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, 0, err
	}
	w, err := harness.NewWorld(ctx, harness.WorldOptions{RedisAddr: o.redis, Dir: dir})
	if err != nil {
		return 0, 0, 0, err
	}
	defer w.Close(ctx)
	if o.attachment > 0 {
		if err := raiseMessageLimit(w.ConfigPath, int(o.attachment)); err != nil {
			return 0, 0, 0, err
		}
	}
	c, err := harness.StartChild(harness.ChildOptions{Bin: o.bin, Config: w.ConfigPath, Env: append(w.Env(), o.env...),
		LogLevel: o.logLevel, LogPath: filepath.Join(dir, "gateway.log")})
	if err != nil {
		return 0, 0, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.WaitReady(rctx)
	cancel()
	if err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err == nil {
		rss, peak, err = c.Memory()
	}
	user, sys, serr := c.Stop(30 * time.Second)
	if err := errors.Join(err, serr); err != nil {
		return 0, 0, 0, err
	}
	return user + sys, rss, peak, nil
}

func oneRun(ctx context.Context, o options, root, dir string, lastRun bool) (res result, err error) {
	profile, memprof, tracePath := "", "", ""
	if lastRun {
		profile, memprof, tracePath = o.profile, o.memprof, o.trace
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	w, err := harness.NewWorld(ctx, harness.WorldOptions{RedisAddr: o.redis, Dir: dir})
	if err != nil {
		return res, err
	}
	defer func() {
		if _, cerr := w.Close(ctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up redis prefix %s: %w", w.Prefix, cerr))
		}
	}()
	var tok [3]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return res, err
	}
	runToken := hex.EncodeToString(tok[:])
	gen, err := harness.NewGenerator(root, runToken)
	if err != nil {
		return res, err
	}
	if o.attachment > 0 {
		if err := raiseMessageLimit(w.ConfigPath, int(o.attachment)); err != nil {
			return res, err
		}
	}
	ids := make([]string, 0, o.n)
	t0 := time.Now()
	for i := range o.n {
		var m harness.Mail
		if o.attachment > 0 {
			m = attachmentMail(runToken, i, int64(o.attachment), time.Now())
		} else if m, err = gen.Mail(i, time.Now()); err != nil {
			return res, err
		}
		if err := w.IMAP.Deliver(harness.Inbox, m.Raw, time.Now()); err != nil {
			return res, err
		}
		ids = append(ids, m.MessageID)
	}
	res.deliver = time.Since(t0)
	runtime.GC() // the backlog's garbage is the harness's, not the drain's

	var (
		child *harness.Child
		inp   *harness.InProcess
		ready time.Time
		cpu0  time.Duration
		act0  harness.Activity
		gc0   harness.GCStats
		self0 time.Duration
		// stopProfile ends the CPU profile (inproc with -profile) once the
		// last mail arrived, so that it covers the drain only.
		stopProfile = func() error { return nil }
	)
	stopGateway := func() error {
		if child != nil {
			user, sys, err := child.Stop(30 * time.Second)
			res.cpuTotal, res.user, res.sys = user+sys, user, sys
			return err
		}
		return inp.Stop()
	}
	if o.mode == "process" {
		child, err = harness.StartChild(harness.ChildOptions{Bin: o.bin, Config: w.ConfigPath, Env: append(w.Env(), o.env...),
			LogLevel: o.logLevel, LogPath: filepath.Join(dir, "gateway.log")})
		if err != nil {
			return res, err
		}
		if err := child.WaitReady(ctx); err != nil {
			return res, errors.Join(err, stopGateway())
		}
		ready = child.ReadyAt
		res.startup = ready.Sub(child.Started)
		gc0 = child.GC()
		if cpu0, err = child.CPU(); err != nil {
			return res, errors.Join(err, stopGateway())
		}
		if act0, err = child.Activity(); err != nil {
			return res, errors.Join(err, stopGateway())
		}
	} else {
		logf, err := os.Create(filepath.Join(dir, "gateway.log"))
		if err != nil {
			return res, err
		}
		defer logf.Close()
		var level slog.Level
		if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
			return res, fmt.Errorf("-log-level: %w", err)
		}
		log := slog.New(slog.NewTextHandler(io.Writer(logf), &slog.HandlerOptions{Level: level}))
		if profile != "" {
			f, err := os.Create(profile)
			if err != nil {
				return res, err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return res, fmt.Errorf("start cpu profile: %w", err)
			}
			stopProfile = func() error {
				pprof.StopCPUProfile()
				if err := f.Close(); err != nil {
					return fmt.Errorf("write cpu profile: %w", err)
				}
				fmt.Printf("cpu profile of the drain written to %s\n", profile)
				return nil
			}
		}
		if tracePath != "" {
			f, err := os.Create(tracePath)
			if err != nil {
				return res, err
			}
			if err := trace.Start(f); err != nil {
				f.Close()
				return res, fmt.Errorf("start trace: %w", err)
			}
			stopCPU := stopProfile
			stopProfile = func() error {
				trace.Stop()
				err := f.Close()
				if err != nil {
					err = fmt.Errorf("write trace: %w", err)
				} else {
					fmt.Printf("execution trace of the drain written to %s\n", tracePath)
				}
				return errors.Join(stopCPU(), err)
			}
		}
		self0 = selfCPU()
		ready = time.Now()
		if inp, err = harness.StartInProcess(ctx, w, log, func(service.Outcome) {}); err != nil {
			return res, err
		}
	}

	redis0, rerr := w.RedisCPU(ctx)
	if rerr != nil {
		return res, errors.Join(rerr, stopGateway())
	}
	// The folder empty: every message stored and moved to Processed.
	drained := make(chan time.Time, 1)
	go func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n, err := w.IMAP.Count(harness.Inbox); err == nil && n == 0 {
					drained <- time.Now()
					return
				}
			}
		}
	}()
	mails, err := w.SMTP.WaitFor(ctx, 2*o.n)
	if err != nil {
		return res, errors.Join(err, stopGateway())
	}
	if err := stopProfile(); err != nil {
		return res, errors.Join(err, stopGateway())
	}
	redis1, rerr := w.RedisCPU(ctx)
	if rerr != nil {
		return res, errors.Join(rerr, stopGateway())
	}
	res.redisCPU = redis1 - redis0
	if child != nil {
		cpu1, err := child.CPU()
		if err != nil {
			return res, errors.Join(err, stopGateway())
		}
		res.cpuWindow = cpu1 - cpu0
		act1, err := child.Activity()
		if err != nil {
			return res, errors.Join(err, stopGateway())
		}
		res.activity = act1.Sub(act0)
		gc1 := child.GC()
		res.gc = harness.GCStats{Cycles: gc1.Cycles - gc0.Cycles, CPU: gc1.CPU - gc0.CPU}
	} else {
		res.processSelf = selfCPU() - self0
	}
	var last time.Time
	for _, m := range mails {
		if m.At.After(last) {
			last = m.At
		}
	}
	res.sent = last.Sub(ready)
	select {
	case at := <-drained:
		res.stored = at.Sub(ready)
	case <-ctx.Done():
		return res, errors.Join(fmt.Errorf("wait for the folder to empty: %w", ctx.Err()), stopGateway())
	}
	// Leave time for a stray second send before counting.
	time.Sleep(time.Second)
	if child != nil {
		if res.rss, res.peakRSS, err = child.Memory(); err != nil {
			return res, errors.Join(err, stopGateway())
		}
	}
	if err := stopGateway(); err != nil {
		return res, err
	}
	if memprof != "" {
		if err := writeAllocProfile(memprof); err != nil {
			return res, err
		}
	}
	res.mailAccepted = len(w.SMTP.Mail())
	res.tally, err = harness.Count(ctx, w, ids)
	return res, err
}

// writeAllocProfile writes the allocation profile (every allocation since
// the program started: read it with -sample_index=alloc_space).
func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write allocation profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write allocation profile: %w", err)
	}
	fmt.Printf("allocation profile written to %s\n", path)
	return nil
}

// printMachine prints the machine, Redis and code the figures come from.
func printMachine(ctx context.Context, addr, root string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second})
	defer rdb.Close()
	fmt.Printf("machine: %s; load average %s; code %s\n", harness.Machine(ctx, rdb), harness.LoadAvg(), harness.Revision(ctx, root))
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
