package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/northwind-it/ticketgw/bench/internal/harness"
)

// byteSize is a -attachment flag value: 52428800, 50MiB, 50MB, 512KiB.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set implements flag.Value.
func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return errors.New("want a number of bytes with an optional unit (KB, MB, KiB, MiB)")
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return fmt.Errorf("size %q: %w", s, err)
	}
	units := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "kib": 1 << 10, "mib": 1 << 20}
	mult, ok := units[strings.ToLower(s[i:])]
	if !ok {
		return fmt.Errorf("size %q: unknown unit, want KB, MB, KiB or MiB", s)
	}
	if n > (1<<40)/mult {
		return fmt.Errorf("size %q: too large", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// attachmentMail is customer message i (acme, a fault) with a text part and
// one application/octet-stream attachment of size bytes of incompressible
// data, base64-encoded in 76-character CRLF lines as a mail client sends it.
func attachmentMail(run string, i int, size int64, now time.Time) harness.Mail {
	from := fmt.Sprintf("bench-%s-%05d@acme.co.il", run, i)
	id := fmt.Sprintf("bench-%s-%05d.attachment@acme.co.il", run, i)
	var b bytes.Buffer
	b.Grow(int(size*4/3 + size/38 + 4096))
	fmt.Fprintf(&b, "From: Bench Customer %d <%s>\r\nTo: <%s>\r\nSubject: Server down, full memory dump attached\r\n", i, from, harness.SupportAddress)
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nDate: %s\r\nMIME-Version: 1.0\r\n", id, now.Format(time.RFC1123Z))
	b.WriteString("Content-Type: multipart/mixed; boundary=\"bench-boundary\"\r\n\r\n")
	b.WriteString("--bench-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString("Hello,\r\n\r\nOur file server is down since this morning. The memory dump is attached.\r\n\r\nThanks\r\n")
	b.WriteString("--bench-boundary\r\nContent-Type: application/octet-stream; name=\"dump.bin\"\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"dump.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	rng := rand.NewChaCha8([32]byte{byte(i), byte(i >> 8)})
	raw := make([]byte, 57) // 57 bytes make one 76-character line
	line := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	for left := size; left > 0; left -= int64(len(raw)) {
		chunk := raw[:min(int64(len(raw)), left)]
		_, _ = rng.Read(chunk)
		enc := line[:base64.StdEncoding.EncodedLen(len(chunk))]
		base64.StdEncoding.Encode(enc, chunk)
		b.Write(enc)
		b.WriteString("\r\n")
	}
	b.WriteString("--bench-boundary--\r\n")
	return harness.Mail{MessageID: id, From: from, Raw: b.Bytes()}
}

// raiseMessageLimit appends a limits section to the configuration at path
// so that a message of msgBytes is within limits.max_message_bytes (default
// 64 MiB): the limit becomes the larger of 100 MiB and twice the message.
func raiseMessageLimit(path string, msgBytes int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	if bytes.Contains(data, []byte("\nlimits:")) {
		return errors.New("the configuration already has a limits section: cannot raise max_message_bytes")
	}
	limit := max(int64(100<<20), 2*int64(msgBytes))
	data = fmt.Appendf(data, "\nlimits:\n  max_message_bytes: %d\n", limit)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write configuration: %w", err)
	}
	return nil
}
