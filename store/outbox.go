package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// OutboxEntry is one outgoing mail. Every mail the gateway sends goes
// through the outbox, so sending is never on the path that stores a ticket
// and an SMTP outage loses nothing.
type OutboxEntry struct {
	// Key makes Enqueue idempotent, e.g. "ack:ACME-0001".
	Key    string
	Kind   string // "ack", "forward", "relay", "notice", ...
	Ticket string
	From   string   // envelope sender
	To     []string // envelope recipients
	Raw    []byte   // the message, ready to send
	// Ref, when set, names a message in the mailbox (its processed folder)
	// whose bytes are to be relayed, instead of copying a large message
	// into Redis.
	Ref *SourceRef
	// Recipe, set with Ref and without Raw, is how to compose the message
	// from the referenced one when it is sent (JSON, owned by the sender).
	Recipe []byte

	// Arrived is when the message that caused this mail reached the gateway
	// (zero when unknown, e.g. SLA notices); it is kept with the entry so
	// the arrival-to-send time can be measured by whichever instance sends
	// it. Enqueue takes it from the context (WithArrival) when unset.
	Arrived time.Time

	// RawLen and RawSum (CRC-32C) describe the message bytes as stored
	// (set by ClaimOutbox and ClaimOutboxMeta; zero for an entry queued
	// before they were recorded, or without bytes): a sender checks a copy
	// it holds in memory against them.
	RawLen int
	RawSum uint32

	Attempts  int       // attempts started, this claim included (set by ClaimOutbox)
	NextTry   time.Time // when the entry is due (Enqueue: zero means now)
	LastError string    // error text of the last failed attempt
}

// outboxPayload is the stored, immutable part of an entry but its message
// bytes, which are kept apart (P{outbox}:raw), binary, so that neither side
// encodes a whole message as base64 inside JSON.
type outboxPayload struct {
	Kind   string   `json:"kind"`
	Ticket string   `json:"ticket,omitempty"`
	From   string   `json:"from"`
	To     []string `json:"to"`
	// Raw is read from entries queued before the bytes were kept apart.
	Raw      []byte     `json:"raw,omitempty"`
	Ref      *SourceRef `json:"ref,omitempty"`
	Recipe   []byte     `json:"recipe,omitempty"`
	Enqueued time.Time  `json:"enqueued"`
	Arrived  time.Time  `json:"arrived,omitzero"` // absent in entries queued before it existed
	// RawLen and RawSum: the bytes kept apart (OutboxEntry.RawLen).
	RawLen int    `json:"raw_len,omitempty"`
	RawSum uint32 `json:"raw_sum,omitempty"`
}

