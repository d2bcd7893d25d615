package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. The seeds are every message of
// the corpus and of testdata, so `go test` runs them all as ordinary tests.
// Invariants: no panic (a recovered one shows as an "internal error"
// warning), valid UTF-8 everywhere, sizes within the limits.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, folder := range []string{"plain", "charsets", "mime-edge", "autoreply", "bounces", "lists"} {
		dir := filepath.Join(parseCorpusRoot, folder)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // the corpus is optional for fuzzing
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); ext != ".md" && ext != ".tsv" && !e.IsDir() {
				seeds = append(seeds, filepath.Join(dir, e.Name()))
			}
		}
	}
	local, _ := filepath.Glob(filepath.Join("testdata", "*", "*.eml"))
	seeds = append(seeds, local...)
	for _, s := range seeds {
		if raw, err := os.ReadFile(s); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\n--a--"))
	f.Add([]byte("Subject: =?utf-8?q?=?= =?x?b?====?=\r\n\r\n"))

	lim := Limits{
		MaxMessageBytes: 1 << 20,
		MaxHeaderBytes:  64 << 10,
		MaxParts:        64,
		MaxPartBytes:    256 << 10,
		MaxTextBytes:    64 << 10,
		MaxDepth:        8,
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := Parse(bytes.NewReader(raw), lim)
		want := min(int64(len(raw)), lim.MaxMessageBytes)
		if m.Size != want {
			t.Fatalf("Size = %d, want %d", m.Size, want)
		}
		if len(m.Text) > lim.MaxTextBytes || len(m.HTML) > lim.MaxTextBytes {
			t.Fatalf("text %d / html %d bytes exceed %d", len(m.Text), len(m.HTML), lim.MaxTextBytes)
		}
		if len(m.Warnings) > parserMaxWarnings+1 {
			t.Fatalf("%d warnings", len(m.Warnings))
		}
		for _, a := range m.Attachments {
			if a.Size < 0 || a.Size > lim.MaxPartBytes {
				t.Fatalf("attachment %q has size %d", a.Name, a.Size)
			}
		}
		m.Size = int64(len(raw)) // parseCheckInvariants compares with the whole input
		parseCheckInvariants(t, "fuzz input", raw, m)
	})
}
