// Package store keeps the gateway's state in Redis: tickets and their events,
// SLA timers, IMAC quota counters, the Message-ID index used for threading,
// the per-mailbox UID checkpoints and processed markers, the mailbox lease,
// the acknowledgement rate limit and the outbound mail queue (outbox).
//
// Every multi-key change is one Lua script whose keys are all passed in KEYS
// and share one hash tag, so the store works unchanged on a single Redis, on
// Sentinel and on Redis Cluster. Scripts never read the clock: "now" is an
// argument. Scripts run with [redis.Script.Run] (EVALSHA, falling back to
// EVAL on NOSCRIPT, e.g. after a Redis restart), never inside a pipeline.
//
// # Key layout
//
// P is the configured prefix (e.g. "tg:"); C is the contract id ("_" for
// tickets of unknown senders); MB is the mailbox name; braces in C, MB and P
// are escaped (%7B, %7D) so that the hash tag is always the intended one.
//
//	key                                  type    content
//	P{c:C}:seq                           string  last ticket number of the contract
//	P{c:C}:tickets                       hash    ticket id -> ticket JSON
//	P{c:C}:events                        hash    ticket id -> events, one JSON object per line
//	P{c:C}:dedup                         hash    dedup key ("mid:<id>", "sha256:<hex>") -> ticket id
//	P{c:C}:timers                        zset    "<ticket id>|<kind>" scored by due unix ms
//	P{c:C}:timers:leased                 zset    claimed timers scored by lease expiry unix ms
//	P{c:C}:timers:due                    hash    claimed timer -> its due unix ms
//	P{c:C}:imac                          hash    "2026-12" / "2026-12-08" -> IMACs scheduled in that month / on that day
//	P{meta}:prefixes                     hash    upper-cased ticket prefix -> {"contract":C,"prefix":...}
//	P{m:<sha1(message-id)>}              string  ticket id (first writer wins)
//	P{mb:MB}:uids:<uidvalidity>          hash    uid -> ticket id ("" when the message made none)
//	P{mb:MB}:checkpoint                  hash    uidvalidity, last_uid
//	P{mb:MB}:lease                       string  owner of the mailbox's polling lease (expires)
//	P{rl:<sha1(lower(sender))>}          zset    acknowledgement decisions scored by unix ms
//	P{once:<key>}                         string  a job claimed once across instances (quarterly reviews)
//	P{oauth:<sha256>}                    string  the latest refresh token of an OAuth credential (expires 400 days after its last rotation)
//	P{outbox}:pending                    zset    entry key -> next try unix ms
//	P{outbox}:leased                     zset    entry key -> lease expiry unix ms
//	P{outbox}:queued                     zset    entry key -> enqueue unix ms (depth and age)
//	P{outbox}:msg                        hash    entry key -> payload JSON (metadata)
//	P{outbox}:raw                        hash    entry key -> the message's bytes (absent for a reference)
//	P{outbox}:attempts                   hash    entry key -> attempts started
//	P{outbox}:errors                     hash    entry key -> last error text
//	P{outbox}:sent                       zset    entry key -> sent unix ms (kept for the retention period)
//
// Everything of one contract lives in one Cluster slot, which is what makes
// ticket creation (id, IMAC slot, dedup, timers) a single atomic script. The
// Message-ID index uses one slot per id; it is written idempotently after the
// ticket. The outbox uses one tag for the whole queue, a deliberate trade of
// Cluster spreading for an atomic claim across all pending mail; its volume
// (a few messages per ticket) keeps that slot small.
//
// Tickets are found by id alone: CreateTicket records, once per prefix, which
// contract a ticket prefix belongs to (P{meta}:prefixes), and refuses a
// prefix already owned by another contract. Ticket ids are matched
// case-insensitively and with any zero padding ("acme-42" finds ACME-0042).
package store
