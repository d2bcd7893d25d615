package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Commit is the last write of a handled message, once its ticket is
// stored: the Message-IDs that thread to the ticket, the mail the message
// causes, and its processed marker.
type Commit struct {
	// TicketID is the ticket; it may be empty when IDs is (mail without a
	// ticket, or a marker of a message that made none).
	TicketID string
	// IDs are indexed for TicketID, as by IndexMessageIDs.
	IDs []string
	// Entries are queued after the ids are indexed, as by Enqueue.
	Entries []OutboxEntry
	// Processed, when set, is marked processed in TicketID, as by
	// MarkProcessed, after everything else.
	Processed *SourceRef
}

// CommitMessage indexes c.IDs, then queues c.Entries, then marks
// c.Processed, in this order: a reply to the queued mail always threads,
// and a message is marked only once all it causes is stored. It reports,
// entry by entry, whether the entry was added (Enqueue's added).
//
// On one Redis server (a Sentinel-managed master included) it is one round
// trip: a MULTI/EXEC transaction, which Redis runs in order and whole, so
// that no part is ever stored without the parts before it, even if the
// connection or the process dies. On a Redis Cluster, whose transactions
// cannot span hash slots (each id has its own), it takes one round trip for
// the ids, one per entry and one for the marker, in that order. Either way
// a retry after an error is harmless: every part is idempotent.
func (s *Store) CommitMessage(ctx context.Context, c Commit, now time.Time) ([]bool, error) {
	norm, err := normalizeIDs(c.TicketID, c.IDs)
	if err != nil {
		return nil, err
	}
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, len(c.Entries))
	for i, e := range c.Entries {
		if calls[i].keys, calls[i].args, err = s.enqueueArgs(ctx, e, now); err != nil {
			return nil, err
		}
	}
	parts := len(norm) + len(calls)
	if c.Processed != nil {
		parts++
	}
	added := make([]bool, len(c.Entries))
	client, single := s.rdb.(*redis.Client)
	if !single || parts < 2 {
		if err := s.indexIDs(ctx, c.TicketID, norm); err != nil {
			return nil, err
		}
		for i, cl := range calls {
			n, err := enqueueScript.Run(ctx, s.rdb, cl.keys, cl.args...).Int()
			if err != nil {
				return added, fmt.Errorf("enqueue mail %s: %w", c.Entries[i].Key, err)
			}
			added[i] = n == 1
		}
		if c.Processed != nil {
			if err := s.MarkProcessed(ctx, *c.Processed, c.TicketID); err != nil {
				return added, err
			}
		}
		return added, nil
	}
	var setnx []*redis.BoolCmd
	scripts := make([]*redis.Cmd, len(calls))
	var mark *redis.IntCmd
	setnx = make([]*redis.BoolCmd, len(norm))
	// EVAL, not EVALSHA: inside MULTI/EXEC a NOSCRIPT (Redis restarted, a
	// Sentinel failover, SCRIPT FLUSH) fails only that command while EXEC
	// applies the others, the processed marker included; a message would
	// then count as processed with its mail never queued. Redis still
	// compiles the script once and caches it; the cost is the script's
	// text (about 1 KB) per entry.
	_, err = client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range norm {
			setnx[i] = p.SetNX(ctx, s.k.messageID(id), c.TicketID, 0)
		}
		for i, cl := range calls {
			scripts[i] = enqueueScript.Eval(ctx, p, cl.keys, cl.args...)
		}
		if ref := c.Processed; ref != nil {
			mark = p.HSet(ctx, s.k.processed(ref.Mailbox, ref.UIDValidity), strconv.FormatUint(uint64(ref.UID), 10), c.TicketID)
		}
		return nil
	})
	for i, cmd := range setnx {
		if cerr := cmd.Err(); cerr != nil {
			return nil, fmt.Errorf("index message id %s of ticket %s: %w", norm[i], c.TicketID, cerr)
		}
	}
	for i, cmd := range scripts {
		n, cerr := cmd.Int()
		if cerr != nil {
			return added, fmt.Errorf("enqueue mail %s: %w", c.Entries[i].Key, cerr)
		}
		added[i] = n == 1
	}
	if mark != nil && mark.Err() != nil {
		return added, fmt.Errorf("mark %s processed: %w", c.Processed, mark.Err())
	}
	if err != nil {
		return added, fmt.Errorf("store mail of ticket %q: %w", c.TicketID, err)
	}
	return added, nil
}

// normalizeIDs normalizes ids and drops the empty ones; ticketID must be
// set when any is left.
func normalizeIDs(ticketID string, ids []string) ([]string, error) {
	var norm []string
	for _, id := range ids {
		if id = NormalizeMessageID(id); id != "" {
			norm = append(norm, id)
		}
	}
	if len(norm) > 0 && ticketID == "" {
		return nil, errors.New("index message ids: empty ticket id")
	}
	return norm, nil
}
