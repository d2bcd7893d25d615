package store

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/northwind-it/ticketgw/sla"
)

// ErrNotFound is returned when a ticket (or outbox entry) does not exist.
var ErrNotFound = errors.New("not found")

// DefaultOutboxRetention is how long the key of a sent outbox entry is
// remembered, so that enqueueing it again is a no-op.
const DefaultOutboxRetention = 30 * 24 * time.Hour

// Store is the gateway's Redis state. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	k         keys
	retention time.Duration

	mu       sync.RWMutex
	prefixes map[string]prefixOwner // upper-cased ticket prefix -> owner (immutable once written)
}

// Option configures a Store.
type Option func(*Store)

// WithOutboxRetention sets how long sent outbox keys are remembered
// (default DefaultOutboxRetention).
func WithOutboxRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.retention = d
		}
	}
}

// New returns a Store using rdb with every key starting with prefix (e.g.
// "tg:"). Scripts are loaded on first use (and again after a Redis restart).
func New(rdb redis.UniversalClient, prefix string, opts ...Option) *Store {
	s := &Store{
		rdb:       rdb,
		k:         keys{p: escapeTag(prefix)},
		retention: DefaultOutboxRetention,
		prefixes:  make(map[string]prefixOwner),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// keys builds every key name of the store. No key is built anywhere else.
type keys struct{ p string }

func (k keys) contract(c string) string {
	if c == "" {
		c = unknownContract
	}
	return k.p + "{c:" + escapeTag(c) + "}:"
}

// unknownContract is the hash tag of tickets whose sender matches no contract.
const unknownContract = "_"

func (k keys) seq(c string) string         { return k.contract(c) + "seq" }
func (k keys) tickets(c string) string     { return k.contract(c) + "tickets" }
func (k keys) events(c string) string      { return k.contract(c) + "events" }
func (k keys) dedup(c string) string       { return k.contract(c) + "dedup" }
func (k keys) timers(c string) string      { return k.contract(c) + "timers" }
func (k keys) timerLeases(c string) string { return k.contract(c) + "timers:leased" }
func (k keys) timerDues(c string) string   { return k.contract(c) + "timers:due" }
func (k keys) imac(c string) string        { return k.contract(c) + "imac" }

func (k keys) prefixes() string { return k.p + "{meta}:prefixes" }

func (k keys) messageID(id string) string { return k.p + "{m:" + sha1Hex(id) + "}" }

func (k keys) mailbox(mb string) string { return k.p + "{mb:" + escapeTag(mb) + "}:" }
func (k keys) processed(mb string, uidValidity uint32) string {
	return k.mailbox(mb) + "uids:" + strconv.FormatUint(uint64(uidValidity), 10)
}
func (k keys) checkpoint(mb string) string { return k.mailbox(mb) + "checkpoint" }
func (k keys) lease(mb string) string      { return k.mailbox(mb) + "lease" }

func (k keys) rateLimit(sender string) string {
	return k.p + "{rl:" + sha1Hex(strings.ToLower(sender)) + "}"
}

func (k keys) outbox() string         { return k.p + "{outbox}:" }
func (k keys) outboxPending() string  { return k.outbox() + "pending" }
func (k keys) outboxLeased() string   { return k.outbox() + "leased" }
func (k keys) outboxQueued() string   { return k.outbox() + "queued" }
func (k keys) outboxMsg() string      { return k.outbox() + "msg" }
func (k keys) outboxRaw() string      { return k.outbox() + "raw" }
func (k keys) outboxAttempts() string { return k.outbox() + "attempts" }
func (k keys) outboxErrors() string   { return k.outbox() + "errors" }
func (k keys) outboxSent() string     { return k.outbox() + "sent" }

// escapeTag makes s safe inside (and before) a hash tag: '{' and '}' would
// change which part of the key Redis Cluster hashes. '%' is escaped too so
// that the mapping is one-to-one.
func escapeTag(s string) string {
	if !strings.ContainsAny(s, "{}%") {
		return s
	}
	r := strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")
	return r.Replace(s)
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// ms is t in unix milliseconds, the score unit of every sorted set.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// FormatDate formats a civil date as YYYY-MM-DD, the form of IMAC counter
// fields and Ticket.IMACDate.
func FormatDate(d sla.Date) string {
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

func validDate(d sla.Date) bool {
	if d.Year < 1 || d.Year > 9999 || d.Month < time.January || d.Month > time.December || d.Day < 1 {
		return false
	}
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
	return t.Day() == d.Day
}
