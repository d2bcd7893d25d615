package service

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/ingest"
)

// spoolBytes is the largest message held in memory while it is handled; a
// larger one is written to a temporary file as it is read, so that a 50 MB
// attachment costs the gateway a buffer, not twice its size in heap. It is
// outboxInlineBytes: a message above it is only read again by reference, as
// a stream (the parser, the forward composed to nowhere, the hash).
const spoolBytes = outboxInlineBytes

// Original is the message being handled, exactly as read: in memory, or
// spooled to a temporary file (deleted by Close) when larger than
// spoolBytes. Everything downstream reads it as a stream.
type Original struct {
	mem  []byte
	file *os.File
	size int64
	sum  []byte // SHA-256, computed while spooling or on first use
}

// newOriginal holds b (not copied) as the message.
func newOriginal(b []byte) *Original { return &Original{mem: b, size: int64(len(b))} }

// fetchedOriginal is the message f delivers, up to max bytes (truncated
// reports whether more followed): its bytes when the source already holds
// them in memory, else read from its body (readOriginal) into a temporary
// file in os.TempDir() when large.
func fetchedOriginal(f *ingest.Fetched, max int64) (o *Original, truncated bool, err error) {
	if f.Raw != nil {
		b := f.Raw
		if int64(len(b)) > max {
			b, truncated = b[:max], true
		}
		return newOriginal(b), truncated, nil
	}
	return readOriginal(f.Body, max, "", f.Size)
}

// readOriginal reads r up to max bytes (truncated reports whether more
// followed), in memory up to spoolBytes and beyond that in a temporary file
// in dir (os.TempDir() when empty). hint is the size the server announced (0
// when unknown), so that a message is read into a buffer of its size.
func readOriginal(r io.Reader, max int64, dir string, hint int64) (o *Original, truncated bool, err error) {
	lim := io.LimitReader(r, max+1)
	size := int64(16 << 10)
	if hint > 0 {
		size = hint + bytes.MinRead // room for the read that finds the end
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(size, max+bytes.MinRead, spoolBytes+bytes.MinRead)))
	n, err := io.Copy(buf, io.LimitReader(lim, spoolBytes+1))
	if err != nil {
		return nil, false, err
	}
	if n <= spoolBytes {
		b := buf.Bytes()
		if int64(len(b)) > max {
			b, truncated = b[:max], true
		}
		return newOriginal(b), truncated, nil
	}
	f, err := os.CreateTemp(dir, "ticketgw-message-*.eml")
	if err != nil {
		return nil, false, fmt.Errorf("spool large message: %w", err)
	}
	// The name is not needed again: removed now, the file lives until it is
	// closed and never outlives a crash.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("spool large message: %w", err)
	}
	// The hash is of what is kept: the first max bytes.
	h := &prefixHash{h: sha256.New(), left: max}
	w := io.MultiWriter(f, h)
	total, err := w.Write(buf.Bytes())
	if err == nil {
		var m int64
		m, err = io.CopyBuffer(w, lim, make([]byte, 64<<10))
		total += int(m)
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("read or spool large message: %w", err)
	}
	o = &Original{file: f, size: int64(total), sum: h.h.Sum(nil)}
	if o.size > max {
		o.size, truncated = max, true
	}
	return o, truncated, nil
}

// prefixHash hashes the first left bytes written to it and ignores the rest.
type prefixHash struct {
	h    hash.Hash
	left int64
}

func (p *prefixHash) Write(b []byte) (int, error) {
	if k := min(int64(len(b)), p.left); k > 0 {
		p.h.Write(b[:k])
		p.left -= k
	}
	return len(b), nil
}

// Size is the message's length in bytes.
func (o *Original) Size() int64 { return o.size }

// Reader returns a reader of the whole message from its start; readers are
// independent of each other.
func (o *Original) Reader() io.Reader {
	if o.file != nil {
		return io.NewSectionReader(o.file, 0, o.size)
	}
	return memReader{bytes.NewReader(o.mem), o.mem}
}

// memReader reads a message in memory and lends its unread bytes
// (Bytes), so that a forward splits it in place instead of copying it
// through buffers (notify.ComposeForward).
type memReader struct {
	*bytes.Reader
	b []byte
}

// Bytes returns the bytes not read yet; the caller must not change them.
func (m memReader) Bytes() []byte { return m.b[len(m.b)-m.Len():] }

// Sum is the SHA-256 of the message (computed while spooling a large one,
// on first use for one in memory).
func (o *Original) Sum() []byte {
	if o.sum == nil {
		s := sha256.Sum256(o.mem)
		o.sum = s[:]
	}
	return o.sum
}

// Close deletes a spooled copy.
func (o *Original) Close() error {
	if o.file == nil {
		return nil
	}
	return o.file.Close()
}

// dedupKey is DedupKey for an Original, without reading it into memory.
func dedupKey(m *domain.Message, o *Original) string {
	if m.MessageID != "" {
		return "mid:" + strings.ToLower(m.MessageID)
	}
	return "sha256:" + hex.EncodeToString(o.Sum())
}
