package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func mail(key string) OutboxEntry {
	return OutboxEntry{
		Key: key, Kind: "ack", Ticket: "ACME-0001",
		From: "support@northwind-it.example", To: []string{"yossi@acme.co.il"},
		Raw: []byte("Subject: [ACME-0001]\r\n\r\nשלום\r\n\x00\xff"),
	}
}

func claimKeys(t *testing.T, s *Store, now time.Time, lease time.Duration, limit int) []string {
	t.Helper()
	got, err := s.ClaimOutbox(context.Background(), now, lease, limit)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	return keys
}

func TestOutboxEnqueueIdempotent(t *testing.T) {
	s, _ := newTestStore(t, WithOutboxRetention(30*24*time.Hour))
	ctx := context.Background()
	now := received
	enqueue := func(at time.Time) bool {
		t.Helper()
		added, err := s.Enqueue(ctx, mail("ack:ACME-0001"), at)
		if err != nil {
			t.Fatal(err)
		}
		return added
	}
	if !enqueue(now) {
		t.Fatal("first enqueue not added")
	}
	if enqueue(now) {
		t.Error("pending key added again")
	}
	got, err := s.ClaimOutbox(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	e := got[0]
	want := mail("ack:ACME-0001")
	if e.Key != want.Key || e.Kind != want.Kind || e.Ticket != want.Ticket || e.From != want.From ||
		!slices.Equal(e.To, want.To) || !bytes.Equal(e.Raw, want.Raw) || e.Attempts != 1 || !e.NextTry.Equal(now) || e.LastError != "" {
		t.Errorf("claimed %+v", e)
	}
	if enqueue(now) {
		t.Error("in-flight key added again")
	}
	if err := s.AckOutbox(ctx, e.Key, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.AckOutbox(ctx, e.Key, now.Add(time.Second)); err != nil {
		t.Errorf("second ack: %v", err)
	}
	if enqueue(now.Add(29 * 24 * time.Hour)) {
		t.Error("sent key added again within retention")
	}
	if n, _, err := s.OutboxDepth(ctx); err != nil || n != 0 {
		t.Errorf("depth after ack = %d, %v", n, err)
	}
	if !enqueue(now.Add(31 * 24 * time.Hour)) {
		t.Error("key not accepted after the retention period")
	}
	if _, err := s.Enqueue(ctx, OutboxEntry{Key: "x"}, now); err == nil {
		t.Error("entry without recipients accepted")
	}
	if _, err := s.Enqueue(ctx, OutboxEntry{To: []string{"a@b"}, Raw: []byte("x")}, now); err == nil {
		t.Error("entry without key accepted")
	}
}

func TestOutboxLeaseExpiry(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := received
	for i := range 3 {
		if _, err := s.Enqueue(ctx, mail(fmt.Sprintf("ack:%d", i)), now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	lease := time.Minute
	at := now.Add(10 * time.Second)
	if got := claimKeys(t, s, at, lease, 2); !slices.Equal(got, []string{"ack:0", "ack:1"}) {
		t.Fatalf("claim 2 = %v", got)
	}
	if got := claimKeys(t, s, at, lease, 10); !slices.Equal(got, []string{"ack:2"}) {
		t.Fatalf("claim rest = %v", got)
	}
	if got := claimKeys(t, s, at.Add(lease/2), lease, 10); len(got) != 0 {
		t.Fatalf("leased entries handed out again: %v", got)
	}
	if err := s.AckOutbox(ctx, "ack:1", at); err != nil {
		t.Fatal(err)
	}
	// The worker holding ack:0 and ack:2 died: after the lease they come back.
	got, err := s.ClaimOutbox(ctx, at.Add(lease+time.Second), lease, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("re-claim = %+v, %v", got, err)
	}
	for _, e := range got {
		if e.Attempts != 2 || (e.Key != "ack:0" && e.Key != "ack:2") {
			t.Errorf("re-claimed %s attempts %d", e.Key, e.Attempts)
		}
	}
	n, oldest, err := s.OutboxDepth(ctx)
	if err != nil || n != 2 || !oldest.Equal(now) {
		t.Errorf("depth = %d %v %v; want 2, %v", n, oldest, err, now)
	}
}

func TestOutboxRetryOrdering(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := received
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s.Enqueue(ctx, mail(k), now); err != nil {
			t.Fatal(err)
		}
	}
	if got := claimKeys(t, s, now, time.Minute, 10); len(got) != 3 {
		t.Fatalf("claim = %v", got)
	}
	// SMTP outage: backoff grows with attempts; b and c fail differently.
	if err := s.RetryOutbox(ctx, "a", now.Add(40*time.Second), "421 try later"); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryOutbox(ctx, "b", now.Add(10*time.Second), "dial tcp: connection refused"); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryOutbox(ctx, "c", now.Add(20*time.Second), "timeout"); err != nil {
		t.Fatal(err)
	}
	if got := claimKeys(t, s, now.Add(5*time.Second), time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed before the retry time: %v", got)
	}
	got, err := s.ClaimOutbox(ctx, now.Add(25*time.Second), time.Minute, 10)
	if err != nil || len(got) != 2 || got[0].Key != "b" || got[1].Key != "c" {
		t.Fatalf("claim after 25s = %+v, %v", got, err)
	}
	if got[0].Attempts != 2 || got[0].LastError != "dial tcp: connection refused" || !got[0].NextTry.Equal(now.Add(10*time.Second)) {
		t.Errorf("retried entry %+v", got[0])
	}
	if keys := claimKeys(t, s, now.Add(41*time.Second), time.Minute, 10); !slices.Equal(keys, []string{"a"}) {
		t.Errorf("claim after 41s = %v", keys)
	}
	if err := s.AckOutbox(ctx, "b", now); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryOutbox(ctx, "b", now, "late"); !errors.Is(err, ErrNotFound) {
		t.Errorf("retry after ack: %v", err)
	}
	if err := s.RetryOutbox(ctx, "never", now, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("retry of unknown key: %v", err)
	}
}

func TestOutboxConcurrentClaim(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	const n = 60
	for i := range n {
		if _, err := s.Enqueue(ctx, mail(fmt.Sprintf("m%02d", i)), received); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				got, err := s.ClaimOutbox(ctx, received, time.Minute, 4)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					seen[e.Key]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct entries, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s claimed %d times", k, c)
		}
	}
}

func TestOutboxRef(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	e := OutboxEntry{Key: "relay:ACME-0001:1", Kind: "relay", To: []string{"yossi@acme.co.il"},
		Ref: &SourceRef{Mailbox: "Processed", UIDValidity: 9, UID: 1234}, NextTry: received.Add(time.Minute)}
	if _, err := s.Enqueue(ctx, e, received); err != nil {
		t.Fatal(err)
	}
	if got := claimKeys(t, s, received, time.Minute, 1); len(got) != 0 {
		t.Fatalf("claimed before NextTry: %v", got)
	}
	got, err := s.ClaimOutbox(ctx, received.Add(time.Minute), time.Minute, 1)
	if err != nil || len(got) != 1 || got[0].Ref == nil || *got[0].Ref != *e.Ref || got[0].Raw != nil {
		t.Fatalf("claim = %+v, %v", got, err)
	}
}

func TestOutboxExtendLease(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := received
	for _, k := range []string{"ack:a", "ack:b", "ack:c"} {
		if _, err := s.Enqueue(ctx, mail(k), now); err != nil {
			t.Fatal(err)
		}
	}
	lease := 10 * time.Second
	if got := claimKeys(t, s, now, lease, 3); len(got) != 3 {
		t.Fatalf("claimed %v", got)
	}
	if err := s.AckOutbox(ctx, "ack:c", now); err != nil {
		t.Fatal(err)
	}
	// The sender still holds a and b at 8 s and extends them; c is sent and
	// must not come back as a lease; an unknown key is ignored.
	n, err := s.ExtendOutbox(ctx, now.Add(18*time.Second), "ack:a", "ack:b", "ack:c", "ack:nope")
	if err != nil || n != 2 {
		t.Fatalf("extend = %d, %v; want 2", n, err)
	}
	// An extension never shortens a lease.
	if n, err := s.ExtendOutbox(ctx, now.Add(5*time.Second), "ack:a"); err != nil || n != 0 {
		t.Fatalf("shortening extend = %d, %v; want 0", n, err)
	}
	if got := claimKeys(t, s, now.Add(15*time.Second), lease, 10); len(got) != 0 {
		t.Fatalf("extended entries handed out again at 15 s: %v", got)
	}
	if got := claimKeys(t, s, now.Add(19*time.Second), lease, 10); !slices.Equal(got, []string{"ack:a", "ack:b"}) {
		t.Fatalf("at 19 s the lapsed leases come back: got %v", got)
	}
	if n, err := s.ExtendOutbox(ctx, now); err != nil || n != 0 {
		t.Errorf("extend of nothing = %d, %v", n, err)
	}
}

// TestOutboxRawKeptApart: the message's bytes (binary, with NUL and 8-bit
// bytes) are stored apart from the JSON metadata, come back byte for byte,
// and are removed with the entry; an entry queued by an older version, with
// the bytes inside its JSON, is still sent.
func TestOutboxRawKeptApart(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	now := received
	raw := []byte("Subject: x\r\n\r\n\x00\xff\xfe שלום\r\n")
	e := mail("ack:bin")
	e.Raw = raw
	if _, err := s.Enqueue(ctx, e, now); err != nil {
		t.Fatal(err)
	}
	meta, err := rdb.HGet(ctx, s.k.outboxMsg(), "ack:bin").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(meta, `"raw"`) {
		t.Errorf("message bytes stored in the JSON metadata: %s", meta)
	}
	// An entry as older versions queued it.
	legacy := `{"kind":"ack","from":"s@x","to":["c@y"],"raw":"` + base64.StdEncoding.EncodeToString([]byte("old message")) + `","enqueued":"2026-01-01T00:00:00Z"}`
	if err := rdb.HSet(ctx, s.k.outboxMsg(), "ack:legacy", legacy).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, s.k.outboxPending(), redis.Z{Score: float64(now.UnixMilli()), Member: "ack:legacy"}).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimOutbox(ctx, now, time.Minute, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("claim = %+v, %v", got, err)
	}
	byKey := map[string][]byte{}
	for _, g := range got {
		byKey[g.Key] = g.Raw
	}
	if !bytes.Equal(byKey["ack:bin"], raw) || string(byKey["ack:legacy"]) != "old message" {
		t.Errorf("raw = %q / %q", byKey["ack:bin"], byKey["ack:legacy"])
	}
	for _, g := range got {
		if err := s.AckOutbox(ctx, g.Key, now); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := rdb.HLen(ctx, s.k.outboxRaw()).Result(); err != nil || n != 0 {
		t.Errorf("raw hash holds %d entries after ack (%v)", n, err)
	}
}

// TestAckOutboxMany acks a batch in one call: each entry is gone, and
// remembered as sent, exactly as with AckOutbox.
func TestAckOutboxMany(t *testing.T) {
	s, _ := newTestStore(t, WithOutboxRetention(24*time.Hour))
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	keys := []string{"ack:A-1", "forward:A-1", "ack:A-2"}
	for _, k := range keys {
		e := OutboxEntry{Key: k, Kind: "ack", From: "s@x.example", To: []string{"c@y.example"}, Raw: []byte(k)}
		if _, err := s.Enqueue(ctx, e, now); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ClaimOutbox(ctx, now, time.Minute, 10); err != nil || len(got) != 3 {
		t.Fatalf("claim = %d, %v", len(got), err)
	}
	if err := s.AckOutboxMany(ctx, keys[:2], now); err != nil {
		t.Fatal(err)
	}
	if err := s.AckOutboxMany(ctx, nil, now); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		e := OutboxEntry{Key: k, Kind: "ack", From: "s@x.example", To: []string{"c@y.example"}, Raw: []byte(k)}
		added, err := s.Enqueue(ctx, e, now.Add(time.Hour))
		if err != nil || added {
			t.Errorf("%s: enqueue again = %v, %v; want not added (sent or in flight)", k, added, err)
		}
		raw, queued, err := s.OutboxRaw(ctx, []string{k})
		if err != nil {
			t.Fatal(err)
		}
		if acked := i < 2; acked != (raw[0] == nil) || acked == queued[0] {
			t.Errorf("%s: bytes %q, queued %v after the batch ack", k, raw[0], queued[0])
		}
	}
	if n, _, err := s.OutboxDepth(ctx); err != nil || n != 1 {
		t.Errorf("depth = %d, %v; want the one entry not acked", n, err)
	}
}
