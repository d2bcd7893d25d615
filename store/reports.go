package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Claims make a piece of periodic work (the quarterly report of a contract)
// happen once across every instance that shares the Redis: the first
// instance to claim a key does the work, the others see the claim and skip
// it. A claim expires, so work whose instance died before finishing is taken
// up again once its claim runs out; the instance that finished extends the
// claim so that nobody repeats the work while it still matters.
//
// Key layout (see the package documentation for the rest):
//
//	P{once:<key>}                        string  a claim, e.g. P{once:qbr:acme:2026-Q3} (expires)

func (k keys) once(key string) string { return k.p + "{once:" + escapeTag(key) + "}" }

// claimValue is what a claim key holds; only its existence matters.
const claimValue = "1"

func checkClaim(key string, ttl time.Duration) error {
	if key == "" {
		return errors.New("empty key")
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("ttl %v under a millisecond", ttl)
	}
	return nil
}

// ClaimOnce claims key for ttl (SET NX PX): it reports true when this call
// set the claim and false when the key is already claimed, by anyone.
func (s *Store) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkClaim(key, ttl); err != nil {
		return false, fmt.Errorf("claim %q: %w", key, err)
	}
	ok, err := s.rdb.SetNX(ctx, s.k.once(key), claimValue, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("claim %q: %w", key, err)
	}
	return ok, nil
}

// ExtendClaim holds key for ttl from now, whether or not the claim still
// exists (a claim whose ttl ran out while the work was being done is set
// again): call it when the claimed work is done, with how long it must not
// be repeated.
func (s *Store) ExtendClaim(ctx context.Context, key string, ttl time.Duration) error {
	if err := checkClaim(key, ttl); err != nil {
		return fmt.Errorf("extend claim %q: %w", key, err)
	}
	if err := s.rdb.Set(ctx, s.k.once(key), claimValue, ttl).Err(); err != nil {
		return fmt.Errorf("extend claim %q: %w", key, err)
	}
	return nil
}

// ReleaseClaim removes a claim (after the claimed work failed), so that the
// next attempt, by any instance, may claim it again.
func (s *Store) ReleaseClaim(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("release claim: empty key")
	}
	if err := s.rdb.Del(ctx, s.k.once(key)).Err(); err != nil {
		return fmt.Errorf("release claim %q: %w", key, err)
	}
	return nil
}
