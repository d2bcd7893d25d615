package harness

import (
	"fmt"
	"slices"
	"time"
)

// Summary describes a sample of durations.
type Summary struct {
	N                   int
	Min, P50, P90, P99  time.Duration
	Max, Mean           time.Duration
	sortedForPercentile []time.Duration
}

// Summarize computes the summary of d (which it does not modify).
func Summarize(d []time.Duration) Summary {
	s := Summary{N: len(d)}
	if len(d) == 0 {
		return s
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	var sum time.Duration
	for _, v := range sorted {
		sum += v
	}
	s.sortedForPercentile = sorted
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Mean = sum / time.Duration(len(sorted))
	s.P50, s.P90, s.P99 = s.Percentile(50), s.Percentile(90), s.Percentile(99)
	return s
}

// Percentile is the nearest-rank percentile p (0 < p <= 100): the smallest
// value with at least p % of the sample at or below it.
func (s Summary) Percentile(p float64) time.Duration {
	n := len(s.sortedForPercentile)
	if n == 0 {
		return 0
	}
	rank := int(float64(n)*p/100 + 0.999999999)
	rank = min(max(rank, 1), n)
	return s.sortedForPercentile[rank-1]
}

func (s Summary) String() string {
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s min=%s max=%s mean=%s",
		s.N, Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.Min), Ms(s.Max), Ms(s.Mean))
}

// Ms formats d in milliseconds with two decimals.
func Ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// Median returns the median of v (the mean of the two middle values for an
// even count), 0 for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
