// Command ab compares two builds of the gateway on the backlog benchmark,
// alternately, so that the drift of a shared machine (on the hosts this
// project is measured on, one binary's CPU per message moves by ±10 %
// within minutes) falls on both sides alike.
//
// Each side is a git revision (built from a temporary worktree), "." (the
// working tree as it is) or the path of a gateway binary. Every round runs
// `bench/backlog -runs R` once for each side, A first in odd rounds and B
// first in even ones. The report gives every round's figures, the median of
// each side, and the median of the rounds' differences B − A: CPU per
// message, drain rate, and the system calls and context switches per
// message, which do not move with the machine's speed and so show a change
// in the I/O pattern that the CPU figure's noise hides.
//
//	go run ./bench/ab -a 8e121bf -b . -rounds 3
//	go run ./bench/ab -a /tmp/gw-old -b /tmp/gw-new -rounds 5 -n 2000 -runs 2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/northwind-it/ticketgw/bench/internal/harness"
)

type options struct {
	a, b     string
	rounds   int
	n, runs  int
	keep     bool
	backlogs []string // extra flags for bench/backlog
}

func main() {
	var o options
	flag.StringVar(&o.a, "a", "", "side A: a git revision, \".\" (the working tree) or a gateway binary")
	flag.StringVar(&o.b, "b", ".", "side B: as -a")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs both sides once")
	flag.IntVar(&o.n, "n", 2000, "messages per backlog run")
	flag.IntVar(&o.runs, "runs", 2, "backlog runs per side and round (their median is the side's figure for the round)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, summaries)")
	flag.Func("backlog-flag", "a flag passed on to bench/backlog, e.g. -backlog-flag=-gateway-env=GOGC=200 (repeatable)", func(s string) error {
		o.backlogs = append(o.backlogs, s)
		return nil
	})
	flag.Parse()
	harness.Main("ab", o.validate, func(ctx context.Context) error { return run(ctx, o) })
}

func (o options) validate() error {
	switch {
	case o.a == "" || o.b == "":
		return errors.New("-a and -b: both sides are needed")
	case o.rounds < 1 || o.rounds > 50:
		return fmt.Errorf("-rounds %d: want 1..50", o.rounds)
	case o.n < 1 || o.n > 100000:
		return fmt.Errorf("-n %d: want 1..100000", o.n)
	case o.runs < 1 || o.runs > 20:
		return fmt.Errorf("-runs %d: want 1..20", o.runs)
	}
	return nil
}

func run(ctx context.Context, o options) error {
	root, dir, cleanup, err := harness.Workspace("ab", o.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	backlog := filepath.Join(dir, "backlog")
	if err := goBuild(ctx, root, backlog, "./bench/backlog"); err != nil {
		return err
	}
	var bins [2]string
	for i, spec := range []string{o.a, o.b} {
		if bins[i], err = gateway(ctx, root, filepath.Join(dir, string(rune('a'+i))), spec); err != nil {
			return fmt.Errorf("side %c (%s): %w", 'A'+i, spec, err)
		}
	}
	fmt.Printf("ab: A=%s B=%s, %d rounds of `backlog -n %d -runs %d %s`\n", o.a, o.b, o.rounds, o.n, o.runs, strings.Join(o.backlogs, " "))
	var sums [2][]harness.BacklogSummary
	for r := 1; r <= o.rounds; r++ {
		order := []int{0, 1}
		if r%2 == 0 {
			order = []int{1, 0}
		}
		for _, side := range order {
			out := filepath.Join(dir, fmt.Sprintf("round%d-%c.json", r, 'a'+side))
			args := append([]string{"-gateway", bins[side], "-n", fmt.Sprint(o.n), "-runs", fmt.Sprint(o.runs), "-json", out}, o.backlogs...)
			cmd := exec.CommandContext(ctx, backlog, args...)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("round %d, side %c: backlog: %w\n%s", r, 'A'+side, err, b)
			}
			s, err := harness.ReadBacklogSummary(out)
			if err != nil {
				return err
			}
			sums[side] = append(sums[side], s)
			fmt.Printf("round %d  %c  %s  (load average %s)\n", r, 'A'+side, line(s), harness.LoadAvg())
		}
	}
	fmt.Println()
	report(o, sums)
	return nil
}

// line is one backlog summary on one line.
func line(s harness.BacklogSummary) string {
	return fmt.Sprintf("%5.0f msg/s  CPU %.3f ms/msg  syscalls %.1f read %.1f write  switches %.1f  peak RSS %.1f MiB",
		s.Rate, s.CPUMs, s.ReadCalls, s.WriteCalls, s.Switches, s.PeakRSSMiB)
}

type figure struct {
	name string
	unit string
	get  func(harness.BacklogSummary) float64
}

var figures = []figure{
	{"drain rate", "msg/s", func(s harness.BacklogSummary) float64 { return s.Rate }},
	{"gateway CPU per message", "ms", func(s harness.BacklogSummary) float64 { return s.CPUMs }},
	{"read system calls per message", "", func(s harness.BacklogSummary) float64 { return s.ReadCalls }},
	{"write system calls per message", "", func(s harness.BacklogSummary) float64 { return s.WriteCalls }},
	{"context switches per message", "", func(s harness.BacklogSummary) float64 { return s.Switches }},
	{"peak RSS", "MiB", func(s harness.BacklogSummary) float64 { return s.PeakRSSMiB }},
}

func report(o options, sums [2][]harness.BacklogSummary) {
	fmt.Printf("  %-32s %10s %12s %12s\n", fmt.Sprintf("median of %d rounds", o.rounds), "A", "B", "B − A")
	fmt.Println("  (B − A is the median of the rounds' differences; each round's follows)")
	for _, f := range figures {
		var a, b, d []float64
		for i := range sums[0] {
			x, y := f.get(sums[0][i]), f.get(sums[1][i])
			a, b, d = append(a, x), append(b, y), append(d, y-x)
		}
		ma, mb, md := harness.Median(a), harness.Median(b), harness.Median(d)
		rel := ""
		if ma != 0 {
			rel = fmt.Sprintf(" (%+.1f %%)", 100*md/ma)
		}
		fmt.Printf("  %-32s %10.3f %12.3f %12.3f%s  %s; differences %s\n", f.name, ma, mb, md, rel, f.unit, fmtList(d))
	}
}

func fmtList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%+.3f", x)
	}
	return strings.Join(parts, " ")
}

// gateway returns the gateway binary of spec, building it into dir.
func gateway(ctx context.Context, root, dir, spec string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if spec == "." {
		return harness.BuildGateway(ctx, root, dir)
	}
	if st, err := os.Stat(spec); err == nil && !st.IsDir() {
		if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not executable", spec)
		}
		return filepath.Abs(spec)
	}
	// A git revision: a detached worktree of it, removed once built.
	wt := filepath.Join(dir, "src")
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "worktree", "add", "--detach", wt, spec).CombinedOutput(); err != nil {
		return "", fmt.Errorf("git worktree add %s: %w\n%s", spec, err, out)
	}
	defer func() {
		_ = exec.Command("git", "-C", root, "worktree", "remove", "--force", wt).Run()
	}()
	return harness.BuildGateway(ctx, wt, dir)
}

func goBuild(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, b)
	}
	return nil
}
