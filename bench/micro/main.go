// Command micro runs the packages' own Go micro-benchmarks several times
// (one package at a time, so that they do not compete for the CPUs) and
// prints the median of each metric as a Markdown table for BENCHMARKS.md,
// with the exact command and the machine.
//
//	go run ./bench/micro                 # -count 5 over the default packages
//	go run ./bench/micro -count 3 ./sla ./classify
//
// The store benchmarks need the Redis at $REDIS_ADDR (default
// 127.0.0.1:6379); they use their own key prefix and remove it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/bench/internal/harness"
)

// defaultPackages are the packages with benchmarks, in pipeline order.
var defaultPackages = []string{"./ingest", "./textfold", "./classify", "./sla", "./store", "./notify"}

func main() {
	count := flag.Int("count", 5, "runs of each benchmark (go test -count); the median is reported")
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	bench := flag.String("bench", ".", "go test -bench pattern")
	raw := flag.String("raw", "", "also write go test's raw output to this file")
	flag.Parse()
	if *count < 1 || *count > 50 {
		fmt.Fprintln(os.Stderr, "micro: -count: want 1..50")
		os.Exit(2)
	}
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = defaultPackages
	}
	harness.Main("micro", nil, func(ctx context.Context) error { return run(ctx, pkgs, *count, *benchtime, *bench, *raw) })
}

func run(ctx context.Context, pkgs []string, count int, benchtime, bench, rawPath string) error {
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	args := []string{"test", "-run", "^$", "-bench", bench, "-benchmem", "-benchtime", benchtime,
		"-count", fmt.Sprint(count), "-p", "1"}
	args = append(args, pkgs...)
	cmdline := "go " + strings.Join(quoteArgs(args), " ")

	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second})
	machine := harness.Machine(ctx, rdb)
	rdb.Close()

	fmt.Fprintf(os.Stderr, "running: %s (in %s)\n", cmdline, root)
	loadBefore := harness.LoadAvg()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	runErr := cmd.Run()
	if rawPath != "" {
		if err := os.WriteFile(rawPath, out.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write raw output: %w", err)
		}
	}
	if runErr != nil {
		return fmt.Errorf("%s: %w", cmdline, runErr)
	}
	lines, err := harness.ParseBenchOutput(&out)
	if err != nil {
		return err
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: no benchmark results", cmdline)
	}
	fmt.Printf("Command: `%s`  \n", cmdline)
	fmt.Printf("Machine: %s; load average %s before, %s after; %s in all; code %s.  \n",
		machine, loadBefore, harness.LoadAvg(), time.Since(start).Round(time.Second), harness.Revision(ctx, root))
	fmt.Printf("Median of %d runs per benchmark.\n\n", count)
	printTable(os.Stdout, lines)
	return nil
}

// key identifies a benchmark across its runs.
type key struct{ pkg, name string }

// printTable writes one row per benchmark, with the median of each metric
// over its runs and the fastest run's ns/op, in first-seen order.
func printTable(w io.Writer, lines []harness.BenchLine) {
	var order []key
	runs := map[key][]harness.BenchLine{}
	extra := map[string]bool{}
	for _, l := range lines {
		k := key{l.Pkg, l.Name}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], l)
		for u := range l.Metrics {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" {
				extra[u] = true
			}
		}
	}
	units := []string{"ns/op", "B/op", "allocs/op"}
	var more []string
	for u := range extra {
		more = append(more, u)
	}
	slices.Sort(more)
	units = append(units, more...)

	fmt.Fprintf(w, "| package | benchmark | runs |")
	for _, u := range units {
		fmt.Fprintf(w, " %s |", u)
	}
	fmt.Fprintf(w, " min ns/op |\n|---|---|---:|")
	for range units {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w, "---:|")
	for _, k := range order {
		rs := runs[k]
		fmt.Fprintf(w, "| %s | %s | %d |", strings.TrimPrefix(k.pkg, "github.com/northwind-it/ticketgw/"), strings.TrimPrefix(k.name, "Benchmark"), len(rs))
		for _, u := range units {
			var v []float64
			for _, r := range rs {
				if x, ok := r.Metrics[u]; ok {
					v = append(v, x)
				}
			}
			if len(v) == 0 {
				fmt.Fprintf(w, " |")
				continue
			}
			fmt.Fprintf(w, " %s |", formatMetric(harness.Median(v)))
		}
		// The fastest run: the least disturbed by other work on a shared
		// machine.
		fastest := 0.0
		for i, r := range rs {
			if x := r.Metrics["ns/op"]; i == 0 || x < fastest {
				fastest = x
			}
		}
		fmt.Fprintf(w, " %s |\n", formatMetric(fastest))
	}
}

// formatMetric prints integers without decimals and small values with
// three significant digits.
func formatMetric(v float64) string {
	switch {
	case v >= 100 || v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// quoteArgs quotes the arguments a shell would otherwise interpret.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, "^$*?[]() '\"\\|&;<>") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}
