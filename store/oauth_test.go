package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRefreshTokenSaveAndLoad(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := t.Context()
	if tok, err := s.LoadRefreshToken(ctx, "k1"); err != nil || tok != "" {
		t.Fatalf("nothing saved: = %q, %v; want \"\", nil", tok, err)
	}
	steps := []struct {
		old, token string
		saved      bool
		want       string
	}{
		{"rt-x", "rt-1", false, ""},     // something expected, nothing there
		{"", "rt-1", true, "rt-1"},      // nothing expected, nothing there
		{"", "rt-2", false, "rt-1"},     // nothing expected, rt-1 there
		{"rt-0", "rt-2", false, "rt-1"}, // a stale expectation
		{"rt-1", "rt-2", true, "rt-2"},
		{"rt-1", "rt-2", true, "rt-2"}, // repeated after a lost reply: already saved
	}
	for i, st := range steps {
		ok, err := s.SaveRefreshToken(ctx, "k1", st.old, st.token)
		if err != nil || ok != st.saved {
			t.Fatalf("step %d: Save(%q -> %q) = %v, %v; want %v", i, st.old, st.token, ok, err, st.saved)
		}
		if got, err := s.LoadRefreshToken(ctx, "k1"); err != nil || got != st.want {
			t.Fatalf("step %d: Load = %q, %v; want %q", i, got, err, st.want)
		}
	}
	if got, _ := s.LoadRefreshToken(ctx, "k2"); got != "" {
		t.Fatalf("another key sees %q", got)
	}
	ttl, err := rdb.TTL(ctx, s.k.oauthToken("k1")).Result()
	if err != nil || ttl < oauthTokenTTL-time.Hour || ttl > oauthTokenTTL {
		t.Fatalf("ttl = %v, %v; want about %v", ttl, err, oauthTokenTTL)
	}
	if _, err := s.SaveRefreshToken(ctx, "k1", "rt-2", ""); err == nil {
		t.Fatal("an empty token was saved")
	}
}

func TestRefreshTokenLockIsExclusive(t *testing.T) {
	s, _ := newTestStore(t)
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				unlock, err := s.LockRefreshToken(t.Context(), "k", 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				time.Sleep(2 * time.Millisecond)
				inside.Add(-1)
				unlock()
			}
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once", most.Load())
	}
}

func TestRefreshTokenLockWaitsAndLapses(t *testing.T) {
	s, _ := newTestStore(t)
	if _, err := s.LockRefreshToken(t.Context(), "k", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Held and never released (a crashed holder): a short wait gives up...
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.LockRefreshToken(ctx, "k", time.Second); err == nil {
		t.Fatal("took a lock another holds")
	}
	// ...and a longer one gets it once it lapses.
	start := time.Now()
	unlock, err := s.LockRefreshToken(t.Context(), "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if time.Since(start) > 5*time.Second {
		t.Fatalf("waited %v for a 300 ms lock", time.Since(start))
	}
	// Released: taken at once.
	ctx2, cancel2 := context.WithTimeout(t.Context(), 40*time.Millisecond)
	defer cancel2()
	unlock, err = s.LockRefreshToken(ctx2, "k", time.Second)
	if err != nil {
		t.Fatalf("a released lock was not free: %v", err)
	}
	unlock()
}

// The release works after the holder's context ended, and never deletes a
// lock another holder took after this one's lapsed.
func TestRefreshTokenLockRelease(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	unlock, err := s.LockRefreshToken(ctx, "k", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	unlock()
	if n, _ := rdb.Exists(t.Context(), s.k.oauthTokenLock("k")).Result(); n != 0 {
		t.Fatal("the lock outlived its release after the holder's context ended")
	}

	unlock, err = s.LockRefreshToken(t.Context(), "k", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // lapsed
	unlock2, err := s.LockRefreshToken(t.Context(), "k", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	unlock() // the first holder's late release
	if n, _ := rdb.Exists(t.Context(), s.k.oauthTokenLock("k")).Result(); n != 1 {
		t.Fatal("a lapsed holder's release deleted the next holder's lock")
	}
	unlock2()
}

// Taking the lock is idempotent for its owner (go-redis repeats a call
// whose reply it lost), and refused to another.
func TestRefreshTokenLockScript(t *testing.T) {
	s, _ := newTestStore(t)
	lk := s.k.oauthTokenLock("k")
	for i, tc := range []struct {
		owner string
		want  int
	}{{"o1", 1}, {"o1", 1}, {"o2", 0}} {
		n, err := acquireLeaseScript.Run(t.Context(), s.rdb, []string{lk}, tc.owner, 10000).Int()
		if err != nil || n != tc.want {
			t.Fatalf("call %d by %s = %d, %v; want %d", i, tc.owner, n, err, tc.want)
		}
	}
}
