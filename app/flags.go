package app

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// parseInterleaved parses flags that may appear before, between or after
// positional arguments (`classify -c f a.eml --json b.eml`), as admins type
// them. "--" where a flag may stand ends flag parsing: every argument after
// it is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endedByDashDash(fs, args[:len(args)-len(rest)]) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endedByDashDash reports whether the arguments fs.Parse consumed end with
// the "--" terminator (which the flag package swallows) rather than with a
// flag or a flag's value that happens to be "--" (-c --).
func endedByDashDash(fs *flag.FlagSet, consumed []string) bool {
	for i := 0; i < len(consumed); i++ {
		tok := consumed[i]
		if tok == "--" {
			return true
		}
		name := strings.TrimLeft(tok, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		i++ // the flag's value, which may be "--"
	}
	return false
}

func newFlagSet(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gateway %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}
