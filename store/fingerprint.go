package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Key layout (see the package documentation for the rest):
//
//	P{c:C}:slafp                         string  fingerprint of the contract's calendar and SLA targets

func (k keys) slaFingerprint(c string) string { return k.contract(c) + "slafp" }

// SLAFingerprint returns the fingerprint of a contract's calendar and SLA
// targets recorded last ("" when none was).
func (s *Store) SLAFingerprint(ctx context.Context, contract string) (string, error) {
	fp, err := s.rdb.Get(ctx, s.k.slaFingerprint(contract)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read sla fingerprint of %s: %w", contract, err)
	}
	return fp, nil
}

// SetSLAFingerprint records fp once the deadlines it implies are in place,
// so a recalculation cut short is done again at the next start.
func (s *Store) SetSLAFingerprint(ctx context.Context, contract, fp string) error {
	if err := s.rdb.Set(ctx, s.k.slaFingerprint(contract), fp, 0).Err(); err != nil {
		return fmt.Errorf("record sla fingerprint of %s: %w", contract, err)
	}
	return nil
}
