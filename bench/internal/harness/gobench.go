package harness

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// BenchLine is one result line of `go test -bench` output.
type BenchLine struct {
	Pkg        string // from the preceding "pkg:" line
	Name       string // without the -GOMAXPROCS suffix
	Procs      int    // the -N suffix, 0 when absent
	Iterations int64
	Metrics    map[string]float64 // unit -> value: "ns/op", "B/op", "allocs/op", "MB/s", custom units
}

// ParseBenchOutput reads `go test -bench` output and returns its result
// lines in order. Other lines (headers, PASS, ok, logs) are skipped; a line
// that starts like a result but is malformed is an error.
func ParseBenchOutput(r io.Reader) ([]BenchLine, error) {
	var out []BenchLine
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue // a benchmark's name printed alone before its result (verbose or log output)
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue // not a result line (e.g. a log line starting with "Benchmark")
		}
		b, err := parseBenchLine(f)
		if err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		b.Pkg = pkg
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// parseBenchLine parses the fields of "BenchmarkX-2 100 123 ns/op 4 B/op".
func parseBenchLine(f []string) (BenchLine, error) {
	b := BenchLine{Name: f[0], Metrics: make(map[string]float64)}
	if i := strings.LastIndexByte(b.Name, '-'); i > 0 {
		if p, err := strconv.Atoi(b.Name[i+1:]); err == nil && p > 0 {
			b.Name, b.Procs = b.Name[:i], p
		}
	}
	it, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || it <= 0 {
		return b, fmt.Errorf("benchmark %s: iterations %q: want a positive count", b.Name, f[1])
	}
	b.Iterations = it
	rest := f[2:]
	if len(rest)%2 != 0 {
		return b, fmt.Errorf("benchmark %s: metrics %q: want value-unit pairs", b.Name, strings.Join(rest, " "))
	}
	for i := 0; i < len(rest); i += 2 {
		v, err := strconv.ParseFloat(rest[i], 64)
		if err != nil {
			return b, fmt.Errorf("benchmark %s: metric value %q: %w", b.Name, rest[i], err)
		}
		b.Metrics[rest[i+1]] = v
	}
	return b, nil
}
