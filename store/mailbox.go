package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SourceRef names one message of a mailbox.
type SourceRef struct {
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	// MessageID (without angle brackets), when set, names the message by
	// its Message-ID rather than by UID: an outbox entry refers so to a
	// message that is moved (and so gets a new UID) after it is queued.
	MessageID string `json:",omitempty"`
}

func (r SourceRef) String() string {
	return fmt.Sprintf("%s/%d/%d", r.Mailbox, r.UIDValidity, r.UID)
}

// Processed reports whether the message was already stored, and the ticket
// it went to ("" when it made none, e.g. dropped by a rule).
func (s *Store) Processed(ctx context.Context, ref SourceRef) (ticketID string, ok bool, err error) {
	id, err := s.rdb.HGet(ctx, s.k.processed(ref.Mailbox, ref.UIDValidity), strconv.FormatUint(uint64(ref.UID), 10)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read processed marker %s: %w", ref, err)
	}
	return id, true, nil
}

// ProcessedMany reports, for each of uids of one mailbox folder generation,
// whether it carries a processed marker: Processed for many, in one round
// trip (the IMAP source asks for a batch before it fetches the bodies).
func (s *Store) ProcessedMany(ctx context.Context, mailbox string, uidValidity uint32, uids []uint32) ([]bool, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	fields := make([]string, len(uids))
	for i, u := range uids {
		fields[i] = strconv.FormatUint(uint64(u), 10)
	}
	vals, err := s.rdb.HMGet(ctx, s.k.processed(mailbox, uidValidity), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read processed markers of %s: %w", mailbox, err)
	}
	out := make([]bool, len(uids))
	for i, v := range vals {
		out[i] = v != nil
	}
	return out, nil
}

// MarkProcessed records that the message was stored (in ticketID, or in no
// ticket when ticketID is ""). Call it only after the ticket is stored.
func (s *Store) MarkProcessed(ctx context.Context, ref SourceRef, ticketID string) error {
	err := s.rdb.HSet(ctx, s.k.processed(ref.Mailbox, ref.UIDValidity), strconv.FormatUint(uint64(ref.UID), 10), ticketID).Err()
	if err != nil {
		return fmt.Errorf("mark %s processed: %w", ref, err)
	}
	return nil
}

// Checkpoint returns a mailbox's UIDVALIDITY and the highest UID known to be
// processed (0, 0 when none was stored).
func (s *Store) Checkpoint(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error) {
	vals, err := s.rdb.HMGet(ctx, s.k.checkpoint(mailbox), "uidvalidity", "last_uid").Result()
	if err != nil {
		return 0, 0, fmt.Errorf("read checkpoint of %s: %w", mailbox, err)
	}
	parse := func(v any) (uint32, error) {
		str, ok := v.(string)
		if !ok {
			return 0, nil // missing field
		}
		n, err := strconv.ParseUint(str, 10, 32)
		return uint32(n), err
	}
	if uidValidity, err = parse(vals[0]); err != nil {
		return 0, 0, fmt.Errorf("read checkpoint of %s: uidvalidity: %w", mailbox, err)
	}
	if lastUID, err = parse(vals[1]); err != nil {
		return 0, 0, fmt.Errorf("read checkpoint of %s: last uid: %w", mailbox, err)
	}
	return uidValidity, lastUID, nil
}

var checkpointScript = redis.NewScript(`
-- KEYS[1] P{mb:MB}:checkpoint  hash {uidvalidity, last_uid}
-- ARGV[1] uidvalidity, ARGV[2] last uid
-- Returns 1 when stored, 0 when the stored checkpoint has the same
-- uidvalidity and a last uid at least as high (a checkpoint never moves
-- back). A new uidvalidity replaces the checkpoint.
local v = redis.call('HGET', KEYS[1], 'uidvalidity')
local last = tonumber(redis.call('HGET', KEYS[1], 'last_uid') or '0')
if v == ARGV[1] and last >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'uidvalidity', ARGV[1], 'last_uid', ARGV[2])
return 1
`)

// SetCheckpoint stores a mailbox's progress. For the same UIDVALIDITY it
// never lowers lastUID (a late writer with an older position is ignored); a
// different UIDVALIDITY replaces the checkpoint.
func (s *Store) SetCheckpoint(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	err := checkpointScript.Run(ctx, s.rdb, []string{s.k.checkpoint(mailbox)},
		strconv.FormatUint(uint64(uidValidity), 10), strconv.FormatUint(uint64(lastUID), 10)).Err()
	if err != nil {
		return fmt.Errorf("set checkpoint of %s: %w", mailbox, err)
	}
	return nil
}

var acquireLeaseScript = redis.NewScript(`
-- KEYS[1] P{mb:MB}:lease  owner of the mailbox lease (or P{oauth:K}:lock,
--         the refresh lock of an OAuth credential)
-- ARGV[1] owner, ARGV[2] lease duration ms
-- Returns 1 when owner holds the lease (taken or renewed), 0 when another
-- owner holds it.
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

var releaseLeaseScript = redis.NewScript(`
-- KEYS[1] P{mb:MB}:lease  owner of the mailbox lease
-- ARGV[1] owner
-- Returns 1 when owner's lease was released, 0 when owner did not hold it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)

// AcquireLease takes or renews the lease that lets exactly one instance
// poll a mailbox. It reports whether owner holds the lease for ttl from
// now (Redis expires it). Renew well before ttl passes.
func (s *Store) AcquireLease(ctx context.Context, mailbox, owner string, ttl time.Duration) (bool, error) {
	if owner == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("acquire lease of %s: empty owner or ttl %v", mailbox, ttl)
	}
	n, err := acquireLeaseScript.Run(ctx, s.rdb, []string{s.k.lease(mailbox)}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("acquire lease of %s: %w", mailbox, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up owner's lease of a mailbox (no-op when another
// owner holds it).
func (s *Store) ReleaseLease(ctx context.Context, mailbox, owner string) error {
	if err := releaseLeaseScript.Run(ctx, s.rdb, []string{s.k.lease(mailbox)}, owner).Err(); err != nil {
		return fmt.Errorf("release lease of %s: %w", mailbox, err)
	}
	return nil
}
