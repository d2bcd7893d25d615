package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// parseHeaderSeeds are the corpus messages and testdata, as for FuzzParse.
func parseHeaderSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	for _, folder := range []string{"plain", "charsets", "mime-edge", "autoreply", "bounces", "lists"} {
		entries, _ := os.ReadDir(filepath.Join(parseCorpusRoot, folder))
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); ext != ".md" && ext != ".tsv" && !e.IsDir() {
				if raw, err := os.ReadFile(filepath.Join(parseCorpusRoot, folder, e.Name())); err == nil {
					out = append(out, raw)
				}
			}
		}
	}
	local, _ := filepath.Glob(filepath.Join("testdata", "*", "*.eml"))
	for _, p := range local {
		if raw, err := os.ReadFile(p); err == nil {
			out = append(out, raw)
		}
	}
	return out
}

// parseHeaderAgrees checks that ParseHeader gives what Parse gives for the
// fields that come from the header alone: the threading ids always, the
// addresses and subject when the header is plain ASCII (otherwise Parse
// may read raw 8-bit bytes in the charset of the first text part).
func parseHeaderAgrees(t *testing.T, raw []byte) {
	t.Helper()
	lim := DefaultLimits()
	h := ParseHeader(bytes.NewReader(raw), lim)
	m := Parse(bytes.NewReader(raw), lim)
	if h.MessageID != m.MessageID || !slices.Equal(h.InReplyTo, m.InReplyTo) || !slices.Equal(h.References, m.References) {
		t.Fatalf("ids: header-only %q %q %q, full %q %q %q", h.MessageID, h.InReplyTo, h.References, m.MessageID, m.InReplyTo, m.References)
	}
	end := bytes.Index(raw, []byte("\n\n"))
	if e := bytes.Index(raw, []byte("\r\n\r\n")); e >= 0 && (end < 0 || e < end) {
		end = e
	}
	if end < 0 {
		end = len(raw)
	}
	ascii := true
	for _, b := range raw[:end] {
		if b >= 0x80 || b == 0 {
			ascii = false
			break
		}
	}
	if ascii && (h.From != m.From || h.Subject != m.Subject) {
		t.Fatalf("header-only From %+v subject %q, full From %+v subject %q", h.From, h.Subject, m.From, m.Subject)
	}
	if !utf8.ValidString(h.Subject) || !utf8.ValidString(h.From.Name) {
		t.Fatalf("invalid UTF-8: subject %q from %q", h.Subject, h.From.Name)
	}
}

// parseThreadHeaderAgrees checks that ParseThreadHeader gives exactly
// ParseHeader's From, Subject and threading ids.
func parseThreadHeaderAgrees(t *testing.T, raw []byte) {
	t.Helper()
	lim := DefaultLimits()
	h := ParseHeader(bytes.NewReader(raw), lim)
	b := ParseThreadHeader(bytes.NewReader(raw), lim)
	if b.From != h.From || b.Subject != h.Subject || b.MessageID != h.MessageID ||
		!slices.Equal(b.InReplyTo, h.InReplyTo) || !slices.Equal(b.References, h.References) {
		t.Fatalf("thread header From %+v %q %q %q %q, header %+v %q %q %q %q",
			b.From, b.Subject, b.MessageID, b.InReplyTo, b.References, h.From, h.Subject, h.MessageID, h.InReplyTo, h.References)
	}
}

func TestParseHeaderAgreesWithParse(t *testing.T) {
	seeds := parseHeaderSeeds(t)
	if len(seeds) < 20 {
		t.Fatalf("only %d corpus messages found", len(seeds))
	}
	for _, raw := range seeds {
		parseHeaderAgrees(t, raw)
		parseThreadHeaderAgrees(t, raw)
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, raw := range parseHeaderSeeds(f) {
		f.Add(raw)
	}
	f.Add([]byte("From: a\r\n b@c\r\nIn-Reply-To: <x@y> junk <z@w\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		parseHeaderAgrees(t, raw)
		parseThreadHeaderAgrees(t, raw)
	})
}
