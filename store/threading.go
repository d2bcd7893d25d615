package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// NormalizeMessageID trims spaces and one pair of angle brackets:
// "<a@b>" and "a@b" are the same id. Case is kept (the local part of a
// Message-ID is case-sensitive).
func NormalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
		id = strings.TrimSpace(id[1 : len(id)-1])
	}
	return id
}

// IndexMessageIDs maps Message-IDs (of mail received for the ticket and of
// mail the gateway sends about it) to the ticket, for threading replies.
// It is idempotent, and the first ticket to index an id keeps it: a reused
// Message-ID never moves a thread. Empty ids are ignored.
func (s *Store) IndexMessageIDs(ctx context.Context, ticketID string, ids ...string) error {
	if ticketID == "" {
		return errors.New("index message ids: empty ticket id")
	}
	norm, err := normalizeIDs(ticketID, ids)
	if err != nil {
		return err
	}
	return s.indexIDs(ctx, ticketID, norm)
}

// indexIDs maps normalized ids to ticketID.
func (s *Store) indexIDs(ctx context.Context, ticketID string, norm []string) error {
	if len(norm) == 0 {
		return nil
	}
	// One key per id, each in its own slot: a pipeline (split by slot on a
	// cluster) of independent SETNX, no script.
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range norm {
			p.SetNX(ctx, s.k.messageID(id), ticketID, 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index message ids of ticket %s: %w", ticketID, err)
	}
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			return fmt.Errorf("index message id %s of ticket %s: %w", norm[i], ticketID, err)
		}
	}
	return nil
}

// TicketByMessageID returns the ticket a Message-ID belongs to.
func (s *Store) TicketByMessageID(ctx context.Context, id string) (string, bool, error) {
	id = NormalizeMessageID(id)
	if id == "" {
		return "", false, nil
	}
	t, err := s.rdb.Get(ctx, s.k.messageID(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up message id %s: %w", id, err)
	}
	return t, true, nil
}

// TicketsByMessageIDs is TicketByMessageID for several Message-IDs in one
// round trip (a pipeline of GETs: on a Redis Cluster each id has its own
// slot): the ticket of each, "" when none.
func (s *Store) TicketsByMessageIDs(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, len(ids))
	cmds := make([]*redis.StringCmd, len(ids))
	pipe := s.rdb.Pipeline()
	n := 0
	for i, id := range ids {
		if id = NormalizeMessageID(id); id != "" {
			cmds[i] = pipe.Get(ctx, s.k.messageID(id))
			n++
		}
	}
	if n == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("look up %d message ids: %w", n, err)
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		t, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("look up message id %s: %w", ids[i], err)
		default:
			out[i] = t
		}
	}
	return out, nil
}

var allowAckScript = redis.NewScript(`
-- KEYS[1] P{rl:<sha1(sender)>}  acknowledgements sent to the sender, scored by ms
-- ARGV[1] now ms, ARGV[2] window ms, ARGV[3] limit, ARGV[4] message key
-- Returns 1 when the acknowledgement may be sent (and counts it), 0 when
-- the sender had limit acknowledgements within the window. A message key
-- already counted is allowed again without counting twice.
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// AllowAck applies the per-sender acknowledgement rate limit: at most limit
// acknowledgements per window, counted at now. msgKey identifies the
// message (its dedup key), so asking again for the same message (after a
// crash) gives the same answer without using up the limit.
func (s *Store) AllowAck(ctx context.Context, sender, msgKey string, now time.Time, limit int, window time.Duration) (bool, error) {
	if limit <= 0 || window < time.Millisecond || msgKey == "" {
		return false, fmt.Errorf("rate limit %s: invalid limit %d, window %v or empty message key", sender, limit, window)
	}
	n, err := allowAckScript.Run(ctx, s.rdb, []string{s.k.rateLimit(sender)}, ms(now), window.Milliseconds(), limit, msgKey).Int()
	if err != nil {
		return false, fmt.Errorf("rate limit %s: %w", sender, err)
	}
	return n == 1, nil
}
