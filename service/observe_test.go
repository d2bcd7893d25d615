package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/notify"
	"github.com/northwind-it/ticketgw/store"
)

func TestLoopReason(t *testing.T) {
	human, bounce := &domain.Message{}, &domain.Message{Auto: domain.Bounce}
	dec := func(m *domain.Message, ack bool, reason string) Decision {
		return Decision{Msg: m, Class: domain.Classification{Ack: ack, AckReason: reason}}
	}
	for _, tt := range []struct {
		name string
		o    Outcome
		want string
	}{
		{"auto-reply filed", Outcome{Action: "automatic", Decision: dec(&domain.Message{Auto: domain.AutoReply}, false, "auto-reply")}, "auto-reply"},
		{"our own loop marker", Outcome{Action: "automatic", Decision: dec(human, false, "loop")}, "loop"},
		{"our own address", Outcome{Action: "automatic", Decision: dec(human, false, "self")}, "self"},
		{"bounce recorded on its ticket, reason from the message", Outcome{Action: "automatic", Decision: dec(bounce, false, "")}, "bounce"},
		{"unknown sender answering our notice", Outcome{Action: "automatic", Decision: dec(human, false, "unknown-sender")}, "loop"},
		{"ack rate-limited", Outcome{Action: "ticket", Created: true, Decision: dec(human, false, ReasonRateLimit)}, "rate-limit"},
		{"reply to our ack that no longer threads", Outcome{Action: "ticket", Created: true, Decision: dec(human, false, "loop")}, "loop"},
		{"on-behalf rate-limited", Outcome{Action: "on-behalf", Created: true, Decision: dec(human, false, ReasonRateLimit)}, "rate-limit"},
		{"acknowledged ticket", Outcome{Action: "ticket", Created: true, Decision: dec(human, true, "")}, ""},
		{"ack off by rule", Outcome{Action: "ticket", Created: true, Decision: dec(human, false, "rule")}, ""},
		{"duplicate counts once", Outcome{Action: "duplicate", Decision: dec(human, false, ReasonRateLimit)}, ""},
		{"follow-up", Outcome{Action: "follow-up", Decision: dec(human, false, "follow-up")}, ""},
		{"already processed", Outcome{Action: "already-processed"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := loopReason(tt.o); got != tt.want {
				t.Errorf("loopReason = %q, want %q", got, tt.want)
			}
		})
	}
}

// sendFakes are an outbox handing out fixed entries and a relay failing
// per entry key.
type sendFakes struct {
	mu      sync.Mutex
	entries []store.OutboxEntry
	fail    map[string]error
	acked   []string
	retried []string
	events  []string // observer calls
}

func (f *sendFakes) ClaimOutbox(context.Context, time.Time, time.Duration, int) ([]store.OutboxEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entries
	f.entries = nil
	return e, nil
}

func (f *sendFakes) AckOutbox(_ context.Context, key string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acked = append(f.acked, key)
	return nil
}

func (f *sendFakes) RetryOutbox(_ context.Context, key string, _ time.Time, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retried = append(f.retried, key)
	return nil
}

func (f *sendFakes) ExtendOutbox(context.Context, time.Time, ...string) (int, error) { return 0, nil }

func (f *sendFakes) Send(_ context.Context, env notify.Envelope, _ []byte) error {
	return f.fail[env.To[0]]
}

func (f *sendFakes) record(s string) {
	f.mu.Lock()
	f.events = append(f.events, s)
	f.mu.Unlock()
}

func (f *sendFakes) MailSent(kind string, arrived, sent time.Time) {
	f.record("sent " + kind + " after " + sent.Sub(arrived).String())
}

func (f *sendFakes) MailFailed(kind string, temporary bool) {
	if temporary {
		f.record("failed " + kind + " temporary")
		return
	}
	f.record("failed " + kind + " permanent")
}

func (f *sendFakes) MailDropped(kind string) { f.record("dropped " + kind) }

func TestOutboxSenderObserver(t *testing.T) {
	now := time.Date(2026, 11, 30, 7, 30, 0, 0, time.UTC)
	entry := func(key, kind string, attempts int, arrived time.Time) store.OutboxEntry {
		return store.OutboxEntry{Key: key, Kind: kind, From: "s@x", To: []string{key}, Raw: []byte("m"), Attempts: attempts, Arrived: arrived}
	}
	f := &sendFakes{
		entries: []store.OutboxEntry{
			entry("ack1", "ack", 1, now.Add(-1500*time.Millisecond)),
			entry("fwd1", "forward", 1, time.Time{}),
			entry("relay1", "relay", 1, now.Add(-time.Second)),
			entry("cmderr1", "command-error", 5, now.Add(-time.Second)),
		},
		fail: map[string]error{
			"fwd1":    &notify.SendError{Op: "dial", Temporary: true, Err: errors.New("connection refused")},
			"relay1":  &notify.SendError{Op: "rcpt", Code: 550, Err: errors.New("no such user")},
			"cmderr1": &notify.SendError{Op: "rcpt", Code: 550, Err: errors.New("no such user")},
		},
	}
	o := &OutboxSender{Outbox: f, Sender: f, Observer: f, Workers: 1, MaxAttempts: 5,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	o.init()
	if n, _, err := o.drain(context.Background(), nil, 10); n != 4 || err != nil {
		t.Fatalf("drain: %d, %v", n, err)
	}
	want := []string{
		"sent ack after 1.5s",
		"failed forward temporary",
		"failed relay permanent",
		"failed command-error permanent", "dropped command-error",
	}
	if !slices.Equal(f.events, want) {
		t.Errorf("observer saw\n%q\nwant\n%q", f.events, want)
	}
	if !slices.Equal(f.acked, []string{"ack1", "cmderr1"}) || !slices.Equal(f.retried, []string{"fwd1", "relay1"}) {
		t.Errorf("acked %q, retried %q", f.acked, f.retried)
	}
}
