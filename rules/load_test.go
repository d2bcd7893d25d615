package rules

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .err golden files in testdata/errors")

// testEnv is the environment every fixture sees.
var testEnv = map[string]string{
	"IMAP_PASSWORD": "env-imap-secret-31337",
	"SMTP_HOST":     "smtp.env.example",
	"EMPTY":         "",
}

func testOptions(env map[string]string) LoadOptions {
	return LoadOptions{
		Getenv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		ReadFile: os.ReadFile,
	}
}

// TestErrorFixtures loads every testdata/errors/*.yaml and compares the
// errors with the sibling .err file, line for line.
func TestErrorFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("found only %d fixtures", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(file, testOptions(testEnv))
			if err == nil {
				t.Fatalf("loaded without error: %+v", cfg)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			if cfg != nil {
				t.Errorf("returned a config along with errors")
			}
			for i, e := range es {
				if e.File != file || e.Line < 1 || e.Col < 1 {
					t.Errorf("error %d has a bad position: %#v", i, e.Pos)
				}
				if i > 0 && es[i-1].Pos.compare(e.Pos) > 0 {
					t.Errorf("errors not sorted: %s before %s", es[i-1], e)
				}
				if strings.Contains(e.Msg, "\n") {
					t.Errorf("multi-line message: %q", e.Msg)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\n--- got:\n%s--- want:\n%s", golden, got, want)
			}
			for _, secret := range []string{"hunter2", testEnv["IMAP_PASSWORD"]} {
				if strings.Contains(got, secret) {
					t.Errorf("error output reveals a secret %q:\n%s", secret, got)
				}
			}
		})
	}
}

// TestAllErrorsAtOnce checks that one file with many unrelated mistakes
// reports every one of them, not just the first.
func TestAllErrorsAtOnce(t *testing.T) {
	_, err := Load("testdata/errors/many_errors.yaml", testOptions(testEnv))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %v, want Errors", err)
	}
	wants := []string{
		`:1:41: service: unknown key "nmae" (did you mean "name"?)`,
		`:2:40: mailbox.tls: invalid value "ssl"`,
		`:2:60: mailbox.poll_interval: invalid duration "10x"`,
		`:3:38: smtp.port: expected an integer, got "seven"`,
		`:4:8: staff: missing required key "queue"`,
		`:7:15: calendars.office.timezone: unknown time zone "Mars/Olympus"`,
		`:8:17: calendars.office.week.mon: invalid hours "9-17"`,
		`:12:15: contracts[0].calendar: unknown calendar "offce" (did you mean "office"?)`,
		`:13:15: contracts[0].language: invalid value "fr"`,
		`:14:20: contracts[0].sla.warn_at: 150% is outside (0%, 100%)`,
		`:14:53: contracts[0].sla.fault.urgent.response: invalid duration "1x"`,
		`:16:23: contracts[1].match.domains[0]: domain "acme.example" is already claimed by contract "acme" at testdata/errors/many_errors.yaml:11:23`,
		`:19:31: rules[0].when.subject.matches: invalid regexp: error parsing regexp: missing closing )`,
		`:19:50: rules[0].when.any: expected at least one condition`,
		`:20:21: rules[0].set.category: unknown category "outage"`,
		`:21:11: rules[1].name: duplicate rule name "outage" (first at testdata/errors/many_errors.yaml:18:11)`,
		`:22:21: rules[1].set.priority: unknown priority "hgih" (did you mean "high"?)`,
		`:23:18: unknown_senders: invalid value "maybe"`,
	}
	text := err.Error()
	for _, w := range wants {
		if !strings.Contains(text, "testdata/errors/many_errors.yaml"+w) {
			t.Errorf("missing error %q", w)
		}
	}
	if len(es) != len(wants) || t.Failed() {
		t.Errorf("got %d errors, want %d:\n%s", len(es), len(wants), text)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such-file.yaml", LoadOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a wrapped ErrNotExist", err)
	}
}

// TestExampleConfig keeps the repository's annotated example loadable.
func TestExampleConfig(t *testing.T) {
	const path = "../examples/gateway.yaml"
	if _, err := os.Stat(path); err != nil {
		t.Skip("no example config:", err)
	}
	cfg, err := Load(path, testOptions(nil))
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}
	if len(cfg.Contracts) == 0 || len(cfg.Rules) == 0 {
		t.Fatalf("example has no contracts or rules")
	}
}