// RawSum is the checksum OutboxEntry.RawSum records: CRC-32C.
func RawSum(raw []byte) uint32 { return crc32.Checksum(raw, castagnoli) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var enqueueScript = redis.NewScript(`
-- KEYS[1] P{outbox}:pending  key -> next try ms
-- KEYS[2] P{outbox}:queued   key -> enqueue ms
-- KEYS[3] P{outbox}:msg      key -> payload JSON
-- KEYS[4] P{outbox}:sent     key -> sent ms
-- KEYS[5] P{outbox}:raw      key -> message bytes
-- ARGV[1] entry key, ARGV[2] payload JSON, ARGV[3] now ms,
-- ARGV[4] next try ms, ARGV[5] how long sent keys are remembered, ms,
-- ARGV[6] message bytes ('' for an entry that refers to its message)
-- Returns 1 when added, 0 when the key is pending, in flight, or was sent
-- within the retention period (nothing changes).
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[5]))
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 or redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[6])
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`)

// Enqueue adds an entry unless its key is already pending, in flight, or
// was sent within the retention period (added=false then).
func (s *Store) Enqueue(ctx context.Context, e OutboxEntry, now time.Time) (added bool, err error) {
	k, args, err := s.enqueueArgs(ctx, e, now)
	if err != nil {
		return false, err
	}
	n, err := enqueueScript.Run(ctx, s.rdb, k, args...).Int()
	if err != nil {
		return false, fmt.Errorf("enqueue mail %s: %w", e.Key, err)
	}
	return n == 1, nil
}

// enqueueArgs checks an entry and returns the keys and arguments of
// enqueueScript for it.
func (s *Store) enqueueArgs(ctx context.Context, e OutboxEntry, now time.Time) ([]string, []any, error) {
	if e.Key == "" {
		return nil, nil, errors.New("enqueue mail: empty key")
	}
	if len(e.To) == 0 || (len(e.Raw) == 0 && e.Ref == nil) {
		return nil, nil, fmt.Errorf("enqueue mail %s: no recipients or no message", e.Key)
	}
	if len(e.Recipe) > 0 && e.Ref == nil {
		return nil, nil, fmt.Errorf("enqueue mail %s: a recipe without the message it refers to", e.Key)
	}
	if e.Arrived.IsZero() {
		e.Arrived = ArrivalFrom(ctx)
	}
	p := outboxPayload{Kind: e.Kind, Ticket: e.Ticket, From: e.From, To: e.To, Ref: e.Ref, Recipe: e.Recipe,
		Enqueued: now.UTC(), Arrived: e.Arrived.UTC()}
	if len(e.Raw) > 0 {
		p.RawLen, p.RawSum = len(e.Raw), RawSum(e.Raw)
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("enqueue mail %s: encode: %w", e.Key, err)
	}
	next := e.NextTry
	if next.IsZero() {
		next = now
	}
	k := []string{s.k.outboxPending(), s.k.outboxQueued(), s.k.outboxMsg(), s.k.outboxSent(), s.k.outboxRaw()}
	return k, []any{e.Key, payload, ms(now), ms(next), s.retention.Milliseconds(), e.Raw}, nil
}

var claimOutboxScript = redis.NewScript(`
-- KEYS[1] P{outbox}:pending   key -> next try ms
-- KEYS[2] P{outbox}:leased    key -> lease expiry ms
-- KEYS[3] P{outbox}:queued    key -> enqueue ms
-- KEYS[4] P{outbox}:msg       key -> payload JSON
-- KEYS[5] P{outbox}:attempts  key -> attempts started
-- KEYS[6] P{outbox}:errors    key -> last error
-- KEYS[7] P{outbox}:sent      key -> sent ms
-- KEYS[8] P{outbox}:raw       key -> message bytes
-- ARGV[1] now ms, ARGV[2] lease expiry ms, ARGV[3] max entries,
-- ARGV[4] '0' to leave the message bytes out (raw is then ''),
-- ARGV[5..] entries to acknowledge first (sent: as ackOutboxScript does)
-- Returns a flat array {key, payload, attempts, last error, due ms, raw, ...}:
-- first entries whose lease expired (claimed again), then due entries by
-- next try time. Each claim counts as an attempt.
for i = 5, #ARGV do
  local key = ARGV[i]
  redis.call('HDEL', KEYS[8], key)
  redis.call('ZREM', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  redis.call('HDEL', KEYS[4], key)
  redis.call('HDEL', KEYS[5], key)
  redis.call('HDEL', KEYS[6], key)
  redis.call('ZADD', KEYS[7], ARGV[1], key)
end
local out = {}
local max = tonumber(ARGV[3])
local function take(key, due)
  local payload = redis.call('HGET', KEYS[4], key)
  if not payload then
    redis.call('ZREM', KEYS[1], key)
    redis.call('ZREM', KEYS[2], key)
    return
  end
  redis.call('ZREM', KEYS[1], key)
  redis.call('ZADD', KEYS[2], ARGV[2], key)
  local n = redis.call('HINCRBY', KEYS[5], key, 1)
  out[#out + 1] = key
  out[#out + 1] = payload
  out[#out + 1] = tostring(n)
  out[#out + 1] = redis.call('HGET', KEYS[6], key) or ''
  out[#out + 1] = due
  if ARGV[4] == '0' then
    out[#out + 1] = ''
  else
    out[#out + 1] = redis.call('HGET', KEYS[8], key) or ''
  end
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, max)
for i = 1, #expired, 2 do
  take(expired[i], expired[i + 1])
end
local left = max - #out / 6
if left > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, left)
  for i = 1, #due, 2 do
    take(due[i], due[i + 1])
  end
end
return out
`)

// ClaimOutbox hands out up to limit entries due at now, leased until
// now+lease. An entry neither acked nor retried before its lease expires
// is handed out again; so the lease must be longer than a send attempt.
func (s *Store) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxEntry, error) {
	return s.claimOutbox(ctx, now, lease, limit, true, nil)
}

