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

// SwapSLAFingerprint records fp as the fingerprint of a contract's calendar
// and SLA targets and returns the one recorded before ("" the first time).
// The swap is atomic, so of several instances starting with a changed
// configuration exactly one sees the change and recomputes the deadlines.
func (s *Store) SwapSLAFingerprint(ctx context.Context, contract, fp string) (string, error) {
	old, err := s.rdb.SetArgs(ctx, s.k.slaFingerprint(contract), fp, redis.SetArgs{Get: true}).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("swap sla fingerprint of %s: %w", contract, err)
	}
	return old, nil
}
