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
	tx, err := s.newCommitTx(ctx, c, now)
	if err != nil {
		return nil, err
	}
	parts := len(tx.norm) + len(tx.calls)
	if c.Processed != nil {
		parts++
	}
	client, single := s.rdb.(*redis.Client)
	if !single || parts < 2 {
		if err := s.indexIDs(ctx, c.TicketID, tx.norm); err != nil {
			return nil, err
		}
		for i, cl := range tx.calls {
			n, err := enqueueScript.Run(ctx, s.rdb, cl.keys, cl.args...).Int()
			if err != nil {
				return tx.added, fmt.Errorf("enqueue mail %s: %w", c.Entries[i].Key, err)
			}
			tx.added[i] = n == 1
		}
		if c.Processed != nil {
			if err := s.MarkProcessed(ctx, *c.Processed, c.TicketID); err != nil {
				return tx.added, err
			}
		}
		return tx.added, nil
	}
	_, err = client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		tx.queue(ctx, s, p)
		return nil
	})
	return tx.finish(err)
}

// newCommitTx checks a Commit and prepares its commands: the normalized
// ids and each entry's queueing script.
func (s *Store) newCommitTx(ctx context.Context, c Commit, now time.Time) (*commitTx, error) {
	norm, err := normalizeIDs(c.TicketID, c.IDs)
	if err != nil {
		return nil, err
	}
	tx := &commitTx{c: c, norm: norm, calls: make([]enqueueCall, len(c.Entries)), added: make([]bool, len(c.Entries))}
	for i, e := range c.Entries {
		if tx.calls[i].keys, tx.calls[i].args, err = s.enqueueArgs(ctx, e, now); err != nil {
			return nil, err
		}
	}
	return tx, nil
}

// enqueueCall is one Enqueue of a Commit: the script's keys and arguments.
type enqueueCall struct {
	keys []string
	args []any
}

// commitTx is a Commit's part of a MULTI/EXEC transaction.
type commitTx struct {
	c     Commit
	norm  []string
	calls []enqueueCall
	added []bool

	setnx   []*redis.BoolCmd
	scripts []*redis.Cmd
	mark    redis.Cmder
}

// markQueuedScript marks a message processed only if every entry of its
// mail is queued (or was sent): in a MULTI/EXEC a queueing script that
// fails at run time (a key of the wrong type, out of memory) fails alone
// while EXEC applies the rest, and a plain HSET would then mark a message
// whose mail is missing.
var markQueuedScript = redis.NewScript(`
-- KEYS[1] the mailbox generation's processed hash
-- KEYS[2] P{outbox}:msg   key -> payload JSON (queued or in flight)
-- KEYS[3] P{outbox}:sent  key -> sent ms
-- ARGV[1] UID, ARGV[2] ticket id, ARGV[3..] the entries' keys
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 and not redis.call('ZSCORE', KEYS[3], ARGV[i]) then
    return redis.error_reply('mail ' .. ARGV[i] .. ' is not queued: not marked processed')
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// queue adds the commit's commands to the transaction p.
func (tx *commitTx) queue(ctx context.Context, s *Store, p redis.Pipeliner) {
	c := tx.c
	tx.setnx = make([]*redis.BoolCmd, len(tx.norm))
	tx.scripts = make([]*redis.Cmd, len(tx.calls))
	for i, id := range tx.norm {
		tx.setnx[i] = p.SetNX(ctx, s.k.messageID(id), c.TicketID, 0)
	}
	// EVAL, not EVALSHA: inside MULTI/EXEC a NOSCRIPT (Redis restarted, a
	// Sentinel failover, SCRIPT FLUSH) fails only that command while EXEC
	// applies the others, the processed marker included; a message would
	// then count as processed with its mail never queued. Redis still
	// compiles the script once and caches it; the cost is the script's
	// text (about 1 KB) per entry.
	for i, cl := range tx.calls {
		tx.scripts[i] = enqueueScript.Eval(ctx, p, cl.keys, cl.args...)
	}
	if ref := c.Processed; ref != nil {
		key, uid := s.k.processed(ref.Mailbox, ref.UIDValidity), strconv.FormatUint(uint64(ref.UID), 10)
		if len(c.Entries) == 0 {
			tx.mark = p.HSet(ctx, key, uid, c.TicketID)
			return
		}
		args := []any{uid, c.TicketID}
		for _, e := range c.Entries {
			args = append(args, e.Key)
		}
		// EVAL, as for the entries: see above.
		tx.mark = markQueuedScript.Eval(ctx, p, []string{key, s.k.outboxMsg(), s.k.outboxSent()}, args...)
	}
}

// finish reads the answers of the commit's commands; err is the
// transaction's.
func (tx *commitTx) finish(err error) ([]bool, error) {
	c := tx.c
	for i, cmd := range tx.setnx {
		if cerr := cmd.Err(); cerr != nil {
			return nil, fmt.Errorf("index message id %s of ticket %s: %w", tx.norm[i], c.TicketID, cerr)
		}
	}
	for i, cmd := range tx.scripts {
		n, cerr := cmd.Int()
		if cerr != nil {
			return tx.added, fmt.Errorf("enqueue mail %s: %w", c.Entries[i].Key, cerr)
		}
		tx.added[i] = n == 1
	}
	if tx.mark != nil && tx.mark.Err() != nil {
		return tx.added, fmt.Errorf("mark %s processed: %w", c.Processed, tx.mark.Err())
	}
	if err != nil {
		return tx.added, fmt.Errorf("store mail of ticket %q: %w", c.TicketID, err)
	}
	return tx.added, nil
}

// CommitMessages is CommitMessage for each commit, in order. On one Redis
// server it is one MULTI/EXEC transaction for all of them: each commit is
// stored whole, after the ones before it, or, when the transaction fails,
// none is. On a Redis Cluster each is a CommitMessage of its own. added[i]
// and errs[i] are CommitMessage's answers for cs[i].
func (s *Store) CommitMessages(ctx context.Context, cs []Commit, now time.Time) (added [][]bool, errs []error) {
	added, errs = make([][]bool, len(cs)), make([]error, len(cs))
	client, single := s.rdb.(*redis.Client)
	if !single || len(cs) < 2 {
		for i, c := range cs {
			added[i], errs[i] = s.CommitMessage(ctx, c, now)
		}
		return added, errs
	}
	txs := make([]*commitTx, len(cs))
	n := 0
	for i, c := range cs {
		if txs[i], errs[i] = s.newCommitTx(ctx, c, now); txs[i] != nil {
			n++
		}
	}
	if n == 0 {
		return added, errs
	}
	_, err := client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, tx := range txs {
			if tx != nil {
				tx.queue(ctx, s, p)
			}
		}
		return nil
	})
	// EXEC's error is a command's (each commit then answers for its own
	// commands: one failed command does not undo the others), or the
	// transaction's, which every commit shares.
	for _, tx := range txs {
		if tx != nil && tx.failed() {
			err = nil
			break
		}
	}
	for i, tx := range txs {
		if tx != nil {
			added[i], errs[i] = tx.finish(err)
		}
	}
	return added, errs
}

// failed reports whether one of the commit's commands failed.
func (tx *commitTx) failed() bool {
	for _, c := range tx.setnx {
		if c.Err() != nil {
			return true
		}
	}
	for _, c := range tx.scripts {
		if c.Err() != nil {
			return true
		}
	}
	return tx.mark != nil && tx.mark.Err() != nil
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
