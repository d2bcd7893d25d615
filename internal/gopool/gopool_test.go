package gopool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolRunsEveryTask: every task runs once, tasks that wait for later
// ones do not deadlock (a new goroutine starts when none is idle), and
// goroutines are reused once idle.
func TestPoolRunsEveryTask(t *testing.T) {
	var p Pool
	const n = 64
	var ran atomic.Int32
	var wg sync.WaitGroup
	gate := make(chan struct{})
	// The first n-1 tasks wait for the last one: only goroutines enough for
	// all of them let it run.
	for i := range n {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			if i < n-1 {
				<-gate
			} else {
				close(gate)
			}
			ran.Add(1)
		})
	}
	wg.Wait()
	if ran.Load() != n {
		t.Fatalf("%d tasks ran, want %d", ran.Load(), n)
	}
	// Now idle: sequential tasks reuse goroutines instead of starting more.
	time.Sleep(10 * time.Millisecond)
	before := runtime.NumGoroutine()
	for range 200 {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines %d → %d: idle ones were not reused", before, after)
	}
}
