package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/domain"
	"github.com/northwind-it/ticketgw/service"
	"github.com/northwind-it/ticketgw/store"
)

// refProbeStore records, for every entry the pipeline queues, whether it
// carries its bytes and how large its payload is in Redis.
type refProbeStore struct {
	*store.Store // all of it: the pipeline asks for more than service.Store
	rdb          redis.UniversalClient
	msgKey       string

	mu      sync.Mutex
	entries map[string]refProbe
}

type refProbe struct {
	inline, ref bool
	stored      int64 // HSTRLEN of the payload right after Enqueue
}

func (s *refProbeStore) Enqueue(ctx context.Context, e store.OutboxEntry, now time.Time) (bool, error) {
	added, err := s.Store.Enqueue(ctx, e, now)
	if err != nil {
		return added, err
	}
	n, herr := s.rdb.HStrLen(ctx, s.msgKey, e.Key).Result()
	if herr != nil {
		return added, fmt.Errorf("probe %s: %w", e.Key, herr)
	}
	s.mu.Lock()
	s.entries[e.Key] = refProbe{inline: len(e.Raw) > 0, ref: e.Ref != nil && e.Ref.MessageID != "", stored: n}
	s.mu.Unlock()
	return added, nil
}

// CommitMessage probes each entry as Enqueue does (one round trip each).
func (s *refProbeStore) CommitMessage(ctx context.Context, c store.Commit, now time.Time) ([]bool, error) {
	if len(c.IDs) > 0 {
		if err := s.Store.IndexMessageIDs(ctx, c.TicketID, c.IDs...); err != nil {
			return nil, err
		}
	}
	added := make([]bool, len(c.Entries))
	for i, e := range c.Entries {
		var err error
		if added[i], err = s.Enqueue(ctx, e, now); err != nil {
			return added, err
		}
	}
	if c.Processed != nil {
		return added, s.Store.MarkProcessed(ctx, *c.Processed, c.TicketID)
	}
	return added, nil
}

func (s *refProbeStore) probe(t *testing.T, prefix string) (string, refProbe) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.entries {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) != 1 {
		t.Fatalf("entries %q: %v, want one", prefix, keys)
	}
	return keys[0], s.entries[keys[0]]
}

// refNotFoundSeen reports whether an outbox entry failed because its
// original was not in the processed folder yet.
func refNotFoundSeen(ctx context.Context, rdb redis.UniversalClient, errKey string) bool {
	errs, err := rdb.HGetAll(ctx, errKey).Result()
	if err != nil {
		return false
	}
	for _, v := range errs {
		if strings.Contains(v, "no message with that Message-ID") {
			return true
		}
	}
	return false
}

