package app

import (
	"strings"
	"testing"
)

// TestCheck runs `gateway check` on good and broken configurations. A broken
// one exits 1 with exactly its errors on stderr, one `file:line:col:
// message` per line (SPEC §4), all of them at once, and nothing on stdout.
func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		config string
		env    map[string]string
		code   int
		stdout string
		stderr []string
	}{
		{
			name: "the example", config: exampleConfig, code: 0,
			stdout: "../examples/gateway.yaml: ok (2 contracts, 2 calendars, 5 rules, 1 mailbox)\n",
		},
		{
			name: "the example on a Sentinel", config: exampleConfig, code: 0,
			env:    map[string]string{"REDIS_URL": "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/0?sentinel_auth=true&dial_timeout=2s"},
			stdout: "../examples/gateway.yaml: ok (2 contracts, 2 calendars, 5 rules, 1 mailbox)\n",
		},
		{
			// The URL's form is the loader's (with a position); its client
			// options are checked as `run` will, and never quote the password.
			name: "unknown redis.url option", config: exampleConfig, code: 1,
			env: map[string]string{"REDIS_URL": "redis://:hunter2@n1:7000,n2:7001?dial_timeout=2s&bogus=1"},
			stderr: []string{
				`../examples/gateway.yaml: redis.url: parse redis.url: unknown option "bogus"`,
			},
		},
		{
			name: "the corpus configuration", config: "testdata/corpus.yaml", env: map[string]string{"IMAP_PASSWORD": "s3cret"},
			code: 0, stdout: "testdata/corpus.yaml: ok (1 contract, 1 calendar, 2 rules, 1 mailbox)\n",
		},
		{
			// The same file without the variable: the Env's Getenv is the
			// only environment check reads, and the error never shows a
			// value.
			name: "environment variable not set", config: "testdata/corpus.yaml", code: 1,
			stderr: []string{
				"testdata/corpus.yaml:11:13: mailbox.password: environment variable IMAP_PASSWORD is not set (write ${IMAP_PASSWORD:-default} for a default)",
			},
		},
		{
			name: "unknown keys", config: "testdata/check/unknown_key.yaml", code: 1,
			stderr: []string{
				`testdata/check/unknown_key.yaml:6:3: mailbox: unknown key "procesed_folder" (did you mean "processed_folder"?)`,
				`testdata/check/unknown_key.yaml:18:7: contracts[0].sla: unknown category "fualt" (did you mean "fault"?); expected fault, request or imac (or warn_at)`,
			},
		},
		{
			name: "missing calendar", config: "testdata/check/missing_calendar.yaml", code: 1,
			stderr: []string{
				`testdata/check/missing_calendar.yaml:13:15: contracts[0].calendar: unknown calendar "us-east": expected israel-office`,
			},
		},
		{
			name: "bad regexps", config: "testdata/check/bad_regexp.yaml", code: 1,
			stderr: []string{
				"testdata/check/bad_regexp.yaml:17:26: rules[0].when.subject.matches: invalid regexp: error parsing regexp: missing closing ): `(?i)\\b(down|outage`",
				"testdata/check/bad_regexp.yaml:20:28: rules[1].when.body.matches: invalid regexp: error parsing regexp: invalid named capture: `(?<!pro)forma`",
			},
		},
		{
			// Overrides that do not parse: every broken file is named, with
			// its line (text/template gives no column for these).
			name: "template override that does not parse", config: "testdata/check/bad_template_parse.yaml", code: 1,
			stderr: []string{
				"testdata/check/templates-parse/ack.en.subject.tmpl:1: bad character U+007D '}'",
				"testdata/check/templates-parse/ack.he.txt.tmpl:4: unexpected EOF",
			},
		},
		{
			// An override that parses but fails on real data: check renders
			// every template with sample data, so this fails here and not
			// when the first customer writes.
			name: "template override that fails to render", config: "testdata/check/bad_template_exec.yaml", code: 1,
			stderr: []string{
				`testdata/check/templates-exec/ack.en.subject.tmpl:1:43: executing "ack.en.subject.tmpl" at <.ContractNmae>: can't evaluate field ContractNmae in type notify.AckData (with sample data "fault")`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runMain(t, tt.env, "check", "-c", tt.config)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d", r.code, tt.code)
			}
			if r.stdout != tt.stdout {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.stdout)
			}
			want := ""
			if len(tt.stderr) > 0 {
				want = strings.Join(tt.stderr, "\n") + "\n"
			}
			if r.stderr != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
			}
		})
	}
}

// TestCheckMissingTemplateDir: a templates.dir that does not exist fails
// check (the loader does not know its position, so the line names the
// directory).
func TestCheckMissingTemplateDir(t *testing.T) {
	r := runMain(t, nil, "check", "-c", "testdata/check/missing_template_dir.yaml")
	if r.code != 1 || r.stdout != "" {
		t.Errorf("exit status %d, stdout %q; want 1 and nothing", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "testdata/check/no-such-dir") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one line naming testdata/check/no-such-dir", r.stderr)
	}
}

// TestRunChecksLikeCheck: `run` loads the configuration with the same code
// as `check`, so a broken file stops it before it touches the network, with
// the same messages.
func TestRunChecksLikeCheck(t *testing.T) {
	for _, config := range []string{"testdata/check/unknown_key.yaml", "testdata/check/bad_template_exec.yaml"} {
		t.Run(config, func(t *testing.T) {
			check := runMain(t, nil, "check", "-c", config)
			run := runMain(t, nil, "run", "-c", config)
			if run.code != 1 || check.code != 1 {
				t.Errorf("exit status: run %d, check %d; want 1", run.code, check.code)
			}
			if run.stderr != check.stderr || run.stderr == "" {
				t.Errorf("run says:\n%s\ncheck says:\n%s", run.stderr, check.stderr)
			}
		})
	}
}
