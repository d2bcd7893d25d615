package app

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		cfg  string
		json bool
		err  bool
	}{
		{args: nil, pos: nil, cfg: "gateway.yaml"},
		{args: []string{"a.eml"}, pos: []string{"a.eml"}, cfg: "gateway.yaml"},
		{args: []string{"-c", "x.yaml", "a.eml", "b.eml"}, pos: []string{"a.eml", "b.eml"}, cfg: "x.yaml"},
		{args: []string{"a.eml", "-c", "x.yaml", "b.eml", "--json"}, pos: []string{"a.eml", "b.eml"}, cfg: "x.yaml", json: true},
		{args: []string{"a.eml", "--json", "--", "-c", "b.eml"}, pos: []string{"a.eml", "-c", "b.eml"}, cfg: "gateway.yaml", json: true},
		{args: []string{"--c=y.yaml", "-", "a.eml"}, pos: []string{"-", "a.eml"}, cfg: "y.yaml"}, // "-" is an argument
		{args: []string{"--", "--json", "--json"}, pos: []string{"--json", "--json"}, cfg: "gateway.yaml"},
		{args: []string{"a.eml", "--", "-c", "x.yaml", "--json"}, pos: []string{"a.eml", "-c", "x.yaml", "--json"}, cfg: "gateway.yaml"},
		{args: []string{"-c", "--", "a.eml", "--json"}, pos: []string{"a.eml"}, cfg: "--", json: true}, // "--" as a value
		{args: []string{"--json", "--", "--"}, pos: []string{"--"}, cfg: "gateway.yaml", json: true},
		{args: []string{"a.eml", "-c"}, err: true},
		{args: []string{"a.eml", "--nope"}, err: true},
	}
	for _, tt := range tests {
		fs := newFlagSet("test", io.Discard, "")
		cfg := fs.String("c", "gateway.yaml", "")
		asJSON := fs.Bool("json", false, "")
		pos, err := parseInterleaved(fs, tt.args)
		if tt.err {
			if err == nil {
				t.Errorf("%q: no error", tt.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !slices.Equal(pos, tt.pos) || *cfg != tt.cfg || *asJSON != tt.json {
			t.Errorf("%q: args %q, -c %q, --json %v; want %q, %q, %v", tt.args, pos, *cfg, *asJSON, tt.pos, tt.cfg, tt.json)
		}
	}
}

// FuzzParseInterleaved: whatever the arguments, the positional ones come
// back in their order and each is one of the arguments.
func FuzzParseInterleaved(f *testing.F) {
	for _, s := range []string{"a.eml -c x.yaml b.eml --json", "-- --json", "-c", "--json=false a -c=b", "a\x00b --", "---json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		fs := newFlagSet("fuzz", io.Discard, "")
		fs.String("c", "", "")
		fs.Bool("json", false, "")
		pos, err := parseInterleaved(fs, args)
		if err != nil {
			return
		}
		i := 0
		for _, p := range pos {
			for i < len(args) && args[i] != p {
				i++
			}
			if i == len(args) {
				t.Fatalf("positional %q is not an argument after the previous one: %q → %q", p, args, pos)
			}
			i++
		}
	})
}

// FuzzParseAt: parseAt never panics, and a time it accepts is read back to
// the same instant from its RFC 3339 form.
func FuzzParseAt(f *testing.F) {
	for _, s := range []string{"2026-11-30T09:30", "2026-11-30T09:30:00+02:00", "2026-11-30", "2026-03-29T02:30",
		"2026-11-01T01:30", "9999-12-31T23:59:59Z", "2026-11-30T09:30:00.123456789-05:00", "0000-01-01T00:00", ""} {
		f.Add(s)
	}
	jerusalem, err := time.LoadLocation("Asia/Jerusalem")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseAt(s, jerusalem)
		if err != nil {
			if !strings.Contains(err.Error(), "want RFC 3339") {
				t.Fatalf("parseAt(%q): error %q does not say what is expected", s, err)
			}
			return
		}
		if _, off := got.Zone(); off%60 != 0 {
			return // local mean time before 1880 (+02:20:40): RFC 3339 has no seconds in offsets
		}
		again, err := parseAt(got.Format(time.RFC3339Nano), jerusalem)
		if err != nil || !again.Equal(got) {
			t.Fatalf("parseAt(%q) = %v; its RFC 3339 form reads back as %v, %v", s, got, again, err)
		}
	})
}