// ClaimOutboxMeta is ClaimOutbox without the message bytes kept apart
// (P{outbox}:raw): a sender that still holds them in memory, having just
// queued them, reads only what it lacks, with OutboxRaw. Raw is set only for
// entries queued before the bytes were kept apart.
func (s *Store) ClaimOutboxMeta(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxEntry, error) {
	return s.claimOutbox(ctx, now, lease, limit, false, nil)
}

// AckClaimOutboxMeta acknowledges the entries ack (as AckOutboxMany), then
// claims as ClaimOutboxMeta, in one round trip: a sender that sent a full
// batch acknowledges it with the claim of the next. On an error nothing
// may have been acknowledged.
func (s *Store) AckClaimOutboxMeta(ctx context.Context, ack []string, now time.Time, lease time.Duration, limit int) ([]OutboxEntry, error) {
	return s.claimOutbox(ctx, now, lease, limit, false, ack)
}

// OutboxRaw returns the message bytes of the entries keys, in order (nil
// for an entry without them), and whether each entry is still queued (its
// payload is there): an entry no longer queued was acknowledged since it
// was claimed. One round trip.
func (s *Store) OutboxRaw(ctx context.Context, keys []string) (raws [][]byte, queued []bool, err error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	pipe := s.rdb.Pipeline()
	get := pipe.HMGet(ctx, s.k.outboxRaw(), keys...)
	exists := make([]*redis.BoolCmd, len(keys))
	for i, k := range keys {
		exists[i] = pipe.HExists(ctx, s.k.outboxMsg(), k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("read mail: %w", err)
	}
	raws, queued = make([][]byte, len(keys)), make([]bool, len(keys))
	for i, v := range get.Val() {
		if r, ok := v.(string); ok && r != "" {
			raws[i] = []byte(r)
		}
		queued[i] = exists[i].Val()
	}
	return raws, queued, nil
}

// runClaimScript acknowledges ack, then claims up to limit entries due at
// now, leased until until.
func (s *Store) runClaimScript(ctx context.Context, now, until time.Time, limit int, withRaw bool, ack []string) ([]any, error) {
	k := []string{s.k.outboxPending(), s.k.outboxLeased(), s.k.outboxQueued(), s.k.outboxMsg(), s.k.outboxAttempts(),
		s.k.outboxErrors(), s.k.outboxSent(), s.k.outboxRaw()}
	raw := "1"
	if !withRaw {
		raw = "0"
	}
	args := make([]any, 0, 4+len(ack))
	args = append(args, ms(now), ms(until), limit, raw)
	for _, a := range ack {
		args = append(args, a)
	}
	return claimOutboxScript.Run(ctx, s.rdb, k, args...).Slice()
}

func (s *Store) claimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int, withRaw bool, ack []string) ([]OutboxEntry, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("claim mail: invalid limit %d or lease %v", limit, lease)
	}
	res, err := s.runClaimScript(ctx, now, now.Add(lease), limit, withRaw, ack)
	if err != nil {
		return nil, fmt.Errorf("claim mail: %w", err)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	out := make([]OutboxEntry, 0, len(res)/6)
	for i := 0; i+5 < len(res); i += 6 {
		key := str(res[i])
		var p outboxPayload
		if err := json.Unmarshal([]byte(str(res[i+1])), &p); err != nil {
			return out, fmt.Errorf("claim mail %s: decode: %w", key, err)
		}
		attempts, err := strconv.Atoi(str(res[i+2]))
		if err != nil {
			return out, fmt.Errorf("claim mail %s: attempts: %w", key, err)
		}
		due, err := parseMS(str(res[i+4]))
		if err != nil {
			return out, fmt.Errorf("claim mail %s: %w", key, err)
		}
		raw := p.Raw
		if r := str(res[i+5]); r != "" {
			raw = []byte(r)
		}
		out = append(out, OutboxEntry{
			Key: key, Kind: p.Kind, Ticket: p.Ticket, From: p.From, To: p.To, Raw: raw, Ref: p.Ref, Recipe: p.Recipe, Arrived: p.Arrived,
			RawLen: p.RawLen, RawSum: p.RawSum, Attempts: attempts, NextTry: due, LastError: str(res[i+3]),
		})
	}
	return out, nil
}

var extendOutboxScript = redis.NewScript(`
-- KEYS[1] P{outbox}:leased  key -> lease expiry ms
-- ARGV[1] new expiry ms, ARGV[2..] entry keys
-- Returns how many leases were extended. Only entries still leased are
-- touched (XX), and a lease is never shortened (GT): an entry acked or given
-- back meanwhile stays where it is.
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('ZADD', KEYS[1], 'XX', 'GT', 'CH', ARGV[1], ARGV[i])
end
return n
`)

