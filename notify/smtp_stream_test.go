package notify

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestSendStream: a message composed while sent arrives byte for byte; a
// composer that fails midway delivers nothing (the data is never ended),
// its error is a *ComposeError and not temporary by itself, and the next
// message goes out on a fresh session.
func TestSendStream(t *testing.T) {
	c := newSMTPCatcher(t, smtpCatcherOpts{})
	s := smtpNewSender(t, c.config())
	a := mailHebrewAck()
	raw, env, err := ComposeAck(a)
	if err != nil {
		t.Fatal(err)
	}
	halves := func(w io.Writer) error {
		if _, err := w.Write(raw[:len(raw)/2]); err != nil {
			return err
		}
		_, err := io.Copy(w, bytes.NewReader(raw[len(raw)/2:]))
		return err
	}
	broken := errors.New("original gone")
	for _, tt := range []struct {
		name    string
		write   func(io.Writer) error
		wantErr error
	}{
		{"streamed", halves, nil},
		{"composer fails midway", func(w io.Writer) error {
			if _, err := w.Write(raw[:len(raw)/2]); err != nil {
				return err
			}
			return broken
		}, broken},
		{"streamed again", halves, nil},
	} {
		_, before := c.stats()
		err := s.SendStream(t.Context(), env, tt.write)
		_, after := c.stats()
		if tt.wantErr == nil {
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if len(after) != len(before)+1 || !bytes.Equal(after[len(after)-1].Raw, raw) {
				t.Errorf("%s: arrived bytes differ from the composed ones", tt.name)
			}
			continue
		}
		var ce *ComposeError
		if !errors.Is(err, tt.wantErr) || !errors.As(err, &ce) || IsTemporary(err) {
			t.Errorf("%s: err %v (temporary %v), want a ComposeError wrapping %v", tt.name, err, IsTemporary(err), tt.wantErr)
		}
		if len(after) != len(before) {
			t.Errorf("%s: a partial message was delivered", tt.name)
		}
	}
	if err := s.SendStream(t.Context(), env, nil); err == nil {
		t.Error("a nil composer was accepted")
	}
}
