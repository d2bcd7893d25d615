// Command latency measures the gateway's own latency on the live pipeline:
// from the moment the IMAP server has appended a customer message and
// notified its IDLE clients (localmail.IMAPServer.Deliver returned) to the
// moment the SMTP catcher accepted the acknowledgement for it (and the staff
// forward), one message at a time, against the in-process go-imap server and
// go-smtp catcher and the real Redis at 127.0.0.1:6379 under a random key
// prefix that is deleted at the end.
//
// In -mode process (the default) the gateway is the built `gateway run`
// binary in a separate process, so its CPU time per message is its own. In
// -mode inproc it runs inside this program with service.Options.OnOutcome
// hooked, which adds the "Deliver → ticket stored" figure.
//
//	go run ./bench/latency                      # 5 runs × (50 warm-up + 500 measured)
//	go run ./bench/latency -mode inproc
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
	"runtime/pprof"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/bench/internal/harness"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

type options struct {
	mode      string
	n, warmup int
	runs      int
	gap       time.Duration
	redis     string
	bin       string
	logLevel  string
	perMsg    time.Duration
	env       harness.EnvFlag
	profile   string
	keep      bool
}

// settle is how long the gateway is given after it selected the folder to
// search it and enter IDLE.
const settle = 200 * time.Millisecond

// result is one run's measurements.
type result struct {
	ack, fwd, stored harness.Summary
	cpuPerMsg        time.Duration // process mode only
	user, sys        time.Duration // the gateway process's totals at exit (process mode)
	tally            harness.Tally
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "process", "process: gateway binary as a child process; inproc: in this process with the OnOutcome hook")
	flag.IntVar(&o.n, "n", 500, "measured messages per run (1..100000)")
	flag.IntVar(&o.warmup, "warmup", 50, "unmeasured messages first")
	flag.IntVar(&o.runs, "runs", 5, "independent runs (fresh servers, Redis prefix and gateway each); the median is reported")
	flag.DurationVar(&o.gap, "gap", 10*time.Millisecond, "pause after each message's mail arrived, so the gateway is back in IDLE")
	flag.StringVar(&o.redis, "redis", "127.0.0.1:6379", "Redis address (loopback only)")
	flag.StringVar(&o.bin, "gateway", "", "gateway binary (default: build ./cmd/gateway)")
	flag.StringVar(&o.logLevel, "log-level", "info", "the gateway's log level: info or debug")
	flag.DurationVar(&o.perMsg, "timeout", 10*time.Second, "give up when one message's mail takes longer")
	flag.StringVar(&o.profile, "profile", "", "inproc: write a CPU profile of the measured messages of the last run to this file")
	flag.Var(&o.env, "gateway-env", "KEY=VALUE added to the gateway process's environment, e.g. GOGC=400 (repeatable)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, gateway logs)")
	flag.Parse()
	harness.Main("latency", o.validate, func(ctx context.Context) error { return run(ctx, o) })
}

func (o options) validate() error {
	switch {
	case o.mode != "process" && o.mode != "inproc":
		return fmt.Errorf("-mode %q: want process or inproc", o.mode)
	case o.n < 1 || o.n > 100000:
		return fmt.Errorf("-n %d: want 1..100000", o.n)
	case o.warmup < 0 || o.warmup > 10000:
		return fmt.Errorf("-warmup %d: want 0..10000", o.warmup)
	case o.logLevel != "info" && o.logLevel != "debug":
		return fmt.Errorf("-log-level %q: want info or debug (the gateway's readiness is read from its info log)", o.logLevel)
	case o.runs < 1 || o.runs > 50:
		return fmt.Errorf("-runs %d: want 1..50", o.runs)
	case o.gap < 0 || o.gap > 10*time.Second:
		return fmt.Errorf("-gap %s: want 0..10s", o.gap)
	case o.perMsg <= 0 || o.perMsg > 5*time.Minute:
		return fmt.Errorf("-timeout %s: want up to 5m", o.perMsg)
	case len(o.env) > 0 && o.mode != "process":
		return errors.New("-gateway-env needs -mode process")
	case o.profile != "" && o.mode != "inproc":
		return errors.New("-profile needs -mode inproc (the gateway binary has no profiling endpoint)")
	}
	return nil
}

