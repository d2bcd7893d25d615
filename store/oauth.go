package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// oauthTokenTTL bounds how long a saved refresh token outlives its last
// rotation: longer than any provider lets one live unused (Entra ID: 90
// days), so that only the tokens of credentials no longer configured go.
const oauthTokenTTL = 400 * 24 * time.Hour

func (k keys) oauthToken(key string) string     { return k.p + "{oauth:" + escapeTag(key) + "}" }
func (k keys) oauthTokenLock(key string) string { return k.oauthToken(key) + ":lock" }

// LoadRefreshToken returns the refresh token saved under key ("" when
// none). It implements oauth.RefreshTokenStore.
func (s *Store) LoadRefreshToken(ctx context.Context, key string) (string, error) {
	t, err := s.rdb.Get(ctx, s.k.oauthToken(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read saved oauth refresh token: %w", err)
	}
	return t, nil
}

var saveTokenScript = redis.NewScript(`
-- KEYS[1] P{oauth:K}  the saved refresh token
-- ARGV[1] the token expected there ("" for none), ARGV[2] the new one, ARGV[3] ttl ms
-- Returns 1 when saved, 0 when another token was there.
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[2] then
  return 1 -- already saved: the client repeated a call whose reply it lost
end
if (cur or '') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// SaveRefreshToken saves token under key if the token saved there is old
// ("" for none), and reports whether it did. It implements
// oauth.RefreshTokenStore. The token is a credential: Redis must be as
// private as the configuration file that holds the first one.
func (s *Store) SaveRefreshToken(ctx context.Context, key, old, token string) (bool, error) {
	if key == "" || token == "" {
		return false, errors.New("save oauth refresh token: empty key or token")
	}
	n, err := saveTokenScript.Run(ctx, s.rdb, []string{s.k.oauthToken(key)}, old, token, oauthTokenTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("save oauth refresh token: %w", err)
	}
	return n == 1, nil
}

// lockPoll is how often LockRefreshToken asks for a lock another holds.
const lockPoll = 50 * time.Millisecond

// LockRefreshToken waits until it holds the lock of key's refresh token
// (or ctx ends), for at most ttl, and returns the function that releases
// it. It implements oauth.RefreshTokenStore: one refresh of a credential at
// a time across the instances sharing this Redis.
func (s *Store) LockRefreshToken(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	owner, lk := hex.EncodeToString(b), s.k.oauthTokenLock(key)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock oauth refresh token: %w", ctx.Err())
		case <-t.C:
		}
		// The mailbox lease's script: taken, or already held by owner
		// (go-redis repeats a call whose reply it lost).
		n, err := acquireLeaseScript.Run(ctx, s.rdb, []string{lk}, owner, ttl.Milliseconds()).Int()
		if err != nil {
			s.releaseTokenLock(ctx, lk, owner) // in case it was taken and the reply lost
			return nil, fmt.Errorf("lock oauth refresh token: %w", err)
		}
		if n == 1 {
			break
		}
		t.Reset(lockPoll)
	}
	return func() { s.releaseTokenLock(ctx, lk, owner) }, nil
}

// releaseTokenLock releases owner's lock lk, even when ctx has ended; a
// lock that cannot be released lapses after its ttl.
func (s *Store) releaseTokenLock(ctx context.Context, lk, owner string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = releaseLeaseScript.Run(rctx, s.rdb, []string{lk}, owner).Err()
}