// TestOutboxLargeMailByReference: the staff copy of a customer message with
// a 3 MiB attachment, and a staff reply with one relayed to the customer,
// are queued as recipes referring to the originals (a small payload in
// Redis), sent once the original is in the processed folder (the first
// attempt is made before the move and retried), and arrive with the
// attachments byte-identical; a small message's forward stays inline.
func TestOutboxLargeMailByReference(t *testing.T) {
	ctx := convContext(t)
	var probe *refProbeStore
	var holdMu sync.Mutex
	hold := map[string]bool{} // Message-IDs whose move waits for a failed send
	var errKey string
	e := newConvEnv(t, ctx, convSetup{pipeline: func(p *service.Pipeline) {
		prefix := p.Cfg.Redis.Prefix
		errKey = prefix + "{outbox}:errors"
		probe = &refProbeStore{Store: p.Store.(*store.Store), msgKey: prefix + "{outbox}:msg", entries: map[string]refProbe{}}
		p.Store = probe
		p.FaultHook = func(step string, m *domain.Message) error {
			holdMu.Lock()
			wait := step == "before-mark" && hold[m.MessageID]
			holdMu.Unlock()
			if !wait {
				return nil
			}
			// The original is not moved before the sender tried once.
			deadline := time.Now().Add(10 * time.Second)
			for !refNotFoundSeen(ctx, probe.rdb, errKey) {
				if time.Now().After(deadline) {
					return fmt.Errorf("no send attempt failed for want of the original")
				}
				time.Sleep(10 * time.Millisecond)
			}
			return nil
		}
	}})
	probe.rdb = e.w.Redis

	big := func(seed uint64) []byte {
		b := make([]byte, 3<<20)
		r := rand.New(rand.NewPCG(seed, seed))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}

	// A small message: its forward is inline.
	small := convCustomer("small-1@mail.acme.co.il", "Printer", "The printer is jammed.\n", convAt(1, 8, 0))
	tkSmall, _, _ := e.open(small)
	if _, p := probe.probe(t, "fwd:"+tkSmall.ID+":"); !p.inline || p.ref {
		t.Errorf("small forward: %+v, want inline bytes", p)
	}

	// A large customer message.
	custData := big(1)
	orig := convCustomer("big-1@mail.acme.co.il", "Logs", "The logs you asked for are attached.\n", convAt(1, 9, 0))
	orig.Attach = &convFile{Name: "logs.bin", Type: "application/octet-stream", Data: custData}
	holdMu.Lock()
	hold[orig.MessageID] = true
	holdMu.Unlock()
	tk, _, fwd := e.open(orig)
	key, p := probe.probe(t, "fwd:"+tk.ID+":")
	if p.inline || !p.ref || p.stored == 0 || p.stored >= 64<<10 {
		t.Errorf("forward entry %s: %+v, want a reference under 64 KiB in Redis", key, p)
	}
	if got := e2eAttachments(t, fwd.Raw)["logs.bin"]; string(got) != string(custData) {
		t.Errorf("forwarded attachment: %d bytes, differs from the customer's %d", len(got), len(custData))
	}
	if !strings.Contains(fwd.Msg.Subject, "["+tk.ID+"]") {
		t.Errorf("forward subject %q lacks the tag", fwd.Msg.Subject)
	}

	// A large staff reply.
	staffData := big(2)
	r := convStaffReply(fwd, "Hi Yossi,\nthe fixed configuration is attached.\n\nDana", convAt(1, 9, 40))
	r.Attach = &convFile{Name: "fixed.bin", Type: "application/octet-stream", Data: staffData}
	e.deliver(r)
	e.settle()
	relay := convOne(t, e.take(), "relay")
	key, p = probe.probe(t, "relay:"+tk.ID+":")
	if p.inline || !p.ref || p.stored == 0 || p.stored >= 64<<10 {
		t.Errorf("relay entry %s: %+v, want a reference under 64 KiB in Redis", key, p)
	}
	if got := e2eAttachments(t, relay.Raw)["fixed.bin"]; string(got) != string(staffData) {
		t.Errorf("relayed attachment: %d bytes, differs from the staff member's %d", len(got), len(staffData))
	}
	text := convTextOf(t, relay.Raw)
	if !strings.Contains(text, "the fixed configuration is attached") {
		t.Errorf("relay text lacks the staff member's words:\n%s", text)
	}
	if relay.Msg.From.Addr != convSupport || len(relay.To) != 1 || relay.To[0] != "yossi@acme.co.il" {
		t.Errorf("relay from %s to %v, want the support address to the requester", relay.Msg.From.Addr, relay.To)
	}

	// A large message from a sender no contract claims: its staff copy
	// refers to the original too.
	strangerData := big(3)
	u := convCustomer("big-2@unknown.example", "Offer", "Please see the attached offer.\n", convAt(1, 10, 0))
	u.From = "Stranger <sales@unknown.example>"
	u.Attach = &convFile{Name: "offer.bin", Type: "application/octet-stream", Data: strangerData}
	e.deliver(u)
	e.settle()
	var ufwd *convMail
	for _, m := range e.take() {
		if m.Kind() == "fwd" {
			ufwd = &m
		}
	}
	if ufwd == nil {
		t.Fatal("no staff copy of the unknown sender's mail")
	}
	key, p = probe.probe(t, "fwd:unknown:")
	if p.inline || !p.ref || p.stored == 0 || p.stored >= 64<<10 {
		t.Errorf("unknown-sender forward entry %s: %+v, want a reference under 64 KiB in Redis", key, p)
	}
	if got := e2eAttachments(t, ufwd.Raw)["offer.bin"]; string(got) != string(strangerData) {
		t.Errorf("forwarded attachment: %d bytes, differs from the sender's %d", len(got), len(strangerData))
	}
}
