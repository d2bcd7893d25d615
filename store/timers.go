package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TimerEntry is a stored SLA timer.
type TimerEntry struct {
	Contract string // "" for tickets of unknown senders
	Ticket   string
	Kind     string
	Due      time.Time
	// LeasedUntil is set while the timer is claimed: after it, an unacked
	// claim is handed out again.
	LeasedUntil time.Time
}

func (e TimerEntry) member() string { return e.Ticket + "|" + e.Kind }

func parseMember(contract, m string) (TimerEntry, error) {
	i := strings.LastIndexByte(m, '|')
	if i < 0 {
		return TimerEntry{}, fmt.Errorf("malformed timer %q", m)
	}
	return TimerEntry{Contract: contract, Ticket: m[:i], Kind: m[i+1:]}, nil
}

func parseMS(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("malformed score %q: %w", s, err)
	}
	return fromMS(int64(f)), nil
}

// PendingTimers lists a contract's timers, scheduled and claimed, by due
// time.
func (s *Store) PendingTimers(ctx context.Context, contract string) ([]TimerEntry, error) {
	var sched, leased []redis.Z
	var dues map[string]string
	// Three reads of one slot; no script in this pipeline.
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRangeWithScores(ctx, s.k.timers(contract), 0, -1)
		p.ZRangeWithScores(ctx, s.k.timerLeases(contract), 0, -1)
		p.HGetAll(ctx, s.k.timerDues(contract))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read timers of contract %q: %w", contract, err)
	}
	sched = cmds[0].(*redis.ZSliceCmd).Val()
	leased = cmds[1].(*redis.ZSliceCmd).Val()
	dues = cmds[2].(*redis.MapStringStringCmd).Val()

	out := make([]TimerEntry, 0, len(sched)+len(leased))
	for _, z := range sched {
		e, err := parseMember(contract, z.Member.(string))
		if err != nil {
			return nil, fmt.Errorf("read timers of contract %q: %w", contract, err)
		}
		e.Due = fromMS(int64(z.Score))
		out = append(out, e)
	}
	for _, z := range leased {
		m := z.Member.(string)
		e, err := parseMember(contract, m)
		if err != nil {
			return nil, fmt.Errorf("read timers of contract %q: %w", contract, err)
		}
		if e.Due, err = parseMS(dues[m]); err != nil {
			return nil, fmt.Errorf("read timer %s: %w", m, err)
		}
		e.LeasedUntil = fromMS(int64(z.Score))
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b TimerEntry) int { return a.Due.Compare(b.Due) })
	return out, nil
}

var claimTimersScript = redis.NewScript(`
-- KEYS[1] P{c:C}:timers         "<id>|<kind>" scored by due ms
-- KEYS[2] P{c:C}:timers:leased  claimed timers scored by lease expiry ms
-- KEYS[3] P{c:C}:timers:due     claimed timer -> due ms
-- ARGV[1] now ms, ARGV[2] lease expiry ms, ARGV[3] max timers
-- Returns a flat array {member, due ms, ...}: first claims whose lease
-- expired (claimed again), then due timers by due time.
local out = {}
local max = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, max)
for _, m in ipairs(expired) do
  redis.call('ZADD', KEYS[2], ARGV[2], m)
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', KEYS[3], m) or '0'
end
local left = max - #expired
if left > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, left)
  for i = 1, #due, 2 do
    local m = due[i]
    redis.call('ZREM', KEYS[1], m)
    redis.call('ZADD', KEYS[2], ARGV[2], m)
    redis.call('HSET', KEYS[3], m, due[i + 1])
    out[#out + 1] = m
    out[#out + 1] = due[i + 1]
  end
end
return out
`)

// ClaimTimers hands out up to limit of a contract's timers that are due at
// now, leased until now+lease. A claim that is not acked before its lease
// expires is handed out again (the instance that claimed it may have died),
// so whatever a timer triggers must be idempotent (an outbox key such as
// "timer:<ticket>|<kind>|<due>" is).
func (s *Store) ClaimTimers(ctx context.Context, contract string, now time.Time, lease time.Duration, limit int) ([]TimerEntry, error) {
	if limit <= 0 || lease <= 0 {
		return nil, fmt.Errorf("claim timers: invalid limit %d or lease %v", limit, lease)
	}
	k := []string{s.k.timers(contract), s.k.timerLeases(contract), s.k.timerDues(contract)}
	until := now.Add(lease)
	res, err := claimTimersScript.Run(ctx, s.rdb, k, ms(now), ms(until), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claim timers of contract %q: %w", contract, err)
	}
	out := make([]TimerEntry, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		e, err := parseMember(contract, res[i])
		if err != nil {
			return out, fmt.Errorf("claim timers of contract %q: %w", contract, err)
		}
		if e.Due, err = parseMS(res[i+1]); err != nil {
			return out, fmt.Errorf("claim timer %s: %w", res[i], err)
		}
		e.LeasedUntil = fromMS(ms(until))
		out = append(out, e)
	}
	return out, nil
}

var ackTimerScript = redis.NewScript(`
-- KEYS[1] P{c:C}:timers:leased  claimed timers scored by lease expiry ms
-- KEYS[2] P{c:C}:timers:due     claimed timer -> due ms
-- ARGV[1] member "<id>|<kind>", ARGV[2] due ms of the claim being acked
-- Returns 1 when the claim was removed, 0 when it is no longer claimed with
-- that due time (cancelled or rescheduled meanwhile).
local due = redis.call('HGET', KEYS[2], ARGV[1])
if not due or tonumber(due) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

// ErrNotClaimed is returned by AckTimer when the timer is no longer
// claimed as given (it was cancelled or rescheduled meanwhile).
var ErrNotClaimed = errors.New("timer not claimed")

// AckTimer marks a claimed timer as done: it will not fire again.
func (s *Store) AckTimer(ctx context.Context, e TimerEntry) error {
	k := []string{s.k.timerLeases(e.Contract), s.k.timerDues(e.Contract)}
	n, err := ackTimerScript.Run(ctx, s.rdb, k, e.member(), ms(e.Due)).Int()
	if err != nil {
		return fmt.Errorf("ack timer %s: %w", e.member(), err)
	}
	if n == 0 {
		return fmt.Errorf("ack timer %s: %w", e.member(), ErrNotClaimed)
	}
	return nil
}
