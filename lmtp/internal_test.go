package lmtp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// FuzzReadMessage feeds arbitrary envelopes and bytes to what reads a
// pushed message: it never panics, keeps the bytes as they came behind the
// Return-Path line, and refuses exactly what exceeds the limit.
func FuzzReadMessage(f *testing.F) {
	f.Add("c@acme.example", []byte("Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody\r\n"))
	f.Add("", []byte("From: MAILER-DAEMON\r\n\r\n"))
	f.Add("x", []byte("no header at all"))
	f.Add("\"odd local\"@example", []byte("Message-Id:\r\n <folded@id>\r\n\r\n"))
	f.Add("c@x", bytes.Repeat([]byte("Message-ID: <"+strings.Repeat("y", 300)+">\n"), 3))
	const max = 1024
	f.Fuzz(func(t *testing.T, from string, body []byte) {
		raw, err := readMessage(bytes.NewReader(body), from, max)
		if len(body) > max {
			if !errors.Is(err, smtp.ErrDataTooLarge) {
				t.Fatalf("%d bytes over a %d limit: %v", len(body), max, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte("Return-Path: <"+from+">\r\n"), body...)
		if !bytes.Equal(raw, want) {
			t.Fatalf("got %q, want %q", raw, want)
		}
		if id := headerMessageID(raw); len(id) > 256 {
			t.Fatalf("message id of %d bytes", len(id))
		}
	})
}

func TestHeaderMessageID(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"Return-Path: <>\r\nMessage-ID: <a@b>\r\n\r\nx", "<a@b>"},
		{"Message-Id:\r\n  <folded@b>\r\nSubject: s\r\n\r\n", "<folded@b>"},
		{"Subject: none\r\n\r\nMessage-ID: <in-body@b>\r\n", ""},
		{"garbage without colon\r\nMessage-ID: <x@y>\r\n\r\n", ""},
	}
	for _, tc := range tests {
		if got := headerMessageID([]byte(tc.raw)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration // of the result, jitter included
	}{
		{1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{2, 1600 * time.Millisecond, 2400 * time.Millisecond},
		{4, 6400 * time.Millisecond, 9600 * time.Millisecond},
		{30, 48 * time.Second, 72 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			d := backoff(time.Second, time.Minute, tc.n)
			if d < tc.min || d > tc.max {
				t.Fatalf("attempt %d: %v outside [%v, %v]", tc.n, d, tc.min, tc.max)
			}
		}
	}
}
