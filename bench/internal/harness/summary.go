package harness

import (
	"encoding/json"
	"fmt"
	"os"
)

// BacklogSummary is what `bench/backlog -json FILE` writes: the medians of
// its runs, per message where it says so. bench/ab reads it.
type BacklogSummary struct {
	Messages int `json:"messages"` // per run
	Runs     int `json:"runs"`
	// Rate is messages per second to the last mail accepted, StoredRate to
	// the folder empty.
	Rate       float64 `json:"rate"`
	StoredRate float64 `json:"stored_rate"`
	// CPUMs is the gateway's CPU per message in the drain window (process
	// mode; 0 in inproc mode).
	CPUMs float64 `json:"cpu_ms"`
	// ReadCalls, WriteCalls and Switches are per message (process mode).
	ReadCalls  float64 `json:"read_calls"`
	WriteCalls float64 `json:"write_calls"`
	Switches   float64 `json:"context_switches"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	RedisCPUMs float64 `json:"redis_cpu_ms"` // an upper bound: the server is shared
}

// Write writes s to path as JSON.
func (s BacklogSummary) Write(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// ReadBacklogSummary reads what Write wrote.
func ReadBacklogSummary(path string) (BacklogSummary, error) {
	var s BacklogSummary
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read summary: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode summary %s: %w", path, err)
	}
	if s.Runs == 0 || s.Rate <= 0 {
		return s, fmt.Errorf("summary %s: no runs", path)
	}
	return s, nil
}