func run(ctx context.Context, o options) error {
	root, dir, cleanup, err := harness.Workspace("latency", o.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	if o.mode == "process" && o.bin == "" {
		if o.bin, err = harness.BuildGateway(ctx, root, dir); err != nil {
			return err
		}
	}
	fmt.Printf("latency: mode=%s runs=%d warmup=%d measured=%d gap=%s gateway log level=%s gateway env=%q\n",
		o.mode, o.runs, o.warmup, o.n, o.gap, o.logLevel, o.env.String())
	rdb := redis.NewClient(&redis.Options{Addr: o.redis, DialTimeout: 2 * time.Second})
	fmt.Printf("machine: %s; load average %s; code %s\n", harness.Machine(ctx, rdb), harness.LoadAvg(), harness.Revision(ctx, root))
	rdb.Close()
	var results []result
	for r := 1; r <= o.runs; r++ {
		load := harness.LoadAvg()
		res, err := oneRun(ctx, o, root, filepath.Join(dir, fmt.Sprintf("run%d", r)), r == o.runs)
		if err != nil {
			return fmt.Errorf("run %d: %w", r, err)
		}
		fmt.Printf("run %d  (load average %s -> %s)\n", r, load, harness.LoadAvg())
		fmt.Printf("       ack     %s\n", res.ack)
		fmt.Printf("       forward %s\n", res.fwd)
		if o.mode == "inproc" {
			fmt.Printf("       stored  %s\n", res.stored)
		} else {
			fmt.Printf("       gateway cpu per message %s; whole process (warm-up and start included) user %s + system %s\n",
				harness.Ms(res.cpuPerMsg), harness.Ms(res.user), harness.Ms(res.sys))
		}
		fmt.Printf("       %s\n", res.tally)
		if !res.tally.ExactlyOnce() {
			return fmt.Errorf("run %d: not exactly once: %s", r, res.tally)
		}
		results = append(results, res)
	}
	med := func(f func(result) time.Duration) string {
		v := make([]float64, len(results))
		for i, r := range results {
			v[i] = float64(f(r))
		}
		return harness.Ms(time.Duration(harness.Median(v)))
	}
	fmt.Printf("\nmedian of %d runs (%d messages each):\n", len(results), o.n)
	fmt.Printf("  Deliver -> ack accepted      p50 %s  p99 %s\n", med(func(r result) time.Duration { return r.ack.P50 }), med(func(r result) time.Duration { return r.ack.P99 }))
	fmt.Printf("  Deliver -> forward accepted  p50 %s  p99 %s\n", med(func(r result) time.Duration { return r.fwd.P50 }), med(func(r result) time.Duration { return r.fwd.P99 }))
	if o.mode == "inproc" {
		fmt.Printf("  Deliver -> ticket stored     p50 %s  p99 %s\n", med(func(r result) time.Duration { return r.stored.P50 }), med(func(r result) time.Duration { return r.stored.P99 }))
	} else {
		fmt.Printf("  gateway CPU per message      %s\n", med(func(r result) time.Duration { return r.cpuPerMsg }))
	}
	return nil
}

// gateway is the running gateway of one run, whichever the mode.
type gateway struct {
	child *harness.Child
	inp   *harness.InProcess

	mu      sync.Mutex
	stored  map[string]time.Time // customer Message-ID -> OnOutcome time (inproc)
	changed chan struct{}        // closed and replaced at every outcome
}

// record notes that the message id was stored at at.
func (g *gateway) record(id string, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stored[id] = at
	close(g.changed)
	g.changed = make(chan struct{})
}

// storedAt waits until the outcome of message id was recorded. The mail
// can arrive first: the outbox is kicked before the OnOutcome hook runs,
// and may also find the entries on its own poll.
func (g *gateway) storedAt(ctx context.Context, id string) (time.Time, error) {
	for {
		g.mu.Lock()
		at, ok := g.stored[id]
		ch := g.changed
		g.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for the outcome of %s: %w", id, ctx.Err())
		case <-ch:
		}
	}
}

