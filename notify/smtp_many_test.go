package notify

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpTestBatch is n small composed messages, to distinct recipients.
func smtpTestBatch(t *testing.T, n int) []Outgoing {
	t.Helper()
	out := make([]Outgoing, n)
	for i := range out {
		raw, env := smtpTestMessage(t, i)
		env.To = []string{fmt.Sprintf("customer%02d@acme.example", i)}
		out[i] = Outgoing{Env: env, Raw: raw}
	}
	return out
}

// TestSendManyOneWrite: every transaction goes out before any reply is
// read. This server holds all its replies until it has read the last
// message's BDAT: a client that waited between transactions would hang.
func TestSendManyOneWrite(t *testing.T) {
	if !smtpQuickAckWorks {
		t.Skip("no chunking on this system (smtpQuickAck)")
	}
	msgs := smtpTestBatch(t, 5)
	msgs[4].Raw = append(bytes.Clone(msgs[4].Raw), "padding to a size of its own\r\n"...)
	last := fmt.Sprintf("BDAT %d LAST", len(msgs[4].Raw))
	basic := smtpScriptedBasic([]string{"PIPELINING", "CHUNKING", "8BITMIME"}, nil, "")
	srv := newSMTPScripted(t, func(line string, st *smtpScriptedState) []string {
		if strings.HasPrefix(line, "MAIL") && st.holdUntil == "" {
			st.holdUntil = last
		}
		return basic(line, st)
	})
	s := smtpNewSender(t, srv.config())
	for i, err := range s.SendMany(t.Context(), msgs) {
		if err != nil {
			t.Errorf("message %d: %v", i, err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.data) != len(msgs) {
		t.Fatalf("%d chunks received, want %d", len(srv.data), len(msgs))
	}
	for i, d := range srv.data {
		if d != string(msgs[i].Raw) {
			t.Errorf("message %d arrived changed", i)
		}
	}
}

// TestSendMany: against go-smtp's server (CHUNKING and PIPELINING), a
// batch arrives whole and in order on one session; a refused sender, a
// refused recipient or a refused message fails that message alone, and the
// session carries on; a server that drops the session mid-batch leaves the
// messages before it delivered and the rest with a temporary error; a
// pooled session the server dropped meanwhile is replaced and nothing is
// lost.
func TestSendMany(t *testing.T) {
	if !smtpQuickAckWorks {
		t.Skip("no chunking on this system (smtpQuickAck)")
	}
	t.Run("all delivered", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		s := smtpNewSender(t, c.config())
		msgs := smtpTestBatch(t, 12)
		for i, err := range s.SendMany(t.Context(), msgs) {
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
		sessions, got := c.stats()
		if sessions != 1 || len(got) != len(msgs) {
			t.Fatalf("%d messages over %d sessions, want %d over 1", len(got), sessions, len(msgs))
		}
		for i, m := range got {
			if m.To[0] != msgs[i].Env.To[0] || !bytes.Equal(m.Raw, msgs[i].Raw) {
				t.Errorf("message %d: to %v, intact %v", i, m.To, bytes.Equal(m.Raw, msgs[i].Raw))
			}
		}
	})
	t.Run("refusals fail their message alone", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		c.onRcpt = func(to string) error {
			switch to {
			case "customer01@acme.example":
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			case "customer03@acme.example":
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}
			}
			return nil
		}
		c.onData = func(n int, _ *smtp.Conn) error {
			if n == 2 { // the fourth message's data (the second and fourth have no recipient)
				return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "too big"}
			}
			return nil
		}
		s := smtpNewSender(t, c.config())
		msgs := smtpTestBatch(t, 6)
		errs := s.SendMany(t.Context(), msgs)
		var re *RecipientError
		var se *SendError
		switch {
		case !errors.As(errs[1], &re) || IsTemporary(errs[1]):
			t.Errorf("message 1: %v, want its only recipient refused for good", errs[1])
		case !errors.As(errs[3], &re) || !IsTemporary(errs[3]):
			t.Errorf("message 3: %v, want its only recipient refused for now", errs[3])
		case !errors.As(errs[4], &se) || se.Op != "data" || se.Code != 552:
			t.Errorf("message 4: %v, want the message refused", errs[4])
		}
		for _, i := range []int{0, 2, 5} {
			if errs[i] != nil {
				t.Errorf("message %d: %v", i, errs[i])
			}
		}
		sessions, got := c.stats()
		if sessions != 1 || len(got) != 3 {
			t.Errorf("%d messages over %d sessions, want 3 over 1", len(got), sessions)
		}
	})
	t.Run("session dropped mid-batch", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		c.onData = func(n int, conn *smtp.Conn) error {
			if n == 3 {
				_ = conn.Conn().Close()
				return errors.New("dropped")
			}
			return nil
		}
		s := smtpNewSender(t, c.config())
		msgs := smtpTestBatch(t, 6)
		errs := s.SendMany(t.Context(), msgs)
		for i, err := range errs {
			if i < 3 && err != nil {
				t.Errorf("message %d, before the drop: %v", i, err)
			}
			if i >= 3 && (err == nil || !IsTemporary(err)) {
				t.Errorf("message %d, from the drop on: %v, want a temporary error", i, err)
			}
		}
		// The next batch goes out on a new session.
		for i, err := range s.SendMany(t.Context(), msgs[3:]) {
			if err != nil {
				t.Errorf("resent message %d: %v", i+3, err)
			}
		}
		if sessions, got := c.stats(); sessions != 2 || len(got) != 6 {
			t.Errorf("%d messages over %d sessions, want 6 over 2", len(got), sessions)
		}
	})
	t.Run("stale pooled session", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		s := smtpNewSender(t, c.config())
		msgs := smtpTestBatch(t, 4)
		if err := s.Send(t.Context(), msgs[0].Env, msgs[0].Raw); err != nil {
			t.Fatal(err)
		}
		c.dropAll()
		for i, err := range s.SendMany(t.Context(), msgs) {
			if err != nil {
				t.Errorf("message %d on a dropped pooled session: %v", i, err)
			}
		}
		if sessions, got := c.stats(); sessions != 2 || len(got) != 5 {
			t.Errorf("%d messages over %d sessions, want 5 over 2", len(got), sessions)
		}
	})
	t.Run("a slow relay: the timeout is per message", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		c.onData = func(int, *smtp.Conn) error {
			time.Sleep(150 * time.Millisecond) // a content scan
			return nil
		}
		cfg := c.config()
		cfg.Timeout = 400 * time.Millisecond
		s := smtpNewSender(t, cfg)
		for i, err := range s.SendMany(t.Context(), smtpTestBatch(t, 5)) {
			if err != nil {
				t.Errorf("message %d, 150 ms each, timeout 400 ms per message: %v", i, err)
			}
		}
	})
	t.Run("a silent relay: one timeout, not one per message", func(t *testing.T) {
		basic := smtpScriptedBasic([]string{"PIPELINING", "CHUNKING", "8BITMIME"}, nil, "")
		srv := newSMTPScripted(t, func(line string, st *smtpScriptedState) []string {
			if strings.HasPrefix(line, "MAIL") {
				st.holdUntil = "NEVER" // takes everything, answers nothing
			}
			return basic(line, st)
		})
		cfg := srv.config()
		cfg.Timeout = 300 * time.Millisecond
		s := smtpNewSender(t, cfg)
		start := time.Now()
		for i, err := range s.SendMany(t.Context(), smtpTestBatch(t, 5)) {
			if err == nil || !IsTemporary(err) {
				t.Errorf("message %d: %v, want a temporary error", i, err)
			}
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("a silent relay held the batch %v, want about one timeout (300 ms), not one per message", took)
		}
	})
	t.Run("a message that cannot be one chunk", func(t *testing.T) {
		c := newSMTPCatcher(t, smtpCatcherOpts{})
		s := smtpNewSender(t, c.config())
		msgs := smtpTestBatch(t, 3)
		msgs[1].Raw = []byte("Subject: bare\n\nLF only\n")
		for i, err := range s.SendMany(t.Context(), msgs) {
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
		}
		if _, got := c.stats(); len(got) != 3 {
			t.Errorf("%d messages, want 3", len(got))
		}
	})
}
