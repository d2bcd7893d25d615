//go:build linux

package harness

import (
	"os"
	"testing"
)

func TestParseProcIO(t *testing.T) {
	const io = "rchar: 8023\nwchar: 1310\nsyscr: 27\nsyscw: 9\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n"
	tests := []struct {
		name          string
		in            string
		reads, writes int64
		wantErr       bool
	}{
		{name: "both", in: io, reads: 27, writes: 9},
		{name: "only reads", in: "syscr: 27\n", wantErr: true},
		{name: "not a number", in: "syscr: x\nsyscw: 1\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := parseProcIO(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if r != tt.reads || w != tt.writes {
				t.Errorf("reads, writes = %d, %d; want %d, %d", r, w, tt.reads, tt.writes)
			}
		})
	}
}

func TestParseStatusSwitches(t *testing.T) {
	const status = "Name:\tgateway\nThreads:\t8\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n"
	if n, err := parseStatusSwitches(status); err != nil || n != 157 {
		t.Fatalf("= %d, %v; want 157", n, err)
	}
	if _, err := parseStatusSwitches("Name:\tx\nvoluntary_ctxt_switches:\t1\n"); err == nil {
		t.Fatal("a status without nonvoluntary_ctxt_switches parsed")
	}
}

// The counts of this very process grow with what it does.
func TestProcActivityCountsThisProcess(t *testing.T) {
	a0, err := procActivity(os.Getpid())
	if err != nil {
		t.Fatalf("no /proc/<pid>/io here: %v", err)
	}
	f, err := os.Create(t.TempDir() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 10 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	a1, err := procActivity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	d := a1.Sub(a0)
	if d.WriteCalls < 10 {
		t.Errorf("10 writes counted as %d", d.WriteCalls)
	}
	if d.ReadCalls < 1 { // reading /proc/<pid>/io is a read
		t.Errorf("reads counted as %d", d.ReadCalls)
	}
	if a1.Switches < 0 || d.Switches < 0 {
		t.Errorf("context switches %d (delta %d)", a1.Switches, d.Switches)
	}
}