func oneRun(ctx context.Context, o options, root, dir string, lastRun bool) (res result, err error) {
	profile := ""
	if lastRun {
		profile = o.profile
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	w, err := harness.NewWorld(ctx, harness.WorldOptions{RedisAddr: o.redis, Dir: dir})
	if err != nil {
		return res, err
	}
	defer func() {
		n, cerr := w.Close(ctx)
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up redis prefix %s: %w", w.Prefix, cerr))
		} else if o.keep {
			fmt.Printf("       deleted %d keys under %s\n", n, w.Prefix)
		}
	}()
	var tok [3]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return res, err
	}
	gen, err := harness.NewGenerator(root, hex.EncodeToString(tok[:]))
	if err != nil {
		return res, err
	}

	g := &gateway{stored: make(map[string]time.Time), changed: make(chan struct{})}
	switch o.mode {
	case "process":
		g.child, err = harness.StartChild(harness.ChildOptions{Bin: o.bin, Config: w.ConfigPath, Env: append(w.Env(), o.env...),
			LogLevel: o.logLevel, LogPath: filepath.Join(dir, "gateway.log")})
		if err != nil {
			return res, err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = g.child.WaitReady(rctx)
		cancel()
		if err != nil {
			g.child.Stop(5 * time.Second)
			return res, err
		}
	default:
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
		g.inp, err = harness.StartInProcess(ctx, w, log, func(out service.Outcome) {
			at := time.Now()
			if out.Decision.Msg == nil {
				return
			}
			g.record(store.NormalizeMessageID(out.Decision.Msg.MessageID), at)
		})
		if err != nil {
			return res, err
		}
		if err := waitConnected(ctx, g.inp.G, 30*time.Second); err != nil {
			g.inp.Stop()
			return res, err
		}
	}
	// The gateway logs "ready" once the folder is selected, then searches
	// it and enters IDLE. go-imap's in-memory server does not flush updates
	// queued before IDLE starts (SessionTracker.Idle only wakes on new
	// ones), so a message delivered in that window would wait for the next
	// resync: let the gateway reach IDLE first. Between messages, -gap does
	// the same.
	select {
	case <-ctx.Done():
	case <-time.After(settle):
	}
	stopGateway := func() error {
		if g.child != nil {
			user, sys, err := g.child.Stop(30 * time.Second)
			res.user, res.sys = user, sys
			return err
		}
		return g.inp.Stop()
	}

	tr := harness.NewTracker(w.SMTP)
	var acks, fwds, stored []time.Duration
	var ids []string
	var cpu0 time.Duration
	stopProfile := func() error { return nil }
	for i := range o.warmup + o.n {
		if i == o.warmup && g.child != nil {
			if cpu0, err = g.child.CPU(); err != nil {
				return res, errors.Join(err, stopGateway())
			}
		}
		if i == o.warmup && g.inp != nil && profile != "" {
			stopProfile, err = startProfile(profile)
			if err != nil {
				return res, errors.Join(err, stopGateway())
			}
		}
		m, err := gen.Mail(i, time.Now())
		if err != nil {
			return res, errors.Join(err, stopGateway())
		}
		ids = append(ids, m.MessageID)
		if err := w.IMAP.Deliver(harness.Inbox, m.Raw, time.Now()); err != nil {
			return res, errors.Join(err, stopGateway())
		}
		delivered := time.Now()
		mctx, cancel := context.WithTimeout(ctx, o.perMsg)
		ack, fwd, err := tr.Wait(mctx, m.MessageID)
		cancel()
		if err != nil {
			return res, errors.Join(fmt.Errorf("message %d: %w", i, err), stopGateway())
		}
		if i >= o.warmup {
			acks = append(acks, ack.At.Sub(delivered))
			fwds = append(fwds, fwd.At.Sub(delivered))
			if g.inp != nil {
				sctx, cancel := context.WithTimeout(ctx, o.perMsg)
				at, err := g.storedAt(sctx, m.MessageID)
				cancel()
				if err != nil {
					return res, errors.Join(fmt.Errorf("message %d: mail sent: %w", i, err), stopGateway())
				}
				stored = append(stored, at.Sub(delivered))
			}
		}
		if o.gap > 0 {
			select {
			case <-ctx.Done():
				return res, errors.Join(ctx.Err(), stopGateway())
			case <-time.After(o.gap):
			}
		}
	}
	if err := stopProfile(); err != nil {
		return res, errors.Join(err, stopGateway())
	}
	if g.child != nil {
		cpu1, err := g.child.CPU()
		if err != nil {
			return res, errors.Join(err, stopGateway())
		}
		res.cpuPerMsg = (cpu1 - cpu0) / time.Duration(o.n)
	}
	// Leave time for a stray second send before counting.
	time.Sleep(500 * time.Millisecond)
	if err := stopGateway(); err != nil {
		return res, err
	}
	res.ack, res.fwd, res.stored = harness.Summarize(acks), harness.Summarize(fwds), harness.Summarize(stored)
	res.tally, err = harness.Count(ctx, w, ids)
	return res, err
}

// startProfile starts a CPU profile into path and returns what stops it.
func startProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("write cpu profile: %w", err)
		}
		fmt.Printf("cpu profile of the measured messages written to %s\n", path)
		return nil
	}, nil
}

// waitConnected waits until every mailbox of an in-process gateway has its
// folder selected.
func waitConnected(ctx context.Context, g *service.Gateway, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		ready := true
		for _, s := range g.Sources {
			if !s.Stats().Connected {
				ready = false
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the gateway to select the mailbox: %w", ctx.Err())
		case <-t.C:
		}
	}
}