// ExtendOutbox moves the lease of claimed entries that are still in flight
// to until. The sender calls it while a send takes long (a large message, a
// slow relay), so that the lease can be short, and a crashed instance's
// claims come back within seconds, without a slow send being handed out
// twice. It returns how many leases it extended.
func (s *Store) ExtendOutbox(ctx context.Context, until time.Time, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(keys)+1)
	args = append(args, ms(until))
	for _, k := range keys {
		args = append(args, k)
	}
	n, err := extendOutboxScript.Run(ctx, s.rdb, []string{s.k.outboxLeased()}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("extend mail leases: %w", err)
	}
	return n, nil
}

var ackOutboxScript = redis.NewScript(`
-- KEYS[1] P{outbox}:pending, KEYS[2] P{outbox}:leased, KEYS[3] P{outbox}:queued,
-- KEYS[4] P{outbox}:msg, KEYS[5] P{outbox}:attempts, KEYS[6] P{outbox}:errors,
-- KEYS[7] P{outbox}:sent  key -> sent ms, KEYS[8] P{outbox}:raw
-- ARGV[1] entry key, ARGV[2] now ms
-- Returns 1. Removes the entry and remembers its key as sent.
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[2], ARGV[1])
return 1
`)

// AckOutbox records that the entry was sent (or given up for good): its
// payload is removed and its key remembered, so enqueueing it again within
// the retention period does nothing. Acking twice is harmless.
func (s *Store) AckOutbox(ctx context.Context, key string, now time.Time) error {
	k := []string{s.k.outboxPending(), s.k.outboxLeased(), s.k.outboxQueued(), s.k.outboxMsg(), s.k.outboxAttempts(), s.k.outboxErrors(), s.k.outboxSent(), s.k.outboxRaw()}
	if err := ackOutboxScript.Run(ctx, s.rdb, k, key, ms(now)).Err(); err != nil {
		return fmt.Errorf("ack mail %s: %w", key, err)
	}
	return nil
}

// AckOutboxMany is AckOutbox for several entries in one round trip (the
// sender acks a batch when its sends are done): the claim script's
// acknowledgement part, claiming nothing.
func (s *Store) AckOutboxMany(ctx context.Context, keys []string, now time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := s.runClaimScript(ctx, now, now, 0, false, keys); err != nil {
		return fmt.Errorf("ack %d mails: %w", len(keys), err)
	}
	return nil
}

var retryOutboxScript = redis.NewScript(`
-- KEYS[1] P{outbox}:pending, KEYS[2] P{outbox}:leased, KEYS[3] P{outbox}:msg,
-- KEYS[4] P{outbox}:errors
-- ARGV[1] entry key, ARGV[2] next try ms, ARGV[3] error text
-- Returns 1 when rescheduled, 0 when there is no such entry (sent or never
-- enqueued).
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
return 1
`)

// RetryOutbox gives a claimed entry back to be tried again at at, with the
// error of the failed attempt. It returns an error wrapping ErrNotFound when
// the entry is gone (acked meanwhile).
func (s *Store) RetryOutbox(ctx context.Context, key string, at time.Time, errText string) error {
	k := []string{s.k.outboxPending(), s.k.outboxLeased(), s.k.outboxMsg(), s.k.outboxErrors()}
	n, err := retryOutboxScript.Run(ctx, s.rdb, k, key, ms(at), errText).Int()
	if err != nil {
		return fmt.Errorf("retry mail %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("retry mail %s: %w", key, ErrNotFound)
	}
	return nil
}

// OutboxDepth returns how many entries are not sent yet (pending or in
// flight) and when the oldest of them was enqueued (zero when none).
func (s *Store) OutboxDepth(ctx context.Context) (pending int64, oldest time.Time, err error) {
	var card *redis.IntCmd
	var first *redis.ZSliceCmd
	// Two reads of one slot; no script in this pipeline.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		card = p.ZCard(ctx, s.k.outboxQueued())
		first = p.ZRangeWithScores(ctx, s.k.outboxQueued(), 0, 0)
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read outbox depth: %w", err)
	}
	if z := first.Val(); len(z) > 0 {
		oldest = fromMS(int64(z[0].Score))
	}
	return card.Val(), oldest, nil
}
