package ingest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/northwind-it/ticketgw/domain"
)

// BenchmarkParseTypical parses testdata/bench/typical.eml: a ~21 KB
// multipart/mixed message (Outlook-like multipart/alternative with a Hebrew
// and English quoted-printable text and HTML body, and a 3 KB PDF).
func BenchmarkParseTypical(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "bench", "typical.eml"))
	if err != nil {
		b.Fatal(err)
	}
	lim := DefaultLimits()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		m := Parse(bytes.NewReader(raw), lim)
		if m.Text == "" || len(m.Attachments) != 1 {
			b.Fatalf("unexpected result: %d bytes of text, %d attachments", len(m.Text), len(m.Attachments))
		}
	}
}

// BenchmarkParseThreadHeader reads what orders a message (service's
// ordering keys) from testdata/bench/typical.eml; ParseHeader for
// comparison.
func BenchmarkParseThreadHeader(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "bench", "typical.eml"))
	if err != nil {
		b.Fatal(err)
	}
	lim := DefaultLimits()
	for _, bc := range []struct {
		name  string
		parse func(io.Reader, Limits) *domain.Message
	}{{"thread", ParseThreadHeader}, {"header", ParseHeader}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m := bc.parse(bytes.NewReader(raw), lim); m.From.Addr == "" {
					b.Fatal("no From")
				}
			}
		})
	}
}
