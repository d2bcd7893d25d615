package store

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClaimOnce: one claimant wins among many racing ones, a claim expires,
// a released claim can be taken again, and an extended claim lasts.
func TestClaimOnce(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()

	// Racing claimants on separate clients: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		c := testClient(t)
		t.Cleanup(func() { c.Close() })
		other := New(c, s.k.p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := other.ClaimOnce(ctx, "qbr:acme:2026-Q3", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d claimants won, want 1", n)
	}
	if ok, err := s.ClaimOnce(ctx, "qbr:acme:2026-Q3", time.Minute); err != nil || ok {
		t.Fatalf("claimed a held key: %v %v", ok, err)
	}
	if ok, err := s.ClaimOnce(ctx, "qbr:globex:2026-Q3", time.Minute); err != nil || !ok {
		t.Fatalf("another key is not free: %v %v", ok, err)
	}

	// Release, then claim again with a short ttl, which runs out.
	if err := s.ReleaseClaim(ctx, "qbr:acme:2026-Q3"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimOnce(ctx, "qbr:acme:2026-Q3", 60*time.Millisecond); err != nil || !ok {
		t.Fatalf("released key not claimable: %v %v", ok, err)
	}
	time.Sleep(150 * time.Millisecond)
	if ok, err := s.ClaimOnce(ctx, "qbr:acme:2026-Q3", 60*time.Millisecond); err != nil || !ok {
		t.Fatalf("expired claim not claimable: %v %v", ok, err)
	}
	// Extending sets the claim even after it ran out.
	time.Sleep(150 * time.Millisecond)
	if err := s.ExtendClaim(ctx, "qbr:acme:2026-Q3", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimOnce(ctx, "qbr:acme:2026-Q3", time.Minute); err != nil || ok {
		t.Fatalf("extended claim was taken: %v %v", ok, err)
	}
	ttl, err := rdb.PTTL(ctx, s.k.once("qbr:acme:2026-Q3")).Result()
	if err != nil || ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("extended claim ttl %v, %v; want about an hour", ttl, err)
	}

	// The key lives under the prefix with its own hash tag.
	if k := s.k.once("qbr:a{b}:2026-Q3"); !strings.HasPrefix(k, s.k.p+"{once:qbr:a%7Bb%7D:2026-Q3}") {
		t.Errorf("claim key %q", k)
	}

	for _, c := range []struct {
		key string
		ttl time.Duration
	}{{"", time.Minute}, {"k", 0}, {"k", time.Microsecond}} {
		if _, err := s.ClaimOnce(ctx, c.key, c.ttl); err == nil {
			t.Errorf("ClaimOnce(%q, %v) accepted", c.key, c.ttl)
		}
		if err := s.ExtendClaim(ctx, c.key, c.ttl); err == nil {
			t.Errorf("ExtendClaim(%q, %v) accepted", c.key, c.ttl)
		}
	}
	if err := s.ReleaseClaim(ctx, ""); err == nil {
		t.Error("ReleaseClaim of an empty key accepted")
	}
}
