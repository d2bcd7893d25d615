package rules

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, and
// whatever it rejects it must reject with positioned, sorted errors.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/errors/*.yaml")
	seeds = append(seeds, "testdata/good.yaml", "../examples/gateway.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("a: [\n"))
	f.Add([]byte("{a: 1, a: 2}"))
	opt := LoadOptions{
		Getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"IMAP_PASSWORD": "pw", "HOST": "h.example", "EMPTY": ""}[k]
			return v, ok
		},
		ReadFile: func(p string) ([]byte, error) {
			if filepath.Base(p) == "smtp.txt" {
				return []byte("secret\n"), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, opt)
		if err == nil {
			if cfg == nil || len(cfg.Mailboxes) == 0 || len(cfg.Contracts) == 0 || len(cfg.Rules) == 0 || cfg.Service.Address == "" {
				t.Fatalf("accepted an incomplete config: %+v", cfg)
			}
			for _, c := range cfg.Contracts {
				if c.Calendar == nil || c.Prefix == "" || len(c.Domains)+len(c.Addresses) == 0 {
					t.Fatalf("accepted an incomplete contract: %+v", c)
				}
			}
			return
		}
		if cfg != nil {
			t.Fatalf("returned a config with errors")
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
		}
		for i, e := range es {
			if e.Line < 1 || e.Col < 1 || e.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("bad error %d: %#v", i, e)
			}
			if i > 0 && es[i-1].Pos.compare(e.Pos) > 0 {
				t.Fatalf("errors not sorted: %v", err)
			}
		}
	})
}
