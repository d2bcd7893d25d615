package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/mail"
	"testing"
	"time"
)

func TestByteSizeSet(t *testing.T) {
	tests := []struct {
		in      string
		want    byteSize
		wantErr bool
	}{
		{in: "52428800", want: 52428800},
		{in: "50MiB", want: 50 << 20},
		{in: "50mb", want: 50e6},
		{in: "512KiB", want: 512 << 10},
		{in: "7B", want: 7},
		{in: "", wantErr: true},
		{in: "MiB", wantErr: true},
		{in: "5GiB", wantErr: true},
		{in: "2000000MiB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b byteSize
			err := b.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && b != tt.want {
				t.Errorf("Set(%q) = %d, want %d", tt.in, b, tt.want)
			}
		})
	}
}

// The attachment decodes to exactly the requested number of bytes, for
// sizes that do and do not fill the last 57-byte line.
func TestAttachmentMailCarriesTheRequestedSize(t *testing.T) {
	for _, size := range []int64{1, 57, 58, 100000} {
		m := attachmentMail("t", 3, size, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatalf("size %d: read message: %v", size, err)
		}
		if got := msg.Header.Get("Message-ID"); got != "<"+m.MessageID+">" {
			t.Errorf("size %d: Message-ID %q, want <%s>", size, got, m.MessageID)
		}
		body, err := io.ReadAll(msg.Body)
		if err != nil {
			t.Fatal(err)
		}
		const head = "Content-Transfer-Encoding: base64\r\n\r\n"
		i := bytes.Index(body, []byte(head))
		j := bytes.LastIndex(body, []byte("--bench-boundary--"))
		if i < 0 || j < i {
			t.Fatalf("size %d: attachment part not found", size)
		}
		enc := bytes.ReplaceAll(body[i+len(head):j], []byte("\r\n"), nil)
		dec, err := base64.StdEncoding.DecodeString(string(enc))
		if err != nil {
			t.Fatalf("size %d: decode attachment: %v", size, err)
		}
		if int64(len(dec)) != size {
			t.Errorf("attachment is %d bytes, want %d", len(dec), size)
		}
	}
}
