package app

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: the collector's target becomes defaultGCPercent unless GOGC
// is set, which stands.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	env := func(set bool) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == "GOGC" && set {
				return "50", true
			}
			return "", false
		}
	}
	if _, ok := tuneGC(env(true)); ok {
		t.Error("tuned with GOGC set")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: target %d, want it left at 100", got)
	}
	if pct, ok := tuneGC(env(false)); !ok || pct != defaultGCPercent {
		t.Errorf("tuneGC = %d %v", pct, ok)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC unset: target %d, want %d", got, defaultGCPercent)
	}
}
