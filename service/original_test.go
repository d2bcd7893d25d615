package service

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"testing"
	"testing/iotest"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
)

func TestReadOriginal(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (spoolBytes/16)+1000) // above spoolBytes
	tests := []struct {
		name      string
		in        []byte
		max       int64
		want      []byte
		spooled   bool
		truncated bool
	}{
		{"empty", nil, 100, nil, false, false},
		{"small", []byte("Subject: x\r\n\r\nhi\r\n"), 100, []byte("Subject: x\r\n\r\nhi\r\n"), false, false},
		{"small truncated", []byte("Subject: x\r\n\r\nhi\r\n"), 5, []byte("Subjec")[:5], false, true},
		{"exactly spoolBytes", big[:spoolBytes], 1 << 30, big[:spoolBytes], false, false},
		{"large spooled", big, 1 << 30, big, true, false},
		{"large truncated", big, spoolBytes + 10, big[:spoolBytes+10], true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// One byte at a time: reads that return little must not matter.
			o, truncated, err := readOriginal(iotest.OneByteReader(bytes.NewReader(tc.in)), tc.max, dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if truncated != tc.truncated || o.Size() != int64(len(tc.want)) || (o.file != nil) != tc.spooled {
				t.Fatalf("truncated %v size %d spooled %v; want %v %d %v", truncated, o.Size(), o.file != nil, tc.truncated, len(tc.want), tc.spooled)
			}
			for range 2 { // readers are independent
				got, err := io.ReadAll(o.Reader())
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(tc.want))
				}
			}
			sum := sha256.Sum256(tc.want)
			if !bytes.Equal(o.Sum(), sum[:]) {
				t.Error("Sum differs from the SHA-256 of the kept bytes")
			}
			if dedupKey(&domain.Message{}, o) != DedupKey(&domain.Message{}, tc.want) {
				t.Error("dedupKey of the spool differs from DedupKey of the bytes")
			}
			// The spool has no name in the directory, even before Close.
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("spool directory holds %d files", len(ents))
			}
		})
	}
}

func TestReadOriginalErrors(t *testing.T) {
	big := bytes.Repeat([]byte("x"), spoolBytes+100)
	// A read error after the spool began.
	r := io.MultiReader(bytes.NewReader(big), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, _, err := readOriginal(r, 1<<30, t.TempDir(), 0); err == nil {
		t.Error("a failing read of a large message gave no error")
	}
	if _, _, err := readOriginal(iotest.ErrReader(io.ErrUnexpectedEOF), 1<<30, t.TempDir(), 0); err == nil {
		t.Error("a failing read of a small message gave no error")
	}
	// No spool directory.
	if _, _, err := readOriginal(bytes.NewReader(big), 1<<30, "/nonexistent/dir", 0); err == nil {
		t.Error("a spool in a missing directory gave no error")
	}
}

// TestFetchedOriginalUsesRaw: bytes the source already holds are used as
// they are (no copy), cut at max; without them the body is read.
func TestFetchedOriginalUsesRaw(t *testing.T) {
	raw := []byte("Subject: x\r\n\r\nhello\r\n")
	o, truncated, err := fetchedOriginal(&ingest.Fetched{Raw: raw, Body: iotest.ErrReader(io.ErrUnexpectedEOF)}, 100)
	if err != nil || truncated || o.Size() != int64(len(raw)) || &o.mem[0] != &raw[0] {
		t.Errorf("Raw set: size %d truncated %v err %v, shares the bytes %v", o.Size(), truncated, err, err == nil && &o.mem[0] == &raw[0])
	}
	o, truncated, err = fetchedOriginal(&ingest.Fetched{Raw: raw}, 5)
	if err != nil || !truncated || string(o.mem) != "Subje" {
		t.Errorf("Raw over max: %q truncated %v err %v", o.mem, truncated, err)
	}
	o, truncated, err = fetchedOriginal(&ingest.Fetched{Body: bytes.NewReader(raw), Size: int64(len(raw))}, 100)
	if err != nil || truncated || string(o.mem) != string(raw) {
		t.Errorf("Body only: %q truncated %v err %v", o.mem, truncated, err)
	}
}
