package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the ticket prefix of tickets without a contract.
const DefaultPrefix = "T"

const maxPrefixLen = 32

// ValidPrefix reports whether p can be a ticket prefix: 1 to 32 ASCII
// letters, digits, '_' or '-', starting with a letter or digit.
func ValidPrefix(p string) bool {
	if p == "" || len(p) > maxPrefixLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// FormatTicketID returns the id of ticket number n: the prefix, a dash and
// the number zero-padded to four digits (more digits past 9999).
func FormatTicketID(prefix string, n uint64) string {
	return fmt.Sprintf("%s-%04d", prefix, n)
}

// ParseTicketID splits a ticket id such as "ACME-0042" into its prefix and
// number. The prefix is returned as written; the number must be 1 or more
// and at most 18 digits long.
func ParseTicketID(id string) (prefix string, n uint64, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, false
	}
	prefix, num := id[:i], id[i+1:]
	if !ValidPrefix(prefix) || num == "" || len(num) > 18 {
		return "", 0, false
	}
	for j := 0; j < len(num); j++ {
		if num[j] < '0' || num[j] > '9' {
			return "", 0, false
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return prefix, n, true
}

// prefixOwner is the value of P{meta}:prefixes: the contract that owns a
// ticket prefix, and the prefix exactly as its ids are written.
type prefixOwner struct {
	Contract string `json:"contract"`
	Prefix   string `json:"prefix"`
}

var claimPrefixScript = redis.NewScript(`
-- KEYS[1] P{meta}:prefixes  upper-cased ticket prefix -> owner JSON
-- ARGV[1] upper-cased prefix, ARGV[2] owner JSON
-- Returns the owner JSON now stored: ARGV[2] when it was free.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  return ARGV[2]
end
return redis.call('HGET', KEYS[1], ARGV[1])
`)

// claimPrefix records that prefix belongs to contract, or checks that it
// already does. It asks Redis every time (one round trip), so that the
// record is rewritten should Redis have lost it.
func (s *Store) claimPrefix(ctx context.Context, prefix, contract string) error {
	up, b, err := prefixClaim(prefix, contract)
	if err != nil {
		return err
	}
	raw, err := claimPrefixScript.Run(ctx, s.rdb, []string{s.k.prefixes()}, up, b).Text()
	if err != nil {
		return fmt.Errorf("record ticket prefix %s: %w", prefix, err)
	}
	return s.claimed(prefix, contract, b, raw)
}

// prefixClaim is claimPrefixScript's arguments: the upper-cased prefix and
// the owner's JSON.
func prefixClaim(prefix, contract string) (up string, owner []byte, err error) {
	owner, err = json.Marshal(prefixOwner{Contract: contract, Prefix: prefix})
	if err != nil {
		return "", nil, fmt.Errorf("encode prefix owner: %w", err)
	}
	return strings.ToUpper(prefix), owner, nil
}

// claimed records the owner of prefix that claimPrefixScript answered (raw)
// to the claim of owner (prefixClaim's JSON for contract) and checks that
// it is contract.
func (s *Store) claimed(prefix, contract string, owner []byte, raw string) error {
	up := strings.ToUpper(prefix)
	want := prefixOwner{Contract: contract, Prefix: prefix}
	if raw == string(owner) && s.knownOwner(prefix, contract) {
		return nil // the usual answer, already recorded: no decoding
	}
	var got prefixOwner
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		return fmt.Errorf("decode ticket prefix %s: %w", prefix, err)
	}
	s.mu.Lock()
	s.prefixes[up] = got
	s.mu.Unlock()
	if got != want {
		return fmt.Errorf("ticket prefix %s: already used as %s by contract %q", prefix, got.Prefix, got.Contract)
	}
	return nil
}

// knownOwner reports whether this Store has seen prefix claimed by
// contract.
func (s *Store) knownOwner(prefix, contract string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.prefixes[strings.ToUpper(prefix)] == prefixOwner{Contract: contract, Prefix: prefix}
}

func (s *Store) lookupPrefix(ctx context.Context, up string) (prefixOwner, error) {
	raw, err := s.rdb.HGet(ctx, s.k.prefixes(), up).Result()
	if errors.Is(err, redis.Nil) {
		return prefixOwner{}, fmt.Errorf("ticket prefix %s: %w", up, ErrNotFound)
	}
	if err != nil {
		return prefixOwner{}, fmt.Errorf("read ticket prefix %s: %w", up, err)
	}
	var o prefixOwner
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return prefixOwner{}, fmt.Errorf("decode ticket prefix %s: %w", up, err)
	}
	return o, nil
}

// resolve maps a ticket id, in any case and padding, to its contract and
// its canonical id.
func (s *Store) resolve(ctx context.Context, id string) (contract, canonical string, err error) {
	prefix, n, ok := ParseTicketID(id)
	if !ok {
		return "", "", fmt.Errorf("ticket %q: malformed id: %w", id, ErrNotFound)
	}
	up := strings.ToUpper(prefix)
	s.mu.RLock()
	o, ok := s.prefixes[up]
	s.mu.RUnlock()
	if !ok {
		if o, err = s.lookupPrefix(ctx, up); err != nil {
			return "", "", fmt.Errorf("ticket %s: %w", id, err)
		}
		s.mu.Lock()
		s.prefixes[up] = o
		s.mu.Unlock()
	}
	return o.Contract, FormatTicketID(o.Prefix, n), nil
}
