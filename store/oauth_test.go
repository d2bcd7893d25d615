package store

import (
	"testing"
	"time"
)

func TestRefreshTokenSaveAndLoad(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := t.Context()
	if tok, err := s.LoadRefreshToken(ctx, "k1"); err != nil || tok != "" {
		t.Fatalf("nothing saved: = %q, %v; want \"\", nil", tok, err)
	}
	for _, tok := range []string{"rt-1", "rt-2"} {
		if err := s.SaveRefreshToken(ctx, "k1", tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LoadRefreshToken(ctx, "k1"); err != nil || got != tok {
			t.Fatalf("after saving %q: = %q, %v", tok, got, err)
		}
	}
	if got, _ := s.LoadRefreshToken(ctx, "k2"); got != "" {
		t.Fatalf("another key sees %q", got)
	}
	ttl, err := rdb.TTL(ctx, s.k.oauthToken("k1")).Result()
	if err != nil || ttl < oauthTokenTTL-time.Hour || ttl > oauthTokenTTL {
		t.Fatalf("ttl = %v, %v; want about %v", ttl, err, oauthTokenTTL)
	}
	if err := s.SaveRefreshToken(ctx, "k1", ""); err == nil {
		t.Fatal("an empty token was saved")
	}
}
