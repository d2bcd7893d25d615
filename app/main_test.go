package app

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// exampleConfig is the annotated example configuration, which the tests
// use as an administrator would.
const exampleConfig = "../examples/gateway.yaml"

// testNow is the clock of every test: Monday 30 November 2026, 09:30 in
// Israel, 02:30 in New York.
var testNow = time.Date(2026, 11, 30, 7, 30, 0, 0, time.UTC)

// result is what one run of the command line did.
type result struct {
	code           int
	stdout, stderr string
}

// runMain runs the command line with a fixed clock and an environment that
// holds exactly vars (nil: nothing set, so every ${VAR:-default} of a
// configuration takes its default).
func runMain(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := Env{
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Now:    func() time.Time { return testNow },
	}
	code := Main(context.Background(), args, env)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// checkGolden compares got with testdata/name, or rewrites the file with
// -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 10; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			shown++
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, w, g)
		}
	}
	return b.String()
}

func TestNoArgsPrintsUsage(t *testing.T) {
	r := runMain(t, nil)
	if r.code != 2 {
		t.Errorf("exit status %d, want 2", r.code)
	}
	if !strings.HasPrefix(r.stderr, "usage: gateway <command> [flags]\n") || !strings.Contains(r.stderr, "  classify -c FILE") {
		t.Errorf("stderr is not the usage:\n%s", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    string // what stdout starts with ("": empty)
		stderr    string // what stderr starts with ("": empty)
		stderrHas string
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: "gateway " + Version + "\n"},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: "gateway " + Version + "\n"},
		{name: "help goes to stdout", args: []string{"help"}, code: 0, stdout: "usage: gateway <command> [flags]\n"},
		{name: "unknown command", args: []string{"clasify"}, code: 2,
			stderr: "gateway: unknown command \"clasify\"\nusage: gateway <command> [flags]\n"},
		{name: "classify without messages", args: []string{"classify", "-c", exampleConfig}, code: 2,
			stderr: "usage: gateway classify -c FILE [--at TIME] [--json] [--show-ack] [--redis] MESSAGE...\n"},
		{name: "classify -h", args: []string{"classify", "-h"}, code: 2,
			stderr: "usage: gateway classify -c FILE", stderrHas: "  -show-ack\n"},
		{name: "check with an unknown flag", args: []string{"check", "--config", exampleConfig}, code: 2,
			stderr: "flag provided but not defined: -config\nusage: gateway check -c FILE\n"},
		{name: "run with an unknown flag", args: []string{"run", "-c", exampleConfig, "--once"}, code: 2,
			stderr: "flag provided but not defined: -once\nusage: gateway run -c FILE "},
		{name: "check with a missing file", args: []string{"check", "-c", "testdata/no-such-file.yaml"}, code: 1,
			stderr: "gateway check: read config: open testdata/no-such-file.yaml: no such file or directory\n"},
		{name: "run with a bad log level", args: []string{"run", "-c", exampleConfig, "--log-level", "loud"}, code: 1,
			stderr: "gateway run: --log-level: slog: level string \"loud\": unknown name\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runMain(t, nil, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, tt.stdout) || (tt.stdout == "" && r.stdout != "") {
				t.Errorf("stdout = %q, want it to start with %q", r.stdout, tt.stdout)
			}
			if !strings.HasPrefix(r.stderr, tt.stderr) || (tt.stderr == "" && r.stderr != "") {
				t.Errorf("stderr = %q, want it to start with %q", r.stderr, tt.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderrHas) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.stderrHas)
			}
		})
	}
}

// TestVersionIsSet guards against an empty version line when the build
// sets none.
func TestVersionIsSet(t *testing.T) {
	r := runMain(t, nil, "version")
	if v := strings.TrimSpace(strings.TrimPrefix(r.stdout, "gateway")); v == "" {
		t.Errorf("version prints %q: no version", r.stdout)
	}
}
